//! The archive's size on the fixture corpus scaled up (every fixture session
//! file copied until the corpus holds tens of MB): at most 0.25× the bytes.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::Agent;
use baton_store::Archive;
use std::path::{Path, PathBuf};

fn session_files(dir: &Path, out: &mut Vec<(PathBuf, Agent)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            session_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "jsonl") {
            let s = p.to_string_lossy();
            let agent = if s.contains("/claude/") {
                Agent::Claude
            } else if s.contains("/codex") && s.contains("/sessions/") {
                Agent::Codex
            } else {
                continue;
            };
            out.push((p, agent));
        }
    }
}

#[test]
fn fixtures_scaled_to_tens_of_mb_archive_to_a_quarter_or_less() {
    let mut files = Vec::new();
    session_files(&baton_testkit::fixtures_dir(), &mut files);
    assert_eq!(files.len(), 7, "{files:?}");
    let corpus = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(home.path()).unwrap();
    let mut original = 0u64;
    let mut copy = 0;
    while original < 24 << 20 {
        for (path, agent) in &files {
            let to = corpus.path().join(format!(
                "{copy}-{}",
                path.file_name().unwrap().to_string_lossy()
            ));
            std::fs::copy(path, &to).unwrap();
            original += std::fs::metadata(&to).unwrap().len();
            archive.archive_file(&to, *agent).unwrap();
            copy += 1;
        }
    }
    let totals = archive.totals().unwrap();
    assert_eq!(totals.bytes, original);
    let ratio = totals.stored as f64 / original as f64;
    println!(
        "archive ratio: {} stored / {} original = {ratio:.3} ({copy} files)",
        totals.stored, original
    );
    assert!(ratio <= 0.25, "archive is {ratio:.3}× the original bytes");
    // On disk, SQLite's pages included (closing checkpoints the WAL).
    drop(archive);
    let on_disk: u64 = std::fs::read_dir(home.path().join(baton_store::ARCHIVE_DIR))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let disk_ratio = on_disk as f64 / original as f64;
    println!("archive on disk: {on_disk} bytes = {disk_ratio:.3}× the original");
    assert!(
        disk_ratio <= 0.25,
        "archive files are {disk_ratio:.3}× the original bytes"
    );
}
