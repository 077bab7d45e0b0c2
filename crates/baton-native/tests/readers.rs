//! Reader behaviour on the real fixture transcripts and on bad input.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::{
    Agent, FileReader, Message, MessageKind, NativeFile, ReaderState, Role, claude, codex,
    discover_claude, discover_codex, read_native,
};
use proptest::prelude::*;
use serde_json::Value;

use baton_testkit::fixtures_dir as fixtures;

struct Manifest {
    agent: Agent,
    id: String,
    cwd: String,
    prompts: Vec<String>,
    forked_from: Option<String>,
    tool_output: Option<String>,
}

fn manifest() -> Vec<Manifest> {
    std::fs::read_to_string(fixtures().join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            Manifest {
                agent: s("agent").unwrap().parse().unwrap(),
                id: s("id").unwrap(),
                cwd: s("cwd").unwrap(),
                prompts: v["prompts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_owned())
                    .collect(),
                forked_from: s("forked_from"),
                tool_output: s("tool_output"),
            }
        })
        .collect()
}

fn all_files() -> Vec<NativeFile> {
    let mut files = Vec::new();
    for home in ["codex", "codex-legacy"] {
        let (f, issues) = discover_codex(&fixtures().join(home));
        assert!(issues.is_empty(), "{issues:?}");
        files.extend(f);
    }
    let (f, issues) = discover_claude(&fixtures().join("claude/.claude"));
    assert!(issues.is_empty(), "{issues:?}");
    files.extend(f);
    files
}

fn read_whole(file: &NativeFile) -> (FileReader, Vec<Message>) {
    let bytes = read_native(file, 0).unwrap();
    let mut r = FileReader::new(file.agent);
    let chunk = r.feed(&bytes);
    assert!(chunk.issues.is_empty(), "{:?}", chunk.issues);
    assert_eq!(r.state().consumed, bytes.len() as u64);
    (r, chunk.messages)
}

fn prompts(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.kind == MessageKind::Prompt)
        .map(|m| m.text.clone())
        .collect()
}

fn file_for<'a>(files: &'a [NativeFile], id: &str) -> &'a NativeFile {
    files
        .iter()
        .find(|f| f.id_hint.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no file for {id}"))
}

#[test]
fn discovers_every_manifest_session() {
    let files = all_files();
    assert_eq!(files.len(), 7);
    for m in manifest() {
        let f = file_for(&files, &m.id);
        assert_eq!(f.agent, m.agent);
        assert!(!f.compressed);
        assert_eq!(f.sidechain_of, None);
    }
}

#[test]
fn every_manifest_session_reads_correctly() {
    let files = all_files();
    for m in manifest() {
        let f = file_for(&files, &m.id);
        let (r, msgs) = read_whole(f);
        let facts = &r.state().facts;
        assert_eq!(r.state().agent, m.agent);
        assert_eq!(facts.id.as_deref(), Some(m.id.as_str()), "{}", m.id);
        assert_eq!(facts.cwd.as_deref(), Some(m.cwd.as_str()));
        assert_eq!(facts.latest_cwd.as_deref(), Some(m.cwd.as_str()));
        assert_eq!(facts.message_count, msgs.len() as u64);
        let got = prompts(&msgs);
        assert_eq!(facts.user_turns, got.len() as u64);
        let expected: Vec<String> = if m.id.starts_with("01a1ff8d-9126") {
            // A paginated fork holds only its own prompts; the parent prefix
            // is referenced through history_base.
            vec!["pub fork prompt gamma".to_owned()]
        } else {
            m.prompts.clone()
        };
        assert_eq!(got, expected, "{}", m.id);
        assert_eq!(facts.first_prompt.as_deref(), Some(expected[0].as_str()));
        assert!(facts.started_at.is_some() && facts.updated_at.is_some());
        assert!(facts.started_at <= facts.updated_at);
        assert!(facts.model.is_some(), "{}", m.id);
        assert_eq!(facts.sidechain_of, None);
        // The fork back-pointer: explicit for Codex, inferred for Claude.
        let parent = match m.agent {
            Agent::Codex => &facts.forked_from,
            Agent::Claude => &facts.fork_hint,
        };
        assert_eq!(parent, &m.forked_from, "{}", m.id);

        if let Some(out) = &m.tool_output {
            let result = msgs
                .iter()
                .find(|x| x.kind == MessageKind::ToolResult && x.text.contains(out.as_str()))
                .unwrap_or_else(|| panic!("{}: no tool_result with {out}", m.id));
            assert_eq!(result.role, Role::Tool);
            let call = msgs
                .iter()
                .find(|x| x.kind == MessageKind::ToolCall && x.call_id == result.call_id)
                .expect("paired tool_call");
            assert!(call.call_id.is_some());
            assert!(call.tool_name.is_some());
            assert_eq!(call.tool_name, result.tool_name);
            assert!(call.text.contains("echo"), "{}", call.text);
            assert!(r.state().pending_calls.is_empty());
        }
        if m.agent == Agent::Codex {
            let legacy = m.id.starts_with("01a1ff8d-92a0");
            assert_eq!(r.state().facts.paginated, !legacy);
            assert_eq!(r.state().facts.last_ordinal.is_some(), !legacy);
            // Messages carry the native line offsets, in file order.
            assert!(msgs.windows(2).all(|w| w[0].offset <= w[1].offset));
            assert!(msgs.iter().all(|x| x.uuid.is_none()));
        }
    }
}

