//! `baton index/list/show/search/export` on copies of the fixture homes.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use assert_cmd::Command;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

mod common;

use common::{FixtureHomes as Env, manifest};

fn find(root: &Path, needle: &str) -> PathBuf {
    find_in(root, needle).unwrap_or_else(|| panic!("no {needle} under {}", root.display()))
}

fn find_in(root: &Path, needle: &str) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.into_iter().find_map(|p| {
        if p.is_dir() {
            find_in(&p, needle)
        } else {
            p.to_string_lossy().contains(needle).then_some(p)
        }
    })
}

#[test]
fn every_manifest_session_is_listed_shown_and_found() {
    let env = Env::new();
    let list = env.json(&["list", "--json", "--limit", "100"]);
    let sessions = list["sessions"].as_array().unwrap();
    assert!(list["next_cursor"].is_null());
    let manifest = manifest();
    assert_eq!(sessions.len(), manifest.len());
    for m in &manifest {
        let id = m["id"].as_str().unwrap();
        let row = sessions
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed"));
        assert_eq!(row["agent"], m["agent"], "{id}");
        assert_eq!(row["cwd"], m["cwd"], "{id}");
        assert_eq!(
            row["forked_from"],
            m.get("forked_from").cloned().unwrap_or(Value::Null),
            "{id}"
        );
        for field in [
            "title",
            "first_prompt",
            "started_at",
            "updated_at",
            "user_turns",
            "message_count",
            "model",
            "git_branch",
            "paths",
            "bytes",
        ] {
            assert!(row.get(field).is_some(), "{id}: missing {field}");
        }

        let shown = env.json(&["show", id, "--json"]);
        assert_eq!(shown["session"]["id"], id);
        let prompts: Vec<&Value> = shown["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|msg| msg["kind"] == "prompt")
            .map(|msg| &msg["text"])
            .collect();
        let expected: Vec<&Value> = m["prompts"].as_array().unwrap().iter().collect();
        assert_eq!(prompts, expected, "{id}");
        for msg in shown["messages"].as_array().unwrap() {
            let keys: Vec<&str> = msg
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["role", "kind", "text", "tool_name", "call_id", "timestamp"],
                "{id}"
            );
        }

        if let Some(out) = m["tool_output"].as_str() {
            let hits = env.json(&["search", out, "--json"]);
            let hits = hits["hits"].as_array().unwrap();
            assert!(
                hits.iter().any(|h| h["session_id"] == id),
                "{out}: {hits:?}"
            );
            let h = &hits[0];
            for field in ["session_id", "agent", "role", "snippet", "timestamp"] {
                assert!(h.get(field).is_some(), "hit lacks {field}");
            }
        }
    }
}

