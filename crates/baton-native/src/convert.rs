//! Cross-agent conversion ([`plan`], [`Plan::write`]): a session of one
//! agent rewritten as a new, self-contained native session of the other,
//! which the target's real CLI resumes with the whole conversation as its
//! own history.
//!
//! The source is read through the normalized view (every file of a Codex
//! lineage, the main chain of a Claude transcript) and turned into:
//! - typed prompts and assistant replies, in order;
//! - tool calls with their outputs as the target's own records (Codex
//!   `function_call`/`custom_tool_call` and their outputs, Claude
//!   `tool_use`/`tool_result` blocks), each call answered; tool names
//!   mapped where the target has an equivalent (shell commands ↔ `Bash`,
//!   `apply_patch` of one file ↔ `Write`/`Edit`), kept otherwise;
//! - Claude subagent threads as a summary appended to the output of the
//!   call that started them.
//!
//! Injected context (AGENTS.md/CLAUDE.md, environment and permission
//! blocks), reasoning, compaction markers, images and tool calls without an
//! output are not carried over; [`Converted::dropped`] says what and how many.
//! History longer than the target's context is cut at whole turns from the
//! start (the first turn is kept, a notice marks the cut) and huge tool
//! outputs are truncated with a marker ([`Limits`]).
//!
//! Converting streams: a first pass over the source's messages keeps a few
//! facts per message (kind, call id, chain links, time) and chooses what is
//! carried, a second measures each carried item to fit the target's
//! context, a third writes the new session's lines ([`Plan::write`]), so a
//! source of any size is never held whole.

use crate::FileReader;
use crate::fork::CodexLineage;
use crate::model::{Agent, Message, MessageKind, Role, SessionFacts};
use crate::rehydrate::{
    ExtraKind, NativeError, SessionExtra, SessionLines, codex_rollout_name, to_line,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

/// Codex CLI version whose rollout format [`Plan::write`] writes.
pub const CODEX_FORMAT_VERSION: &str = "0.169.0";
/// Claude Code version whose transcript format [`Plan::write`] writes.
pub const CLAUDE_FORMAT_VERSION: &str = "2.1.330";
/// `originator` of a Codex rollout written by [`Plan::write`].
pub const CODEX_ORIGINATOR: &str = "baton_convert";

/// Size limits of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Estimated tokens (4 characters each) the converted history may hold.
    pub context_tokens: usize,
    /// Characters a tool output keeps; longer ones are cut with a marker.
    pub tool_output_chars: usize,
}

impl Limits {
    /// Limits for a target agent: its model's context window with room left
    /// for instructions, tools and the next turns (Codex 200k of 272k tokens,
    /// Claude 150k of 200k), and 100,000 characters per tool output.
    pub fn for_target(agent: Agent) -> Limits {
        Limits {
            context_tokens: match agent {
                Agent::Codex => 200_000,
                Agent::Claude => 150_000,
            },
            tool_output_chars: 100_000,
        }
    }
}

/// One kind of content not carried over, and how many items of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// What it was (`injected context`, `reasoning`, ...).
    pub what: String,
    /// How many items.
    pub count: usize,
}

/// A converted session, not yet written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Target agent.
    pub agent: Agent,
    /// The new session id.
    pub id: String,
    /// Agent of the source session.
    pub source_agent: Agent,
    /// The source session id.
    pub converted_from: String,
    /// Path relative to the target home (Codex rollout name, or
    /// `projects/<slug of cwd>/<id>.jsonl`).
    pub name: String,
    /// The source's working directory.
    pub cwd: Option<String>,
    /// The source's model.
    pub model: Option<String>,
    /// The source's git branch.
    pub git_branch: Option<String>,
    /// What was not carried over.
    pub dropped: Vec<Dropped>,
}

/// Where a converted session goes and what it says about its writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The agent to convert to.
    pub agent: Agent,
    /// Codex: the `model_provider` to record (Codex lists only the current
    /// provider's sessions).
    pub codex_provider: String,
    /// Size limits.
    pub limits: Limits,
}

/// A tool call in agent-neutral form.
#[derive(Debug, Clone, PartialEq)]
enum Tool {
    /// A shell command; `rest` holds the other arguments, kept as they are.
    Shell {
        command: String,
        rest: Map<String, Value>,
    },
    /// Create (or overwrite) a file with `content`.
    WriteFile { path: String, content: String },
    /// Replace `old` with `new` in a file.
    EditFile {
        path: String,
        old: String,
        new: String,
    },
    /// Any other tool, under its own name: JSON arguments, or free text
    /// (a Codex custom tool's input).
    Other { name: String, input: ToolInput },
}

/// Arguments of a tool without an equivalent.
#[derive(Debug, Clone, PartialEq)]
enum ToolInput {
    Json(Value),
    Text(String),
}

/// One conversation item in agent-neutral form.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Prompt(String),
    Reply(String),
    Call { id: String, tool: Tool },
    Output { id: String, text: String },
}

/// An item with the time it was recorded.
#[derive(Debug, Clone, PartialEq)]
struct Timed {
    item: Item,
    at: Option<String>,
}

/// Counter of dropped items, in first-seen order.
#[derive(Debug, Default)]
struct DropList(Vec<Dropped>);

impl DropList {
    fn add(&mut self, what: &str, count: usize) {
        if count == 0 {
            return;
        }
        match self.0.iter_mut().find(|d| d.what == what) {
            Some(d) => d.count += count,
            None => self.0.push(Dropped {
                what: what.to_string(),
                count,
            }),
        }
    }
}

/// Image parts a record holds below its model item or message.
fn record_images(record: &Value) -> usize {
    count_images(record.get("payload").or_else(|| record.get("message")))
}

/// Read `source`'s conversation record by record with one reader: Codex
/// the lineage's whole history behind the source's own `session_meta`,
/// Claude its own file. `visit` gets the messages of each record, while it
/// returns true. Returns the session facts the reader gathered and the image
/// parts of the records read (not carried over). One record is held at a
/// time.
fn read_conversation(
    source: &dyn SessionLines,
    visit: &mut dyn FnMut(Vec<Message>) -> Result<bool, NativeError>,
) -> Result<(SessionFacts, usize), NativeError> {
    let mut reader = FileReader::new(source.agent());
    let mut images = 0;
    match source.agent() {
        Agent::Codex => {
            let lineage = CodexLineage::read(source)?;
            let mut feed = |record: &Value| {
                images += record_images(record);
                visit(reader.feed(&to_line(record)).messages)
            };
            if feed(lineage.own_meta())? {
                lineage.visit_history(source, &mut |record| feed(&record))?;
            }
        }
        Agent::Claude => {
            let own = source.file_ids().len() - 1;
            let read_err = |e| NativeError::Read {
                path: source.file_path(own),
                source: e,
            };
            crate::jsonl::read_raw_lines(source.open(own)?, read_err, |offset, raw| {
                // Only a line naming an `image` type can hold one.
                if memchr::memmem::find(raw, b"image\"").is_some() {
                    images += crate::jsonl::Lines::new(raw, offset, 0)
                        .filter_map(|line| line.value().ok())
                        .map(|record| record_images(&record))
                        .sum::<usize>();
                }
                visit(reader.feed(raw).messages)
            })?;
        }
    }
    Ok((reader.state().facts.clone(), images))
}