#[test]
fn codex_fork_facts() {
    let files = all_files();
    let f = file_for(&files, "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b");
    let (r, _) = read_whole(f);
    let facts = &r.state().facts;
    let parent = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    assert_eq!(facts.forked_from.as_deref(), Some(parent));
    let hb = facts.history_base.as_ref().unwrap();
    assert_eq!(hb.thread_id, parent);
    assert_eq!(hb.end_ordinal_exclusive, 39);
    assert_eq!(hb.end_byte_offset, 51158);
    assert_eq!(facts.last_ordinal, Some(50));
    assert_eq!(
        facts.started_at.as_deref(),
        Some("2026-11-21T19:20:30.249Z")
    );
    // The parent file is exactly as long as the referenced prefix.
    let parent_len = std::fs::metadata(&file_for(&files, parent).path)
        .unwrap()
        .len();
    assert_eq!(parent_len, hb.end_byte_offset);
    let (pr, _) = read_whole(file_for(&files, parent));
    assert_eq!(pr.state().facts.last_ordinal, Some(38));
    assert_eq!(pr.state().facts.forked_from, None);
    assert_eq!(pr.state().facts.model.as_deref(), Some("gpt-5"));
}

#[test]
fn codex_message_mapping() {
    let files = all_files();
    let (_, msgs) = read_whole(file_for(&files, "01a1ff8d-8c3d-7551-b270-db431e8a8997"));
    let kinds: Vec<(Role, MessageKind)> = msgs.iter().map(|m| (m.role, m.kind)).collect();
    use MessageKind::*;
    assert_eq!(
        kinds[..6],
        [
            (Role::System, Context),
            (Role::User, Context),
            (Role::User, Prompt),
            (Role::Assistant, ToolCall),
            (Role::Tool, ToolResult),
            (Role::Assistant, Reply),
        ]
    );
    assert!(msgs[1].text.starts_with("<environment_context>"));
    assert_eq!(msgs[3].tool_name.as_deref(), Some("exec_command"));
    assert_eq!(msgs[3].call_id.as_deref(), Some("call_2"));
    assert_eq!(msgs[3].text, r#"{"cmd": "echo pub-tool-output-beta"}"#);
    assert_eq!(msgs[5].text, "ECHO[2]: RUN: echo pub-tool-output-beta");
    assert_eq!(
        msgs[2].timestamp.as_deref().map(|t| t.ends_with('Z')),
        Some(true)
    );
    assert_eq!(msgs.len(), 10);
}

#[test]
fn claude_fork_and_chain() {
    let files = all_files();
    let parent_id = "24618527-ae46-4f6d-902b-96792270f328";
    let (pr, pmsgs) = read_whole(file_for(&files, parent_id));
    let (fr, fmsgs) = read_whole(file_for(&files, "f941a4bf-28d9-46f3-adde-1c9978a0988d"));
    let (pf, ff) = (&pr.state().facts, &fr.state().facts);
    assert_eq!(ff.fork_hint.as_deref(), Some(parent_id));
    assert_eq!(pf.fork_hint, None);
    assert!(ff.first_uuid.is_some());
    assert_eq!(ff.first_uuid, pf.first_uuid);
    assert_eq!(pf.model.as_deref(), Some("claude-opus-5-5"));
    assert_eq!(pf.git_branch.as_deref(), Some("HEAD"));
    assert_eq!(ff.forked_from, None);
    // The earliest record is the queue-operation that preceded the prompt.
    assert_eq!(pf.started_at.as_deref(), Some("2026-11-21T19:20:31.934Z"));

    // Message parents skip attachments: the first reply's parent is the prompt.
    let call = pmsgs
        .iter()
        .find(|m| m.kind == MessageKind::ToolCall)
        .unwrap();
    assert_eq!(call.parent_uuid, pmsgs[0].uuid);
    assert_eq!(pmsgs[0].parent_uuid, None);
    let reply = pmsgs.iter().find(|m| m.kind == MessageKind::Reply).unwrap();
    let result = pmsgs
        .iter()
        .find(|m| m.kind == MessageKind::ToolResult)
        .unwrap();
    assert_eq!(reply.parent_uuid, result.uuid);

    for msgs in [&pmsgs, &fmsgs] {
        let order = claude::chain_order(msgs);
        assert_eq!(order, (0..msgs.len()).collect::<Vec<_>>());
    }
    // Concatenating parent and fork: the leaf is the fork's newest reply and
    // the walk stays within one copy of each uuid.
    let mut both = pmsgs.clone();
    both.extend(fmsgs.iter().cloned());
    let order = claude::chain_order(&both);
    let last = &both[*order.last().unwrap()];
    assert_eq!(last.text, "ECHO[3]: pub claude fork eta");
}

#[test]
fn chain_order_picks_newest_branch_and_survives_cycles() {
    let msg = |uuid: &str, parent: Option<&str>, ts: &str| Message {
        role: Role::User,
        kind: MessageKind::Prompt,
        text: uuid.to_owned(),
        tool_name: None,
        call_id: None,
        timestamp: Some(ts.to_owned()),
        offset: 0,
        uuid: Some(uuid.to_owned()),
        parent_uuid: parent.map(str::to_owned),
    };
    let msgs = vec![
        msg("a", None, "2026-01-01T00:00:00.000Z"),
        msg("b", Some("a"), "2026-01-01T00:00:01.000Z"),
        msg("c", Some("a"), "2026-01-01T00:00:03.000Z"),
        msg("d", Some("b"), "2026-01-01T00:00:02.000Z"),
    ];
    assert_eq!(claude::chain_order(&msgs), vec![0, 2]);
    let cyc = vec![
        msg("x", Some("y"), "2026-01-01T00:00:00Z"),
        msg("y", Some("x"), "2026-01-01T00:00:01Z"),
        msg("z", Some("y"), "2026-01-01T00:00:02Z"),
    ];
    assert_eq!(claude::chain_order(&cyc), vec![0, 1, 2]);
    assert!(claude::chain_order(&cyc[..2]).is_empty());
    assert!(claude::chain_order(&[]).is_empty());
}

#[test]
fn is_typed_prompt_matches_reader() {
    for f in all_files() {
        let bytes = std::fs::read(&f.path).unwrap();
        let (_, msgs) = read_whole(&f);
        let mut offset = 0u64;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let v: Value = serde_json::from_slice(line).unwrap();
            let typed = match f.agent {
                Agent::Codex => codex::is_typed_prompt(&v),
                Agent::Claude => claude::is_typed_prompt(&v),
            };
            let emitted = msgs
                .iter()
                .any(|m| m.offset == offset && m.kind == MessageKind::Prompt);
            assert_eq!(typed, emitted, "{}:{offset}", f.path.display());
            offset += line.len() as u64;
        }
    }
}

