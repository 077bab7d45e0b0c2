//! Hostile and careless input on the client: damaged records, output paths
//! that are not plain files, concurrent first runs, decompression bombs,
//! permissions and a corrupt catalog.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use assert_cmd::Command;
use std::path::Path;

mod common;

use common::{FixtureHomes, assert_json};

const BETA: &str =
    "claude/.claude/projects/-srv-corpus-work-pub-beta/24618527-ae46-4f6d-902b-96792270f328.jsonl";

/// `baton ARGS` over the fixture Claude home with a private `BATON_HOME`.
fn baton(env: &FixtureHomes, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("baton").unwrap();
    cmd.env("BATON_HOME", env.path("baton-home"))
        .env("NO_COLOR", "1")
        .args(args)
        .args([
            "--claude-dir",
            &env.path("claude/.claude").display().to_string(),
        ]);
    cmd
}

/// `(kind, text)` of every message `baton show --json` prints.
fn shown(env: &FixtureHomes, id: &str) -> Vec<(String, String)> {
    let show = assert_json(&mut baton(env, &["show", id, "--json"]));
    show["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("text"))
        })
        .collect()
}

fn stderr_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

/// A reply cut inside an emoji (`\ud83d` alone, as Node writes it) is read
/// with U+FFFD, and a record too damaged to parse does not cut the chain:
/// `show`, `export` and `fork` keep the whole history; the native bytes are
/// exported untouched.
#[test]
fn damaged_claude_records_keep_the_whole_history() {
    let env = FixtureHomes::new();
    let id = "24618527";
    let before = shown(&env, id);
    let file = env.path(BETA);
    let original = std::fs::read_to_string(&file).unwrap();
    let cut = original.replace(
        r#""text":"ECHO[1]: RUN: echo pub-claude-tool-zeta""#,
        r#""text":"ECHO[1]: RUN: echo pub-claude-tool-zeta \ud83d""#,
    );
    assert_ne!(cut, original);
    // The attachment between the tool result and the reply gets a byte
    // that is not UTF-8: it cannot be read, yet the reply hangs from it.
    let mut bytes = Vec::new();
    for line in cut.split_inclusive('\n') {
        let mut line = line.as_bytes().to_vec();
        if line.starts_with(br#"{"parentUuid":"79d74347"#) {
            let at = line.len() - 10;
            line[at] = 0xFF;
        }
        bytes.extend(line);
    }
    std::fs::write(&file, &bytes).unwrap();
    std::fs::remove_dir_all(env.path("baton-home")).ok();
    let index = baton(&env, &["index"]).assert().success();
    let warning = stderr_of(&index);
    assert!(
        warning.contains(&format!("{}:21: invalid UTF-8", file.display()))
            && warning.contains("the conversation continues past it (record 61ee34fd-"),
        "{warning}"
    );

    let after = shown(&env, id);
    let mut want = before;
    for (_, text) in &mut want {
        if text == "ECHO[1]: RUN: echo pub-claude-tool-zeta" {
            text.push_str(" \u{FFFD}");
        }
    }
    assert_eq!(after, want);
    assert_eq!(after[0].1, "RUN: echo pub-claude-tool-zeta");

    let md = baton(&env, &["export", id, "--format", "md"])
        .assert()
        .success();
    let md = String::from_utf8(md.get_output().stdout.clone()).unwrap();
    assert!(md.contains("RUN: echo pub-claude-tool-zeta\n"), "{md}");
    assert!(
        md.contains("ECHO[1]: RUN: echo pub-claude-tool-zeta \u{FFFD}"),
        "{md}"
    );
    assert!(md.contains("pub claude second zeta"), "{md}");
    let jsonl = baton(&env, &["export", id, "--format", "jsonl"])
        .assert()
        .success();
    assert_eq!(jsonl.get_output().stdout, bytes);

    let fork = assert_json(&mut baton(&env, &["fork", id, "--json"]));
    let fork_id = fork["id"].as_str().unwrap();
    let forked = shown(&env, fork_id);
    let texts = |v: &[(String, String)]| -> Vec<String> { v.iter().map(|m| m.1.clone()).collect() };
    assert_eq!(texts(&forked), texts(&after));
}

