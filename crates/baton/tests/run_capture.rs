//! `baton run`: the real pinned CLIs talk to the scripted model through the
//! capture proxy, and every model exchange lands in the session directory.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use baton_native::Agent;
use baton_record::capture::UNATTRIBUTED;
use baton_record::{CapturedExchange, REDACTED};
use baton_testkit::{
    AgentEnv, Agents, CODEX_KEY_ENV, ModelServer, RecordedRequest, agents, run_ok,
};

mod common;

use common::baton_like;

/// Distinctive dummy credentials: they must reach the model server but never the disk.
const CODEX_KEY: &str = "sk-codex-capture-KEY-93f1c2aa";
const CLAUDE_KEY: &str = "sk-ant-capture-KEY-5b7e0d11";

/// A scratch machine for `baton run`: the pinned agents, the scripted model
/// server, agent homes, a project dir and a capture data dir.
struct Capture {
    agents: Agents,
    server: ModelServer,
    env: AgentEnv,
    project: PathBuf,
    data: PathBuf,
}

impl Capture {
    /// `None` (the test is skipped) when the pinned CLIs are not installed.
    fn start() -> Option<Capture> {
        let agents = agents()?;
        let server = ModelServer::start();
        let env = AgentEnv::new(&server);
        let project = env.dir("project");
        let data = env.dir("baton-data");
        Some(Capture {
            agents,
            server,
            env,
            project,
            data,
        })
    }

    /// The model server's Responses endpoint, for Codex's `--upstream`.
    fn codex_upstream(&self) -> String {
        format!("{}/v1", self.server.url())
    }

    /// Run `baton run <agent> [--upstream U] <options> -- <args>` (must
    /// succeed) with the environment and cwd of the testkit's agent command,
    /// the dummy keys replaced by distinctive ones.
    fn run(&self, agent: Agent, upstream: Option<&str>, options: &[&str], args: &[&str]) -> Output {
        let (agent_cmd, bin) = match agent {
            Agent::Codex => (
                self.env.codex(&self.agents, &self.project),
                &self.agents.codex,
            ),
            Agent::Claude => (
                self.env.claude(&self.agents, &self.project),
                &self.agents.claude,
            ),
        };
        let mut cmd = baton_like(&[&agent_cmd]);
        cmd.env(CODEX_KEY_ENV, CODEX_KEY)
            .env("ANTHROPIC_API_KEY", CLAUDE_KEY)
            .env("BATON_HOME", self.data.join("unused-baton-home"));
        cmd.args(["run", agent.as_str(), "--bin"])
            .arg(bin)
            .arg("--data")
            .arg(&self.data);
        if let Some(upstream) = upstream {
            cmd.args(["--upstream", upstream]);
        }
        cmd.args(options).arg("--").args(args);
        run_ok(&mut cmd)
    }
}

/// Every `raw_api.jsonl` line under `data/sessions`, by session directory.
fn captured(data: &Path) -> BTreeMap<String, Vec<CapturedExchange>> {
    let mut out = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(data.join("sessions")) else {
        return out;
    };
    for dir in dirs.flatten() {
        let raw = dir.path().join("raw_api.jsonl");
        let Ok(text) = std::fs::read_to_string(&raw) else {
            continue;
        };
        let lines = text
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{}: bad line {e}: {l}", raw.display()))
            })
            .collect();
        out.insert(dir.file_name().to_string_lossy().into_owned(), lines);
    }
    out
}

