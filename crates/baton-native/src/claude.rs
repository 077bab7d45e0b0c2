//! Claude Code transcripts: chain records, bookkeeping records, project slugs.
//!
//! Chain records (`user`, `assistant`, `attachment`, `system`, ...) carry
//! `uuid`/`parentUuid` and form the conversation tree; bookkeeping records
//! (`queue-operation`, `last-prompt`, `cost-state`, `api-request*`, titles,
//! ...) do not. Only `user`, `assistant` and `compact_boundary` system
//! records become messages; `Message::parent_uuid` is the nearest ancestor
//! that is itself a message.

use crate::jsonl::Line;
use crate::jsonl::LineIssue;
use crate::lenient::{LBool, LMap, LStr};
use crate::model::{Message, MessageKind, Role};
use crate::state::{Chunk, ReaderState, compare_times, new_message};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Text prefixes of harness-written `user` text (slash-command echoes,
/// reminders, local command output, interruption markers): never typed.
pub const HARNESS_PREFIXES: &[&str] = &[
    "<system-reminder>",
    "<command-name>",
    "<command-message>",
    "<command-args>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
    "<bash-stdout>",
    "<bash-stderr>",
    "<user-prompt-submit-hook>",
    "[Request interrupted by user",
];

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Record<'a> {
    #[serde(borrow, rename = "type")]
    kind: LStr<'a>,
    #[serde(borrow)]
    uuid: LStr<'a>,
    #[serde(borrow)]
    parent_uuid: LStr<'a>,
    #[serde(borrow)]
    logical_parent_uuid: LStr<'a>,
    #[serde(borrow)]
    timestamp: LStr<'a>,
    #[serde(borrow)]
    session_id: LStr<'a>,
    #[serde(borrow)]
    cwd: LStr<'a>,
    #[serde(borrow)]
    git_branch: LStr<'a>,
    is_sidechain: LBool,
    is_meta: LBool,
    is_compact_summary: LBool,
    #[serde(borrow)]
    request_session_id: LStr<'a>,
    #[serde(borrow)]
    forked_from: LMap<ForkedFrom<'a>>,
    #[serde(borrow)]
    agent_id: LStr<'a>,
    #[serde(borrow)]
    message: LMap<ApiMessage<'a>>,
    #[serde(borrow)]
    custom_title: LStr<'a>,
    #[serde(borrow)]
    ai_title: LStr<'a>,
    #[serde(borrow)]
    summary: LStr<'a>,
    #[serde(borrow)]
    subtype: LStr<'a>,
    #[serde(borrow)]
    content: LStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ForkedFrom<'a> {
    #[serde(borrow)]
    session_id: LStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiMessage<'a> {
    #[serde(borrow)]
    model: LStr<'a>,
    #[serde(borrow)]
    content: Content<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Block<'a> {
    #[serde(borrow, rename = "type")]
    kind: LStr<'a>,
    #[serde(borrow)]
    text: LStr<'a>,
    #[serde(borrow)]
    thinking: LStr<'a>,
    #[serde(borrow)]
    id: LStr<'a>,
    #[serde(borrow)]
    name: LStr<'a>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_use_id: LStr<'a>,
    #[serde(borrow)]
    content: Content<'a>,
}

/// Message content: a plain string or a list of blocks.
#[derive(Default)]
struct Content<'a> {
    text: Option<Cow<'a, str>>,
    blocks: Vec<Block<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of content blocks")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content {
                    text: Some(Cow::Borrowed(v)),
                    blocks: Vec::new(),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content {
                    text: Some(Cow::Owned(v.to_owned())),
                    blocks: Vec::new(),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::new();
                while let Some(b) = s.next_element::<LMap<Block<'a>>>()? {
                    blocks.extend(b.0);
                }
                Ok(Content { text: None, blocks })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Content::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Content::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Content::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Content::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Content::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Content::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Content::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Content<'_> {
    /// The plain text of the content (string, or text blocks joined).
    fn plain_text(&self) -> String {
        if let Some(t) = &self.text {
            return t.to_string();
        }
        let texts: Vec<&str> = self
            .blocks
            .iter()
            .filter(|b| b.kind.get() == Some("text"))
            .filter_map(|b| b.text.get())
            .collect();
        texts.join("\n")
    }
}

/// Whether user text was typed by a human rather than written by the harness.
fn is_typed_text(text: &str) -> bool {
    let t = text.trim_start();
    !t.is_empty() && !HARNESS_PREFIXES.iter().any(|p| t.starts_with(p))
}

