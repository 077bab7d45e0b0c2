//! Fake sync servers against the real `baton` binary. A hostile one cannot
//! make `baton pull` or `baton sync` write outside baton's library (session
//! ids, parents and stream names it sends are checked before any path is
//! built) nor exhaust memory with a zstd bomb, and bytes that do not hash to
//! what the server announces (all-zero hashes, a blob corrupted on the
//! server's disk) are refused with nothing written; a scripted one runs a
//! `baton import` in the middle of a pull of the same session.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header::HeaderName;
use axum::response::IntoResponse;
use axum::routing::get;
use baton_native::Agent;
use baton_protocol::{
    Changes, HEADER_LENGTH, HEADER_SHA256, SessionInfo, SessionList, StreamInfo, WhoAmI, sha256_hex,
};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// One Claude transcript line (no session id inside, so none is rewritten).
const LINE: &[u8] =
    b"{\"type\":\"user\",\"cwd\":\"/p\",\"message\":{\"role\":\"user\",\"content\":\"hi\"}}\n";

fn info(id: &str, stream: &str, forked_from: Option<&str>) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        agent: Agent::Claude,
        cwd: Some("/p".into()),
        title: None,
        title_truncated: false,
        first_prompt: None,
        first_prompt_truncated: false,
        started_at: None,
        updated_at: None,
        user_turns: 1,
        message_count: 1,
        forked_from: forked_from.map(str::to_owned),
        diverged_from: None,
        encrypted: false,
        archived: false,
        streams: vec![StreamInfo {
            name: stream.into(),
            len: LINE.len() as u64,
            sha256: sha256_hex(LINE),
        }],
        updated_seq: 1,
    }
}

/// Serve the session list, the changes feed and any stream read with `infos`;
/// every stream read answers one `LINE`.
fn start_hostile(infos: Vec<SessionInfo>) -> (tokio::runtime::Runtime, String) {
    start_fake(infos, Vec::new(), LINE.to_vec())
}

/// Like [`start_hostile`], but every stream read announces `LINE`'s length
/// and hash and answers `body` with the extra `headers`.
fn start_fake(
    infos: Vec<SessionInfo>,
    headers: Vec<(HeaderName, String)>,
    body: Vec<u8>,
) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let list = SessionList {
        sessions: infos.clone(),
        next_cursor: None,
    };
    let changes = Changes {
        sessions: infos,
        next_since: 1,
        more: false,
    };
    let app = axum::Router::new()
        .route("/api/v1/me", get(|| async { Json(alice()) }))
        .route("/api/v1/sessions", get(move || async move { Json(list) }))
        .route("/api/v1/changes", get(move || async move { Json(changes) }))
        .fallback(move || async move {
            let mut response = body.into_response();
            let announced = [
                (
                    HeaderName::from_static("baton-length"),
                    LINE.len().to_string(),
                ),
                (HeaderName::from_static("baton-sha256"), sha256_hex(LINE)),
            ];
            for (name, value) in announced.into_iter().chain(headers) {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        });
    assert!(HEADER_LENGTH.eq_ignore_ascii_case("baton-length"));
    assert!(HEADER_SHA256.eq_ignore_ascii_case("baton-sha256"));
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, format!("http://{addr}"))
}

fn alice() -> WhoAmI {
    WhoAmI {
        user: "alice".into(),
    }
}

fn baton(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("BATON_HOME", root.join("home").join("baton"))
        .env("CODEX_HOME", root.join("home").join(".codex"))
        .env("CLAUDE_CONFIG_DIR", root.join("home").join(".claude"))
        .current_dir(root);
    cmd
}

/// Every file below `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn traversal_names_from_the_server_write_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let up = "../../../../../../";
    let (_rt, url) = start_hostile(vec![
        info(&format!("{up}escaped-id"), "main", None),
        info("good-id", &format!("{up}escaped-stream.jsonl"), None),
        info("child-id", "main", Some(&format!("{up}escaped-parent"))),
    ]);
    let out = baton(root).args(["login", &url, "token"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for args in [&["pull", "--all"][..], &["sync"][..]] {
        let out = baton(root).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr
                .matches("the sync server sent an unsafe name")
                .count(),
            3,
            "{args:?}: {stderr}"
        );
    }
    let written: Vec<_> = files(root)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("escaped"))
        .collect();
    assert!(
        written.is_empty(),
        "nothing written for unsafe names: {written:?}"
    );
    let library = root.join("home").join("baton").join("library");
    assert!(files(&library).is_empty(), "{:?}", files(&library));
}

