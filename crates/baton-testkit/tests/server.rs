//! The scripted model server over plain HTTP/1.1: recording, SSE shapes, side endpoints.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use std::io::{Read, Write};
use std::net::TcpStream;

use baton_testkit::{AgentEnv, ModelServer, fixture_requests};
use serde_json::{Value, json};

/// Send one request and return (status, headers, body).
fn http(
    server: &ModelServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_owned())
}

/// The `data:` payloads of an SSE body (the body is not chunked: axum sends a fixed length).
/// POST `body` to `path`: a 200 event stream; its events and their types.
fn post_stream(
    server: &ModelServer,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (Vec<Value>, Vec<String>) {
    let (status, head, body) = http(server, "POST", path, headers, &body.to_string());
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let events = sse_events(&body);
    let kinds = events
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect();
    (events, kinds)
}

fn sse_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn records_every_request_in_order_with_lowercase_headers() {
    let server = ModelServer::start();
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert!(!server.url().ends_with('/'));
    let body =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, text) = http(
        &server,
        "POST",
        "/v1/messages?beta=true",
        &[
            ("X-Claude-Code-Session-Id", "abc"),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    );
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["content"][0]["text"], "ECHO[1]: hi");
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(reply["id"], "msg_1");

    let (status, _, _) = http(&server, "GET", "/v1/nothing-here", &[], "");
    assert_eq!(status, 404);
    let (status, _, text) = http(&server, "POST", "/v1/messages/count_tokens", &[], "{}");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["input_tokens"],
        10
    );
    let (status, _, _) = http(&server, "HEAD", "/api/hello", &[], "");
    assert_eq!(status, 200);

    let reqs = server.requests();
    let seen: Vec<(&str, &str, &str)> = reqs
        .iter()
        .map(|r| (r.api.as_str(), r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("messages", "POST", "/v1/messages?beta=true"),
            ("other", "GET", "/v1/nothing-here"),
            ("other", "POST", "/v1/messages/count_tokens"),
            ("other", "HEAD", "/api/hello"),
        ]
    );
    assert_eq!(reqs[0].headers["x-claude-code-session-id"], "abc");
    assert_eq!(reqs[0].session_id().as_deref(), Some("abc"));
    assert_eq!(reqs[0].body, body);
    assert_eq!(reqs[0].user_texts(), ["hi"]);
    // No tools offered: a side request, not a conversation turn.
    assert!(server.turn_requests().is_empty());

    server.clear();
    assert!(server.requests().is_empty());
    // Ids keep counting after clear.
    let (_, _, text) = http(&server, "POST", "/v1/messages", &[], &body.to_string());
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["id"], "msg_5");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn responses_stream_matches_what_codex_parses() {
    let server = ModelServer::start();
    let fixture = fixture_requests();
    // Fixture line 1: a Codex 0.169 turn `RUN: echo …` offering `exec_command`.
    let (events, kinds) = post_stream(
        &server,
        "/v1/responses",
        &[("content-type", "application/json")],
        &fixture[1].body,
    );
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let call = &events[3]["item"];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "exec_command");
    assert_eq!(call["call_id"], "call_1");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"cmd": "echo pub-tool-output-beta"}));
    assert_eq!(events[4]["response"]["usage"]["total_tokens"], 15);

    // Fixture line 2: the follow-up with the tool output gets the text reply.
    let (_, _, body) = http(
        &server,
        "POST",
        "/v1/responses",
        &[],
        &fixture[2].body.to_string(),
    );
    let events = sse_events(&body);
    let done = events
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .unwrap();
    assert_eq!(done["item"]["role"], "assistant");
    let text = done["item"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("ECHO[2]: RUN: echo pub-tool-output-beta\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\npub-tool-output-beta"),
        "the tool output is in the reply: {text}"
    );
    let delta = events
        .iter()
        .find(|e| e["type"] == "response.output_text.delta")
        .unwrap();
    assert_eq!(delta["delta"], done["item"]["content"][0]["text"]);
}