#[test]
fn codex_typed_prompt_rule() {
    let line = |payload: Value, metadata: Option<Value>| {
        let mut v = serde_json::json!({"type": "response_item", "payload": payload});
        if let Some(m) = metadata {
            v["metadata"] = m;
        }
        v
    };
    let user = |text: &str| serde_json::json!({"type":"message","role":"user","content":[{"type":"input_text","text":text}]});
    assert!(codex::is_typed_prompt(&line(user("hi"), None)));
    assert!(!codex::is_typed_prompt(&line(
        user("<environment_context>x"),
        None
    )));
    assert!(!codex::is_typed_prompt(&line(
        user("  # AGENTS.md\nx"),
        None
    )));
    assert!(!codex::is_typed_prompt(&line(user(""), None)));
    assert!(!codex::is_typed_prompt(&line(
        user("hi"),
        Some(serde_json::json!({}))
    )));
    assert!(codex::is_typed_prompt(&line(
        user("<environment_context>"),
        Some(serde_json::json!({"user_input_order": 3}))
    )));
    let mut p = user("hi");
    p["internal_chat_message_metadata_passthrough"] =
        serde_json::json!({"content_item_kinds": ["environments.environment_context"]});
    assert!(!codex::is_typed_prompt(&line(
        p,
        Some(serde_json::json!({"user_input_order": 3}))
    )));
    let mut dev = user("hi");
    dev["role"] = "developer".into();
    assert!(!codex::is_typed_prompt(&line(dev, None)));
}

