//! Usage errors exit 2; `--codex-home`/`--claude-dir` add up across levels;
//! a run over other homes lists those and purges nothing.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use assert_cmd::Command;
use std::path::Path;

mod common;

use common::{FixtureHomes as Env, assert_json};

impl Env {
    /// `baton` with a private BATON_HOME and no default agent homes.
    fn baton(&self) -> Command {
        let mut cmd = Command::cargo_bin("baton").unwrap();
        cmd.env("BATON_HOME", self.path("baton-home"))
            .env("CODEX_HOME", self.path("no-codex"))
            .env("CLAUDE_CONFIG_DIR", self.path("no-claude"))
            .env("NO_COLOR", "1");
        cmd
    }

    fn listed(&self, args: &[&str]) -> Vec<String> {
        let v = assert_json(self.baton().args(args));
        let mut ids: Vec<String> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let cases: [&[&str]; 7] = [
        &["list", "--since", "soon"],
        &["list", "--since", "7y"],
        &["list", "--cursor", "not-a-cursor"],
        &["list", "--limit", "0"],
        &["search", "--limit", "0", "word"],
        &["search", "--", "--", "*"],
        &["search", "!!!"],
    ];
    for args in cases {
        let out = env.baton().args(args).assert().code(2).get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A valid cursor still works.
    env.baton()
        .args(["list", "--limit", "1", "--json"])
        .args(["--codex-home", s(&env.path("codex"))])
        .assert()
        .success();
}

#[test]
fn root_options_before_and_after_the_subcommand_add_up() {
    let env = Env::new();
    let (codex, legacy) = (env.path("codex"), env.path("codex-legacy"));
    let both = env.listed(&[
        "--codex-home",
        s(&codex),
        "list",
        "--codex-home",
        s(&legacy),
        "--json",
    ]);
    assert_eq!(both.len(), 4, "{both:?}");
    assert!(both.iter().any(|id| id.starts_with("01a1ff8d-92a0")));
    assert!(both.iter().any(|id| id.starts_with("01a1ff8d-8a8a")));
}

#[test]
fn a_run_over_other_homes_lists_them_and_purges_nothing() {
    let env = Env::new();
    let claude = env.path("claude/.claude");
    let (codex, legacy) = (env.path("codex"), env.path("codex-legacy"));
    let all_args = [
        "--codex-home",
        s(&codex),
        "--codex-home",
        s(&legacy),
        "--claude-dir",
        s(&claude),
    ];
    let mut args = all_args.to_vec();
    args.extend(["list", "--json"]);
    assert_eq!(env.listed(&args).len(), 7);

    // Only the Claude dir: only its sessions.
    let only = env.listed(&["--claude-dir", s(&claude), "list", "--json"]);
    assert_eq!(only.len(), 3, "{only:?}");
    assert!(only.iter().all(|id| !id.starts_with("01a1ff8d")));

    // The next full run re-indexes nothing.
    let mut args = all_args.to_vec();
    args.extend(["index", "--json"]);
    let report = assert_json(env.baton().args(&args));
    assert_eq!(report["files_new"], 0, "{report}");
    assert_eq!(report["files_removed"], 0, "{report}");
    assert_eq!(report["bytes_read"], 0, "{report}");
    assert_eq!(report["sessions_total"], 7, "{report}");
}
