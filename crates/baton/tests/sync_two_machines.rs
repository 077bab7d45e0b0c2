//! Two machines on one host share sessions through `baton serve`: A records
//! Codex and Claude sessions with the real CLIs and pushes them, B pulls and
//! resumes them (the model sees the whole history), then both continue the
//! same sessions and `baton sync` keeps both continuations.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::Agent;
use baton_protocol::SessionInfo;
use baton_sync::http::Client;
use baton_testkit::{AgentEnv, Agents, ModelServer, RecordedRequest, agents, run_ok};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
#[path = "sync_two_machines/secrets.rs"]
mod secrets;

use common::{
    Serve, agent_baton, last_turn, record_session, run_json, start_serve, start_serve_with,
};

/// One machine: its agent homes and its own `BATON_HOME`.
struct Machine {
    env: AgentEnv,
    baton_home: PathBuf,
    project: PathBuf,
}

impl Machine {
    fn new(model: &ModelServer, project: Option<&Path>) -> Machine {
        let env = AgentEnv::new(model);
        let baton_home = env.dir("baton");
        let project = project
            .map(Path::to_path_buf)
            .unwrap_or_else(|| env.dir("project"));
        Machine {
            env,
            baton_home,
            project,
        }
    }

    /// `baton` with this machine's environment and the pinned agent binaries.
    fn baton(&self, agents: &Agents) -> Command {
        agent_baton(&self.env, agents, &self.baton_home, &self.project)
    }

    fn json(&self, agents: &Agents, args: &[&str]) -> Value {
        run_json(self.baton(agents).args(args))
    }

