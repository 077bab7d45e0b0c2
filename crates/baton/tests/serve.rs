//! `baton serve`: usage errors exit 2, and crash safety: kill -9 the real
//! server at random moments while baton's own sync client
//! (`baton_sync::engine::Syncer`) pushes a large session in pieces, 20 times;
//! after each restart the server's bytes are a prefix of the client's
//! (hash-equal), and the push resumes to completion without duplicates.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use assert_cmd::Command as Cmd;
use baton_native::Agent;
use baton_protocol::{SessionMeta, sha256_hex};
use baton_sync::engine::Syncer;
use baton_sync::http::Client;
use baton_sync::push::LocalSession;
use baton_sync::state::SyncState;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Larger than the inline limit, so pieces take the blob-file path.
const PIECE: usize = 160 * 1024;

#[test]
fn zero_or_out_of_range_limits_are_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        ["--max-append-mib", "0"],
        ["--max-append-mib", "1025"],
        ["--rescan-secs", "0"],
        ["--max-inflight-mib", "0"],
        ["--max-inflight-mib", "8"],
    ] {
        let out = Cmd::cargo_bin("baton")
            .unwrap()
            .env("BATON_HOME", home.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--no-catalog"])
            .args(args)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}

#[test]
fn serve_token_prints_the_local_token_from_its_0600_file() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Cmd::cargo_bin("baton")
            .unwrap()
            .env("BATON_HOME", home.path())
            .args(["serve", "token"])
            .args(args)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let token = run(&[]).trim().to_string();
    assert_eq!(token.len(), 64, "{token}");
    assert_eq!(run(&[]).trim(), token, "the same token every time");
    let v: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    assert_eq!(v["user"], "local");
    assert_eq!(v["token"], token.as_str());
    let file = home
        .path()
        .join("server")
        .join(baton_server::LOCAL_TOKEN_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Starting the server does not print it.
    let (mut child, mut stderr) = start_serve(home.path());
    let mut printed = String::new();
    while !printed.contains("baton serve token") {
        assert!(stderr.read_line(&mut printed).unwrap() > 0, "{printed}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!printed.contains(&token), "{printed}");
}

/// A random delay below `max_us` microseconds (from the std hasher's random keys).
fn random_delay(max_us: u64) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    Duration::from_micros(RandomState::new().hash_one(0u8) % max_us)
}

/// `baton serve` on `home` on a free loopback port, and its stderr.
fn start_serve(home: &std::path::Path) -> (Child, std::io::BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("baton"))
        .env("BATON_HOME", home)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-catalog"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    (child, stderr)
}

/// A fresh `baton serve` process on `home`, and a client of its `local` account.
fn spawn(home: &std::path::Path) -> (Child, Client) {
    let (child, mut stderr) = start_serve(home);
    let mut base = None;
    let mut line = String::new();
    while base.is_none() {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "baton serve exited"
        );
        // `baton serve: listening on http://ADDR`; the token is never printed.
        base = line
            .trim()
            .strip_prefix("baton serve: listening on ")
            .map(str::to_string);
        assert!(
            !line.contains("#token=") || line.contains("#token=TOKEN"),
            "{line}"
        );
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let token =
        std::fs::read_to_string(home.join("server").join(baton_server::LOCAL_TOKEN_FILE)).unwrap();
    (child, Client::new(&base.unwrap(), token.trim()).unwrap())
}

/// The server's length and hash of the session's `main` stream.
async fn server_stream(client: &Client) -> (u64, String) {
    let info = client.session("big").await.unwrap();
    info.and_then(|i| i.streams.first().map(|s| (s.len, s.sha256.clone())))
        .unwrap_or((0, sha256_hex(b"")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_large_push_never_loses_or_duplicates_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..170_000u32)
        .map(|i| {
            format!(
                "{{\"type\":\"event_msg\",\"n\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat((i % 97) as usize)
            )
        })
        .collect::<String>()
        .into_bytes();
    assert!(data.len() > 14_000_000);
    let file = dir.path().join("big.jsonl");
    std::fs::write(&file, &data).unwrap();
    let session = LocalSession {
        id: "big".into(),
        meta: SessionMeta::of_agent(Agent::Codex),
        streams: vec![("main".into(), file)],
    };
    let server_dir = dir.path().join("baton-home");
    // The client's memory of acknowledged positions survives the kills, as
    // `sync-state.json` would.
    let mut state = SyncState::new("fault-test");
    let mut progressed = 0;
    let mut interrupted = 0;
    for round in 0..20 {
        let (mut child, client) = spawn(&server_dir);
        // The server's copy after the previous crash is an exact prefix.
        let (len, sha) = server_stream(&client).await;
        assert!(len as usize <= data.len());
        assert_eq!(
            sha,
            sha256_hex(&data[..len as usize]),
            "round {round}: prefix hash"
        );
        if len > 0 {
            progressed += 1;
        }
        // Kill at a random moment soon after the next acknowledged piece
        // (inside one of the following pieces), so every round gets further.
        let (acked, mut on_ack) = tokio::sync::mpsc::unbounded_channel();
        let delay = random_delay(8_000);
        let kill = async {
            on_ack.recv().await;
            tokio::time::sleep(delay).await;
        };
        let mut syncer = Syncer::new(&client, None, state).with_chunk_size(PIECE);
        let mut progress = |n: u64| {
            if n > 0 {
                let _ = acked.send(());
            }
        };
        let mut save = |_: &SyncState| {};
        tokio::select! {
            pushed = syncer.push_session(&session, &mut progress, &mut save) => {
                pushed.unwrap();
            }
            _ = kill => interrupted += 1,
        }
        state = syncer.state;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Final run: no kill, the push completes, and the bytes are identical.
    let (mut child, client) = spawn(&server_dir);
    let mut syncer = Syncer::new(&client, None, state).with_chunk_size(PIECE);
    syncer
        .push_session(&session, &mut |_| {}, &mut |_| {})
        .await
        .unwrap();
    let (len, sha) = server_stream(&client).await;
    assert_eq!(len as usize, data.len(), "no duplicates, nothing lost");
    assert_eq!(sha, sha256_hex(&data));
    let mut body = Vec::new();
    client
        .read_stream("big", "main", baton_sync::http::Prefix::start(), &mut body)
        .await
        .unwrap();
    assert_eq!(body, data);
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!("{interrupted} of 20 kills hit a push in flight; {progressed} rounds started past 0");
    assert!(progressed > 0, "some pushes were committed before a kill");
    assert!(
        interrupted >= 15,
        "only {interrupted} of 20 kills hit a push in flight"
    );
}