/// The error of a source whose messages differ from one pass to the next.
fn changed_meanwhile(source: &dyn SessionLines) -> NativeError {
    NativeError::Invalid(format!(
        "session {} changed while it was being converted; nothing was written, run the command again",
        source.id()
    ))
}

/// Visit the messages of `source` that `wanted` lists by their index in
/// the stream [`read_conversation`] reads, each with the place `wanted`
/// gives it; reading stops after the last one. A wanted message the source
/// no longer holds is an error.
fn visit_wanted(
    source: &dyn SessionLines,
    wanted: &HashMap<usize, usize>,
    visit: &mut dyn FnMut(usize, Message) -> Result<(), NativeError>,
) -> Result<(), NativeError> {
    let (mut index, mut left) = (0, wanted.len());
    if left == 0 {
        return Ok(());
    }
    read_conversation(source, &mut |messages| {
        for m in messages {
            if let Some(&place) = wanted.get(&index) {
                left -= 1;
                visit(place, m)?;
            }
            index += 1;
        }
        Ok(left > 0)
    })?;
    match left {
        0 => Ok(()),
        _ => Err(changed_meanwhile(source)),
    }
}

/// Image parts below a model item or message (Codex `input_image`, Claude
/// `image` blocks, also inside tool results).
fn count_images(value: Option<&Value>) -> usize {
    match value {
        Some(Value::Object(o)) => {
            let own = matches!(
                o.get("type").and_then(Value::as_str),
                Some("input_image" | "image")
            );
            usize::from(own) + o.values().map(|v| count_images(Some(v))).sum::<usize>()
        }
        Some(Value::Array(items)) => items.iter().map(|v| count_images(Some(v))).sum(),
        _ => 0,
    }
}

/// The text of a Claude subagent thread as a summary: its prompts and
/// replies, each on its own paragraph, with the agent type.
fn subagent_summary(transcript: &SessionExtra, meta: Option<&Value>) -> String {
    let messages = FileReader::new(Agent::Claude)
        .feed(&transcript.bytes)
        .messages;
    let kind = meta
        .and_then(|m| m.get("agentType"))
        .and_then(Value::as_str)
        .unwrap_or("subagent");
    let mut out = format!("[subagent thread `{kind}` ({})]", transcript.file_name);
    for m in messages {
        let who = match m.kind {
            MessageKind::Prompt => "task",
            MessageKind::Reply => "reply",
            MessageKind::ToolCall => "tool call",
            _ => continue,
        };
        out.push_str(&format!("\n{who}: {}", m.text));
    }
    out
}

/// Summaries of a Claude session's subagent threads, keyed by the id of
/// the tool call that started each (`toolUseId` of its `.meta.json`;
/// `None` when unknown).
fn subagent_summaries(extras: &[SessionExtra]) -> Vec<(Option<String>, String)> {
    extras
        .iter()
        .filter(|x| x.kind == ExtraKind::Subagent && x.file_name.ends_with(".jsonl"))
        .map(|x| {
            let meta_name = x.file_name.replace(".jsonl", ".meta.json");
            let meta: Option<Value> = extras
                .iter()
                .find(|m| m.kind == ExtraKind::Subagent && m.file_name == meta_name)
                .and_then(|m| serde_json::from_slice(&m.bytes).ok());
            let call = meta
                .as_ref()
                .and_then(|m| m.get("toolUseId"))
                .and_then(Value::as_str)
                .map(str::to_string);
            (call, subagent_summary(x, meta.as_ref()))
        })
        .collect()
}

/// The command of a Codex argv (`["bash", "-lc", cmd]` → `cmd`, else the
/// words joined with spaces).
fn argv_command(argv: &[Value]) -> String {
    let words: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
    match words.as_slice() {
        [_, flag, cmd] if flag.starts_with('-') && flag.ends_with('c') => (*cmd).to_string(),
        _ => words.join(" "),
    }
}

/// `path` relative to `cwd` when below it, else as is.
fn relative_to(path: &str, cwd: Option<&str>) -> String {
    cwd.and_then(|c| path.strip_prefix(c.trim_end_matches('/')))
        .and_then(|rest| rest.strip_prefix('/'))
        .map_or_else(|| path.to_string(), str::to_string)
}

/// `path` made absolute against `cwd` (Claude file tools take absolute paths).
fn absolute_in(path: &str, cwd: Option<&str>) -> String {
    match cwd {
        Some(c) if !path.starts_with('/') => format!("{}/{path}", c.trim_end_matches('/')),
        _ => path.to_string(),
    }
}

/// One `apply_patch` of a single added file, or a single update hunk, as a
/// file tool; anything else is `None` (kept as `apply_patch`).
fn parse_patch(patch: &str, cwd: Option<&str>) -> Option<Tool> {
    let body = patch
        .trim_end()
        .strip_prefix("*** Begin Patch\n")?
        .strip_suffix("*** End Patch")?;
    let mut lines = body.lines();
    let header = lines.next()?;
    let rest: Vec<&str> = lines.collect();
    if rest.iter().any(|l| l.starts_with("*** ")) {
        return None; // several files, a move, or a deletion
    }
    if let Some(path) = header.strip_prefix("*** Add File: ") {
        let mut content = String::new();
        for l in &rest {
            content.push_str(l.strip_prefix('+')?);
            content.push('\n');
        }
        return Some(Tool::WriteFile {
            path: absolute_in(path, cwd),
            content,
        });
    }
    let path = header.strip_prefix("*** Update File: ")?;
    let hunk = rest.strip_prefix(&["@@"]).unwrap_or(&rest);
    if hunk.is_empty() || hunk.iter().any(|l| l.starts_with("@@")) {
        return None;
    }
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for l in hunk {
        match l.split_at_checked(1) {
            Some(("-", t)) => old.push(t),
            Some(("+", t)) => new.push(t),
            Some((" ", t)) => {
                old.push(t);
                new.push(t);
            }
            _ => return None,
        }
    }
    Some(Tool::EditFile {
        path: absolute_in(path, cwd),
        old: old.join("\n"),
        new: new.join("\n"),
    })
}

