//! The sync client engine against an in-process `baton serve`: idempotent
//! retried pushes, resuming an interrupted push, end-to-end encryption and
//! divergence, without the real agents.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::Agent;
use baton_protocol::{EMPTY_SHA256, SessionInfo, SessionMeta, sha256_hex};
use baton_sync::crypto::{CryptoError, Keyring, new_salt};
use baton_sync::engine::{CHUNK_SIZE, Syncer};
use baton_sync::error::ClientError;
use baton_sync::http::{AppendOutcome, Client};
use baton_sync::push::{LocalSession, PushStatus};
use baton_sync::state::SyncState;
use std::path::{Path, PathBuf};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    server: baton_server::RunningServer,
    client: Client,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    let data = root.join("server");
    std::fs::create_dir_all(&data).expect("server dir");
    let mut config = baton_server::ServerConfig::new(data.clone());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    let server = baton_server::start(config).await.expect("server starts");
    let user = baton_server::add_user(&data, "alice")
        .await
        .expect("add user");
    let client = Client::new(&format!("http://{}", server.addr), &user.token).expect("client");
    Fixture {
        _dir: dir,
        root,
        server,
        client,
    }
}

fn meta(encrypted: bool) -> SessionMeta {
    SessionMeta {
        agent: Agent::Claude,
        cwd: Some("/work/project".into()),
        title: Some("secret title".into()),
        first_prompt: None,
        started_at: None,
        updated_at: None,
        forked_from: None,
        encrypted,
        archived: false,
    }
}

/// JSONL lines that look like a transcript, `n` of them.
fn lines(tag: &str, from: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in from..from + n {
        out.extend_from_slice(
            format!("{{\"type\":\"user\",\"cwd\":\"/work/project\",\"text\":\"{tag} line {i} TOPSECRET\"}}\n")
                .as_bytes(),
        );
    }
    out
}

fn session(id: &str, path: &Path, encrypted: bool) -> LocalSession {
    LocalSession {
        id: id.into(),
        meta: meta(encrypted),
        streams: vec![("main".into(), path.to_path_buf())],
    }
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(bytes).expect("write");
}

async fn server_main(client: &Client, id: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    client
        .read_stream(id, "main", baton_sync::http::Prefix::start(), &mut bytes)
        .await
        .expect("read stream");
    bytes
}

async fn push(syncer: &mut Syncer<'_>, s: &LocalSession) -> baton_sync::push::PushReport {
    syncer
        .push_session(s, &mut |_| {}, &mut |_| {})
        .await
        .expect("push")
}