#[test]
fn oversized_stream_answers_are_refused_without_decoding_them_whole() {
    use std::io::Read;
    // 900 blocks: under 4 KiB on the wire (so it passes the wire-size bound
    // for a one-line stream) but 112 MiB decoded, of which baton may hold
    // one line.
    let bomb = baton_testkit::zstd_bomb(&[], b'x', 900 << 17);
    assert!(bomb.len() < 4096);
    let mut start = Vec::new();
    zstd::stream::read::Decoder::new(bomb.as_slice())
        .unwrap()
        .take(1 << 20)
        .read_to_end(&mut start)
        .unwrap();
    assert_eq!(start, vec![b'x'; 1 << 20], "the bomb is a valid zstd frame");
    let zstd = vec![(
        HeaderName::from_static("content-encoding"),
        "zstd".to_owned(),
    )];
    let cases = [
        ("zstd bomb", zstd, bomb),
        (
            "plain body longer than announced",
            Vec::new(),
            vec![b'x'; 1 << 20],
        ),
    ];
    for (what, headers, body) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let (_rt, url) = start_fake(vec![info("bomb-id", "main", None)], headers, body);
        let out = login_and_pull_all(root, &url, "token");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the sync server sent more than {} bytes",
                LINE.len()
            )),
            "{what}: {stderr}"
        );
        let library = root.join("home").join("baton").join("library");
        assert!(files(&library).is_empty(), "{what}: {:?}", files(&library));
    }
}

/// One Claude transcript line of session `id`.
fn claude_line(id: &str, text: &str) -> Vec<u8> {
    format!(
        "{{\"type\":\"user\",\"sessionId\":\"{id}\",\"cwd\":\"/p\",\"uuid\":\"{text}\",\"message\":{{\"role\":\"user\",\"content\":\"{text}\"}}}}\n"
    )
    .into_bytes()
}

/// A fake server holding one plain Claude session whose bytes the test
/// sets, and which runs `hook` (once) while answering a stream read from a
/// non-zero offset, before sending the bytes.
#[derive(Default)]
struct Scripted {
    bytes: Vec<u8>,
    hook: Option<Command>,
    hook_output: Option<std::process::Output>,
}

#[derive(serde::Deserialize)]
struct From {
    from: u64,
}

fn start_scripted(
    id: &'static str,
    state: Arc<Mutex<Scripted>>,
) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let info_of = move |bytes: &[u8]| {
        let mut info = info(id, "main", None);
        info.streams[0].len = bytes.len() as u64;
        info.streams[0].sha256 = sha256_hex(bytes);
        info
    };
    let list = move |State(st): State<Arc<Mutex<Scripted>>>| async move {
        let bytes = st.lock().unwrap().bytes.clone();
        Json(SessionList {
            sessions: vec![info_of(&bytes)],
            next_cursor: None,
        })
    };
    let stream = |State(st): State<Arc<Mutex<Scripted>>>, Query(q): Query<From>| async move {
        let hook = if q.from > 0 {
            st.lock().unwrap().hook.take()
        } else {
            None
        };
        if let Some(mut hook) = hook {
            let out = hook.output().expect("hook runs");
            st.lock().unwrap().hook_output = Some(out);
        }
        let bytes = st.lock().unwrap().bytes.clone();
        (
            [
                (
                    HeaderName::from_static("baton-length"),
                    bytes.len().to_string(),
                ),
                (HeaderName::from_static("baton-sha256"), sha256_hex(&bytes)),
            ],
            bytes[q.from as usize..].to_vec(),
        )
    };
    let app = axum::Router::new()
        .route("/api/v1/me", get(|| async { Json(alice()) }))
        .route("/api/v1/sessions", get(list))
        .route("/api/v1/sessions/{id}/streams/main", get(stream))
        .with_state(state);
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, format!("http://{addr}"))
}

/// `baton import` runs while `baton pull` of the same session is between
/// reading its library copy and appending the server's new bytes (the
/// scripted server runs the import while answering the pull's read). Both
/// extend the copy under its one lock and check its bytes again there: the
/// copy ends up holding the new history once, not the new bytes twice.
#[test]
fn import_during_a_pull_of_the_same_session_appends_once() {
    const ID: &str = "5f0c3a9e-1b2d-4c6e-8f70-9a1b2c3d4e5f";
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let v1 = claude_line(ID, "one");
    let v2 = [v1.clone(), claude_line(ID, "two")].concat();
    let state = Arc::new(Mutex::new(Scripted {
        bytes: v1.clone(),
        ..Default::default()
    }));
    let (_rt, url) = start_scripted(ID, state.clone());
    let out = baton(root).args(["login", &url, "token"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = baton(root).args(["pull", ID]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = root
        .join("home/baton/library/claude/projects/-p")
        .join(format!("{ID}.jsonl"));
    assert_eq!(std::fs::read(&copy).unwrap(), v1);

    // An envelope of the continued session, as another machine exports it.
    let elsewhere = root
        .join("elsewhere/projects/-p")
        .join(format!("{ID}.jsonl"));
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::fs::write(&elsewhere, &v2).unwrap();
    let session = baton_native::rehydrate::NativeSession::load(Agent::Claude, &elsewhere, &[])
        .expect("load session");
    let envelope = root.join("continued.baton");
    baton_native::envelope::Envelope::from_files(session, Default::default())
        .write_to(std::fs::File::create(&envelope).unwrap())
        .expect("write envelope");

    {
        let mut st = state.lock().unwrap();
        st.bytes = v2.clone();
        let mut import = baton(root);
        import.arg("import").arg(&envelope);
        st.hook = Some(import);
    }
    let out = baton(root).args(["pull", ID]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hook = state.lock().unwrap().hook_output.take();
    let import = hook.expect("the import ran during the pull");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(&copy).unwrap()),
        String::from_utf8_lossy(&v2),
        "the library copy holds the continued history exactly once"
    );
    // The sync state agrees with the file: a second pull moves nothing.
    let out = baton(root).args(["pull", ID]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&copy).unwrap(), v2);
}

/// Usage mistakes are refused by the argument parser (exit code 2) before
/// any login is needed or the network is touched.
#[test]
fn push_and_pull_need_ids_or_all_but_not_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["push"][..],
        &["pull"][..],
        &["push", "some-id", "--all"][..],
        &["pull", "some-id", "--all"][..],
    ] {
        let out = baton(dir.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("not logged in"), "{args:?}: {stderr}");
    }
}

