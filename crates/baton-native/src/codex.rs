//! Codex CLI rollouts: legacy (0.58) and paginated (0.169) formats.
//!
//! Messages come from `response_item` lines only; `event_msg` UI twins are
//! not messages. Session facts come from `session_meta` (the first one wins),
//! `turn_context` and `event_msg/thread_settings_applied`.

pub mod config;

use crate::jsonl::Line;
use crate::jsonl::LineIssue;
use crate::lenient::{LMap, LSeq, LStr, LU64};
use crate::model::{HistoryBase, MessageKind, Role};
use crate::state::{Chunk, ReaderState, new_message};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::Path;

/// Text prefixes of harness-injected `user` messages (the fallback signal of
/// the typed-prompt rule when a line has no Codex metadata).
pub const INJECTED_PREFIXES: &[&str] = &[
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md",
    "<permissions",
    "<collaboration_mode>",
    "<skills_instructions>",
    "<turn_aborted>",
    "<user_shell_command>",
];

#[derive(Deserialize, Default)]
#[serde(default)]
struct RolloutLine<'a> {
    #[serde(borrow)]
    timestamp: LStr<'a>,
    ordinal: LU64,
    #[serde(borrow, rename = "type")]
    kind: LStr<'a>,
    #[serde(borrow)]
    payload: LMap<Payload<'a>>,
    metadata: LMap<Metadata>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Metadata {
    user_input_order: Option<IgnoredAny>,
}

/// Union of the payload fields of every record type the reader uses.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Payload<'a> {
    #[serde(borrow, rename = "type")]
    kind: LStr<'a>,
    #[serde(borrow)]
    id: LStr<'a>,
    #[serde(borrow)]
    timestamp: LStr<'a>,
    #[serde(borrow)]
    cwd: LStr<'a>,
    #[serde(borrow)]
    model: LStr<'a>,
    #[serde(borrow)]
    role: LStr<'a>,
    #[serde(borrow)]
    content: LSeq<LMap<Part<'a>>>,
    #[serde(borrow)]
    summary: LSeq<LMap<Part<'a>>>,
    #[serde(borrow)]
    name: LStr<'a>,
    #[serde(borrow)]
    arguments: LStr<'a>,
    #[serde(borrow)]
    input: LStr<'a>,
    #[serde(borrow)]
    call_id: LStr<'a>,
    #[serde(borrow)]
    output: Option<&'a RawValue>,
    #[serde(borrow)]
    action: Option<&'a RawValue>,
    #[serde(borrow)]
    message: LStr<'a>,
    #[serde(borrow)]
    forked_from_id: LStr<'a>,
    #[serde(borrow)]
    history_mode: LStr<'a>,
    #[serde(borrow)]
    history_base: LMap<HistoryBaseRaw<'a>>,
    #[serde(borrow)]
    git: LMap<Git<'a>>,
    #[serde(borrow)]
    thread_settings: LMap<Settings<'a>>,
    #[serde(borrow)]
    internal_chat_message_metadata_passthrough: LMap<Passthrough<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Part<'a> {
    #[serde(borrow, rename = "type")]
    kind: LStr<'a>,
    #[serde(borrow)]
    text: LStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HistoryBaseRaw<'a> {
    #[serde(borrow)]
    thread_id: LStr<'a>,
    end_ordinal_exclusive: LU64,
    end_byte_offset: LU64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Git<'a> {
    #[serde(borrow)]
    branch: LStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Settings<'a> {
    #[serde(borrow)]
    cwd: LStr<'a>,
    #[serde(borrow)]
    model: LStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Passthrough<'a> {
    #[serde(borrow)]
    content_item_kinds: LSeq<LStr<'a>>,
}

/// The typed-prompt rule (§1.7 of the field guide) for a `user` message.
///
/// `kinds` are the passthrough `content_item_kinds` (decisive when present:
/// typed iff one is a `user.*` kind); `metadata` is `Some(has
/// user_input_order)` when the line has a `metadata` object (decisive next);
/// otherwise the text must be non-empty and not start with an injected prefix.
fn typed_rule<'k>(
    kinds: impl Iterator<Item = &'k str> + Clone,
    metadata: Option<bool>,
    text: &str,
) -> bool {
    if kinds.clone().next().is_some() {
        return kinds.into_iter().any(|k| k.starts_with("user."));
    }
    if let Some(has_order) = metadata {
        return has_order;
    }
    let t = text.trim_start();
    !t.is_empty() && !INJECTED_PREFIXES.iter().any(|p| t.starts_with(p))
}