#[test]
fn messages_stream_matches_what_claude_parses() {
    let server = ModelServer::start();
    let fixture = fixture_requests();
    // Fixture line 9: a Claude turn `RUN: echo …` offering `Bash`.
    let (events, kinds) = post_stream(&server, "/v1/messages?beta=true", &[], &fixture[9].body);
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[0]["message"]["model"], "claude-opus-5-5");
    assert_eq!(events[1]["content_block"]["type"], "tool_use");
    assert_eq!(events[1]["content_block"]["name"], "Bash");
    assert_eq!(events[1]["content_block"]["id"], "toolu_1");
    let input: Value =
        serde_json::from_str(events[2]["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(input["command"], "echo pub-claude-tool-zeta");
    assert_eq!(events[4]["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[4]["usage"]["output_tokens"], 5);

    let (_, _, body) = http(
        &server,
        "POST",
        "/v1/messages",
        &[],
        &fixture[12].body.to_string(),
    );
    let events = sse_events(&body);
    assert_eq!(events[2]["delta"]["text"], "ECHO[3]: pub claude fork eta");
    assert_eq!(events[4]["delta"]["stop_reason"], "end_turn");
}

#[test]
fn malformed_bodies_get_a_400_and_are_still_recorded() {
    let server = ModelServer::start();
    let (status, _, body) = http(&server, "POST", "/v1/responses", &[], "not json");
    assert_eq!(status, 400);
    assert!(body.contains("invalid_request_error"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body, Value::String("not json".into()));
    assert!(reqs[0].user_texts().is_empty());
}

#[test]
fn dropping_the_server_frees_the_port() {
    let server = ModelServer::start();
    let port = server.port();
    drop(server);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn agent_env_writes_codex_config_and_scrubs_the_environment() {
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let config = std::fs::read_to_string(env.codex_home.join("config.toml")).unwrap();
    assert!(config.contains(&format!("base_url = \"{}/v1\"", server.url())));
    env.point_codex_at("http://127.0.0.1:9/");
    let config = std::fs::read_to_string(env.codex_home.join("config.toml")).unwrap();
    assert!(config.contains("base_url = \"http://127.0.0.1:9/v1\""));

    let agents = baton_testkit::Agents {
        codex: "/bin/true".into(),
        claude: "/bin/true".into(),
    };
    let cmd = env.claude(&agents, &env.root);
    let vars: std::collections::BTreeMap<String, Option<String>> = cmd
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map(|v| v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    assert_eq!(
        vars["ANTHROPIC_BASE_URL"].as_deref(),
        Some(server.url().as_str())
    );
    assert_eq!(
        vars["CLAUDE_CONFIG_DIR"].as_deref(),
        Some(env.claude_dir.to_str().unwrap())
    );
    assert_eq!(vars["ANTHROPIC_API_KEY"].as_deref(), Some("baton-test-key"));
    env.point_claude_at("http://127.0.0.1:9/");
    let cmd = env.claude(&agents, &env.root);
    assert!(
        cmd.get_envs()
            .any(|(k, v)| k == "ANTHROPIC_BASE_URL" && v == Some("http://127.0.0.1:9".as_ref()))
    );
    let cmd = env.codex(&agents, &env.root);
    assert!(
        cmd.get_envs()
            .any(|(k, v)| k == "CODEX_HOME" && v == Some(env.codex_home.as_os_str()))
    );
    // env_clear: the real process environment does not leak through.
    let print_env = baton_testkit::Agents {
        codex: "/usr/bin/env".into(),
        claude: "/usr/bin/env".into(),
    };
    let out = baton_testkit::run_ok(&mut env.codex(&print_env, &env.root));
    let printed = String::from_utf8_lossy(&out.stdout);
    // Cargo sets CARGO_PKG_NAME for the test process; the agent must not see it.
    assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
    assert!(!printed.contains("CARGO_PKG_NAME"), "{printed}");
    assert!(
        printed.contains("BATON_TEST_MODEL_KEY=baton-test-key"),
        "{printed}"
    );
    assert!(printed.contains(&format!("HOME={}", env.home.display())));
}

#[test]
fn session_ids_are_read_from_file_names_newest_last() {
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let day = env.codex_home.join("sessions/2026/11/21");
    std::fs::create_dir_all(&day).unwrap();
    let older = "01a1ff8d-8a8a-7740-8c02-49607e66ddfa";
    let newer = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    std::fs::write(
        day.join(format!("rollout-2026-11-21T19-20-28-{newer}.jsonl")),
        "{}\n",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(
        day.join(format!("rollout-2026-11-21T19-20-29-{older}.jsonl")),
        "{}\n",
    )
    .unwrap();
    std::fs::write(day.join("notes.txt"), "x").unwrap();
    assert_eq!(env.codex_session_ids(), [newer, older]);
    assert!(env.codex_rollout(older).is_some());
    assert!(env.codex_rollout("nope").is_none());

    let project = env.claude_dir.join("projects/-tmp-x");
    std::fs::create_dir_all(project.join("memory")).unwrap();
    let id = "dcf5c926-1018-40a3-9c1e-6e73eeca4da9";
    std::fs::write(project.join(format!("{id}.jsonl")), "{}\n").unwrap();
    std::fs::write(project.join("not-a-uuid.jsonl"), "{}\n").unwrap();
    assert_eq!(env.claude_session_ids(), [id]);
    assert_eq!(
        env.claude_transcript(id),
        Some(project.join(format!("{id}.jsonl")))
    );
}
