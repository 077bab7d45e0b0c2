//! The one peek at the head of a native file: the session id, working
//! directory and start time its first lines carry, without reading the
//! whole file.

use crate::jsonl::Lines;
use crate::lenient::{LMap, LStr};
use crate::model::Agent;
use serde::Deserialize;
use std::io::{self, Read};
use std::path::Path;

/// Bytes [`peek_file`] reads from the start of a file.
pub const HEAD_BYTES: u64 = 64 * 1024;
/// Complete lines [`peek`] looks at.
pub const HEAD_LINES: usize = 50;

/// What the first lines of a native file say about its session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// Codex: `session_meta.payload.id` of the first line; Claude: the first
    /// record's `sessionId` (a subagent transcript carries its parent's).
    pub session_id: Option<String>,
    /// The working directory: Codex `session_meta.payload.cwd`, Claude the
    /// first record's `cwd`.
    pub cwd: Option<String>,
    /// The start time: Codex `session_meta.payload.timestamp` (else the
    /// line's own), Claude the first record's `timestamp`.
    pub started_at: Option<String>,
}

/// One record field of interest, parsed leniently (a wrong type counts as absent).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Fields<'a> {
    #[serde(borrow)]
    id: LStr<'a>,
    #[serde(borrow)]
    session_id: LStr<'a>,
    #[serde(borrow)]
    cwd: LStr<'a>,
    #[serde(borrow)]
    timestamp: LStr<'a>,
}

/// A Codex line: its type, timestamp and payload.
#[derive(Deserialize, Default)]
#[serde(default)]
struct CodexLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: LStr<'a>,
    #[serde(borrow)]
    timestamp: LStr<'a>,
    #[serde(borrow)]
    payload: LMap<Fields<'a>>,
}

/// What the first complete lines of `bytes` (at most [`HEAD_LINES`]) say
/// about the session, read as `agent`'s format. Invalid lines are skipped.
pub fn peek(agent: Agent, bytes: &[u8]) -> Head {
    let mut head = HeadLines::new(agent);
    for line in Lines::new(bytes, 0, 0) {
        if !head.feed(&line) {
            break;
        }
    }
    head.head
}

/// [`peek`] fed one line at a time (a file read in pieces).
#[derive(Debug, Clone)]
pub struct HeadLines {
    agent: Agent,
    seen: usize,
    head: Head,
}

impl HeadLines {
    /// Nothing read yet of a file of `agent`.
    pub fn new(agent: Agent) -> Self {
        HeadLines {
            agent,
            seen: 0,
            head: Head::default(),
        }
    }

    /// What the lines fed so far say.
    pub fn head(self) -> Head {
        self.head
    }

    /// Read the file's next complete line; returns whether more lines could
    /// add anything.
    pub fn feed(&mut self, line: &crate::jsonl::Line<'_>) -> bool {
        let owned = |s: &LStr<'_>| s.get().map(str::to_owned);
        self.seen += 1;
        let head = &mut self.head;
        match self.agent {
            Agent::Codex => {
                let Ok(first) = line.parse::<CodexLine<'_>>() else {
                    return false;
                };
                if first.kind.get() != Some("session_meta") {
                    return false;
                }
                if let Some(meta) = &first.payload.0 {
                    head.session_id = owned(&meta.id);
                    head.cwd = owned(&meta.cwd);
                    head.started_at = owned(&meta.timestamp);
                }
                head.started_at = head.started_at.take().or_else(|| owned(&first.timestamp));
                false
            }
            Agent::Claude => {
                if let Ok(rec) = line.parse::<Fields<'_>>() {
                    head.session_id = head.session_id.take().or_else(|| owned(&rec.session_id));
                    head.cwd = head.cwd.take().or_else(|| owned(&rec.cwd));
                    head.started_at = head.started_at.take().or_else(|| owned(&rec.timestamp));
                }
                let complete =
                    head.session_id.is_some() && head.cwd.is_some() && head.started_at.is_some();
                !complete && self.seen < HEAD_LINES
            }
        }
    }
}

/// [`peek`] at the first [`HEAD_BYTES`] of the native file at `path`
/// (decompressed when its name says `.zst`).
pub fn peek_file(agent: Agent, path: &Path) -> io::Result<Head> {
    let mut bytes = Vec::new();
    crate::files::open_native_path(path, crate::files::is_compressed(path), 0)?
        .take(HEAD_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(peek(agent, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_head_comes_from_session_meta_only() {
        let meta = b"{\"timestamp\":\"t0\",\"type\":\"session_meta\",\"payload\":{\"id\":\"s1\",\"cwd\":\"/w\",\"timestamp\":\"t1\"}}\n{\"type\":\"x\"}\n";
        assert_eq!(
            peek(Agent::Codex, meta),
            Head {
                session_id: Some("s1".into()),
                cwd: Some("/w".into()),
                started_at: Some("t1".into()),
            }
        );
        let other = b"{\"type\":\"response_item\",\"payload\":{\"id\":\"s1\"}}\n";
        assert_eq!(peek(Agent::Codex, other), Head::default());
        let no_time = b"{\"timestamp\":\"t0\",\"type\":\"session_meta\",\"payload\":{\"id\":7}}\n";
        let head = peek(Agent::Codex, no_time);
        assert_eq!(
            (head.session_id, head.started_at.as_deref()),
            (None, Some("t0"))
        );
    }

    #[test]
    fn claude_head_takes_the_first_of_each_field() {
        let bytes = b"{\"type\":\"summary\"}\nnot json\n{\"sessionId\":\"s1\",\"timestamp\":\"t1\"}\n{\"sessionId\":\"s2\",\"cwd\":\"/w\",\"timestamp\":\"t2\"}\n";
        assert_eq!(
            peek(Agent::Claude, bytes),
            Head {
                session_id: Some("s1".into()),
                cwd: Some("/w".into()),
                started_at: Some("t1".into()),
            }
        );
    }
}
