//! `baton pick` driven in a real terminal (tmux): type a query, see the
//! hits, move the selection, press Enter, and the real CLI resumes the
//! selected session — the scripted model receives its history.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::Agent;
use baton_testkit::{AgentEnv, ModelServer, RecordedRequest, agents};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{agent_baton, record_session};

/// A tmux server of its own (private socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Start `cmd` (its program, args, env and current dir) in a detached
    /// 160x45 session named `pick` on the socket `baton-<name>-<pid>`.
    fn start(name: &str, cmd: &Command) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!(
                "\n!!! SKIPPING tmux test: tmux is not installed (scripts/install-term-tools)\n"
            );
            return None;
        }
        let tmux = Tmux {
            socket: format!("baton-{name}-{}", std::process::id()),
        };
        let mut new = tmux.cmd();
        new.args(["new-session", "-d", "-s", "pick", "-x", "160", "-y", "45"]);
        if let Some(dir) = cmd.get_current_dir() {
            new.arg("-c").arg(dir);
        }
        // The command runs with exactly the environment of `cmd`.
        new.arg("--").arg("env").arg("-i");
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                let mut pair = key.to_os_string();
                pair.push("=");
                pair.push(value);
                new.arg(pair);
            }
        }
        new.arg("TERM=xterm-256color");
        // The pane stays after the command ends, showing how it ended.
        new.args(["sh", "-c", r#""$@"; echo "[exited $?]"; sleep 3600"#, "sh"]);
        new.arg(cmd.get_program()).args(cmd.get_args());
        let status = new.status().expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        Some(tmux)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]).stdin(Stdio::null());
        cmd
    }

    /// Send keys (tmux key names, e.g. `Down`, `Enter`, or literal text with `literal`).
    fn send(&self, keys: &[&str], literal: bool) {
        let mut cmd = self.cmd();
        cmd.args(["send-keys", "-t", "pick"]);
        if literal {
            cmd.arg("-l");
        }
        assert!(cmd.args(keys).status().expect("tmux runs").success());
    }

    /// The visible screen.
    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "pick"])
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait (up to 30 s) until the screen satisfies `ready`; the screen.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// The selected row of the picker's list (it starts with `▶`).
fn selected_title(screen: &str) -> Option<String> {
    screen
        .lines()
        .find_map(|l| l.split_once('▶').map(|(_, rest)| rest.to_string()))
}

fn pick_and_resume(agent: Agent) {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let bhome = env.dir("baton");
    let first = record_session(agent, &env, &agents, &project, &["pickme walrus one"]);
    let second = record_session(agent, &env, &agents, &project, &["pickme narwhal two"]);
    assert_ne!(first, second);
    if agent == Agent::Claude {
        finish_claude_onboarding(&env.claude_dir, &project);
    }
    let baton = agent_baton(&env, &agents, &bhome, &project);
    let mut pick = Command::new(baton.get_program());
    pick.arg("pick").arg("--here").current_dir(&project);
    for (key, value) in baton.get_envs() {
        if let Some(value) = value {
            pick.env(key, value);
        }
    }
    let Some(tmux) = Tmux::start(agent.as_str(), &pick) else {
        return;
    };
    tmux.wait_for("the picker", |s| s.contains("session(s)"));
    tmux.send(&["pickm"], true);
    let screen = tmux.wait_for("both hits", |s| {
        s.contains("> pickm") && s.contains("pickme walrus one") && s.contains("pickme narwhal two")
    });
    // Select the walrus session whichever row it is on.
    let walrus_first = screen.find("pickme walrus one") < screen.find("pickme narwhal two");
    if !walrus_first {
        tmux.send(&["Down"], false);
    }
    tmux.send(&["Down", "Up"], false);
    if !walrus_first {
        tmux.send(&["Down"], false);
    }
    let screen = tmux.wait_for("walrus selected", |s| {
        selected_title(s).is_some_and(|t| t.contains("walrus"))
    });
    assert!(
        screen.contains(&first),
        "the preview names the selected id {first}:\n{screen}"
    );
    let req = continue_in_agent(&tmux, &server, "Enter");
    let body = serde_json::to_string(&req.body).unwrap();
    assert!(
        body.contains("pickme walrus one"),
        "the resumed history reached the model: {:?}",
        req.user_texts()
    );
    assert!(
        !body.contains("pickme narwhal two"),
        "only the selected session was resumed"
    );
    assert!(body.contains("after pick"));
    assert_eq!(
        req.session_id().as_deref().unwrap_or(&first),
        first,
        "the selected session continues"
    );
}

/// Whether a prompt is `after pick`, typed once or, when a slow TUI showed
/// it late, more than once.
fn only_after_pick(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty() && text.replace("after pick", "").is_empty()
}

