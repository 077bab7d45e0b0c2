//! Scanner throughput: the built-in rules over the fixture transcripts
//! repeated to 1 GB (`BATON_SCAN_BENCH_MB` overrides the size), next to a
//! plain byte scan of the same bytes (`memchr` counting newlines, the
//! floor any line-oriented scanner pays) measured in the same run. Target:
//! at least 200 MB/s.
//!
//! Run with `cargo bench -p baton-secrets --bench scan`.

use baton_secrets::{AllowList, find_secrets};
use baton_testkit::bench::{best, mbps, repeat_to};
use std::hint::black_box;
use std::path::Path;

fn corpus(target: usize) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/agents-v1");
    let mut one = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixtures readable")
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                one.extend(std::fs::read(&path).expect("fixture readable"));
            }
        }
    }
    repeat_to(&one, target)
}

fn main() {
    let mb: usize = std::env::var("BATON_SCAN_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let bytes = corpus(mb * 1_000_000);
    let allow = AllowList::new();
    let mut findings = 0;
    let scan = best(3, || {
        findings = black_box(find_secrets(&bytes, &allow)).len()
    });
    let mut lines = 0;
    let baseline = best(3, || {
        lines = black_box(memchr::memchr_iter(b'\n', &bytes).count())
    });
    println!(
        "{:>8} {:>10} {:>14} {:>16} {:>8}",
        "MB", "findings", "scan MB/s", "memchr MB/s", "ratio"
    );
    println!(
        "{:>8} {:>10} {:>14.0} {:>16.0} {:>8.2}",
        bytes.len() / 1_000_000,
        findings,
        mbps(bytes.len(), scan),
        mbps(bytes.len(), baseline),
        baseline.as_secs_f64() / scan.as_secs_f64(),
    );
    assert!(lines > 0);
}
