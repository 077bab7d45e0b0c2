//! `baton export --format envelope`, `baton import`, `rehydrate` and `fork`
//! on the shared fixtures (no agent needed): round trips and every bad input
//! fails with a clear message, exit code 1, and nothing written.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use assert_cmd::Command;
use baton_testkit::{copy_tree, fixtures_dir};
use predicates::prelude::*;
use predicates::str::contains;
use std::path::{Path, PathBuf};

mod common;

use common::assert_json;

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
        assert_json(self.baton().args(args))
    }

    /// `baton rehydrate ID` into the Codex home `target` (the first
    /// `--codex-home`) fails with `message` in stderr and writes nothing
    /// outside the baton home.
    fn rehydrate_fails(&self, target: &Path, id: &str, message: &str, why: &str) {
        let before = self.tree_outside_baton();
        self.baton()
            .arg("--codex-home")
            .arg(target)
            .arg("--codex-home")
            .arg(&self.codex)
            .args(["rehydrate", id])
            .assert()
            .code(1)
            .stderr(contains(message));
        assert_eq!(self.tree_outside_baton(), before, "{why}");
    }
}

/// Every file below `dir` (sorted), to prove nothing was written.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir(dir, false);
    out.sort();
    out
}

/// Every path below `dir`, files and (with `dirs`) directories.
fn walkdir(dir: &Path, dirs: bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() {
                let mut below = walkdir(&p, dirs);
                if dirs {
                    below.push(p);
                }
                below
            } else {
                vec![p]
            }
        })
        .collect()
}

impl Machine {
    /// Every file and directory of the machine outside `BATON_HOME` (whose
    /// catalog any command may refresh), sorted: compared before and after
    /// a refused command to prove it wrote nothing.
    fn tree_outside_baton(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = walkdir(&self.root, true)
            .into_iter()
            .filter(|p| !p.starts_with(&self.baton))
            .collect();
        out.sort();
        out
    }
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
            .ends_with(&format!("-p --resume {CLAUDE} -- 'hi there'")),
        "{line}"
    );
    // The imported (unmoved) library copy is the same history as the moved
    // agent-home copy: no talk of a different continuation.
    let out = dst
        .baton()
        .args(["resume", CLAUDE, "--print"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("continuation"), "{stderr}");
    // --print --json: the same command as data.
    let cmd = dst.json(&["resume", CLAUDE, "--print", "--json", "--prompt", "-x"]);
    assert_eq!(cmd["agent"], "claude");
    assert_eq!(cmd["session_id"], CLAUDE);
    assert_eq!(cmd["cwd"], "/w/beta");
    assert_eq!(
        cmd["env"]["CLAUDE_CONFIG_DIR"],
        dst.claude.to_str().unwrap()
    );
    let argv: Vec<&str> = cmd["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(argv, ["claude", "-p", "--resume", CLAUDE, "--", "-x"]);
    // /w/beta does not exist here: resume explains how to move the session.
    dst.baton()
        .args(["resume", CLAUDE, "--prompt", "x"])
        .assert()
        .code(1)
        .stderr(contains("--map-path").and(contains("resume the id it prints")));
}

#[test]
fn fork_writes_next_to_the_source_and_refuses_empty_prefixes() {
    let m = Machine::with_fixtures();
    let out = m.json(&["fork", CODEX_FORK, "--before-prompt", "3", "--json"]);
    let path = PathBuf::from(out["path"].as_str().unwrap());
    assert!(path.starts_with(m.codex.join("sessions")));
    assert_eq!(out["forked_from"], CODEX_FORK);
    let before = m.tree_outside_baton();
    for args in [["--drop-last", "4"], ["--before-prompt", "1"]] {
        m.baton()
            .args(["fork", CODEX_FORK])
            .args(args)
            .assert()
            .code(1)
            .stderr(contains("nothing would remain"));
    }
    assert_eq!(m.tree_outside_baton(), before, "nothing written");
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
    m.rehydrate_fails(&bad_home, CODEX_ROOT, "writable", "nothing written");

    // A Codex writer lock held by another process.
    let target = m.root.join("other-codex");
    let lock_dir = target.join("thread-writer-locks");
    std::fs::create_dir_all(&lock_dir).unwrap();
    let lock = std::fs::File::create(lock_dir.join(format!("{CODEX_ROOT}.lock"))).unwrap();
    lock.try_lock().unwrap();
    let busy = "being written by another process";
    m.rehydrate_fails(&target, CODEX_ROOT, busy, "nothing written");
    drop(lock);

    // Only the session's own lock held: its ancestor (whose lock is free) is
    // not written either, so no half lineage is left behind.
    let fork_lock = std::fs::File::create(lock_dir.join(format!("{CODEX_FORK}.lock"))).unwrap();
    fork_lock.try_lock().unwrap();
    m.rehydrate_fails(&target, CODEX_FORK, busy, "not even the ancestor");
    drop(fork_lock);

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

/// Copy a machine's agent homes into a new scratch machine and append `line`
/// to the native file of `id` there: the same session, continued.
fn continued(src: &Machine, id: &str, line: &str) -> Machine {
    let m = Machine::empty();
    copy_tree(&src.codex, &m.codex).unwrap();
    copy_tree(&src.claude, &m.claude).unwrap();
    let path = files(&m.root)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().contains(id))
        .unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
    m
}

fn library_file(m: &Machine, id: &str) -> PathBuf {
    files(&m.baton.join("library"))
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().contains(id))
        .unwrap()
}

