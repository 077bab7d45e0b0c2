//! Recorder benchmark (`cargo bench -p baton-record --bench recorder`).
//!
//! 1. Per durability policy: 4 concurrent writers each doing
//!    `record_items(1 item)` + `flush()`; prints items/s and p50/p99 latency of
//!    that durable append, plus bulk enqueue throughput (one flush at the end).
//! 2. Like with like, one update per item, each handed to the OS before the
//!    next: baton (`record_items(1)` + `flush()` under `Durability::Flush`:
//!    one append) against the seed-000 approach (rewrite the whole pretty JSON
//!    document and write it), measured in the same run at 1k/10k/100k items.
//!    The O(n²) rewrite is capped at `REWRITE_CAP` per size (measuring 100k
//!    fully would take hours); past the cap the output says so and the total
//!    is extrapolated from the updates measured (cost per update grows
//!    linearly, so the total grows with the square of the count). baton under
//!    `Durability::Buffered` with no per-item flush is printed on its own line:
//!    it is not comparable to a per-update write.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use baton_record::{Durability, Recorder, RecorderConfig, ResponseItem};

/// Time budget of one rewrite-baseline run.
const REWRITE_CAP: Duration = Duration::from_secs(8);
const WRITERS: usize = 4;

fn item(i: usize) -> ResponseItem {
    ResponseItem::user_text(format!(
        "message {i}: please look at src/main.rs and explain why the build fails on line {i}; \
         the compiler says something about a borrowed value not living long enough."
    ))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn durable_appends(policy: Durability, per_writer: usize) -> (f64, Duration, Duration) {
    let home = tempfile::tempdir().expect("temp dir");
    let mut cfg = RecorderConfig::new(home.path(), "/bench");
    cfg.durability = policy;
    let rec = Recorder::create(&cfg).await.expect("create");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let rec = rec.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                let t = Instant::now();
                rec.record_items(&[item(w * per_writer + i)])
                    .await
                    .expect("record");
                rec.flush().await.expect("flush");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer task"));
    }
    let secs = start.elapsed().as_secs_f64();
    rec.shutdown().await.expect("shutdown");
    all.sort();
    (
        all.len() as f64 / secs,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
    )
}

/// How [`timed_appends`] drives the writer.
#[derive(Clone, Copy, PartialEq)]
enum Appends {
    /// `n` × `record_items(1)`, then one `flush()`.
    Bulk,
    /// `n` × (`record_items(1)` + `flush()`): each append has reached the OS
    /// (and disk, under Fsync) before the next update.
    PerUpdate,
}

/// One writer, `n` updates of one item each, driven as `appends` says: the
/// time until everything is flushed.
async fn timed_appends(policy: Durability, n: usize, appends: Appends) -> Duration {
    let home = tempfile::tempdir().expect("temp dir");
    let mut cfg = RecorderConfig::new(home.path(), "/bench");
    cfg.durability = policy;
    let rec = Recorder::create(&cfg).await.expect("create");
    let start = Instant::now();
    for i in 0..n {
        rec.record_items(&[item(i)]).await.expect("record");
        if appends == Appends::PerUpdate {
            rec.flush().await.expect("flush");
        }
    }
    if appends == Appends::Bulk {
        rec.flush().await.expect("flush");
    }
    let took = start.elapsed();
    rec.shutdown().await.expect("shutdown");
    took
}

/// The seed-000 recorder: keep every item in memory and rewrite the whole
/// pretty-printed JSON file after each update (the write reaches the OS
/// before the next update). Returns (updates done, time); stops at
/// [`REWRITE_CAP`].
fn rewrite_baseline(n: usize) -> (usize, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("rollout.json"))
        .expect("open");
    let mut items: Vec<ResponseItem> = Vec::new();
    let start = Instant::now();
    for i in 0..n {
        items.push(item(i));
        let doc = serde_json::json!({"session": {"id": "x"}, "items": &items, "state": {}});
        let bytes = serde_json::to_vec_pretty(&doc).expect("json");
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.set_len(0).expect("truncate");
        file.write_all(&bytes).expect("write");
        file.flush().expect("flush");
        if start.elapsed() > REWRITE_CAP {
            return (i + 1, start.elapsed());
        }
    }
    (n, start.elapsed())
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    println!("== durable append: {WRITERS} concurrent writers, record_items(1) + flush() each ==");
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>18}",
        "policy", "items/s", "p50", "p99", "bulk 100k items/s"
    );
    for (policy, per_writer) in [
        (Durability::Buffered, 5_000),
        (Durability::Flush, 5_000),
        (Durability::Fsync, 500),
    ] {
        let (ips, p50, p99) = rt.block_on(durable_appends(policy, per_writer));
        let bulk = rt.block_on(timed_appends(policy, 100_000, Appends::Bulk));
        println!(
            "{:<10} {:>12.0} {:>10.1}µs {:>10.1}µs {:>18.0}",
            format!("{policy:?}"),
            ips,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            100_000.0 / bulk.as_secs_f64()
        );
    }

    println!();
    println!("== one update per item, each written to the OS before the next ==");
    println!("baton: record_items(1) + flush() (Flush). seed-000: rewrite the whole file + write.");
    println!(
        "seed-000 is capped at {} per size; a capped total is extrapolated as (n/measured)^2 x time (O(n^2) rewrite).",
        fmt_secs(REWRITE_CAP)
    );
    println!(
        "{:>8} {:>14} {:>52} {:>10}",
        "items", "baton", "seed-000 rewrite", "speed-up"
    );
    for n in [1_000usize, 10_000, 100_000] {
        let baton = rt.block_on(timed_appends(Durability::Flush, n, Appends::PerUpdate));
        let (done, took) = rewrite_baseline(n);
        let (rewrite, note) = if done == n {
            (took, " (measured)".to_string())
        } else {
            let scale = n as f64 / done as f64;
            (
                Duration::from_secs_f64(took.as_secs_f64() * scale * scale),
                format!(" (EXTRAPOLATED: {done} updates in {})", fmt_secs(took)),
            )
        };
        println!(
            "{:>8} {:>14} {:>52} {:>9.0}x",
            n,
            fmt_secs(baton),
            format!("{}{note}", fmt_secs(rewrite)),
            rewrite.as_secs_f64() / baton.as_secs_f64()
        );
    }
    println!();
    println!(
        "== not comparable to the above: baton Buffered, no per-item flush (one flush at the end) =="
    );
    for n in [1_000usize, 10_000, 100_000] {
        let took = rt.block_on(timed_appends(Durability::Buffered, n, Appends::Bulk));
        println!("{n:>8} {:>14}", fmt_secs(took));
    }
}