/// A file tool as an `apply_patch` patch (paths relative to `cwd`).
fn to_patch(tool: &Tool, cwd: Option<&str>) -> Option<String> {
    let (header, lines) = match tool {
        Tool::WriteFile { path, content } => (
            format!("*** Add File: {}", relative_to(path, cwd)),
            content.lines().map(|l| format!("+{l}")).collect::<Vec<_>>(),
        ),
        Tool::EditFile { path, old, new } => {
            let mut lines = vec!["@@".to_string()];
            lines.extend(old.split('\n').map(|l| format!("-{l}")));
            lines.extend(new.split('\n').map(|l| format!("+{l}")));
            (
                format!("*** Update File: {}", relative_to(path, cwd)),
                lines,
            )
        }
        _ => return None,
    };
    let mut patch = format!("*** Begin Patch\n{header}\n");
    for l in lines {
        patch.push_str(&l);
        patch.push('\n');
    }
    patch.push_str("*** End Patch");
    Some(patch)
}

/// A source tool call (normalized `tool_name` and `text`) in neutral form.
fn neutral_tool(agent: Agent, name: &str, text: &str, cwd: Option<&str>) -> Tool {
    let json: Option<Value> = serde_json::from_str(text).ok();
    let object = json.as_ref().and_then(Value::as_object).cloned();
    let other = || Tool::Other {
        name: name.to_string(),
        input: match &json {
            Some(v) if v.is_object() => ToolInput::Json(v.clone()),
            _ => ToolInput::Text(text.to_string()),
        },
    };
    let shell = |key: &str| {
        let mut rest = object.clone()?;
        let command = match rest.remove(key)? {
            Value::String(s) => s,
            Value::Array(argv) => argv_command(&argv),
            _ => return None,
        };
        Some(Tool::Shell { command, rest })
    };
    let text_field = |key: &str| {
        object
            .as_ref()
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mapped = match (agent, name) {
        (Agent::Codex, "exec_command") => shell("cmd"),
        (Agent::Codex, "shell" | "shell_command" | "local_shell") => shell("command"),
        (Agent::Codex, "apply_patch") => {
            let patch = text_field("input").unwrap_or_else(|| text.to_string());
            parse_patch(&patch, cwd)
        }
        (Agent::Claude, "Bash") => shell("command"),
        (Agent::Claude, "Write") => {
            let keys_ok = object.as_ref().is_some_and(|o| o.len() == 2);
            match (text_field("file_path"), text_field("content")) {
                (Some(path), Some(content)) if keys_ok => Some(Tool::WriteFile { path, content }),
                _ => None,
            }
        }
        (Agent::Claude, "Edit") => {
            let keys_ok = object.as_ref().is_some_and(|o| o.len() == 3);
            match (
                text_field("file_path"),
                text_field("old_string"),
                text_field("new_string"),
            ) {
                (Some(path), Some(old), Some(new)) if keys_ok => {
                    Some(Tool::EditFile { path, old, new })
                }
                _ => None,
            }
        }
        _ => None,
    };
    mapped.unwrap_or_else(other)
}

/// A source message the conversion carries: its index in the stream
/// [`read_conversation`] reads, its kind (prompt, reply, tool call or tool
/// output), its time, and for an output the subagent summaries appended
/// to it (indices into [`Neutral::summaries`]).
#[derive(Debug, Clone)]
struct Slot {
    message: usize,
    kind: MessageKind,
    at: Option<String>,
    summaries: Vec<usize>,
}

/// The source messages (`messages`, text-less, taken in `order`) the
/// conversion carries: every call answered and every output called, each
/// output with the subagent summaries whose call it answers
/// (`summary_calls`); the rest counted in `dropped`.
fn choose_items(
    messages: &[Message],
    order: &[usize],
    summary_calls: &[Option<String>],
    dropped: &mut DropList,
) -> Vec<Slot> {
    let ids = |kind: MessageKind| -> HashSet<&str> {
        order
            .iter()
            .map(|&i| &messages[i])
            .filter(|m| m.kind == kind)
            .filter_map(|m| m.call_id.as_deref())
            .collect()
    };
    let (called, answered) = (ids(MessageKind::ToolCall), ids(MessageKind::ToolResult));
    let mut seen_calls = HashSet::new();
    let mut seen_outputs = HashSet::new();
    let mut unattached: Vec<usize> = (0..summary_calls.len()).collect();
    let mut slots = Vec::new();
    for &i in order {
        let m = &messages[i];
        let mut summaries = Vec::new();
        match m.kind {
            MessageKind::Prompt | MessageKind::Reply => {}
            MessageKind::Context => {
                dropped.add("injected context", 1);
                continue;
            }
            MessageKind::Other if m.role == Role::Assistant => {
                dropped.add("reasoning", 1);
                continue;
            }
            MessageKind::Other => {
                dropped.add("compaction marker", 1);
                continue;
            }
            MessageKind::ToolCall => {
                let id = m.call_id.as_deref().unwrap_or_default();
                if !answered.contains(id) || !seen_calls.insert(id) {
                    dropped.add("tool call without an output", 1);
                    continue;
                }
            }
            MessageKind::ToolResult => {
                let id = m.call_id.as_deref().unwrap_or_default();
                if !called.contains(id) || !seen_calls.contains(id) || !seen_outputs.insert(id) {
                    dropped.add("tool output without its call", 1);
                    continue;
                }
                while let Some(at) = unattached
                    .iter()
                    .position(|&k| summary_calls[k].as_deref() == Some(id))
                {
                    summaries.push(unattached.remove(at));
                }
            }
        }
        slots.push(Slot {
            message: i,
            kind: m.kind,
            at: m.timestamp.clone(),
            summaries,
        });
    }
    dropped.add("subagent thread without its call", unattached.len());
    slots
}

/// What turns a carried source message into its neutral item.
struct Neutral {
    /// Agent of the source.
    agent: Agent,
    /// The source's working directory (file tools' paths are made
    /// absolute against it).
    cwd: Option<String>,
    /// Summaries of the source's subagent threads.
    summaries: Vec<String>,
    /// Characters a tool output keeps.
    output_chars: usize,
}

impl Neutral {
    /// The item of message `m`, carried as `slot`, and whether its output
    /// was truncated; an error when `m` is not the message `slot` was
    /// chosen from (the source changed).
    fn item(
        &self,
        slot: &Slot,
        m: Message,
        source: &dyn SessionLines,
    ) -> Result<(Timed, bool), NativeError> {
        if m.kind != slot.kind {
            return Err(changed_meanwhile(source));
        }
        let mut truncated = false;
        let item = match m.kind {
            MessageKind::Prompt => Item::Prompt(m.text),
            MessageKind::Reply => Item::Reply(m.text),
            MessageKind::ToolCall => {
                let name = m.tool_name.as_deref().unwrap_or("unknown");
                Item::Call {
                    tool: neutral_tool(self.agent, name, &m.text, self.cwd.as_deref()),
                    id: m.call_id.unwrap_or_default(),
                }
            }
            _ => {
                let mut text = m.text;
                for &k in &slot.summaries {
                    text.push_str("\n\n");
                    text.push_str(&self.summaries[k]);
                }
                truncated = truncate_output(&mut text, self.output_chars);
                Item::Output {
                    id: m.call_id.unwrap_or_default(),
                    text,
                }
            }
        };
        Ok((
            Timed {
                item,
                at: m.timestamp,
            },
            truncated,
        ))
    }
}

/// Estimated tokens of an item (4 characters each, at least 1).
fn tokens(item: &Item) -> usize {
    let chars = match item {
        Item::Prompt(t) | Item::Reply(t) | Item::Output { text: t, .. } => t.len(),
        Item::Call { tool, .. } => match tool {
            Tool::Shell { command, rest } => {
                command.len() + Value::Object(rest.clone()).to_string().len()
            }
            Tool::WriteFile { path, content } => path.len() + content.len(),
            Tool::EditFile { path, old, new } => path.len() + old.len() + new.len(),
            Tool::Other { input, .. } => match input {
                ToolInput::Json(v) => v.to_string().len(),
                ToolInput::Text(t) => t.len(),
            },
        },
    };
    chars / 4 + 1
}

/// Truncate a tool output longer than `limit` characters, with a marker;
/// whether it was.
fn truncate_output(text: &mut String, limit: usize) -> bool {
    let total = text.chars().count();
    if total <= limit {
        return false;
    }
    let cut = text
        .char_indices()
        .nth(limit)
        .map_or(text.len(), |(i, _)| i);
    text.truncate(cut);
    text.push_str(&format!(
        "\n[baton: output truncated to {limit} of {total} characters]"
    ));
    true
}

/// The estimated tokens of each slot's item, and how many outputs were
/// truncated: one pass over `source` building each carried item.
fn measure(
    source: &dyn SessionLines,
    slots: &[Slot],
    neutral: &Neutral,
) -> Result<(Vec<usize>, usize), NativeError> {
    let wanted = slots
        .iter()
        .enumerate()
        .map(|(s, slot)| (slot.message, s))
        .collect();
    let (mut sizes, mut truncated) = (vec![0; slots.len()], 0);
    visit_wanted(source, &wanted, &mut |s, m| {
        let (timed, cut) = neutral.item(&slots[s], m, source)?;
        sizes[s] = tokens(&timed.item);
        truncated += usize::from(cut);
        Ok(())
    })?;
    Ok((sizes, truncated))
}

/// One item of the converted history: a carried source message, or the
/// notice prompt where earlier turns were cut.
#[derive(Debug, Clone)]
enum Entry {
    Carried(Slot),
    CutNotice(Timed),
}

impl Entry {
    /// Whether the entry is an assistant content block (a reply or a call).
    fn is_block(&self) -> bool {
        matches!(self, Entry::Carried(s) if matches!(s.kind, MessageKind::Reply | MessageKind::ToolCall))
    }
}

/// Cut whole turns from the start (after the first) until the history fits
/// `budget` estimated tokens (`sizes`, one per slot), with a notice prompt
/// at the cut.
fn fit_context(
    slots: Vec<Slot>,
    sizes: &[usize],
    budget: usize,
    dropped: &mut DropList,
) -> Vec<Entry> {
    let mut turns: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        if slot.kind == MessageKind::Prompt || turns.is_empty() {
            turns.push(i..i);
        }
        turns.last_mut().expect("a turn").end = i + 1;
    }
    let size = |turn: &std::ops::Range<usize>| sizes[turn.clone()].iter().sum::<usize>();
    let total: usize = sizes.iter().sum();
    let whole = |slots: Vec<Slot>| slots.into_iter().map(Entry::Carried).collect();
    if total <= budget || turns.len() <= 2 {
        return whole(slots);
    }
    let first = size(&turns[0]);
    let mut kept_from = turns.len();
    let mut used = first;
    while kept_from > 1 && used + size(&turns[kept_from - 1]) <= budget {
        kept_from -= 1;
        used += size(&turns[kept_from]);
    }
    // Always keep the latest turn, even when it alone is over budget.
    kept_from = kept_from.min(turns.len() - 1);
    let cut = kept_from - 1;
    if cut == 0 {
        return whole(slots);
    }
    dropped.add("earlier turns cut to fit the target's context", cut);
    let (first_end, kept_start) = (turns[0].end, turns[kept_from].start);
    let mut notice = Some(Entry::CutNotice(Timed {
        item: Item::Prompt(format!(
            "[baton: {cut} earlier turn(s) of this conversation were left out here to fit the model's context]"
        )),
        at: slots[kept_start].at.clone(),
    }));
    let mut entries = Vec::with_capacity(first_end + 1 + slots.len() - kept_start);
    for (i, slot) in slots.into_iter().enumerate() {
        if i == kept_start {
            entries.extend(notice.take());
        }
        if i < first_end || i >= kept_start {
            entries.push(Entry::Carried(slot));
        }
    }
    entries
}

