//! Large synthetic Codex sessions for memory and scale tests: one rollout
//! of many turns, each with a large tool output, written as it is generated
//! (never held whole).

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

/// Write a Codex rollout of about `bytes` bytes under the Codex home
/// `codex_home`: `turns` turns of a prompt, a tool call, a tool output of
/// `bytes / turns` bytes and a reply. Prompt `i` says `big prompt number i`
/// and its tool output starts with `bigmarker{i}`. Returns the rollout's
/// path and its session id ([`big_session_id`] of `n`).
pub fn write_big_codex_session(
    codex_home: &Path,
    n: u64,
    bytes: u64,
    turns: u64,
) -> io::Result<(PathBuf, String)> {
    let id = big_session_id(n);
    let dir = codex_home.join("sessions/2026/11/30");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("rollout-2026-11-30T10-00-00-{id}.jsonl"));
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let ts = "2026-11-30T10:00:00.000Z";
    let line = |out: &mut BufWriter<std::fs::File>, v: serde_json::Value| -> io::Result<()> {
        serde_json::to_writer(&mut *out, &v)?;
        out.write_all(b"\n")
    };
    line(
        &mut out,
        serde_json::json!({"timestamp": ts, "type": "session_meta", "payload": {
            "id": id, "timestamp": ts, "cwd": format!("/srv/big/{n}"), "originator": "codex_exec",
            "cli_version": "0.169.0", "source": "exec", "model_provider": "mock"}}),
    )?;
    let per_turn = (bytes / turns.max(1)) as usize;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n.wrapping_add(1));
    for i in 0..turns {
        let item = |payload: serde_json::Value| serde_json::json!({"timestamp": ts, "type": "response_item", "payload": payload});
        let call_id = format!("call_{i}");
        line(
            &mut out,
            item(serde_json::json!({"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": format!("big prompt number {i}")}]})),
        )?;
        line(
            &mut out,
            item(
                serde_json::json!({"type": "function_call", "name": "exec_command",
                "arguments": format!("{{\"cmd\": \"cargo test {i}\"}}"), "call_id": call_id}),
            ),
        )?;
        let output = tool_output(&mut rng, &format!("bigmarker{i}"), per_turn);
        line(
            &mut out,
            item(
                serde_json::json!({"type": "function_call_output", "call_id": call_id,
                "output": output}),
            ),
        )?;
        line(
            &mut out,
            item(serde_json::json!({"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": format!("done with turn {i}")}]})),
        )?;
    }
    out.flush()?;
    Ok((path, id))
}