async fn pull_into(
    syncer: &mut Syncer<'_>,
    info: &SessionInfo,
    dir: &Path,
) -> Result<baton_sync::pull::PullReport, ClientError> {
    let dir = dir.to_path_buf();
    let place =
        move |info: &SessionInfo, stream: &str, _: &[u8]| dir.join(format!("{}-{stream}", info.id));
    syncer.pull_session(info, &[], &place, &mut |_| {}).await
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_push_is_idempotent() {
    let fx = start().await;
    let path = fx.root.join("s1.jsonl");
    append(&path, &lines("a", 0, 20));
    let s = session("s1", &path, false);
    let mut syncer = Syncer::new(&fx.client, None, SyncState::new(fx.client.url()));

    let first = push(&mut syncer, &s).await;
    assert_eq!(first.status, PushStatus::Pushed);
    let again = push(&mut syncer, &s).await;
    assert_eq!(again.status, PushStatus::UpToDate);
    assert_eq!(again.bytes_sent, 0);

    // The acknowledgement was lost: a client with no memory pushes again.
    let mut amnesiac = Syncer::new(&fx.client, None, SyncState::new(fx.client.url()));
    let retry = push(&mut amnesiac, &s).await;
    assert_eq!(retry.status, PushStatus::UpToDate);
    assert_eq!(retry.bytes_sent, 0);
    let local = std::fs::read(&path).unwrap();
    assert_eq!(server_main(&fx.client, "s1").await, local);

    // The same append sent twice on the wire is recognised as a retry.
    let extra = lines("a", 20, 1);
    let sha = sha256_hex(&local);
    for _ in 0..2 {
        let out = fx
            .client
            .append("s1", "main", local.len() as u64, &sha, &extra, true)
            .await
            .expect("append");
        let AppendOutcome::Appended(r) = out else {
            panic!("retry refused: {out:?}")
        };
        assert_eq!(r.len, (local.len() + extra.len()) as u64);
    }
    // And a push whose offset is ahead of the server is told where it stands.
    let ahead = fx
        .client
        .append("s1", "main", 10_000_000, EMPTY_SHA256, b"x", false)
        .await
        .expect("append");
    assert_eq!(
        ahead,
        AppendOutcome::OffsetAhead {
            len: (local.len() + extra.len()) as u64
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_push_resumes_from_the_servers_length() {
    let fx = start().await;
    let path = fx.root.join("big.jsonl");
    let mut data = Vec::new();
    let mut i = 0;
    while data.len() < 2 * CHUNK_SIZE + 12_345 {
        data.extend(lines("big", i, 1000));
        i += 1000;
    }
    std::fs::write(&path, &data).unwrap();
    let s = session("big", &path, false);

    // Machine crashed after the first chunk was stored: only the server knows.
    fx.client.put_session("big", &meta(false)).await.unwrap();
    let out = fx
        .client
        .append("big", "main", 0, EMPTY_SHA256, &data[..CHUNK_SIZE], true)
        .await
        .unwrap();
    assert!(matches!(out, AppendOutcome::Appended(_)));

    let mut syncer = Syncer::new(&fx.client, None, SyncState::new(fx.client.url()));
    let report = push(&mut syncer, &s).await;
    assert_eq!(report.status, PushStatus::Pushed);
    assert_eq!(report.bytes_sent, (data.len() - CHUNK_SIZE) as u64);
    assert_eq!(server_main(&fx.client, "big").await, data);
    let cps = fx.client.checkpoints("big", "main").await.unwrap();
    assert!(
        cps.checkpoints.len() >= 4,
        "sent in pieces: {:?}",
        cps.checkpoints
    );

    // The state file remembers the acknowledged position: appending more
    // sends only the new bytes, without downloading anything.
    let more = lines("big", i, 10);
    append(&path, &more);
    let report = push(&mut syncer, &s).await;
    assert_eq!(report.bytes_sent, more.len() as u64);
    let tracked = syncer.state.sessions["big"].streams["main"]
        .source
        .clone()
        .unwrap();
    assert_eq!(tracked.plain_len, (data.len() + more.len()) as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_round_trip_keeps_the_server_blind() {
    let fx = start().await;
    let path = fx.root.join("enc.jsonl");
    append(&path, &lines("enc", 0, 30));
    let s = session("enc", &path, true);
    let ring_a = Keyring::from_passphrase("open sesame".into(), new_salt());
    let mut a = Syncer::new(&fx.client, Some(&ring_a), SyncState::new(fx.client.url()));
    assert_eq!(push(&mut a, &s).await.status, PushStatus::Pushed);
    append(&path, &lines("enc", 30, 5));
    push(&mut a, &s).await;

    let info = fx.client.session("enc").await.unwrap().expect("on server");
    assert!(info.encrypted);
    assert_eq!(info.cwd, None, "metadata that reveals content is not sent");
    assert_eq!(info.title, None);
    let raw = server_main(&fx.client, "enc").await;
    let plain = std::fs::read(&path).unwrap();
    assert!(!raw.windows(9).any(|w| w == b"TOPSECRET"));
    assert!(!raw.windows(13).any(|w| w == b"/work/project"));

    // Machine B: same passphrase, its own salt, empty state.
    let ring_b = Keyring::from_passphrase("open sesame".into(), new_salt());
    let mut b = Syncer::new(&fx.client, Some(&ring_b), SyncState::new(fx.client.url()));
    let lib = fx.root.join("lib-b");
    let report = pull_into(&mut b, &info, &lib).await.expect("pull");
    assert_eq!(report.files.len(), 1);
    assert_eq!(std::fs::read(&report.files[0]).unwrap(), plain);

    // A appends; B pulls only the new frame and appends it.
    let tail = lines("enc", 35, 3);
    append(&path, &tail);
    push(&mut a, &s).await;
    let info = fx.client.session("enc").await.unwrap().unwrap();
    let report = pull_into(&mut b, &info, &lib).await.expect("pull");
    assert_eq!(report.bytes_received, tail.len() as u64);
    assert_eq!(
        std::fs::read(&report.files[0]).unwrap(),
        std::fs::read(&path).unwrap()
    );

    // A retried push after losing its state sends nothing twice.
    let mut amnesiac = Syncer::new(&fx.client, Some(&ring_a), SyncState::new(fx.client.url()));
    assert_eq!(push(&mut amnesiac, &s).await.bytes_sent, 0);

    // The wrong passphrase, or none, cannot read it.
    let wrong = Keyring::from_passphrase("guess".into(), new_salt());
    let mut c = Syncer::new(&fx.client, Some(&wrong), SyncState::new(fx.client.url()));
    let err = pull_into(&mut c, &info, &fx.root.join("lib-c"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Crypto(CryptoError::Open { .. })),
        "{err}"
    );
    let mut d = Syncer::new(&fx.client, None, SyncState::new(fx.client.url()));
    let err = pull_into(&mut d, &info, &fx.root.join("lib-d"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NeedKey(_)), "{err}");
    assert!(err.to_string().contains("BATON_PASSPHRASE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn divergence_keeps_both_continuations() {
    for encrypted in [false, true] {
        let fx = start().await;
        let ring = Keyring::from_key([9; 32]);
        let keyring = encrypted.then_some(&ring);
        let common = lines("common", 0, 10);
        let a_path = fx.root.join("a.jsonl");
        let b_path = fx.root.join("b.jsonl");
        std::fs::write(&a_path, &common).unwrap();
        let mut a = Syncer::new(&fx.client, keyring, SyncState::new(fx.client.url()));
        push(&mut a, &session("x", &a_path, encrypted)).await;

        // B got the common part (pull), then both continued differently.
        let mut b = Syncer::new(&fx.client, keyring, SyncState::new(fx.client.url()));
        let info = fx.client.session("x").await.unwrap().unwrap();
        let lib = fx.root.join("lib-b");
        pull_into(&mut b, &info, &lib).await.unwrap();
        std::fs::write(&b_path, &common).unwrap();
        append(&a_path, &lines("from-a", 10, 3));
        append(&b_path, &lines("from-b", 10, 4));

        assert_eq!(
            push(&mut a, &session("x", &a_path, encrypted)).await.status,
            PushStatus::Pushed
        );
        let report = push(&mut b, &session("x", &b_path, encrypted)).await;
        assert_eq!(report.status, PushStatus::Diverged, "encrypted={encrypted}");
        assert_eq!(report.diverged_from.as_deref(), Some("x"));
        let kept = report.remote_id.clone();
        assert_ne!(kept, "x");

        let listed = fx.client.all_sessions().await.unwrap();
        let copy = listed.iter().find(|s| s.id == kept).expect("copy listed");
        assert_eq!(copy.diverged_from.as_deref(), Some("x"));
        // Nothing lost: the original holds A's bytes, the copy B's.
        let decode = |raw: Vec<u8>| -> Vec<u8> {
            match keyring {
                None => raw,
                Some(k) => k
                    .open_frames("main", &raw, 0, 0)
                    .unwrap()
                    .into_iter()
                    .flat_map(|f| f.plain)
                    .collect(),
            }
        };
        assert_eq!(
            decode(server_main(&fx.client, "x").await),
            std::fs::read(&a_path).unwrap()
        );
        assert_eq!(
            decode(server_main(&fx.client, &kept).await),
            std::fs::read(&b_path).unwrap()
        );
        // B keeps pushing its continuation to the copy, not the original.
        append(&b_path, &lines("from-b", 14, 1));
        let again = push(&mut b, &session("x", &b_path, encrypted)).await;
        assert_eq!(again.status, PushStatus::Pushed);
        assert_eq!(again.remote_id, kept);
        // B's library copy of the original catches up with A's continuation.
        let info = fx.client.session("x").await.unwrap().unwrap();
        let pulled = pull_into(&mut b, &info, &lib).await.unwrap();
        assert_eq!(
            std::fs::read(&pulled.files[0]).unwrap(),
            std::fs::read(&a_path).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_never_shrinks_or_replaces_a_library_copy() {
    let fx = start().await;
    let path = fx.root.join("s.jsonl");
    append(&path, &lines("s", 0, 10));
    let mut a = Syncer::new(&fx.client, None, SyncState::new(fx.client.url()));
    push(&mut a, &session("s", &path, false)).await;
    let mut b = Syncer::new(&fx.client, None, SyncState::new(fx.client.url()));
    let lib = fx.root.join("lib-b");
    let info = fx.client.session("s").await.unwrap().unwrap();
    let copy = pull_into(&mut b, &info, &lib).await.unwrap().files[0].clone();

    // The library copy holds more than the server (the server lost bytes):
    // it is kept whole, not cut back to the server's length.
    append(&copy, &lines("s", 10, 5));
    let longer = std::fs::read(&copy).unwrap();
    let report = pull_into(&mut b, &info, &lib).await.expect("pull");
    assert!(report.files.is_empty(), "{report:?}");
    assert_eq!(std::fs::read(&copy).unwrap(), longer);

    // The server's bytes differ from the copy: a clear conflict, copy untouched.
    let mut changed = longer.clone();
    changed[20] ^= 0x01;
    std::fs::write(&copy, &changed).unwrap();
    let err = pull_into(&mut b, &info, &lib).await.unwrap_err();
    assert!(matches!(err, ClientError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("baton keeps your copy"), "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), changed);
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_refuses_unsafe_names_from_the_server() {
    let fx = start().await;
    let path = fx.root.join("ok.jsonl");
    append(&path, &lines("ok", 0, 3));
    let mut a = Syncer::new(&fx.client, None, SyncState::new(fx.client.url()));
    push(&mut a, &session("ok", &path, false)).await;
    let good = fx.client.session("ok").await.unwrap().unwrap();
    let lib = fx.root.join("deep").join("lib");
    let mut b = Syncer::new(&fx.client, None, SyncState::new(fx.client.url()));
    let mut bad_id = good.clone();
    bad_id.id = "../../escaped".into();
    let mut bad_stream = good.clone();
    bad_stream.streams[0].name = "../../escaped.jsonl".into();
    let mut bad_parent = good.clone();
    bad_parent.forked_from = Some("../x".into());
    for info in [bad_id, bad_stream, bad_parent] {
        let place = |info: &SessionInfo, stream: &str, _: &[u8]| lib.join(&info.id).join(stream);
        let err = b
            .pull_session(&info, &[], &place, &mut |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Unsafe(_)), "{err}");
    }
    assert!(!fx.root.join("escaped").exists() && !lib.exists());
}