/// Normalized RFC 3339 time with milliseconds, or `now`.
fn stamp(at: Option<&str>, now: &jiff::Timestamp) -> String {
    let t = at
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .unwrap_or(*now);
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A conversion decided by [`plan`] and not yet written: the new session's
/// facts and which source messages it carries, in order.
pub struct Plan {
    /// The converted session as it will be written.
    pub converted: Converted,
    neutral: Neutral,
    entries: Vec<Entry>,
    /// Codex: the `model_provider` to record.
    codex_provider: String,
    now: jiff::Timestamp,
    /// Claude: the random base of the records' uuids, so every write of
    /// the plan gives the same bytes.
    uuid_base: u128,
}

/// Plan converting `source` into a new session of `target.agent` with id
/// `new_id`, created at `now` (see the module docs): two passes over the
/// source's messages. The source must be of the other agent and hold at
/// least one typed prompt.
pub fn plan(
    source: &dyn SessionLines,
    target: &Target,
    new_id: &str,
    now: jiff::Timestamp,
) -> Result<Plan, NativeError> {
    let agent = source.agent();
    if agent == target.agent {
        return Err(NativeError::Invalid(format!(
            "session {} is already a {} session; use `baton fork` for a copy of the same agent",
            source.id(),
            target.agent
        )));
    }
    let mut messages = Vec::new();
    let (facts, images) = read_conversation(source, &mut |read| {
        messages.extend(read.into_iter().map(|m| Message {
            text: String::new(),
            ..m
        }));
        Ok(true)
    })?;
    let order: Vec<usize> = match agent {
        Agent::Claude => crate::claude::chain_order(&messages),
        Agent::Codex => (0..messages.len()).collect(),
    };
    let mut dropped = DropList::default();
    dropped.add("image", images);
    let (summary_calls, summaries): (Vec<_>, Vec<_>) =
        subagent_summaries(&source.extras()?).into_iter().unzip();
    let slots = choose_items(&messages, &order, &summary_calls, &mut dropped);
    drop(messages);
    if !slots.iter().any(|s| s.kind == MessageKind::Prompt) {
        return Err(NativeError::Invalid(format!(
            "session {} has no typed prompt to carry over; nothing was written",
            source.id()
        )));
    }
    let limits = target.limits;
    let neutral = Neutral {
        agent,
        cwd: source.cwd().or_else(|| facts.cwd.clone()),
        summaries,
        output_chars: limits.tool_output_chars,
    };
    let (sizes, truncated) = measure(source, &slots, &neutral)?;
    dropped.add(
        &format!(
            "tool output text beyond {} characters",
            limits.tool_output_chars
        ),
        truncated,
    );
    let entries = fit_context(slots, &sizes, limits.context_tokens, &mut dropped);
    let name = match target.agent {
        Agent::Codex => codex_rollout_name(new_id, &now),
        Agent::Claude => {
            crate::layout::claude::transcript_path(&source.claude_project_folder(), new_id)
        }
    };
    Ok(Plan {
        converted: Converted {
            agent: target.agent,
            id: new_id.to_string(),
            source_agent: agent,
            converted_from: source.id().to_string(),
            name,
            cwd: neutral.cwd.clone(),
            model: facts.model,
            git_branch: facts.git_branch.filter(|b| b != "HEAD"),
            dropped: dropped.0,
        },
        neutral,
        entries,
        codex_provider: target.codex_provider.clone(),
        now,
        uuid_base: uuid::Uuid::new_v4().as_u128(),
    })
}

impl Plan {
    /// Write the converted session's lines to `out`, reading `source` (the
    /// session the plan was made from) once more. An item read before its
    /// place in the history (Claude's parallel tool calls, re-attached in
    /// chain order) waits in memory until its place comes.
    pub fn write(&self, source: &dyn SessionLines, out: &mut dyn Write) -> Result<(), NativeError> {
        let wanted = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(e, entry)| match entry {
                Entry::Carried(slot) => Some((slot.message, e)),
                Entry::CutNotice(_) => None,
            })
            .collect();
        let mut render = Render::new(self, out);
        render.start()?;
        visit_wanted(source, &wanted, &mut |e, m| match &self.entries[e] {
            Entry::Carried(slot) => {
                let (timed, _) = self.neutral.item(slot, m, source)?;
                render.arrive(e, timed)
            }
            Entry::CutNotice(_) => Ok(()),
        })?;
        match render.next == self.entries.len() {
            true => Ok(()),
            false => Err(changed_meanwhile(source)),
        }
    }
}