/// Panic if any file under `dir` contains one of `needles`.
fn assert_absent_everywhere(dir: &Path, needles: &[&str]) {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap().flatten() {
                stack.push(entry.path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            files += 1;
            let text = String::from_utf8_lossy(&bytes);
            for needle in needles {
                assert!(
                    !text.contains(needle),
                    "{} contains the secret {needle}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 0, "nothing was written under {}", dir.display());
}

/// Requests whose session header names `id`.
fn requests_of(server: &ModelServer, id: &str) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| {
            ["session-id", "session_id", "x-claude-code-session-id"]
                .iter()
                .any(|h| r.headers.get(*h).map(String::as_str) == Some(id))
        })
        .collect()
}

/// The session directory holds exactly the model server's requests for that
/// session, in order, with complete SSE bodies; everything else is unattributed.
fn assert_capture_matches(
    server: &ModelServer,
    data: &Path,
    id: &str,
    sse_end: &str,
    key_header: &str,
) {
    let all = captured(data);
    let total: usize = all.values().map(Vec::len).sum();
    assert_eq!(
        total,
        server.requests().len(),
        "every request the model saw was captured once: {:?}",
        all.keys().collect::<Vec<_>>()
    );
    let expected = requests_of(server, id);
    assert!(!expected.is_empty(), "the agent sent its session header");
    let got = all
        .get(id)
        .unwrap_or_else(|| panic!("no session directory {id}: {:?}", all.keys()));
    assert_eq!(got.len(), expected.len(), "captures of session {id}");
    for (capture, request) in got.iter().zip(&expected) {
        assert_eq!(capture.session_id.as_deref(), Some(id));
        assert_eq!(capture.path, request.path);
        assert_eq!(capture.record.method, request.method);
        assert_eq!(capture.record.request_body, request.body, "request body");
        assert_eq!(capture.request_headers[key_header], REDACTED);
        assert_eq!(capture.record.status, Some(200));
        assert!(
            capture.complete && capture.error.is_none(),
            "{} {}: complete={} error={:?}",
            capture.record.method,
            capture.path,
            capture.complete,
            capture.error
        );
        let ttfb = capture.ttfb_ms.expect("a body arrived");
        assert!(ttfb <= capture.total_ms);
        if request.is_stream() {
            let body = capture.record.response_body.as_str().expect("SSE text");
            assert!(
                body.contains(sse_end) && body.ends_with("\n\n"),
                "SSE body is complete: {body}"
            );
        }
    }
    for (dir, captures) in &all {
        if dir != id {
            assert_eq!(dir, UNATTRIBUTED, "only one session ran");
            assert!(captures.iter().all(|c| c.session_id.is_none()));
        }
    }
}

#[test]
fn codex_turns_and_resume_are_captured_in_the_session_directory() {
    let Some(c) = Capture::start() else { return };
    let (server, env, data) = (&c.server, &c.env, &c.data);
    let out = c.run(
        Agent::Codex,
        Some(&c.codex_upstream()),
        &[],
        &["exec", "--skip-git-repo-check", "RUN: echo capture-x"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ECHO"), "codex answered: {stdout}");
    let ids = env.codex_session_ids();
    assert_eq!(ids.len(), 1, "one Codex thread: {ids:?}");
    let id = &ids[0];
    let first_turn = requests_of(server, id).len();
    assert!(
        first_turn >= 2,
        "a tool call and the answer after it: {first_turn}"
    );
    assert_capture_matches(server, data, id, "response.completed", "authorization");
    // Without --persist-session there is no transcript link and no session log.
    let session_dir = data.join("sessions").join(id);
    assert!(std::fs::symlink_metadata(session_dir.join("transcript.jsonl")).is_err());
    assert_eq!(
        std::fs::read_to_string(session_dir.join("session.log")).unwrap(),
        ""
    );
    let tool_call = captured(data)[id.as_str()][0]
        .record
        .response_body
        .as_str()
        .unwrap()
        .to_string();
    assert!(tool_call.contains("function_call") && tool_call.contains("capture-x"));

    // Resume without --upstream: baton reads the provider's base_url from config.toml.
    c.run(
        Agent::Codex,
        None,
        &[],
        &["exec", "--skip-git-repo-check", "resume", id, "second turn"],
    );
    assert_eq!(env.codex_session_ids(), ids, "resume kept the same thread");
    assert!(requests_of(server, id).len() > first_turn);
    assert_capture_matches(server, data, id, "response.completed", "authorization");
    let last = captured(data)[id.as_str()].last().cloned().unwrap();
    assert!(
        last.record
            .response_body
            .as_str()
            .unwrap()
            .contains("second turn")
    );

    // The key reached the model server, and never the disk.
    assert!(
        server.requests().iter().all(|r| r
            .headers
            .get("authorization")
            .is_some_and(|v| v.contains(CODEX_KEY))),
        "the proxy forwards credentials unchanged"
    );
    assert_absent_everywhere(data, &[CODEX_KEY, CLAUDE_KEY]);
}

#[test]
fn claude_print_run_is_captured_in_the_session_directory() {
    let Some(c) = Capture::start() else { return };
    let (server, env, data) = (&c.server, &c.env, &c.data);
    let out = c.run(
        Agent::Claude,
        Some(&server.url()),
        &[],
        &["-p", "RUN: echo capture-c", "--allowedTools", "Bash"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ECHO"), "claude answered: {stdout}");
    let ids = env.claude_session_ids();
    assert_eq!(ids.len(), 1, "one Claude session: {ids:?}");
    let id = &ids[0];
    assert!(
        requests_of(server, id)
            .iter()
            .filter(|r| r.is_conversation_turn())
            .count()
            >= 2,
        "a tool call and the answer after it"
    );
    assert_capture_matches(server, data, id, "message_stop", "x-api-key");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.headers.get("x-api-key").map(String::as_str) == Some(CLAUDE_KEY)),
        "the proxy forwards credentials unchanged"
    );
    assert_absent_everywhere(data, &[CODEX_KEY, CLAUDE_KEY]);
}

#[test]
fn run_points_the_agent_at_the_proxy_and_returns_its_exit_code() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args([
            "run",
            "claude",
            "--bin",
            "sh",
            "--upstream",
            "http://127.0.0.1:9",
            "--data",
        ])
        .arg(data.path())
        .args(["--", "-c", "printf %s \"$ANTHROPIC_BASE_URL\"; exit 7"])
        .env("BATON_HOME", data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let url = String::from_utf8_lossy(&out.stdout);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_ne!(url, "http://127.0.0.1:9", "the agent talks to the proxy");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no model traffic"), "{stderr}");

    let missing = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["run", "claude", "--bin", "/nonexistent/claude", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--bin"));
}

#[test]
fn persist_session_links_the_transcript_and_writes_the_logs() {
    let Some(c) = Capture::start() else { return };
    let (server, env, data) = (&c.server, &c.env, &c.data);
    let out = c.run(
        Agent::Codex,
        Some(&c.codex_upstream()),
        &["--persist-session", "--debug-log", "debug.log"],
        &["exec", "--skip-git-repo-check", "RUN: echo persist-x"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ECHO"));
    let ids = env.codex_session_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = &ids[0];
    let dir = data.join("sessions").join(id);

    // transcript.jsonl is a link to the agent's own rollout.
    let rollout = env.codex_rollouts().pop().unwrap();
    let link = dir.join("transcript.jsonl");
    assert_eq!(
        std::fs::canonicalize(std::fs::read_link(&link).unwrap()).unwrap(),
        std::fs::canonicalize(&rollout).unwrap()
    );
    assert_eq!(
        std::fs::read(&link).unwrap(),
        std::fs::read(&rollout).unwrap()
    );

    // baton's own lines about the session went to its session.log, one per exchange.
    let log = std::fs::read_to_string(dir.join("session.log")).unwrap();
    let exchanges = requests_of(server, id).len();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("captured POST /v1/responses"))
            .count(),
        exchanges,
        "{log}"
    );

    // The relative debug log landed in the session directory, lines logged
    // before the session was known included.
    let debug = std::fs::read_to_string(dir.join("debug.log")).unwrap();
    assert!(debug.contains("launching"), "{debug}");
    assert!(debug.contains("captured POST /v1/responses"), "{debug}");
    assert!(!data.join("debug.log").exists());
    assert_absent_everywhere(data, &[CODEX_KEY]);
}

/// `baton run claude --bin sh --data <data> -- -c <script>` with no
/// `ANTHROPIC_BASE_URL` of its own.
fn fake_agent(data: &Path, script: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args([
            "run",
            "claude",
            "--bin",
            "sh",
            "--upstream",
            "http://127.0.0.1:9",
            "--data",
        ])
        .arg(data)
        .args(["--", "-c", script])
        .env("BATON_HOME", data)
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("BATON_LOG")
        .output()
        .unwrap()
}

#[test]
fn an_unwritable_data_dir_warns_once_and_keeps_the_agent_exit_code() {
    // A data directory whose parent is a regular file: unusable for every user.
    let scratch = tempfile::tempdir().unwrap();
    let blocker = scratch.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let out = fake_agent(
        &blocker.join("data"),
        "printf %s \"$ANTHROPIC_BASE_URL\"; exit 7",
    );
    assert_eq!(out.status.code(), Some(7), "the agent's exit code, not 1");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "the agent runs against its own upstream"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("warning").count(), 1, "{stderr}");
    assert!(stderr.contains("without capturing"), "{stderr}");

    // The data directory works at the start but a session directory cannot be
    // created: several failed exchanges still give one warning.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("sessions")).unwrap();
    std::fs::write(data.path().join("sessions").join(UNATTRIBUTED), b"").unwrap();
    let out = fake_agent(
        data.path(),
        "for i in 1 2 3; do curl -s -o /dev/null -X POST -d '{}' \"$ANTHROPIC_BASE_URL/v1/messages\"; done; exit 3",
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_data: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(UNATTRIBUTED))
        .collect();
    assert_eq!(about_data.len(), 1, "{stderr}");
    assert!(
        about_data[0].contains("baton: warning: the agent ran, but its traffic could not be saved"),
        "{stderr}"
    );
}
