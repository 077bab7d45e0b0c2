//! The team server's operations, against a real PostgreSQL and S3-compatible
//! store (`baton_testkit::team`): clear start-up errors, `/readyz`, and
//! outages. While the database is stopped or the store cut off, requests
//! get 503 with `Retry-After` (never a 500); once it is back the same
//! server serves again, and pushes retried through the outage leave the
//! stream byte-identical to the client's, nothing lost or duplicated. The
//! web UI's routes (facets, stats, share links) work on it too.

#![allow(clippy::disallowed_methods)] // tests build their own scratch files

mod common;

use baton_protocol::{HEADER_OFFSET, HEADER_PREFIX_SHA256, sha256_hex};
use baton_server::Backends;
use baton_server::hash::RunningSha256;
use baton_testkit::team::{TeamServices, free_port, team_services};
use std::time::{Duration, Instant};

/// Held by each test: outages affect every test using the services.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn backends(team: &TeamServices) -> Backends {
    team.set_aws_env();
    Backends {
        database: Some(team.database()),
        blobs: Some(team.bucket()),
    }
}

async fn open_error(backends: Backends) -> String {
    let dir = tempfile::tempdir().unwrap();
    match baton_server::open_backends(&backends, dir.path()).await {
        Ok(_) => panic!("{backends:?} opened"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_errors_say_what_to_fix() {
    let _turn = TURN.lock().await;
    let Some(team) = team_services() else { return };
    let good = backends(team);
    let nowhere = format!("postgres://baton:secret@127.0.0.1:{}/baton", free_port());
    let e = open_error(Backends {
        database: Some(nowhere),
        ..good.clone()
    })
    .await;
    assert!(e.contains("cannot reach the database"), "{e}");
    assert!(!e.contains("secret"), "the password is not shown: {e}");
    let missing_db = good.database.clone().unwrap() + "_missing";
    let e = open_error(Backends {
        database: Some(missing_db),
        ..good.clone()
    })
    .await;
    assert!(e.contains("the database does not exist"), "{e}");
    let e = open_error(Backends {
        database: Some("mysql://x/y".into()),
        ..good.clone()
    })
    .await;
    assert!(e.contains("is not a postgres:// URL"), "{e}");
    let e = open_error(Backends {
        blobs: Some("s3://no-such-bucket-here".into()),
        ..good.clone()
    })
    .await;
    assert!(
        e.contains("bucket `no-such-bucket-here` does not exist"),
        "{e}"
    );
    let e = open_error(Backends {
        blobs: Some("gs://x".into()),
        ..good
    })
    .await;
    assert!(e.contains("s3://BUCKET"), "{e}");
}

/// An in-process replica on `backends` and an account's token.
struct Replica {
    base: String,
    token: String,
    http: reqwest::Client,
    _server: baton_server::RunningServer,
    _dir: tempfile::TempDir,
}

async fn replica(backends: &Backends) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = baton_server::ServerConfig::new(dir.path().join("server"));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.backends = backends.clone();
    let server = baton_server::start(cfg).await.unwrap();
    let user = baton_server::add_user_to(backends, &dir.path().join("server"), "alice")
        .await
        .unwrap();
    Replica {
        base: format!("http://{}", server.addr),
        token: user.token,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        _server: server,
        _dir: dir,
    }
}

/// What a client saw while pushing through an outage.
#[derive(Debug, Default)]
struct Seen {
    unavailable: usize,
    retry_after: bool,
}

impl Replica {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Push `data[at..]` as one append, retrying while the server answers
    /// 503 (any other failure fails the test).
    async fn push_retrying(&self, data: &[u8], at: usize, seen: &mut Seen) {
        let mut prefix = RunningSha256::new();
        prefix.update(&data[..at]);
        let until = Instant::now() + Duration::from_secs(90);
        loop {
            let r = self
                .http
                .post(self.url("/sessions/s/streams/main"))
                .bearer_auth(&self.token)
                .header(HEADER_OFFSET, at.to_string())
                .header(HEADER_PREFIX_SHA256, prefix.hex())
                .body(data[at..].to_vec())
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 200 => {
                    let v: serde_json::Value = r.json().await.unwrap();
                    assert_eq!(v["sha256"], sha256_hex(data));
                    return;
                }
                Ok(r) if r.status() == 503 => {
                    seen.unavailable += 1;
                    seen.retry_after |= r.headers().contains_key("retry-after");
                }
                Ok(r) => panic!("push at {at}: {} {}", r.status(), r.text().await.unwrap()),
                Err(e) => panic!("push at {at}: {e}"),
            }
            assert!(Instant::now() < until, "the server did not recover");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn ready(&self) -> u16 {
        let r = self.http.get(format!("{}/readyz", self.base)).send().await;
        r.unwrap().status().as_u16()
    }

    async fn pulled(&self) -> Vec<u8> {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self
                .http
                .get(self.url("/sessions/s/streams/main"))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                return r.bytes().await.unwrap().to_vec();
            }
            assert_eq!(r.status(), 503);
            assert!(Instant::now() < until, "the server did not recover");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Push `pieces` appends of `size` bytes; `outage` runs (on a thread) once
/// a fifth of them went through. Returns what the client saw; the stored
/// stream must equal what was pushed.
async fn push_through_outage(
    r: &Replica,
    pieces: usize,
    size: usize,
    outage: impl FnOnce() + Send + 'static,
) -> Seen {
    let meta = common::codex_meta();
    let put = r
        .http
        .put(r.url("/sessions/s"))
        .bearer_auth(&r.token)
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let mut data = Vec::new();
    let mut seen = Seen::default();
    let mut outage = Some(outage);
    let mut during = None;
    for i in 0..pieces {
        if i == pieces / 5
            && let Some(f) = outage.take()
        {
            during = Some(std::thread::spawn(f));
            let until = Instant::now() + Duration::from_secs(10);
            while r.ready().await != 503 {
                assert!(Instant::now() < until, "/readyz reports the outage");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let at = data.len();
        data.extend((0..size).map(|k| b'a' + ((i * 7 + k) % 26) as u8));
        data.push(b'\n');
        r.push_retrying(&data, at, &mut seen).await;
    }
    during.unwrap().join().unwrap();
    assert_eq!(r.ready().await, 200);
    let stored = r.pulled().await;
    assert_eq!(stored.len(), data.len(), "no byte lost or duplicated");
    assert_eq!(sha256_hex(&stored), sha256_hex(&data));
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_gives_503_and_pushes_succeed_when_it_is_back() {
    let _turn = TURN.lock().await;
    let Some(t) = team_services() else {
        return;
    };
    let r = replica(&backends(t)).await;
    assert_eq!(r.ready().await, 200);

    let seen = push_through_outage(&r, 60, 20_000, move || {
        t.stop_postgres();
        std::thread::sleep(Duration::from_secs(3));
        t.start_postgres();
    })
    .await;
    assert!(seen.unavailable > 0, "{seen:?}");
    assert!(seen.retry_after, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_store_outage_gives_503_and_pushes_succeed_when_it_is_back() {
    let _turn = TURN.lock().await;
    let Some(t) = team_services() else {
        return;
    };
    let r = replica(&backends(t)).await;

    // Appends larger than the inline limit: every one is a blob.
    let seen = push_through_outage(&r, 25, 300_000, move || {
        t.cut_object_store();
        std::thread::sleep(Duration::from_secs(3));
        t.restore_object_store();
    })
    .await;
    assert!(seen.unavailable > 0, "{seen:?}");
    assert!(seen.retry_after, "{seen:?}");
}

/// The web UI's routes on a team replica: facets, stats, and a share link
/// that opens the session without a token until it is revoked.
#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_routes_work_on_the_team_backend() {
    let Some(team) = team_services() else {
        return;
    };
    let _turn = TURN.lock().await;
    let r = replica(&backends(team)).await;
    let put = r
        .http
        .put(r.url("/sessions/s"))
        .bearer_auth(&r.token)
        .json(&serde_json::json!({"agent": "codex", "cwd": "/repo", "title": "web ui"}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let get = |path: &str, auth: bool| {
        let mut req = r.http.get(r.url(path));
        if auth {
            req = req.bearer_auth(&r.token);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (
                status,
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };

    let (status, facets) = get("/facets?cwd=/repo", true).await;
    assert_eq!(status, 200, "{facets}");
    assert_eq!(facets["total"], 1, "{facets}");
    assert_eq!(facets["agents"][0]["value"], "codex", "{facets}");
    assert_eq!(facets["projects"][0]["value"], "/repo", "{facets}");
    let (status, stats) = get("/stats", true).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["per_agent"][0]["key"], "codex", "{stats}");
    assert_eq!(stats["per_agent"][0]["sessions"], 1, "{stats}");

    let created = r
        .http
        .post(r.url("/sessions/s/shares"))
        .bearer_auth(&r.token)
        .json(&serde_json::json!({"expires_in_hours": 24}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let share: serde_json::Value = created.json().await.unwrap();
    let token = share["token"].as_str().unwrap().to_string();
    let (status, listed) = get("/sessions/s/shares", true).await;
    assert_eq!((status, &listed["shares"][0]["id"]), (200, &share["id"]));
    let shared = format!("/shared/{token}/messages");
    let (status, page) = get(&shared, false).await;
    assert_eq!((status, page["session"]["id"].as_str()), (200, Some("s")));

    let revoke = format!("/sessions/s/shares/{}", share["id"].as_str().unwrap());
    let gone = r
        .http
        .delete(r.url(&revoke))
        .bearer_auth(&r.token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert_eq!(get(&shared, false).await.0, 404);
}
