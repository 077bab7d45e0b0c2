//! Search over one message that repeats the searched word (issue: FTS5's
//! `snippet()` is quadratic in the matches inside one message).
//!
//! `cargo bench -p baton-store --bench search_snippet`. For each message
//! size, prints the p50 of `Catalog::search` (snippets computed by
//! `baton-search` from the message text) next to two baselines measured in
//! the same run on the same catalog: the rank-only FTS5 query (no snippet,
//! the floor) and FTS5 `snippet()` (the old way; only at 64 KiB, since it
//! takes minutes beyond).

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_store::{Catalog, Roots, SearchQuery};
use rusqlite::Connection;
use std::time::{Duration, Instant};

/// Sizes of the repeated-word message.
const SIZES: [usize; 4] = [64 << 10, 256 << 10, 1 << 20, 10 << 20];
/// Largest message the FTS5 `snippet()` baseline is run on (it took 3.3 s
/// at 64 KiB and 52 s at 256 KiB here).
const SNIPPET_BASELINE_MAX: usize = 64 << 10;
const RUNS: usize = 5;

fn p50(mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> String {
    format!("{:>10.2} ms", d.as_secs_f64() * 1e3)
}

/// A catalog over the fixture homes whose first Codex session ends in a tool
/// output of `size` bytes repeating `word`.
fn catalog(size: usize) -> (tempfile::TempDir, Catalog) {
    let homes = baton_testkit::fixture_homes();
    let dir = homes.path().join("codex/sessions/2026/11/21");
    let rollout = std::fs::read_dir(&dir)
        .expect("fixture codex home")
        .map(|e| e.expect("dir entry").path())
        .min()
        .expect("a rollout");
    let output = "word ".repeat(size / 5);
    let line = serde_json::json!({
        "timestamp": "2026-11-21T19:25:00.000Z", "type": "response_item",
        "payload": {"type": "function_call_output", "call_id": "c", "output": output},
    });
    let mut bytes = std::fs::read(&rollout).expect("read rollout");
    bytes.extend_from_slice(format!("{line}\n").as_bytes());
    std::fs::write(&rollout, bytes).expect("write rollout");
    let roots = Roots {
        codex_homes: vec![homes.path().join("codex")],
        ..Roots::default()
    };
    let mut cat = Catalog::open(&homes.path().join("baton-home")).expect("open catalog");
    cat.refresh(&roots, &|_| {}).expect("refresh");
    (homes, cat)
}

fn main() {
    println!(
        "{:>10} {:>13} {:>13} {:>13}",
        "message", "baton search", "rank only", "fts5 snippet"
    );
    for size in SIZES {
        let (_homes, cat) = catalog(size);
        let query = SearchQuery {
            query: "word".into(),
            ..SearchQuery::default()
        };
        let search = p50(|| {
            let hits = cat.search(&query).expect("search");
            assert!(hits[0].snippet.starts_with("«word»"), "{hits:?}");
        });
        let conn = Connection::open(cat.path()).expect("open catalog db");
        let sql = |select: &str| {
            format!(
                "SELECT {select} FROM messages_fts WHERE messages_fts MATCH '\"word\"'
                 ORDER BY rank LIMIT 20"
            )
        };
        let run = |sql: &str| {
            let mut stmt = conn.prepare(sql).expect("prepare");
            let rows: Vec<String> = stmt
                .query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
                .expect("query")
                .map(|r| format!("{:?}", r.expect("row")))
                .collect();
            assert!(!rows.is_empty());
        };
        let rank = p50(|| run(&sql("rowid")));
        let snippet = (size <= SNIPPET_BASELINE_MAX)
            .then(|| p50(|| run(&sql("snippet(messages_fts, 0, '«', '»', '…', 16)"))));
        println!(
            "{:>7} KiB {} {} {}",
            size >> 10,
            ms(search),
            ms(rank),
            snippet.map_or(format!("{:>13}", "(skipped)"), ms)
        );
    }
}
