//! This machine's sessions appear in the built-in `local` account.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_protocol::{SessionList, sha256_hex};
use baton_server::local::Mirror;
use baton_server::storage::Storage;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn local_sessions_are_mirrored_and_follow_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = baton_testkit::fixtures_dir();
    let codex = tmp.path().join("codex");
    let claude = tmp.path().join("claude");
    baton_testkit::copy_tree(&fx.join("codex"), &codex).unwrap();
    baton_testkit::copy_tree(&fx.join("claude/.claude"), &claude).unwrap();
    let data_dir = tmp.path().join("server");
    let mut cfg = baton_server::ServerConfig::new(data_dir.clone());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.rescan_every = Duration::from_millis(200);
    cfg.local = Some(baton_server::local::LocalSources {
        codex_homes: vec![codex.clone()],
        claude_dirs: vec![claude],
    });
    let server = baton_server::start(cfg).await.unwrap();
    let token = std::fs::read_to_string(data_dir.join(baton_server::LOCAL_TOKEN_FILE)).unwrap();
    assert_eq!(token.trim(), server.local_token);
    let http = reqwest::Client::new();
    let base = format!("http://{}/api/v1", server.addr);
    let list = |http: reqwest::Client| {
        let base = base.clone();
        let token = server.local_token.clone();
        async move {
            http.get(format!("{base}/sessions?limit=100"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<SessionList>()
                .await
                .unwrap()
        }
    };
    let mut sessions = SessionList {
        sessions: vec![],
        next_cursor: None,
    };
    for _ in 0..100 {
        sessions = list(http.clone()).await;
        if sessions.sessions.len() == 6 && sessions.sessions.iter().all(|s| s.user_turns > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sessions.sessions.len(),
        6,
        "3 Codex + 3 Claude fixture sessions"
    );
    let rollout = codex.join("sessions/2026/11/21/rollout-2026-11-21T19-20-28-01a1ff8d-8a8a-7740-8c02-49607e66ddfa.jsonl");
    let id = "01a1ff8d-8a8a-7740-8c02-49607e66ddfa";
    let s = sessions.sessions.iter().find(|s| s.id == id).unwrap();
    assert_eq!(s.first_prompt.as_deref(), Some("pub first prompt alpha"));
    let fork = sessions
        .sessions
        .iter()
        .find(|s| s.id.starts_with("01a1ff8d-9126"))
        .unwrap();
    assert_eq!(
        fork.forked_from.as_deref(),
        Some("01a1ff8d-8c3d-7551-b270-db431e8a8997")
    );

    // The agent appends; the mirror sends just the new bytes.
    let mut bytes = std::fs::read(&rollout).unwrap();
    let extra = b"{\"timestamp\":\"2026-11-21T19:30:00.000Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"agent_message\",\"message\":\"later\"}}\n";
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&rollout)
            .unwrap();
        f.write_all(extra).unwrap();
    }
    bytes.extend_from_slice(extra);
    let mut sha = String::new();
    for _ in 0..100 {
        let info: serde_json::Value = http
            .get(format!("{base}/sessions/{id}"))
            .bearer_auth(&server.local_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sha = info["streams"][0]["sha256"].as_str().unwrap().to_string();
        if sha == sha256_hex(&bytes) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sha, sha256_hex(&bytes));
}

/// A mirror over copies of the fixture homes (one Codex rollout stored as
/// `.jsonl.zst`), backed by the storage in `data_dir`.
struct Homes {
    tmp: tempfile::TempDir,
    sources: baton_server::local::LocalSources,
}

const ROLLOUT: &str =
    "sessions/2026/11/21/rollout-2026-11-21T19-20-28-01a1ff8d-8a8a-7740-8c02-49607e66ddfa.jsonl";
const ROLLOUT_ID: &str = "01a1ff8d-8a8a-7740-8c02-49607e66ddfa";
const ZST_ROLLOUT: &str =
    "sessions/2026/11/21/rollout-2026-11-21T19-20-28-01a1ff8d-8c3d-7551-b270-db431e8a8997.jsonl";
const EXTRA: &[u8] = b"{\"timestamp\":\"2026-11-21T19:30:00.000Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"agent_message\",\"message\":\"later\"}}\n";

impl Homes {
    fn new() -> Homes {
        let tmp = tempfile::tempdir().unwrap();
        let fx = baton_testkit::fixtures_dir();
        let codex = tmp.path().join("codex");
        let claude = tmp.path().join("claude");
        baton_testkit::copy_tree(&fx.join("codex"), &codex).unwrap();
        baton_testkit::copy_tree(&fx.join("claude/.claude"), &claude).unwrap();
        let plain = codex.join(ZST_ROLLOUT);
        let packed = zstd::encode_all(&std::fs::read(&plain).unwrap()[..], 3).unwrap();
        std::fs::write(plain.with_extension("jsonl.zst"), packed).unwrap();
        std::fs::remove_file(&plain).unwrap();
        let sources = baton_server::local::LocalSources {
            codex_homes: vec![codex],
            claude_dirs: vec![claude],
        };
        Homes { tmp, sources }
    }

    fn rollout(&self) -> std::path::PathBuf {
        self.sources.codex_homes[0].join(ROLLOUT)
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.tmp.path().join("server")
    }

    /// Uncompressed bytes of every mirrored file.
    fn total_bytes(&self) -> u64 {
        let mut total = 0;
        let mut stack = vec![self.tmp.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if !path.ends_with("server") {
                        stack.push(path);
                    }
                } else if path.to_string_lossy().ends_with(".zst") {
                    total += zstd::decode_all(&std::fs::read(&path).unwrap()[..])
                        .unwrap()
                        .len() as u64;
                } else if path.extension().is_some_and(|e| e == "jsonl") {
                    total += std::fs::metadata(&path).unwrap().len();
                }
            }
        }
        total
    }

    /// A mirror as a freshly started server makes it: new storage handle, no state in memory.
    async fn start(&self) -> (Arc<dyn Storage>, i64, Mirror) {
        let storage: Arc<dyn Storage> = baton_server::open_storage(&self.data_dir()).unwrap();
        let user = storage
            .ensure_user_token(baton_server::LOCAL_USER, &"t".repeat(64))
            .await
            .unwrap()
            .id;
        let mirror = Mirror::new(storage.clone(), user, self.sources.clone());
        (storage, user, mirror)
    }
}