#[test]
fn claude_typed_prompt_rule() {
    let rec = |content: Value, extra: Value| {
        let mut v = serde_json::json!({"type":"user","uuid":"u1","message":{"role":"user","content":content}});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let none = serde_json::json!({});
    assert!(claude::is_typed_prompt(&rec("hello".into(), none.clone())));
    assert!(!claude::is_typed_prompt(&rec(
        "hello".into(),
        serde_json::json!({"isMeta": true})
    )));
    assert!(!claude::is_typed_prompt(&rec(
        "x".into(),
        serde_json::json!({"isCompactSummary": true})
    )));
    for harness in [
        "<system-reminder>x</system-reminder>",
        "<command-name>/clear</command-name>",
        "<local-command-stdout></local-command-stdout>",
        "<command-message>m</command-message>",
    ] {
        assert!(!claude::is_typed_prompt(&rec(harness.into(), none.clone())));
    }
    let blocks = serde_json::json!([
        {"type":"tool_result","tool_use_id":"t","content":"out"},
        {"type":"text","text":"<system-reminder>r</system-reminder>"}
    ]);
    assert!(!claude::is_typed_prompt(&rec(blocks.clone(), none.clone())));
    let mut typed = blocks.clone();
    typed
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type":"text","text":"do it"}));
    assert!(claude::is_typed_prompt(&rec(typed.clone(), none.clone())));

    // The reader splits such a record into result, prompt and context.
    let line = format!("{}\n", rec(typed, none));
    let mut r = FileReader::new(Agent::Claude);
    let msgs = r.feed(line.as_bytes()).messages;
    let kinds: Vec<_> = msgs.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            MessageKind::ToolResult,
            MessageKind::Prompt,
            MessageKind::Context
        ]
    );
    assert_eq!(msgs[1].text, "do it");
    assert_eq!(r.state().facts.user_turns, 1);
}

#[test]
fn claude_titles_sidechains_and_compaction() {
    let lines = [
        r#"{"type":"summary","summary":"S","leafUuid":"x"}"#,
        r#"{"type":"ai-title","aiTitle":"AI","sessionId":"p"}"#,
        r#"{"type":"custom-title","customTitle":"Mine","sessionId":"p"}"#,
        r#"{"type":"ai-title","aiTitle":"AI2","sessionId":"p"}"#,
        r#"{"type":"user","uuid":"u1","parentUuid":null,"isSidechain":true,"agentId":"ag1","sessionId":"p","timestamp":"2026-01-01T00:00:00Z","message":{"role":"user","content":"task"}}"#,
        r#"{"type":"attachment","uuid":"a1","parentUuid":"u1","isSidechain":true,"sessionId":"p","attachment":{"type":"x"}}"#,
        r#"{"type":"system","subtype":"compact_boundary","uuid":"s1","parentUuid":null,"logicalParentUuid":"a1","content":"Conversation compacted","isSidechain":true,"sessionId":"p"}"#,
        r#"{"type":"assistant","uuid":"b1","parentUuid":"s1","isSidechain":true,"sessionId":"p","message":{"model":"<synthetic>","content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"ok"}]}}"#,
        r#"{"type":"user","uuid":"c1","parentUuid":"b1","isCompactSummary":true,"isSidechain":true,"sessionId":"p","message":{"role":"user","content":"This session is being continued"}}"#,
    ];
    let bytes = lines.join("\n") + "\n";
    let mut r = FileReader::new(Agent::Claude);
    let chunk = r.feed(bytes.as_bytes());
    assert!(chunk.issues.is_empty(), "{:?}", chunk.issues);
    let f = &r.state().facts;
    assert_eq!(f.title.as_deref(), Some("Mine"));
    assert_eq!(f.sidechain_of.as_deref(), Some("p"));
    assert_eq!(f.id.as_deref(), Some("ag1"));
    assert_eq!(f.model, None);
    let m = &chunk.messages;
    assert_eq!(m.len(), 5);
    assert_eq!((m[1].kind, m[1].role), (MessageKind::Other, Role::System));
    // The boundary bridges logicalParentUuid through the attachment.
    assert_eq!(m[1].parent_uuid.as_deref(), Some("u1"));
    assert_eq!(m[2].kind, MessageKind::Other);
    assert_eq!(m[3].kind, MessageKind::Reply);
    assert_eq!(m[4].kind, MessageKind::Context);
    assert_eq!(f.user_turns, 1);
    assert_eq!(claude::chain_order(m), vec![0, 1, 2, 3, 4]);
}

