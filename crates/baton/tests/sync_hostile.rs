//! A hostile sync server cannot make `baton pull` or `baton sync` write
//! outside baton's library: session ids, parents and stream names it sends
//! are checked before any path is built.

use axum::Json;
use axum::http::header::HeaderName;
use axum::routing::get;
use baton_native::Agent;
use baton_sync::protocol::{
    Changes, HEADER_LENGTH, HEADER_SHA256, SessionInfo, SessionList, StreamInfo, sha256_hex,
};
use std::path::Path;
use std::process::Command;

/// One Claude transcript line (no session id inside, so none is rewritten).
const LINE: &[u8] =
    b"{\"type\":\"user\",\"cwd\":\"/p\",\"message\":{\"role\":\"user\",\"content\":\"hi\"}}\n";

fn info(id: &str, stream: &str, forked_from: Option<&str>) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        agent: Agent::Claude,
        cwd: Some("/p".into()),
        title: None,
        first_prompt: None,
        started_at: None,
        updated_at: None,
        user_turns: 1,
        message_count: 1,
        forked_from: forked_from.map(str::to_owned),
        diverged_from: None,
        encrypted: false,
        streams: vec![StreamInfo {
            name: stream.into(),
            len: LINE.len() as u64,
            sha256: sha256_hex(LINE),
        }],
        updated_seq: 1,
    }
}

/// Serve the session list, the changes feed and any stream read with `infos`.
fn start_hostile(infos: Vec<SessionInfo>) -> (tokio::runtime::Runtime, String) {
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
        .route("/api/v1/sessions", get(move || async move { Json(list) }))
        .route("/api/v1/changes", get(move || async move { Json(changes) }))
        .fallback(|| async {
            let len = LINE.len().to_string();
            (
                [
                    (HeaderName::from_static("baton-length"), len),
                    (HeaderName::from_static("baton-sha256"), sha256_hex(LINE)),
                ],
                LINE,
            )
        });
    assert!(HEADER_LENGTH.eq_ignore_ascii_case("baton-length"));
    assert!(HEADER_SHA256.eq_ignore_ascii_case("baton-sha256"));
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, format!("http://{addr}"))
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
