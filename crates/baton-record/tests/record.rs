//! Recorder, load, resume and manager behaviour on real files.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use std::path::Path;
use std::sync::Arc;

use baton_native::{Agent, FileReader};
use baton_record::{
    ContentItem, ConversationManager, Durability, FORKED_FROM_ID, InitialHistory, LOCK_DIR,
    RecordError, Recorder, RecorderConfig, ResponseItem, SESSION_LOG_FILE, SESSIONS_SUBDIR,
    SessionLogRouter, StateSnapshot, TRANSCRIPT_FILE, load,
};
use proptest::prelude::*;
use serde_json::json;

fn config(home: &Path) -> RecorderConfig {
    RecorderConfig::new(home, "/work/project")
}

#[tokio::test]
async fn records_a_codex_layout_rollout_and_loads_it_back() {
    let home = tempfile::tempdir().unwrap();
    let mut cfg = config(home.path());
    cfg.base_instructions = Some("be brief".into());
    let rec = Recorder::create(&cfg).await.unwrap();
    let items = vec![
        ResponseItem::user_text("hello"),
        ResponseItem::assistant_text("hi there"),
    ];
    rec.record_items(&items).await.unwrap();
    rec.record_state(&StateSnapshot {
        previous_response_id: Some("r1".into()),
        data: json!(null),
    })
    .await
    .unwrap();
    rec.record_state(&StateSnapshot {
        previous_response_id: Some("r2".into()),
        data: json!({"k": [1, 2]}),
    })
    .await
    .unwrap();
    rec.shutdown().await.unwrap();

    assert_eq!(rec.id().get_version_num(), 7);
    let rel = rec.path().strip_prefix(home.path()).unwrap();
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
    assert_eq!(parts[0], "sessions");
    assert_eq!(parts[1].len(), 4);
    assert!(parts[4].starts_with(&format!("rollout-{}-", parts[1])));
    assert!(parts[4].ends_with(&format!("-{}.jsonl", rec.id())));

    let text = std::fs::read_to_string(rec.path()).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "session_meta");
    assert_eq!(first["payload"]["id"], rec.id().to_string());
    assert_eq!(first["payload"]["base_instructions"]["text"], "be brief");
    for key in [
        "timestamp",
        "cwd",
        "originator",
        "cli_version",
        "source",
        "model_provider",
    ] {
        assert!(first["payload"][key].is_string(), "missing {key}");
    }

    let loaded = load(rec.path()).unwrap();
    assert_eq!(loaded.meta.id, rec.id().to_string());
    assert_eq!(loaded.items, items);
    let state = loaded.state.unwrap();
    assert_eq!(state.previous_response_id.as_deref(), Some("r2"));
    assert_eq!(state.data, json!({"k": [1, 2]}));
    assert!(loaded.issues.is_empty() && !loaded.torn_tail && loaded.ends_with_newline);
    assert!(matches!(
        rec.record_items(&items).await,
        Err(RecordError::Closed { .. })
    ));
}

#[tokio::test]
async fn a_second_writer_is_refused_with_the_pid() {
    let home = tempfile::tempdir().unwrap();
    let cfg = config(home.path());
    let rec = Recorder::create(&cfg).await.unwrap();
    rec.flush().await.unwrap();
    let err = Recorder::resume(&cfg, rec.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "session {} is being written by pid {}; stop that writer or wait for it to exit, then retry",
            rec.id(),
            std::process::id()
        )
    );
    rec.shutdown().await.unwrap();
    let (again, _) = Recorder::resume(&cfg, rec.path()).await.unwrap();
    again.shutdown().await.unwrap();
}

