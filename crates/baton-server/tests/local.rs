//! This machine's sessions appear in the built-in `local` account.

use baton_sync::protocol::{SessionList, sha256_hex};
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
