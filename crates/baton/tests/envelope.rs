//! `baton export --format envelope`, `baton import`, `rehydrate` and `fork`
//! on the shared fixtures (no agent needed): round trips and every bad input
//! fails with a clear message, exit code 1, and nothing written.

use assert_cmd::Command;
use baton_testkit::{copy_tree, fixtures_dir};
use predicates::str::contains;
use std::path::{Path, PathBuf};

const CODEX_FORK: &str = "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b";
const CODEX_ROOT: &str = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
const CLAUDE: &str = "24618527-ae46-4f6d-902b-96792270f328";

/// A scratch machine: fixture homes copied, an empty baton home.
struct Machine {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    codex: PathBuf,
    claude: PathBuf,
    baton: PathBuf,
}

impl Machine {
    fn with_fixtures() -> Machine {
        let m = Machine::empty();
        copy_tree(&fixtures_dir().join("codex"), &m.codex).unwrap();
        copy_tree(&fixtures_dir().join("claude/.claude"), &m.claude).unwrap();
        m
    }

    fn empty() -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Machine {
            codex: root.join("codex"),
            claude: root.join("claude"),
            baton: root.join("baton"),
            root,
            _tmp: tmp,
        }
    }

    fn baton(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.root)
            .env("BATON_HOME", &self.baton)
            .env("CODEX_HOME", &self.codex)
            .env("CLAUDE_CONFIG_DIR", &self.claude)
            .current_dir(&self.root);
        cmd
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .baton()
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    }
}

/// Every file below `dir` (sorted), to prove nothing was written.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir(dir);
    out.sort();
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walkdir(&p) } else { vec![p] }
        })
        .collect()
}

fn export(m: &Machine, id: &str) -> PathBuf {
    let out = m.root.join(format!("{id}.baton"));
    m.baton()
        .args(["export", id, "--format", "envelope", "-o"])
        .arg(&out)
        .assert()
        .success();
    out
}

