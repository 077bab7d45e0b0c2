//! Fuzzing the three readers of untrusted bytes with proptest, bounded so it
//! runs in every `cargo test` (raise `BATON_FUZZ_CASES` for a longer run):
//! the Codex and Claude transcript readers get the fixture sessions with
//! random damage (flipped, inserted and deleted bytes, cut lines, lone
//! surrogate escapes, invalid UTF-8), fed in random chunks; the envelope
//! reader gets a fixture envelope damaged before and after compression.
//!
//! Properties: nothing panics; every skipped line is reported with a line
//! number and the offset where that line starts; reading in chunks gives
//! exactly what reading at once gives; a damaged envelope is either refused
//! or holds exactly the bytes its hashes name.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::envelope::{Envelope, EnvelopeMeta};
use baton_native::rehydrate::{LineageFile, NativeSession};
use baton_native::{Agent, Chunk, FileReader};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::PathBuf;

/// One fixture session file of each agent.
fn fixture(agent: Agent) -> (PathBuf, Vec<u8>) {
    let root = baton_testkit::fixtures_dir();
    let path = match agent {
        Agent::Codex => root.join(
            "codex/sessions/2026/11/21/rollout-2026-11-21T19-20-28-01a1ff8d-8c3d-7551-b270-db431e8a8997.jsonl",
        ),
        Agent::Claude => root.join(
            "claude/.claude/projects/-srv-corpus-work-pub-beta/24618527-ae46-4f6d-902b-96792270f328.jsonl",
        ),
    };
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, bytes)
}

/// How many cases each property runs (`BATON_FUZZ_CASES`, default 48).
fn runner() -> TestRunner {
    let cases = std::env::var("BATON_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// One kind of damage, at a position given as a fraction of the length.
#[derive(Debug, Clone)]
enum Damage {
    Flip(f64, u8),
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
    CutLine(f64),
    LoneSurrogate(f64),
}

fn damage() -> impl Strategy<Value = Damage> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), any::<u8>()).prop_map(|(p, b)| Damage::Flip(p, b)),
        (
            at.clone(),
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b'\n'),
                    Just(b'"'),
                    Just(b'\\'),
                    Just(0xFF)
                ],
                1..8
            )
        )
            .prop_map(|(p, b)| Damage::Insert(p, b)),
        (at.clone(), 1..64usize).prop_map(|(p, n)| Damage::Delete(p, n)),
        at.clone().prop_map(Damage::CutLine),
        at.prop_map(Damage::LoneSurrogate),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
    match damage {
        Damage::Flip(p, b) if !bytes.is_empty() => {
            let i = at(*p, bytes.len() - 1);
            bytes[i] ^= b | 1;
        }
        Damage::Flip(..) => {}
        Damage::Insert(p, b) => {
            let i = at(*p, bytes.len());
            bytes.splice(i..i, b.iter().copied());
        }
        Damage::Delete(p, n) => {
            let i = at(*p, bytes.len());
            bytes.drain(i..(i + n).min(bytes.len()));
        }
        Damage::CutLine(p) => {
            // Drop the rest of a line, keeping its newline.
            let i = at(*p, bytes.len());
            let end = bytes[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |n| i + n);
            bytes.drain(i..end);
        }
        Damage::LoneSurrogate(p) => {
            // Inside the next string value: `"` then a cut emoji.
            let i = at(*p, bytes.len());
            if let Some(q) = bytes[i..].iter().position(|&b| b == b'"') {
                bytes.splice(i + q + 1..i + q + 1, *b"\\ud83d");
            }
        }
    }
}

/// Read `bytes` at once, and again in chunks ending at `cuts` (fractions of
/// the length), as a catalog reading a growing file does; both must agree.
fn read_both_ways(agent: Agent, bytes: &[u8], cuts: &[f64]) -> Chunk {
    let whole = FileReader::new(agent).feed(bytes);
    let mut reader = FileReader::new(agent);
    let mut chunked = Chunk::default();
    let mut ends: Vec<usize> = cuts
        .iter()
        .map(|p| (p * bytes.len() as f64) as usize)
        .collect();
    ends.sort_unstable();
    ends.push(bytes.len());
    for end in ends {
        let from = reader.state().consumed as usize;
        if end < from {
            continue;
        }
        let part = reader.feed(&bytes[from..end]);
        chunked.messages.extend(part.messages);
        chunked.issues.extend(part.issues);
    }
    assert_eq!(chunked, whole, "chunked and whole reads differ");
    whole
}

/// Every issue names a line that exists and the offset where it starts.
fn check_issues(bytes: &[u8], chunk: &Chunk) {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    for issue in &chunk.issues {
        let at = issue.offset as usize;
        assert!(
            (1..=lines).contains(&issue.line),
            "issue on line {} of {lines}: {}",
            issue.line,
            issue.message
        );
        assert!(at == 0 || bytes.get(at - 1) == Some(&b'\n'), "{issue:?}");
        assert!(!issue.message.is_empty());
        assert_eq!(
            bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1,
            issue.line,
            "{issue:?}"
        );
    }
}

fn fuzz_reader(agent: Agent) {
    let (path, original) = fixture(agent);
    let clean = FileReader::new(agent).feed(&original);
    assert!(clean.issues.is_empty(), "{}", path.display());
    let strategy = (
        prop::collection::vec(damage(), 1..6),
        prop::collection::vec(0.0..1.0f64, 0..6),
    );
    runner()
        .run(&strategy, |(damages, cuts)| {
            let mut bytes = original.clone();
            for d in &damages {
                apply(&mut bytes, d);
            }
            let chunk = read_both_ways(agent, &bytes, &cuts);
            check_issues(&bytes, &chunk);
            if agent == Agent::Claude {
                let order = baton_native::claude::chain_order(&chunk.messages);
                assert!(order.iter().all(|&i| i < chunk.messages.len()));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

#[test]
fn codex_reader_survives_damage() {
    fuzz_reader(Agent::Codex);
}

#[test]
fn claude_reader_survives_damage() {
    fuzz_reader(Agent::Claude);
}

#[test]
fn envelope_reader_survives_damage() {
    let (_, bytes) = fixture(Agent::Claude);
    let id = "24618527-ae46-4f6d-902b-96792270f328";
    let envelope = Envelope::from_files(
        NativeSession {
            agent: Agent::Claude,
            id: id.into(),
            files: vec![LineageFile {
                id: id.into(),
                name: format!("projects/-srv-corpus-work-pub-beta/{id}.jsonl"),
                bytes,
            }],
            extras: Vec::new(),
        },
        EnvelopeMeta::default(),
    );
    let mut packed = Vec::new();
    envelope.write_to(&mut packed).unwrap();
    let plain = zstd::decode_all(packed.as_slice()).unwrap();
    let strategy = (prop::collection::vec(damage(), 1..4), any::<bool>());
    runner()
        .run(&strategy, |(damages, after_compression)| {
            let mut bytes = if after_compression {
                packed.clone()
            } else {
                plain.clone()
            };
            for d in &damages {
                apply(&mut bytes, d);
            }
            if !after_compression {
                bytes = zstd::encode_all(bytes.as_slice(), 1).unwrap();
            }
            if let Ok(read) = Envelope::read_from(bytes.as_slice()) {
                // Accepted only when every hash still matches.
                let mut again = Vec::new();
                read.write_to(&mut again).unwrap();
                let reread = Envelope::read_from(again.as_slice()).unwrap();
                assert_eq!(reread.session, read.session);
                assert_eq!(read.sha256(), envelope.sha256());
            }
            Ok(())
        })
        .unwrap();
}