#[test]
fn appends_show_up_and_unchanged_files_are_not_read() {
    let env = Env::new();
    let first = env.json(&["index", "--json"]);
    assert_eq!(first["files_new"], 7);
    let again = env.json(&["index", "--json"]);
    assert_eq!(again["bytes_read"], 0, "{again}");
    assert_eq!(again["files_unchanged"], 7);

    // A resumed Codex legacy turn: typed prompt plus its UI twin.
    let legacy = find(&env.path("codex-legacy"), "92a0");
    let lines = [
        serde_json::json!({"timestamp":"2031-02-03T04:05:06.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"appended quokka prompt"}]}}),
        serde_json::json!({"timestamp":"2031-02-03T04:05:06.001Z","type":"event_msg","payload":{"type":"user_message","message":"appended quokka prompt","images":[]}}),
    ];
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&legacy)
        .unwrap();
    for l in &lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let list = env.json(&["list", "--json", "--agent", "codex", "--limit", "1"]);
    let top = &list["sessions"][0];
    assert_eq!(top["id"], "01a1ff8d-92a0-7a03-a86a-e8bbc574818c");
    assert_eq!(top["user_turns"], 3);
    assert_eq!(top["updated_at"], "2031-02-03T04:05:06.001Z");
    assert!(list["next_cursor"].is_string());
    let after = env.json(&["index", "--json"]);
    assert_eq!(
        after["bytes_read"], 0,
        "list already read the appended bytes"
    );
    let hits = env.json(&["search", "quokka", "--json"]);
    assert_eq!(
        hits["hits"][0]["session_id"],
        "01a1ff8d-92a0-7a03-a86a-e8bbc574818c"
    );
}

#[test]
fn export_writes_lineage_bytes_and_escaped_html() {
    let env = Env::new();
    let out = env
        .cmd(&["export", "01a1ff8d-9126", "--format", "jsonl"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let parent = std::fs::read(find(&env.path("codex"), "8c3d")).unwrap();
    let fork = std::fs::read(find(&env.path("codex"), "9126")).unwrap();
    assert_eq!(out, [&parent[..51158], &fork[..]].concat());

    let file = env.path("out/session.html");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let file_s = file.display().to_string();
    env.cmd(&["export", "24618527", "--format", "html", "-o", &file_s])
        .assert()
        .success();
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("pub claude second zeta ünïcødé ✓"));
    assert!(
        html.contains("&quot;command&quot;"),
        "tool input is escaped"
    );
    assert!(!html.contains("<script"));

    let md = env
        .cmd(&["export", "dcf5c926", "--format", "md"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let md = String::from_utf8(md).unwrap();
    assert!(md.starts_with("# pub claude prompt epsilon\n"), "{md}");
}

#[test]
fn unknown_and_ambiguous_ids_explain_themselves() {
    let env = Env::new();
    let err = env.cmd(&["show", "01a1ff8d"]).assert().failure().code(1);
    let stderr = String::from_utf8_lossy(&err.get_output().stderr).to_string();
    assert!(stderr.contains("matches 4 sessions"), "{stderr}");
    let err = env.cmd(&["show", "nope-nope"]).assert().failure().code(1);
    let stderr = String::from_utf8_lossy(&err.get_output().stderr).to_string();
    assert!(
        stderr.contains("no session matches `nope-nope`"),
        "{stderr}"
    );
    let err = env.cmd(&["list", "--since", "someday"]).assert().code(2);
    let stderr = String::from_utf8_lossy(&err.get_output().stderr).to_string();
    assert!(
        stderr.contains("invalid value 'someday' for '--since"),
        "{stderr}"
    );
    // Query syntax never leaks an FTS error.
    env.cmd(&["search", "\"(AND", "--json"]).assert().success();
}

/// Bad files and an unreadable project directory are warnings; everything
/// else is still listed. Tests run as root, which ignores permission bits, so
/// the unreadable directory is made real by running baton as `nobody`
/// (`setpriv`); when neither unprivileged nor `setpriv` is available that
/// part is skipped with a message.
#[test]
fn bad_input_warns_and_keeps_the_rest() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let projects = env.path("claude/.claude/projects");
    let bad_dir = projects.join("-srv-bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = bad_dir.join("bbbbbbbb-0000-4000-8000-000000000001.jsonl");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(
        serde_json::json!({"parentUuid":null,"isSidechain":false,"type":"user","uuid":"b1",
            "timestamp":"2026-11-22T00:00:00.000Z","sessionId":"bbbbbbbb-0000-4000-8000-000000000001",
            "cwd":"/srv/bad","message":{"role":"user","content":"survivor prompt"}})
        .to_string()
        .into_bytes(),
    );
    bytes.extend(b"\nnot json at all\n\xff\xfe\xfd\n{\"truncated\":");
    std::fs::write(&bad, &bytes).unwrap();
    std::fs::write(
        bad_dir.join("bbbbbbbb-0000-4000-8000-000000000002.jsonl"),
        b"",
    )
    .unwrap();
    let locked = projects.join("-srv-locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::copy(
        find(&projects, "dcf5c926"),
        locked.join("cccccccc-0000-4000-8000-000000000001.jsonl"),
    )
    .unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();

    let is_root = unsafe { libc::geteuid() } == 0;
    let drop_to_nobody = is_root && Path::new("/usr/bin/setpriv").exists();
    let mut cmd = if drop_to_nobody {
        // nobody must be able to reach the copies and write BATON_HOME.
        let mut p = env.path("");
        loop {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode | 0o755)).unwrap();
            if !p.pop() || p == Path::new("/") {
                break;
            }
        }
        std::fs::create_dir_all(env.path("baton-home")).unwrap();
        std::process::Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(env.path("baton-home"))
            .arg(env.path("codex"))
            .arg(env.path("codex-legacy"))
            .arg(env.path("claude/.claude/projects/-srv-corpus-work-pub-alpha"))
            .arg(env.path("claude/.claude/projects/-srv-corpus-work-pub-beta"))
            .arg(&bad_dir)
            .status()
            .unwrap();
        for d in [
            env.path("claude"),
            env.path("claude/.claude"),
            projects.clone(),
        ] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(assert_cmd::cargo::cargo_bin("baton"));
        c
    } else {
        if is_root {
            eprintln!("skipping the unreadable-directory part: running as root without setpriv");
        }
        Command::cargo_bin("baton").unwrap()
    };
    let out = cmd
        .env("BATON_HOME", env.path("baton-home"))
        .env("NO_COLOR", "1")
        .args(["list", "--json", "--limit", "100"])
        .args(env.root_args())
        .assert()
        .success()
        .get_output()
        .clone();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        8,
        "7 fixture sessions + the survivor: {ids:?}\n{stderr}"
    );
    assert!(ids.contains(&"bbbbbbbb-0000-4000-8000-000000000001"));
    let bad_s = bad.display().to_string();
    assert!(
        stderr.contains(&format!("warning: {bad_s}:2: invalid JSON")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("warning: {bad_s}:3: invalid UTF-8")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    if drop_to_nobody || !is_root {
        assert!(
            stderr.contains(&format!("warning: {}", locked.display()))
                && stderr.contains("ermission denied"),
            "{stderr}"
        );
    }
}

/// A dangling symlink and a directory named like session files (as when a
/// file is deleted or replaced between discovery and read) are reported as
/// warnings naming the path; every real session is still listed.
#[test]
fn session_names_that_are_not_files_warn_and_keep_the_rest() {
    let env = Env::new();
    let day = find(&env.path("codex"), "8c3d")
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = day.join("rollout-2026-11-21T00-00-00-dddddddd-0000-4000-8000-000000000001.jsonl");
    std::fs::create_dir(&dir).unwrap();
    let project = find(&env.path("claude/.claude/projects"), "dcf5c926")
        .parent()
        .unwrap()
        .to_path_buf();
    let link = project.join("eeeeeeee-0000-4000-8000-000000000001.jsonl");
    std::os::unix::fs::symlink(project.join("deleted.jsonl"), &link).unwrap();
    let out = env
        .cmd(&["list", "--json", "--limit", "100"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        list["sessions"].as_array().unwrap().len(),
        manifest().len(),
        "{stderr}"
    );
    for (path, kind) in [(&dir, "a directory"), (&link, "a symbolic link")] {
        assert!(
            stderr.contains(&format!(
                "warning: {}: named like a session file but is {kind}",
                path.display()
            )),
            "{stderr}"
        );
    }
}

/// Transcript text with terminal escape sequences (an OSC that retitles the
/// terminal, a CSI that clears it) is printed without them by `show`,
/// `list` and `search`; `--json` keeps it exact.
#[test]
fn human_output_strips_terminal_escapes() {
    let env = Env::new();
    let dir = env.path("claude/.claude/projects/-srv-esc");
    std::fs::create_dir_all(&dir).unwrap();
    let id = "ffffffff-0000-4000-8000-00000000e5c0";
    let prompt = "escape \u{1b}]0;pwned\u{07}kiwi \u{1b}[2Jdone";
    let line = serde_json::json!({"parentUuid":null,"isSidechain":false,"type":"user","uuid":"e1",
        "timestamp":"2026-11-22T00:00:00.000Z","sessionId":id,
        "cwd":"/srv/esc\u{1b}[31m","message":{"role":"user","content":prompt}});
    std::fs::write(dir.join(format!("{id}.jsonl")), format!("{line}\n")).unwrap();
    let human = |args: &[&str]| {
        let out = env.cmd(args).assert().success().get_output().stdout.clone();
        String::from_utf8(out).unwrap()
    };
    for args in [
        &["show", id][..],
        &["list", "--limit", "100"][..],
        &["search", "kiwi"][..],
    ] {
        let out = human(args);
        assert!(out.contains("kiwi") || args[0] == "list", "{args:?}: {out}");
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{07}'),
            "{args:?}: {out:?}"
        );
        assert!(!out.contains("pwned"), "{args:?}: {out:?}");
    }
    assert!(human(&["show", id]).contains("escape kiwi done"));
    let json = env.json(&["show", id, "--json"]);
    assert_eq!(json["messages"][0]["text"], prompt);
}
