//! The in-flight push cap holds: concurrent large pushes never take more
//! memory than `max_inflight` beyond the server's resting size. Alone in its
//! test binary, so the process's peak RSS is this test's. The pushes go to
//! a side stream: the indexer's memory for `main` streams is its own
//! concern, not the push path's.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

mod common;

use baton_protocol::HEADER_OFFSET;
use baton_server::api::Limits;
use common::{MAX_JSON, codex_meta, start_with};

const MIB: usize = 1024 * 1024;

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// A body of `len` bytes made piece by piece as it is sent, so the client
/// side of the test holds almost nothing.
fn generated_body(len: usize, seed: u8) -> reqwest::Body {
    const PIECE: usize = 64 * 1024;
    let pieces = (0..len.div_ceil(PIECE)).map(move |i| {
        let n = PIECE.min(len - i * PIECE);
        let line: Vec<u8> = (0..n)
            .map(|j| {
                if j % 100 == 99 {
                    b'\n'
                } else {
                    b'a' + (seed + (j % 26) as u8) % 26
                }
            })
            .collect();
        Ok::<_, std::io::Error>(line)
    });
    reqwest::Body::wrap_stream(futures::stream::iter(pieces))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_large_pushes_stay_within_the_in_flight_cap() {
    let limits = Limits {
        max_append: 16 * MIB,
        max_json: MAX_JSON,
        max_inflight: 64 * MIB,
        inflight_wait: std::time::Duration::from_secs(60),
    };
    let s = start_with(limits).await;
    for i in 0..10 {
        s.put(&s.a, &format!("s{i}"), codex_meta()).await;
    }
    // Warm up every path once, then measure from the resting size.
    let r = s
        .http
        .post(s.url("/sessions/s9/streams/warm"))
        .bearer_auth(&s.a)
        .header(HEADER_OFFSET, "0")
        .body(vec![b'x'; 2 * MIB])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rest = status_bytes("VmRSS:");
    // Reset the peak to the current size (Linux `clear_refs` 5).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let len = 15 * MIB;
    let pushes = (0..10u8).map(|i| {
        let req = s
            .http
            .post(s.url(&format!("/sessions/s{i}/streams/side")))
            .bearer_auth(&s.a)
            .header(HEADER_OFFSET, "0")
            .header(reqwest::header::CONTENT_LENGTH, len.to_string())
            .body(generated_body(len, i));
        async move { req.send().await.unwrap().status() }
    });
    for status in futures::future::join_all(pushes).await {
        assert_eq!(status, 200);
    }
    let peak = status_bytes("VmHWM:");
    let grew = peak.saturating_sub(rest);
    // The cap, plus room for the server's working memory that does not grow
    // with body sizes (connection buffers, SQLite page caches); measured
    // here: 62-66 MiB.
    let allowed = limits.max_inflight + 16 * MIB;
    assert!(
        grew <= allowed,
        "peak RSS grew by {} MiB for 10 pushes of 15 MiB (cap {} MiB)",
        grew / MIB,
        limits.max_inflight / MIB
    );
    for i in 0..10 {
        let (_, v) = s.get_json(&s.a, &format!("/sessions/s{i}")).await;
        assert_eq!(v["streams"][0]["len"], len);
    }
}
