//! Peak resident memory of `baton` commands on one large session (a few
//! hundred MB of a Codex rollout or a Claude Code transcript, each tool
//! output 1 MB): indexing, showing, exporting in every format, resuming, forking,
//! converting, importing, rehydrating, pushing, pulling and the server's
//! ingest stay under 256 MiB whatever the file's size, because files are
//! read in pieces, the catalog keeps long texts only as offsets into the
//! native file, and output is streamed. Each command runs as its own
//! process, measured with wait4, and its output is checked to be whole.

#![allow(clippy::disallowed_methods)] // tests build their own scratch files

mod common;

use baton_native::Agent;
use common::{Serve, parse_json, start_serve};
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The limit every command stays under, in KiB.
const LIMIT_KIB: i64 = 256 << 10;

/// Size of the generated session.
const SESSION_BYTES: u64 = 320 << 20;

/// Turns of the generated session (one 1 MB tool output each).
const TURNS: u64 = SESSION_BYTES >> 20;

/// One machine: its own `BATON_HOME` and agent homes, the peak of every
/// command run on it and the commands that went over the limit.
struct Machine {
    baton_home: PathBuf,
    codex: PathBuf,
    claude: PathBuf,
    peaks: Vec<String>,
    over: Vec<String>,
}

impl Machine {
    /// A machine whose homes are below `dir`, all empty.
    fn new(dir: &Path) -> Machine {
        let m = Machine {
            baton_home: dir.join("baton-home"),
            codex: dir.join("codex"),
            claude: dir.join("claude"),
            peaks: Vec::new(),
            over: Vec::new(),
        };
        std::fs::create_dir_all(&m.codex).unwrap();
        std::fs::create_dir_all(&m.claude).unwrap();
        m
    }

    /// The home of `agent`'s sessions here.
    fn home(&self, agent: Agent) -> &Path {
        match agent {
            Agent::Codex => &self.codex,
            Agent::Claude => &self.claude,
        }
    }

    /// `baton ARGS` over this machine's homes, stdout to `stdout`.
    fn command(&self, args: &[&str], stdout: Stdio) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.env("BATON_HOME", &self.baton_home)
            .env("NO_COLOR", "1")
            .args(args)
            .arg("--codex-home")
            .arg(&self.codex)
            .arg("--claude-dir")
            .arg(&self.claude)
            .stdout(stdout)
            .stderr(Stdio::inherit());
        cmd
    }

    /// Run `baton ARGS` with stdout to `out` (or nowhere), as `what`: it
    /// succeeds and peaks under the limit.
    fn run(&mut self, what: &str, args: &[&str], out: Option<&Path>) {
        let stdout = match out {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let (code, kib) = baton_testkit::run_with_peak_rss(&mut self.command(args, stdout));
        self.record(what, code, kib);
    }

    /// Run `baton ARGS --json` as `what` (see [`Machine::run`]): its JSON.
    fn json(&mut self, what: &str, args: &[&str], scratch: &Path) -> Value {
        let out = scratch.join("out.json");
        let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        self.run(what, &args, Some(&out));
        parse_json(what, &std::fs::read(&out).unwrap())
    }

    /// Note `what`'s peak `kib`; it exited 0. Commands over the limit fail
    /// the test in [`Machine::report`], after the rest were measured.
    fn record(&mut self, what: &str, code: i32, kib: i64) {
        assert_eq!(code, 0, "{what} failed");
        self.peaks.push(format!("{what}: {} MiB", kib >> 10));
        if kib >= LIMIT_KIB {
            self.over
                .push(format!("{what} peaked at {kib} KiB resident"));
        }
    }

    /// Print every peak measured on these machines (`name`d); fail if any
    /// command went over the limit.
    fn report<const N: usize>(machines: [(&str, Machine); N]) {
        let mut over = Vec::new();
        for (name, m) in machines {
            println!("{name}: {}", m.peaks.join(", "));
            over.extend(m.over.iter().map(|o| format!("{name}: {o}")));
        }
        assert!(over.is_empty(), "{}", over.join("; "));
    }
}

/// A big session of `agent` on a machine in `dir`: the machine, the
/// session's file and id.
fn big_session(agent: Agent, dir: &Path) -> (Machine, PathBuf, String) {
    let machine = Machine::new(dir);
    let (native, id) =
        baton_testkit::write_big_session(agent, machine.home(agent), 7, SESSION_BYTES, TURNS)
            .unwrap();
    (machine, native, id)
}

/// Size of `path` in bytes.
fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Does some line of `path` hold `needle`? (Read a line at a time.)
fn file_contains(path: &Path, needle: &str) -> bool {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    file.split(b'\n').any(|line| {
        line.unwrap()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    })
}

