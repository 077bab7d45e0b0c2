//! Drives the pinned real `codex` and `claude` binaries against the scripted model server.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use std::path::Path;

use baton_native::Agent;
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

/// Run `RUN: echo hi-<agent>` with the real `agent` CLI, then resume the
/// session with `second`: both runs talk to the scripted model with the
/// session's id, the tool output reaches the model, and the resume appends
/// to the same transcript.
fn run_then_resume_against_scripted_model(agent: Agent) {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let tag = format!("hi-{}", agent.as_str());
    let prompt = format!("RUN: echo {tag}");
    let session_ids = || match agent {
        Agent::Codex => env.codex_session_ids(),
        Agent::Claude => env.claude_session_ids(),
    };
    // The scripted replies of a Codex session are numbered one higher than
    // those of a Claude session.
    let reply = |n: usize, text: &str| {
        let n = match agent {
            Agent::Codex => n + 1,
            Agent::Claude => n,
        };
        format!("ECHO[{n}]: {text}")
    };

    let first = match agent {
        Agent::Codex => {
            run_ok(
                env.codex(&agents, &project)
                    .args(["exec", "--skip-git-repo-check", &prompt]),
            )
        }
        Agent::Claude => {
            run_ok(
                env.claude(&agents, &project)
                    .args(["-p", &prompt, "--allowedTools", "Bash"]),
            )
        }
    };
    eprintln!("{}", summary(&server.requests()));
    let ids = session_ids();
    assert_eq!(ids.len(), 1, "one transcript after the first run: {ids:?}");
    let id = ids[0].clone();
    let transcript = match agent {
        Agent::Codex => env.codex_rollout(&id).expect("rollout file"),
        Agent::Claude => env.claude_transcript(&id).expect("transcript"),
    };
    assert!(transcript.starts_with(match agent {
        Agent::Codex => env.codex_home.join("sessions"),
        Agent::Claude => env.claude_dir.join("projects"),
    }));
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
    assert_eq!(turns[0].user_texts(), [prompt.as_str()]);
    if agent == Agent::Codex {
        assert!(turns[0].tool_outputs().is_empty());
    }
    let outputs = turns[1].tool_outputs();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(
        outputs[0].contains(&tag),
        "tool output reached the model: {outputs:?}"
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains(&reply(1, &prompt)),
        "final reply printed: {stdout}"
    );

    server.clear();
    match agent {
        Agent::Codex => run_ok(env.codex(&agents, &project).args([
            "exec",
            "--skip-git-repo-check",
            "resume",
            &id,
            "second",
        ])),
        Agent::Claude => run_ok(
            env.claude(&agents, &project)
                .args(["-p", "--resume", &id, "second"]),
        ),
    };
    eprintln!("{}", summary(&server.requests()));
    assert_eq!(
        session_ids(),
        [id.as_str()],
        "resume appends to the same session"
    );
    let turns = server.turn_requests();
    assert_eq!(turns.len(), 1, "{}", summary(&turns));
    let resumed = &turns[0];
    assert_eq!(resumed.session_id().as_deref(), Some(id.as_str()));
    assert_eq!(resumed.user_texts(), [prompt.as_str(), "second"]);
    assert!(resumed.tool_outputs().iter().any(|o| o.contains(&tag)));
    if agent == Agent::Codex {
        assert_eq!(resumed.assistant_texts(), [reply(1, &prompt)]);
    }

    let records = lines(&transcript);
    let assistant_texts: Vec<String> = match agent {
        Agent::Codex => records
            .iter()
            .filter(|r| r["type"] == "response_item" && r["payload"]["role"] == "assistant")
            .filter_map(|r| r["payload"]["content"][0]["text"].as_str())
            .map(str::to_owned)
            .collect(),
        Agent::Claude => records
            .iter()
            .filter(|r| r["type"] == "assistant")
            .filter_map(|r| r["message"]["content"].as_array())
            .flatten()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str().map(str::to_owned))
            .collect(),
    };
    assert_eq!(assistant_texts, [reply(1, &prompt), reply(2, "second")]);
    if agent == Agent::Codex {
        assert!(
            records
                .iter()
                .any(|r| r["payload"]["type"] == "function_call_output"
                    && r["payload"]["output"].as_str().unwrap_or("").contains(&tag)),
            "the rollout keeps the tool output"
        );
    }
}

#[test]
fn codex_exec_then_resume_against_scripted_model() {
    run_then_resume_against_scripted_model(Agent::Codex);
}

#[test]
fn claude_print_then_resume_against_scripted_model() {
    run_then_resume_against_scripted_model(Agent::Claude);
}