    fn text(&self, agents: &Agents, args: &[&str]) -> String {
        let out = run_ok(self.baton(agents).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn resume(
        &self,
        agents: &Agents,
        model: &ModelServer,
        id: &str,
        prompt: &str,
    ) -> RecordedRequest {
        model.clear();
        run_ok(self.baton(agents).args(["resume", id, "--prompt", prompt]));
        last_turn(model)
    }

    /// One session per agent recorded here with the real CLIs, first
    /// prompt `a1 <agent> hello`; the Codex and the Claude id.
    fn record_hellos(&self, agents: &Agents) -> (String, String) {
        let record = |agent: Agent| {
            let prompt = format!("a1 {} hello", agent.as_str());
            record_session(agent, &self.env, agents, &self.project, &[&prompt])
        };
        (record(Agent::Codex), record(Agent::Claude))
    }

    /// `baton login URL TOKEN --json` to `serve`, unencrypted.
    fn login(&self, agents: &Agents, serve: &Serve) {
        let login = self.json(agents, &["login", &serve.url, &serve.token, "--json"]);
        assert_eq!(login["url"], serve.url.as_str());
        assert_eq!(login["encrypt"], false);
    }

    /// `baton ARGS` without agents, which must succeed.
    fn ok(&self, args: &[&str]) {
        let out = self.output(&[], args);
        assert!(
            out.status.success(),
            "`baton {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Copy the recorded fixture sessions of both agents into this
    /// machine's agent homes; their ids.
    fn with_fixtures(&self) -> Vec<String> {
        let fixtures = baton_testkit::fixtures_dir();
        baton_testkit::copy_tree(&fixtures.join("codex"), &self.env.codex_home)
            .expect("copy codex");
        baton_testkit::copy_tree(
            &fixtures.join("claude").join(".claude"),
            &self.env.claude_dir,
        )
        .expect("copy claude");
        let ids: Vec<String> = self
            .env
            .codex_session_ids()
            .into_iter()
            .chain(self.env.claude_session_ids())
            .collect();
        assert!(
            ids.len() >= 4,
            "fixtures hold sessions of both agents: {ids:?}"
        );
        ids
    }

    /// `baton ARGS` as a child, with `extra` environment; its output.
    fn output(&self, extra: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        let mut cmd = self.baton(&no_agents());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("baton runs")
    }

    /// Every library file below `$BATON_HOME/library` holding `needle`.
    fn library_files_with(&self, needle: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.baton_home.join("library")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if std::fs::read_to_string(&p).is_ok_and(|t| t.contains(needle)) {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// Two machines on one host, both logged in to one server, sharing a project
/// directory; A recorded one session per agent with the real CLIs.
struct Recorded {
    agents: Agents,
    model: ModelServer,
    serve: Serve,
    a: Machine,
    b: Machine,
    codex_id: String,
    claude_id: String,
}

/// [`Recorded`], or `None` (and a note that `test` is skipped) when the
/// pinned CLIs are not installed.
fn recorded(test: &str) -> Option<Recorded> {
    let Some(agents) = agents() else {
        eprintln!("SKIPPED {test}: the pinned codex/claude CLIs are not installed");
        return None;
    };
    let model = ModelServer::start();
    let serve = start_serve();
    let a = Machine::new(&model, None);
    // Same host: B works in the same project directory.
    let b = Machine::new(&model, Some(&a.project));
    let (codex_id, claude_id) = a.record_hellos(&agents);
    for m in [&a, &b] {
        m.login(&agents, &serve);
    }
    Some(Recorded {
        agents,
        model,
        serve,
        a,
        b,
        codex_id,
        claude_id,
    })
}

/// Does every row of `report[key]` have `status`?
fn all_status(report: &Value, key: &str, status: &str) -> bool {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` in {report}"))
        .iter()
        .all(|r| r["status"] == status)
}

/// `ids`, sorted.
fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// A server and two machines: A holds the fixture sessions of both agents
/// (their ids), B is empty.
fn fixture_pair() -> (ModelServer, Serve, Machine, Machine, Vec<String>) {
    let model = ModelServer::start();
    let serve = start_serve();
    let a = Machine::new(&model, None);
    let b = Machine::new(&model, None);
    let ids = a.with_fixtures();
    (model, serve, a, b, ids)
}

/// For tests where `baton` only reads files: the agents are never started.
fn no_agents() -> Agents {
    Agents {
        codex: PathBuf::from("codex-not-used"),
        claude: PathBuf::from("claude-not-used"),
    }
}

fn server_sessions(serve: &Serve) -> Vec<SessionInfo> {
    let client = Client::new(&serve.url, &serve.token).expect("client");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(client.all_sessions())
        .expect("GET /api/v1/sessions")
}

fn server_text(serve: &Serve, id: &str) -> String {
    let client = Client::new(&serve.url, &serve.token).expect("client");
    let mut bytes = Vec::new();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(client.read_stream(id, "main", baton_sync::http::Prefix::start(), &mut bytes))
        .expect("read stream");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The row of session `id` in `baton list --json`.
fn listed_row<'a>(listed: &'a Value, id: &str) -> &'a Value {
    listed["sessions"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("{id} is not listed: {listed}"))
}

fn ids_of(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` in {report}"))
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn two_machines_push_pull_resume_and_keep_both_continuations() {
    // A records one session per agent with the real CLIs; both log in.
    let Some(Recorded {
        agents,
        model,
        serve,
        a,
        b,
        codex_id,
        claude_id,
    }) = recorded("two_machines_push_pull_resume_and_keep_both_continuations")
    else {
        return;
    };

    let pushed = a.json(&agents, &["push", "--all", "--json"]);
    let pushed_ids = ids_of(&pushed, "pushed");
    assert!(
        pushed_ids.contains(&codex_id) && pushed_ids.contains(&claude_id),
        "{pushed}"
    );
    assert!(all_status(&pushed, "pushed", "pushed"), "{pushed}");
    // Pushing again sends nothing.
    let again = a.json(&agents, &["push", "--all", "--json"]);
    assert!(all_status(&again, "pushed", "up_to_date"), "{again}");

    // B pulls everything into its library and resumes both sessions.
    let pulled = b.json(&agents, &["pull", "--all", "--json"]);
    let pulled_ids = ids_of(&pulled, "pulled");
    assert!(
        pulled_ids.contains(&codex_id) && pulled_ids.contains(&claude_id),
        "{pulled}"
    );
    for f in pulled["pulled"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["files"].as_array().unwrap())
    {
        assert!(
            Path::new(f.as_str().unwrap()).starts_with(b.baton_home.join("library")),
            "pull writes only into baton's library: {f}"
        );
    }
    assert!(b.env.codex_session_ids().is_empty() && b.env.claude_session_ids().is_empty());
    let listed = b.json(&agents, &["list", "--json"]);
    assert!(
        listed.to_string().contains(&codex_id),
        "pulled sessions are in the catalog: {listed}"
    );

    let req = b.resume(&agents, &model, &codex_id, "b2 codex");
    assert_eq!(req.user_texts(), ["a1 codex hello", "b2 codex"]);
    let req = b.resume(&agents, &model, &claude_id, "b2 claude");
    assert_eq!(req.user_texts(), ["a1 claude hello", "b2 claude"]);

    // Both machines continue the same sessions.
    let req = a.resume(&agents, &model, &codex_id, "a3 codex");
    assert_eq!(req.user_texts(), ["a1 codex hello", "a3 codex"]);
    let req = a.resume(&agents, &model, &claude_id, "a3 claude");
    assert_eq!(req.user_texts(), ["a1 claude hello", "a3 claude"]);
    let req = b.resume(&agents, &model, &codex_id, "b3 codex");
    assert_eq!(req.user_texts(), ["a1 codex hello", "b2 codex", "b3 codex"]);
    let req = b.resume(&agents, &model, &claude_id, "b3 claude");
    assert_eq!(
        req.user_texts(),
        ["a1 claude hello", "b2 claude", "b3 claude"]
    );

    // A syncs first: its continuations go to the original sessions.
    let synced_a = a.json(&agents, &["sync", "--json"]);
    assert!(all_status(&synced_a, "pushed", "pushed"), "{synced_a}");
    // B syncs: its continuations diverged and are kept as new sessions.
    let out_b = b.text(&agents, &["sync"]);
    for id in [&codex_id, &claude_id] {
        assert!(
            out_b.contains(&format!("session {id} diverged: your copy was kept as ")),
            "divergence is reported plainly:\n{out_b}"
        );
    }
    let sessions = server_sessions(&serve);
    assert_eq!(sessions.len(), 4, "{sessions:#?}");
    for (id, agent) in [(&codex_id, "codex"), (&claude_id, "claude")] {
        let copy = sessions
            .iter()
            .find(|s| s.diverged_from.as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("a diverged copy of {id} on the server: {sessions:#?}"));
        assert_eq!(copy.agent.as_str(), agent);
        // Nothing lost: A's turns in the original, B's in the copy.
        let original = server_text(&serve, id);
        assert!(
            original.contains(&format!("a3 {agent}")) && !original.contains(&format!("b3 {agent}"))
        );
        let kept = server_text(&serve, &copy.id);
        assert!(kept.contains(&format!("b2 {agent}")) && kept.contains(&format!("b3 {agent}")));
        assert!(!kept.contains(&format!("a3 {agent}")));
        // B's library now also holds A's continuation.
        assert!(
            !b.library_files_with(&format!("a3 {agent}")).is_empty(),
            "B pulled A's continuation of {id}"
        );
    }

    // A syncs again and gets B's continuations; then everything is quiet.
    let synced_a = a.json(&agents, &["sync", "--json"]);
    assert!(
        synced_a["errors"].as_array().unwrap().is_empty(),
        "{synced_a}"
    );
    for agent in ["codex", "claude"] {
        assert!(
            !a.library_files_with(&format!("b3 {agent}")).is_empty(),
            "A pulled B's continuation ({agent}): {synced_a}"
        );
    }
    for m in [&a, &b] {
        let quiet = m.text(&agents, &["sync"]);
        assert!(quiet.contains("everything is up to date"), "{quiet}");
    }
    // Each agent's own files were never touched by pull on the other machine.
    assert_eq!(a.env.codex_session_ids(), std::slice::from_ref(&codex_id));
    assert_eq!(a.env.claude_session_ids(), std::slice::from_ref(&claude_id));

    // The diverged copies carry their own id on A: listed as forks of X and
    // resumable as Y.
    let listed_json = a.json(&agents, &["list", "--json"]);
    let listed = listed_json.to_string();
    for (id, agent) in [(&codex_id, "codex"), (&claude_id, "claude")] {
        let copy = sessions
            .iter()
            .find(|s| s.diverged_from.as_deref() == Some(id.as_str()))
            .expect("diverged copy");
        assert!(listed.contains(&copy.id), "A lists {}: {listed}", copy.id);
        assert_eq!(
            listed_row(&listed_json, &copy.id)["forked_from"],
            id.as_str(),
            "A lists {} as a fork of {id}: {listed}",
            copy.id
        );
        assert_ne!(
            listed_row(&listed_json, id)["forked_from"],
            copy.id.as_str(),
            "A's own {id} is not a fork of its copy {}: {listed}",
            copy.id
        );
        let files = a.library_files_with(&copy.id);
        assert!(
            files.iter().any(|f| f.to_string_lossy().contains(&copy.id)),
            "A's library file of {} is named by its id: {files:?}",
            copy.id
        );
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            if f.to_string_lossy().contains(&copy.id) {
                assert!(
                    !text.contains(&format!("\"{id}\"")),
                    "the copy's ids were rewritten"
                );
            }
        }
        let req = a.resume(&agents, &model, &copy.id, &format!("a4 {agent}"));
        assert_eq!(
            req.user_texts(),
            [
                format!("a1 {agent} hello"),
                format!("b2 {agent}"),
                format!("b3 {agent}"),
                format!("a4 {agent}")
            ]
        );
        // On B the copy is its own continuation of X: resuming Y resumes it.
        let req = b.resume(&agents, &model, &copy.id, &format!("b5 {agent}"));
        assert_eq!(
            req.user_texts(),
            [
                format!("a1 {agent} hello"),
                format!("b2 {agent}"),
                format!("b3 {agent}"),
                format!("b5 {agent}")
            ]
        );
    }
    // A's continuation of the copy goes to the copy on the server (through
    // the id rewrite), not to yet another diverged session.
    let synced_a = a.json(&agents, &["sync", "--json"]);
    assert!(
        synced_a["errors"].as_array().unwrap().is_empty()
            && synced_a["pushed"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] != "diverged"),
        "{synced_a}"
    );
    let after = server_sessions(&serve);
    for agent in ["codex", "claude"] {
        let copy = after
            .iter()
            .find(|s| server_text(&serve, &s.id).contains(&format!("a4 {agent}")))
            .unwrap_or_else(|| panic!("A's a4 {agent} reached the server: {after:#?}"));
        assert!(copy.diverged_from.is_some(), "{copy:#?}");
    }
}

/// B is logged in but never pulled: `baton resume X` finds X only on the
/// server, fetches it (with the real `resume` server fallback) and resumes
/// it; the model sees the whole history and the session lands in B's agent
/// home.
#[test]
fn resume_fetches_a_session_only_the_server_has() {
    let Some(Recorded {
        agents,
        model,
        serve,
        a,
        b,
        codex_id,
        claude_id,
    }) = recorded("resume_fetches_a_session_only_the_server_has")
    else {
        return;
    };
    a.json(&agents, &["push", "--all", "--json"]);
    assert!(b.library_files_with(&codex_id).is_empty());

    for (id, agent) in [(&codex_id, "codex"), (&claude_id, "claude")] {
        model.clear();
        let out = run_ok(b.baton(&agents).args(["resume", id, "--prompt", "next"]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("fetching session {id} from {}", serve.url)),
            "{stderr}"
        );
        let req = last_turn(&model);
        assert_eq!(
            req.user_texts(),
            [format!("a1 {agent} hello"), "next".to_owned()]
        );
        let landed = agent_file(&b, id);
        let text = std::fs::read_to_string(&landed).unwrap();
        assert!(
            text.contains(&format!("a1 {agent} hello")) && text.contains("next"),
            "{} holds the whole continued session",
            landed.display()
        );
    }
}

/// `baton sync` skips a pushed file only while it looks exactly as it did
/// (size, mtime, inode); a same-size rewrite is pushed (here: kept as a
/// diverged copy, as it changed pushed bytes), a file only touched is
/// checked by content and stays up to date.
#[test]
fn sync_notices_same_size_rewrites_and_ignores_mere_touches() {
    let model = ModelServer::start();
    let serve = start_serve();
    let a = Machine::new(&model, None);
    a.with_fixtures();
    // Login names the account the token belongs to (GET /api/v1/me).
    let login = a.json(&no_agents(), &["login", &serve.url, &serve.token, "--json"]);
    assert_eq!(login["user"], "alice", "{login}");
    // Without the argument the token is read from stdin (out of `ps`).
    let mut login = a.baton(&no_agents());
    login
        .args(["login", &serve.url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    let token = format!("{}\n", serve.token);
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), token.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("logged in to {} as alice", serve.url)),
        "{text}"
    );
    a.ok(&["push", "--all"]);
    let quiet = a.text(&no_agents(), &["sync"]);
    assert!(quiet.contains("everything is up to date"), "{quiet}");

    let ids = a.env.claude_session_ids();
    let (touched, rewritten) = (&ids[0], &ids[1]);
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    let file = std::fs::File::options()
        .append(true)
        .open(agent_file(&a, touched))
        .unwrap();
    file.set_modified(later).unwrap();
    // Same size, one byte different, new mtime: what a rewriting tool does.
    let path = agent_file(&a, rewritten);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.iter().rposition(|&b| b == b'e').expect("an `e`");
    bytes[at] = b'E';
    std::fs::write(&path, &bytes).unwrap();
    std::fs::File::options()
        .append(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();

    let synced = a.json(&no_agents(), &["sync", "--json"]);
    let pushed = synced["pushed"].as_array().unwrap();
    let status = |id: &str| {
        pushed
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status(rewritten).as_deref(), Some("diverged"), "{synced}");
    assert!(
        status(touched).is_none_or(|s| s == "up_to_date"),
        "{synced}"
    );
    let copy = server_sessions(&serve)
        .into_iter()
        .find(|s| s.diverged_from.as_deref() == Some(rewritten.as_str()))
        .expect("the rewrite reached the server as a diverged copy");
    assert_eq!(server_text(&serve, &copy.id).into_bytes(), bytes);
    let quiet = a.text(&no_agents(), &["sync"]);
    assert!(quiet.contains("everything is up to date"), "{quiet}");
}

/// B continues a session A also has, A pulls it: `baton resume X` on A
/// continues the newest history in a full-copy fork and leaves A's own file
/// byte-identical.
#[test]
fn resume_after_the_other_machine_continued_forks_the_newest_history() {
    let Some(Recorded {
        agents,
        model,
        serve,
        a,
        b,
        codex_id,
        claude_id,
    }) = recorded("resume_after_the_other_machine_continued_forks_the_newest_history")
    else {
        return;
    };
    a.json(&agents, &["push", "--all", "--json"]);
    b.json(&agents, &["pull", "--all", "--json"]);
    for (id, agent) in [(&codex_id, "codex"), (&claude_id, "claude")] {
        b.resume(&agents, &model, id, &format!("b2 {agent}"));
    }
    let synced_b = b.json(&agents, &["sync", "--json"]);
    assert!(
        all_status(&synced_b, "pushed", "pushed"),
        "B's continuation extends the server's session: {synced_b}"
    );
    a.json(&agents, &["sync", "--json"]);

    for (id, agent) in [(&codex_id, "codex"), (&claude_id, "claude")] {
        let original = agent_file(&a, id);
        let before = std::fs::read(&original).unwrap();
        model.clear();
        let out = run_ok(a.baton(&agents).args(["resume", id, "--prompt", "more"]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("pulled from {}", serve.url))
                && stderr.contains("newer bytes from another machine")
                && stderr.contains(&format!(
                    "your local file {} was not modified",
                    original.display()
                )),
            "{stderr}"
        );
        let req = last_turn(&model);
        assert_eq!(
            req.user_texts(),
            [
                format!("a1 {agent} hello"),
                format!("b2 {agent}"),
                "more".to_owned()
            ]
        );
        assert_eq!(
            std::fs::read(&original).unwrap(),
            before,
            "A's own {agent} file is byte-identical"
        );
        // The continuation is a new session forked from X.
        let new_id = stderr
            .split("as new session ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .expect("new id printed")
            .to_owned();
        assert_ne!(&new_id, id);
        let shown = a.json(&agents, &["list", "--json"]).to_string();
        assert!(shown.contains(&new_id), "{shown}");
        // --print explains the same decision but writes nothing: it prints
        // the command for the local copy.
        let sessions = a.env.codex_session_ids().len() + a.env.claude_session_ids().len();
        let printed = run_ok(a.baton(&agents).args(["resume", id, "--print"]));
        let line = String::from_utf8_lossy(&printed.stdout);
        let note = String::from_utf8_lossy(&printed.stderr);
        assert!(line.contains(id.as_str()), "{line}");
        assert!(
            note.contains("newer bytes") && note.contains("writes nothing"),
            "{note}"
        );
        assert_eq!(
            a.env.codex_session_ids().len() + a.env.claude_session_ids().len(),
            sessions,
            "--print created no session"
        );
    }
}

/// The native file of session `id` under a machine's agent homes.
fn agent_file(m: &Machine, id: &str) -> PathBuf {
    m.env
        .codex_rollout(id)
        .or_else(|| m.env.claude_transcript(id))
        .unwrap_or_else(|| panic!("no native file for {id}"))
}

#[test]
fn encrypted_sync_keeps_the_server_blind_and_round_trips() {
    let (_model, serve, a, b, ids) = fixture_pair();
    let no_agents = no_agents();

    let key = a.env.dir("keys").join("baton.key");
    let login = a.json(
        &no_agents,
        &[
            "login",
            &serve.url,
            &serve.token,
            "--encrypt",
            "--key-file",
            key.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(login["encrypt"], true);
    assert!(key.is_file(), "login --encrypt --key-file creates the key");
    let pushed = a.json(&no_agents, &["push", "--all", "--json"]);
    assert_eq!(
        sorted(ids_of(&pushed, "pushed")),
        sorted(ids.clone()),
        "every session (fork parents included) is pushed"
    );

    for s in server_sessions(&serve) {
        assert!(s.encrypted, "{} is stored encrypted", s.id);
        assert_eq!(s.cwd, None);
        let raw = server_text(&serve, &s.id);
        assert!(
            !raw.contains("\"type\"") && !raw.contains("prompt"),
            "server sees ciphertext only"
        );
    }

    // B without the key cannot read them, and is told what to do.
    let out = b
        .baton(&no_agents)
        .args(["login", &serve.url, &serve.token])
        .output()
        .expect("login");
    assert!(out.status.success());
    let out = b
        .baton(&no_agents)
        .args(["pull", "--all"])
        .output()
        .expect("pull");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key-file"));

    // With the key file, B gets byte-identical sessions in its library.
    let b_key = b.env.dir("keys").join("baton.key");
    std::fs::copy(&key, &b_key).expect("copy key");
    let key_arg = b_key.to_str().unwrap();
    b.json(
        &no_agents,
        &[
            "login",
            &serve.url,
            &serve.token,
            "--encrypt",
            "--key-file",
            key_arg,
            "--json",
        ],
    );
    let pulled = b.json(&no_agents, &["pull", "--all", "--json"]);
    assert!(pulled["errors"].as_array().unwrap().is_empty(), "{pulled}");
    for r in pulled["pulled"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        let files = r["files"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{r}");
        let got = std::fs::read(files[0].as_str().unwrap()).unwrap();
        assert_eq!(
            got,
            std::fs::read(agent_file(&a, id)).unwrap(),
            "{id} round-trips"
        );
    }
    let listed = b.json(&no_agents, &["list", "--json"]).to_string();
    for id in &ids {
        assert!(listed.contains(id.as_str()), "{id} is in B's catalog");
    }
    // A second pull and a sync move nothing.
    let again = b.json(&no_agents, &["sync", "--json"]);
    assert!(
        again["pulled"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["bytes_received"] == 0),
        "{again}"
    );
}

/// A pull that fails (here: an encrypted session and no key yet) makes
/// `baton sync --json` exit 1, and does not move the changes cursor past it:
/// the next sync, with the key, pulls it.
#[test]
fn sync_retries_failed_pulls_and_exits_nonzero_on_errors() {
    let (_model, serve, a, b, ids) = fixture_pair();
    let pass = [("BATON_PASSPHRASE", "correct horse")];
    let login = ["login", &serve.url, &serve.token];
    assert!(
        a.output(&pass, &[&login[..], &["--encrypt"]].concat())
            .status
            .success()
    );
    assert!(a.output(&pass, &["push", "--all"]).status.success());
    b.ok(&login);

    let out = b.output(&[], &["sync", "--json"]);
    assert_eq!(out.status.code(), Some(1), "errors make sync fail");
    let report: Value = serde_json::from_slice(&out.stdout).expect("sync JSON");
    assert_eq!(ids_of(&report, "errors").len(), ids.len(), "{report}");

    let out = b.output(&pass, &["sync", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("sync JSON");
    assert_eq!(
        sorted(ids_of(&report, "pulled")),
        sorted(ids),
        "the failed pulls are retried: {report}"
    );
}

/// Sessions only baton holds (pulled or imported) are pushed from the
/// library: a machine that pulled everything fills a new, empty server.
#[test]
fn push_sends_sessions_only_the_library_holds() {
    let model = ModelServer::start();
    let (first, second) = (start_serve(), start_serve());
    let a = Machine::new(&model, None);
    let b = Machine::new(&model, None);
    let ids = a.with_fixtures();
    a.ok(&["login", &first.url, &first.token]);
    a.ok(&["push", "--all"]);
    b.ok(&["login", &first.url, &first.token]);
    b.ok(&["pull", "--all"]);

    b.ok(&["login", &second.url, &second.token]);
    let pushed = b.json(&no_agents(), &["push", "--all", "--json"]);
    assert_eq!(
        sorted(ids_of(&pushed, "pushed")),
        sorted(ids.clone()),
        "{pushed}"
    );
    for id in &ids {
        assert_eq!(
            server_text(&second, id).into_bytes(),
            std::fs::read(agent_file(&a, id)).unwrap(),
            "{id} reached the new server byte for byte"
        );
    }
    // Nothing new since: a sync sends nothing.
    let synced = b.json(&no_agents(), &["sync", "--json"]);
    assert!(all_status(&synced, "pushed", "up_to_date"), "{synced}");
}

/// One sync, push or pull at a time per `BATON_HOME`: a second run says who
/// holds the lock and waits; two pulls at once leave exact copies.
#[test]
fn concurrent_runs_wait_for_each_other() {
    let (model, serve, a, b, ids) = fixture_pair();
    for m in [&a, &b] {
        m.ok(&["login", &serve.url, &serve.token]);
    }
    a.ok(&["push", "--all"]);

    let held =
        baton_sync::state::SyncLock::acquire(&b.baton_home, |_| panic!("free")).expect("lock");
    let mut child = b
        .baton(&no_agents())
        .args(["pull", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("baton pull starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let waiting = format!(
        "another baton sync, push or pull (pid {}) is running",
        std::process::id()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("a waiting message");
        if line.contains(&waiting) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the pull waits for the lock"
    );
    drop(held);
    assert!(child.wait().unwrap().success());

    // Two pulls into a fresh machine at once: both succeed, copies are exact.
    let c = Machine::new(&model, None);
    c.ok(&["login", &serve.url, &serve.token]);
    let runs: Vec<Child> = (0..2)
        .map(|_| {
            c.baton(&no_agents())
                .args(["pull", "--all"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("baton pull starts")
        })
        .collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success());
    }
    for id in &ids {
        let want = std::fs::read(agent_file(&a, id)).unwrap();
        let copies = c.library_files_with(id);
        assert!(!copies.is_empty(), "{id} pulled");
        for f in copies
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "jsonl"))
        {
            if f.to_string_lossy().contains(id.as_str())
                && !f.to_string_lossy().contains("subagents")
            {
                assert_eq!(
                    std::fs::read(f).unwrap(),
                    want,
                    "{} is an exact copy",
                    f.display()
                );
            }
        }
    }
}

/// A session continued on two machines: the machine that continued first
/// pulls the other's diverged copy Y of X, and lists Y as a fork of X
/// (a lineage file next to the library copy), for both agents.
#[test]
fn pulled_diverged_copies_are_listed_as_forks() {
    // Both machines hold the same sessions, then continue them differently.
    let (_model, serve, a, b, ids) = fixture_pair();
    b.with_fixtures();
    for m in [&a, &b] {
        m.ok(&["login", &serve.url, &serve.token]);
    }
    a.ok(&["push", "--all"]);
    for id in &ids {
        append_line(&agent_file(&a, id), "from-a");
        append_line(&agent_file(&b, id), "from-b");
    }
    a.ok(&["sync"]);
    let synced = b.json(&no_agents(), &["sync", "--json"]);
    let diverged: Vec<&Value> = synced["pushed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "diverged")
        .collect();
    assert_eq!(diverged.len(), ids.len(), "{synced}");
    a.ok(&["sync"]);
    let listed = a.json(&no_agents(), &["list", "--json"]);
    // The lineage file wins over a parent the copy's bytes name (a copy of a
    // fork still carries the fork's own parent), and the original X in A's
    // agent home keeps its own parent: it never becomes a fork of its copy.
    let server = server_sessions(&serve);
    let mut checked = Vec::new();
    for r in diverged {
        let (x, y) = (
            r["diverged_from"].as_str().unwrap(),
            r["remote_id"].as_str().unwrap(),
        );
        let original = server.iter().find(|s| s.id == x).expect("X on the server");
        assert_eq!(listed_row(&listed, y)["forked_from"], x, "{listed}");
        let x_parent = &listed_row(&listed, x)["forked_from"];
        assert_ne!(x_parent, y, "{x} is not a fork of its copy {y}: {listed}");
        assert_eq!(
            x_parent.as_str(),
            original.forked_from.as_deref(),
            "{x} keeps its parent: {listed}"
        );
        checked.push((original.agent, original.forked_from.is_some()));
    }
    // Both agents, with copies of plain sessions and of forks.
    for agent in [Agent::Codex, Agent::Claude] {
        for fork in [false, true] {
            assert!(checked.contains(&(agent, fork)), "{checked:?}");
        }
    }
}

/// Two `baton serve` replicas on one PostgreSQL and bucket: replica 1 is
/// killed (SIGKILL) in the middle of A's large push; the retry through
/// replica 2 completes and the server's bytes hash-equal A's file; B pulls
/// the same bytes through replica 2; then A and B continue the same sessions
/// and sync through different replicas: both histories are kept and the
/// divergence is shown.
#[test]
fn team_replicas_survive_a_kill_mid_push_and_keep_both_continuations() {
    let Some(team) = baton_testkit::team::team_services() else {
        return;
    };
    let mut storage: Vec<(String, String)> = team
        .aws_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    storage.push(("BATON_DATABASE_URL".into(), team.database()));
    storage.push(("BATON_BLOBS".into(), team.bucket()));
    let mut one = start_serve_with(&storage, None);
    let two = start_serve_with(&storage, Some(&one.token));
    let model = ModelServer::start();
    let (a, b) = (Machine::new(&model, None), Machine::new(&model, None));
    let ids = a.with_fixtures();
    b.with_fixtures();
    // A grows one session by 48 MiB of text that does not compress away:
    // its push takes a while.
    let big_id = ids[0].clone();
    let big = agent_file(&a, &big_id);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..48 {
        let text: String = (0..1 << 20)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                char::from(b'a' + (seed >> 59) as u8)
            })
            .collect();
        append_line(&big, &format!("big-{i}-{text}"));
    }
    a.ok(&["login", &one.url, &one.token]);
    let mut push = a
        .baton(&no_agents())
        .args(["push", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("baton push starts");
    // Kill replica 1 once the session exists on the server, mid-push.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server_sessions(&two).iter().any(|s| s.id == big_id) {
        assert!(
            Instant::now() < deadline,
            "the push never reached the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    one.kill();
    let killed = push.wait().expect("push ends");
    assert!(!killed.success(), "the push was cut off by the kill");

    // The retry through replica 2 completes: the server holds A's bytes.
    a.ok(&["login", &two.url, &two.token]);
    a.ok(&["push", "--all"]);
    let file = std::fs::read(&big).expect("A's file");
    assert_eq!(
        server_sha(&two, &big_id),
        baton_protocol::sha256_hex(&file),
        "the server's copy hash-equals A's"
    );
    // B pulls the same bytes through replica 2.
    b.ok(&["login", &two.url, &two.token]);
    b.ok(&["pull", "--all"]);
    let pulled = b.library_files_with("big-47-");
    assert_eq!(pulled.len(), 1, "{pulled:?}");
    assert_eq!(std::fs::read(&pulled[0]).expect("B's copy"), file);

    // Both continue the other sessions; A syncs through a new replica 3, B through 2.
    let three = start_serve_with(&storage, Some(&two.token));
    a.ok(&["login", &three.url, &three.token]);
    let small: Vec<&String> = ids.iter().filter(|id| **id != big_id).collect();
    for id in &small {
        append_line(&agent_file(&a, id), "from-a");
        append_line(&agent_file(&b, id), "from-b");
    }
    a.ok(&["sync"]);
    let synced = b.json(&no_agents(), &["sync", "--json"]);
    let diverged: Vec<&Value> = synced["pushed"]
        .as_array()
        .expect("pushed rows")
        .iter()
        .filter(|r| r["status"] == "diverged")
        .collect();
    assert_eq!(diverged.len(), small.len(), "{synced}");
    for r in diverged {
        let (x, y) = (
            r["diverged_from"].as_str().expect("original"),
            r["remote_id"].as_str().expect("copy"),
        );
        // Both histories are kept, whichever replica is asked.
        let original = server_text(&three, x);
        let copy = server_text(&two, y);
        assert!(
            original.contains("from-a") && !original.contains("from-b"),
            "{x}"
        );
        assert!(copy.contains("from-b") && !copy.contains("from-a"), "{y}");
    }
}

/// The whole-stream SHA-256 of session `id`'s main stream as `serve` announces it.
fn server_sha(serve: &Serve, id: &str) -> String {
    server_sessions(serve)
        .into_iter()
        .find(|s| s.id == id)
        .and_then(|s| s.streams.into_iter().find(|st| st.name == "main"))
        .map(|st| st.sha256)
        .unwrap_or_else(|| panic!("session {id} on the server"))
}

/// Append one JSON line (`{"type":"baton-test","text":TAG}`) to `path`.
fn append_line(path: &Path, tag: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    writeln!(f, "{{\"type\":\"baton-test\",\"text\":\"{tag}\"}}").expect("append");
}