#[tokio::test]
async fn resume_repairs_a_torn_tail_and_keeps_unknown_lines() {
    let home = tempfile::tempdir().unwrap();
    let cfg = config(home.path());
    let rec = Recorder::create(&cfg).await.unwrap();
    rec.record_items(&[ResponseItem::user_text("one")])
        .await
        .unwrap();
    rec.shutdown().await.unwrap();
    let path = rec.path().to_path_buf();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"timestamp\":\"t\",\"type\":\"event_msg\",\"payload\":{\"type\":\"x\"}}\n")
            .unwrap();
        f.write_all(b"{\"timestamp\":\"t\",\"type\":\"response_item\",\"payl")
            .unwrap();
    }
    let torn = load(&path).unwrap();
    assert!(torn.torn_tail);
    assert_eq!(torn.items.len(), 1);
    assert_eq!(torn.other_lines.len(), 1);
    assert_eq!(torn.other_lines[0].value["payload"]["type"], "x");

    let (rec2, loaded) = Recorder::resume(&cfg, &path).await.unwrap();
    assert_eq!(rec2.id(), rec.id());
    assert_eq!(loaded.items, vec![ResponseItem::user_text("one")]);
    rec2.record_items(&[ResponseItem::user_text("two")])
        .await
        .unwrap();
    rec2.shutdown().await.unwrap();

    let after = load(&path).unwrap();
    assert!(!after.torn_tail);
    assert_eq!(
        after.issues.len(),
        1,
        "the torn fragment became its own bad line"
    );
    assert_eq!(
        after.items,
        vec![
            ResponseItem::user_text("one"),
            ResponseItem::user_text("two")
        ]
    );
}

