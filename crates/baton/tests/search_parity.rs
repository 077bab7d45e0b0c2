//! One search policy (`baton-search`) for the catalog and the server:
//! `baton search Q --json` and `GET /api/v1/search?q=Q` over the same
//! sessions (the fixture homes, mirrored into the server's `local` account)
//! find the same sessions; the server's view of a Codex fork shows the
//! turns, title and history of `baton show`; and a word repeated through a
//! 10 MB message is answered by both without FTS5's quadratic snippets.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;

use common::{FixtureHomes, assert_json};

/// A word only in a tool output.
const TOOL_WORD: &str = "zqtooloutputonly";
/// A word only in a reasoning summary.
const REASONING_WORD: &str = "zqreasoningonly";
/// The Codex session the lines below are appended to.
const ALPHA: &str = "01a1ff8d-8a8a-7740-8c02-49607e66ddfa";
/// The Codex paginated fork of the fixtures.
const CODEX_FORK: &str = "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b";

/// The fixture homes, with `lines` appended to the alpha rollout.
fn homes(lines: &[String]) -> FixtureHomes {
    let env = FixtureHomes::new();
    let dir = env.path("codex/sessions/2026/11/21");
    let rollout = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(ALPHA))
        .unwrap();
    let mut bytes = std::fs::read(&rollout).unwrap();
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    std::fs::write(&rollout, bytes).unwrap();
    env
}

/// A Codex rollout line of `payload` at `second` past 19:25.
fn line(second: u32, payload: Value) -> String {
    serde_json::json!({
        "timestamp": format!("2026-11-21T19:25:{second:02}.000Z"),
        "type": "response_item",
        "payload": payload,
    })
    .to_string()
}

fn codex_homes(env: &FixtureHomes) -> Vec<PathBuf> {
    vec![env.path("codex"), env.path("codex-legacy")]
}

fn claude_dir(env: &FixtureHomes) -> PathBuf {
    env.path("claude/.claude")
}

/// `baton ARGS --json` over the homes of `env`.
fn baton(env: &FixtureHomes, args: &[&str]) -> Value {
    let mut cmd = Command::cargo_bin("baton").unwrap();
    cmd.env("BATON_HOME", env.path("baton-home"))
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--json");
    for home in codex_homes(env) {
        cmd.arg("--codex-home").arg(home);
    }
    cmd.arg("--claude-dir").arg(claude_dir(env));
    assert_json(&mut cmd)
}

/// Session ids of `baton search Q --json`.
fn cli_search(env: &FixtureHomes, q: &str) -> BTreeSet<String> {
    let out = baton(env, &["search", q, "--limit", "1000"]);
    ids(&out["hits"], "/session_id")
}

fn ids(hits: &Value, pointer: &str) -> BTreeSet<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h.pointer(pointer).unwrap().as_str().unwrap().to_string())
        .collect()
}

/// A server mirroring the homes of `env` into its `local` account.
struct Server {
    _data: tempfile::TempDir,
    base: String,
    token: String,
    http: reqwest::Client,
    _server: baton_server::RunningServer,
}

