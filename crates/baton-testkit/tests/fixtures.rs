//! The request helpers and the scripted model checked against the real captured requests in
//! `fixtures/agents-v1/model-requests.jsonl` (lines 0–5 Codex 0.169, 6–7 Codex 0.58, 8–12
//! Claude 2.1.330).

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_testkit::script::{Reply, decide};
use baton_testkit::{RecordedRequest, copy_tree, fixture_requests, fixtures_dir};
use serde_json::json;

fn fixture() -> Vec<RecordedRequest> {
    let reqs = fixture_requests();
    assert_eq!(reqs.len(), 13, "model-requests.jsonl holds 13 requests");
    reqs
}

#[test]
fn fixture_requests_are_classified_and_normalized() {
    let reqs = fixture();
    let apis: Vec<&str> = reqs.iter().map(|r| r.api.as_str()).collect();
    assert_eq!(apis[..8], ["responses"; 8]);
    assert_eq!(apis[8..], ["messages"; 5]);
    assert_eq!(reqs[8].path, "/v1/messages?beta=true");
    // Header names are lower-cased (Claude sends mixed case).
    assert!(reqs[8].headers.contains_key("x-claude-code-session-id"));
    assert!(
        reqs.iter()
            .all(|r| r.headers.keys().all(|k| *k == k.to_lowercase()))
    );
    assert!(reqs.iter().all(RecordedRequest::is_conversation_turn));
    assert!(reqs.iter().all(RecordedRequest::is_stream));
}

#[test]
fn user_texts_of_codex_requests_skip_injected_context() {
    let reqs = fixture();
    assert_eq!(reqs[0].user_texts(), ["pub first prompt alpha"]);
    assert_eq!(reqs[1].user_texts(), ["RUN: echo pub-tool-output-beta"]);
    // The tool follow-up carries no new prompt.
    assert_eq!(reqs[2].user_texts(), ["RUN: echo pub-tool-output-beta"]);
    assert_eq!(
        reqs[3].user_texts(),
        [
            "RUN: echo pub-tool-output-beta",
            "pub second prompt beta ünïcødé ✓"
        ]
    );
    assert_eq!(
        reqs[5].user_texts(),
        [
            "RUN: echo pub-tool-output-beta",
            "pub second prompt beta ünïcødé ✓",
            "pub third prompt beta",
            "pub fork prompt gamma"
        ]
    );
    // Codex 0.58 (legacy): same rules.
    assert_eq!(reqs[6].user_texts(), ["pub legacy prompt delta"]);
    assert_eq!(
        reqs[7].user_texts(),
        ["pub legacy prompt delta", "pub legacy second delta"]
    );
}

#[test]
fn user_texts_of_claude_requests_skip_reminders_and_tool_results() {
    let reqs = fixture();
    assert_eq!(reqs[8].user_texts(), ["pub claude prompt epsilon"]);
    assert_eq!(reqs[9].user_texts(), ["RUN: echo pub-claude-tool-zeta"]);
    assert_eq!(reqs[10].user_texts(), ["RUN: echo pub-claude-tool-zeta"]);
    // After a resume the earlier prompt arrives as a plain string content.
    assert_eq!(
        reqs[11].user_texts(),
        [
            "RUN: echo pub-claude-tool-zeta",
            "pub claude second zeta ünïcødé ✓"
        ]
    );
    assert_eq!(
        reqs[12].user_texts(),
        [
            "RUN: echo pub-claude-tool-zeta",
            "pub claude second zeta ünïcødé ✓",
            "pub claude fork eta"
        ]
    );
}

#[test]
fn session_ids_come_from_the_headers_of_each_cli() {
    let reqs = fixture();
    let ids: Vec<Option<String>> = reqs.iter().map(RecordedRequest::session_id).collect();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(ids[0], s("01a1ff8d-8a8a-7740-8c02-49607e66ddfa"));
    assert_eq!(ids[1], s("01a1ff8d-8c3d-7551-b270-db431e8a8997"));
    assert_eq!(ids[5], s("01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b"));
    // Codex 0.58 sends `session_id` (underscore).
    assert_eq!(ids[6], s("01a1ff8d-92a0-7a03-a86a-e8bbc574818c"));
    assert_eq!(ids[8], s("dcf5c926-1018-40a3-9c1e-6e73eeca4da9"));
    assert_eq!(ids[12], s("f941a4bf-28d9-46f3-adde-1c9978a0988d"));
    // Without headers the body still identifies the session.
    let mut bare = reqs[8].clone();
    bare.headers.clear();
    assert_eq!(bare.session_id(), s("dcf5c926-1018-40a3-9c1e-6e73eeca4da9"));
    let mut bare = reqs[0].clone();
    bare.headers.clear();
    assert_eq!(bare.session_id(), s("01a1ff8d-8a8a-7740-8c02-49607e66ddfa"));
}