#[test]
fn codex_other_items_and_later_session_meta() {
    let lines = [
        r#"{"timestamp":"2026-01-01T00:00:00.000Z","type":"session_meta","payload":{"id":"t1","cwd":"/a","timestamp":"2025-12-31T23:59:59.000Z","git":{"branch":"main"}}}"#,
        r#"{"timestamp":"2026-01-01T00:00:01.000Z","type":"session_meta","payload":{"id":"parent","cwd":"/p","git":{"branch":"other"}}}"#,
        r#"{"timestamp":"2026-01-01T00:00:02.000Z","type":"response_item","payload":{"type":"custom_tool_call","name":"apply_patch","input":"*** Begin","call_id":"c1"}}"#,
        r#"{"timestamp":"2026-01-01T00:00:03.000Z","type":"response_item","payload":{"type":"custom_tool_call_output","call_id":"c1","output":{"content":"done"}}}"#,
        r#"{"timestamp":"2026-01-01T00:00:04.000Z","type":"response_item","payload":{"type":"local_shell_call","call_id":"c2","action":{"type":"exec","command":["ls"]}}}"#,
        r#"{"timestamp":"2026-01-01T00:00:05.000Z","type":"response_item","payload":{"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"a"},{"type":"input_text","text":"b"}]}}"#,
        r#"{"timestamp":"2026-01-01T00:00:06.000Z","type":"response_item","payload":{"type":"reasoning","summary":[{"type":"summary_text","text":"thinking"}],"encrypted_content":"xx"}}"#,
        r#"{"timestamp":"2026-01-01T00:00:07.000Z","type":"response_item","payload":{"type":"reasoning","summary":[],"encrypted_content":"xx"}}"#,
        r#"{"timestamp":"2026-01-01T00:00:08.000Z","type":"compacted","payload":{"message":"summary","replacement_history":[]}}"#,
        r#"{"timestamp":"2026-01-01T00:00:09.000Z","type":"turn_context","payload":{"cwd":"/b","model":"m2","summary":"auto"}}"#,
        r#"{"timestamp":"2026-01-01T00:00:10.000Z","type":"future_kind","payload":{"anything":[1,2,{"x":null}]}}"#,
        r#"{"timestamp":"2026-01-01T00:00:11.000Z","type":"response_item","payload":{"type":"message","role":42,"content":"odd"}}"#,
    ];
    let bytes = lines.join("\n") + "\n";
    let mut r = FileReader::new(Agent::Codex);
    let chunk = r.feed(bytes.as_bytes());
    assert!(chunk.issues.is_empty(), "{:?}", chunk.issues);
    let f = &r.state().facts;
    assert_eq!(f.id.as_deref(), Some("t1"));
    assert_eq!(f.cwd.as_deref(), Some("/a"));
    assert_eq!(f.latest_cwd.as_deref(), Some("/b"));
    assert_eq!(f.git_branch.as_deref(), Some("main"));
    assert_eq!(f.model.as_deref(), Some("m2"));
    assert_eq!(f.started_at.as_deref(), Some("2025-12-31T23:59:59.000Z"));
    assert_eq!(f.updated_at.as_deref(), Some("2026-01-01T00:00:11.000Z"));
    assert!(!f.paginated);
    let m = &chunk.messages;
    let summary: Vec<_> = m
        .iter()
        .map(|m| (m.kind, m.tool_name.as_deref(), m.text.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (MessageKind::ToolCall, Some("apply_patch"), "*** Begin"),
            (MessageKind::ToolResult, Some("apply_patch"), "done"),
            (
                MessageKind::ToolCall,
                Some("local_shell"),
                r#"{"type":"exec","command":["ls"]}"#
            ),
            (MessageKind::ToolResult, Some("local_shell"), "a\nb"),
            (MessageKind::Other, None, "thinking"),
            (MessageKind::Other, None, "summary"),
        ]
    );
}

fn fixture_bytes() -> Vec<(Agent, Vec<u8>)> {
    all_files()
        .iter()
        .map(|f| (f.agent, read_native(f, 0).unwrap()))
        .collect()
}