/// `baton login URL TOKEN` (which must succeed), then `baton pull --all`,
/// in `root`; the pull's output.
fn login_and_pull_all(root: &Path, url: &str, token: &str) -> std::process::Output {
    let out = baton(root).args(["login", url, token]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    baton(root).args(["pull", "--all"]).output().unwrap()
}

/// `baton pull --all` in `root` from `url` with `token`: exits 1 naming
/// `id` in an integrity error, and writes nothing into the library.
fn assert_pull_refused(root: &Path, url: &str, token: &str, id: &str) {
    let out = login_and_pull_all(root, url, token);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("session {id}"))
            && stderr.contains("do not match the SHA-256 it announced"),
        "{stderr}"
    );
    let library = root.join("home").join("baton").join("library");
    assert!(files(&library).is_empty(), "{:?}", files(&library));
}

#[test]
fn all_zero_hashes_from_a_hostile_server_write_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zeros = "0".repeat(64);
    let mut session = info("zero-hash", "main", None);
    session.streams[0].sha256 = zeros.clone();
    let (_rt, url) = start_fake(
        vec![session],
        vec![(HeaderName::from_static("baton-sha256"), zeros)],
        LINE.to_vec(),
    );
    assert_pull_refused(dir.path(), &url, "token", "zero-hash");
}

#[test]
fn a_blob_corrupted_on_the_server_disk_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).expect("server dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let id = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    // One append larger than the inline limit, so it is kept as a blob file.
    let mut bytes = Vec::new();
    while bytes.len() <= baton_server::embedded::INLINE_MAX {
        bytes.extend_from_slice(&claude_line(id, &format!("line {}", bytes.len())));
    }
    let (server, token) = rt.block_on(async {
        let mut config = baton_server::ServerConfig::new(data.clone());
        config.listen = "127.0.0.1:0".parse().expect("addr");
        let server = baton_server::start(config).await.expect("server starts");
        let user = baton_server::add_user(&data, "alice")
            .await
            .expect("add user");
        let client = baton_sync::http::Client::new(&format!("http://{}", server.addr), &user.token)
            .expect("client");
        let meta = baton_protocol::SessionMeta {
            cwd: Some("/p".into()),
            ..baton_protocol::SessionMeta::of_agent(Agent::Claude)
        };
        client.put_session(id, &meta).await.expect("create");
        let outcome = client
            .append(id, "main", 0, baton_protocol::EMPTY_SHA256, &bytes, false)
            .await
            .expect("push");
        assert!(matches!(
            outcome,
            baton_sync::http::AppendOutcome::Appended(_)
        ));
        (server, user.token)
    });
    let blobs: Vec<_> = files(&data.join("blobs"))
        .into_iter()
        .filter(|p| !p.starts_with(data.join("blobs").join("tmp")))
        .collect();
    assert_eq!(blobs.len(), 1, "one blob file: {blobs:?}");
    let mut blob = std::fs::read(&blobs[0]).expect("read blob");
    let mid = blob.len() / 2;
    blob[mid] ^= 0x01;
    std::fs::write(&blobs[0], &blob).expect("corrupt blob");
    let url = format!("http://{}", server.addr);
    assert_pull_refused(dir.path(), &url, &token, id);
    server.abort();
}

#[test]
fn a_server_that_never_answers_times_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    // Accepts connections (the kernel does, from the backlog) and never
    // reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let config = baton_sync::state::SyncConfig {
        url: url.clone(),
        token: "token".into(),
        encrypt: false,
        key_file: None,
        salt: None,
    };
    config
        .save(&root.join("home").join("baton"))
        .expect("save login");
    let started = std::time::Instant::now();
    let out = baton(root)
        .env("BATON_HTTP_TIMEOUT", "1")
        .args(["pull", "--all"])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the sync server at {url} did not answer within 1 s"
        )),
        "{stderr}"
    );
    assert!(
        elapsed < std::time::Duration::from_secs(15),
        "gave up only after {elapsed:?}"
    );
    drop(listener);
}
