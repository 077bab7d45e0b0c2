//! Fork, resume, rehydrate and envelopes, proven with the real pinned CLIs
//! against the scripted model server: what the model receives after baton
//! touched a session is exactly the history we meant.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::Agent;
use baton_testkit::{AgentEnv, ModelServer, RecordedRequest, agents, run_ok};
use std::path::PathBuf;

mod common;

use common::{agent_baton as baton, last_turn, record_session, run_json as json_out};

/// The second prompt of the fork tests: a shell command, so the history has
/// a tool output.
const TOOL_PROMPT: &str = "RUN: echo beta-tool-out";

/// What the model received carries the whole kept conversation and nothing
/// of the dropped turns, checked on the serialized request body itself (not
/// only through `user_texts()`, which shares the injected-context rules with
/// the code under test): every kept prompt, one scripted reply per kept
/// prompt (`ECHO[n]: <prompt>`), the tool output of a `RUN:` prompt, and no
/// trace of a dropped prompt (its text also appears in its reply).
fn assert_history(req: &RecordedRequest, kept: &[&str], dropped: &[&str]) {
    let body = serde_json::to_string(&req.body).unwrap();
    for text in dropped {
        assert!(!body.contains(text), "dropped {text:?} reached the model");
    }
    for text in kept {
        assert!(body.contains(text), "kept prompt {text:?} missing");
    }
    let replies = req.assistant_texts();
    assert_eq!(
        replies.len(),
        kept.len(),
        "one reply per kept prompt: {replies:?}"
    );
    for (reply, prompt) in replies.iter().zip(kept) {
        assert!(
            reply.starts_with("ECHO[") && reply.ends_with(&format!("]: {prompt}")),
            "{reply:?} is not the reply to {prompt:?}"
        );
        let quoted = serde_json::to_string(reply).unwrap();
        assert!(
            body.contains(quoted.trim_matches('"')),
            "{reply:?} not in the body"
        );
    }
    for prompt in kept {
        if let Some(cmd) = prompt.strip_prefix("RUN: echo ") {
            let outputs = req.tool_outputs();
            assert!(
                outputs.iter().any(|o| o.contains(cmd)),
                "tool output of {prompt:?} missing: {outputs:?}"
            );
        }
    }
}

/// Fork `agent`'s session without its last turn, then resume the fork with
/// the real CLI: the model sees the kept history only, the parent stays
/// untouched and the agent appends to baton's fork file.
fn fork_drop_last_resumes_with_the_real_cli(agent: Agent) {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let bhome = env.dir("baton");
    let prompts = ["p1 alpha", TOOL_PROMPT, "p3 gamma"];
    let id = record_session(agent, &env, &agents, &project, &prompts);
    let parent = match agent {
        Agent::Codex => env.codex_rollout(&id),
        Agent::Claude => env.claude_transcript(&id),
    }
    .unwrap();
    let parent_before = std::fs::read(&parent).unwrap();

    let fork = json_out(baton(&env, &agents, &bhome, &project).args([
        "fork",
        &id,
        "--drop-last",
        "1",
        "--json",
    ]));
    let fork_id = fork["id"].as_str().unwrap().to_string();
    assert_eq!(fork["agent"], agent.as_str());
    assert_eq!(fork["forked_from"], id.as_str());
    let fork_path = PathBuf::from(fork["path"].as_str().unwrap());
    match agent {
        Agent::Codex => assert!(
            fork_path.starts_with(&env.codex_home),
            "fork lives next to its source"
        ),
        Agent::Claude => {
            assert_eq!(fork_path.parent(), parent.parent(), "same project folder")
        }
    }
    let fork_before = std::fs::read(&fork_path).unwrap();

    // The catalog knows the lineage (for Claude inferred from the copied uuids).
    let shown = json_out(baton(&env, &agents, &bhome, &project).args(["list", "--json"]));
    let listed = shown["sessions"]
        .as_array()
        .expect("list --json is {\"sessions\": [...]}");
    let row = listed
        .iter()
        .find(|r| r["id"] == fork_id.as_str())
        .expect("fork listed");
    assert_eq!(row["forked_from"], id.as_str());

    server.clear();
    run_ok(baton(&env, &agents, &bhome, &project).args(["resume", &fork_id, "--prompt", "new"]));
    let req = last_turn(&server);
    assert_eq!(req.user_texts(), ["p1 alpha", TOOL_PROMPT, "new"]);
    assert_history(&req, &["p1 alpha", TOOL_PROMPT], &["p3 gamma"]);
    assert_eq!(req.session_id().as_deref(), Some(fork_id.as_str()));
    assert_eq!(
        std::fs::read(&parent).unwrap(),
        parent_before,
        "parent untouched"
    );
    let fork_after = std::fs::read(&fork_path).unwrap();
    assert!(
        fork_after.len() > fork_before.len() && fork_after.starts_with(&fork_before),
        "{} appended to baton's fork file",
        agent.as_str()
    );
    let sessions = match agent {
        Agent::Codex => env.codex_session_ids(),
        Agent::Claude => env.claude_session_ids(),
    };
    assert_eq!(sessions.len(), 2, "no third session appeared");
}

#[test]
fn codex_fork_drop_last_resumes_with_the_real_cli() {
    fork_drop_last_resumes_with_the_real_cli(Agent::Codex);
}