/// Whether a whole transcript record (as JSON) holds a prompt the user typed:
/// a `user` record, not `isMeta`/`isCompactSummary`, whose string content or
/// one of whose text blocks is not harness text. This is exactly the rule the
/// reader uses for [`MessageKind::Prompt`].
pub fn is_typed_prompt(record: &Value) -> bool {
    if record["type"] != "user" || record["isMeta"] == true || record["isCompactSummary"] == true {
        return false;
    }
    match &record["message"]["content"] {
        Value::String(s) => is_typed_text(s),
        Value::Array(blocks) => blocks
            .iter()
            .any(|b| b["type"] == "text" && b["text"].as_str().is_some_and(is_typed_text)),
        _ => false,
    }
}

/// Reads one transcript line into `state` and `chunk`.
pub(crate) fn read_line(
    state: &mut ReaderState,
    line: &Line<'_>,
    chunk: &mut Chunk,
) -> Result<(), LineIssue> {
    let r: Record<'_> = line
        .parse()
        .map_err(|issue| bridge_unreadable(state, line, issue))?;
    let ts = r.timestamp.get();
    if let Some(ts) = ts {
        state.note_time(ts, true);
    }
    let facts = &mut state.facts;
    let kind = r.kind.get().unwrap_or_default();
    let title = match kind {
        "custom-title" => Some((3, r.custom_title.get())),
        "ai-title" => Some((2, r.ai_title.get())),
        "summary" => Some((1, r.summary.get())),
        _ => None,
    };
    if let Some((rank, Some(t))) = title
        && rank >= state.title_rank
    {
        state.title_rank = rank;
        facts.title = Some(t.to_owned());
    }
    let first_chain_record = r.uuid.get().is_some() && facts.first_uuid.is_none();
    if let Some(sid) = r.session_id.get() {
        if r.is_sidechain.0 && first_chain_record {
            // A subagent transcript starts with a sidechain record carrying
            // its parent's sessionId; its own identity is the agentId. A
            // sidechain record later in a main transcript changes nothing.
            facts.sidechain_of = Some(sid.to_owned());
            if facts.id.is_none() || facts.id.as_deref() == Some(sid) {
                facts.id = r.agent_id.get().map(str::to_owned);
            }
        } else if facts.id.is_none() && facts.sidechain_of.is_none() {
            facts.id = Some(sid.to_owned());
        }
        if let Some(req) = r.request_session_id.get()
            && req != sid
            && facts.fork_hint.is_none()
        {
            facts.fork_hint = Some(req.to_owned());
        }
    }
    if let Some(from) = r.forked_from.0.as_ref().and_then(|f| f.session_id.get()) {
        facts.forked_from = Some(from.to_owned());
    }
    let Some(uuid) = r.uuid.get() else {
        return Ok(()); // bookkeeping record
    };
    if facts.first_uuid.is_none() {
        facts.first_uuid = Some(uuid.to_owned());
    }
    if let Some(cwd) = r.cwd.get() {
        if facts.cwd.is_none() {
            facts.cwd = Some(cwd.to_owned());
        }
        if facts.latest_cwd.as_deref() != Some(cwd) {
            facts.latest_cwd = Some(cwd.to_owned());
        }
    }
    if let Some(b) = r.git_branch.get()
        && facts.git_branch.as_deref() != Some(b)
    {
        facts.git_branch = Some(b.to_owned());
    }

    let parent_raw = chain_parent(r.parent_uuid.get(), r.logical_parent_uuid.get());
    let parent = parent_raw.and_then(|p| match state.ancestors.get(p) {
        Some(ancestor) => ancestor.clone(),
        None => Some(p.to_owned()),
    });
    let before = chunk.messages.len();
    let mk = |role, kind, text: String| {
        let mut m = new_message(role, kind, text, line, ts);
        m.uuid = Some(uuid.to_owned());
        m.parent_uuid.clone_from(&parent);
        m
    };
    match (kind, r.message.0.as_ref()) {
        ("user", Some(msg)) => {
            let context = r.is_meta.0 || r.is_compact_summary.0;
            let classify = |text: &str| {
                if !context && is_typed_text(text) {
                    MessageKind::Prompt
                } else {
                    MessageKind::Context
                }
            };
            if let Some(text) = &msg.content.text {
                let kind = classify(text);
                state.emit(chunk, mk(Role::User, kind, text.to_string()));
            }
            let (mut typed, mut harness) = (Vec::new(), Vec::new());
            let mut text_at = None;
            let mut results = Vec::new();
            for b in &msg.content.blocks {
                match b.kind.get() {
                    Some("text") => {
                        let t = b.text.get().unwrap_or_default();
                        text_at.get_or_insert(results.len());
                        match classify(t) {
                            MessageKind::Prompt => typed.push(t),
                            _ => harness.push(t),
                        }
                    }
                    Some("tool_result") => {
                        let call_id = b.tool_use_id.get();
                        let mut m = mk(Role::Tool, MessageKind::ToolResult, b.content.plain_text());
                        m.tool_name = call_id.and_then(|c| state.pending_calls.remove(c));
                        m.call_id = call_id.map(str::to_owned);
                        results.push(m);
                    }
                    _ => {}
                }
            }
            let mut texts = Vec::new();
            if !typed.is_empty() {
                texts.push(mk(Role::User, MessageKind::Prompt, typed.join("\n")));
            }
            if !harness.is_empty() {
                texts.push(mk(Role::User, MessageKind::Context, harness.join("\n")));
            }
            let at = text_at.unwrap_or(results.len());
            let tail = results.split_off(at);
            for m in results.into_iter().chain(texts).chain(tail) {
                state.emit(chunk, m);
            }
        }
        ("assistant", Some(msg)) => {
            if let Some(model) = msg.model.get()
                && model != "<synthetic>"
                && state.facts.model.as_deref() != Some(model)
            {
                state.facts.model = Some(model.to_owned());
            }
            if let Some(text) = &msg.content.text {
                state.emit(
                    chunk,
                    mk(Role::Assistant, MessageKind::Reply, text.to_string()),
                );
            }
            for b in &msg.content.blocks {
                let m = match b.kind.get() {
                    Some("text") => match b.text.get() {
                        Some(t) if !t.is_empty() => {
                            mk(Role::Assistant, MessageKind::Reply, t.to_owned())
                        }
                        _ => continue,
                    },
                    Some("thinking") => match b.thinking.get() {
                        Some(t) if !t.is_empty() => {
                            mk(Role::Assistant, MessageKind::Other, t.to_owned())
                        }
                        _ => continue,
                    },
                    Some("tool_use" | "server_tool_use") => {
                        let name = b.name.get().unwrap_or("unknown");
                        let input = b.input.map(|i| i.get().to_owned()).unwrap_or_default();
                        let mut m = mk(Role::Assistant, MessageKind::ToolCall, input);
                        m.tool_name = Some(name.to_owned());
                        m.call_id = b.id.get().map(str::to_owned);
                        if let Some(id) = b.id.get() {
                            state.pending_calls.insert(id.to_owned(), name.to_owned());
                        }
                        m
                    }
                    _ => continue,
                };
                state.emit(chunk, m);
            }
        }
        ("system", _) if r.subtype.get() == Some("compact_boundary") => {
            let text = r
                .content
                .get()
                .unwrap_or("Conversation compacted")
                .to_owned();
            state.emit(chunk, mk(Role::System, MessageKind::Other, text));
        }
        _ => {}
    }
    if chunk.messages.len() == before {
        state.ancestors.insert(uuid.to_owned(), parent);
    }
    Ok(())
}