/// Do the files `a` and `b` hold the same bytes? (Compared in pieces.)
fn same_bytes(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    if len(a) != len(b) {
        return false;
    }
    let mut ra = std::io::BufReader::new(std::fs::File::open(a).unwrap());
    let mut rb = std::io::BufReader::new(std::fs::File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    loop {
        let n = ra.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        rb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// The `path` of the one file in a `--json` answer's `files`.
fn only_file(answer: &Value) -> PathBuf {
    let files = answer["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{answer}");
    PathBuf::from(files[0]["path"].as_str().unwrap())
}

/// Index, show, show --json and export md, html and jsonl of a big session
/// of `agent`; returns the machine, the session's file and id.
fn show_and_export(agent: Agent, dir: &Path) -> (Machine, PathBuf, String) {
    let (mut m, native, id) = big_session(agent, dir);
    let native_len = len(&native);
    m.run("index", &["index"], None);
    let shown = dir.join("show.txt");
    m.run("show", &["show", &id], Some(&shown));
    let json = dir.join("show.json");
    m.run("show --json", &["show", &id, "--json"], Some(&json));
    for format in ["md", "html", "jsonl"] {
        let out = dir.join(format!("export.{format}"));
        let out_arg = out.display().to_string();
        m.run(
            &format!("export --format {format}"),
            &["export", &id, "--format", format, "-o", &out_arg],
            None,
        );
        match format {
            "jsonl" => assert!(same_bytes(&out, &native), "export --format jsonl differs"),
            _ => {
                let len = len(&out);
                assert!(
                    len > native_len / 2,
                    "export --format {format}: {len} bytes"
                );
                std::fs::remove_file(&out).unwrap();
            }
        }
    }

    // Everything was shown: the last tool output whole, and valid JSON.
    let last = format!("bigmarker{}", TURNS - 1);
    assert!(file_contains(&shown, &last), "show lacks {last}");
    assert!(len(&shown) > native_len / 2);
    std::fs::remove_file(&shown).unwrap();
    // Parsed without holding the messages: a big test process would raise
    // the peak its later children inherit across exec.
    #[derive(serde::Deserialize)]
    struct Shown {
        session: ShownSession,
        messages: Vec<serde::de::IgnoredAny>,
    }
    #[derive(serde::Deserialize)]
    struct ShownSession {
        id: String,
    }
    let file = std::io::BufReader::new(std::fs::File::open(&json).unwrap());
    let doc: Shown = serde_json::from_reader(file).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(doc.messages.len() as u64, 4 * TURNS);
    assert_eq!(doc.session.id, id);

    // Resume finds the session where its agent keeps it and the directory
    // it ran in (not on this machine: printed, not run).
    m.run("resume --print", &["resume", &id, "--print"], None);
    (m, native, id)
}

/// Export a big session as an envelope (to `scratch/export.envelope`),
/// fork it whole and before its middle prompt, each streamed from its file;
/// checks both forks hold what they should; returns the envelope's path.
fn envelope_and_forks(m: &mut Machine, native: &Path, id: &str, scratch: &Path) -> PathBuf {
    let native_len = len(native);
    // The envelope is zstd-compressed: import on machine B checks it whole.
    let envelope = scratch.join("export.envelope");
    let envelope_arg = envelope.display().to_string();
    m.run(
        "export --format envelope",
        &["export", id, "--format", "envelope", "-o", &envelope_arg],
        None,
    );
    assert!(len(&envelope) > 0);
    let whole = m.json("fork", &["fork", id], scratch);
    let whole = PathBuf::from(whole["path"].as_str().unwrap());
    let whole_len = len(&whole);
    assert!(
        whole_len.abs_diff(native_len) < 64 << 10,
        "a whole fork holds {whole_len} of {native_len} bytes"
    );
    assert!(file_contains(&whole, &format!("bigmarker{}", TURNS - 1)));
    std::fs::remove_file(&whole).unwrap();

    let k = TURNS / 2 + 1;
    let half = m.json(
        "fork --before-prompt",
        &["fork", id, "--before-prompt", &k.to_string()],
        scratch,
    );
    let half = PathBuf::from(half["path"].as_str().unwrap());
    let half_len = len(&half);
    assert!(
        half_len.abs_diff(native_len / 2) < 4 << 20,
        "a fork before prompt {k} of {TURNS} holds {half_len} of {native_len} bytes"
    );
    assert!(file_contains(&half, &format!("bigmarker{}", k - 2)));
    assert!(!file_contains(
        &half,
        &format!("big prompt number {}", k - 1)
    ));
    std::fs::remove_file(&half).unwrap();
    envelope
}

/// Every local command on a big session of `agent` but convert: index,
/// show, export in every format (envelope included), fork (whole and at a
/// prompt), and on a second machine import of the envelope and rehydrate
/// into a fresh agent home.
fn local_commands(agent: Agent) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut a, native, id) = show_and_export(agent, &tmp.path().join("a"));
    let scratch = tmp.path();
    let envelope = envelope_and_forks(&mut a, &native, &id, scratch);
    let envelope_arg = envelope.display().to_string();

    // Machine B: import the envelope, then rehydrate into its empty home.
    let mut b = Machine::new(&tmp.path().join("b"));
    let imported = b.json("import", &["import", &envelope_arg], scratch);
    std::fs::remove_file(&envelope).unwrap();
    assert_eq!(imported["id"], id.as_str());
    let library_copy = only_file(&imported);
    assert!(same_bytes(&library_copy, &native), "import differs");
    let rehydrated = b.json("rehydrate", &["rehydrate", &id], scratch);
    let placed = only_file(&rehydrated);
    assert!(placed.starts_with(b.home(agent)), "{placed:?}");
    assert!(same_bytes(&placed, &native), "rehydrate differs");
    Machine::report([
        (&format!("{agent} on machine A"), a),
        (&format!("{agent} on machine B"), b),
    ]);
}

/// Convert a big session of `agent` into a new session of the other agent;
/// the new file holds the last prompt.
fn convert_to_the_other_agent(agent: Agent) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut a, _, id) = big_session(agent, &tmp.path().join("a"));
    let scratch = tmp.path();
    let other = match agent {
        Agent::Codex => Agent::Claude,
        Agent::Claude => Agent::Codex,
    };
    let converted = a.json(
        "convert",
        &["convert", &id, "--to", other.as_str()],
        scratch,
    );
    let converted = PathBuf::from(converted["path"].as_str().unwrap());
    assert!(converted.starts_with(a.home(other)), "{converted:?}");
    let last_prompt = format!("big prompt number {}", TURNS - 1);
    assert!(file_contains(&converted, &last_prompt));
    Machine::report([(&format!("{agent} converted to {other}"), a)]);
}

