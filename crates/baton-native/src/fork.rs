//! Forking a session at a typed prompt into a new, self-contained native
//! session of the same agent ([`fork`]).
//!
//! - Codex: the whole history (a paginated fork's inherited `history_base`
//!   prefix inlined, recursively) up to the cut, behind a new `session_meta`
//!   with a fresh id and `forked_from_id` = the source. Paginated sources get
//!   contiguous ordinals from 0; legacy sources stay legacy (no ordinals).
//!   A turn's preamble (`thread_settings_applied`, `task_started`,
//!   `turn_context`, injected context) goes with its prompt, and a tool call
//!   whose output falls after the cut is dropped.
//! - Claude: the main chain up to the cut, with the parent's `uuid`s kept (as
//!   `claude --resume <id> --fork-session` does) and `sessionId` rewritten;
//!   per-request bookkeeping (`last-prompt`, `queue-operation`,
//!   `api-request*`) is not copied.

//!
//! Forking streams: a first pass over the source's lines plans the cut
//! ([`plan`], keeping a few facts per record), a second writes the kept
//! records ([`Plan::write`]), so a source of any size is never held whole.

use crate::model::{Agent, Message, MessageKind, Role};
use crate::rehydrate::{NativeError, SessionLines, codex_rollout_name, to_line};
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;

/// Where to cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Drop the last N typed prompts and everything after each (0 = full copy).
    DropLast(usize),
    /// Keep everything before the K-th typed prompt (1-based).
    BeforePrompt(usize),
}

/// A new session produced by [`fork`], as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forked {
    /// Agent of the fork (same as the source).
    pub agent: Agent,
    /// The fork's new id.
    pub id: String,
    /// The source session id.
    pub forked_from: String,
    /// Path relative to the agent home (Codex rollout name, or
    /// `projects/<slug>/<id>.jsonl` for Claude).
    pub name: String,
    /// Typed prompts kept.
    pub prompts_kept: usize,
    /// Typed prompts in the source history.
    pub prompts_total: usize,
}

/// A fork decided by [`plan`] and not yet written: the new session's
/// facts and which source records it keeps.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The fork as it will be written.
    pub forked: Forked,
    keep: Keep,
}

/// Which records of the source a fork keeps, by their position in the
/// source's record stream.
#[derive(Debug, Clone)]
enum Keep {
    /// Codex: the history's records before `end` but those in `dropped`,
    /// behind `meta` (the source's `session_meta`, rewritten for the fork).
    Codex {
        meta: Value,
        end: usize,
        dropped: HashSet<usize>,
        paginated: bool,
    },
    /// Claude: chain records in `chain`, other records before `file_cut`
    /// (bookkeeping excepted); parents not in `uuids` are bridged.
    Claude {
        chain: HashSet<usize>,
        file_cut: usize,
        uuids: HashSet<String>,
    },
}

/// A fresh id of the kind the agent mints (Codex UUIDv7, Claude UUIDv4).
pub fn new_session_id(agent: Agent) -> String {
    match agent {
        Agent::Codex => uuid::Uuid::now_v7().to_string(),
        Agent::Claude => uuid::Uuid::new_v4().to_string(),
    }
}

/// Index (into the prompt list) of the first prompt to drop, or an error
/// explaining why nothing would remain.
fn cut_prompt(cut: Cut, total: usize, id: &str) -> Result<usize, NativeError> {
    let nothing = |why: String| {
        Err(NativeError::Invalid(format!(
            "nothing would remain of session {id}: {why}; nothing was written"
        )))
    };
    match cut {
        Cut::DropLast(0) if total == 0 => nothing("it has no typed prompt".into()),
        Cut::DropLast(n) if n >= total && n > 0 => nothing(format!(
            "it has {total} typed prompt(s) and --drop-last {n} would drop them all"
        )),
        Cut::DropLast(n) => Ok(total - n),
        Cut::BeforePrompt(0) => Err(NativeError::Invalid(
            "--before-prompt counts from 1 (the first typed prompt)".into(),
        )),
        Cut::BeforePrompt(1) => {
            nothing("--before-prompt 1 keeps nothing before the first prompt".into())
        }
        Cut::BeforePrompt(k) if k > total => nothing(format!(
            "it has only {total} typed prompt(s), so there is no prompt {k} to cut before"
        )),
        Cut::BeforePrompt(k) => Ok(k - 1),
    }
}

/// Plan forking `source` at `cut` into a new session with id `new_id`,
/// created at `now`: one pass over the source's lines.
pub fn plan(
    source: &dyn SessionLines,
    cut: Cut,
    new_id: &str,
    now: jiff::Timestamp,
) -> Result<Plan, NativeError> {
    match source.agent() {
        Agent::Codex => plan_codex(source, cut, new_id, now),
        Agent::Claude => plan_claude(source, cut, new_id),
    }
}

/// Fork `source` at `cut` into a new session with id `new_id`, created at
/// `now`, written to `out`: [`plan`] then [`Plan::write`].
pub fn fork(
    source: &dyn SessionLines,
    cut: Cut,
    new_id: &str,
    now: jiff::Timestamp,
    out: &mut dyn Write,
) -> Result<Forked, NativeError> {
    let plan = plan(source, cut, new_id, now)?;
    plan.write(source, out)?;
    Ok(plan.forked)
}