#[tokio::test]
async fn resuming_a_paginated_file_continues_ordinals() {
    let home = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::now_v7();
    let dir = home.path().join("sessions/2025/01/02");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("rollout-2025-01-02T03-04-05-{id}.jsonl"));
    let meta = json!({"timestamp":"t","ordinal":0,"type":"session_meta","payload":{
        "id": id.to_string(), "timestamp":"t","cwd":"/","originator":"codex_exec",
        "cli_version":"0.169.0","source":"exec","model_provider":"openai","history_mode":"paginated"}});
    let item = json!({"timestamp":"t","ordinal":1,"type":"response_item","payload":
        {"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}],"status":"completed"}});
    std::fs::write(&path, format!("{meta}\n{item}\n")).unwrap();

    let (rec, loaded) = Recorder::resume(&config(home.path()), &path).await.unwrap();
    assert!(loaded.is_paginated());
    assert_eq!(loaded.last_ordinal, Some(1));
    // Unknown fields keep the item raw, and it still counts as a prompt.
    assert!(matches!(loaded.items[0], ResponseItem::Other(_)));
    assert_eq!(loaded.prompt_count(), 1);
    rec.record_items(&[ResponseItem::assistant_text("yo")])
        .await
        .unwrap();
    rec.record_state(&StateSnapshot::default()).await.unwrap();
    rec.shutdown().await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let ordinals: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["ordinal"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ordinals, [0, 1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fsync_appends_are_all_durable_and_ordered_per_task() {
    let home = tempfile::tempdir().unwrap();
    let mut cfg = config(home.path());
    cfg.durability = Durability::Fsync;
    cfg.channel_capacity = 8;
    let rec = Recorder::create(&cfg).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let rec = rec.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                rec.record_items(&[ResponseItem::user_text(format!("{t}:{i}"))])
                    .await
                    .unwrap();
                if i % 10 == 9 {
                    rec.flush().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    rec.flush().await.unwrap();
    let loaded = load(rec.path()).unwrap();
    assert_eq!(loaded.items.len(), 400);
    for t in 0..8 {
        let seen: Vec<u32> = loaded
            .items
            .iter()
            .filter_map(|i| i.message_text())
            .filter_map(|(_, s)| {
                let (a, b) = s.split_once(':')?;
                (a == t.to_string()).then(|| b.parse().ok())?
            })
            .collect();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }
    rec.shutdown().await.unwrap();
}

#[tokio::test]
async fn manager_resumes_in_place_forks_lists_and_removes() {
    let home = tempfile::tempdir().unwrap();
    let cfg = config(home.path());
    let manager = ConversationManager::new(cfg.clone());

    let new = manager.new_session(&cfg).await.unwrap();
    assert_eq!(new.initial_history, InitialHistory::New);
    let conv = new.conversation;
    let id = conv.id();
    let items = vec![
        ResponseItem::user_text("<environment_context>cwd</environment_context>"),
        ResponseItem::user_text("first"),
        ResponseItem::assistant_text("a1"),
        ResponseItem::user_text("second"),
        ResponseItem::assistant_text("a2"),
    ];
    conv.record_items(&items).await.unwrap();
    conv.record_state(StateSnapshot {
        previous_response_id: Some("r9".into()),
        data: json!(null),
    })
    .await
    .unwrap();
    assert_eq!(conv.history(), items);
    assert!(Arc::ptr_eq(&manager.get(id).await.unwrap(), &conv));

    // `list` reads the files: flush so the writer thread has written them.
    conv.recorder().flush().await.unwrap();
    let list = manager.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].conversation_id, id.to_string());
    assert_eq!(list[0].preview.as_deref(), Some("first"));

    // Fork: drop the last prompt; the prefix is copied into a new session.
    let fork = manager.fork(id, conv.history(), 1, &cfg).await.unwrap();
    assert_eq!(
        fork.initial_history,
        InitialHistory::Forked(items[..3].to_vec())
    );
    let fork_id = fork.conversation.id();
    assert_ne!(fork_id, id);
    fork.conversation.recorder().flush().await.unwrap();
    let forked = load(fork.conversation.path()).unwrap();
    assert_eq!(forked.items, items[..3].to_vec());
    // Lineage: the fork's session_meta names its parent, and the catalog's
    // reader reports it.
    assert_eq!(
        forked.meta.extra.get(FORKED_FROM_ID),
        Some(&json!(id.to_string()))
    );
    let mut reader = FileReader::new(Agent::Codex);
    reader.feed(&std::fs::read(fork.conversation.path()).unwrap());
    assert_eq!(
        reader.state().facts.forked_from.as_deref(),
        Some(id.to_string().as_str())
    );
    let gone = manager.fork(id, conv.history(), 5, &cfg).await.unwrap();
    assert_eq!(gone.initial_history, InitialHistory::New);
    assert!(gone.conversation.history().is_empty());
    gone.conversation.recorder().flush().await.unwrap();

    // Remove, shut down, resume by id: same file, same id, history intact.
    let path = conv.path().to_path_buf();
    let removed = manager.remove(id).await.unwrap();
    assert!(manager.get(id).await.is_none());
    removed.recorder().shutdown().await.unwrap();
    drop((removed, conv));
    let resumed = manager.resume(id).await.unwrap();
    assert_eq!(
        resumed.initial_history,
        InitialHistory::Resumed {
            id,
            history: items.clone(),
            path: path.clone()
        }
    );
    assert_eq!(
        resumed
            .conversation
            .state()
            .unwrap()
            .previous_response_id
            .as_deref(),
        Some("r9")
    );
    resumed
        .conversation
        .record_items(&[ResponseItem::user_text("third")])
        .await
        .unwrap();
    resumed.conversation.recorder().flush().await.unwrap();
    assert_eq!(load(&path).unwrap().prompt_count(), 3);
    let ids: Vec<String> = manager
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.conversation_id)
        .collect();
    assert_eq!(ids.len(), 3, "no duplicate session after resume: {ids:?}");
    assert!(ids.contains(&id.to_string()) && ids.contains(&fork_id.to_string()));

    let missing = manager.resume(uuid::Uuid::now_v7()).await.unwrap_err();
    assert!(matches!(missing, RecordError::NotFound { .. }), "{missing}");
}

#[tokio::test]
async fn persistence_collects_the_session_in_its_directory() {
    use tracing_subscriber::prelude::*;
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let router = SessionLogRouter::new();
    let mut cfg = config(home.path());
    cfg.persistence = Some(data.path().to_path_buf());
    cfg.log_router = Some(router.clone());
    let warnings = Warnings::default();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(router.layer())
            .with(warnings.clone()),
    );

    let rec = Recorder::create(&cfg).await.unwrap();
    let dir = rec.session_dir().expect("session dir").clone();
    assert_eq!(
        dir.path(),
        data.path().join("sessions").join(rec.id().to_string())
    );
    tracing::info!(session_id = %rec.id(), "turn started");
    rec.record_items(&[ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: vec![ContentItem::InputText { text: "x".into() }],
    }])
    .await
    .unwrap();
    rec.shutdown().await.unwrap();

    let link = dir.path().join(TRANSCRIPT_FILE);
    assert_eq!(std::fs::read_link(&link).unwrap(), rec.path());
    assert_eq!(load(&link).unwrap().items.len(), 1);
    let log = std::fs::read_to_string(dir.path().join(SESSION_LOG_FILE)).unwrap();
    assert!(log.contains("turn started"), "{log}");

    // Persistence off: the Codex home holds only the rollout and its lock,
    // and no session directory appears anywhere.
    let home2 = tempfile::tempdir().unwrap();
    let rec2 = Recorder::create(&config(home2.path())).await.unwrap();
    assert!(rec2.session_dir().is_none());
    rec2.shutdown().await.unwrap();
    let top: Vec<String> = std::fs::read_dir(home2.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        top.iter().all(|n| n == SESSIONS_SUBDIR || n == LOCK_DIR),
        "{top:?}"
    );
    let id2 = rec2.id().to_string();
    for root in [home2.path(), data.path(), Path::new(".")] {
        let dirs: Vec<_> = walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_dir() && e.file_name() == id2.as_str())
            .collect();
        assert!(dirs.is_empty(), "session directory created: {dirs:?}");
    }
    assert!(warnings.take().is_empty(), "no warning so far");

    // Unusable data dir: one warning, default locations, recording works.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("sessions"), b"").unwrap();
    let mut cfg3 = config(home.path());
    cfg3.persistence = Some(bad.path().to_path_buf());
    let rec3 = Recorder::create(&cfg3).await.unwrap();
    assert!(rec3.session_dir().is_none());
    rec3.record_items(&[ResponseItem::user_text("still works")])
        .await
        .unwrap();
    rec3.shutdown().await.unwrap();
    assert_eq!(load(rec3.path()).unwrap().items.len(), 1);
    let warned = warnings.take();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("session directory disabled")
            && warned[0].contains(&rec3.id().to_string()),
        "{warned:?}"
    );
}

