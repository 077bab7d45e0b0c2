//! What a reader remembers between calls ([`ReaderState`]) and what one
//! call produced ([`Chunk`]), shared by the Codex and Claude readers.

use crate::jsonl::LineIssue;
use crate::model::{Agent, Message, SessionFacts};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Everything a reader must remember between calls; serializable so a
/// catalog can persist it next to the byte offset it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderState {
    /// Which format is being read.
    pub agent: Agent,
    /// Bytes consumed so far: always the end of the last complete line.
    pub consumed: u64,
    /// Complete lines consumed so far.
    pub lines: u64,
    /// Session facts accumulated so far.
    pub facts: SessionFacts,
    /// Tool names of calls whose results have not been seen yet, by call id.
    pub pending_calls: BTreeMap<String, String>,
    /// Claude: for each chain record that produced no message, its nearest
    /// ancestor that did (`None` at a root), so `Message::parent_uuid` skips
    /// attachments even across incremental chunks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ancestors: BTreeMap<String, Option<String>>,
    /// Claude: where the current title came from (0 none, 1 `summary`,
    /// 2 `ai-title`, 3 `custom-title`); a lower rank never replaces a higher one.
    #[serde(default)]
    pub title_rank: u8,
}

impl ReaderState {
    /// The state of a reader at the start of a file.
    pub fn new(agent: Agent) -> Self {
        ReaderState {
            agent,
            consumed: 0,
            lines: 0,
            facts: SessionFacts::default(),
            pending_calls: BTreeMap::new(),
            ancestors: BTreeMap::new(),
            title_rank: 0,
        }
    }

    /// Record a message: counts it (and typed prompts) in the facts.
    pub(crate) fn emit(&mut self, chunk: &mut Chunk, message: Message) {
        self.facts.message_count += 1;
        if message.kind == crate::model::MessageKind::Prompt {
            self.facts.user_turns += 1;
            if self.facts.first_prompt.is_none() {
                self.facts.first_prompt = Some(message.text.clone());
            }
        }
        chunk.messages.push(message);
    }

    /// Widen `started_at`/`updated_at` to include `ts`.
    pub(crate) fn note_time(&mut self, ts: &str, widen_start: bool) {
        if widen_start && is_before(ts, self.facts.started_at.as_deref()) {
            self.facts.started_at = Some(ts.to_owned());
        }
        let newer = match self.facts.updated_at.as_deref() {
            None => true,
            Some(cur) => compare_times(ts, cur) == Ordering::Greater,
        };
        if newer {
            self.facts.updated_at = Some(ts.to_owned());
        }
    }
}

/// Whether `ts` is earlier than `cur` (or `cur` is unset).
fn is_before(ts: &str, cur: Option<&str>) -> bool {
    cur.is_none_or(|cur| compare_times(ts, cur) == Ordering::Less)
}

/// Orders two RFC 3339 timestamps; falls back to text order when either does
/// not parse. Same-length UTC timestamps compare as text, without parsing.
pub(crate) fn compare_times(a: &str, b: &str) -> Ordering {
    if a.len() == b.len() && a.ends_with('Z') && b.ends_with('Z') {
        return a.cmp(b);
    }
    match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// What one [`FileReader::feed`](crate::FileReader::feed) call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// New messages in file order.
    pub messages: Vec<Message>,
    /// Lines skipped, with reasons.
    pub issues: Vec<LineIssue>,
}

/// A message of the given role/kind/text located at `line`.
pub(crate) fn new_message(
    role: crate::model::Role,
    kind: crate::model::MessageKind,
    text: String,
    line: &crate::jsonl::Line<'_>,
    timestamp: Option<&str>,
) -> Message {
    Message {
        role,
        kind,
        text,
        tool_name: None,
        call_id: None,
        timestamp: timestamp.map(str::to_owned),
        offset: line.offset,
        uuid: None,
        parent_uuid: None,
    }
}