#[test]
fn tool_outputs_and_assistant_texts_show_the_replayed_history() {
    let reqs = fixture();
    assert!(reqs[1].tool_outputs().is_empty());
    let out = reqs[2].tool_outputs();
    assert_eq!(out.len(), 1);
    assert!(out[0].ends_with(
        "Output:\npyenv: cannot rehash: /root/.pyenv/shims isn't writable\npub-tool-output-beta\n"
    ));
    assert_eq!(reqs[10].tool_outputs(), ["pub-claude-tool-zeta"]);
    assert_eq!(
        reqs[4].assistant_texts(),
        [
            "ECHO[2]: RUN: echo pub-tool-output-beta",
            "ECHO[3]: pub second prompt beta ünïcødé ✓"
        ]
    );
    assert_eq!(
        reqs[12].assistant_texts(),
        [
            "ECHO[1]: RUN: echo pub-claude-tool-zeta",
            "ECHO[2]: pub claude second zeta ünïcødé ✓"
        ]
    );
}

/// The scripted model answers every fixture request as the model that recorded the fixtures
/// did (ECHO numbering, tool calls and their ids); the one difference is that a tool output the
/// ECHO text does not already contain is appended to it.
#[test]
fn scripted_model_reproduces_the_fixture_replies() {
    let reqs = fixture();
    let text = |t: &str| Reply::Text(t.to_owned());
    let expected = [
        text("ECHO[2]: pub first prompt alpha"),
        Reply::ToolCall {
            name: "exec_command".into(),
            arguments: json!({"cmd": "echo pub-tool-output-beta"}),
        },
        // The fixture machine's shell printed a pyenv warning before the echo output, so the
        // output is not contained in the ECHO text and is appended.
        text(
            "ECHO[2]: RUN: echo pub-tool-output-beta\n\
             pyenv: cannot rehash: /root/.pyenv/shims isn't writable\npub-tool-output-beta",
        ),
        text("ECHO[3]: pub second prompt beta ünïcødé ✓"),
        text("ECHO[4]: pub third prompt beta"),
        text("ECHO[5]: pub fork prompt gamma"),
        text("ECHO[2]: pub legacy prompt delta"),
        text("ECHO[3]: pub legacy second delta"),
        text("ECHO[1]: pub claude prompt epsilon"),
        Reply::ToolCall {
            name: "Bash".into(),
            arguments: json!({"command": "echo pub-claude-tool-zeta", "description": "run it"}),
        },
        text("ECHO[1]: RUN: echo pub-claude-tool-zeta"),
        text("ECHO[2]: pub claude second zeta ünïcødé ✓"),
        text("ECHO[3]: pub claude fork eta"),
    ];
    for (i, (req, want)) in reqs.iter().zip(expected).enumerate() {
        assert_eq!(decide(req), want, "fixture request {i}");
    }
    // The ids the fixtures hold follow the request sequence number (1-based).
    let item = baton_testkit::script::responses_item(&decide(&reqs[1]), 2);
    assert_eq!(item["call_id"], "call_2");
    assert_eq!(item["id"], "fc_2");
}

#[test]
fn legacy_codex_gets_the_shell_tool_and_outputs_are_appended_when_new() {
    let reqs = fixture();
    let mut legacy = reqs[6].clone();
    legacy.body["input"][1]["content"][0]["text"] = json!("RUN: ls /");
    assert_eq!(
        decide(&legacy),
        Reply::ToolCall {
            name: "shell".into(),
            arguments: json!({"command": ["bash", "-lc", "ls /"]}),
        }
    );
    legacy.body["input"].as_array_mut().unwrap().extend([
        json!({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}),
        json!({"type": "function_call_output", "call_id": "c1", "output": "bin\netc"}),
    ]);
    assert_eq!(
        decide(&legacy),
        Reply::Text("ECHO[2]: RUN: ls /\nbin\netc".into())
    );
    // No shell tool offered: a plain echo.
    legacy.body["tools"] = json!([]);
    legacy.body["input"].as_array_mut().unwrap().truncate(2);
    assert_eq!(decide(&legacy), Reply::Text("ECHO[2]: RUN: ls /".into()));
}

#[test]
fn bad_bodies_never_panic() {
    for body in [
        json!(null),
        json!("text"),
        json!({"input": "x"}),
        json!({"messages": [1, {}]}),
    ] {
        for api in ["responses", "messages", "other"] {
            let req = RecordedRequest {
                api: api.into(),
                method: "POST".into(),
                path: "/v1/x".into(),
                headers: Default::default(),
                body: body.clone(),
            };
            assert!(req.user_texts().is_empty());
            assert!(req.tool_outputs().is_empty());
            assert!(req.session_id().is_none());
            let _ = decide(&req);
        }
    }
}

#[test]
fn copy_tree_makes_writable_copies_of_the_read_only_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("copy");
    copy_tree(&fixtures_dir(), &dst).unwrap();
    let rel = "claude/.claude/projects/-srv-corpus-work-pub-alpha/dcf5c926-1018-40a3-9c1e-6e73eeca4da9.jsonl";
    let copied = dst.join(rel);
    assert_eq!(
        std::fs::read(&copied).unwrap(),
        std::fs::read(fixtures_dir().join(rel)).unwrap()
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&copied)
        .unwrap();
    std::fs::write(copied.parent().unwrap().join("new.txt"), "x").unwrap();
    // Copying again over the existing copy works too.
    copy_tree(&fixtures_dir(), &dst).unwrap();
}