/// `export -o` writes regular files only: a FIFO, a symlink (even to a
/// regular file) and a directory at the path are refused and left as they
/// were; a missing directory is named; a regular file is replaced whole.
#[test]
fn export_output_never_replaces_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let env = FixtureHomes::new();
    let out = env.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let fifo = out.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let target = out.join("target.txt");
    std::fs::write(&target, "keep me").unwrap();
    let link = out.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let dev_link = out.join("null");
    std::os::unix::fs::symlink("/dev/null", &dev_link).unwrap();
    for (path, kind) in [
        (&fifo, "a FIFO"),
        (&link, "a symbolic link"),
        (&dev_link, "a symbolic link"),
        (&out, "a directory"),
    ] {
        let p = path.display().to_string();
        let refused = baton(&env, &["export", "24618527", "--format", "md", "-o", &p])
            .assert()
            .code(1);
        let err = stderr_of(&refused);
        assert!(
            err.contains(&format!("{p} is {kind}, not a regular file")),
            "{err}"
        );
    }
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert_eq!(
        std::fs::read_link(&dev_link).unwrap(),
        Path::new("/dev/null")
    );
    // Nothing but what was there before: no temporary files left behind.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4);

    let missing = out.join("no-such-dir/session.md").display().to_string();
    let refused = baton(
        &env,
        &["export", "24618527", "--format", "md", "-o", &missing],
    )
    .assert()
    .code(1);
    let err = stderr_of(&refused);
    assert!(
        err.contains(&format!(
            "directory {} is not there",
            out.join("no-such-dir").display()
        )) && !err.contains("baton-tmp"),
        "{err}"
    );

    let t = target.display().to_string();
    baton(&env, &["export", "24618527", "--format", "md", "-o", &t])
        .assert()
        .success();
    assert!(std::fs::read_to_string(&target).unwrap().starts_with("# "));
    let stdout = baton(
        &env,
        &["export", "24618527", "--format", "envelope", "-o", "-"],
    )
    .assert()
    .success();
    assert!(
        stdout
            .get_output()
            .stdout
            .starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
    );

    // Without -o, a binary envelope is not sent to a terminal (a pty made by
    // util-linux `script`; skipped where it is missing).
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let line = format!(
        "BATON_HOME={} {} export 24618527 --format envelope --claude-dir {}",
        quote(&env.path("baton-home")),
        quote(Path::new(env!("CARGO_BIN_EXE_baton"))),
        quote(&env.path("claude/.claude"))
    );
    match std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
    {
        Ok(tty) => {
            let text = String::from_utf8_lossy(&tty.stdout);
            assert_eq!(tty.status.code(), Some(2), "{text}");
            assert!(text.contains("an envelope is binary"), "{text}");
        }
        Err(e) => eprintln!("skipping the terminal check: no `script` ({e})"),
    }
}

