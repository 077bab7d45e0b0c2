//! Time to first byte of an SSE response through the capture proxy versus
//! straight to the same local upstream, measured in one run.
//!
//! The upstream streams `EVENTS` SSE events with `EVENT_GAP` between them.
//! Requests alternate direct / proxied so both see the same machine state.
//! Target: proxy p50 within 2 ms of direct.
//!
//! Run: `cargo bench -p baton-record --bench proxy` (`PROXY_BENCH_N=2000` for more samples).

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use baton_record::capture::{CaptureConfig, CaptureProxy};
use bytes::Bytes;

/// SSE events per response.
const EVENTS: usize = 4;
/// Pause between two events.
const EVENT_GAP: Duration = Duration::from_millis(1);
/// Samples per path unless `PROXY_BENCH_N` says otherwise.
const DEFAULT_SAMPLES: usize = 500;
/// Unmeasured requests per path first (connection pools, caches).
const WARMUP: usize = 20;

/// A Responses-style request body of realistic size (~40 KB, like a Codex turn).
fn request_body() -> Vec<u8> {
    let filler = "x".repeat(40_000);
    serde_json::to_vec(&serde_json::json!({
        "model": "bench",
        "stream": true,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": filler}]}]
    }))
    .unwrap_or_default()
}

async fn sse_upstream() -> std::io::Result<SocketAddr> {
    let app = axum::Router::new().fallback(|| async {
        let events = futures::stream::unfold(0usize, |i| async move {
            if i >= EVENTS {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(EVENT_GAP).await;
            }
            let chunk = format!("event: response.output_text.delta\ndata: {{\"seq\":{i}}}\n\n");
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), i + 1))
        });
        let mut response = Response::new(Body::from_stream(events));
        response.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        response
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Send one request and return its time to first body byte; reads the rest.
async fn ttfb(client: &reqwest::Client, url: &str, body: &[u8]) -> Result<Duration, String> {
    let start = Instant::now();
    let mut response = client
        .post(url)
        .header("content-type", "application/json")
        .header("session-id", "bench-session")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let first = response.chunk().await.map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    if first.is_none() {
        return Err("empty response".into());
    }
    while response.chunk().await.map_err(|e| e.to_string())?.is_some() {}
    Ok(elapsed)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn bench() -> Result<(), String> {
    let samples = std::env::var("PROXY_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SAMPLES);
    let upstream = sse_upstream().await.map_err(|e| e.to_string())?;
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let proxy = CaptureProxy::start(CaptureConfig::new(
        format!("http://{upstream}/v1"),
        data.path(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    let direct_url = format!("http://{upstream}/v1/responses");
    let proxy_url = format!("{}/responses", proxy.base_url());
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let body = request_body();

    for _ in 0..WARMUP {
        ttfb(&client, &direct_url, &body).await?;
        ttfb(&client, &proxy_url, &body).await?;
    }
    let mut direct = Vec::with_capacity(samples);
    let mut proxied = Vec::with_capacity(samples);
    for _ in 0..samples {
        direct.push(ttfb(&client, &direct_url, &body).await?);
        proxied.push(ttfb(&client, &proxy_url, &body).await?);
    }
    let summary = proxy.shutdown().await.map_err(|e| e.to_string())?;
    if summary.exchanges != samples + WARMUP {
        return Err(format!(
            "captured {} exchanges, expected {}",
            summary.exchanges,
            samples + WARMUP
        ));
    }
    direct.sort();
    proxied.sort();
    let (d50, d99) = (percentile(&direct, 50.0), percentile(&direct, 99.0));
    let (p50, p99) = (percentile(&proxied, 50.0), percentile(&proxied, 99.0));
    println!(
        "SSE time to first byte, {samples} requests each ({} KB request body, {EVENTS} events, {} ms apart)",
        body.len() / 1024,
        EVENT_GAP.as_millis()
    );
    println!("{:<22} {:>10} {:>10}", "", "p50 ms", "p99 ms");
    println!("{:<22} {:>10.3} {:>10.3}", "direct (baseline)", d50, d99);
    println!(
        "{:<22} {:>10.3} {:>10.3}",
        "through capture proxy", p50, p99
    );
    println!(
        "{:<22} {:>10.3} {:>10.3}   target: p50 overhead < 2 ms -> {}",
        "overhead",
        p50 - d50,
        p99 - d99,
        if p50 - d50 < 2.0 { "met" } else { "MISSED" }
    );
    Ok(())
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = runtime.block_on(bench()) {
        eprintln!("proxy bench failed: {err}");
        std::process::exit(1);
    }
}