/// A tracing layer collecting every WARN event as text (message and fields).
#[derive(Clone, Default)]
struct Warnings(Arc<std::sync::Mutex<Vec<String>>>);

impl Warnings {
    /// The warnings collected so far; clears them.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = Text(String::new());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
}

fn any_item() -> impl Strategy<Value = ResponseItem> {
    let text = "\\PC{0,40}|[\"\\\\\n\t{}]{0,8}";
    prop_oneof![
        text.prop_map(ResponseItem::user_text),
        text.prop_map(ResponseItem::assistant_text),
        (text, text, "[a-z0-9_]{1,12}").prop_map(|(name, arguments, call_id)| {
            ResponseItem::FunctionCall {
                id: None,
                name,
                arguments,
                call_id,
            }
        }),
        (text, "[a-z0-9_]{1,12}")
            .prop_map(|(output, call_id)| ResponseItem::FunctionCallOutput { call_id, output }),
        text.prop_map(|t| ResponseItem::Other(json!({"type": "reasoning", "summary": [t]}))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn whatever_is_recorded_loads_back_identically(
        batches in prop::collection::vec(prop::collection::vec(any_item(), 0..6), 0..6),
        policy in prop_oneof![Just(Durability::Buffered), Just(Durability::Flush), Just(Durability::Fsync)],
        torn in prop::option::of("[a-z{\":]{1,20}"),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let home = tempfile::tempdir().unwrap();
        let mut cfg = config(home.path());
        cfg.durability = policy;
        let expected: Vec<ResponseItem> = batches.iter().flatten().cloned().collect();
        let path = rt.block_on(async {
            let rec = Recorder::create(&cfg).await.unwrap();
            for b in &batches {
                rec.record_items(b).await.unwrap();
            }
            rec.shutdown().await.unwrap();
            rec.path().to_path_buf()
        });
        if let Some(t) = &torn {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(t.as_bytes()).unwrap();
        }
        let loaded = load(&path).unwrap();
        prop_assert_eq!(&loaded.items, &expected);
        // Resume + append: the torn fragment never corrupts the next record.
        rt.block_on(async {
            let (rec, _) = Recorder::resume(&cfg, &path).await.unwrap();
            rec.record_items(&[ResponseItem::user_text("after")]).await.unwrap();
            rec.shutdown().await.unwrap();
        });
        let again = load(&path).unwrap();
        let mut want = expected;
        want.push(ResponseItem::user_text("after"));
        prop_assert_eq!(again.items, want);
        prop_assert!(!again.torn_tail);
    }
}