impl Server {
    /// Start it and wait until it has indexed all `sessions` of the homes.
    async fn start(env: &FixtureHomes, sessions: usize) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut cfg = baton_server::ServerConfig::new(data.path().to_path_buf());
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        cfg.local = Some(baton_server::local::LocalSources {
            codex_homes: codex_homes(env),
            claude_dirs: vec![claude_dir(env)],
        });
        let server = baton_server::start(cfg).await.unwrap();
        let s = Server {
            base: format!("http://{}/api/v1", server.addr),
            token: server.local_token.clone(),
            http: reqwest::Client::new(),
            _server: server,
            _data: data,
        };
        // The indexer writes a session's texts and its turn count together.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = s.get("/sessions?limit=100").await;
            let listed = list["sessions"].as_array().unwrap();
            if listed.len() == sessions && listed.iter().all(|s| s["user_turns"] != 0) {
                return s;
            }
            assert!(Instant::now() < deadline, "not indexed in time: {list}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Session ids of `GET /search?q=Q`.
    async fn search(&self, q: &str) -> BTreeSet<String> {
        let mut url = reqwest::Url::parse(&format!("{}/search", self.base)).unwrap();
        url.query_pairs_mut()
            .append_pair("q", q)
            .append_pair("limit", "100");
        let out = self.get(&url.as_str()[self.base.len()..]).await;
        ids(&out["hits"], "/session/id")
    }
}

fn appended_lines() -> Vec<String> {
    vec![
        line(
            0,
            serde_json::json!({"type": "reasoning", "summary": [
                {"type": "summary_text", "text": format!("thinking about {REASONING_WORD}")}]}),
        ),
        line(
            1,
            serde_json::json!({"type": "function_call", "name": "shell", "call_id": "call_zq",
                "arguments": "{\"command\":[\"ls\"]}"}),
        ),
        line(
            2,
            serde_json::json!({"type": "function_call_output", "call_id": "call_zq",
                "output": format!("notes-{TOOL_WORD}.txt")}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_and_server_find_the_same_sessions() {
    let env = homes(&appended_lines());
    let shown = baton(&env, &["show", ALPHA]);
    let reasoning = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"].as_str().unwrap().contains(REASONING_WORD))
        .expect("the reasoning summary is part of the session");
    assert_eq!(reasoning["kind"], "other");
    let sessions = baton(&env, &["list", "--limit", "100"])["sessions"]
        .as_array()
        .unwrap()
        .len();
    let server = Server::start(&env, sessions).await;

    let only_alpha = BTreeSet::from([ALPHA.to_string()]);
    assert_eq!(cli_search(&env, TOOL_WORD), only_alpha, "tool output");
    // Reasoning is not searchable (the policy's decision), on both sides.
    assert!(cli_search(&env, REASONING_WORD).is_empty());
    for q in [
        TOOL_WORD,
        REASONING_WORD,
        "pub",
        "beta",
        "pub-tool-output-beta",
        "pub-claude-tool-zeta",
        "gamma",
        "unicode",
        "ECHO[2]",
        "prom*",
    ] {
        assert_eq!(cli_search(&env, q), server.search(q).await, "query {q:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_shows_a_codex_fork_as_baton_show_does() {
    let env = homes(&[]);
    let shown = baton(&env, &["show", CODEX_FORK]);
    let sessions = baton(&env, &["list", "--limit", "100"])["sessions"]
        .as_array()
        .unwrap()
        .len();
    let server = Server::start(&env, sessions).await;
    let view = server
        .get(&format!("/sessions/{CODEX_FORK}/messages?limit=5000"))
        .await;
    let (cli, web) = (&shown["session"], &view["session"]);
    assert_eq!(cli["user_turns"], 4, "{cli}");
    for field in ["title", "first_prompt", "user_turns", "message_count"] {
        assert_eq!(cli[field], web[field], "{field}");
    }
    let history = |messages: &Value| -> Vec<Value> {
        messages
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                serde_json::json!([
                    m["role"],
                    m["kind"],
                    m["text"],
                    m["tool_name"],
                    m["call_id"]
                ])
            })
            .collect()
    };
    assert_eq!(history(&shown["messages"]), history(&view["messages"]));
    // Paging through the inherited part gives the same messages.
    let first = server
        .get(&format!("/sessions/{CODEX_FORK}/messages?limit=3"))
        .await;
    let rest = server
        .get(&format!(
            "/sessions/{CODEX_FORK}/messages?offset=3&limit=5000"
        ))
        .await;
    let mut paged = history(&first["messages"]);
    paged.extend(history(&rest["messages"]));
    assert_eq!(paged, history(&view["messages"]));
}

/// A word repeated through one 10 MB tool output: with FTS5 `snippet()` a
/// 1 MiB message took 93 s, so 10 s in a debug build is generous for a
/// linear snippet and still catches the quadratic one. (The figures are
/// measured by `cargo bench -p baton-store --bench search_snippet`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_repeated_through_a_10_mb_message_is_answered_by_both() {
    let env = homes(&[line(
        3,
        serde_json::json!({"type": "function_call_output", "call_id": "call_big",
            "output": "repeated ".repeat(1_200_000)}),
    )]);
    let bound = Duration::from_secs(10);
    // Index first: the bound is about the query.
    baton(&env, &["index"]);
    let t = Instant::now();
    assert_eq!(
        cli_search(&env, "repeated"),
        BTreeSet::from([ALPHA.to_string()])
    );
    let cli = t.elapsed();
    assert!(cli < bound, "baton search took {cli:?}");
    let sessions = baton(&env, &["list", "--limit", "100"])["sessions"]
        .as_array()
        .unwrap()
        .len();
    let server = Server::start(&env, sessions).await;
    let t = Instant::now();
    let hits = server.get("/search?q=repeated").await;
    let took = t.elapsed();
    assert!(took < bound, "GET /search took {took:?}");
    let snippet = hits["hits"][0]["snippet"].as_str().unwrap();
    assert!(snippet.starts_with("«repeated» «repeated»"), "{snippet}");
}
