//! Durability of the embedded backend: blob files of rejected pushes, the
//! start-up sweep, corrupt rows, and the indexer's bookkeeping.

mod common;

use baton_protocol::{SessionMeta, sha256_hex};
use baton_server::embedded::Embedded;
use baton_server::index::Indexer;
use baton_server::storage::Storage;
use common::{codex_meta, start};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Blob files under `blobs/` (temp files excluded).
fn blob_files(blobs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(blobs).unwrap().flatten() {
        if shard.file_name() == "tmp" || !shard.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

fn pattern(n: u32) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn rejected_large_pushes_leave_no_blob_files() {
    let s = start().await;
    let blobs = s.dir.path().join("server/blobs");
    s.put(&s.a, "big", codex_meta()).await;
    let data = pattern(900_000);
    let other: Vec<u8> = data.iter().map(|b| b ^ 0xff).collect();
    let big = &data[..300_000];
    // Unknown session, another account's session, offset beyond the end.
    assert_eq!(
        s.push(&s.a, "nope", "main", &data, 0, big).await.status(),
        404
    );
    assert_eq!(
        s.push(&s.b, "big", "main", &data, 0, big).await.status(),
        404
    );
    let r = s
        .push(&s.a, "big", "main", &data, 10, &data[10..300_000])
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(blob_files(&blobs), Vec::<PathBuf>::new());

    assert_eq!(
        s.push(&s.a, "big", "main", &data, 0, big).await.status(),
        200
    );
    let stored = blob_files(&blobs);
    assert_eq!(stored.len(), 1);
    // A wrong prefix hash, and bytes that contradict the stored ones.
    let r = s
        .push(&s.a, "big", "main", &other, 300_000, &other[300_000..])
        .await;
    assert_eq!(r.status(), 409);
    let r = s
        .push(&s.a, "big", "main", &other, 0, &other[..400_000])
        .await;
    assert_eq!(r.status(), 409);
    // A retry of stored bytes only needs no blob at all.
    let r = s
        .push(&s.a, "big", "main", &data, 0, &data[..200_000])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(blob_files(&blobs), stored);

    let got = s.pull(&s.a, "big", "main", 0).await.bytes().await.unwrap();
    assert_eq!(&got[..], big);
}

#[tokio::test]
async fn startup_sweep_removes_unreferenced_blobs_only() {
    let s = start().await;
    let data_dir = s.dir.path().join("server");
    let blobs = data_dir.join("blobs");
    s.put(&s.a, "big", codex_meta()).await;
    let data = pattern(300_000);
    assert_eq!(
        s.push(&s.a, "big", "main", &data, 0, &data).await.status(),
        200
    );
    let referenced = blob_files(&blobs);
    assert_eq!(referenced.len(), 1);
    s.server.abort();

    let old = SystemTime::now() - Duration::from_secs(3600);
    let set_mtime = |p: &Path, t: SystemTime| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    set_mtime(&referenced[0], old);
    std::fs::create_dir_all(blobs.join("ab")).unwrap();
    let orphan = blobs.join("ab").join("c".repeat(62));
    std::fs::write(&orphan, b"left by a crash").unwrap();
    set_mtime(&orphan, old);
    let temp = blobs.join("tmp").join("leftover.0000");
    std::fs::write(&temp, b"half written").unwrap();
    set_mtime(&temp, old);
    // Written after start-up (by an append in flight): kept.
    let fresh = blobs.join("ab").join("d".repeat(62));
    std::fs::write(&fresh, b"in flight").unwrap();
    set_mtime(&fresh, SystemTime::now() + Duration::from_secs(3600));

    let mut cfg = baton_server::ServerConfig::new(data_dir);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let server = baton_server::start(cfg).await.unwrap();
    for _ in 0..100 {
        if !orphan.exists() && !temp.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!orphan.exists(), "the unreferenced blob was removed");
    assert!(!temp.exists(), "the leftover temp file was removed");
    assert!(fresh.exists(), "a blob newer than start-up is kept");
    assert!(referenced[0].exists(), "a referenced blob is kept");
    let got = s
        .http
        .get(format!(
            "http://{}/api/v1/sessions/big/streams/main",
            server.addr
        ))
        .bearer_auth(&s.a)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &data[..]);
}

#[tokio::test]
async fn a_corrupt_chunk_row_fails_its_request_and_the_writer_keeps_working() {
    let s = start().await;
    s.put(&s.a, "c", codex_meta()).await;
    let body = b"hello world";
    assert_eq!(s.push(&s.a, "c", "main", body, 0, body).await.status(), 200);
    let db = rusqlite::Connection::open(s.dir.path().join("server/baton.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch("UPDATE chunks SET len = 1000; UPDATE streams SET len = 1000;")
        .unwrap();
    drop(db);
    let claimed = vec![b'h'; 1000];
    // Comparing overlapping bytes, and hashing a prefix inside the chunk.
    for offset in [0usize, 20] {
        let r = s
            .push(
                &s.a,
                "c",
                "main",
                &claimed,
                offset,
                &claimed[offset..offset + 20],
            )
            .await;
        assert_eq!(r.status(), 500, "offset {offset}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "internal");
    }
    // Other requests still go through the writer.
    s.put(&s.a, "d", codex_meta()).await;
    let r = s.push(&s.a, "d", "main", body, 0, body).await;
    assert_eq!(r.status(), 200);
    let (status, v) = s.get_json(&s.a, "/sessions/d").await;
    assert_eq!(status, 200);
    assert_eq!(v["streams"][0]["sha256"], sha256_hex(body));
}

fn meta() -> SessionMeta {
    serde_json::from_value(codex_meta()).unwrap()
}

async fn open(dir: &Path) -> (Arc<Embedded>, i64) {
    let st = Arc::new(Embedded::open(dir).unwrap());
    let acct = st.ensure_user_token("u", &"t".repeat(64)).await.unwrap();
    (st, acct.id)
}

async fn append_all(st: &Embedded, user: i64, id: &str, bytes: &[u8]) {
    st.put_session(user, id, meta()).await.unwrap();
    let empty = baton_server::hash::RunningSha256::new().digest();
    st.append(
        user,
        id,
        "main",
        0,
        empty,
        bytes::Bytes::copy_from_slice(bytes),
    )
    .await
    .unwrap();
}

fn rollout() -> Vec<u8> {
    std::fs::read(baton_testkit::fixtures_dir().join(
        "codex/sessions/2026/11/21/rollout-2026-11-21T19-20-28-01a1ff8d-8a8a-7740-8c02-49607e66ddfa.jsonl",
    ))
    .unwrap()
}

#[tokio::test]
async fn the_indexer_backs_off_from_unreadable_streams() {
    let dir = tempfile::tempdir().unwrap();
    let (st, user) = open(dir.path()).await;
    append_all(&st, user, "bad", &pattern(300_000)).await;
    for f in blob_files(&dir.path().join("blobs")) {
        std::fs::remove_file(f).unwrap();
    }
    append_all(&st, user, "good", &rollout()).await;
    let mut indexer = Indexer::new(st.clone());
    assert_eq!(indexer.index_pending().await, 1, "only `good` was indexed");
    // `bad` is still pending but waits for its retry: nothing to do, so `run` sleeps.
    assert_eq!(indexer.index_pending().await, 0);
}

#[tokio::test]
async fn indexing_reports_new_metadata_and_reindexing_does_not_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let (st, user) = open(dir.path()).await;
    append_all(&st, user, "s", &rollout()).await;
    let before = st.session(user, "s").await.unwrap();
    assert_eq!(before.first_prompt, None);
    let mut indexer = Indexer::new(st.clone());
    assert_eq!(indexer.index_pending().await, 1);
    let after = st.session(user, "s").await.unwrap();
    assert_eq!(
        after.first_prompt.as_deref(),
        Some("pub first prompt alpha")
    );
    assert!(after.updated_seq > before.updated_seq);
    let changes = st.changes(user, before.updated_seq, 10).await.unwrap();
    assert_eq!(changes.sessions.len(), 1);
    assert_eq!(changes.sessions[0].first_prompt, after.first_prompt);

    let db = rusqlite::Connection::open(dir.path().join("baton.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let rows = |db: &rusqlite::Connection| -> i64 {
        db.query_row("SELECT count(*) FROM msg_fts", [], |r| r.get(0))
            .unwrap()
    };
    let indexed = rows(&db);
    assert!(indexed > 0);
    // An unreadable saved reader state makes the indexer start over from 0.
    db.execute_batch("UPDATE streams SET reader_state = 'not json', indexed_len = 1")
        .unwrap();
    assert_eq!(indexer.index_pending().await, 1);
    assert_eq!(rows(&db), indexed);
    // Nothing changed in the metadata: no new change to report.
    let again = st.session(user, "s").await.unwrap();
    assert_eq!(again.updated_seq, after.updated_seq);
}

/// A codex rollout of `n` one-line prompts, each `width` bytes of text.
fn codex_prompts(n: usize, width: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..n {
        let text = format!("prompt {i:06} {}", "w".repeat(width));
        out.push_str(&format!(
            "{{\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"type\":\"response_item\",\"payload\":{{\"type\":\"message\",\"role\":\"user\",\"content\":[{{\"type\":\"input_text\",\"text\":\"{text}\"}}]}}}}\n"
        ));
    }
    out.into_bytes()
}

#[tokio::test]
async fn a_late_page_of_messages_reads_about_one_checkpoint_interval() {
    use baton_server::index::{CHECKPOINT_EVERY, page_messages};
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Embedded::open(dir.path()).unwrap());
    let user = storage
        .ensure_user_token("u", &"t".repeat(40))
        .await
        .unwrap()
        .id;
    let meta: SessionMeta = serde_json::from_value(codex_meta()).unwrap();
    storage.put_session(user, "long", meta).await.unwrap();
    let n = 5_000;
    let data = codex_prompts(n, 200);
    // Pushed in pieces, so indexing passes start mid-stream.
    let mut at = 0;
    for piece in data.chunks(300_001) {
        let mut prefix = baton_server::hash::RunningSha256::new();
        prefix.update(&data[..at]);
        let prefix = prefix.digest();
        storage
            .append(
                user,
                "long",
                "main",
                at as u64,
                prefix,
                bytes::Bytes::copy_from_slice(piece),
            )
            .await
            .unwrap();
        at += piece.len();
        Indexer::new(storage.clone()).index_pending().await;
    }
    let agent = baton_native::Agent::Codex;
    let first = page_messages(storage.as_ref(), user, "long", agent, 0, 50)
        .await
        .unwrap();
    let late = page_messages(storage.as_ref(), user, "long", agent, 4_900, 50)
        .await
        .unwrap();
    assert_eq!(late.messages.len(), 50);
    assert!(late.more);
    assert!(
        late.messages[0].text.starts_with("prompt 004900 "),
        "{}",
        late.messages[0].text
    );
    assert!(late.messages[49].text.starts_with("prompt 004949 "));
    assert_eq!(first.messages[0].text.split(' ').nth(1), Some("000000"));
    // Page 98 costs about what page 0 costs, not the whole stream.
    let per_message = (data.len() / n) as u64;
    let bound = (CHECKPOINT_EVERY + 50) * per_message + 128 * 1024;
    assert!(
        late.bytes_read <= bound,
        "read {} bytes for a late page (bound {bound}, stream {})",
        late.bytes_read,
        data.len()
    );
    // The last page ends the list.
    let last = page_messages(storage.as_ref(), user, "long", agent, 4_990, 50)
        .await
        .unwrap();
    assert_eq!(last.messages.len(), 10);
    assert!(!last.more);
}
