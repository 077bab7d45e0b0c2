//! Crash safety: kill -9 the server at random moments during a large chunked
//! push, 20 times; after each restart the server's bytes are a prefix of the
//! client's (hash-equal), and the push resumes to completion without duplicates.

use baton_sync::protocol::{HEADER_OFFSET, HEADER_PREFIX_SHA256, SessionInfo, sha256_hex};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Larger than the inline limit, so pieces take the blob-file path.
const PIECE: usize = 160 * 1024;

fn spawn(dir: &std::path::Path) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton-server-testbin"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut parts = line.split_whitespace();
    let addr = parts.next().unwrap().to_string();
    let token = parts.next().unwrap().to_string();
    (child, format!("http://{addr}/api/v1"), token)
}

async fn server_stream(http: &reqwest::Client, base: &str, token: &str) -> (u64, String) {
    let info: SessionInfo = http
        .get(format!("{base}/sessions/big"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    info.streams
        .first()
        .map(|s| (s.len, s.sha256.clone()))
        .unwrap_or((0, sha256_hex(b"")))
}

/// sha256 of `data[..k * PIECE]` for every k (and of the whole), in one pass.
fn piece_hashes(data: &[u8]) -> std::collections::HashMap<usize, String> {
    let mut h = baton_server::hash::RunningSha256::new();
    let mut out = std::collections::HashMap::new();
    out.insert(0, h.hex());
    for piece in data.chunks(PIECE) {
        h.update(piece);
        out.insert(h.len() as usize, h.hex());
    }
    out
}

/// Push from the server's length to the end; stops at the first transport error.
async fn push_rest(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    data: &[u8],
    hashes: &std::collections::HashMap<usize, String>,
) -> Result<(), reqwest::Error> {
    let (mut len, _) = server_stream(http, base, token).await;
    while (len as usize) < data.len() {
        let off = len as usize;
        let end = (off + PIECE).min(data.len());
        let r = http
            .post(format!("{base}/sessions/big/streams/main"))
            .bearer_auth(token)
            .header(HEADER_OFFSET, off.to_string())
            .header(HEADER_PREFIX_SHA256, hashes[&off].as_str())
            .body(data[off..end].to_vec())
            .send()
            .await?;
        assert_eq!(r.status(), 200, "push at {off}");
        let v: serde_json::Value = r.json().await?;
        len = v["len"].as_u64().unwrap();
        assert_eq!(len as usize, end);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_large_push_never_loses_or_duplicates_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..60_000u32)
        .map(|i| {
            format!(
                "{{\"type\":\"event_msg\",\"n\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat((i % 97) as usize)
            )
        })
        .collect::<String>()
        .into_bytes();
    assert!(data.len() > 5_000_000);
    let hashes = piece_hashes(&data);
    let http = reqwest::Client::new();
    let mut progressed = 0;
    let mut interrupted = 0;
    for round in 0..20 {
        let (mut child, base, token) = spawn(dir.path());
        let r = http
            .put(format!("{base}/sessions/big"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"agent":"codex"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // The server's copy after the previous crash is an exact prefix.
        let (len, sha) = server_stream(&http, &base, &token).await;
        assert!(len as usize <= data.len());
        assert_eq!(
            Some(&sha),
            hashes.get(&(len as usize)),
            "round {round}: prefix hash"
        );
        if len > 0 {
            progressed += 1;
        }
        // Kill at a random moment within the next few pieces.
        let delay = Duration::from_micros(rand::random::<u64>() % 25_000);
        let push = push_rest(&http, &base, &token, &data, &hashes);
        tokio::select! {
            _ = push => {}
            _ = tokio::time::sleep(delay) => interrupted += 1,
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Final run: no kill, the push completes, and the bytes are identical.
    let (mut child, base, token) = spawn(dir.path());
    push_rest(&http, &base, &token, &data, &hashes)
        .await
        .unwrap();
    let (len, sha) = server_stream(&http, &base, &token).await;
    assert_eq!(len as usize, data.len(), "no duplicates, nothing lost");
    assert_eq!(sha, hashes[&data.len()]);
    let body = http
        .get(format!("{base}/sessions/big/streams/main"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], &data[..]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(progressed > 0, "some pushes were committed before a kill");
    assert!(
        interrupted >= 15,
        "only {interrupted} of 20 kills hit a push in flight"
    );
}