/// Press `key` in the picker, then, in the agent's TUI that takes over the
/// terminal, send the prompt `after pick` until the model receives it; that
/// turn's request.
fn continue_in_agent(tmux: &Tmux, server: &ModelServer, key: &str) -> RecordedRequest {
    let turns_before = server.turn_requests().len();
    tmux.send(&[key], false);
    let start = Instant::now();
    // The turn that carries the new prompt as a prompt of its own (not a
    // side request such as a title generator quoting it).
    let resumed_turn = || {
        server
            .turn_requests()
            .into_iter()
            .skip(turns_before)
            .find(|r| r.user_texts().iter().any(|t| only_after_pick(t)))
    };
    // Keys sent while the TUI starts are lost, and text typed fast may be
    // read as a paste whose Enter is a newline: type the prompt until it
    // shows, then press Enter until the model is called.
    while resumed_turn().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the resumed agent never called the model; screen:\n{}\nrequests: {:?}",
            tmux.screen(),
            server
                .turn_requests()
                .iter()
                .map(RecordedRequest::user_texts)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(1500));
        let screen = tmux.screen();
        assert!(
            !screen.contains("[exited"),
            "the agent ended without calling the model; screen:\n{screen}"
        );
        if screen.contains("after pick") {
            tmux.send(&["Enter"], false);
        } else {
            tmux.send(&["after pick"], true);
        }
    }
    resumed_turn().expect("a turn")
}

/// Mark Claude Code's first-run onboarding done in `claude_dir/.claude.json`
/// and `project` trusted (its interactive TUI otherwise starts with a
/// network check, a theme picker, an API key question and a trust dialog), keeping what
/// `claude -p` wrote there.
fn finish_claude_onboarding(claude_dir: &Path, project: &Path) {
    let path = claude_dir.join(".claude.json");
    let mut config: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    config["hasCompletedOnboarding"] = true.into();
    config["lastOnboardingVersion"] = "2.1.330".into();
    // The testkit's dummy key (Claude remembers the last 20 characters).
    config["customApiKeyResponses"] =
        serde_json::json!({ "approved": ["baton-test-key"], "rejected": [] });
    if !config["projects"].is_object() {
        config["projects"] = serde_json::json!({});
    }
    let key = project.to_string_lossy().into_owned();
    if !config["projects"][&key].is_object() {
        config["projects"][&key] = serde_json::json!({});
    }
    config["projects"][&key]["hasTrustDialogAccepted"] = true.into();
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
}

#[test]
fn pick_resumes_the_selected_codex_session() {
    pick_and_resume(Agent::Codex);
}

#[test]
fn pick_resumes_the_selected_claude_session() {
    pick_and_resume(Agent::Claude);
}

/// `f` in the list (Tab moves the keys there) after choosing the second
/// prompt with `l l` forks before it and resumes the fork: the model sees
/// the first turn only.
#[test]
fn pick_forks_before_the_chosen_prompt_and_resumes_the_fork() {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let bhome = env.dir("baton");
    let prompts = ["forkme kept one", "forkme dropped two"];
    let id = record_session(Agent::Codex, &env, &agents, &project, &prompts);
    let baton = agent_baton(&env, &agents, &bhome, &project);
    let mut pick = Command::new(baton.get_program());
    pick.args(["pick", "--agent", "codex", "forkme"])
        .current_dir(&project);
    for (key, value) in baton.get_envs() {
        if let Some(value) = value {
            pick.env(key, value);
        }
    }
    let Some(tmux) = Tmux::start("fork", &pick) else {
        return;
    };
    tmux.wait_for("the session and its preview", |s| {
        s.contains(&id) && s.contains("#2 prompt")
    });
    tmux.send(&["Tab"], false);
    tmux.wait_for("the list's keys", |s| s.contains("q or Esc quit"));
    tmux.send(&["l", "l"], true);
    tmux.wait_for("the fork marker", |s| s.contains("fork before prompt #2"));
    let req = continue_in_agent(&tmux, &server, "f");
    let body = serde_json::to_string(&req.body).unwrap();
    assert!(body.contains("forkme kept one"), "{:?}", req.user_texts());
    assert!(
        !body.contains("forkme dropped two"),
        "{:?}",
        req.user_texts()
    );
    let resumed = req.session_id();
    assert!(
        resumed.as_deref() != Some(id.as_str()),
        "the fork continues, not the parent"
    );
}

#[test]
fn pick_without_a_terminal_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["pick", "x"])
        .env("BATON_HOME", Path::new("/nonexistent-baton-home"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("baton search"), "{err}");
}