async fn stream_of(storage: &Arc<dyn Storage>, user: i64, id: &str) -> (u64, String) {
    let info = storage.session(user, id).await.unwrap();
    let main = info.streams.iter().find(|s| s.name == "main").unwrap();
    (main.len, main.sha256.clone())
}

/// The main stream of session `id` holds exactly `bytes`.
async fn assert_stored(storage: &Arc<dyn Storage>, user: i64, id: &str, bytes: &[u8]) {
    assert_eq!(
        stream_of(storage, user, id).await,
        (bytes.len() as u64, sha256_hex(bytes)),
        "main stream of {id}"
    );
}

fn append(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[tokio::test]
async fn a_restart_reads_nothing_and_an_append_reads_only_the_new_bytes() {
    let homes = Homes::new();
    let (storage, user, mut mirror) = homes.start().await;
    let first = mirror.scan().await;
    assert_eq!(first.issues, Vec::<String>::new());
    assert_eq!(first.updated, 6);
    assert_eq!(first.bytes_read, homes.total_bytes());
    let zst_id = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    let plain =
        zstd::decode_all(
            &std::fs::read(homes.sources.codex_homes[0].join(format!("{ZST_ROLLOUT}.zst")))
                .unwrap()[..],
        )
        .unwrap();
    assert_stored(&storage, user, zst_id, &plain).await;
    drop((storage, mirror));

    // Restart with unchanged files: one stat each, no byte read.
    let (storage, user, mut mirror) = homes.start().await;
    let again = mirror.scan().await;
    assert_eq!((again.updated, again.bytes_read), (0, 0), "{again:?}");
    assert!(again.issues.is_empty(), "{again:?}");

    // The agent appends a line: only that line is read and sent.
    append(&homes.rollout(), EXTRA);
    let grown = mirror.scan().await;
    assert_eq!((grown.updated, grown.bytes_read), (1, EXTRA.len() as u64));
    let bytes = std::fs::read(homes.rollout()).unwrap();
    assert_stored(&storage, user, ROLLOUT_ID, &bytes).await;
    drop((storage, mirror));

    // The state saved after the append holds too.
    let (_storage, _user, mut mirror) = homes.start().await;
    let after = mirror.scan().await;
    assert_eq!((after.updated, after.bytes_read), (0, 0), "{after:?}");
}

#[tokio::test]
async fn a_lost_state_is_checked_against_the_server_copy_without_pushing() {
    let homes = Homes::new();
    let (storage, user, mut mirror) = homes.start().await;
    assert_eq!(mirror.scan().await.updated, 6);
    let before = storage.session(user, ROLLOUT_ID).await.unwrap();
    let since = storage.changes(user, 0, 100).await.unwrap().next_since;
    drop((storage, mirror));
    let db = rusqlite::Connection::open(homes.data_dir().join("baton.db")).unwrap();
    assert_eq!(db.execute("DELETE FROM mirror_files", []).unwrap(), 6);
    drop(db);
    append(&homes.rollout(), EXTRA);

    let (storage, user, mut mirror) = homes.start().await;
    let report = mirror.scan().await;
    // Every file is hashed once (streaming) and compared; only the new line is pushed.
    assert_eq!(report.issues, Vec::<String>::new());
    assert_eq!(
        (report.updated, report.bytes_read),
        (1, homes.total_bytes())
    );
    let after = storage.session(user, ROLLOUT_ID).await.unwrap();
    assert_eq!(
        after.streams[0].len,
        before.streams[0].len + EXTRA.len() as u64
    );
    let list = storage.changes(user, since, 100).await.unwrap();
    assert_eq!(
        list.sessions
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        vec![ROLLOUT_ID],
        "no other session was touched"
    );
    assert_eq!(mirror.scan().await.bytes_read, 0);
}

#[tokio::test]
async fn a_rewritten_or_truncated_file_never_changes_the_server_copy() {
    let homes = Homes::new();
    let (storage, user, mut mirror) = homes.start().await;
    assert_eq!(mirror.scan().await.updated, 6);
    let original = std::fs::read(homes.rollout()).unwrap();
    let kept = (original.len() as u64, sha256_hex(&original));

    // Rewritten (a new file in its place) with an edited first line and more bytes.
    let mut edited = original.clone();
    edited[2] ^= 0x20;
    edited.extend_from_slice(EXTRA);
    let tmp = homes.rollout().with_extension("tmp");
    std::fs::write(&tmp, &edited).unwrap();
    std::fs::rename(&tmp, homes.rollout()).unwrap();
    let report = mirror.scan().await;
    assert_eq!(report.updated, 0);
    assert_eq!(report.issues.len(), 1, "{report:?}");
    assert!(
        report.issues[0].contains(ROLLOUT_ID) && report.issues[0].contains("no longer extends")
    );
    assert_eq!(stream_of(&storage, user, ROLLOUT_ID).await, kept);
    // Reported once; later appends to the same file are left alone, also after a restart.
    append(&homes.rollout(), EXTRA);
    let quiet = mirror.scan().await;
    assert_eq!((quiet.issues.len(), quiet.bytes_read), (0, 0), "{quiet:?}");
    drop((storage, mirror));
    let (storage, user, mut mirror) = homes.start().await;
    let quiet = mirror.scan().await;
    assert_eq!((quiet.issues.len(), quiet.bytes_read), (0, 0), "{quiet:?}");

    // Truncated in place: the server keeps the longer copy.
    let claude = homes.sources.claude_dirs[0]
        .join("projects/-srv-corpus-work-pub-alpha/dcf5c926-1018-40a3-9c1e-6e73eeca4da9.jsonl");
    let claude_id = "dcf5c926-1018-40a3-9c1e-6e73eeca4da9";
    let full = stream_of(&storage, user, claude_id).await;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&claude)
        .unwrap()
        .set_len(full.0 / 2)
        .unwrap();
    let report = mirror.scan().await;
    assert_eq!(report.issues.len(), 1, "{report:?}");
    assert!(report.issues[0].contains(claude_id));
    assert_eq!(stream_of(&storage, user, claude_id).await, full);
}

