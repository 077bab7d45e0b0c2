//! Crash safety: kill -9 the server at random moments while baton's own sync
//! client (`baton_sync::client::Syncer`) pushes a large session in pieces, 20
//! times; after each restart the server's bytes are a prefix of the client's
//! (hash-equal), and the push resumes to completion without duplicates.

use baton_native::Agent;
use baton_sync::client::{Client, LocalSession, Syncer};
use baton_sync::protocol::{SessionMeta, sha256_hex};
use baton_sync::state::SyncState;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Larger than the inline limit, so pieces take the blob-file path.
const PIECE: usize = 160 * 1024;

/// A fresh server process on `dir`, and a client for it.
fn spawn(dir: &std::path::Path) -> (Child, Client) {
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
    let client = Client::new(&format!("http://{addr}"), &token).unwrap();
    (child, client)
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
    let data: Vec<u8> = (0..85_000u32)
        .map(|i| {
            format!(
                "{{\"type\":\"event_msg\",\"n\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat((i % 97) as usize)
            )
        })
        .collect::<String>()
        .into_bytes();
    assert!(data.len() > 7_000_000);
    let file = dir.path().join("big.jsonl");
    std::fs::write(&file, &data).unwrap();
    let session = LocalSession {
        id: "big".into(),
        meta: SessionMeta {
            agent: Agent::Codex,
            cwd: None,
            title: None,
            first_prompt: None,
            started_at: None,
            updated_at: None,
            forked_from: None,
            encrypted: false,
        },
        streams: vec![("main".into(), file)],
    };
    let server_dir = dir.path().join("server");
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
        let delay = Duration::from_micros(rand::random::<u64>() % 25_000);
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
    let body = client.read_stream("big", "main", 0).await.unwrap();
    assert_eq!(body.bytes, data);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(progressed > 0, "some pushes were committed before a kill");
    assert!(
        interrupted >= 15,
        "only {interrupted} of 20 kills hit a push in flight"
    );
}