#[test]
fn codex_fork_lineage_round_trips_through_an_envelope() {
    let src = Machine::with_fixtures();
    let file = export(&src, CODEX_FORK);
    let dst = Machine::empty();
    let out = dst.json(&["import", file.to_str().unwrap(), "--json"]);
    assert_eq!(out["id"], CODEX_FORK);
    let paths: Vec<&str> = out["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "the parent travels with the fork");
    for (path, id) in paths.iter().zip([CODEX_ROOT, CODEX_FORK]) {
        let original = files(&src.codex)
            .into_iter()
            .find(|p| p.to_string_lossy().contains(id))
            .unwrap();
        assert_eq!(
            std::fs::read(path).unwrap(),
            std::fs::read(original).unwrap()
        );
        assert!(Path::new(path).starts_with(dst.baton.join("library/codex/sessions")));
    }
    // The catalog lists the imported session, and importing twice changes nothing.
    dst.baton()
        .args(["show", CODEX_FORK])
        .assert()
        .success()
        .stdout(contains("pub fork prompt gamma"));
    let again = dst.json(&["import", file.to_str().unwrap(), "--json"]);
    assert_eq!(again["files"][1]["outcome"], "unchanged");

    // Rehydrate into the (empty) agent home at a new location.
    let map = "/srv/corpus/work-pub/beta=/home/me/beta";
    let re = dst.json(&["rehydrate", CODEX_FORK, "--map-path", map, "--json"]);
    assert_eq!(re["cwd"], "/home/me/beta");
    assert_eq!(re["files"].as_array().unwrap().len(), 2);
    let written = files(&dst.codex);
    assert_eq!(
        written
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .count(),
        2
    );
    let text = std::fs::read_to_string(re["files"][1]["path"].as_str().unwrap()).unwrap();
    assert!(text.contains("\"cwd\":\"/home/me/beta\"") && !text.contains("\"cwd\":\"/srv/corpus"));
}

#[test]
fn claude_round_trip_and_print() {
    let src = Machine::with_fixtures();
    let file = export(&src, CLAUDE);
    let dst = Machine::empty();
    dst.json(&["import", file.to_str().unwrap(), "--json"]);
    let re = dst.json(&[
        "rehydrate",
        CLAUDE,
        "--map-path",
        "/srv/corpus/work-pub/beta=/w/beta",
        "--json",
    ]);
    let path = re["files"][0]["path"].as_str().unwrap();
    assert!(
        path.ends_with(&format!("claude/projects/-w-beta/{CLAUDE}.jsonl")),
        "{path}"
    );
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    assert!(
        mtime.elapsed().unwrap().as_secs() < 600,
        "fresh mtime survives Claude's sweep"
    );
    // --print shows the exact command, the agent's home and cwd included.
    let printed = dst
        .baton()
        .args(["resume", CLAUDE, "--print", "--prompt", "hi there"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let line = String::from_utf8(printed).unwrap();
    assert!(
        line.starts_with("cd /w/beta && CLAUDE_CONFIG_DIR="),
        "{line}"
    );
    assert!(line.contains(dst.claude.to_str().unwrap()), "{line}");
    assert!(
        line.trim_end()
            .ends_with(&format!("-p --resume {CLAUDE} 'hi there'")),
        "{line}"
    );
    // /w/beta does not exist here: resume explains how to move the session.
    dst.baton()
        .args(["resume", CLAUDE, "--prompt", "x"])
        .assert()
        .code(1)
        .stderr(contains("--map-path"));
}

#[test]
fn fork_writes_next_to_the_source_and_refuses_empty_prefixes() {
    let m = Machine::with_fixtures();
    let out = m.json(&["fork", CODEX_FORK, "--before-prompt", "3", "--json"]);
    let path = PathBuf::from(out["path"].as_str().unwrap());
    assert!(path.starts_with(m.codex.join("sessions")));
    assert_eq!(out["forked_from"], CODEX_FORK);
    let before = files(&m.root);
    for args in [["--drop-last", "4"], ["--before-prompt", "1"]] {
        m.baton()
            .args(["fork", CODEX_FORK])
            .args(args)
            .assert()
            .code(1)
            .stderr(contains("nothing would remain"));
    }
    let after: Vec<_> = files(&m.root)
        .into_iter()
        .filter(|p| !p.starts_with(&m.baton))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|p| !p.starts_with(&m.baton))
        .collect();
    assert_eq!(after, before, "nothing written");
}

#[test]
fn bad_input_fails_clearly_and_writes_nothing() {
    let m = Machine::with_fixtures();
    m.baton()
        .args(["fork", "ffffffff-0000"])
        .assert()
        .code(1)
        .stderr(contains("ffffffff-0000"));
    m.baton()
        .args(["resume", "01a1ff8d", "--print"])
        .assert()
        .code(1)
        .stderr(contains("matches"));

    // A target home whose parent is a regular file.
    let blocker = m.root.join("plain-file");
    std::fs::write(&blocker, b"x").unwrap();
    let bad_home = blocker.join("codex");
    m.baton()
        .arg("--codex-home")
        .arg(&bad_home)
        .arg("--codex-home")
        .arg(&m.codex)
        .args(["rehydrate", CODEX_ROOT])
        .assert()
        .code(1)
        .stderr(contains("writable"));

    // A Codex writer lock held by another process.
    let target = m.root.join("other-codex");
    let lock_dir = target.join("thread-writer-locks");
    std::fs::create_dir_all(&lock_dir).unwrap();
    let lock = std::fs::File::create(lock_dir.join(format!("{CODEX_ROOT}.lock"))).unwrap();
    lock.try_lock().unwrap();
    m.baton()
        .arg("--codex-home")
        .arg(&target)
        .arg("--codex-home")
        .arg(&m.codex)
        .args(["rehydrate", CODEX_ROOT])
        .assert()
        .code(1)
        .stderr(contains("being written by another process"));
    assert!(!target.join("sessions").exists() || files(&target.join("sessions")).is_empty());
    drop(lock);

    // Corrupt and tampered envelopes.
    let dst = Machine::empty();
    let garbage = dst.root.join("garbage.baton");
    std::fs::write(&garbage, b"not an envelope").unwrap();
    dst.baton()
        .args(["import"])
        .arg(&garbage)
        .assert()
        .code(1)
        .stderr(contains("not a valid baton envelope"));
    let good = export(&m, CLAUDE);
    let mut raw = zstd::decode_all(std::fs::read(&good).unwrap().as_slice()).unwrap();
    let last = raw.len() - 10;
    raw[last] ^= 0x20;
    let tampered = dst.root.join("tampered.baton");
    std::fs::write(&tampered, zstd::encode_all(raw.as_slice(), 3).unwrap()).unwrap();
    dst.baton()
        .args(["import"])
        .arg(&tampered)
        .assert()
        .code(1)
        .stderr(contains("hash mismatch"));
    assert!(
        files(&dst.baton.join("library")).is_empty(),
        "nothing imported"
    );
}