/// Whether a whole rollout line (as JSON) is a prompt the user typed: a
/// `response_item` `message` with role `user` that passes the typed-prompt
/// rule. This is exactly the rule the reader uses for [`MessageKind::Prompt`].
pub fn is_typed_prompt(line: &Value) -> bool {
    let payload = &line["payload"];
    if line["type"] != "response_item" || payload["type"] != "message" || payload["role"] != "user"
    {
        return false;
    }
    let kinds: Vec<&str> =
        payload["internal_chat_message_metadata_passthrough"]["content_item_kinds"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
    let metadata = line
        .get("metadata")
        .and_then(Value::as_object)
        .map(|m| m.get("user_input_order").is_some_and(|v| !v.is_null()));
    let parts: Vec<&str> = payload["content"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| is_text_part(p["type"].as_str()))
                .filter_map(|p| p["text"].as_str())
                .collect()
        })
        .unwrap_or_default();
    typed_rule(kinds.iter().copied(), metadata, &parts.join("\n"))
}

/// Content part types that carry text.
fn is_text_part(kind: Option<&str>) -> bool {
    matches!(
        kind,
        Some("input_text" | "output_text" | "text" | "summary_text" | "reasoning_text")
    )
}

/// Joins the text parts of a content list with newlines.
fn join_text(parts: &LSeq<LMap<Part<'_>>>) -> String {
    let mut out = String::new();
    for part in parts.0.iter().filter_map(|p| p.0.as_ref()) {
        if let (true, Some(t)) = (is_text_part(part.kind.get()), part.text.get()) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(t);
        }
    }
    out
}

/// Text of a tool output: a string, `{content: string}`, or a list of content
/// items (their texts joined); anything else as compact JSON.
fn output_text(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    if let Ok(s) = serde_json::from_str::<String>(raw.get()) {
        return s;
    }
    let value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
    if let Some(s) = value.get("content").and_then(Value::as_str) {
        return s.to_owned();
    }
    let items = value
        .as_array()
        .or_else(|| value.get("content").and_then(Value::as_array));
    if let Some(items) = items {
        return items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n");
    }
    raw.get().to_owned()
}

/// Reads one rollout line into `state` and `chunk`.
pub(crate) fn read_line(
    state: &mut ReaderState,
    line: &Line<'_>,
    chunk: &mut Chunk,
) -> Result<(), LineIssue> {
    let rec: RolloutLine<'_> = line.parse()?;
    let ts = rec.timestamp.get();
    if let Some(ts) = ts {
        if state.facts.started_at.is_none() {
            state.facts.started_at = Some(ts.to_owned());
        }
        state.note_time(ts, false);
    }
    if let Some(o) = rec.ordinal.0 {
        state.facts.last_ordinal = Some(o);
    }
    let Some(p) = rec.payload.0 else {
        return Ok(());
    };
    let facts = &mut state.facts;
    match rec.kind.get() {
        Some("session_meta") => {
            let id = p.id.get();
            match (&facts.id, id) {
                (None, Some(id)) => {
                    facts.id = Some(id.to_owned());
                    facts.cwd = p.cwd.0.as_deref().map(str::to_owned);
                    if facts.latest_cwd.is_none() {
                        facts.latest_cwd.clone_from(&facts.cwd);
                    }
                    if let Some(t) = p.timestamp.get().or(ts) {
                        facts.started_at = Some(t.to_owned());
                    }
                    facts.paginated = p.history_mode.get() == Some("paginated");
                    facts.forked_from = p.forked_from_id.get().map(str::to_owned);
                    facts.history_base = p.history_base.0.as_ref().and_then(|h| {
                        Some(HistoryBase {
                            thread_id: h.thread_id.get()?.to_owned(),
                            end_ordinal_exclusive: h.end_ordinal_exclusive.0?,
                            end_byte_offset: h.end_byte_offset.0?,
                        })
                    });
                }
                (Some(cur), Some(id)) if cur != id => return Ok(()),
                _ => {}
            }
            if let Some(b) = p.git.0.as_ref().and_then(|g| g.branch.get()) {
                facts.git_branch = Some(b.to_owned());
            }
        }
        Some("turn_context") => {
            set_latest(&mut facts.latest_cwd, p.cwd.get());
            set_latest(&mut facts.model, p.model.get());
        }
        Some("event_msg") if p.kind.get() == Some("thread_settings_applied") => {
            if let Some(s) = &p.thread_settings.0 {
                set_latest(&mut facts.latest_cwd, s.cwd.get());
                set_latest(&mut facts.model, s.model.get());
            }
        }
        Some("response_item") => response_item(state, &p, &rec.metadata, line, ts, chunk),
        Some("compacted") => {
            let text = p.message.get().unwrap_or_default().to_owned();
            let m = new_message(Role::System, MessageKind::Other, text, line, ts);
            state.emit(chunk, m);
        }
        _ => {}
    }
    Ok(())
}