/// Visit every record of a session file's lines (invalid lines skipped),
/// in order, while `visit` returns true.
fn visit_records(
    source: &dyn SessionLines,
    file: usize,
    limit: Option<u64>,
    visit: &mut dyn FnMut(Value) -> Result<bool, NativeError>,
) -> Result<(), NativeError> {
    source.visit_lines(file, limit, &mut |line| match line.value() {
        Ok(rec) => visit(rec),
        Err(_) => Ok(true),
    })
}

/// A Codex lineage's `session_meta` records (one per file, ancestors first)
/// and how far into each file the history goes: what visiting the whole
/// history needs, read from each file's first line.
pub(crate) struct CodexLineage {
    metas: Vec<Value>,
    /// Per file: the end of the prefix its child inherits
    /// (`history_base.end_byte_offset`); `None` for the source's own file.
    limits: Vec<Option<u64>>,
}

impl CodexLineage {
    /// Read the first record of every lineage file of `source`.
    pub(crate) fn read(source: &dyn SessionLines) -> Result<Self, NativeError> {
        let ids = source.file_ids();
        let mut metas = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let mut first = None;
            visit_records(source, i, None, &mut |rec| {
                first = Some(rec);
                Ok(false)
            })?;
            match first.filter(|r| r.get("type").and_then(Value::as_str) == Some("session_meta")) {
                Some(meta) => metas.push(meta),
                None => {
                    return Err(NativeError::Invalid(format!(
                        "rollout of {id} does not start with session_meta"
                    )));
                }
            }
        }
        let limits = (0..ids.len())
            .map(|i| {
                let Some(child) = metas.get(i + 1) else {
                    return Ok(None);
                };
                child
                    .pointer("/payload/history_base/end_byte_offset")
                    .and_then(Value::as_u64)
                    .map(Some)
                    .ok_or_else(|| {
                        NativeError::Invalid(format!(
                            "{} is listed as an ancestor but its child has no history_base",
                            ids[i]
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(CodexLineage { metas, limits })
    }

    /// The source's own `session_meta` record.
    pub(crate) fn own_meta(&self) -> &Value {
        self.metas.last().expect("a session has at least one file")
    }

    /// Visit the session's whole history in order, while `visit` returns
    /// true: ancestors' prefixes (up to each child's
    /// `history_base.end_byte_offset`) inlined, every file's leading
    /// `session_meta` removed.
    pub(crate) fn visit_history(
        &self,
        source: &dyn SessionLines,
        visit: &mut dyn FnMut(Value) -> Result<bool, NativeError>,
    ) -> Result<(), NativeError> {
        let mut go_on = true;
        for (i, limit) in self.limits.iter().enumerate() {
            let mut first = true;
            visit_records(source, i, *limit, &mut |rec| {
                if std::mem::take(&mut first) {
                    return Ok(true);
                }
                go_on = visit(rec)?;
                Ok(go_on)
            })?;
            if !go_on {
                break;
            }
        }
        Ok(())
    }
}

fn codex_kind(rec: &Value) -> (&str, &str) {
    let t = rec.get("type").and_then(Value::as_str).unwrap_or("");
    let inner = rec
        .pointer("/payload/type")
        .and_then(Value::as_str)
        .unwrap_or("");
    (t, inner)
}

/// Records that open a turn and belong with the prompt that follows them.
fn is_turn_preamble(rec: &Value) -> bool {
    match codex_kind(rec) {
        ("turn_context" | "world_state", _) => true,
        ("event_msg", "task_started" | "thread_settings_applied") => true,
        ("response_item", "message") => {
            let role = rec.pointer("/payload/role").and_then(Value::as_str);
            role == Some("developer")
                || (role == Some("user") && !crate::codex::is_typed_prompt(rec))
        }
        _ => false,
    }
}

const CODEX_CALL_TYPES: [&str; 3] = ["function_call", "custom_tool_call", "local_shell_call"];
const CODEX_OUTPUT_TYPES: [&str; 2] = ["function_call_output", "custom_tool_call_output"];

fn call_id(rec: &Value) -> Option<&str> {
    rec.pointer("/payload/call_id").and_then(Value::as_str)
}

/// What the cut needs to know of one Codex history record.
enum CodexStep {
    Prompt,
    Preamble,
    Call(String),
    Output(String),
    Other,
}

impl CodexStep {
    fn of(rec: &Value) -> CodexStep {
        let (t, inner) = codex_kind(rec);
        let id = || call_id(rec).map(str::to_string);
        if crate::codex::is_typed_prompt(rec) {
            CodexStep::Prompt
        } else if is_turn_preamble(rec) {
            CodexStep::Preamble
        } else if let Some(id) = id().filter(|_| CODEX_OUTPUT_TYPES.contains(&inner)) {
            CodexStep::Output(id)
        } else if let Some(id) =
            id().filter(|_| t == "response_item" && CODEX_CALL_TYPES.contains(&inner))
        {
            CodexStep::Call(id)
        } else {
            CodexStep::Other
        }
    }
}

/// Replace every `thread_id` string equal to `from` below `v` with `to`.
fn rename_thread_ids(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::Object(obj) => {
            for (k, child) in obj.iter_mut() {
                match child {
                    Value::String(s) if k == "thread_id" && s == from => *s = to.to_string(),
                    _ => rename_thread_ids(child, from, to),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|c| rename_thread_ids(c, from, to)),
        _ => {}
    }
}

fn plan_codex(
    source: &dyn SessionLines,
    cut: Cut,
    new_id: &str,
    now: jiff::Timestamp,
) -> Result<Plan, NativeError> {
    let mut steps = Vec::new();
    let lineage = CodexLineage::read(source)?;
    lineage.visit_history(source, &mut |rec| {
        steps.push(CodexStep::of(&rec));
        Ok(true)
    })?;
    let mut meta = lineage.own_meta().clone();
    let paginated = meta
        .pointer("/payload/history_mode")
        .and_then(Value::as_str)
        == Some("paginated");
    let prompts: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, CodexStep::Prompt))
        .map(|(i, _)| i)
        .collect();
    let keep_prompts = cut_prompt(cut, prompts.len(), source.id())?;
    let mut end = prompts.get(keep_prompts).copied().unwrap_or(steps.len());
    if keep_prompts < prompts.len() {
        while end > 0 && matches!(steps[end - 1], CodexStep::Preamble) {
            end -= 1;
        }
    }
    let answered: HashSet<&str> = steps[..end]
        .iter()
        .filter_map(|s| match s {
            CodexStep::Output(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let dropped = steps[..end]
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, CodexStep::Call(id) if !answered.contains(id.as_str())))
        .map(|(i, _)| i)
        .collect();

    let stamp = now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    if let Some(obj) = meta.as_object_mut() {
        obj.insert("timestamp".into(), Value::from(stamp.clone()));
    }
    if let Some(p) = meta.get_mut("payload").and_then(Value::as_object_mut) {
        p.insert("id".into(), Value::from(new_id));
        if p.contains_key("session_id") {
            p.insert("session_id".into(), Value::from(new_id));
        }
        p.insert("forked_from_id".into(), Value::from(source.id()));
        p.remove("forked_from_ordinal_exclusive");
        p.remove("history_base");
        p.insert("timestamp".into(), Value::from(stamp));
    }
    Ok(Plan {
        forked: Forked {
            agent: Agent::Codex,
            id: new_id.to_string(),
            forked_from: source.id().to_string(),
            name: codex_rollout_name(new_id, &now),
            prompts_kept: keep_prompts,
            prompts_total: prompts.len(),
        },
        keep: Keep::Codex {
            meta,
            end,
            dropped,
            paginated,
        },
    })
}

impl Plan {
    /// Write the fork's lines to `out`, reading `source` (the session the
    /// plan was made from) once more.
    pub fn write(&self, source: &dyn SessionLines, out: &mut dyn Write) -> Result<(), NativeError> {
        let (from, to) = (source.id(), self.forked.id.as_str());
        let mut emit = |rec: &Value| out.write_all(&to_line(rec)).map_err(NativeError::Output);
        match &self.keep {
            Keep::Codex {
                meta,
                end,
                dropped,
                paginated,
            } => {
                let mut ordinal = 0u64;
                let mut next = |mut rec: Value| {
                    rename_thread_ids(&mut rec, from, to);
                    if ordinal > 0
                        && codex_kind(&rec).0 == "session_meta"
                        && let Some(id) = rec.pointer_mut("/payload/id")
                        && id.as_str() == Some(from)
                    {
                        *id = Value::from(to);
                    }
                    if *paginated && let Some(obj) = rec.as_object_mut() {
                        obj.insert("ordinal".into(), Value::from(ordinal));
                    }
                    ordinal += 1;
                    emit(&rec)
                };
                next(meta.clone())?;
                let mut i = 0;
                CodexLineage::read(source)?.visit_history(source, &mut |rec| {
                    if i >= *end {
                        return Ok(false);
                    }
                    if !dropped.contains(&i) {
                        next(rec)?;
                    }
                    i += 1;
                    Ok(true)
                })?;
            }
            Keep::Claude {
                chain,
                file_cut,
                uuids,
            } => {
                let own = source.file_ids().len() - 1;
                let (mut i, mut previous) = (0, None::<String>);
                visit_records(source, own, None, &mut |mut rec| {
                    let at = i;
                    i += 1;
                    let uuid = rec.get("uuid").and_then(Value::as_str).map(str::to_string);
                    let rtype = rec.get("type").and_then(Value::as_str).unwrap_or("");
                    let keep = match uuid {
                        Some(_) => chain.contains(&at),
                        None => at < *file_cut && !CLAUDE_NOT_COPIED.contains(&rtype),
                    };
                    if !keep {
                        return Ok(true);
                    }
                    let is_assistant = rtype == "assistant";
                    if let Some(obj) = rec.as_object_mut() {
                        if obj.contains_key("sessionId") {
                            obj.insert("sessionId".into(), Value::from(to));
                        }
                        // The back-pointer names the direct source, as
                        // `--fork-session` does, so a fork of a fork is
                        // credited to its own parent.
                        if is_assistant {
                            obj.insert("requestSessionId".into(), Value::from(from));
                        }
                        // A parent that could not be read is bridged, as
                        // `chain_order` does, so Claude does not cut the
                        // fork's history there.
                        if let Some(bridge) = &previous
                            && obj
                                .get("parentUuid")
                                .and_then(Value::as_str)
                                .is_some_and(|p| !uuids.contains(p))
                        {
                            obj.insert("parentUuid".into(), Value::from(bridge.clone()));
                        }
                    }
                    if uuid.is_some() {
                        previous = uuid;
                    }
                    emit(&rec)?;
                    Ok(true)
                })?;
            }
        }
        Ok(())
    }
}

/// Claude bookkeeping records that describe model requests or the file's
/// current leaf; a fork writes its own, so they are not copied.
const CLAUDE_NOT_COPIED: [&str; 5] = [
    "last-prompt",
    "queue-operation",
    "api-request",
    "api-request-shape",
    "api-request-blob",
];

fn tool_ids(rec: &Value, block_type: &str, key: &str) -> Vec<String> {
    rec.pointer("/message/content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some(block_type))
                .filter_map(|b| b.get(key).and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What the cut needs to know of one Claude record.
struct ClaudeStep {
    uuid: Option<String>,
    parent: Option<String>,
    timestamp: Option<String>,
    typed_prompt: bool,
    tool_uses: Vec<String>,
    tool_results: Vec<String>,
}

impl ClaudeStep {
    fn of(r: &Value) -> ClaudeStep {
        let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
        let rtype = r.get("type").and_then(Value::as_str);
        ClaudeStep {
            uuid: text("uuid"),
            parent: crate::claude::chain_parent(
                r.get("parentUuid").and_then(Value::as_str),
                r.get("logicalParentUuid").and_then(Value::as_str),
            )
            .map(str::to_string),
            timestamp: text("timestamp"),
            typed_prompt: crate::claude::is_typed_prompt(r),
            tool_uses: match rtype {
                Some("assistant") => tool_ids(r, "tool_use", "id"),
                _ => Vec::new(),
            },
            tool_results: match rtype {
                Some("user") => tool_ids(r, "tool_result", "tool_use_id"),
                _ => Vec::new(),
            },
        }
    }
}

/// Indices of `steps` on the main chain (root to the leaf Claude resumes),
/// chosen by [`crate::claude::chain_order`] over one stub per chain record
/// (one per `tool_use`/`tool_result` block, so parallel tool calls are
/// re-attached), parents bridged by [`crate::claude::chain_parent`] exactly
/// as the reader does, so prompts are counted as `show` counts them.
fn claude_main_chain(steps: &[ClaudeStep]) -> Vec<usize> {
    let mut index = Vec::new();
    let mut stubs = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let Some(uuid) = &s.uuid else {
            continue;
        };
        let stub = |kind, call_id: Option<&String>| Message {
            role: Role::System,
            kind,
            text: String::new(),
            tool_name: None,
            call_id: call_id.cloned(),
            timestamp: s.timestamp.clone(),
            offset: 0,
            uuid: Some(uuid.clone()),
            parent_uuid: s.parent.clone(),
        };
        let (kind, ids) = if !s.tool_uses.is_empty() {
            (MessageKind::ToolCall, &s.tool_uses)
        } else {
            (MessageKind::ToolResult, &s.tool_results)
        };
        if ids.is_empty() {
            stubs.push(stub(MessageKind::Other, None));
            index.push(i);
        }
        for id in ids {
            stubs.push(stub(kind, Some(id)));
            index.push(i);
        }
    }
    let mut chain: Vec<usize> = crate::claude::chain_order(&stubs)
        .into_iter()
        .map(|i| index[i])
        .collect();
    chain.dedup();
    chain
}

fn plan_claude(source: &dyn SessionLines, cut: Cut, new_id: &str) -> Result<Plan, NativeError> {
    let own = source.file_ids().len() - 1;
    let mut steps = Vec::new();
    visit_records(source, own, None, &mut |rec| {
        steps.push(ClaudeStep::of(&rec));
        Ok(true)
    })?;
    let chain = claude_main_chain(&steps);
    let prompts: Vec<usize> = chain
        .iter()
        .enumerate()
        .filter(|(_, i)| steps[**i].typed_prompt)
        .map(|(pos, _)| pos)
        .collect();
    let keep_prompts = cut_prompt(cut, prompts.len(), source.id())?;
    let mut end = prompts.get(keep_prompts).copied().unwrap_or(chain.len());
    // Never end on an unanswered tool_use.
    let answered: HashSet<&str> = chain[..end]
        .iter()
        .flat_map(|&i| steps[i].tool_results.iter().map(String::as_str))
        .collect();
    if let Some(pos) = chain[..end].iter().position(|&i| {
        steps[i]
            .tool_uses
            .iter()
            .any(|id| !answered.contains(id.as_str()))
    }) {
        end = pos;
    }
    if !chain[..end].iter().any(|&i| steps[i].typed_prompt) {
        return Err(NativeError::Invalid(format!(
            "nothing would remain of session {}: no complete turn precedes the cut; nothing was written",
            source.id()
        )));
    }
    let folder = source.claude_project_folder();
    Ok(Plan {
        forked: Forked {
            agent: Agent::Claude,
            id: new_id.to_string(),
            forked_from: source.id().to_string(),
            name: crate::layout::claude::transcript_path(&folder, new_id),
            prompts_kept: keep_prompts,
            prompts_total: prompts.len(),
        },
        keep: Keep::Claude {
            // Bookkeeping is kept when it precedes the cut in the file.
            file_cut: chain.get(end).copied().unwrap_or(steps.len()),
            chain: chain[..end].iter().copied().collect(),
            uuids: steps.into_iter().filter_map(|s| s.uuid).collect(),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rehydrate::{NativeSession, SessionOnDisk, records};
    use baton_testkit::fixtures_dir as fixtures;

    /// A fork written to memory: its facts and its bytes.
    #[derive(Debug)]
    pub(crate) struct Written {
        forked: Forked,
        pub(crate) bytes: Vec<u8>,
    }

    impl std::ops::Deref for Written {
        type Target = Forked;
        fn deref(&self) -> &Forked {
            &self.forked
        }
    }

    /// [`super::fork`] into memory.
    pub(crate) fn fork(
        src: &dyn SessionLines,
        cut: Cut,
        id: &str,
        now: jiff::Timestamp,
    ) -> Result<Written, NativeError> {
        let mut bytes = Vec::new();
        let forked = super::fork(src, cut, id, now, &mut bytes)?;
        Ok(Written { forked, bytes })
    }

    /// Every fixture session as files on disk and loaded whole.
    fn every_fixture_session() -> Vec<(SessionOnDisk, NativeSession)> {
        let codex_roots = [fixtures().join("codex"), fixtures().join("codex-legacy")];
        let claude = fixtures().join("claude/.claude/projects");
        let mut out = Vec::new();
        for (agent, root) in codex_roots
            .iter()
            .map(|r| (Agent::Codex, r))
            .chain([(Agent::Claude, &claude)])
        {
            for entry in
                walkdir::WalkDir::new(root).max_depth(if agent == Agent::Claude { 2 } else { 10 })
            {
                let path = entry.unwrap().into_path();
                if path.extension().is_none_or(|e| e != "jsonl") {
                    continue;
                }
                let roots = if agent == Agent::Codex {
                    &codex_roots[..]
                } else {
                    &[]
                };
                let disk = SessionOnDisk::locate(agent, &path, roots).unwrap();
                out.push((disk, NativeSession::load(agent, &path, roots).unwrap()));
            }
        }
        out
    }

    #[test]
    fn a_fork_streamed_from_disk_is_the_fork_of_the_loaded_session() {
        let sessions = every_fixture_session();
        assert!(sessions.len() >= 7, "{} fixture sessions", sessions.len());
        let mut compared = 0;
        for (disk, loaded) in &sessions {
            assert_eq!(disk.files.len(), loaded.files.len(), "{}", loaded.id);
            for cut in [Cut::DropLast(0), Cut::DropLast(1), Cut::BeforePrompt(2)] {
                let from_disk = fork(disk, cut, "new-id", now());
                let from_memory = fork(loaded, cut, "new-id", now());
                match (from_disk, from_memory) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a.bytes, b.bytes, "{} {cut:?}", loaded.id);
                        assert_eq!(*a, *b);
                        compared += 1;
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => panic!("{} {cut:?}: {:?} vs {:?}", loaded.id, a.is_ok(), b.is_ok()),
                }
            }
        }
        assert!(compared >= sessions.len(), "{compared} forks compared");
    }

    pub(crate) fn codex_session(id_part: &str) -> NativeSession {
        let home = fixtures().join("codex");
        let legacy = fixtures().join("codex-legacy");
        let path = [&home, &legacy]
            .iter()
            .flat_map(|h| walkdir::WalkDir::new(h).into_iter().flatten())
            .map(|e| e.into_path())
            .find(|p| p.to_string_lossy().contains(id_part))
            .expect("fixture rollout");
        NativeSession::load(Agent::Codex, &path, &[home, legacy]).unwrap()
    }

    pub(crate) fn claude_session(id_part: &str) -> NativeSession {
        let dir = fixtures().join("claude/.claude/projects/-srv-corpus-work-pub-beta");
        let path = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains(id_part))
            .unwrap();
        NativeSession::load(Agent::Claude, &path, &[]).unwrap()
    }

    fn codex_prompts(bytes: &[u8]) -> Vec<String> {
        records(bytes)
            .iter()
            .filter(|r| crate::codex::is_typed_prompt(r))
            .map(|r| {
                r["payload"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn now() -> jiff::Timestamp {
        "2027-02-03T04:05:06.789Z".parse().unwrap()
    }

    #[test]
    fn codex_fork_of_a_paginated_fork_inlines_the_parent() {
        let src = codex_session("9126");
        assert_eq!(src.files.len(), 2, "lineage includes the parent");
        let f = fork(&src, Cut::DropLast(1), "new-id", now()).unwrap();
        let recs = records(&f.bytes);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r["ordinal"].as_u64(), Some(i as u64), "contiguous ordinals");
        }
        let meta = &recs[0]["payload"];
        assert_eq!(recs[0]["type"], "session_meta");
        assert_eq!(meta["id"], "new-id");
        assert_eq!(meta["session_id"], "new-id");
        assert_eq!(meta["forked_from_id"], src.id.as_str());
        assert!(meta.get("history_base").is_none());
        assert!(meta.get("forked_from_ordinal_exclusive").is_none());
        assert_eq!(
            codex_prompts(&f.bytes),
            [
                "RUN: echo pub-tool-output-beta",
                "pub second prompt beta ünïcødé ✓",
                "pub third prompt beta"
            ]
        );
        assert_eq!((f.prompts_kept, f.prompts_total), (3, 4));
        assert_eq!(
            recs.iter().filter(|r| r["type"] == "session_meta").count(),
            1
        );
        // The tool call made in the parent comes with its output.
        let calls = recs
            .iter()
            .filter(|r| {
                r["payload"]["type"] == "function_call"
                    || r["payload"]["type"] == "function_call_output"
            })
            .count();
        assert_eq!(calls, 2);
        // The fork turn's preamble went with its prompt.
        assert_eq!(recs.last().unwrap()["payload"]["type"], "task_complete");
        assert!(
            f.name
                .starts_with("sessions/2027/02/03/rollout-2027-02-03T04-05-06-new-id")
        );
        // The source id survives only as the fork back-pointer.
        let text = String::from_utf8_lossy(&f.bytes);
        assert_eq!(text.matches(src.id.as_str()).count(), 1, "{text}");
    }

    #[test]
    fn codex_before_prompt_and_full_copy() {
        let src = codex_session("8c3d");
        let f = fork(&src, Cut::BeforePrompt(2), "n2", now()).unwrap();
        assert_eq!(codex_prompts(&f.bytes), ["RUN: echo pub-tool-output-beta"]);
        let recs = records(&f.bytes);
        assert_eq!(recs.len(), 19, "session_meta + turn 1 (ordinals 1-18)");
        assert!(
            recs.iter()
                .skip(1)
                .all(|r| r["payload"]["thread_id"] != src.id.as_str())
        );
        let full = fork(&src, Cut::DropLast(0), "n3", now()).unwrap();
        assert_eq!(codex_prompts(&full.bytes).len(), 3);
        assert_eq!(records(&full.bytes).len(), 39);
    }

    #[test]
    fn codex_legacy_fork_stays_legacy() {
        let src = codex_session("92a0");
        let f = fork(&src, Cut::DropLast(1), "n4", now()).unwrap();
        let recs = records(&f.bytes);
        assert!(recs.iter().all(|r| r.get("ordinal").is_none()));
        assert_eq!(codex_prompts(&f.bytes), ["pub legacy prompt delta"]);
        assert_eq!(recs[0]["payload"]["forked_from_id"], src.id.as_str());
    }

    #[test]
    fn nothing_left_is_an_error() {
        let src = codex_session("8c3d");
        for cut in [
            Cut::DropLast(3),
            Cut::DropLast(9),
            Cut::BeforePrompt(1),
            Cut::BeforePrompt(4),
        ] {
            let err = fork(&src, cut, "x", now()).unwrap_err();
            assert!(err.to_string().contains("nothing would remain"), "{err}");
        }
        assert!(fork(&src, Cut::BeforePrompt(0), "x", now()).is_err());
    }

    #[test]
    fn codex_dangling_call_is_dropped() {
        let meta = r#"{"timestamp":"t","type":"session_meta","payload":{"id":"s","timestamp":"2026-01-01T00:00:00Z","cwd":"/w"}}"#;
        let lines = [
            meta,
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"one"}]}}"#,
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"{}","call_id":"c1"}}"#,
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"two"}]}}"#,
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"late"}}"#,
        ];
        let src = NativeSession {
            agent: Agent::Codex,
            id: "s".into(),
            files: vec![crate::rehydrate::LineageFile {
                id: "s".into(),
                name: "sessions/2026/01/01/rollout-2026-01-01T00-00-00-s.jsonl".into(),
                bytes: (lines.join("\n") + "\n").into_bytes(),
            }],
            extras: Vec::new(),
        };
        let f = fork(&src, Cut::DropLast(1), "n", now()).unwrap();
        let recs = records(&f.bytes);
        assert_eq!(recs.len(), 2);
        assert!(recs.iter().all(|r| r["payload"]["type"] != "function_call"));
    }

    #[test]
    fn claude_fork_keeps_uuids_and_renames_the_session() {
        let src = claude_session("24618527");
        let f = fork(&src, Cut::DropLast(1), "c-new", now()).unwrap();
        let recs = records(&f.bytes);
        assert!(recs.iter().all(|r| r["sessionId"] == "c-new"));
        let types: Vec<&str> = recs.iter().filter_map(|r| r["type"].as_str()).collect();
        for dropped in CLAUDE_NOT_COPIED {
            assert!(!types.contains(&dropped), "{dropped} copied");
        }
        let prompts: Vec<_> = recs
            .iter()
            .filter(|r| crate::claude::is_typed_prompt(r))
            .map(|r| {
                r["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        assert_eq!(prompts, ["RUN: echo pub-claude-tool-zeta"]);
        let src_recs = records(&src.session_file().bytes);
        let src_uuids: HashSet<&str> = src_recs.iter().filter_map(|r| r["uuid"].as_str()).collect();
        let uuids: Vec<&str> = recs.iter().filter_map(|r| r["uuid"].as_str()).collect();
        assert_eq!(
            uuids.len(),
            14,
            "root prompt, 9 attachments, tool_use, result, snapshot, reply"
        );
        assert!(uuids.iter().all(|u| src_uuids.contains(u)));
        assert!(
            recs.iter()
                .filter(|r| r["type"] == "assistant")
                .all(|r| r["requestSessionId"] == src.id.as_str())
        );
        assert_eq!(f.name, "projects/-srv-corpus-work-pub-beta/c-new.jsonl");
        let err = fork(&src, Cut::DropLast(2), "x", now()).unwrap_err();
        assert!(err.to_string().contains("nothing would remain"));
    }

    /// A Claude session of the given chain records (as JSON) with id `id`.
    pub(crate) fn synthetic_claude(id: &str, recs: &[Value]) -> NativeSession {
        let bytes: Vec<u8> = recs.iter().flat_map(to_line).collect();
        NativeSession {
            agent: Agent::Claude,
            id: id.into(),
            files: vec![crate::rehydrate::LineageFile {
                id: id.into(),
                name: format!("projects/-w/{id}.jsonl"),
                bytes,
            }],
            extras: Vec::new(),
        }
    }

    /// One chain record: `kind` user/assistant/system, `content` its message
    /// content, at second `n`.
    pub(crate) fn rec(
        kind: &str,
        uuid: &str,
        parent: Option<&str>,
        n: u32,
        content: Value,
    ) -> Value {
        let mut r = serde_json::json!({
            "parentUuid": parent, "isSidechain": false, "type": kind, "uuid": uuid,
            "timestamp": format!("2026-01-01T00:00:{n:02}.000Z"), "sessionId": "src",
            "cwd": "/w",
        });
        if kind != "system" {
            r["message"] =
                serde_json::json!({"role": kind, "id": format!("m{n}"), "content": content});
        }
        r
    }

    fn tool_use(id: &str) -> Value {
        serde_json::json!([{"type": "tool_use", "id": id, "name": "Bash", "input": {"command": id}}])
    }

    fn tool_result(id: &str) -> Value {
        serde_json::json!([{"type": "tool_result", "tool_use_id": id, "content": format!("out {id}")}])
    }

    /// Two parallel tool calls, each its own assistant record (the second
    /// chained to the first), each result pointing at its own caller; the
    /// conversation continues from the first result, so the plain parent
    /// walk misses the second call and its result.
    pub(crate) fn parallel_calls() -> Vec<Value> {
        vec![
            rec("user", "u0", None, 0, Value::from("run both")),
            rec("assistant", "a1", Some("u0"), 1, tool_use("t1")),
            rec("assistant", "a2", Some("a1"), 2, tool_use("t2")),
            rec("user", "r2", Some("a2"), 3, tool_result("t2")),
            rec("user", "r1", Some("a1"), 4, tool_result("t1")),
            rec(
                "assistant",
                "a3",
                Some("r1"),
                5,
                serde_json::json!([{"type":"text","text":"both done"}]),
            ),
            rec("user", "u4", Some("a3"), 6, Value::from("second prompt")),
            rec(
                "assistant",
                "a5",
                Some("u4"),
                7,
                serde_json::json!([{"type":"text","text":"ok"}]),
            ),
        ]
    }

    fn uuids(bytes: &[u8]) -> Vec<String> {
        records(bytes)
            .iter()
            .filter_map(|r| r["uuid"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn claude_fork_keeps_parallel_tool_calls_and_results() {
        let src = synthetic_claude("src", &parallel_calls());
        let f = fork(&src, Cut::DropLast(1), "f1", now()).unwrap();
        assert_eq!(uuids(&f.bytes), ["u0", "a1", "a2", "r2", "r1", "a3"]);
        assert_eq!((f.prompts_kept, f.prompts_total), (1, 2));
        // Cutting before the second prompt counts prompts the same way.
        let b = fork(&src, Cut::BeforePrompt(2), "f2", now()).unwrap();
        assert_eq!(uuids(&b.bytes), uuids(&f.bytes));
    }

    #[test]
    fn claude_fork_bridges_compaction_like_the_reader() {
        let mut boundary = rec("system", "c", None, 2, Value::Null);
        boundary["subtype"] = "compact_boundary".into();
        boundary["logicalParentUuid"] = "a1".into();
        let mut summary = rec(
            "user",
            "s",
            Some("c"),
            3,
            Value::from("This session is being continued"),
        );
        summary["isCompactSummary"] = true.into();
        let recs = vec![
            rec("user", "u0", None, 0, Value::from("one")),
            rec(
                "assistant",
                "a1",
                Some("u0"),
                1,
                serde_json::json!([{"type":"text","text":"r1"}]),
            ),
            boundary,
            summary,
            rec("user", "u2", Some("s"), 4, Value::from("two")),
            rec(
                "assistant",
                "a3",
                Some("u2"),
                5,
                serde_json::json!([{"type":"text","text":"r2"}]),
            ),
        ];
        let src = synthetic_claude("src", &recs);
        // The reader (`show`) sees two prompts.
        let mut reader = crate::FileReader::new(Agent::Claude);
        let msgs = reader.feed(&src.session_file().bytes).messages;
        let shown: Vec<&str> = crate::claude::chain_order(&msgs)
            .into_iter()
            .filter(|&i| msgs[i].kind == MessageKind::Prompt)
            .map(|i| msgs[i].text.as_str())
            .collect();
        assert_eq!(shown, ["one", "two"]);
        let f = fork(&src, Cut::BeforePrompt(2), "f", now()).unwrap();
        assert_eq!((f.prompts_kept, f.prompts_total), (1, 2));
        assert_eq!(uuids(&f.bytes), ["u0", "a1", "c", "s"]);
    }

    #[test]
    fn damaged_records_never_cut_the_chain() {
        let reply = |uuid, parent, n, text: &str| {
            rec(
                "assistant",
                uuid,
                Some(parent),
                n,
                serde_json::json!([{"type":"text","text":text}]),
            )
        };
        let line = |v: &Value| String::from_utf8(to_line(v)).unwrap();
        // `a1` is cut inside an emoji; `a3`'s line is damaged beyond parsing
        // but still names its uuid; the line after `u4` is garbage whose
        // child `a5` points at a record that was never read.
        let a1 = line(&reply("a1", "u0", 1, "r1 X")).replace(" X", " \\ud83d");
        let a3 = line(&reply("a3", "u2", 3, "r2")).replace("\"r2\"", "\"r2\u{1}");
        let text = [
            line(&rec("user", "u0", None, 0, Value::from("one"))),
            a1,
            line(&rec("user", "u2", Some("a1"), 2, Value::from("two"))),
            a3,
            line(&rec("user", "u4", Some("a3"), 4, Value::from("three"))),
            "{\"parentUuid\": garbage\n".into(),
            line(&reply("a5", "lost", 5, "r5")),
            line(&rec("user", "u6", Some("a5"), 6, Value::from("four"))),
        ]
        .concat();
        let src = NativeSession {
            files: vec![crate::rehydrate::LineageFile {
                bytes: text.into_bytes(),
                ..synthetic_claude("src", &[]).files.remove(0)
            }],
            ..synthetic_claude("src", &[])
        };
        let mut reader = crate::FileReader::new(Agent::Claude);
        let chunk = reader.feed(&src.session_file().bytes);
        let issues: Vec<(u64, &str)> = chunk
            .issues
            .iter()
            .map(|i| (i.line, i.message.as_str()))
            .collect();
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert_eq!(issues[0].0, 4);
        assert!(
            issues[0].1.ends_with("continues past it (record a3)"),
            "{issues:?}"
        );
        assert_eq!(issues[1].0, 6);
        let msgs = chunk.messages;
        let shown: Vec<&str> = crate::claude::chain_order(&msgs)
            .into_iter()
            .map(|i| msgs[i].text.as_str())
            .collect();
        assert_eq!(shown, ["one", "r1 \u{FFFD}", "two", "three", "r5", "four"]);
        // The fork keeps the whole chain, the cut emoji read as U+FFFD, and
        // hangs the children of unread records where the reader does.
        let f = fork(&src, Cut::DropLast(0), "f", now()).unwrap();
        assert_eq!(f.prompts_kept, 4);
        assert_eq!(uuids(&f.bytes), ["u0", "a1", "u2", "u4", "a5", "u6"]);
        let recs = records(&f.bytes);
        let parent = |i: usize| recs[i]["parentUuid"].as_str().unwrap();
        assert_eq!((parent(3), parent(4)), ("u2", "u4"));
        assert_eq!(recs[1]["message"]["content"][0]["text"], "r1 \u{FFFD}");
    }

    #[test]
    fn claude_fork_of_a_fork_names_its_direct_source() {
        let src = synthetic_claude("src", &parallel_calls());
        let f1 = fork(&src, Cut::DropLast(0), "f1", now()).unwrap();
        let mid = NativeSession {
            files: vec![crate::rehydrate::LineageFile {
                id: "f1".into(),
                name: f1.name.clone(),
                bytes: f1.bytes.clone(),
            }],
            ..synthetic_claude("f1", &[])
        };
        let f2 = fork(&mid, Cut::DropLast(0), "f2", now()).unwrap();
        let assistants: Vec<Value> = records(&f2.bytes)
            .into_iter()
            .filter(|r| r["type"] == "assistant")
            .collect();
        assert_eq!(assistants.len(), 4);
        assert!(
            assistants.iter().all(|r| r["requestSessionId"] == "f1"),
            "{assistants:?}"
        );
        assert!(
            records(&f1.bytes)
                .iter()
                .filter(|r| r["type"] == "assistant")
                .all(|r| r["requestSessionId"] == "src")
        );
    }
}
