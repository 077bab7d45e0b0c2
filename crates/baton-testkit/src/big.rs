//! Large synthetic sessions of either agent for memory and scale tests: one
//! file of many turns, each with a large tool output, written as it is
//! generated (never held whole).

use baton_native::Agent;
use baton_native::layout::claude;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Words of the generated tool outputs (source code, build logs, paths).
const WORDS: &[&str] = &[
    "fn",
    "let",
    "mut",
    "impl",
    "struct",
    "pub",
    "use",
    "crate",
    "self",
    "return",
    "match",
    "Some",
    "None",
    "Ok",
    "Err",
    "String",
    "Vec",
    "usize",
    "u64",
    "error",
    "warning",
    "compiling",
    "finished",
    "running",
    "test",
    "passed",
    "failed",
    "src",
    "lib",
    "main",
    "mod",
    "config",
    "request",
    "response",
    "handler",
    "server",
    "client",
    "timeout",
    "retry",
    "cache",
    "index",
    "query",
    "parse",
    "render",
    "buffer",
    "stream",
    "reader",
    "writer",
    "offset",
    "length",
    "session",
    "message",
    "token",
    "value",
    "field",
    "table",
    "column",
    "schema",
    "migration",
    "docker",
    "build",
    "image",
    "layer",
    "deploy",
    "release",
    "debug",
    "info",
    "trace",
    "span",
    "thread",
    "worker",
    "queue",
    "channel",
    "lock",
    "mutex",
    "future",
    "async",
    "await",
    "poll",
    "json",
    "yaml",
    "toml",
    "http",
    "https",
    "status",
    "header",
    "body",
    "path",
    "file",
    "dir",
];

/// A small deterministic generator (xorshift), so the tool outputs are the
/// same on every run without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One tool output of about `bytes` bytes: lines of code- and log-like text,
/// starting with `marker`.
fn tool_output(rng: &mut Rng, marker: &str, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 200);
    out.push_str(marker);
    out.push('\n');
    while out.len() < bytes {
        let r = rng.next();
        match r % 4 {
            0 => out.push_str(&format!(
                "src/{}/{}.rs:{}:{}: ",
                WORDS[(r >> 8) as usize % WORDS.len()],
                WORDS[(r >> 16) as usize % WORDS.len()],
                (r >> 24) % 900,
                (r >> 34) % 80
            )),
            1 => out.push_str("    "),
            _ => {}
        }
        for i in 0..(4 + (r >> 40) % 8) {
            out.push_str(WORDS[((r >> (i * 3)) ^ rng.next()) as usize % WORDS.len()]);
            out.push(' ');
        }
        out.push('\n');
    }
    out
}

/// The session id of the `n`th generated session.
pub fn big_session_id(n: u64) -> String {
    format!("0190c0de-0000-7000-8000-{n:012}")
}

/// Write a session of `agent` of about `bytes` bytes under its home `home`
/// (a Codex home or a Claude Code config dir): `turns` turns of a prompt, a
/// tool call, a tool output of `bytes / turns` bytes and a reply. Prompt `i`
/// says `big prompt number i` and its tool output starts with
/// `bigmarker{i}`. The file is written as it is generated, never held whole.
/// Returns the file's path and its session id ([`big_session_id`] of `n`).
pub fn write_big_session(
    agent: Agent,
    home: &Path,
    n: u64,
    bytes: u64,
    turns: u64,
) -> io::Result<(PathBuf, String)> {
    let id = big_session_id(n);
    let cwd = format!("/srv/big/{n}");
    let (dir, name) = match agent {
        Agent::Codex => (
            home.join("sessions/2026/11/30"),
            format!("rollout-2026-11-30T10-00-00-{id}.jsonl"),
        ),
        Agent::Claude => (
            home.join("projects").join(claude::project_slug(&cwd)),
            format!("{id}.jsonl"),
        ),
    };
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut lines = Lines {
        agent,
        n,
        id: &id,
        cwd: &cwd,
        count: 0,
    };
    if agent == Agent::Codex {
        let ts = TIMESTAMP;
        lines.write(
            &mut out,
            serde_json::json!({"timestamp": ts, "type": "session_meta", "payload": {
                "id": id, "timestamp": ts, "cwd": cwd, "originator": "codex_exec",
                "cli_version": "0.169.0", "source": "exec", "model_provider": "mock"}}),
        )?;
    }
    let per_turn = (bytes / turns.max(1)) as usize;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n.wrapping_add(1));
    for i in 0..turns {
        let output = tool_output(&mut rng, &format!("bigmarker{i}"), per_turn);
        for record in lines.turn(i, &output) {
            lines.write(&mut out, record)?;
        }
    }
    out.flush()?;
    Ok((path, id))
}