/// The sessions the server mirrors from its own machine are stored as the
/// agent wrote them, secrets included; what the API shows of them (listing,
/// transcript, search, share links) never holds a value, only placeholders.
#[tokio::test]
async fn the_api_never_shows_a_secret_of_a_mirrored_session() {
    let homes = Homes::new();
    let github = format!("ghp_{}", "Zq7Xw2Lk9Pm4".repeat(3));
    let aws = &format!("AKIA{}", "Z7Q3LKXW2PM4RT6Y");
    let rollout = homes.rollout();
    let text = std::fs::read_to_string(&rollout).unwrap().replace(
        "pub first prompt alpha",
        &format!("deploy with token {github} and key {aws} please"),
    );
    std::fs::write(&rollout, text).unwrap();
    let mut cfg = baton_server::ServerConfig::new(homes.data_dir());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.local = Some(homes.sources.clone());
    let server = baton_server::start(cfg).await.unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{}/api/v1", server.addr);
    let get = |path: String| {
        let (http, token) = (http.clone(), server.local_token.clone());
        let url = format!("{base}{path}");
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.text().await.unwrap()
        }
    };
    // Wait until the session's messages are indexed (search finds them).
    let mut found = String::new();
    for _ in 0..100 {
        found = get("/search?q=deploy".into()).await;
        if found.contains(ROLLOUT_ID) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let share: serde_json::Value = http
        .post(format!("{base}/sessions/{ROLLOUT_ID}/shares"))
        .bearer_auth(&server.local_token)
        .json(&serde_json::json!({"expires_in_hours": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shared = http
        .get(format!(
            "{base}/shared/{}/messages",
            share["token"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shown = [
        ("search", found),
        ("list", get("/sessions?limit=100".into()).await),
        ("session", get(format!("/sessions/{ROLLOUT_ID}")).await),
        (
            "messages",
            get(format!("/sessions/{ROLLOUT_ID}/messages")).await,
        ),
        ("share link", shared),
    ];
    for (what, body) in &shown {
        assert!(body.contains("deploy"), "{what}: {body}");
        assert!(body.contains("‹secret:github-token:›"), "{what}: {body}");
        assert!(!body.contains(&github), "{what} shows the GitHub token");
        assert!(!body.contains(aws), "{what} shows the AWS key");
    }
    // The stored bytes are the agent's own.
    let raw = get(format!("/sessions/{ROLLOUT_ID}/streams/main")).await;
    assert!(raw.contains(&github));
}
