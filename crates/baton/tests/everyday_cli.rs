//! Everyday CLI behaviour over the fixture homes: grouped search hits with
//! title and cwd, highlights that keep a term's punctuation, `show` through
//! the pager on a terminal, messages for missing homes and for filters that
//! exclude everything, a read-only `BATON_HOME`, and file warnings printed
//! once. (Binary formats on a terminal and output paths are checked in
//! hostile_input.rs; `resume --print` writing nothing in envelope.rs.)

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

mod common;

use common::FixtureHomes;
use std::path::Path;

fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

#[test]
fn search_groups_hits_per_session_with_title_cwd_and_counts() {
    let homes = FixtureHomes::new();
    let found = homes.json(&["search", "echo", "--per-session", "1", "--json"]);
    let hits = found["hits"].as_array().unwrap();
    let mut ids: Vec<&str> = hits
        .iter()
        .map(|h| h["session_id"].as_str().unwrap())
        .collect();
    let shown = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), shown, "one hit per session: {found}");
    assert!(
        hits.iter()
            .any(|h| h["more_in_session"].as_u64().unwrap() > 0),
        "{found}"
    );
    for h in hits {
        assert!(h["title"].is_string() && h["cwd"].is_string(), "{h}");
    }
    // A limit of one session leaves the others counted.
    let one = homes.json(&["search", "echo", "--limit", "1", "--json"]);
    assert_eq!(one["hits"].as_array().unwrap().len(), 1);
    assert!(one["sessions_left_out"].as_u64().unwrap() >= 1, "{one}");
    let human = homes
        .cmd(&["search", "echo", "--limit", "1"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&human.get_output().stdout).into_owned();
    let title = one["hits"][0]["title"].as_str().unwrap();
    let cwd = one["hits"][0]["cwd"].as_str().unwrap();
    let heading = stdout.lines().next().unwrap();
    assert!(heading.contains(title) && heading.contains(cwd), "{stdout}");
    assert!(
        stderr_of(&human).contains("more results"),
        "{}",
        stderr_of(&human)
    );
}

#[test]
fn a_highlight_keeps_the_punctuation_of_the_term() {
    let homes = FixtureHomes::new();
    let found = homes.json(&["search", "ECHO[2]", "--json"]);
    let snippets: Vec<&str> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["snippet"].as_str().unwrap())
        .collect();
    assert!(!snippets.is_empty());
    for s in snippets {
        assert!(s.contains("«ECHO[2]»") && !s.contains("«ECHO[2»]"), "{s}");
    }
}

#[test]
fn show_on_a_terminal_goes_through_the_pager() {
    let homes = FixtureHomes::new();
    let paged = homes.path("paged.txt");
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let line = format!(
        "PAGER={} BATON_HOME={} NO_COLOR=1 {} show 24618527 --claude-dir {}",
        quote(Path::new(&format!("cat > {}", quote(&paged)))),
        quote(&homes.path("baton-home")),
        quote(Path::new(env!("CARGO_BIN_EXE_baton"))),
        quote(&homes.path("claude/.claude"))
    );
    let tty = match std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
    {
        Ok(tty) => tty,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no `script`: {e}"
            );
            eprintln!("skipping the pager check: no `script` ({e})");
            return;
        }
    };
    assert!(tty.status.success(), "{tty:?}");
    let text = std::fs::read_to_string(&paged).unwrap();
    assert!(text.contains("id:       24618527"), "{text}");
    // Not on a terminal: straight to stdout, no pager.
    let direct = homes
        .cmd(&["show", "24618527"])
        .env("PAGER", "false")
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&direct.get_output().stdout).contains("id:       24618527"));
}

#[test]
fn a_missing_home_is_named_and_no_home_at_all_is_an_error() {
    let homes = FixtureHomes::new();
    let missing = homes.path("no-such-home");
    let file = homes.path("codex/not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = homes
        .cmd(&["list"])
        .arg("--codex-home")
        .arg(&missing)
        .arg("--codex-home")
        .arg(&file)
        .assert()
        .success();
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!("{} does not exist", missing.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} is not a directory", file.display())),
        "{err}"
    );
    let none = assert_cmd::Command::cargo_bin("baton")
        .unwrap()
        .env("BATON_HOME", homes.path("baton-home"))
        .args(["list", "--codex-home"])
        .arg(&missing)
        .arg("--claude-dir")
        .arg(&file)
        .assert()
        .code(1);
    let err = stderr_of(&none);
    assert!(err.contains("no agent home to read"), "{err}");
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
}

#[test]
fn an_empty_filtered_result_names_the_filter() {
    let homes = FixtureHomes::new();
    let nowhere = homes.path("nowhere");
    let nowhere = nowhere.to_string_lossy();
    let out = homes
        .cmd(&["list", "--agent", "codex", "--cwd", &nowhere])
        .assert()
        .success();
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!("`--cwd {nowhere}` excludes everything")),
        "{err}"
    );
    let out = homes
        .cmd(&["search", "pub", "--agent", "claude", "--cwd", &nowhere])
        .assert()
        .success();
    assert!(stderr_of(&out).contains("`--cwd"), "{}", stderr_of(&out));
    // Each filter alone matches, together they do not.
    let out = homes
        .cmd(&["search", "pub-tool-output-beta", "--agent", "claude"])
        .assert()
        .success();
    assert!(
        stderr_of(&out).contains("--agent claude"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn read_only_commands_work_on_a_read_only_baton_home() {
    use std::os::unix::fs::PermissionsExt;
    let homes = FixtureHomes::new();
    let before = homes.json(&["list", "--json"]);
    // Everything readable by all, BATON_HOME writable by none.
    let chmod = |mode: &str| {
        let tmp = homes.path("");
        let ok = std::process::Command::new("chmod")
            .args(["-R", mode])
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    chmod("a+rX");
    let baton_home = homes.path("baton-home");
    std::fs::set_permissions(&baton_home, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root ignores file modes: run as `nobody` then.
    let root = is_root();
    let mut cmd = if root {
        let mut c = assert_cmd::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_baton"));
        c
    } else {
        assert_cmd::Command::cargo_bin("baton").unwrap()
    };
    let out = cmd
        .env("BATON_HOME", &baton_home)
        .args(["list", "--json"])
        .args(homes.root_args())
        .assert()
        .success();
    std::fs::set_permissions(&baton_home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = stderr_of(&out);
    assert!(err.contains("as it is"), "{err}");
    let after = common::parse_json("list", &out.get_output().stdout);
    assert_eq!(after["sessions"], before["sessions"]);
}

/// Whether this process runs as root (it owns `/proc/self` as uid 0).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn a_warning_about_a_file_is_printed_once() {
    let homes = FixtureHomes::new();
    let dir = homes.path("codex/sessions/2026/11/21");
    std::fs::create_dir_all(
        dir.join("rollout-2026-11-21T19-20-28-01a1ff8d-0000-7000-8000-000000000001.jsonl"),
    )
    .unwrap();
    let first = homes.cmd(&["list"]).assert().success();
    assert!(
        stderr_of(&first).contains("is a directory"),
        "{}",
        stderr_of(&first)
    );
    let second = homes.cmd(&["list"]).assert().success();
    assert!(
        !stderr_of(&second).contains("is a directory"),
        "{}",
        stderr_of(&second)
    );
}