/// Timestamp of every generated record.
const TIMESTAMP: &str = "2026-11-30T10:00:00.000Z";

/// The records of one generated session, chained (Claude's `parentUuid`).
struct Lines<'a> {
    agent: Agent,
    n: u64,
    id: &'a str,
    cwd: &'a str,
    count: u64,
}

impl Lines<'_> {
    /// The uuid of the `k`th Claude record.
    fn uuid(&self, k: u64) -> String {
        format!("{:08x}-0000-4000-8000-{k:012x}", self.n)
    }

    /// Write `record` as one line; a Claude record gets its envelope
    /// (uuid, parent, session id, cwd, timestamp).
    fn write(&mut self, out: &mut impl Write, mut record: serde_json::Value) -> io::Result<()> {
        if self.agent == Agent::Claude {
            let parent = match self.count {
                0 => serde_json::Value::Null,
                k => self.uuid(k - 1).into(),
            };
            let fields = [
                ("parentUuid", parent),
                ("isSidechain", false.into()),
                ("uuid", self.uuid(self.count).into()),
                ("timestamp", TIMESTAMP.into()),
                ("userType", "external".into()),
                ("cwd", self.cwd.into()),
                ("sessionId", self.id.into()),
                ("version", "2.1.330".into()),
            ];
            for (key, value) in fields {
                record[key] = value;
            }
        }
        self.count += 1;
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")
    }

    /// Turn `i`: prompt, tool call, the tool's `output`, reply.
    fn turn(&self, i: u64, output: &str) -> [serde_json::Value; 4] {
        let prompt = format!("big prompt number {i}");
        let command = format!("cargo test {i}");
        let reply = format!("done with turn {i}");
        let call_id = format!("call_{i}");
        match self.agent {
            Agent::Codex => {
                let item = |payload: serde_json::Value| serde_json::json!({"timestamp": TIMESTAMP, "type": "response_item", "payload": payload});
                [
                    item(serde_json::json!({"type": "message", "role": "user",
                        "content": [{"type": "input_text", "text": prompt}]})),
                    item(
                        serde_json::json!({"type": "function_call", "name": "exec_command",
                        "arguments": serde_json::json!({"cmd": command}).to_string(), "call_id": call_id}),
                    ),
                    item(
                        serde_json::json!({"type": "function_call_output", "call_id": call_id,
                        "output": output}),
                    ),
                    item(serde_json::json!({"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": reply}]})),
                ]
            }
            Agent::Claude => {
                let assistant = |content: serde_json::Value, stop: &str| {
                    serde_json::json!({"type": "assistant",
                    "message": {"id": format!("msg_{i}_{stop}"), "type": "message", "role": "assistant",
                        "model": "claude-opus-5-5", "content": content, "stop_reason": stop}})
                };
                [
                    serde_json::json!({"type": "user", "message": {"role": "user", "content": prompt}}),
                    assistant(
                        serde_json::json!([{"type": "tool_use", "id": call_id, "name": "Bash",
                            "input": {"command": command}}]),
                        "tool_use",
                    ),
                    serde_json::json!({"type": "user", "message": {"role": "user", "content": [
                        {"tool_use_id": call_id, "type": "tool_result", "content": output, "is_error": false}]}}),
                    assistant(
                        serde_json::json!([{"type": "text", "text": reply}]),
                        "end_turn",
                    ),
                ]
            }
        }
    }
}