/// Overwrites `slot` with `value` when present.
fn set_latest(slot: &mut Option<String>, value: Option<&str>) {
    if let Some(v) = value
        && slot.as_deref() != Some(v)
    {
        *slot = Some(v.to_owned());
    }
}

/// Turns one `response_item` payload into at most one message.
fn response_item(
    state: &mut ReaderState,
    p: &Payload<'_>,
    metadata: &LMap<Metadata>,
    line: &Line<'_>,
    ts: Option<&str>,
    chunk: &mut Chunk,
) {
    let kind = p.kind.get().unwrap_or_default();
    let tool = |name: &str, text: String, call_id: Option<&str>| {
        let mut m = new_message(Role::Assistant, MessageKind::ToolCall, text, line, ts);
        m.tool_name = Some(name.to_owned());
        m.call_id = call_id.map(str::to_owned);
        m
    };
    let message = match kind {
        "message" => {
            let text = join_text(&p.content);
            let (role, kind) = match p.role.get() {
                Some("assistant") => (Role::Assistant, MessageKind::Reply),
                Some("user") => {
                    let kinds = &p
                        .internal_chat_message_metadata_passthrough
                        .0
                        .as_ref()
                        .map(|pt| &pt.content_item_kinds.0[..])
                        .unwrap_or_default();
                    let meta = metadata.0.as_ref().map(|m| m.user_input_order.is_some());
                    let kinds = kinds.iter().filter_map(LStr::get);
                    if typed_rule(kinds, meta, &text) {
                        (Role::User, MessageKind::Prompt)
                    } else {
                        (Role::User, MessageKind::Context)
                    }
                }
                _ => (Role::System, MessageKind::Context),
            };
            if text.is_empty() && kind != MessageKind::Prompt {
                return;
            }
            new_message(role, kind, text, line, ts)
        }
        "function_call" | "custom_tool_call" => {
            let name = p.name.get().unwrap_or("unknown");
            let args = if kind == "function_call" {
                &p.arguments
            } else {
                &p.input
            };
            let call_id = p.call_id.get();
            if let Some(c) = call_id {
                state.pending_calls.insert(c.to_owned(), name.to_owned());
            }
            tool(name, args.get().unwrap_or_default().to_owned(), call_id)
        }
        "local_shell_call" => {
            let call_id = p.call_id.get().or(p.id.get());
            if let Some(c) = call_id {
                state
                    .pending_calls
                    .insert(c.to_owned(), "local_shell".to_owned());
            }
            let text = p.action.map(|a| a.get().to_owned()).unwrap_or_default();
            tool("local_shell", text, call_id)
        }
        "web_search_call" => {
            let text = p.action.map(|a| a.get().to_owned()).unwrap_or_default();
            tool("web_search", text, p.id.get())
        }
        k if k.ends_with("_output") => {
            let call_id = p.call_id.get();
            let mut m = new_message(
                Role::Tool,
                MessageKind::ToolResult,
                output_text(p.output),
                line,
                ts,
            );
            m.tool_name = call_id.and_then(|c| state.pending_calls.remove(c));
            m.call_id = call_id.map(str::to_owned);
            m
        }
        "reasoning" => {
            let text = join_text(&p.summary);
            if text.is_empty() {
                return;
            }
            new_message(Role::Assistant, MessageKind::Other, text, line, ts)
        }
        _ => return,
    };
    state.emit(chunk, message);
}

/// Thread names from `$CODEX_HOME/session_index.jsonl`, by thread id (the
/// last entry per id wins). A missing or unreadable index yields an empty map;
/// invalid lines are skipped.
pub fn read_thread_names(codex_home: &Path) -> HashMap<String, String> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Entry<'a> {
        #[serde(borrow)]
        id: LStr<'a>,
        #[serde(borrow)]
        thread_name: LStr<'a>,
    }
    let mut names = HashMap::new();
    let Ok(bytes) = std::fs::read(codex_home.join("session_index.jsonl")) else {
        return names;
    };
    let mut with_newline = bytes;
    with_newline.push(b'\n');
    for line in crate::jsonl::Lines::new(&with_newline, 0, 0) {
        if let Ok(e) = line.parse::<Entry<'_>>()
            && let (Some(id), Some(name)) = (e.id.get(), e.thread_name.get())
        {
            names.insert(id.to_owned(), name.to_owned());
        }
    }
    names
}
