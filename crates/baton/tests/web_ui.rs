//! The web UI in a real browser: `baton serve` on the fixture homes, plus
//! pushed sessions with Markdown, hostile HTML, a 10 MB tool output and
//! 5,000 turns, driven by `web/tests/ui.mjs` (playwright-core + Debian's
//! headless chromium, both installed by `scripts/install-web`): sign-in,
//! list order, filters, search to message, tool calls, Markdown, fork here,
//! share links and revocation, inert hostile content, responsiveness, and
//! screenshots of every view under `target/ui-screenshots/`.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

mod common;

use baton_protocol::{EMPTY_SHA256, HEADER_OFFSET, HEADER_PREFIX_SHA256};
use common::FixtureHomes;
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A word that occurs in a fixture session's tool output.
const TOOL_OUTPUT_WORD: &str = "rehash";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the browser test needs and is missing: `None` when all is there.
fn missing_tools() -> Option<String> {
    let web = workspace().join("web");
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not on PATH".into());
    }
    if !web.join("node_modules/playwright-core").is_dir() {
        return Some("web/node_modules has no playwright-core (run scripts/install-web)".into());
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is missing (run scripts/install-web)".into());
    }
    None
}

/// `baton serve` on the fixture homes; killed when dropped.
struct Serve {
    child: Child,
    base: String,
    token: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &FixtureHomes) -> Serve {
    let home = env.path("baton-home");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("baton"))
        .env("BATON_HOME", &home)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(env.root_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "baton serve exited"
        );
        if let Some(addr) = line.trim().strip_prefix("baton serve: listening on ") {
            break addr.to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let token = std::fs::read_to_string(home.join("server").join(baton_server::LOCAL_TOKEN_FILE))
        .unwrap()
        .trim()
        .to_string();
    Serve { child, base, token }
}

/// One Codex rollout line at second `i` of the day.
fn line(i: usize, payload: Value) -> String {
    let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
    json!({"timestamp": format!("2026-12-01T{h:02}:{m:02}:{s:02}.000Z"), "type": "response_item", "payload": payload})
        .to_string()
        + "\n"
}

fn prompt(i: usize, text: &str) -> String {
    line(
        i,
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}),
    )
}

fn reply(i: usize, text: &str) -> String {
    line(
        i,
        json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}),
    )
}

fn tool(i: usize, call: &str, command: &str, output: &str) -> String {
    line(
        i,
        json!({"type": "function_call", "name": "shell", "call_id": call,
        "arguments": json!({"command": ["bash", "-lc", command]}).to_string()}),
    ) + &line(
        i + 1,
        json!({"type": "function_call_output", "call_id": call, "output": output}),
    )
}

const MARKDOWN: &str = "Here is the summary:\n\n| tool | purpose |\n|---|---|\n| rg | search |\n| fd | find |\n\n```rust\nfn main() {\n    let answer = 42;\n    println!(\"{answer}\");\n}\n```\n";

const HOSTILE: &str = "<script>window.__pwned=1</script>\n\n<img src=x onerror=\"window.__pwned=2\">\n\n[click me](javascript:window.__pwned=3)\n\n<a href=\"javascript:window.__pwned=4\">raw link</a>\n\n<iframe src=\"https://example.com/\"></iframe>\n\n![remote](https://example.com/pixel.png)\n\n<style>body{display:none}</style>\n\n<div onclick=\"window.__pwned=5\">raw html</div>\n\n<svg onload=\"window.__pwned=6\"></svg>\n\n<form action=\"https://example.com\"><button>go</button></form>";

/// The pushed sessions: id and native bytes.
fn pushed() -> Vec<(&'static str, String)> {
    let md = prompt(0, "Summarize the tools as a table, with an example")
        + &reply(1, MARKDOWN)
        + &prompt(2, "Thanks, and **bold**?")
        + &reply(3, "Sure: **bold** and `code`.");
    let xss = prompt(0, HOSTILE)
        + &reply(1, HOSTILE)
        + &tool(
            2,
            "call_x",
            "cat page.html",
            "<script>window.__pwned=1</script><img src=x onerror=alert(1)>",
        );
    let big_output: String = (0..280_000)
        .map(|i| format!("line {i:07} of a very long build log\n"))
        .collect();
    assert!(big_output.len() >= 10 * 1000 * 1000);
    let huge = prompt(0, "Run the build")
        + &tool(1, "call_big", "make", &big_output)
        + &reply(3, "The build printed a lot.");
    let mut long = String::new();
    for i in 0..5000 {
        long += &prompt(2 * i, &format!("Turn {i}: what next?"));
        long += &reply(
            2 * i + 1,
            &format!("Step {i} done. Next we **check** item {i}."),
        );
    }
    vec![
        ("md-session", md),
        ("xss-session", xss),
        ("huge-output", huge),
        ("long-session", long),
    ]
}

async fn push_all(s: &Serve, http: &reqwest::Client) {
    for (id, bytes) in pushed() {
        let url = format!("{}/api/v1/sessions/{id}", s.base);
        let put = http
            .put(&url)
            .bearer_auth(&s.token)
            .json(&json!({"agent": "codex", "cwd": "/srv/ui-test"}));
        assert!(put.send().await.unwrap().status().is_success(), "{id}");
        let res = http
            .post(format!("{url}/streams/main"))
            .bearer_auth(&s.token)
            .header(HEADER_OFFSET, "0")
            .header(HEADER_PREFIX_SHA256, EMPTY_SHA256)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{id}: {}", res.status());
    }
}

async fn get(s: &Serve, http: &reqwest::Client, path: &str) -> Value {
    http.get(format!("{}/api/v1{path}", s.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Wait until the fixture sessions and the pushed ones are indexed.
async fn wait_indexed(s: &Serve, http: &reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = get(s, http, "/sessions?limit=100").await;
        let hits = get(s, http, &format!("/search?q={TOOL_OUTPUT_WORD}")).await;
        let long = get(s, http, "/sessions/long-session").await;
        let listed = list["sessions"].as_array().unwrap();
        let done = listed.len() >= common::manifest().len() + 4
            && listed.iter().all(|s| s["user_turns"] != 0)
            && hits["hits"].as_array().is_some_and(|h| !h.is_empty())
            && long["message_count"] == 10_000;
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "not indexed in time: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_works_in_a_real_browser() {
    if let Some(why) = missing_tools() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: {why}");
        eprintln!("skipping the browser test: {why}");
        return;
    }
    let env = FixtureHomes::new();
    let s = serve(&env);
    let http = reqwest::Client::new();
    push_all(&s, &http).await;
    wait_indexed(&s, &http).await;
    let shots = workspace().join("target/ui-screenshots");
    let status = Command::new("node")
        .arg(workspace().join("web/tests/ui.mjs"))
        .env("BATON_URL", &s.base)
        .env("BATON_TOKEN", &s.token)
        .env("BATON_WORD", TOOL_OUTPUT_WORD)
        .env("BATON_SCREENSHOTS", &shots)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the browser checks failed (see their output above)"
    );
}