fn feed_in_pieces(agent: Agent, bytes: &[u8], cuts: &[usize]) -> (ReaderState, Vec<Message>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut r = FileReader::new(agent);
    let mut msgs = Vec::new();
    for cut in cuts {
        let from = r.state().consumed as usize;
        if cut < from {
            continue;
        }
        // Persist and resume the state between calls, as the catalog does.
        let saved = serde_json::to_string(r.state()).unwrap();
        r = FileReader::resume(serde_json::from_str(&saved).unwrap());
        let chunk = r.feed(&bytes[from..cut]);
        assert!(chunk.issues.is_empty());
        assert!(r.state().consumed == 0 || bytes[r.state().consumed as usize - 1] == b'\n');
        msgs.extend(chunk.messages);
    }
    (r.state().clone(), msgs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn incremental_equals_whole(which in 0usize..7, cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let (agent, bytes) = fixture_bytes().swap_remove(which);
        let mut whole = FileReader::new(agent);
        let all = whole.feed(&bytes).messages;
        let (state, msgs) = feed_in_pieces(agent, &bytes, &cuts);
        prop_assert_eq!(&msgs, &all);
        prop_assert_eq!(&state, whole.state());
    }

    #[test]
    fn random_bytes_never_panic(agent_is_codex: bool, bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let agent = if agent_is_codex { Agent::Codex } else { Agent::Claude };
        let mut r = FileReader::new(agent);
        let chunk = r.feed(&bytes);
        let consumed = r.state().consumed as usize;
        prop_assert!(consumed <= bytes.len());
        prop_assert!(consumed == 0 || bytes[consumed - 1] == b'\n');
        for i in &chunk.issues {
            prop_assert!(i.line >= 1 && i.line <= r.state().lines);
        }
    }

    #[test]
    fn json_shaped_noise_never_panics(agent_is_codex: bool, lines in proptest::collection::vec("\\{(\"(type|payload|message|content|uuid|parentUuid|role|summary|output|timestamp)\":(\"[a-z_]{0,8}\"|\\[\\]|\\{\\}|null|1|true|\\[\\{\"type\":\"(text|tool_use|tool_result|message|input_text)\"\\}\\]),?){0,6}\\}", 0..20)) {
        let agent = if agent_is_codex { Agent::Codex } else { Agent::Claude };
        let bytes = lines.join("\n") + "\n";
        let mut r = FileReader::new(agent);
        let _ = r.feed(bytes.as_bytes());
        prop_assert_eq!(r.state().consumed, bytes.len() as u64);
    }
}

#[test]
fn torn_tail_is_not_consumed_until_completed() {
    for (agent, bytes) in fixture_bytes() {
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        let mut r = FileReader::new(agent);
        let first = r.feed(&bytes[..bytes.len() - 1]);
        assert!(first.issues.is_empty());
        assert_eq!(r.state().consumed, last_start as u64);
        // Feeding the torn fragment again (still incomplete) changes nothing.
        let again = r.feed(&bytes[last_start..bytes.len() - 1]);
        assert!(again.messages.is_empty() && again.issues.is_empty());
        assert_eq!(r.state().consumed, last_start as u64);
        let rest = r.feed(&bytes[last_start..]);
        assert!(rest.issues.is_empty());
        assert_eq!(r.state().consumed, bytes.len() as u64);
        let mut whole = FileReader::new(agent);
        let all = whole.feed(&bytes).messages;
        assert_eq!(first.messages.len() + rest.messages.len(), all.len());
        assert_eq!(r.state(), whole.state());
    }
}

#[test]
fn bad_lines_are_reported_and_skipped() {
    let files = all_files();
    let good =
        std::fs::read(&file_for(&files, "01a1ff8d-92a0-7a03-a86a-e8bbc574818c").path).unwrap();
    let lines: Vec<&[u8]> = good.split_inclusive(|&b| b == b'\n').collect();
    let mut bad = b"\xEF\xBB\xBF".to_vec();
    bad.extend_from_slice(lines[0]); // line 1, after the BOM
    bad.extend_from_slice(b"{\"timestamp\":\"2026-11-21T19:20:3\n"); // 2: truncated
    bad.extend_from_slice(b"\x00\x01garbage\xFE\n"); // 3: garbage
    bad.extend_from_slice(b"\n"); // 4: blank
    bad.extend_from_slice(b"{\"type\":\"event_msg\",\"payload\":\"\xC3\x28\"}\n"); // 5: bad UTF-8
    bad.extend_from_slice(b"[1,2]\n"); // 6: not an object
    for l in &lines[1..] {
        bad.extend_from_slice(l);
    }
    bad.extend_from_slice(b"{\"type\":\"respon"); // torn tail
    let mut r = FileReader::new(Agent::Codex);
    let chunk = r.feed(&bad);
    let issue_lines: Vec<u64> = chunk.issues.iter().map(|i| i.line).collect();
    assert_eq!(issue_lines, [2, 3, 5, 6]);
    assert!(
        chunk.issues[0].message.starts_with("invalid JSON"),
        "{:?}",
        chunk.issues[0]
    );
    assert!(
        chunk.issues[1].message.contains("UTF-8"),
        "{:?}",
        chunk.issues[1]
    );
    assert!(chunk.issues[2].message.contains("UTF-8"));
    assert_eq!(
        chunk.issues[3].message,
        "not a JSON object (found an array)"
    );
    assert_eq!(chunk.issues[0].offset, 3 + lines[0].len() as u64);
    let prompts = prompts(&chunk.messages);
    assert_eq!(
        prompts,
        ["pub legacy prompt delta", "pub legacy second delta"]
    );
    assert_eq!(
        r.state().facts.id.as_deref(),
        Some("01a1ff8d-92a0-7a03-a86a-e8bbc574818c")
    );
    assert_eq!(r.state().lines, 6 + lines.len() as u64 - 1);
    assert_eq!(r.state().consumed, bad.len() as u64 - 15);

    let mut empty = FileReader::new(Agent::Claude);
    let chunk = empty.feed(b"");
    assert!(chunk.messages.is_empty() && chunk.issues.is_empty());
    assert_eq!(empty.state().consumed, 0);
    assert_eq!(empty.state().facts, Default::default());
}

#[test]
fn discovery_layouts_and_compressed_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("codex");
    let src = std::fs::read(&file_for(&all_files(), "01a1ff8d-8a8a-7740-8c02-49607e66ddfa").path)
        .unwrap();
    let day = home.join("sessions/2026/11/21");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::create_dir_all(home.join("archived_sessions/nested")).unwrap();
    let a = "01a1ff8d-8a8a-7740-8c02-49607e66ddfa";
    let b = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    let c = "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b";
    let zst = zstd::encode_all(&src[..], 3).unwrap();
    std::fs::write(
        day.join(format!("rollout-2026-11-21T19-20-28-{a}.jsonl")),
        &src,
    )
    .unwrap();
    std::fs::write(
        day.join(format!("rollout-2026-11-21T19-20-28-{a}.jsonl.zst")),
        &zst,
    )
    .unwrap();
    std::fs::write(
        day.join(format!("rollout-2026-11-21T19-20-29-{b}.jsonl.zst")),
        &zst,
    )
    .unwrap();
    std::fs::write(
        day.join(format!("rollout-2026-11-21T19-20-29-{b}_{c}.jsonl")),
        &src,
    )
    .unwrap();
    std::fs::write(day.join("notes.txt"), "x").unwrap();
    std::fs::write(
        home.join(format!(
            "archived_sessions/rollout-2026-01-01T00-00-00-{c}.jsonl"
        )),
        &src,
    )
    .unwrap();
    std::fs::write(
        home.join(format!(
            "archived_sessions/nested/rollout-2026-01-01T00-00-00-{a}.jsonl"
        )),
        &src,
    )
    .unwrap();
    let (files, issues) = discover_codex(&home);
    assert!(issues.is_empty(), "{issues:?}");
    let got: Vec<(String, Option<&str>, bool)> = files
        .iter()
        .map(|f| {
            let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
            (name, f.id_hint.as_deref(), f.compressed)
        })
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got.iter()
            .any(|g| g.0.ends_with(&format!("{a}.jsonl")) && !g.2)
    );
    assert!(!got.iter().any(|g| g.0.ends_with(&format!("{a}.jsonl.zst"))));
    assert!(got.iter().any(|g| g.1 == Some(b) && g.2));
    assert!(got.iter().any(|g| g.0.contains('_') && g.1 == Some(b)));
    assert!(
        got.iter()
            .any(|g| g.1 == Some(c) && g.0.starts_with("rollout-2026-01"))
    );

    let compressed = files.iter().find(|f| f.compressed).unwrap();
    assert_eq!(read_native(compressed, 0).unwrap(), src);
    assert_eq!(read_native(compressed, 1000).unwrap(), &src[1000..]);
    assert!(read_native(compressed, 1 << 40).unwrap().is_empty());
    let plain = files.iter().find(|f| !f.compressed).unwrap();
    assert_eq!(read_native(plain, 1000).unwrap(), &src[1000..]);
    assert!(read_native(plain, 1 << 40).unwrap().is_empty());
    let gone = NativeFile {
        path: tmp.path().join("gone.jsonl"),
        ..plain.clone()
    };
    assert!(read_native(&gone, 0).is_err());

    // Claude: sessions, subagents (new and old layouts), and non-transcripts.
    let claude = tmp.path().join("claude");
    let proj = claude.join("projects/-p");
    std::fs::create_dir_all(proj.join("s1/subagents")).unwrap();
    std::fs::create_dir_all(proj.join("memory")).unwrap();
    std::fs::create_dir_all(proj.join("s1/tool-results")).unwrap();
    std::fs::write(proj.join("s1.jsonl"), "{}\n").unwrap();
    std::fs::write(proj.join("s1/subagents/agent-abc.jsonl"), "{}\n").unwrap();
    std::fs::write(proj.join("s1/subagents/agent-abc.meta.json"), "{}").unwrap();
    std::fs::write(proj.join("s1/tool-results/x.txt"), "x").unwrap();
    std::fs::write(proj.join("memory/m.jsonl"), "{}\n").unwrap();
    std::fs::write(
        proj.join("agent-old.jsonl"),
        "{\"type\":\"mode\"}\n{\"type\":\"user\",\"isSidechain\":true,\"sessionId\":\"s0\"}\n",
    )
    .unwrap();
    let (files, issues) = discover_claude(&claude);
    assert!(issues.is_empty(), "{issues:?}");
    let got: Vec<(Option<&str>, Option<&str>)> = files
        .iter()
        .map(|f| (f.id_hint.as_deref(), f.sidechain_of.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("old"), Some("s0")),
            (Some("abc"), Some("s1")),
            (Some("s1"), None)
        ]
    );
    // Missing homes are not errors.
    assert_eq!(discover_claude(&tmp.path().join("none")), (vec![], vec![]));
    assert_eq!(discover_codex(&tmp.path().join("none")), (vec![], vec![]));
}