/// Keep the chain whole across a record that cannot be read: when its
/// `uuid` can still be picked out of the bytes, it is remembered like a
/// record that produced no message (its children hang from its parent);
/// otherwise [`chain_order`] bridges the gap its children point into. The
/// returned issue says which.
fn bridge_unreadable(state: &mut ReaderState, line: &Line<'_>, mut issue: LineIssue) -> LineIssue {
    let [uuid, parent, logical] =
        top_level_strings(line.bytes, ["uuid", "parentUuid", "logicalParentUuid"]);
    let Some(uuid) = uuid else {
        issue
            .message
            .push_str("; the conversation continues past it");
        return issue;
    };
    let parent = chain_parent(parent, logical).and_then(|p| match state.ancestors.get(p) {
        Some(ancestor) => ancestor.clone(),
        None => Some(p.to_owned()),
    });
    state.ancestors.insert(uuid.to_owned(), parent);
    issue.message.push_str(&format!(
        "; the conversation continues past it (record {uuid})"
    ));
    issue
}

/// The string values of the top-level `keys` of a JSON object's bytes,
/// found by a scan that needs neither valid UTF-8 nor valid JSON elsewhere
/// in the line. Values with escapes are skipped (ids have none).
fn top_level_strings<'a, const N: usize>(bytes: &'a [u8], keys: [&str; N]) -> [Option<&'a str>; N] {
    let mut found = [None; N];
    let mut depth = 0usize;
    let mut key: Option<&[u8]> = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'"' => {
                let start = i;
                while let Some(&c) = bytes.get(i).filter(|&&c| c != b'"') {
                    i += if c == b'\\' { 2 } else { 1 };
                }
                let text = &bytes[start..i.min(bytes.len())];
                i += 1;
                if depth != 1 {
                    continue;
                }
                let rest = bytes.get(i..).unwrap_or_default();
                let colon = rest.iter().position(|c| !c.is_ascii_whitespace());
                if colon.is_some_and(|at| rest[at] == b':') {
                    key = Some(text);
                } else if let Some(k) = key.take()
                    && let Some(slot) = keys.iter().position(|want| want.as_bytes() == k)
                    && !text.contains(&b'\\')
                {
                    found[slot] = std::str::from_utf8(text).ok();
                }
            }
            b'{' | b'[' => {
                depth += 1;
                key = None;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => key = None,
            _ => {}
        }
    }
    found
}