#[test]
fn reimporting_a_continued_envelope_appends_and_divergence_is_refused() {
    let v1 = Machine::with_fixtures();
    for (id, extra, other) in [
        (
            CLAUDE,
            "{\"type\":\"summary\",\"summary\":\"later on the laptop\",\"leafUuid\":\"x\"}\n",
            "{\"type\":\"summary\",\"summary\":\"meanwhile elsewhere\",\"leafUuid\":\"y\"}\n",
        ),
        (
            CODEX_FORK,
            "{\"timestamp\":\"2026-11-21T19:30:00.000Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"agent_message\",\"message\":\"later\"}}\n",
            "{\"timestamp\":\"2026-11-21T19:31:00.000Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"agent_message\",\"message\":\"elsewhere\"}}\n",
        ),
    ] {
        let v2 = continued(&v1, id, extra);
        let v3 = continued(&v1, id, other);
        let (e1, e2, e3) = (export(&v1, id), export(&v2, id), export(&v3, id));
        let dst = Machine::empty();
        dst.json(&["import", e1.to_str().unwrap(), "--json"]);
        let lib = library_file(&dst, id);
        let before = std::fs::read(&lib).unwrap();

        let out = dst.json(&["import", e2.to_str().unwrap(), "--json"]);
        let own = out["files"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(own["outcome"], "updated", "{out}");
        assert_eq!(own["added_bytes"], extra.len() as u64);
        let after = std::fs::read(&lib).unwrap();
        assert_eq!(after, [before.as_slice(), extra.as_bytes()].concat());
        dst.baton()
            .args(["import", e2.to_str().unwrap()])
            .assert()
            .success()
            .stdout(contains("unchanged"));
        // An older envelope is already contained: nothing changes.
        dst.baton()
            .args(["import", e1.to_str().unwrap()])
            .assert()
            .success();
        assert_eq!(std::fs::read(&lib).unwrap(), after);

        // A copy continued differently is refused, nothing written…
        let library_before = files(&dst.baton.join("library"));
        dst.baton()
            .args(["import", e3.to_str().unwrap()])
            .assert()
            .code(1)
            .stderr(contains("diverged").and(contains("--as-fork")));
        assert_eq!(std::fs::read(&lib).unwrap(), after);
        assert_eq!(files(&dst.baton.join("library")), library_before);
        // …and --as-fork keeps it as a new session forked from the original.
        let forked = dst.json(&["import", e3.to_str().unwrap(), "--as-fork", "--json"]);
        let new_id = forked["id"].as_str().unwrap();
        assert_ne!(new_id, id);
        assert_eq!(forked["forked_from"], id);
        assert_eq!(forked["files"][0]["outcome"], "created");
        let path = forked["files"][0]["path"].as_str().unwrap();
        assert!(Path::new(path).starts_with(dst.baton.join("library")));
        assert!(std::fs::read_to_string(path).unwrap().contains("elsewhere"));
        dst.baton().args(["show", new_id]).assert().success();
    }
}

#[test]
fn rehydrate_map_path_of_a_session_already_in_the_home_writes_a_new_id() {
    let m = Machine::with_fixtures();
    let moved = m.root.join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    for (id, old) in [
        (CLAUDE, "/srv/corpus/work-pub/beta"),
        (CODEX_FORK, "/srv/corpus/work-pub/beta"),
    ] {
        let originals: Vec<(PathBuf, Vec<u8>)> = files(&m.root)
            .into_iter()
            .filter(|p| !p.starts_with(&m.baton))
            .map(|p| {
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect();
        let map = format!("{old}={}", moved.display());
        let out = m.json(&["rehydrate", id, "--map-path", &map, "--json"]);
        let new_id = out["id"].as_str().unwrap().to_owned();
        assert_ne!(new_id, id, "{out}");
        assert_eq!(out["forked_from"], id);
        assert_eq!(out["cwd"], moved.to_str().unwrap());
        let path = PathBuf::from(out["files"][0]["path"].as_str().unwrap());
        assert_eq!(out["files"][0]["outcome"], "created");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!("\"cwd\":\"{}\"", moved.display()))
                && !text.contains("\"cwd\":\"/srv/corpus"),
            "every cwd moved"
        );
        if id == CLAUDE {
            assert_eq!(
                path.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap(),
                baton_native::layout::claude::project_slug(moved.to_str().unwrap()),
                "Claude finds it in the new directory's project folder"
            );
        }
        for (p, b) in &originals {
            assert_eq!(&std::fs::read(p).unwrap(), b, "{} untouched", p.display());
        }
        // The new id resumes in the new directory.
        let cmd = m.json(&["resume", &new_id, "--print", "--json"]);
        assert_eq!(cmd["cwd"], moved.to_str().unwrap());
        assert_eq!(cmd["session_id"], new_id.as_str());
    }
    // A rule that moves nothing leaves the session where it is.
    m.baton()
        .args(["rehydrate", CLAUDE, "--map-path", "/nowhere=/x"])
        .assert()
        .success()
        .stdout(contains("unchanged"));
}

#[test]
fn resume_prefers_the_newer_imported_copy_without_writing_on_print() {
    let v1 = Machine::with_fixtures();
    let extra = "{\"type\":\"summary\",\"summary\":\"later\",\"leafUuid\":\"x\"}\n";
    let v2 = continued(&v1, CLAUDE, extra);
    let (e1, e2) = (export(&v1, CLAUDE), export(&v2, CLAUDE));
    let dst = Machine::empty();
    let here = dst.root.join("here");
    std::fs::create_dir_all(&here).unwrap();
    dst.json(&["import", e1.to_str().unwrap(), "--json"]);
    let map = format!("/srv/corpus/work-pub/beta={}", here.display());
    let re = dst.json(&["rehydrate", CLAUDE, "--map-path", &map, "--json"]);
    let local = PathBuf::from(re["files"][0]["path"].as_str().unwrap());
    let local_bytes = std::fs::read(&local).unwrap();
    dst.json(&["import", e2.to_str().unwrap(), "--json"]);

    // --print explains and writes nothing.
    let before = files(&dst.claude);
    let out = dst
        .baton()
        .args(["resume", CLAUDE, "--print"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("imported into baton's library")
            && stderr.contains(&format!("{} newer bytes", extra.len()))
            && stderr.contains("writes nothing"),
        "{stderr}"
    );
    assert!(!stderr.contains("sync server"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(CLAUDE));
    assert_eq!(files(&dst.claude), before, "--print wrote nothing");

    // A real resume continues the newest history, moved here, as a new id.
    let out = dst
        .baton()
        .env("BATON_CLAUDE_BIN", "true")
        .args(["resume", CLAUDE, "--prompt", "go"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let new_id = stderr
        .split("as new session ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{stderr}"));
    let fork = local.with_file_name(format!("{new_id}.jsonl"));
    let text = std::fs::read_to_string(&fork).unwrap();
    assert!(text.contains("later") && !text.contains("\"cwd\":\"/srv/corpus"));
    assert_eq!(
        std::fs::read(&local).unwrap(),
        local_bytes,
        "local untouched"
    );
}

#[test]
fn lookup_errors_stay_local_when_the_server_is_down() {
    let m = Machine::with_fixtures();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::create_dir_all(&m.baton).unwrap();
    std::fs::write(
        m.baton.join("sync.json"),
        format!("{{\"url\":\"http://127.0.0.1:{port}\",\"token\":\"t\"}}"),
    )
    .unwrap();
    for cmd in ["resume", "fork", "rehydrate"] {
        // An ambiguous prefix never goes to the server.
        let out = m
            .baton()
            .args([cmd, "01a1ff8d"])
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("matches"), "{cmd}: {stderr}");
        assert!(!stderr.contains(&port.to_string()), "{cmd}: {stderr}");
        // An unknown id is still reported as unknown, plus one line on the server.
        let out = m
            .baton()
            .args([cmd, "ffffffff-0000"])
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no session matches `ffffffff-0000`")
                && stderr.contains(&format!(
                    "looking for it on http://127.0.0.1:{port} failed too"
                )),
            "{cmd}: {stderr}"
        );
    }
}

/// A Codex revert segment, `rollout-<ts>-<thread-id>_<rollout-id>.jsonl`:
/// the catalog lists it under its thread id, and it forks and rehydrates
/// like any rollout (found where it is, never duplicated under a plain name).
#[test]
fn a_revert_segment_rollout_is_listed_under_its_thread_forked_and_rehydrated() {
    const SEGMENT: &str = "01a1ff8d-ffff-7000-8000-000000000001";
    let m = Machine::empty();
    let day = m.codex.join("sessions/2026/11/21");
    std::fs::create_dir_all(&day).unwrap();
    let source = fixtures_dir().join(format!(
        "codex/sessions/2026/11/21/rollout-2026-11-21T19-20-28-{CODEX_ROOT}.jsonl"
    ));
    let segment = day.join(format!(
        "rollout-2026-11-21T19-20-28-{CODEX_ROOT}_{SEGMENT}.jsonl"
    ));
    std::fs::copy(&source, &segment).unwrap();

    let list = m.json(&["list", "--json"]);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    assert_eq!(sessions[0]["id"], CODEX_ROOT);
    assert_eq!(sessions[0]["paths"][0], segment.to_str().unwrap());

    let fork = m.json(&["fork", CODEX_ROOT, "--drop-last", "1", "--json"]);
    assert_eq!(fork["forked_from"], CODEX_ROOT);
    assert!(Path::new(fork["path"].as_str().unwrap()).starts_with(m.codex.join("sessions")));

    // Into its own home: the segment is the session's file, left as it is.
    let same = m.json(&["rehydrate", CODEX_ROOT, "--json"]);
    assert_eq!(same["files"][0]["outcome"], "unchanged", "{same}");
    assert_eq!(same["files"][0]["path"], segment.to_str().unwrap());
    // Into another home: written under its own segment name, once.
    let other = m.root.join("other-codex");
    let rehydrate = |m: &Machine| {
        let mut cmd = m.baton();
        cmd.arg("--codex-home")
            .arg(&other)
            .arg("--codex-home")
            .arg(&m.codex)
            .args(["rehydrate", CODEX_ROOT, "--json"]);
        assert_json(&mut cmd)
    };
    let first = rehydrate(&m);
    assert_eq!(first["files"][0]["outcome"], "created", "{first}");
    let placed = other.join(format!(
        "sessions/2026/11/21/rollout-2026-11-21T19-20-28-{CODEX_ROOT}_{SEGMENT}.jsonl"
    ));
    assert_eq!(first["files"][0]["path"], placed.to_str().unwrap());
    assert_eq!(
        std::fs::read(&placed).unwrap(),
        std::fs::read(&source).unwrap()
    );
    let again = rehydrate(&m);
    assert_eq!(again["files"][0]["outcome"], "unchanged", "{again}");
    assert_eq!(
        files(&other.join("sessions")),
        [placed],
        "no duplicate rollout"
    );
}
