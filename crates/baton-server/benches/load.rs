//! Load benchmark: 64 concurrent clients doing small appends and reads, next
//! to a `/healthz` baseline measured in the same run with the same clients,
//! first against an in-process `baton serve` on the embedded backend, then
//! against two in-process replicas on PostgreSQL + an S3-compatible store
//! (started by `baton_testkit::team`; each client alternates replicas, so
//! every append follows one made through the other replica).
//!
//! `cargo bench -p baton-server --bench load -- [--seconds N] [--clients N]`
//! Targets on a 2-core machine: embedded ≥ 3,000 appends/s with p99 ≤ 50 ms;
//! team (two replicas, PostgreSQL and the store on the same host) ≥ 1,000
//! appends/s with p99 ≤ 100 ms.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_protocol::{HEADER_OFFSET, HEADER_PREFIX_SHA256};
use baton_server::hash::RunningSha256;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Samples {
    append: Vec<Duration>,
    read: Vec<Duration>,
    health: Vec<Duration>,
    errors: u64,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut v: Vec<Duration>, secs: f64) {
    v.sort();
    println!(
        "{name:<22} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
        v.len() as f64 / secs,
        pct(&v, 0.50),
        pct(&v, 0.99),
        v.len()
    );
}

async fn client(
    http: reqwest::Client,
    bases: Vec<String>,
    token: String,
    id: usize,
    health_until: Instant,
    until: Instant,
) -> Samples {
    let mut s = Samples::default();
    let base = |n: u64| bases[(id + n as usize) % bases.len()].clone();
    while Instant::now() < health_until {
        let t = Instant::now();
        match http.get(format!("{}/healthz", base(0))).send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                s.health.push(t.elapsed());
            }
            _ => s.errors += 1,
        }
    }
    let session = format!("bench-{id}");
    let api = |n: u64| format!("{}/api/v1/sessions/{session}", base(n));
    if http
        .put(api(0))
        .bearer_auth(&token)
        .json(&serde_json::json!({"agent":"codex"}))
        .send()
        .await
        .is_err()
    {
        s.errors += 1;
        return s;
    }
    let mut hash = RunningSha256::new();
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let line = format!(
            "{{\"timestamp\":\"2026-11-21T19:20:28.000Z\",\"type\":\"event_msg\",\"payload\":{{\"type\":\"agent_message\",\"message\":\"bench reply {id}-{n} with some text to index\"}}}}\n"
        );
        let t = Instant::now();
        let r = http
            .post(format!("{}/streams/main", api(n)))
            .bearer_auth(&token)
            .header(HEADER_OFFSET, hash.len().to_string())
            .header(HEADER_PREFIX_SHA256, hash.hex())
            .body(line.clone())
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                s.append.push(t.elapsed());
                hash.update(line.as_bytes());
            }
            _ => s.errors += 1,
        }
        let t = Instant::now();
        let from = hash.len().saturating_sub(line.len() as u64 * 2);
        match http
            .get(format!("{}/streams/main?from={from}", api(n + 1)))
            .bearer_auth(&token)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                s.read.push(t.elapsed());
            }
            _ => s.errors += 1,
        }
    }
    s
}

/// Run the clients against `bases` (the replicas) and print the figures.
async fn measure(label: &str, bases: Vec<String>, token: String, seconds: u64, clients: usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let baseline_secs = (seconds / 3).max(1);
    let start = Instant::now();
    let health_until = start + Duration::from_secs(baseline_secs);
    let until = health_until + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            tokio::spawn(client(
                http.clone(),
                bases.clone(),
                token.clone(),
                i,
                health_until,
                until,
            ))
        })
        .collect();
    let mut all = Samples::default();
    for t in tasks {
        if let Ok(s) = t.await {
            all.append.extend(s.append);
            all.read.extend(s.read);
            all.health.extend(s.health);
            all.errors += s.errors;
        }
    }
    println!(
        "baton-server load, {label}: {clients} clients, baseline {baseline_secs} s, mixed {seconds} s"
    );
    report("baseline GET /healthz", all.health, baseline_secs as f64);
    report("append (POST stream)", all.append, seconds as f64);
    report("read (GET stream)", all.read, seconds as f64);
    println!("errors: {}", all.errors);
}

/// Start a server on `backends` with its own data directory.
async fn replica(
    dir: &std::path::Path,
    backends: baton_server::Backends,
) -> baton_server::RunningServer {
    let mut config = baton_server::ServerConfig::new(dir.to_path_buf());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.backends = backends;
    baton_server::start(config).await.expect("server starts")
}

fn main() {
    let seconds = arg("--seconds", 30).max(1);
    let clients = arg("--clients", 64).max(1) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = replica(&dir.path().join("server"), Default::default()).await;
        let bases = vec![format!("http://{}", server.addr)];
        measure(
            "embedded",
            bases,
            server.local_token.clone(),
            seconds,
            clients,
        )
        .await;
        server.abort();

        let Some(team) = baton_testkit::team::team_services() else {
            return;
        };
        team.set_aws_env();
        let backends = baton_server::Backends {
            database: Some(team.database()),
            blobs: Some(team.bucket()),
        };
        let one = replica(&dir.path().join("one"), backends.clone()).await;
        let two = replica(&dir.path().join("two"), backends.clone()).await;
        let user = baton_server::add_user_to(&backends, &dir.path().join("one"), "bench")
            .await
            .expect("bench account");
        let bases = vec![
            format!("http://{}", one.addr),
            format!("http://{}", two.addr),
        ];
        measure(
            "PostgreSQL + S3, two replicas",
            bases,
            user.token,
            seconds,
            clients,
        )
        .await;
        one.abort();
        two.abort();
    });
}
