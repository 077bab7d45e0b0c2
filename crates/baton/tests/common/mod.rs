//! Shared setup of the `baton` CLI tests: `baton` commands with a private
//! `BATON_HOME`, JSON output, copies of the fixture homes and sessions
//! recorded with the real agent CLIs.
#![allow(dead_code)]

use baton_native::Agent;
use baton_testkit::{AgentEnv, Agents, ModelServer, RecordedRequest, run_ok};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `stdout` of `what` parsed as JSON; panics with the text otherwise.
pub fn parse_json(what: &str, stdout: &[u8]) -> Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// Run `cmd`, which must succeed, and parse its stdout as JSON.
pub fn run_json(cmd: &mut Command) -> Value {
    let out = run_ok(cmd);
    parse_json(&command_line(cmd.get_args()), &out.stdout)
}

/// Run `cmd` (assert_cmd), which must succeed, and parse its stdout as JSON.
pub fn assert_json(cmd: &mut assert_cmd::Command) -> Value {
    let what = command_line(cmd.get_args());
    let out = cmd.assert().success().get_output().stdout.clone();
    parse_json(&what, &out)
}

/// "`baton ARGS`", for messages.
fn command_line(args: std::process::CommandArgs<'_>) -> String {
    let args: Vec<_> = args.map(|a| a.to_string_lossy()).collect();
    format!("`baton {}`", args.join(" "))
}

/// The `baton` binary with a cleared environment holding the variables and
/// current dir of `agent_cmds` (the testkit's scrubbed agent commands).
pub fn baton_like(agent_cmds: &[&Command]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.env_clear();
    for agent_cmd in agent_cmds {
        for (key, value) in agent_cmd.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        if let Some(dir) = agent_cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
    }
    cmd
}

/// `baton` with the agent environment of `env` (HOME, CODEX_HOME,
/// CLAUDE_CONFIG_DIR, model endpoints), its own `BATON_HOME`, the pinned
/// binaries and `cwd` as current dir.
pub fn agent_baton(env: &AgentEnv, agents: &Agents, baton_home: &Path, cwd: &Path) -> Command {
    let mut cmd = baton_like(&[&env.codex(agents, cwd), &env.claude(agents, cwd)]);
    cmd.env("BATON_HOME", baton_home)
        .env("BATON_CODEX_BIN", &agents.codex)
        .env("BATON_CLAUDE_BIN", &agents.claude);
    cmd
}

/// The last conversation turn the model received.
pub fn last_turn(server: &ModelServer) -> RecordedRequest {
    server
        .turn_requests()
        .pop()
        .expect("the agent called the model")
}

/// A session of `agent` recorded with the real CLI in `cwd`: the first prompt
/// starts it, each further one resumes it (Claude may run Bash, for `RUN:`
/// prompts); its id.
pub fn record_session(
    agent: Agent,
    env: &AgentEnv,
    agents: &Agents,
    cwd: &Path,
    prompts: &[&str],
) -> String {
    let (first, rest) = prompts.split_first().expect("at least one prompt");
    match agent {
        Agent::Codex => {
            let exec = ["exec", "--skip-git-repo-check"];
            run_ok(env.codex(agents, cwd).args(exec).arg(first));
            let id = env.codex_session_ids().pop().expect("a rollout");
            for p in rest {
                run_ok(env.codex(agents, cwd).args(exec).args(["resume", &id, p]));
            }
            id
        }
        Agent::Claude => {
            let bash = ["--allowedTools", "Bash"];
            run_ok(env.claude(agents, cwd).args(["-p", first]).args(bash));
            let id = env.claude_session_ids().pop().expect("a transcript");
            for p in rest {
                run_ok(
                    env.claude(agents, cwd)
                        .args(["-p", "--resume", &id, p])
                        .args(bash),
                );
            }
            id
        }
    }
}

/// A temp dir holding copies of the fixture homes `codex`, `codex-legacy`
/// and `claude` (with `claude/.claude` inside).
pub struct FixtureHomes {
    tmp: tempfile::TempDir,
}

