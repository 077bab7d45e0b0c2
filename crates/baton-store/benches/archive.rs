//! Archive size and speed on the fixture corpus scaled up (issue 14: the
//! archive must stay at or below 0.25× the original bytes at 1 GB).
//!
//! `cargo bench -p baton-store --bench archive` archives copies of every
//! fixture session file until `BATON_ARCHIVE_BENCH_MB` MiB (default 1024)
//! were archived (each copy is deleted once archived, so the run needs disk
//! for the archive only), then prints the compressed size, the archive's
//! size on disk and the throughput, and fails when the archive exceeds
//! 0.25× the original bytes.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::Agent;
use baton_store::{ARCHIVE_DIR, Archive};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn session_files(dir: &Path, out: &mut Vec<(PathBuf, Agent)>) {
    for e in std::fs::read_dir(dir).expect("fixture dir") {
        let p = e.expect("fixture entry").path();
        let s = p.to_string_lossy().into_owned();
        if p.is_dir() {
            session_files(&p, out);
        } else if s.ends_with(".jsonl") && s.contains("/claude/") {
            out.push((p, Agent::Claude));
        } else if s.ends_with(".jsonl") && s.contains("/sessions/") {
            out.push((p, Agent::Codex));
        }
    }
}

fn main() {
    let target: u64 = std::env::var("BATON_ARCHIVE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
        << 20;
    let mut files = Vec::new();
    session_files(&baton_testkit::fixtures_dir(), &mut files);
    let corpus = tempfile::tempdir().expect("temp dir");
    let home = tempfile::tempdir().expect("temp dir");
    let mut archive = Archive::open(home.path()).expect("archive");
    let started = Instant::now();
    let mut original = 0u64;
    let mut copy = 0u64;
    while original < target {
        archive
            .batch(|archive| {
                for (path, agent) in &files {
                    let name = path.file_name().expect("name").to_string_lossy();
                    let to = corpus.path().join(format!("{copy}-{name}"));
                    std::fs::copy(path, &to).expect("copy");
                    original += archive.archive_file(&to, *agent)?.bytes;
                    std::fs::remove_file(&to).expect("remove copy");
                    copy += 1;
                }
                Ok(())
            })
            .expect("archive batch");
    }
    let elapsed = started.elapsed();
    let totals = archive.totals().expect("totals");
    drop(archive);
    let on_disk: u64 = std::fs::read_dir(home.path().join(ARCHIVE_DIR))
        .expect("archive dir")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    let ratio = totals.stored as f64 / original as f64;
    let disk_ratio = on_disk as f64 / original as f64;
    println!(
        "archived {copy} files, {:.1} MiB in {:.1} s ({:.1} MiB/s)",
        original as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        original as f64 / 1048576.0 / elapsed.as_secs_f64()
    );
    println!(
        "compressed frames: {ratio:.3}× the original; archive files on disk: {disk_ratio:.3}×"
    );
    assert!(
        disk_ratio <= 0.25,
        "archive is {disk_ratio:.3}× the original bytes"
    );
}
