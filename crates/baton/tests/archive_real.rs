//! The archive proven with the real pinned CLIs: a session whose file the
//! agent lost (Claude Code's own cleanup, a hand-cleaned Codex home) stays
//! listed and searchable, and `baton resume` brings it back so that the real
//! CLI resumes it with the whole history reaching the scripted model.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::Agent;
use baton_testkit::{AgentEnv, ModelServer, agents, run_ok};

mod common;

use common::{age, agent_baton as baton, last_turn, record_session, run_json as json_out};

const TOOL_PROMPT: &str = "RUN: echo archived-tool-out";

fn lost_session_comes_back_with_the_real_cli(agent: Agent) {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let bhome = env.dir("baton");
    let prompts = ["p1 alpha", TOOL_PROMPT];
    let id = record_session(agent, &env, &agents, &project, &prompts);
    let file = match agent {
        Agent::Codex => env.codex_rollout(&id),
        Agent::Claude => env.claude_transcript(&id),
    }
    .unwrap();
    let before = std::fs::read(&file).unwrap();

    let indexed = json_out(baton(&env, &agents, &bhome, &project).args(["index", "--json"]));
    assert_eq!(indexed["archive"]["files"], 1, "{indexed}");

    match agent {
        // Claude Code's own cleanup: with `cleanupPeriodDays` 1, the real
        // `claude` deletes the 10-day-old transcript a few seconds after it
        // starts (in the background), so this run lasts long enough.
        Agent::Claude => {
            std::fs::write(
                env.claude_dir.join("settings.json"),
                r#"{"cleanupPeriodDays": 1}"#,
            )
            .unwrap();
            age(&file, 10);
            run_ok(env.claude(&agents, &project).args([
                "-p",
                "RUN: sleep 12",
                "--allowedTools",
                "Bash",
            ]));
        }
        Agent::Codex => std::fs::remove_dir_all(env.codex_home.join("sessions")).unwrap(),
    }
    assert!(!file.exists());

    let listed = json_out(baton(&env, &agents, &bhome, &project).args(["list", "--json"]));
    let row = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} still listed: {listed}"))
        .clone();
    assert_eq!(row["archived"], true, "{row}");
    let hits = json_out(baton(&env, &agents, &bhome, &project).args([
        "search",
        "archived-tool-out",
        "--json",
    ]));
    assert!(
        hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["session_id"] == id.as_str()),
        "{hits}"
    );

    server.clear();
    run_ok(baton(&env, &agents, &bhome, &project).args(["resume", &id, "--prompt", "p3 back"]));
    let req = last_turn(&server);
    assert_eq!(req.user_texts(), ["p1 alpha", TOOL_PROMPT, "p3 back"]);
    assert!(
        req.tool_outputs()
            .iter()
            .any(|o| o.contains("archived-tool-out")),
        "tool output of the archived turn reached the model"
    );
    let after = std::fs::read(&file).unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "restored byte-identical, then continued by the agent"
    );
}

#[test]
fn codex_session_deleted_by_hand_resumes_from_the_archive() {
    lost_session_comes_back_with_the_real_cli(Agent::Codex);
}

#[test]
fn claude_session_cleaned_up_by_claude_resumes_from_the_archive() {
    lost_session_comes_back_with_the_real_cli(Agent::Claude);
}

/// The `fixed` of `id`'s problems in `baton doctor --fix --json`.
fn fixed_copy(report: &serde_json::Value, id: &str, kind: &str) -> String {
    let problem = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id && p["kind"] == kind)
        .unwrap_or_else(|| panic!("{id}: no {kind} problem in {report}"));
    problem["fixed"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} not fixed: {problem}"))
        .to_string()
}

#[test]
fn doctor_fixes_a_codex_session_of_another_provider_for_the_real_codex() {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let bhome = env.dir("baton");
    let id = record_session(
        Agent::Codex,
        &env,
        &agents,
        &project,
        &["p1 alpha", TOOL_PROMPT],
    );
    // The user switches Codex to another provider (same server here).
    let config_path = env.codex_home.join("config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let table = &config[config.find("[model_providers.baton-mock]").unwrap()..];
    let switched = config.replace(
        "model_provider = \"baton-mock\"",
        "model_provider = \"baton-other\"",
    ) + "\n"
        + &table.replace("baton-mock", "baton-other");
    std::fs::write(&config_path, switched).unwrap();

    let report = json_out(baton(&env, &agents, &bhome, &project).args(["doctor", "--json"]));
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str() && p["kind"] == "provider"),
        "{report}"
    );
    let fixed =
        json_out(baton(&env, &agents, &bhome, &project).args(["doctor", "--fix", "--json"]));
    let new_id = fixed_copy(&fixed, &id, "provider");
    assert_ne!(new_id, id);

    server.clear();
    run_ok(env.codex(&agents, &project).args([
        "exec",
        "--skip-git-repo-check",
        "resume",
        &new_id,
        "p3 after",
    ]));
    let req = last_turn(&server);
    assert_eq!(req.user_texts(), ["p1 alpha", TOOL_PROMPT, "p3 after"]);
    assert!(
        req.tool_outputs()
            .iter()
            .any(|o| o.contains("archived-tool-out"))
    );
}

#[test]
fn doctor_fixes_a_claude_session_of_a_renamed_project_for_the_real_claude() {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let old = env.dir("project-old");
    let bhome = env.dir("baton");
    let id = record_session(
        Agent::Claude,
        &env,
        &agents,
        &old,
        &["p1 alpha", TOOL_PROMPT],
    );
    let new = env.root.join("project-new");
    std::fs::rename(&old, &new).unwrap();

    let report = json_out(baton(&env, &agents, &bhome, &new).args(["doctor", "--json"]));
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str() && p["kind"] == "cwd_gone"),
        "{report}"
    );
    let map = format!("{}={}", old.display(), new.display());
    let fixed = json_out(baton(&env, &agents, &bhome, &new).args([
        "doctor",
        "--fix",
        "--map-path",
        &map,
        "--json",
    ]));
    let new_id = fixed_copy(&fixed, &id, "cwd_gone");

    server.clear();
    run_ok(env.claude(&agents, &new).args([
        "-p",
        "--resume",
        &new_id,
        "p3 after",
        "--allowedTools",
        "Bash",
    ]));
    let req = last_turn(&server);
    assert_eq!(req.user_texts(), ["p1 alpha", TOOL_PROMPT, "p3 after"]);
    assert!(
        req.tool_outputs()
            .iter()
            .any(|o| o.contains("archived-tool-out"))
    );
}