/// Machine A pushes a big session of `agent` to a `baton serve`, machine B
/// (fresh homes) pulls it; the push, the pull and the server stay under the
/// limit and B's copy equals A's file.
fn push_and_pull(agent: Agent) {
    let tmp = tempfile::tempdir().unwrap();
    let serve: Serve = start_serve();
    let (mut a, native, id) = big_session(agent, &tmp.path().join("a"));
    let mut b = Machine::new(&tmp.path().join("b"));
    let scratch = tmp.path();
    for m in [&mut a, &mut b] {
        m.json("login", &["login", &serve.url, &serve.token], scratch);
    }
    let pushed = a.json("push", &["push", &id], scratch);
    assert_eq!(pushed["errors"], serde_json::json!([]), "{pushed}");
    let pulled = b.json("pull", &["pull", &id], scratch);
    assert_eq!(pulled["errors"], serde_json::json!([]), "{pulled}");
    let (code, kib) = serve.stop_with_peak_rss();
    b.record("serve (ingest and pull)", code, kib);
    let library = b.baton_home.join("library");
    let copy = std::fs::read_dir(library.join(agent.as_str()))
        .unwrap()
        .flatten()
        .flat_map(|e| walk(&e.path()))
        .find(|p| len(p) == len(&native))
        .unwrap_or_else(|| panic!("no pulled file of {} bytes", len(&native)));
    assert!(same_bytes(&copy, &native), "the pulled copy differs");
    Machine::report([
        (&format!("{agent} sync, machine A"), a),
        (&format!("{agent} sync, machine B"), b),
    ]);
}

/// Every file at or below `path`.
fn walk(path: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.flatten().flat_map(|e| walk(&e.path())).collect(),
        Err(_) => vec![path.to_path_buf()],
    }
}

/// Index, show, export in every format and fork a big session of `agent`.
fn show_export_and_fork(agent: Agent) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut m, native, id) = show_and_export(agent, &tmp.path().join("a"));
    envelope_and_forks(&mut m, &native, &id, tmp.path());
    Machine::report([(agent.as_str(), m)]);
}

#[test]
fn index_show_export_and_fork_of_a_large_codex_session_stay_under_256_mib() {
    show_export_and_fork(Agent::Codex);
}

#[test]
fn index_show_export_and_fork_of_a_large_claude_session_stay_under_256_mib() {
    show_export_and_fork(Agent::Claude);
}

#[test]
fn local_commands_on_a_large_codex_session_stay_under_256_mib() {
    local_commands(Agent::Codex);
}

#[test]
fn local_commands_on_a_large_claude_session_stay_under_256_mib() {
    local_commands(Agent::Claude);
}

#[test]
fn convert_of_a_large_codex_session_stays_under_256_mib() {
    convert_to_the_other_agent(Agent::Codex);
}

#[test]
fn convert_of_a_large_claude_session_stays_under_256_mib() {
    convert_to_the_other_agent(Agent::Claude);
}

#[test]
fn push_pull_and_server_ingest_of_a_large_codex_session_stay_under_256_mib() {
    push_and_pull(Agent::Codex);
}

#[test]
fn push_pull_and_server_ingest_of_a_large_claude_session_stay_under_256_mib() {
    push_and_pull(Agent::Claude);
}
