//! Cross-agent continuation, proven with the real pinned CLIs against the
//! scripted model server: a Claude session continued in Codex and a Codex
//! session continued in Claude receive the whole conversation as the target
//! API's own items (prompts, replies, tool call and output, in order), and
//! the continued session converts back and resumes in the original agent.

#![allow(clippy::disallowed_methods)] // tests build their own scratch files

use baton_native::Agent;
use baton_testkit::{AgentEnv, ModelServer, RecordedRequest, agents, run_ok};
use serde_json::Value;
use std::path::Path;

mod common;

use common::{agent_baton as baton, last_turn, record_session, run_json};

/// Injected text the target CLI adds to user messages (not typed).
fn injected(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('<') || t.starts_with("Caveat:") || t.starts_with("# AGENTS.md")
}

/// The conversation a model request carries, as a sequence of
/// `U:<typed text>`, `A` (assistant text), `C:<tool name>` and `O:<output>`,
/// read from the Responses API `input` items or the Messages API blocks.
fn conversation(req: &RecordedRequest) -> Vec<String> {
    let mut seq = Vec::new();
    let text_of = |v: &Value| -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    };
    if req.api == "responses" {
        for item in req.body["input"].as_array().into_iter().flatten() {
            match (item["type"].as_str(), item["role"].as_str()) {
                (Some("message") | None, Some("user")) => {
                    for part in item["content"].as_array().into_iter().flatten() {
                        let t = part["text"].as_str().unwrap_or_default();
                        if !injected(t) {
                            seq.push(format!("U:{t}"));
                        }
                    }
                }
                (Some("message") | None, Some("assistant")) => seq.push("A".into()),
                (Some("function_call" | "custom_tool_call"), _) => {
                    seq.push(format!("C:{}", item["name"].as_str().unwrap_or_default()));
                }
                (Some("function_call_output" | "custom_tool_call_output"), _) => {
                    seq.push(format!("O:{}", text_of(&item["output"])));
                }
                _ => {}
            }
        }
    } else {
        for msg in req.body["messages"].as_array().into_iter().flatten() {
            let blocks = match &msg["content"] {
                Value::String(s) => vec![serde_json::json!({"type": "text", "text": s})],
                Value::Array(b) => b.clone(),
                _ => Vec::new(),
            };
            for b in blocks {
                match (msg["role"].as_str(), b["type"].as_str()) {
                    (Some("user"), Some("text")) => {
                        let t = b["text"].as_str().unwrap_or_default();
                        if !injected(t) {
                            seq.push(format!("U:{t}"));
                        }
                    }
                    (Some("user"), Some("tool_result")) => {
                        seq.push(format!("O:{}", text_of(&b["content"])));
                    }
                    (Some("assistant"), Some("text")) => seq.push("A".into()),
                    (Some("assistant"), Some("tool_use")) => {
                        seq.push(format!("C:{}", b["name"].as_str().unwrap_or_default()));
                    }
                    _ => {}
                }
            }
        }
    }
    seq
}

/// The expected conversation of `prompts` (a `RUN: echo X` prompt is a
/// shell call named `tools.0` whose output contains X, a `PATCH:` prompt a
/// file tool call named `tools.1`) with the scripted replies, the new
/// prompt last.
fn assert_conversation(req: &RecordedRequest, prompts: &[&str], tools: (&str, &str), new: &str) {
    let seq = conversation(req);
    let mut want: Vec<String> = Vec::new();
    for p in prompts {
        want.push(format!("U:{p}"));
        if p.starts_with("RUN: ") {
            want.push(format!("C:{}", tools.0));
            want.push("O".into());
        }
        if p.starts_with("PATCH: ") {
            want.push(format!("C:{}", tools.1));
            want.push("O".into());
        }
        want.push("A".into());
    }
    want.push(format!("U:{new}"));
    let shape: Vec<String> = seq
        .iter()
        .map(|s| {
            if s.starts_with("O:") {
                "O".into()
            } else {
                s.clone()
            }
        })
        .collect();
    assert_eq!(shape, want, "conversation sent to the model: {seq:#?}");
    for p in prompts {
        if let Some(out) = p.strip_prefix("RUN: echo ") {
            assert!(
                seq.iter().any(|s| s.starts_with("O:") && s.contains(out)),
                "tool output {out:?} missing: {seq:#?}"
            );
        }
    }
    // Every earlier reply is the scripted answer to its own prompt.
    let replies = req.assistant_texts();
    assert_eq!(replies.len(), prompts.len(), "{replies:?}");
    for (reply, prompt) in replies.iter().zip(prompts) {
        assert!(
            reply.contains(&format!("]: {prompt}")),
            "{reply:?} vs {prompt:?}"
        );
    }
}

fn sha(path: &Path) -> String {
    baton_store::sha256_hex(&std::fs::read(path).unwrap())
}

fn listed(rows: &Value, id: &str) -> Value {
    rows["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {rows}"))
        .clone()
}

