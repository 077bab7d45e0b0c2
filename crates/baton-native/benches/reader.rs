//! Reader throughput: `FileReader::feed` over the fixture transcripts repeated
//! many times, next to a full `serde_json::Value` parse of every line of the
//! same bytes (the baseline), measured in the same run.
//!
//! Run with `cargo bench -p baton-native --bench reader`.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::{Agent, FileReader, discover_claude, discover_codex, read_native};
use baton_testkit::bench::{best, mbps, repeat_to};
use std::hint::black_box;
use std::path::Path;

/// Bytes of each agent's corpus after repetition.
const TARGET_BYTES: usize = 64 << 20;

fn corpus(agent: Agent) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/agents-v1");
    let files = match agent {
        Agent::Codex => {
            let mut f = discover_codex(&root.join("codex")).0;
            f.extend(discover_codex(&root.join("codex-legacy")).0);
            f
        }
        Agent::Claude => discover_claude(&root.join("claude/.claude")).0,
    };
    let mut one = Vec::new();
    for f in &files {
        one.extend(read_native(f, 0).expect("fixture readable"));
    }
    repeat_to(&one, TARGET_BYTES)
}

fn main() {
    println!(
        "{:<8} {:>10} {:>16} {:>16} {:>8}",
        "agent", "MB", "FileReader MB/s", "Value MB/s", "ratio"
    );
    for agent in [Agent::Codex, Agent::Claude] {
        let bytes = corpus(agent);
        let reader = best(5, || {
            let mut r = FileReader::new(agent);
            // Feed in 1 MiB pieces, as an incremental catalog would.
            let mut at = 0usize;
            while at < bytes.len() {
                let end = (at + (1 << 20)).min(bytes.len());
                let from = r.state().consumed as usize;
                black_box(r.feed(&bytes[from..end]));
                at = end;
            }
            assert_eq!(r.state().consumed as usize, bytes.len());
        });
        let value = best(5, || {
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).expect("valid fixture");
                black_box(v);
            }
        });
        let (r, v) = (mbps(bytes.len(), reader), mbps(bytes.len(), value));
        println!(
            "{:<8} {:>10.1} {:>16.0} {:>16.0} {:>7.1}x",
            agent.as_str(),
            bytes.len() as f64 / 1e6,
            r,
            v,
            r / v
        );
    }
}
