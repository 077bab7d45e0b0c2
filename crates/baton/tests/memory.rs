//! Peak resident memory of `baton` commands on one large session: indexing,
//! showing and exporting a tool-output-heavy Codex rollout (a few hundred
//! MB, each tool output 1 MB) stay under 256 MiB whatever the file's size,
//! because files are read in pieces, the catalog keeps long texts only as
//! offsets into the native file, and output is streamed. Each command runs
//! as its own process, measured with wait4.

#![allow(clippy::disallowed_methods)] // tests build their own scratch files

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

/// The limit every command stays under, in KiB.
const LIMIT_KIB: i64 = 256 << 10;

/// Size of the generated session.
const SESSION_BYTES: u64 = 320 << 20;

/// Run `baton ARGS` over the Codex home `codex` with its data in `home`,
/// stdout to `stdout`: its exit code and peak resident set in KiB.
fn peak(home: &Path, codex: &Path, args: &[&str], stdout: Stdio) -> (i32, i64) {
    baton_testkit::run_with_peak_rss(
        Command::new(env!("CARGO_BIN_EXE_baton"))
            .env("BATON_HOME", home)
            .env("NO_COLOR", "1")
            .args(args)
            .arg("--codex-home")
            .arg(codex)
            .arg("--claude-dir")
            .arg(codex.join("no-claude"))
            .stdout(stdout)
            .stderr(Stdio::null()),
    )
}

#[test]
fn index_show_and_export_of_a_large_session_stay_under_256_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let codex = tmp.path().join("codex");
    let home = tmp.path().join("baton-home");
    let (native, id) =
        baton_testkit::write_big_codex_session(&codex, 7, SESSION_BYTES, SESSION_BYTES >> 20)
            .unwrap();
    let native_len = std::fs::metadata(&native).unwrap().len();

    let mut peaks = Vec::new();
    let mut run = |what: &str, args: &[&str], out: Option<&Path>| {
        let stdout = match out {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let (code, kib) = peak(&home, &codex, args, stdout);
        assert_eq!(code, 0, "{what} failed");
        peaks.push(format!("{what}: {} MiB", kib >> 10));
        assert!(kib < LIMIT_KIB, "{what} peaked at {kib} KiB resident");
    };
    run("index", &["index"], None);
    let shown = tmp.path().join("show.txt");
    run("show", &["show", &id], Some(&shown));
    let json = tmp.path().join("show.json");
    run("show --json", &["show", &id, "--json"], Some(&json));
    for format in ["md", "html", "jsonl"] {
        let out = tmp.path().join(format!("export.{format}"));
        let out_arg = out.display().to_string();
        run(
            &format!("export --format {format}"),
            &["export", &id, "--format", format, "-o", &out_arg],
            None,
        );
        let len = std::fs::metadata(&out).unwrap().len();
        assert!(
            len > native_len / 2,
            "export --format {format}: {len} bytes"
        );
        if format == "jsonl" {
            assert_eq!(len, native_len);
        }
        std::fs::remove_file(&out).unwrap();
    }
    println!("{}", peaks.join(", "));

    // Everything was shown: the last tool output whole, and valid JSON.
    let last = format!("bigmarker{}", (SESSION_BYTES >> 20) - 1);
    let text = std::fs::read_to_string(&shown).unwrap();
    assert!(text.contains(&last), "show lacks {last}");
    assert!(text.len() as u64 > native_len / 2);
    let file = std::io::BufReader::new(std::fs::File::open(&json).unwrap());
    let doc: serde_json::Value = serde_json::from_reader(file).unwrap();
    let messages = doc["messages"].as_array().unwrap();
    assert_eq!(messages.len() as u64, 4 * (SESSION_BYTES >> 20));
    assert_eq!(doc["session"]["id"], id.as_str());
}