impl FixtureHomes {
    /// Copy the fixture homes into a new temp dir.
    pub fn new() -> FixtureHomes {
        FixtureHomes {
            tmp: baton_testkit::fixture_homes(),
        }
    }

    /// `rel` below the temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// `baton ARGS` over these homes, with its data in `baton-home` here and
    /// no colour.
    pub fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("baton").unwrap();
        cmd.env("BATON_HOME", self.path("baton-home"))
            .env("NO_COLOR", "1")
            .args(args)
            .args(self.root_args());
        cmd
    }

    /// `baton ARGS --json` (see [`FixtureHomes::cmd`]): it succeeds; its JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        assert_json(&mut self.cmd(args))
    }

    /// `baton ARGS` (see [`FixtureHomes::cmd`]): it succeeds; its stdout.
    pub fn stdout(&self, args: &[&str]) -> String {
        let out = self
            .cmd(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The root options naming these homes: both Codex homes and the
    /// Claude config dir.
    pub fn root_args(&self) -> Vec<String> {
        vec![
            "--codex-home".into(),
            self.path("codex").display().to_string(),
            "--codex-home".into(),
            self.path("codex-legacy").display().to_string(),
            "--claude-dir".into(),
            self.path("claude/.claude").display().to_string(),
        ]
    }
}

/// Make `path` look `days` old (its mtime), as an agent's cleanup sees it.
pub fn age(path: &Path, days: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    std::fs::File::options()
        .append(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// The fixture manifest: one JSON object per session.
pub fn manifest() -> Vec<Value> {
    std::fs::read_to_string(baton_testkit::fixtures_dir().join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A `baton serve` child process on a free loopback port with its own home
/// and account `alice`; killed when dropped.
pub struct Serve {
    child: Option<Child>,
    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Account `alice`'s token.
    pub token: String,
    home: tempfile::TempDir,
}

impl Serve {
    /// The server's home (its `BATON_HOME` is `baton` below it).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Kill the server (SIGKILL, as a crash) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            let _ = child.wait();
        }
    }

    /// Stop the server as Ctrl-C does and wait for it to exit: its exit
    /// code and peak resident set in KiB over its whole run.
    pub fn stop_with_peak_rss(mut self) -> (i32, i64) {
        let child = self.child.take().expect("the server runs");
        baton_testkit::interrupt_with_peak_rss(child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `baton` with a cleared environment whose HOME, `BATON_HOME` and agent
/// homes are below `home`.
fn serve_command(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("BATON_HOME", home.join("baton"))
        .env("CODEX_HOME", home.join(".codex"))
        .env("CLAUDE_CONFIG_DIR", home.join(".claude"));
    cmd
}

/// `baton serve --no-catalog` on a free loopback port, logging to the
/// test's stderr.
pub fn start_serve() -> Serve {
    start_serve_with(&[], None)
}

/// `baton serve` with `env` added (the team server's `BATON_DATABASE_URL`,
/// `BATON_BLOBS`, `AWS_*`, or a log level); with any, the server's log goes to
/// `serve.log` in its home instead of the test's stderr. It creates account
/// `alice` unless given the token of one (a further replica on the same
/// storage).
pub fn start_serve_with(env: &[(String, String)], token: Option<&str>) -> Serve {
    let home = tempfile::tempdir().expect("temp dir");
    let command = || {
        let mut cmd = serve_command(home.path());
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd
    };
    let token = match token {
        Some(t) => t.to_owned(),
        None => {
            let user = run_ok(command().args(["serve", "user", "add", "alice", "--json"]));
            let user: Value = serde_json::from_slice(&user.stdout).expect("user JSON");
            user["token"].as_str().expect("token").to_owned()
        }
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    #[allow(
        clippy::disallowed_methods,
        reason = "the test server's own log file in its scratch home"
    )]
    let stderr = match env {
        [] => Stdio::inherit(),
        _ => std::fs::File::create(home.path().join("serve.log"))
            .expect("log file")
            .into(),
    };
    let child = command()
        .args(["serve", "--listen", &addr, "--no-catalog"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("baton serve starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "baton serve did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Serve {
        child: Some(child),
        url: format!("http://{addr}"),
        token,
        home,
    }
}
