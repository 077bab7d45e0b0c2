//! A session recorded through baton-record resumes in the real, pinned `codex`
//! CLI (0.169.0): codex replays the recorded history to the model, appends to
//! the same file under the same id, skips the `baton_state` lines, and
//! respects baton's writer lock.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use std::time::Duration;

use baton_record::{
    ConversationManager, Durability, Recorder, RecorderConfig, ResponseItem, StateSnapshot, load,
};
use baton_testkit::{AgentEnv, ModelServer, agents, run_ok, run_within};
use serde_json::Value;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn codex_resumes_a_baton_recorded_session_in_the_same_file() {
    let Some(agents) = agents() else { return };
    let server = ModelServer::start();
    let env = AgentEnv::new(&server);
    let project = env.dir("project");
    let rt = runtime();

    let mut config = RecorderConfig::new(&env.codex_home, &project);
    config.model_provider = "baton-mock".into();
    config.durability = Durability::Fsync;
    let history = vec![
        ResponseItem::user_text("what is in the folder?"),
        ResponseItem::FunctionCall {
            id: None,
            name: "exec_command".into(),
            arguments: r#"{"cmd":"ls"}"#.into(),
            call_id: "call_baton_1".into(),
        },
        ResponseItem::FunctionCallOutput {
            call_id: "call_baton_1".into(),
            output: "README.md".into(),
        },
        ResponseItem::assistant_text("The folder holds README.md."),
    ];
    let recorder = rt.block_on(async {
        let rec = Recorder::create(&config).await.unwrap();
        rec.record_items(&history).await.unwrap();
        rec.record_state(&StateSnapshot {
            previous_response_id: Some("resp_recorded".into()),
            data: serde_json::json!({"turns": 1}),
        })
        .await
        .unwrap();
        rec.flush().await.unwrap();
        rec
    });
    let id = recorder.id().to_string();
    let path = recorder.path().to_path_buf();
    let recorded = std::fs::read(&path).unwrap();

    // While baton holds the session, codex refuses to write it.
    let out = run_within(
        env.codex(&agents, &project).args([
            "exec",
            "--skip-git-repo-check",
            "resume",
            &id,
            "blocked",
        ]),
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("already has an active writer"),
        "codex resumed a session baton was writing: {stderr}"
    );
    assert!(server.turn_requests().is_empty());
    rt.block_on(recorder.shutdown()).unwrap();

    run_ok(env.codex(&agents, &project).args([
        "exec",
        "--skip-git-repo-check",
        "resume",
        &id,
        "next",
    ]));

    // The model received the recorded conversation, then the new prompt.
    let turns = server.turn_requests();
    let last = turns.last().expect("codex called the model");
    assert_eq!(last.user_texts(), ["what is in the folder?", "next"]);
    let input = last.body["input"].as_array().expect("input array");
    let kinds: Vec<&str> = input
        .iter()
        .filter_map(|i| i.get("type").and_then(Value::as_str))
        .collect();
    assert!(kinds.contains(&"function_call"), "{kinds:?}");
    assert!(kinds.contains(&"function_call_output"), "{kinds:?}");
    assert!(
        input
            .iter()
            .any(|i| i.get("call_id").and_then(Value::as_str) == Some("call_baton_1")),
        "the recorded call id reached the model"
    );
    assert!(
        last.assistant_texts()
            .iter()
            .any(|t| t == "The folder holds README.md."),
        "{:?}",
        last.assistant_texts()
    );

    // Codex appended to baton's file: same id, no new rollout, our bytes untouched.
    assert_eq!(env.codex_session_ids(), std::slice::from_ref(&id));
    assert_eq!(env.codex_rollouts(), std::slice::from_ref(&path));
    let after = std::fs::read(&path).unwrap();
    assert!(after.len() > recorded.len());
    assert_eq!(&after[..recorded.len()], &recorded[..]);

    let loaded = load(&path).unwrap();
    assert!(loaded.issues.is_empty(), "{:?}", loaded.issues);
    assert_eq!(loaded.meta.id, id);
    assert_eq!(
        loaded
            .state
            .as_ref()
            .and_then(|s| s.previous_response_id.as_deref()),
        Some("resp_recorded")
    );
    let prompts: Vec<String> = loaded
        .items
        .iter()
        .filter(|i| i.is_typed_user_prompt())
        .filter_map(|i| i.message_text().map(|(_, t)| t))
        .collect();
    assert_eq!(prompts, ["what is in the folder?", "next"]);

    // And baton can pick the session up again after codex, in the same file.
    rt.block_on(async {
        let manager = ConversationManager::new(config.clone());
        let resumed = manager.resume(recorder.id()).await.unwrap();
        let conv = resumed.conversation;
        assert_eq!(conv.path(), path);
        assert_eq!(conv.history().len(), loaded.items.len());
        conv.record_items(&[ResponseItem::user_text("third")])
            .await
            .unwrap();
        conv.recorder().shutdown().await.unwrap();
    });
    let again = load(&path).unwrap();
    assert_eq!(again.prompt_count(), 3);
    assert!(again.issues.is_empty(), "{:?}", again.issues);
}