/// The parent a chain record hangs from: its `parentUuid`, or across a
/// compaction boundary (whose `parentUuid` is null) its `logicalParentUuid`,
/// so the pre-compaction history stays on the chain (§2.5). The reader and
/// the fork chain both use this rule, so prompts count the same in both.
pub(crate) fn chain_parent<'a>(
    parent_uuid: Option<&'a str>,
    logical_parent_uuid: Option<&'a str>,
) -> Option<&'a str> {
    parent_uuid.or(logical_parent_uuid)
}

/// The indices of `messages` that form the conversation, in tree order.
///
/// Works like Claude's resume: the leaf is the terminal message (no other
/// message in the slice names its uuid as parent) with the newest timestamp
/// (later position wins ties); `parent_uuid` is walked to the root (stopping
/// at a cycle) and the path reversed. A parent not in the slice is a record
/// that could not be read: the walk bridges it to the message before the
/// child in slice order, so one bad line never cuts the history. Every
/// message sharing a uuid on the path is included, in slice order. Messages
/// without uuids (Codex) are returned in slice order.
///
/// Then, like Claude's recovery pass, parallel tool calls are re-attached:
/// Claude writes each `tool_use` of one model reply as its own record chained
/// to the previous one, and each result points at its own caller, so the
/// single-parent walk keeps only one branch. At the first tool-call record of
/// the path, every tool-call-only record chained below it follows (in slice
/// order), then every record that is a child of one of those calls and holds
/// a result for one of them.
pub fn chain_order(messages: &[Message]) -> Vec<usize> {
    let mut by_uuid: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        if let Some(u) = &m.uuid {
            by_uuid.entry(u.as_str()).or_default().push(i);
        }
    }
    if by_uuid.is_empty() {
        return (0..messages.len()).collect();
    }
    let parent_of = |u: &str| -> Option<&str> {
        by_uuid
            .get(u)?
            .iter()
            .find_map(|&i| messages[i].parent_uuid.as_deref())
            .filter(|p| *p != u)
    };
    let parents: HashSet<&str> = messages
        .iter()
        .filter_map(|m| m.parent_uuid.as_deref())
        .collect();
    let mut leaf: Option<usize> = None;
    for (i, m) in messages.iter().enumerate() {
        let Some(u) = m.uuid.as_deref() else { continue };
        if parents.contains(u) {
            continue;
        }
        let newer = match leaf {
            None => true,
            Some(l) => match (&m.timestamp, &messages[l].timestamp) {
                (Some(a), Some(b)) => compare_times(a, b) != std::cmp::Ordering::Less,
                (Some(_), None) | (None, None) => true,
                (None, Some(_)) => false,
            },
        };
        if newer {
            leaf = Some(i);
        }
    }
    let Some(leaf) = leaf else {
        return Vec::new(); // every message is someone's parent: a pure cycle
    };
    let mut path: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut cur = messages[leaf].uuid.as_deref();
    while let Some(u) = cur {
        if !by_uuid.contains_key(u) || !seen.insert(u) {
            break;
        }
        path.push(u);
        cur = match parent_of(u) {
            // A parent that was never read (an unreadable record): bridge
            // the gap to the message just before this one.
            Some(p) if !by_uuid.contains_key(p) => messages[..by_uuid[u][0]]
                .iter()
                .rev()
                .find_map(|m| m.uuid.as_deref()),
            p => p,
        };
    }
    path.reverse();

    // Recovery of parallel tool calls and their results.
    let kinds = |u: &str| by_uuid[u].iter().map(|&i| messages[i].kind);
    let has_call = |u: &str| kinds(u).any(|k| k == MessageKind::ToolCall);
    let only_calls = |u: &str| kinds(u).all(|k| k == MessageKind::ToolCall);
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    if by_uuid.keys().any(|u| has_call(u)) {
        let mut listed: HashSet<&str> = HashSet::new();
        for m in messages {
            if let Some(u) = m.uuid.as_deref()
                && listed.insert(u)
                && let Some(p) = parent_of(u)
            {
                children.entry(p).or_default().push(u);
            }
        }
    }
    let first_index = |u: &str| by_uuid[u][0];
    let mut order: Vec<&str> = Vec::with_capacity(path.len());
    let mut done: HashSet<&str> = HashSet::new();
    for &u in &path {
        if !done.insert(u) {
            continue;
        }
        order.push(u);
        if !has_call(u) {
            continue;
        }
        let mut group = vec![u];
        let mut stack = vec![u];
        while let Some(g) = stack.pop() {
            for &c in children.get(g).into_iter().flatten() {
                if !done.contains(c) && !group.contains(&c) && only_calls(c) {
                    group.push(c);
                    stack.push(c);
                }
            }
        }
        group[1..].sort_by_key(|g| first_index(g));
        let calls: HashSet<&str> = group
            .iter()
            .flat_map(|g| by_uuid[g].iter())
            .filter(|&&i| messages[i].kind == MessageKind::ToolCall)
            .filter_map(|&i| messages[i].call_id.as_deref())
            .collect();
        let mut results: Vec<&str> = group
            .iter()
            .flat_map(|g| children.get(g).into_iter().flatten().copied())
            .filter(|r| !done.contains(r) && !group.contains(r))
            .filter(|r| {
                by_uuid[r].iter().any(|&i| {
                    messages[i].kind == MessageKind::ToolResult
                        && messages[i]
                            .call_id
                            .as_deref()
                            .is_some_and(|c| calls.contains(c))
                })
            })
            .collect();
        results.sort_by_key(|r| first_index(r));
        results.dedup();
        for g in group.into_iter().skip(1).chain(results) {
            if done.insert(g) {
                order.push(g);
            }
        }
    }
    order
        .iter()
        .flat_map(|u| by_uuid[u].iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(recs: &[Value]) -> (ReaderState, Vec<Message>) {
        let bytes: Vec<u8> = recs.iter().flat_map(crate::rehydrate::to_line).collect();
        let mut r = crate::FileReader::new(crate::Agent::Claude);
        let chunk = r.feed(&bytes);
        assert!(chunk.issues.is_empty());
        (r.state().clone(), chunk.messages)
    }

    #[test]
    fn show_order_reattaches_parallel_tool_results() {
        let (_, msgs) = read(&crate::fork::tests::parallel_calls());
        let shown: Vec<(MessageKind, Option<&str>)> = chain_order(&msgs)
            .into_iter()
            .map(|i| (msgs[i].kind, msgs[i].call_id.as_deref()))
            .collect();
        use MessageKind::*;
        assert_eq!(
            shown,
            [
                (Prompt, None),
                (ToolCall, Some("t1")),
                (ToolCall, Some("t2")),
                (ToolResult, Some("t2")),
                (ToolResult, Some("t1")),
                (Reply, None),
                (Prompt, None),
                (Reply, None),
            ]
        );
    }

    #[test]
    fn only_a_leading_sidechain_record_makes_a_subagent_transcript() {
        use crate::fork::tests::{parallel_calls, rec};
        // A main transcript with one sidechain record later on stays itself.
        let mut recs = parallel_calls();
        let mut side = rec("user", "x", Some("u0"), 9, Value::from("sub task"));
        side["isSidechain"] = true.into();
        side["agentId"] = "ag1".into();
        recs.insert(3, side.clone());
        let (state, _) = read(&recs);
        assert_eq!(state.facts.id.as_deref(), Some("src"));
        assert_eq!(state.facts.sidechain_of, None);
        // A file whose first chain record is a sidechain is a subagent's,
        // even after a bookkeeping line carrying the parent's sessionId.
        let mode = serde_json::json!({"type": "mode", "mode": "normal", "sessionId": "src"});
        let (state, _) = read(&[
            mode,
            side,
            rec("assistant", "y", Some("x"), 10, Value::from("hi")),
        ]);
        assert_eq!(state.facts.id.as_deref(), Some("ag1"));
        assert_eq!(state.facts.sidechain_of.as_deref(), Some("src"));
    }
}