#[test]
fn claude_fork_drop_last_resumes_with_the_real_cli() {
    fork_drop_last_resumes_with_the_real_cli(Agent::Claude);
}

#[test]
fn fork_of_a_codex_paginated_fork_is_self_contained() {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let bhome = env.dir("baton");
    let root = record_session(
        Agent::Codex,
        &env,
        &agents,
        &project,
        &["a1 root", "a2 root"],
    );
    run_ok(env.codex(&agents, &project).args([
        "exec",
        "--skip-git-repo-check",
        "fork",
        &root,
        "f1 forked",
    ]));
    let child = env
        .codex_session_ids()
        .into_iter()
        .find(|i| *i != root)
        .expect("codex made a fork");
    let child_path = env.codex_rollout(&child).unwrap();
    let head = std::fs::read_to_string(&child_path).unwrap();
    assert!(
        head.lines().next().unwrap().contains("history_base"),
        "codex referenced its parent"
    );

    let fork = json_out(baton(&env, &agents, &bhome, &project).args(["fork", &child, "--json"]));
    let fork_id = fork["id"].as_str().unwrap().to_string();
    std::fs::remove_file(env.codex_rollout(&root).unwrap()).unwrap();
    std::fs::remove_file(&child_path).unwrap();

    server.clear();
    run_ok(baton(&env, &agents, &bhome, &project).args(["resume", &fork_id, "--prompt", "after"]));
    let req = last_turn(&server);
    assert_eq!(
        req.user_texts(),
        ["a1 root", "a2 root", "f1 forked", "after"]
    );
    assert_history(&req, &["a1 root", "a2 root", "f1 forked"], &[]);
    assert_eq!(req.session_id().as_deref(), Some(fork_id.as_str()));
}

/// Export on machine 1, import on an empty machine 2 with another project
/// directory, rehydrate with --map-path, resume with the real CLI.
fn envelope_round_trip(agent: Agent) {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let one = AgentEnv::new(&server);
    let p1 = one.dir("old-project");
    let b1 = one.dir("baton");
    let prompts = ["x1 first", "x2 second"];
    let id = record_session(agent, &one, &agents, &p1, &prompts);
    let file = one.root.join("session.baton");
    run_ok(baton(&one, &agents, &b1, &p1).args([
        "export",
        &id,
        "--format",
        "envelope",
        "-o",
        file.to_str().unwrap(),
    ]));

    let two = AgentEnv::new(&server);
    let p2 = two.dir("new place");
    let b2 = two.dir("baton");
    let imported =
        json_out(baton(&two, &agents, &b2, &p2).args(["import", file.to_str().unwrap(), "--json"]));
    assert_eq!(imported["id"], id.as_str());
    assert_eq!(imported["files"][0]["outcome"], "created");
    assert!(
        imported["files"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with(b2.join("library").to_str().unwrap()),
        "imported into baton's library"
    );
    assert!(two.codex_session_ids().is_empty() && two.claude_session_ids().is_empty());

    let map = format!("{}={}", p1.display(), p2.display());
    let re = json_out(baton(&two, &agents, &b2, &p2).args([
        "rehydrate",
        &id,
        "--map-path",
        &map,
        "--json",
    ]));
    assert_eq!(re["cwd"], p2.to_str().unwrap());
    let written = PathBuf::from(re["files"][0]["path"].as_str().unwrap());
    let home = match agent {
        Agent::Codex => &two.codex_home,
        Agent::Claude => &two.claude_dir,
    };
    assert!(
        written.starts_with(home),
        "{} not in the agent home",
        written.display()
    );
    let before = std::fs::read(&written).unwrap();

    server.clear();
    run_ok(baton(&two, &agents, &b2, &p2).args(["resume", &id, "--prompt", "there"]));
    let req = last_turn(&server);
    assert_eq!(req.user_texts(), ["x1 first", "x2 second", "there"]);
    assert_history(&req, &prompts, &[]);
    assert_eq!(req.session_id().as_deref(), Some(id.as_str()));
    let after = std::fs::read(&written).unwrap();
    assert!(
        after.len() > before.len() && after.starts_with(&before),
        "resumed in place"
    );
}

#[test]
fn codex_envelope_moves_to_a_fresh_machine() {
    envelope_round_trip(Agent::Codex);
}

#[test]
fn claude_envelope_moves_to_a_fresh_machine() {
    envelope_round_trip(Agent::Claude);
}

/// `baton resume --prompt` text starting with `-` reaches the model as a
/// prompt (after `--`) instead of being read as a flag by the agent CLI.
#[test]
fn prompts_starting_with_a_dash_reach_the_model() {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let bhome = env.dir("baton");
    let prompt = "--version is not a flag here";
    for agent in [Agent::Codex, Agent::Claude] {
        let id = record_session(agent, &env, &agents, &project, &["d1 first"]);
        server.clear();
        run_ok(baton(&env, &agents, &bhome, &project).args(["resume", &id, "--prompt", prompt]));
        let req = last_turn(&server);
        assert_eq!(req.user_texts(), ["d1 first", prompt], "{}", agent.as_str());
        assert_eq!(
            req.session_id().as_deref(),
            Some(id.as_str()),
            "{}",
            agent.as_str()
        );
    }
}
