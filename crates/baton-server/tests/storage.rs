//! The storage contract, as a suite over `Arc<dyn Storage>` that any
//! backend runs ([`storage_contract`], [`ui_query_contract`],
//! [`late_pages_read_one_interval`], [`replicas_share_one_stream`]), run here
//! against the embedded backend and against the team backend (PostgreSQL +
//! an S3-compatible bucket, started by `baton_testkit::team`); then the
//! embedded backend's own
//! durability: blob files of rejected pushes, the start-up sweep, corrupt
//! rows, and the indexer's bookkeeping.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

mod common;

use baton_native::Agent;
use baton_protocol::{
    FacetCount, ForkRequest, LISTING_TEXT_MAX_CHARS, SessionList, SessionMeta, StatRow, sha256_hex,
};
use baton_server::hash::RunningSha256;
use baton_server::index::{Indexer, page_messages};
use baton_server::storage::{MirrorFile, SessionFilter, SessionsQuery, Storage, StorageError};
use common::{codex_meta, start};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Blob files under `blobs/` (temp files excluded; none before the first).
fn blob_files(blobs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let shards = match std::fs::read_dir(blobs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        shards => shards.unwrap(),
    };
    for shard in shards.flatten() {
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
    // Half-written temp files: beside the blob, and in an earlier version's `tmp/`.
    let temp = blobs.join("ab").join(".cdef.baton-tmp-1-2");
    std::fs::write(&temp, b"half written").unwrap();
    set_mtime(&temp, old);
    std::fs::create_dir_all(blobs.join("tmp")).unwrap();
    let old_temp = blobs.join("tmp").join("leftover.0000");
    std::fs::write(&old_temp, b"half written").unwrap();
    set_mtime(&old_temp, old);
    // Written after start-up (by an append in flight): kept.
    let fresh = blobs.join("ab").join("d".repeat(62));
    std::fs::write(&fresh, b"in flight").unwrap();
    set_mtime(&fresh, SystemTime::now() + Duration::from_secs(3600));

    let mut cfg = baton_server::ServerConfig::new(data_dir);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let server = baton_server::start(cfg).await.unwrap();
    for _ in 0..100 {
        if !orphan.exists() && !temp.exists() && !old_temp.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!orphan.exists(), "the unreferenced blob was removed");
    assert!(!temp.exists(), "the leftover temp file was removed");
    assert!(
        !old_temp.exists(),
        "the earlier version's temp file was removed"
    );
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

/// The embedded backend on `dir`.
fn embedded(dir: &Path) -> Arc<dyn Storage> {
    baton_server::open_storage(dir).unwrap()
}

async fn open(dir: &Path) -> (Arc<dyn Storage>, i64) {
    let st = embedded(dir);
    let acct = st.ensure_user_token("u", &"t".repeat(64)).await.unwrap();
    (st, acct.id)
}

async fn append_all(st: &Arc<dyn Storage>, user: i64, id: &str, bytes: &[u8]) {
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
    let dir = tempfile::tempdir().unwrap();
    late_pages_read_one_interval(embedded(dir.path())).await;
}

/// Part of the contract: saved reader positions make a late page of
/// messages cost about one checkpoint interval.
async fn late_pages_read_one_interval(storage: Arc<dyn Storage>) {
    use baton_server::index::{CHECKPOINT_EVERY, page_messages};
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

#[tokio::test]
async fn the_embedded_backend_keeps_the_storage_contract() {
    let dir = tempfile::tempdir().unwrap();
    storage_contract(embedded(dir.path())).await;
}

/// Where a team backend keeps its data: a fresh database and bucket.
fn team_backends(team: &baton_testkit::team::TeamServices) -> baton_server::Backends {
    team.set_aws_env();
    baton_server::Backends {
        database: Some(team.database()),
        blobs: Some(team.bucket()),
    }
}

/// A team backend (one replica) on `backends`.
async fn team_replica(backends: &baton_server::Backends) -> Arc<dyn Storage> {
    let dir = tempfile::tempdir().unwrap();
    baton_server::open_backends(backends, dir.path())
        .await
        .unwrap()
}

/// One replica of a fresh team backend; `None` where the team services
/// cannot start (outside CI; under `CI=true` the testkit fails instead).
async fn team_storage() -> Option<Arc<dyn Storage>> {
    let team = baton_testkit::team::team_services()?;
    Some(team_replica(&team_backends(team)).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_team_backend_keeps_the_storage_contract() {
    let Some(storage) = team_storage().await else {
        return;
    };
    storage_contract(storage).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_team_backend_keeps_the_ui_query_contract() {
    let Some(storage) = team_storage().await else {
        return;
    };
    ui_query_contract(storage).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_page_on_the_team_backend_reads_about_one_checkpoint_interval() {
    let Some(storage) = team_storage().await else {
        return;
    };
    late_pages_read_one_interval(storage).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn team_replicas_share_one_stream() {
    let Some(team) = baton_testkit::team::team_services() else {
        return;
    };
    let backends = team_backends(team);
    // Both start at once: the migrations take turns.
    let (one, two) = tokio::join!(team_replica(&backends), team_replica(&backends));
    replicas_share_one_stream(one, two).await;
}

#[tokio::test]
async fn embedded_handles_share_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let st = embedded(dir.path());
    replicas_share_one_stream(st.clone(), st).await;
}

/// Part of the contract: two replicas of one backend (two handles on the
/// same database and blobs) behave as one server. Appends racing on one
/// stream never corrupt or duplicate it: of two different bodies at one
/// offset exactly one is kept, the same body twice is stored once; what one
/// replica stored the other reads, lists and searches; an append retried
/// through the other replica completes it.
async fn replicas_share_one_stream(one: Arc<dyn Storage>, two: Arc<dyn Storage>) {
    let user = one
        .ensure_user_token("u", &"r".repeat(64))
        .await
        .unwrap()
        .id;
    assert_eq!(
        two.authenticate(&"r".repeat(64))
            .await
            .unwrap()
            .map(|a| a.id),
        Some(user)
    );
    one.put_session(user, "race", meta()).await.unwrap();
    let mut data = Vec::new();
    for round in 0..20u32 {
        let at = data.len() as u64;
        let prefix = sha_of(&data);
        let mine = format!("line {round} from one\n").repeat(1 + round as usize * 1000);
        let theirs = format!("line {round} from two\n").repeat(1 + round as usize * 1000);
        let (a, b) = tokio::join!(
            one.append(
                user,
                "race",
                "main",
                at,
                prefix,
                bytes::Bytes::from(mine.clone())
            ),
            two.append(
                user,
                "race",
                "main",
                at,
                prefix,
                bytes::Bytes::from(theirs.clone())
            ),
        );
        let kept = match (a, b) {
            (Ok(_), Err(StorageError::Diverged { .. })) => mine,
            (Err(StorageError::Diverged { .. }), Ok(_)) => theirs,
            other => panic!("round {round}: exactly one append must win: {other:?}"),
        };
        data.extend_from_slice(kept.as_bytes());
        // The same bytes through both replicas at once: stored once.
        let again = format!("same {round}\n").repeat(1 + round as usize * 1000);
        let at = data.len() as u64;
        let prefix = sha_of(&data);
        let (a, b) = tokio::join!(
            one.append(
                user,
                "race",
                "main",
                at,
                prefix,
                bytes::Bytes::from(again.clone())
            ),
            two.append(
                user,
                "race",
                "main",
                at,
                prefix,
                bytes::Bytes::from(again.clone())
            ),
        );
        data.extend_from_slice(again.as_bytes());
        assert_eq!(a.unwrap().sha256, sha256_hex(&data));
        assert_eq!(b.unwrap().sha256, sha256_hex(&data));
    }
    // A large push half-stored through one replica is completed through the other.
    let big = pattern(1_000_000);
    let at = data.len() as u64;
    let prefix = sha_of(&data);
    one.append(
        user,
        "race",
        "main",
        at,
        prefix,
        bytes::Bytes::copy_from_slice(&big[..400_000]),
    )
    .await
    .unwrap();
    let r = two
        .append(
            user,
            "race",
            "main",
            at,
            prefix,
            bytes::Bytes::copy_from_slice(&big),
        )
        .await
        .unwrap();
    data.extend_from_slice(&big);
    assert_eq!((r.len, r.sha256), (data.len() as u64, sha256_hex(&data)));
    for st in [&one, &two] {
        let (len, sha, bytes) = read_all(st, user, "race", 0).await;
        assert_eq!((len, sha), (data.len() as u64, sha256_hex(&data)));
        assert_eq!(bytes, data);
    }
    // Metadata and changes written through one are seen through the other, in order.
    let before = two.changes(user, 0, 100).await.unwrap().next_since;
    one.put_session(user, "later", meta()).await.unwrap();
    two.put_session(user, "latest", meta()).await.unwrap();
    let changes = one.changes(user, before, 100).await.unwrap();
    let ids: Vec<&str> = changes.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["later", "latest"]);
}

#[tokio::test]
async fn the_embedded_backend_keeps_the_ui_query_contract() {
    let dir = tempfile::tempdir().unwrap();
    ui_query_contract(embedded(dir.path())).await;
}

/// The queries of the web UI through the trait alone: list filters (each
/// alone, combined, paged), facet counts (each dimension under the others),
/// stats per day, agent and project, and share links (created, listed,
/// resolved, expired, revoked, scoped to their account).
async fn ui_query_contract(st: Arc<dyn Storage>) {
    let a = st.create_user("ui").await.unwrap();
    let a = st.authenticate(&a.token).await.unwrap().unwrap();
    let b = st.create_user("other").await.unwrap();
    let b = st.authenticate(&b.token).await.unwrap().unwrap();
    let put = |id: &'static str,
               agent: Agent,
               cwd: &'static str,
               day: &'static str,
               parent: Option<&'static str>| {
        let st = st.clone();
        async move {
            let meta = SessionMeta {
                cwd: Some(cwd.into()),
                updated_at: Some(format!("2026-01-{day}T10:00:00Z")),
                forked_from: parent.map(String::from),
                ..SessionMeta::of_agent(agent)
            };
            st.put_session(a.id, id, meta).await.unwrap();
        }
    };
    put("p1", Agent::Codex, "/a", "02", None).await;
    put("p2", Agent::Claude, "/b", "05", None).await;
    put("p3", Agent::Codex, "/a", "03", Some("p1")).await;
    st.put_session(b.id, "theirs", SessionMeta::of_agent(Agent::Codex))
        .await
        .unwrap();
    let list = |filter: SessionFilter, limit: u32, cursor: Option<String>| {
        let st = st.clone();
        async move {
            st.list_sessions(
                a.id,
                SessionsQuery {
                    cursor,
                    limit,
                    filter,
                },
            )
            .await
            .unwrap()
        }
    };
    let ids = |l: &SessionList| l.sessions.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    let all = list(SessionFilter::default(), 10, None).await;
    assert_eq!(ids(&all), ["p2", "p3", "p1"], "newest updated_at first");
    let codex = SessionFilter {
        agent: Some(Agent::Codex),
        ..Default::default()
    };
    assert_eq!(ids(&list(codex.clone(), 10, None).await), ["p3", "p1"]);
    let first = list(codex.clone(), 1, None).await;
    assert_eq!(ids(&first), ["p3"]);
    let second = list(codex.clone(), 1, first.next_cursor).await;
    assert_eq!(ids(&second), ["p1"], "pages keep the filter");
    let cwd_b = SessionFilter {
        cwd: Some("/b".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(cwd_b, 10, None).await), ["p2"]);
    let from = SessionFilter {
        from: Some("2026-01-03".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(from, 10, None).await), ["p2", "p3"]);
    let to = SessionFilter {
        to: Some("2026-01-03".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(to, 10, None).await), ["p1"], "`to` is exclusive");
    let forked = SessionFilter {
        has_forks: true,
        ..Default::default()
    };
    assert_eq!(ids(&list(forked.clone(), 10, None).await), ["p1"]);
    let children = SessionFilter {
        parent: Some("p1".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(children, 10, None).await), ["p3"]);
    let text = SessionFilter {
        q: Some("/b".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(text, 10, None).await), ["p2"]);

    // Facets: each dimension is counted under the other filters.
    let facets = st.facets(a.id, codex.clone()).await.unwrap();
    assert_eq!(facets.total, 2);
    let counts = |v: &[FacetCount]| {
        v.iter()
            .map(|c| (c.value.clone(), c.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&facets.agents),
        [("codex".to_string(), 2), ("claude".to_string(), 1)]
    );
    assert_eq!(counts(&facets.projects), [("/a".to_string(), 2)]);
    assert_eq!(facets.with_forks, 1);
    let none = st.facets(b.id, forked).await.unwrap();
    assert_eq!((none.total, none.with_forks), (0, 0));

    // Stats per day (oldest first), agent and project.
    let stats = st.stats(a.id).await.unwrap();
    let keys = |rows: &[StatRow]| {
        rows.iter()
            .map(|r| (r.key.clone(), r.sessions))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&stats.per_day),
        [
            ("2026-01-02".to_string(), 1),
            ("2026-01-03".to_string(), 1),
            ("2026-01-05".to_string(), 1)
        ]
    );
    assert_eq!(
        keys(&stats.per_agent),
        [("codex".to_string(), 2), ("claude".to_string(), 1)]
    );
    assert_eq!(
        keys(&stats.per_project),
        [("/a".to_string(), 2), ("/b".to_string(), 1)]
    );

    // Share links.
    let now = 1_800_000_000;
    let share = st
        .create_share(a.id, "p1", "secret1", now + 3600)
        .await
        .unwrap();
    assert_eq!(share.session_id, "p1");
    assert_eq!(share.id.len(), 16);
    assert_eq!(share.token, None);
    assert_eq!(share.expires_at, "2027-01-15T09:00:00Z");
    let listed = st.shares(a.id, "p1", now).await.unwrap();
    assert_eq!(listed, vec![share.clone()]);
    assert_eq!(
        st.shared_session("secret1", now).await.unwrap(),
        (a.id, "p1".to_string())
    );
    assert_eq!(
        st.shared_session("secret1", now + 3600).await,
        Err(StorageError::NotFound),
        "expired"
    );
    assert!(st.shares(a.id, "p1", now + 3600).await.unwrap().is_empty());
    assert_eq!(
        st.shared_session("unknown", now).await,
        Err(StorageError::NotFound)
    );
    assert_eq!(
        st.create_share(b.id, "p1", "secret2", now + 60).await,
        Err(StorageError::NotFound),
        "only the owner shares"
    );
    assert_eq!(
        st.revoke_share(b.id, "p1", &share.id).await,
        Err(StorageError::NotFound)
    );
    st.revoke_share(a.id, "p1", &share.id).await.unwrap();
    assert_eq!(
        st.shared_session("secret1", now).await,
        Err(StorageError::NotFound),
        "revoked"
    );
    assert_eq!(
        st.revoke_share(a.id, "p1", &share.id).await,
        Err(StorageError::NotFound)
    );
}

fn sha_of(bytes: &[u8]) -> [u8; 32] {
    let mut h = RunningSha256::new();
    h.update(bytes);
    h.digest()
}

async fn read_all(st: &Arc<dyn Storage>, user: i64, id: &str, from: u64) -> (u64, String, Vec<u8>) {
    use futures::StreamExt;
    let read = st.read(user, id, "main", from).await.unwrap();
    let mut out = Vec::new();
    let mut body = read.body;
    while let Some(piece) = body.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    (read.len, read.sha256, out)
}

/// Every [`Storage`] operation, as the HTTP layer relies on it, through the
/// trait alone: accounts, isolation between them, appends (retries,
/// divergence, offsets ahead), reads, checkpoints, forks, listings (bounded
/// texts) and changes, indexing and search, the mirror's state, and the
/// blob sweep. Any backend runs it by calling it with a fresh instance.
async fn storage_contract(st: Arc<dyn Storage>) {
    let empty = RunningSha256::new().digest();
    // Accounts.
    let alice = st.create_user("alice").await.unwrap();
    assert!(matches!(
        st.create_user("alice").await,
        Err(StorageError::Invalid(_))
    ));
    let a = st.authenticate(&alice.token).await.unwrap().unwrap();
    assert_eq!(a.name, "alice");
    assert_eq!(st.authenticate("no such token").await.unwrap(), None);
    let bob_token = "b".repeat(64);
    let b = st.ensure_user_token("bob", &bob_token).await.unwrap();
    assert_eq!(st.ensure_user_token("bob", &bob_token).await.unwrap(), b);
    assert_eq!(st.authenticate(&bob_token).await.unwrap(), Some(b.clone()));

    // Sessions belong to one account.
    let created = st.put_session(a.id, "s1", meta()).await.unwrap();
    assert!(matches!(
        st.session(b.id, "s1").await,
        Err(StorageError::NotFound)
    ));

    // Appends: larger than any inline limit, retried with overlap, diverged, ahead.
    let data = pattern(300_000);
    let r = st
        .append(
            a.id,
            "s1",
            "main",
            0,
            empty,
            bytes::Bytes::copy_from_slice(&data[..200_000]),
        )
        .await
        .unwrap();
    assert_eq!((r.len, r.sha256), (200_000, sha256_hex(&data[..200_000])));
    let retry = bytes::Bytes::copy_from_slice(&data[100_000..]);
    let r = st
        .append(a.id, "s1", "main", 100_000, sha_of(&data[..100_000]), retry)
        .await
        .unwrap();
    assert_eq!((r.len, r.sha256.clone()), (300_000, sha256_hex(&data)));
    let other = bytes::Bytes::from(vec![7u8; 1000]);
    let diverged = st.append(a.id, "s1", "main", 0, empty, other.clone()).await;
    assert_eq!(
        diverged.unwrap_err(),
        StorageError::Diverged {
            len: 300_000,
            sha256: sha256_hex(&data)
        }
    );
    let ahead = st
        .append(a.id, "s1", "main", 400_000, empty, other.clone())
        .await;
    assert_eq!(
        ahead.unwrap_err(),
        StorageError::OffsetAhead { len: 300_000 }
    );
    let theirs = st.append(b.id, "s1", "main", 0, empty, other).await;
    assert_eq!(theirs.unwrap_err(), StorageError::NotFound);

    // Reads and checkpoints.
    let (len, sha, bytes) = read_all(&st, a.id, "s1", 100).await;
    assert_eq!(
        (len, sha.as_str(), &bytes[..]),
        (300_000, sha256_hex(&data).as_str(), &data[100..])
    );
    assert!(matches!(
        st.read(a.id, "s1", "main", 300_001).await.map(|_| ()),
        Err(StorageError::OffsetAhead { len: 300_000 })
    ));
    let offsets: Vec<u64> = st
        .checkpoints(a.id, "s1", "main")
        .await
        .unwrap()
        .iter()
        .map(|c| c.offset)
        .collect();
    assert_eq!(offsets, [0, 200_000, 300_000]);
    let after = st.session(a.id, "s1").await.unwrap();
    assert!(after.updated_seq > created.updated_seq);

    // Forks share a prefix, are idempotent, and never overwrite.
    let req = ForkRequest {
        new_id: "s1-fork".into(),
        streams: vec![baton_protocol::StreamPrefix {
            name: "main".into(),
            len: 200_000,
            sha256: sha256_hex(&data[..200_000]),
        }],
    };
    let fork = st.fork(a.id, "s1", req.clone()).await.unwrap();
    assert_eq!(fork.diverged_from.as_deref(), Some("s1"));
    assert_eq!(fork.streams[0].len, 200_000);
    assert_eq!(
        st.fork(a.id, "s1", req.clone()).await.unwrap().id,
        "s1-fork"
    );
    st.put_session(a.id, "taken", meta()).await.unwrap();
    let taken = ForkRequest {
        new_id: "taken".into(),
        ..req
    };
    assert!(matches!(
        st.fork(a.id, "s1", taken).await,
        Err(StorageError::Exists(_))
    ));

    // Listings carry bounded texts; the session has them whole.
    let mut long = meta();
    long.first_prompt = Some("p".repeat(LISTING_TEXT_MAX_CHARS + 10));
    st.put_session(a.id, "long", long).await.unwrap();
    let list = st
        .list_sessions(
            a.id,
            SessionsQuery {
                limit: 10,
                ..SessionsQuery::default()
            },
        )
        .await
        .unwrap();
    let mut ids: Vec<&str> = list.sessions.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["long", "s1", "s1-fork", "taken"]);
    let listed = list.sessions.iter().find(|s| s.id == "long").unwrap();
    assert!(listed.first_prompt_truncated);
    assert_eq!(
        listed.first_prompt.as_ref().unwrap().chars().count(),
        LISTING_TEXT_MAX_CHARS
    );
    let whole = st.session(a.id, "long").await.unwrap();
    assert_eq!(
        whole.first_prompt.unwrap().len(),
        LISTING_TEXT_MAX_CHARS + 10
    );
    let changes = st.changes(a.id, created.updated_seq, 10).await.unwrap();
    let ids: Vec<&str> = changes.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s1-fork", "taken", "long"]);
    assert!(
        changes
            .sessions
            .windows(2)
            .all(|w| w[0].updated_seq < w[1].updated_seq)
    );
    assert!(!changes.more);
    let bobs = st.changes(b.id, 0, 10).await.unwrap();
    assert!(bobs.sessions.is_empty());

    // Indexing and search.
    st.put_session(a.id, "indexed", meta()).await.unwrap();
    let rollout = rollout();
    let r = st
        .append(
            a.id,
            "indexed",
            "main",
            0,
            empty,
            bytes::Bytes::from(rollout),
        )
        .await
        .unwrap();
    assert!(r.len > 0);
    Indexer::new(st.clone()).index_pending().await;
    let hits = st.search(a.id, "alpha", 10).await.unwrap();
    let hit = hits.iter().find(|h| h.session.id == "indexed");
    let hit = hit.unwrap_or_else(|| panic!("{hits:?}"));
    assert!(hit.hit_count >= 1, "{hit:?}");
    // The hit names the matching message, as the messages route numbers it.
    let n = hit.message.expect("a hit names its message");
    let page = page_messages(
        st.as_ref(),
        a.id,
        "indexed",
        baton_native::Agent::Codex,
        n,
        1,
    )
    .await
    .unwrap();
    assert!(
        page.messages[0].text.to_lowercase().contains("alpha"),
        "{:?}",
        page.messages[0]
    );
    assert!(st.search(b.id, "alpha", 10).await.unwrap().is_empty());

    // The local mirror's state: saved, replaced, forgotten, per account.
    let file = |path: &str, size: u64| MirrorFile {
        path: path.into(),
        stat: baton_native::discover::FileStat {
            size,
            mtime_ns: 1,
            ino: 2,
            dev: 3,
        },
        mirrored: RunningSha256::new(),
        diverged: false,
    };
    st.save_mirror_files(a.id, vec![file("/x", 1), file("/y", 2)], Vec::new())
        .await
        .unwrap();
    st.save_mirror_files(a.id, vec![file("/x", 5)], vec!["/y".into()])
        .await
        .unwrap();
    assert_eq!(st.mirror_files(a.id).await.unwrap(), vec![file("/x", 5)]);
    assert!(st.mirror_files(b.id).await.unwrap().is_empty());

    // The sweep never removes a referenced blob.
    let later = SystemTime::now() + Duration::from_secs(3600);
    st.sweep_blobs(later).await.unwrap();
    let (_, _, bytes) = read_all(&st, a.id, "s1", 0).await;
    assert_eq!(sha256_hex(&bytes), sha256_hex(&data));
}

/// Every fixture transcript (Codex rollouts and Claude sessions), pushed
/// into `st` as one session each and indexed.
async fn load_fixtures(st: &Arc<dyn Storage>) {
    let user = st.ensure_user_token("u", &"f".repeat(64)).await.unwrap().id;
    let root = baton_testkit::fixtures_dir();
    let mut files = Vec::new();
    for (agent, dir) in [
        ("codex", root.join("codex/sessions")),
        ("claude", root.join("claude/.claude/projects")),
    ] {
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "jsonl") {
                    files.push((agent, p));
                }
            }
        }
    }
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for (agent, path) in files {
        let id = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut m = meta();
        m.agent = agent.parse().unwrap();
        st.put_session(user, &id, m).await.unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let empty = RunningSha256::new().digest();
        st.append(user, &id, "main", 0, empty, bytes::Bytes::from(bytes))
            .await
            .unwrap();
    }
    while Indexer::new(st.clone()).index_pending().await > 0 {}
}

#[tokio::test(flavor = "multi_thread")]
async fn the_team_backend_finds_and_ranks_what_the_embedded_one_does() {
    let Some(team) = baton_testkit::team::team_services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let embedded = embedded(dir.path());
    let team = team_replica(&team_backends(team)).await;
    load_fixtures(&embedded).await;
    load_fixtures(&team).await;
    let user = |st: &Arc<dyn Storage>| {
        let st = st.clone();
        async move { st.authenticate(&"f".repeat(64)).await.unwrap().unwrap().id }
    };
    let (ue, ut) = (user(&embedded).await, user(&team).await);
    let mut found_any = false;
    for q in [
        "pub",
        "prompt",
        "prompt beta",
        "pub-tool*",
        "ünïcødé",
        "unicode",
        "gamma",
        "echo",
        "fork prom*",
        "\"pub\"",
        "nothing-like-this",
    ] {
        let hits = |st: Arc<dyn Storage>, u: i64| async move {
            st.search(u, q, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|h| (h.session.id, h.snippet, h.message, h.hit_count))
                .collect::<Vec<_>>()
        };
        let want = hits(embedded.clone(), ue).await;
        let got = hits(team.clone(), ut).await;
        assert_eq!(got, want, "query {q:?}");
        found_any |= !want.is_empty();
        let list = |st: Arc<dyn Storage>, u: i64| async move {
            let q = SessionsQuery {
                limit: 100,
                filter: SessionFilter {
                    q: Some(q.to_string()),
                    ..SessionFilter::default()
                },
                ..SessionsQuery::default()
            };
            let mut ids: Vec<String> = st
                .list_sessions(u, q)
                .await
                .unwrap()
                .sessions
                .into_iter()
                .map(|s| s.id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(
            list(team.clone(), ut).await,
            list(embedded.clone(), ue).await,
            "list filter {q:?}"
        );
    }
    assert!(found_any);
}
