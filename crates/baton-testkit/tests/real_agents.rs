//! Drives the pinned real `codex` and `claude` binaries against the scripted model server.

use std::path::Path;

use baton_testkit::{AgentEnv, ModelServer, RecordedRequest, agents, run_ok};
use serde_json::Value;

/// Every JSON line of a transcript (bad lines skipped).
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Short listing of requests for failure messages.
fn summary(reqs: &[RecordedRequest]) -> String {
    reqs.iter()
        .map(|r| {
            format!(
                "{} {} {} stream={} users={:?}",
                r.api,
                r.method,
                r.path,
                r.is_stream(),
                r.user_texts()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn codex_exec_then_resume_against_scripted_model() {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");

    let first = run_ok(env.codex(&agents, &project).args([
        "exec",
        "--skip-git-repo-check",
        "RUN: echo hi-codex",
    ]));
    let ids = env.codex_session_ids();
    assert_eq!(ids.len(), 1, "one rollout after the first run: {ids:?}");
    let id = ids[0].clone();
    let rollout = env.codex_rollout(&id).expect("rollout file");
    assert!(rollout.starts_with(env.codex_home.join("sessions")));
    let turns = server.turn_requests();
    eprintln!("{}", summary(&server.requests()));
    assert_eq!(
        turns.len(),
        2,
        "tool call + follow-up:\n{}",
        summary(&turns)
    );
    assert!(
        turns
            .iter()
            .all(|r| r.session_id().as_deref() == Some(id.as_str()))
    );
    assert_eq!(turns[0].user_texts(), ["RUN: echo hi-codex"]);
    assert!(turns[0].tool_outputs().is_empty());
    let outputs = turns[1].tool_outputs();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(
        outputs[0].contains("hi-codex"),
        "tool output reached the model: {outputs:?}"
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("ECHO[2]: RUN: echo hi-codex"),
        "final reply printed: {stdout}"
    );

    server.clear();
    run_ok(env.codex(&agents, &project).args([
        "exec",
        "--skip-git-repo-check",
        "resume",
        &id,
        "second",
    ]));
    assert_eq!(
        env.codex_session_ids(),
        [id.as_str()],
        "resume appends to the same thread"
    );
    let turns = server.turn_requests();
    assert_eq!(turns.len(), 1, "{}", summary(&turns));
    let resumed = &turns[0];
    assert_eq!(resumed.session_id().as_deref(), Some(id.as_str()));
    assert_eq!(resumed.user_texts(), ["RUN: echo hi-codex", "second"]);
    assert!(
        resumed
            .tool_outputs()
            .iter()
            .any(|o| o.contains("hi-codex"))
    );
    assert_eq!(resumed.assistant_texts(), ["ECHO[2]: RUN: echo hi-codex"]);

    let records = lines(&rollout);
    let assistant_texts: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "response_item" && r["payload"]["role"] == "assistant")
        .filter_map(|r| r["payload"]["content"][0]["text"].as_str())
        .collect();
    assert_eq!(
        assistant_texts,
        ["ECHO[2]: RUN: echo hi-codex", "ECHO[3]: second"]
    );
    assert!(
        records
            .iter()
            .any(|r| r["payload"]["type"] == "function_call_output"
                && r["payload"]["output"]
                    .as_str()
                    .unwrap_or("")
                    .contains("hi-codex")),
        "the rollout keeps the tool output"
    );
}

#[test]
fn claude_print_then_resume_against_scripted_model() {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");

    let first = run_ok(env.claude(&agents, &project).args([
        "-p",
        "RUN: echo hi-claude",
        "--allowedTools",
        "Bash",
    ]));
    eprintln!("{}", summary(&server.requests()));
    let ids = env.claude_session_ids();
    assert_eq!(ids.len(), 1, "one transcript after the first run: {ids:?}");
    let id = ids[0].clone();
    let transcript = env.claude_transcript(&id).expect("transcript");
    assert!(transcript.starts_with(env.claude_dir.join("projects")));
    let turns = server.turn_requests();
    assert_eq!(
        turns.len(),
        2,
        "tool call + follow-up:\n{}",
        summary(&turns)
    );
    assert!(
        turns
            .iter()
            .all(|r| r.session_id().as_deref() == Some(id.as_str()))
    );
    assert_eq!(turns[0].user_texts(), ["RUN: echo hi-claude"]);
    let outputs = turns[1].tool_outputs();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(
        outputs[0].contains("hi-claude"),
        "tool output reached the model: {outputs:?}"
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("ECHO[1]: RUN: echo hi-claude"),
        "final reply printed: {stdout}"
    );

    server.clear();
    run_ok(
        env.claude(&agents, &project)
            .args(["-p", "--resume", &id, "second"]),
    );
    eprintln!("{}", summary(&server.requests()));
    assert_eq!(
        env.claude_session_ids(),
        [id.as_str()],
        "resume appends to the same session"
    );
    let turns = server.turn_requests();
    assert_eq!(turns.len(), 1, "{}", summary(&turns));
    let resumed = &turns[0];
    assert_eq!(resumed.session_id().as_deref(), Some(id.as_str()));
    assert_eq!(resumed.user_texts(), ["RUN: echo hi-claude", "second"]);
    assert!(
        resumed
            .tool_outputs()
            .iter()
            .any(|o| o.contains("hi-claude"))
    );

    let records = lines(&transcript);
    let assistant_texts: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "assistant")
        .flat_map(|r| {
            r["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str().map(str::to_owned))
        .map(|s| Box::leak(s.into_boxed_str()) as &str)
        .collect();
    assert_eq!(
        assistant_texts,
        ["ECHO[1]: RUN: echo hi-claude", "ECHO[2]: second"]
    );
}