/// Twenty `baton index` runs started at once in a fresh `BATON_HOME` all
/// succeed: one creates the catalog, the others wait for it.
#[test]
fn concurrent_first_index_runs_all_succeed() {
    let env = FixtureHomes::new();
    let runs: Vec<_> = (0..20)
        .map(|_| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_baton"));
            cmd.env("BATON_HOME", env.path("baton-home"))
                .args(["index", "--json", "--claude-dir"])
                .arg(env.path("claude/.claude"))
                .arg("--codex-home")
                .arg(env.path("codex"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = common::parse_json("baton index", &out.stdout);
        assert_eq!(report["sessions_total"], 6, "{report}");
    }
}

/// The catalog is a cache: one corrupted below its header is rebuilt with
/// a warning; a catalog path that is not a regular file is refused and
/// left alone; what baton creates under `BATON_HOME` is private.
#[test]
fn catalog_is_private_rebuilt_when_corrupt_and_a_regular_file() {
    use std::os::unix::fs::PermissionsExt;
    let env = FixtureHomes::new();
    let home = env.path("baton-home");
    let list = |env: &FixtureHomes| {
        let out = baton(env, &["list", "--json"]).assert().success();
        let page = common::parse_json("baton list", &out.get_output().stdout);
        (page["sessions"].as_array().unwrap().len(), stderr_of(&out))
    };
    assert_eq!(list(&env).0, 3);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let catalog = home.join("catalog.sqlite");
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&catalog), 0o600);
    // Sessions baton stores in its library are private too.
    let envelope = env.path("beta.baton").display().to_string();
    baton(
        &env,
        &[
            "export", "24618527", "--format", "envelope", "-o", &envelope,
        ],
    )
    .assert()
    .success();
    baton(&env, &["import", &envelope]).assert().success();
    let copy = home.join("library/claude/projects/-srv-corpus-work-pub-beta");
    assert_eq!(mode(&home.join("library")), 0o700);
    assert_eq!(mode(&copy), 0o700);
    assert_eq!(
        mode(&copy.join("24618527-ae46-4f6d-902b-96792270f328.jsonl")),
        0o600
    );

    let mut bytes = std::fs::read(&catalog).unwrap();
    assert!(bytes.len() > 3 * 4096);
    bytes[4096..3 * 4096].fill(0x5A);
    std::fs::write(&catalog, &bytes).unwrap();
    let (sessions, warning) = list(&env);
    assert_eq!(sessions, 3, "{warning}");
    assert!(warning.contains("rebuilding the catalog"), "{warning}");
    assert_eq!(list(&env), (3, String::new()));

    std::fs::remove_file(&catalog).unwrap();
    std::os::unix::fs::symlink("/dev/null", &catalog).unwrap();
    let refused = baton(&env, &["list"]).assert().code(1);
    let err = stderr_of(&refused);
    assert!(
        err.contains(&format!("{} is not a regular file", catalog.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_link(&catalog).unwrap(),
        Path::new("/dev/null")
    );
}

/// `baton import` of a 100 KB envelope whose header declares 3 GiB (zeros
/// that really follow, as zstd run-length blocks) fails cleanly, writes
/// nothing, and its peak resident memory stays under 256 MiB.
#[test]
fn import_of_a_zstd_bomb_stays_small() {
    let env = FixtureHomes::new();
    let out = baton(
        &env,
        &["export", "24618527", "--format", "envelope", "-o", "-"],
    )
    .assert()
    .success();
    let plain = zstd::decode_all(out.get_output().stdout.as_slice()).unwrap();
    let end = plain.iter().position(|&b| b == b'\n').unwrap();
    let mut header: serde_json::Value = serde_json::from_slice(&plain[..end]).unwrap();
    header["files"][0]["bytes"] = (3u64 << 30).into();
    let mut line = serde_json::to_vec(&header).unwrap();
    line.push(b'\n');
    let bomb = baton_testkit::zstd_bomb(&line, 0, 3 << 30);
    assert!(bomb.len() < 110_000, "the bomb is {} bytes", bomb.len());
    let path = env.path("bomb.baton");
    std::fs::write(&path, &bomb).unwrap();

    let stderr = env.path("import.err");
    let (code, max_rss_kib) = baton_testkit::run_with_peak_rss(
        std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .env("BATON_HOME", env.path("baton-home"))
            .arg("import")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap()),
    );
    assert_eq!(code, 1);
    assert!(
        max_rss_kib < 256 << 10,
        "import peaked at {max_rss_kib} KiB resident"
    );
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(err.contains("envelope decompresses to more than"), "{err}");
    assert!(!env.path("baton-home/library").exists());
}
