//! Per-keystroke query time of `baton pick` on a synthetic corpus.
//!
//! `cargo bench -p baton-store --bench pick -- [--sessions N] [--bytes SIZE] [--corpus DIR] [--baton PATH]`
//! (defaults: 2000 sessions, 100M; the 16 ms frame target is stated for
//! `--sessions 100000`). Types each of a few words one character at a time
//! and times [`Catalog::pick`] on the catalog kept open, as the picker runs
//! it on every key: the first answer (the sessions of the newest
//! matches, [`PickScan::FIRST`]) that must land within a frame, and the
//! exact answer that follows ([`PickScan::All`]), printing p50/p99 per
//! prefix length. Baselines: the ranked search the picker used before
//! ([`Catalog::search`], best hit per session), the same with the catalog
//! opened afresh each time (what any per-key process pays at least), and
//! with `--baton PATH` (a release binary) `baton search WORD --no-refresh`
//! as a process.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

#[path = "../examples/corpus/mod.rs"]
#[allow(dead_code)] // the generator's append helper serves the catalog bench only
mod corpus;

use baton_store::{Catalog, PickScan, Roots, SearchQuery};
use baton_testkit::bench::{ms, p50_p99};
use std::time::{Duration, Instant};

/// Words typed, of different frequency in the corpus.
const WORDS: [&str; 5] = ["flamegraph", "reducer", "terraform", "checksum", "cipher"];
/// Results the picker asks for.
const LIMIT: usize = 100;

fn row(what: &str, runs: Vec<Duration>) {
    let n = runs.len();
    let (p50, p99) = p50_p99(runs);
    println!("  {what:<44} {:>10} {:>10}  ({n} runs)", ms(p50), ms(p99));
}

fn main() {
    let corpus::BenchArgs {
        sessions,
        bytes,
        corpus: corpus_dir,
        baton,
        ..
    } = corpus::BenchArgs::from_env();
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = corpus_dir.unwrap_or_else(|| tmp.path().join("corpus"));
    if !(root.join("codex").exists() || root.join("claude").exists()) {
        let s = corpus::generate(&baton_testkit::fixtures_dir(), &root, sessions, bytes, 42)
            .expect("generate corpus");
        println!(
            "corpus: generated {} sessions, {} files",
            s.sessions, s.files
        );
    } else {
        println!("corpus: reusing {}", root.display());
    }
    let roots = Roots {
        codex_homes: vec![root.join("codex")],
        claude_dirs: vec![root.join("claude")],
        library: Vec::new(),
    };
    let home = tmp.path().join("baton-home");
    let mut cat = Catalog::open(&home).expect("open catalog");
    cat.refresh(&roots, &|_| {}).expect("index the corpus");
    println!(
        "catalog: {} sessions; per keystroke, catalog kept open, limit {LIMIT}:",
        cat.count_sessions().expect("count sessions")
    );
    // `--here` in the project of the newest session: few sessions, so the
    // filter leaves few of the matches read.
    let here = cat
        .list(&baton_store::ListQuery::default())
        .expect("list")
        .sessions
        .first()
        .and_then(|s| s.cwd.clone())
        .map(|cwd| {
            cwd.rsplit_once('/')
                .map_or(cwd.clone(), |(dir, _)| dir.to_string())
        });
    for (what, scan) in [
        ("first answer (PickScan::FIRST)", PickScan::FIRST),
        ("exact answer (every match)", PickScan::All),
    ] {
        println!("{what}:");
        println!("  {:<44} {:>10} {:>10}", "query", "p50", "p99");
        let mut all = Vec::new();
        let mut by_len: Vec<Vec<Duration>> = Vec::new();
        let mut hits = 0;
        for _ in 0..5 {
            for word in WORDS {
                for len in 0..=word.len() {
                    let t = Instant::now();
                    hits += cat
                        .pick(&word[..len], None, None, LIMIT, scan)
                        .expect("pick")
                        .len();
                    let took = t.elapsed();
                    all.push(took);
                    if by_len.len() <= len {
                        by_len.resize(len + 1, Vec::new());
                    }
                    by_len[len].push(took);
                }
            }
        }
        for (len, runs) in by_len.into_iter().enumerate() {
            let what = if len == 0 {
                "nothing typed (list)".to_string()
            } else {
                format!("{len}-character prefix")
            };
            row(&what, runs);
        }
        let keys = all.len();
        row("every keystroke", all);
        println!(
            "  ({} results per keystroke on average)",
            hits / keys.max(1)
        );
        let runs: Vec<Duration> = (0..30)
            .map(|i| {
                let t = Instant::now();
                let word = WORDS[i % WORDS.len()];
                cat.pick(
                    &word[..3],
                    Some(baton_native::Agent::Codex),
                    here.as_deref(),
                    LIMIT,
                    scan,
                )
                .expect("pick");
                t.elapsed()
            })
            .collect();
        row("3-character prefix, --agent codex --here", runs);
    }
    println!("baselines:");
    let ranked = |cat: &Catalog, word: &str| {
        cat.search(&SearchQuery {
            query: baton_store::as_you_type(word).expect("a word"),
            limit: LIMIT,
            per_session: 1,
            ..SearchQuery::default()
        })
        .expect("search")
    };
    for len in [3, usize::MAX] {
        let runs: Vec<Duration> = (0..30)
            .map(|i| {
                let word = WORDS[i % WORDS.len()];
                let t = Instant::now();
                ranked(&cat, &word[..len.min(word.len())]);
                t.elapsed()
            })
            .collect();
        let what = if len == 3 {
            "3-character prefix"
        } else {
            "whole word"
        };
        row(&format!("ranked search (bm25), {what}"), runs);
    }
    let runs: Vec<Duration> = (0..30)
        .map(|i| {
            let t = Instant::now();
            let fresh = Catalog::open(&home).expect("open catalog");
            ranked(&fresh, WORDS[i % WORDS.len()]);
            t.elapsed()
        })
        .collect();
    row("open the catalog + ranked whole word", runs);
    if let Some(baton) = baton {
        let runs: Vec<Duration> = (0..30)
            .map(|i| {
                let mut cmd = std::process::Command::new(&baton);
                cmd.env("BATON_HOME", &home)
                    .env("NO_COLOR", "1")
                    .args(["search", "--no-refresh", WORDS[i % WORDS.len()]])
                    .arg("--codex-home")
                    .arg(root.join("codex"))
                    .arg("--claude-dir")
                    .arg(root.join("claude"))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                let t = Instant::now();
                cmd.status().expect("run baton search");
                t.elapsed()
            })
            .collect();
        row("`baton search WORD --no-refresh` process", runs);
    } else {
        println!("  (pass --baton PATH for `baton search` as a process)");
    }
}