/// Record a `from` session of `prompts` (three, or four with a Codex
/// `apply_patch`) with a shell call, continue it in the other agent with a
/// new prompt, convert that back and continue it in `from` with the whole
/// joint history.
fn continue_in_the_other_agent(from: Agent, prompts: &[&str]) {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let bhome = env.dir("baton");
    let id = record_session(from, &env, &agents, &project, prompts);
    let source = match from {
        Agent::Codex => env.codex_rollout(&id),
        Agent::Claude => env.claude_transcript(&id),
    }
    .unwrap();
    let source_hash = sha(&source);
    // Tool names as the target offers them (shell, then file tool).
    let (to, to_tools, from_tools) = match from {
        Agent::Claude => (
            Agent::Codex,
            ("exec_command", "apply_patch"),
            ("Bash", "Write"),
        ),
        Agent::Codex => (
            Agent::Claude,
            ("Bash", "Write"),
            ("exec_command", "apply_patch"),
        ),
    };
    let b = || baton(&env, &agents, &bhome, &project);

    // Convert, then resume the conversion in the other agent.
    let out = run_json(b().args(["convert", &id, "--to", to.as_str(), "--json"]));
    let conv = out["id"].as_str().unwrap().to_string();
    assert_eq!(out["agent"], to.as_str());
    assert_eq!(out["converted_from"]["agent"], from.as_str());
    assert_eq!(out["converted_from"]["id"], id.as_str());
    assert!(out["dropped"].is_array());
    server.clear();
    run_ok(b().args(["resume", &conv, "--prompt", "fourth delta"]));
    let req = last_turn(&server);
    assert_eq!(
        req.api,
        match to {
            Agent::Codex => "responses",
            Agent::Claude => "messages",
        }
    );
    assert_conversation(&req, prompts, to_tools, "fourth delta");
    assert_eq!(req.session_id().as_deref(), Some(conv.as_str()));

    // Lineage both ways, in list and show.
    let rows = run_json(b().args(["list", "--json"]));
    let row = listed(&rows, &conv);
    assert_eq!(row["converted_from"]["id"], id.as_str());
    assert_eq!(row["converted_from"]["agent"], from.as_str());
    let src_row = listed(&rows, &id);
    assert_eq!(src_row["converted_to"][0]["id"], conv.as_str());
    let shown = run_json(b().args(["show", &conv, "--json"]));
    assert_eq!(shown["session"]["converted_from"]["id"], id.as_str());
    // Search: text the conversion copied is the source's.
    let hits = run_json(b().args(["search", "first alpha", "--json"]));
    let owners: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["session_id"].as_str())
        .collect();
    assert!(owners.contains(&id.as_str()), "{hits}");
    assert!(
        !owners.contains(&conv.as_str()),
        "copied text credited to the source: {hits}"
    );
    // Likewise a tool output longer than the catalog keeps (read back from
    // the native line when shown).
    let hits = run_json(b().args(["search", "out 149", "--json"]));
    let owners: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["session_id"].as_str())
        .collect();
    assert!(
        !owners.is_empty() && owners.iter().all(|o| *o == id),
        "a long copied output credited to the source only: {hits}"
    );

    // Back in the original agent, with the joint history.
    server.clear();
    run_ok(b().args([
        "resume",
        &conv,
        "--in",
        from.as_str(),
        "--prompt",
        "fifth epsilon",
    ]));
    let req = last_turn(&server);
    let joint = [prompts, &["fourth delta"]].concat();
    assert_conversation(&req, &joint, from_tools, "fifth epsilon");
    let back = req.session_id().expect("a session id");
    assert_ne!(back, id, "a new session, not the original");
    let rows = run_json(b().args(["list", "--json"]));
    let row = listed(&rows, &back);
    assert_eq!(row["converted_from"]["id"], conv.as_str());

    // A conversion of a fork, and a fork of a conversion.
    let fork = run_json(b().args(["fork", &conv, "--json"]));
    let fork_id = fork["id"].as_str().unwrap().to_string();
    let conv_of_fork = run_json(b().args(["convert", &fork_id, "--to", from.as_str(), "--json"]));
    let cof = conv_of_fork["id"].as_str().unwrap().to_string();
    let rows = run_json(b().args(["list", "--json"]));
    let fork_row = listed(&rows, &fork_id);
    assert_eq!(fork_row["forked_from"], conv.as_str());
    assert_eq!(fork_row["converted_from"], Value::Null);
    let cof_row = listed(&rows, &cof);
    assert_eq!(cof_row["converted_from"]["id"], fork_id.as_str());
    assert_eq!(cof_row["forked_from"], Value::Null);
    assert_eq!(listed(&rows, &conv)["forked_from"], Value::Null);

    // Resuming with --in again reuses the same conversion of unchanged bytes.
    let printed = run_json(b().args(["resume", &cof, "--in", to.as_str(), "--print", "--json"]));
    let again = run_json(b().args(["resume", &cof, "--in", to.as_str(), "--print", "--json"]));
    assert_eq!(printed["session_id"], again["session_id"]);

    assert_eq!(sha(&source), source_hash, "the source was never modified");
}

#[test]
fn claude_session_continues_in_codex_and_back() {
    continue_in_the_other_agent(
        Agent::Claude,
        &[
            "first alpha",
            "RUN: seq -f conv-tool-out-%g 1 150",
            "third gamma",
        ],
    );
}

#[test]
fn codex_session_continues_in_claude_and_back() {
    continue_in_the_other_agent(
        Agent::Codex,
        &[
            "first alpha",
            "RUN: seq -f conv-tool-out-%g 1 150",
            "PATCH: notes.txt patched-line",
            "third gamma",
        ],
    );
}
