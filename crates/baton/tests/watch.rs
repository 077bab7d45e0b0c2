//! `baton watch`: an append is searchable within a second, and while the
//! watcher is alive no command touches the agent homes (checked with
//! strace); `--no-refresh` never does; `--install` writes a systemd unit.

mod common;

use common::FixtureHomes;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running `baton watch` over the fixture homes, killed on drop.
struct WatchProcess(Child);

impl Drop for WatchProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `baton watch` and wait until it reports the catalog caught up.
fn start_watch(homes: &FixtureHomes) -> WatchProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .env("BATON_HOME", homes.path("baton-home"))
        .arg("watch")
        .args(homes.root_args())
        .spawn()
        .unwrap();
    let watch = WatchProcess(child);
    let state = homes.path("baton-home/watcher.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        if text.contains("\"caught_up\":true") {
            return watch;
        }
        assert!(Instant::now() < deadline, "baton watch never caught up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether strace can be used; panics on CI where scripts/install-term-tools provides it.
fn have_strace() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "strace is missing: run scripts/install-term-tools"
        );
        eprintln!("skipping the syscall check: strace is not installed");
    }
    ok
}

/// The stat calls and directory opens of `baton ARGS` that name a path under
/// one of the agent homes: what a walk does (reading one session's file by
/// its known path is not a walk).
fn home_syscalls(homes: &FixtureHomes, args: &[&str]) -> Vec<String> {
    let log = homes.path("strace.log");
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=%stat,openat,open", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_baton"))
        .env("BATON_HOME", homes.path("baton-home"))
        .args(args)
        .args(homes.root_args())
        .output()
        .unwrap();
    assert!(out.status.success(), "baton {args:?} failed: {out:?}");
    let roots = ["codex", "codex-legacy", "claude"].map(|h| homes.path(h));
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("open") || l.contains("O_DIRECTORY"))
        .filter(|l| roots.iter().any(|r| l.contains(&*r.to_string_lossy())))
        .map(str::to_string)
        .collect()
}

/// A new user prompt with `text` for the Codex rollout `path`: its last
/// user message line with the text replaced.
fn prompt_line(path: &Path, text: &str) -> String {
    let body = std::fs::read_to_string(path).unwrap();
    let line = body
        .lines()
        .rfind(|l| l.contains("\"role\":\"user\"") && l.contains("input_text"))
        .expect("a user message");
    let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
    value["payload"]["content"] = serde_json::json!([{ "type": "input_text", "text": text }]);
    format!("{value}\n")
}

/// The first Codex rollout of the fixture homes.
fn a_rollout(homes: &FixtureHomes) -> PathBuf {
    let mut found: Vec<PathBuf> = walk(&homes.path("codex/sessions"));
    found.sort();
    found.into_iter().next().expect("a rollout")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    out
}

#[test]
fn an_append_is_searchable_within_a_second_and_commands_do_not_walk() {
    let homes = FixtureHomes::new();
    let strace = have_strace();
    if strace {
        // Without a watcher, a command walks the homes (the check sees it).
        assert!(!home_syscalls(&homes, &["list"]).is_empty());
        // --no-refresh reads the catalog as it is.
        assert_eq!(
            home_syscalls(&homes, &["--no-refresh", "search", "echo"]),
            Vec::<String>::new()
        );
    }
    let _watch = start_watch(&homes);
    let rollout = a_rollout(&homes);
    let appended = Instant::now();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&rollout)
        .unwrap();
    std::io::Write::write_all(
        &mut file,
        prompt_line(&rollout, "zanzibar quokka").as_bytes(),
    )
    .unwrap();
    drop(file);
    loop {
        let found = homes.json(&["search", "quokka", "--json"]);
        if !found["hits"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            appended.elapsed() < Duration::from_secs(1),
            "the append was not searchable within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    if strace {
        for args in [
            &["list"][..],
            &["search", "quokka"],
            &["show", "01a1ff8d-8a8a"],
        ] {
            assert_eq!(
                home_syscalls(&homes, args),
                Vec::<String>::new(),
                "baton {args:?} touched an agent home while the watcher ran"
            );
        }
    }
}

#[test]
fn a_second_watcher_is_refused_naming_the_first() {
    let homes = FixtureHomes::new();
    let _watch = start_watch(&homes);
    let out = homes.cmd(&["watch"]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("already keeps"), "{err}");
    assert!(err.contains("pid"), "{err}");
}

#[test]
fn install_writes_a_systemd_user_unit() {
    let homes = FixtureHomes::new();
    let config = homes.path("xdg-config");
    let out = homes
        .cmd(&["watch", "--install"])
        .env("XDG_CONFIG_HOME", &config)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let unit_path = config.join("systemd/user/baton-watch.service");
    assert!(stdout.contains(&*unit_path.to_string_lossy()), "{stdout}");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let exe = env!("CARGO_BIN_EXE_baton");
    assert!(
        unit.contains(&format!(
            "ExecStart=\"{exe}\" watch --codex-home \"{}\"",
            homes.path("codex").display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains(&format!(
            "--claude-dir \"{}\"",
            homes.path("claude/.claude").display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains(&format!(
            "Environment=\"BATON_HOME={}\"",
            homes.path("baton-home").display()
        )),
        "{unit}"
    );
    assert!(unit.contains("WantedBy=default.target"), "{unit}");
}