/// Writes a plan's entries in order as the target's lines.
struct Render<'a> {
    plan: &'a Plan,
    out: &'a mut dyn Write,
    /// The entry to write next.
    next: usize,
    /// Items read before their entry's turn, by entry.
    waiting: BTreeMap<usize, Timed>,
    /// Codex: calls written as custom tool calls (their outputs follow suit).
    custom_calls: HashSet<String>,
    /// Claude: the record written last.
    parent: Option<String>,
    /// Claude: the message id of the assistant reply being written.
    reply_id: Option<String>,
    /// Claude: the record of each call written, by call id.
    call_records: HashMap<String, String>,
}

impl<'a> Render<'a> {
    fn new(plan: &'a Plan, out: &'a mut dyn Write) -> Self {
        Render {
            plan,
            out,
            next: 0,
            waiting: BTreeMap::new(),
            custom_calls: HashSet::new(),
            parent: None,
            reply_id: None,
            call_records: HashMap::new(),
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<(), NativeError> {
        self.out.write_all(bytes).map_err(NativeError::Output)
    }

    /// Write the head of the file (Codex: its `session_meta`) and the
    /// entries that need no source message.
    fn start(&mut self) -> Result<(), NativeError> {
        if self.plan.converted.agent == Agent::Codex {
            let meta = self.codex_meta();
            self.emit(&meta)?;
        }
        self.write_ready()
    }

    /// The item of entry `e` was read: write it, and what follows it
    /// that is ready, once its turn comes.
    fn arrive(&mut self, e: usize, timed: Timed) -> Result<(), NativeError> {
        self.waiting.insert(e, timed);
        self.write_ready()
    }

    /// Write entries from the next one on while each is at hand.
    fn write_ready(&mut self) -> Result<(), NativeError> {
        let plan = self.plan;
        while let Some(entry) = plan.entries.get(self.next) {
            let lines = match entry {
                Entry::CutNotice(timed) => self.lines(timed),
                Entry::Carried(_) => match self.waiting.remove(&self.next) {
                    Some(timed) => self.lines(&timed),
                    None => break,
                },
            };
            self.emit(&lines)?;
            self.next += 1;
        }
        Ok(())
    }

    /// The target's lines of the next entry, `t`.
    fn lines(&mut self, t: &Timed) -> Vec<u8> {
        match self.plan.converted.agent {
            Agent::Codex => self.codex_lines(t),
            Agent::Claude => self.claude_line(t),
        }
    }

    /// The Codex `session_meta` line (legacy layout: no ordinals, which
    /// Codex 0.169 resumes and appends to as such).
    fn codex_meta(&self) -> Vec<u8> {
        let c = &self.plan.converted;
        let created = stamp(None, &self.plan.now);
        let mut meta = json!({
            "id": c.id,
            "timestamp": created,
            "cwd": c.cwd.clone().unwrap_or_default(),
            "originator": CODEX_ORIGINATOR,
            "cli_version": CODEX_FORMAT_VERSION,
            "source": "cli",
            "model_provider": self.plan.codex_provider,
        });
        if let Some(branch) = &c.git_branch {
            meta["git"] = json!({ "branch": branch });
        }
        to_line(&json!({"timestamp": created, "type": "session_meta", "payload": meta}))
    }

    /// The Codex rollout lines of `t`.
    fn codex_lines(&mut self, t: &Timed) -> Vec<u8> {
        let cwd = self.plan.converted.cwd.as_deref();
        let at = stamp(t.at.as_deref(), &self.plan.now);
        let line = |payload: Value| {
            to_line(&json!({"timestamp": at, "type": "response_item", "payload": payload}))
        };
        match &t.item {
            Item::Prompt(text) => {
                let mut out = line(json!({"type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": text}]}));
                out.extend(to_line(&json!({"timestamp": at, "type": "event_msg",
                    "payload": {"type": "user_message", "message": text, "images": []}})));
                out
            }
            Item::Reply(text) => line(json!({"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": text}]})),
            Item::Call { id, tool } => {
                let payload = match tool {
                    Tool::Shell { command, rest } => {
                        let mut args = Map::new();
                        args.insert("cmd".into(), Value::from(command.clone()));
                        args.extend(rest.clone());
                        json!({"type": "function_call", "name": "exec_command",
                            "arguments": Value::Object(args).to_string(), "call_id": id})
                    }
                    Tool::WriteFile { .. } | Tool::EditFile { .. } => {
                        self.custom_calls.insert(id.clone());
                        json!({"type": "custom_tool_call", "status": "completed", "call_id": id,
                            "name": "apply_patch", "input": to_patch(tool, cwd)})
                    }
                    Tool::Other {
                        name,
                        input: ToolInput::Text(text),
                    } => {
                        self.custom_calls.insert(id.clone());
                        json!({"type": "custom_tool_call", "status": "completed", "call_id": id,
                            "name": name, "input": text})
                    }
                    Tool::Other {
                        name,
                        input: ToolInput::Json(v),
                    } => {
                        json!({"type": "function_call", "name": name,
                            "arguments": v.to_string(), "call_id": id})
                    }
                };
                line(payload)
            }
            Item::Output { id, text } => {
                let kind = if self.custom_calls.contains(id) {
                    "custom_tool_call_output"
                } else {
                    "function_call_output"
                };
                line(json!({"type": kind, "call_id": id, "output": text}))
            }
        }
    }

    /// The Claude transcript line of `t`: one chain, each assistant content
    /// block its own record (consecutive blocks share a message id, as
    /// Claude writes one reply), each tool result a user record answering
    /// its call.
    fn claude_line(&mut self, t: &Timed) -> Vec<u8> {
        let (plan, i) = (self.plan, self.next);
        let c = &plan.converted;
        let id = c.id.as_str();
        // The plan's random v4 uuid with the entry's index in its low 48
        // (node) bits: still a v4 uuid, the same on every write of the plan.
        let uuid = uuid::Uuid::from_u128(plan.uuid_base ^ i as u128).to_string();
        let mut rec = json!({
            "parentUuid": self.parent, "isSidechain": false, "userType": "external",
            "cwd": c.cwd.clone().unwrap_or_default(), "sessionId": id,
            "version": CLAUDE_FORMAT_VERSION,
            "gitBranch": c.git_branch.clone().unwrap_or_else(|| "HEAD".into()),
            "uuid": uuid, "timestamp": stamp(t.at.as_deref(), &plan.now),
        });
        match &t.item {
            Item::Prompt(text) => {
                self.reply_id = None;
                rec["type"] = "user".into();
                rec["message"] = json!({"role": "user", "content": text});
            }
            Item::Output { id: call, text } => {
                self.reply_id = None;
                rec["type"] = "user".into();
                rec["message"] = json!({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": call, "content": text, "is_error": false}]});
                if let Some(caller) = self.call_records.get(call) {
                    rec["sourceToolAssistantUUID"] = caller.clone().into();
                }
            }
            Item::Reply(text) => {
                let block = json!({"type": "text", "text": text});
                self.assistant_record(&mut rec, block, false);
            }
            Item::Call { id: call, tool } => {
                self.call_records.insert(call.clone(), uuid.clone());
                let (name, input) = claude_tool(tool);
                let block = json!({"type": "tool_use", "id": call, "name": name, "input": input});
                self.assistant_record(&mut rec, block, true);
            }
        }
        self.parent = Some(uuid);
        to_line(&rec)
    }

    /// Make `rec` the assistant record of the next entry, holding the
    /// content `block` (a tool call when `is_call`).
    fn assistant_record(&mut self, rec: &mut Value, block: Value, is_call: bool) {
        let (plan, i) = (self.plan, self.next);
        let id = plan.converted.id.as_str();
        let msg_id = self
            .reply_id
            .get_or_insert_with(|| format!("msg_baton_{}_{:04}", &id[..8.min(id.len())], i + 1))
            .clone();
        let next_is_block = plan.entries.get(i + 1).is_some_and(Entry::is_block);
        let stop = match (next_is_block, is_call) {
            (true, _) => Value::Null,
            (false, true) => "tool_use".into(),
            (false, false) => "end_turn".into(),
        };
        rec["type"] = "assistant".into();
        rec["message"] = json!({
            "id": msg_id, "type": "message", "role": "assistant",
            "model": plan.converted.model.clone().unwrap_or_else(|| "unknown".into()),
            "content": [block], "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        });
    }
}

/// A neutral tool call as Claude's tool name and input.
fn claude_tool(tool: &Tool) -> (String, Value) {
    match tool {
        Tool::Shell { command, rest } => {
            let mut input = Map::new();
            input.insert("command".into(), Value::from(command.clone()));
            input.extend(rest.clone());
            ("Bash".into(), Value::Object(input))
        }
        Tool::WriteFile { path, content } => (
            "Write".into(),
            json!({"file_path": path, "content": content}),
        ),
        Tool::EditFile { path, old, new } => (
            "Edit".into(),
            json!({"file_path": path, "old_string": old, "new_string": new}),
        ),
        Tool::Other { name, input } => (
            name.clone(),
            match input {
                ToolInput::Json(v) => v.clone(),
                ToolInput::Text(t) => json!({ "input": t }),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::tests::{claude_session, codex_session, rec, synthetic_claude};
    use crate::rehydrate::{LineageFile, NativeSession};
    use proptest::prelude::*;

    /// A conversion written to memory: its facts and its bytes.
    #[derive(Debug)]
    struct Written {
        converted: Converted,
        bytes: Vec<u8>,
    }

    impl std::ops::Deref for Written {
        type Target = Converted;
        fn deref(&self) -> &Converted {
            &self.converted
        }
    }

    impl Written {
        /// The converted session as it will be loaded once written.
        fn session(&self) -> NativeSession {
            NativeSession {
                agent: self.agent,
                id: self.id.clone(),
                files: vec![LineageFile {
                    id: self.id.clone(),
                    name: self.name.clone(),
                    bytes: self.bytes.clone(),
                }],
                extras: Vec::new(),
            }
        }
    }

    /// [`plan`] then [`Plan::write`] into memory.
    fn convert(
        source: &dyn SessionLines,
        target: &Target,
        new_id: &str,
        now: jiff::Timestamp,
    ) -> Result<Written, NativeError> {
        let plan = plan(source, target, new_id, now)?;
        let mut bytes = Vec::new();
        plan.write(source, &mut bytes)?;
        Ok(Written {
            converted: plan.converted,
            bytes,
        })
    }

    fn now() -> jiff::Timestamp {
        "2027-03-04T05:06:07.890Z".parse().unwrap()
    }

    fn target(agent: Agent) -> Target {
        Target {
            agent,
            codex_provider: "openai".into(),
            limits: Limits::for_target(agent),
        }
    }

    fn other(agent: Agent) -> Agent {
        match agent {
            Agent::Codex => Agent::Claude,
            Agent::Claude => Agent::Codex,
        }
    }

    /// What a conversion must carry: (kind, tool name, text), tool inputs
    /// as parsed JSON text so key order and spacing do not matter, tool
    /// names in Claude's vocabulary.
    fn carried(session: &NativeSession) -> Vec<(MessageKind, Option<String>, String)> {
        let mut messages = Vec::new();
        read_conversation(session, &mut |read| {
            messages.extend(read);
            Ok(true)
        })
        .unwrap();
        let order = match session.agent {
            Agent::Claude => crate::claude::chain_order(&messages),
            Agent::Codex => (0..messages.len()).collect(),
        };
        order
            .into_iter()
            .map(|i| &messages[i])
            .filter(|m| {
                matches!(
                    m.kind,
                    MessageKind::Prompt
                        | MessageKind::Reply
                        | MessageKind::ToolCall
                        | MessageKind::ToolResult
                )
            })
            .map(|m| {
                let text = match m.kind {
                    MessageKind::ToolCall => serde_json::from_str::<Value>(&m.text)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|_| m.text.clone()),
                    _ => m.text.clone(),
                };
                let name = (m.kind == MessageKind::ToolCall)
                    .then(|| m.tool_name.clone())
                    .flatten();
                (m.kind, name, text)
            })
            .collect()
    }

    /// Every fixture session (Codex 0.169, 0.58 and Claude).
    fn fixture_sessions() -> Vec<NativeSession> {
        let fx = baton_testkit::fixtures_dir();
        let roots = [fx.join("codex"), fx.join("codex-legacy")];
        let mut out = Vec::new();
        for root in &roots {
            for e in walkdir::WalkDir::new(root).into_iter().flatten() {
                if e.path().extension().is_some_and(|x| x == "jsonl") {
                    out.push(NativeSession::load(Agent::Codex, e.path(), &roots).unwrap());
                }
            }
        }
        for e in walkdir::WalkDir::new(fx.join("claude/.claude/projects"))
            .into_iter()
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "jsonl") {
                out.push(NativeSession::load(Agent::Claude, e.path(), &[]).unwrap());
            }
        }
        assert!(out.len() >= 7, "the fixture corpus");
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Any fixture session converted to the other agent and back keeps
        /// every prompt, reply, tool call and tool output, with equal text.
        #[test]
        fn there_and_back_keeps_the_conversation(
            session in prop::sample::select(fixture_sessions()),
            ids in (any::<u64>(), any::<u64>()),
        ) {
            let to = other(session.agent);
            let there_id = format!("00000000-0000-4000-8000-{:012x}", ids.0 & 0xffff_ffff_ffff);
            let back_id = format!("00000000-0000-4000-8000-{:012x}", ids.1 & 0xffff_ffff_ffff);
            let there = convert(&session, &target(to), &there_id, now()).unwrap();
            let back = convert(&there.session(), &target(session.agent), &back_id, now()).unwrap();
            prop_assert_eq!(carried(&back.session()), carried(&session));
            prop_assert_eq!(&back.converted_from, &there_id);
            prop_assert_eq!(&there.converted_from, &session.id);
            // The sources are only read.
            prop_assert!(there.bytes != session.session_file().bytes);
        }
    }

    #[test]
    fn codex_to_claude_maps_the_shell_tool_and_drops_injected_context() {
        let src = codex_session("8c3d");
        let c = convert(&src, &target(Agent::Claude), "c-1", now()).unwrap();
        assert_eq!(c.name, "projects/-srv-corpus-work-pub-beta/c-1.jsonl");
        let recs = crate::rehydrate::records(&c.bytes);
        assert!(recs.iter().all(|r| r["sessionId"] == "c-1"));
        let uses: Vec<&Value> = recs
            .iter()
            .flat_map(|r| r["message"]["content"].as_array().into_iter().flatten())
            .filter(|b| b["type"] == "tool_use")
            .collect();
        assert_eq!(uses.len(), 1);
        assert_eq!(uses[0]["name"], "Bash");
        assert_eq!(uses[0]["input"]["command"], "echo pub-tool-output-beta");
        // The tool result answers its call and names the calling record.
        let result = recs
            .iter()
            .find(|r| r["message"]["content"][0]["type"] == "tool_result")
            .unwrap();
        let caller = recs
            .iter()
            .find(|r| r["message"]["content"][0]["type"] == "tool_use")
            .unwrap();
        assert_eq!(result["parentUuid"], caller["uuid"]);
        assert_eq!(result["sourceToolAssistantUUID"], caller["uuid"]);
        assert_eq!(caller["message"]["stop_reason"], "tool_use");
        // One chain: every record's parent is the record before it.
        for pair in recs.windows(2) {
            assert_eq!(pair[1]["parentUuid"], pair[0]["uuid"]);
        }
        let whats: Vec<&str> = c.dropped.iter().map(|d| d.what.as_str()).collect();
        assert!(whats.contains(&"injected context"), "{whats:?}");
        let text = String::from_utf8_lossy(&c.bytes);
        assert!(!text.contains("<environment_context>"), "{text}");
    }

    #[test]
    fn claude_to_codex_writes_response_items_codex_resumes() {
        let src = claude_session("24618527");
        let c = convert(&src, &target(Agent::Codex), "x-1", now()).unwrap();
        assert!(
            c.name
                .starts_with("sessions/2027/03/04/rollout-2027-03-04T05-06-07-x-1")
        );
        let recs = crate::rehydrate::records(&c.bytes);
        assert_eq!(recs[0]["type"], "session_meta");
        assert_eq!(recs[0]["payload"]["id"], "x-1");
        assert_eq!(recs[0]["payload"]["cwd"], "/srv/corpus/work-pub/beta");
        assert!(recs.iter().all(|r| r.get("ordinal").is_none()));
        let items: Vec<(&str, &str)> = recs
            .iter()
            .filter(|r| r["type"] == "response_item")
            .map(|r| {
                (
                    r["payload"]["type"].as_str().unwrap(),
                    r["payload"]["role"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            items,
            [
                ("message", "user"),
                ("function_call", ""),
                ("function_call_output", ""),
                ("message", "assistant"),
                ("message", "user"),
                ("message", "assistant"),
            ]
        );
        let call = recs
            .iter()
            .find(|r| r["payload"]["type"] == "function_call")
            .unwrap();
        assert_eq!(call["payload"]["name"], "exec_command");
        let args: Value =
            serde_json::from_str(call["payload"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args["cmd"], "echo pub-claude-tool-zeta");
    }

    #[test]
    fn apply_patch_maps_to_write_and_edit_and_back() {
        let cwd = Some("/w");
        let add = "*** Begin Patch\n*** Add File: a.txt\n+one\n+two\n*** End Patch";
        let tool = parse_patch(add, cwd).unwrap();
        assert_eq!(
            tool,
            Tool::WriteFile {
                path: "/w/a.txt".into(),
                content: "one\ntwo\n".into()
            }
        );
        assert_eq!(to_patch(&tool, cwd).as_deref(), Some(add));
        let update = "*** Begin Patch\n*** Update File: src/b.rs\n@@\n-old\n+new\n*** End Patch";
        let tool = parse_patch(update, cwd).unwrap();
        assert_eq!(
            tool,
            Tool::EditFile {
                path: "/w/src/b.rs".into(),
                old: "old".into(),
                new: "new".into()
            }
        );
        assert_eq!(to_patch(&tool, cwd).as_deref(), Some(update));
        let two = "*** Begin Patch\n*** Add File: a\n+x\n*** Delete File: b\n*** End Patch";
        assert_eq!(
            parse_patch(two, cwd),
            None,
            "several files stay apply_patch"
        );
        // As tool calls: Codex custom apply_patch → Claude Write → Codex apply_patch.
        let (name, input) = claude_tool(&neutral_tool(Agent::Codex, "apply_patch", add, cwd));
        assert_eq!(name, "Write");
        assert_eq!(input["file_path"], "/w/a.txt");
        let back = neutral_tool(Agent::Claude, &name, &input.to_string(), cwd);
        assert_eq!(to_patch(&back, cwd).as_deref(), Some(add));
        // Unknown tools keep their name.
        let (name, input) = claude_tool(&neutral_tool(
            Agent::Codex,
            "view_image",
            r#"{"path":"x"}"#,
            cwd,
        ));
        assert_eq!(
            (name.as_str(), &input),
            ("view_image", &json!({"path": "x"}))
        );
    }

    #[test]
    fn long_history_is_cut_at_whole_turns_and_outputs_truncated() {
        let mut recs = Vec::new();
        let mut parent: Option<String> = None;
        for i in 0..6u32 {
            let (u, a) = (format!("u{i}"), format!("a{i}"));
            recs.push(rec(
                "user",
                &u,
                parent.as_deref(),
                i * 2,
                Value::from(format!("prompt {i}")),
            ));
            let reply = "x".repeat(400);
            recs.push(rec(
                "assistant",
                &a,
                Some(&u),
                i * 2 + 1,
                json!([{"type": "text", "text": reply}]),
            ));
            parent = Some(a);
        }
        let src = synthetic_claude("src", &recs);
        let tight = Target {
            limits: Limits {
                context_tokens: 350,
                tool_output_chars: 10,
            },
            ..target(Agent::Codex)
        };
        let c = convert(&src, &tight, "cut", now()).unwrap();
        let prompts: Vec<String> = crate::rehydrate::records(&c.bytes)
            .iter()
            .filter(|r| crate::codex::is_typed_prompt(r))
            .map(|r| {
                r["payload"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(prompts.len(), 4, "{prompts:?}");
        assert_eq!(prompts[0], "prompt 0", "the first prompt stays");
        assert!(
            prompts[1].starts_with("[baton: 3 earlier turn(s)"),
            "{prompts:?}"
        );
        assert_eq!(&prompts[2..], ["prompt 4", "prompt 5"]);
        assert!(
            c.dropped
                .iter()
                .any(|d| d.what.starts_with("earlier turns") && d.count == 3)
        );

        let mut text = "ünïcødé output that is long".to_string();
        assert!(truncate_output(&mut text, 5));
        assert_eq!(
            text,
            "ünïcø\n[baton: output truncated to 5 of 27 characters]"
        );
        assert!(!truncate_output(&mut text, 100));
    }

    #[test]
    fn unanswered_calls_and_same_agent_targets_are_handled() {
        let recs = vec![
            rec("user", "u0", None, 0, Value::from("go")),
            rec(
                "assistant",
                "a1",
                Some("u0"),
                1,
                json!([{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "x"}}]),
            ),
        ];
        let src = synthetic_claude("src", &recs);
        let c = convert(&src, &target(Agent::Codex), "n", now()).unwrap();
        assert!(!String::from_utf8_lossy(&c.bytes).contains("function_call"));
        assert_eq!(
            c.dropped,
            [Dropped {
                what: "tool call without an output".into(),
                count: 1
            }]
        );
        let err = convert(&src, &target(Agent::Claude), "n", now()).unwrap_err();
        assert!(err.to_string().contains("baton fork"), "{err}");
    }

    #[test]
    fn images_are_listed_as_dropped() {
        let recs = vec![
            rec(
                "user",
                "u0",
                None,
                0,
                json!([{"type": "text", "text": "see"}, {"type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]),
            ),
            rec(
                "assistant",
                "a1",
                Some("u0"),
                1,
                json!([{"type": "text", "text": "ok"}]),
            ),
        ];
        let c = convert(
            &synthetic_claude("src", &recs),
            &target(Agent::Codex),
            "n",
            now(),
        )
        .unwrap();
        assert_eq!(
            c.dropped,
            [Dropped {
                what: "image".into(),
                count: 1
            }]
        );
        assert!(!String::from_utf8_lossy(&c.bytes).contains("AA=="));
    }

    #[test]
    fn records_out_of_file_order_are_written_in_chain_order() {
        let reply = |text: &str| json!([{"type": "text", "text": text}]);
        // The chain is u → a → b → c; the file holds b, a, u, c.
        let recs = vec![
            rec("user", "b", Some("a"), 2, Value::from("second")),
            rec("assistant", "a", Some("u"), 1, reply("first reply")),
            rec("user", "u", None, 0, Value::from("first")),
            rec("assistant", "c", Some("b"), 3, reply("second reply")),
        ];
        let c = convert(
            &synthetic_claude("src", &recs),
            &target(Agent::Codex),
            "n",
            now(),
        )
        .unwrap();
        let texts: Vec<String> = crate::rehydrate::records(&c.bytes)
            .iter()
            .filter(|r| r["type"] == "response_item")
            .map(|r| {
                r["payload"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(texts, ["first", "first reply", "second", "second reply"]);
    }

    #[test]
    fn subagent_threads_become_summaries_in_the_parent() {
        let recs = vec![
            rec("user", "u0", None, 0, Value::from("delegate")),
            rec(
                "assistant",
                "a1",
                Some("u0"),
                1,
                json!([{"type": "tool_use", "id": "t1", "name": "Agent", "input": {"prompt": "look"}}]),
            ),
            rec(
                "user",
                "r1",
                Some("a1"),
                2,
                json!([{"type": "tool_result", "tool_use_id": "t1", "content": "done"}]),
            ),
        ];
        let mut src = synthetic_claude("src", &recs);
        let mut sub = rec("user", "s0", None, 0, Value::from("look around"));
        sub["isSidechain"] = true.into();
        sub["agentId"] = "ag".into();
        let mut sub_reply = rec(
            "assistant",
            "s1",
            Some("s0"),
            1,
            json!([{"type": "text", "text": "found it"}]),
        );
        sub_reply["isSidechain"] = true.into();
        src.extras = vec![
            SessionExtra {
                kind: ExtraKind::Subagent,
                file_name: "agent-ag.jsonl".into(),
                bytes: [to_line(&sub), to_line(&sub_reply)].concat(),
            },
            SessionExtra {
                kind: ExtraKind::Subagent,
                file_name: "agent-ag.meta.json".into(),
                bytes: br#"{"agentType":"explorer","toolUseId":"t1"}"#.to_vec(),
            },
        ];
        let c = convert(&src, &target(Agent::Codex), "n", now()).unwrap();
        let out = crate::rehydrate::records(&c.bytes)
            .into_iter()
            .find(|r| r["payload"]["type"] == "function_call_output")
            .unwrap();
        let text = out["payload"]["output"].as_str().unwrap();
        assert!(
            text.starts_with("done\n\n[subagent thread `explorer`"),
            "{text}"
        );
        assert!(text.contains("task: look around") && text.contains("reply: found it"));
    }
}