/// An unreadable directory is an issue, not an abort. Tests run as root,
/// which ignores permission bits, so the discovery then runs in a copy of this
/// test binary as `nobody` (`setpriv`); without setpriv it is skipped loudly.
#[cfg(unix)]
#[test]
fn unreadable_directories_are_issues() {
    use std::os::unix::fs::PermissionsExt;
    const PROBE: &str = "BATON_NATIVE_UNREADABLE_PROBE";
    if let Some(home) = std::env::var_os(PROBE) {
        // Child mode (as nobody): report what discovery saw.
        let (files, issues) = discover_codex(std::path::Path::new(&home));
        println!(
            "PROBE {}",
            serde_json::json!({"files": files.len(), "issues": issues})
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let locked = tmp.path().join("sessions/2026");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::write(
        tmp.path().join(
            "sessions/rollout-2026-01-01T00-00-00-01a1ff8d-8a8a-7740-8c02-49607e66ddfa.jsonl",
        ),
        "",
    )
    .unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let (files, issues) = if std::fs::read_dir(&locked).is_err() {
        let (f, i) = discover_codex(tmp.path());
        (f.len() as u64, i)
    } else {
        let setpriv = std::path::Path::new("/usr/bin/setpriv");
        if !setpriv.exists() {
            eprintln!(
                "SKIPPED unreadable_directories_are_issues: running as root without /usr/bin/setpriv, \
                 so permissions cannot be enforced"
            );
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
            return;
        }
        for dir in [tmp.path(), &tmp.path().join("sessions")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = std::process::Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "unreadable_directories_are_issues",
                "--nocapture",
            ])
            .env(PROBE, tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("PROBE "))
            .unwrap_or_else(|| {
                panic!(
                    "probe printed nothing: {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let v: Value = serde_json::from_str(line).unwrap();
        let issues = v["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect();
        (v["files"].as_u64().unwrap(), issues)
    };
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(files, 1);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].contains("sessions/2026"), "{issues:?}");
}

#[test]
fn thread_names_last_entry_wins() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(codex::read_thread_names(tmp.path()).is_empty());
    std::fs::write(
        tmp.path().join("session_index.jsonl"),
        "{\"id\":\"a\",\"thread_name\":\"one\",\"updated_at\":\"x\"}\nnot json\n{\"id\":\"b\",\"thread_name\":\"bee\"}\n{\"id\":\"a\",\"thread_name\":\"two\"}",
    )
    .unwrap();
    let names = codex::read_thread_names(tmp.path());
    assert_eq!(names.len(), 2);
    assert_eq!(names["a"], "two");
    assert_eq!(names["b"], "bee");
}
