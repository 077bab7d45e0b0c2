//! Reading a rollout back: [`load`] returns the session meta, the
//! conversation items, the latest state snapshot and every other line.

use std::path::{Path, PathBuf};

use baton_native::LineIssue;
use baton_native::jsonl::{Line, Lines};
use serde_json::Value;

use crate::error::{RecordError, Result};
use crate::types::{
    KIND_RESPONSE_ITEM, KIND_SESSION_META, KIND_STATE, ResponseItem, RolloutSessionMeta,
    StateSnapshot,
};

/// A line that is not part of the conversation baton models (`event_msg`,
/// `turn_context`, unknown kinds, ...), kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherLine {
    /// 1-based line number.
    pub line: usize,
    /// The whole line as JSON.
    pub value: Value,
}

/// Everything [`load`] found in a rollout.
#[derive(Debug, Clone)]
pub struct LoadedSession {
    /// The file read.
    pub path: PathBuf,
    /// Payload of the first line.
    pub meta: RolloutSessionMeta,
    /// `response_item` payloads in file order.
    pub items: Vec<ResponseItem>,
    /// The last `baton_state` snapshot, if any.
    pub state: Option<StateSnapshot>,
    /// Every other parseable line, in file order.
    pub other_lines: Vec<OtherLine>,
    /// Complete lines that were skipped, with the reason (report as `path:line`).
    pub issues: Vec<LineIssue>,
    /// The file ended in an incomplete line (a crash mid-write); it was ignored.
    pub torn_tail: bool,
    /// The file ends with `\n` (appending needs no repair).
    pub ends_with_newline: bool,
    /// Highest `ordinal` seen (Codex paginated files).
    pub last_ordinal: Option<u64>,
    /// Size of the file in bytes when read.
    pub len: u64,
}

impl LoadedSession {
    /// True when the meta says Codex's paginated layout (`history_mode: "paginated"`),
    /// so appended lines must carry ordinals.
    pub fn is_paginated(&self) -> bool {
        self.meta.extra.get("history_mode").and_then(Value::as_str) == Some("paginated")
    }

    /// Number of typed user prompts in the conversation.
    pub fn prompt_count(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.is_typed_user_prompt())
            .count()
    }
}

/// Read and parse the rollout at `path`.
///
/// Tolerates a torn last line (ignored, see [`LoadedSession::torn_tail`]) and
/// bad lines in the middle (skipped, listed in [`LoadedSession::issues`]).
/// Fails only when the file cannot be read or has no `session_meta` line first.
pub fn load(path: &Path) -> Result<LoadedSession> {
    let bytes = std::fs::read(path).map_err(|e| RecordError::io(path, e))?;
    parse(path, &bytes)
}

/// Parse rollout `bytes` as [`load`] does; `path` is used for messages only.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<LoadedSession> {
    let ends_with_newline = bytes.is_empty() || bytes.ends_with(b"\n");
    let mut torn_tail = false;
    let mut meta: Option<RolloutSessionMeta> = None;
    let mut out = LoadedSession {
        path: path.to_path_buf(),
        meta: RolloutSessionMeta {
            id: String::new(),
            timestamp: String::new(),
            cwd: String::new(),
            originator: String::new(),
            cli_version: String::new(),
            source: String::new(),
            model_provider: String::new(),
            base_instructions: None,
            extra: Default::default(),
        },
        items: Vec::new(),
        state: None,
        other_lines: Vec::new(),
        issues: Vec::new(),
        torn_tail: false,
        ends_with_newline,
        last_ordinal: None,
        len: bytes.len() as u64,
    };
    let mut take = |at: &Line<'_>| -> Result<()> {
        let line = at.number;
        let value = match at.value() {
            Ok(v) => v,
            Err(issue) => {
                out.issues.push(issue);
                return Ok(());
            }
        };
        if let Some(n) = value.get("ordinal").and_then(Value::as_u64) {
            out.last_ordinal = Some(out.last_ordinal.map_or(n, |m| m.max(n)));
        }
        let kind = value.get("type").and_then(Value::as_str);
        let payload = value.get("payload");
        match (meta.is_some(), kind, payload) {
            (false, Some(KIND_SESSION_META), Some(p)) => {
                match serde_json::from_value::<RolloutSessionMeta>(p.clone()) {
                    Ok(m) => meta = Some(m),
                    Err(e) => {
                        return Err(invalid(path, format!("line {line}: bad session_meta: {e}")));
                    }
                }
            }
            (false, _, _) => {
                return Err(invalid(
                    path,
                    format!(
                        "line {line}: the first record is not a session_meta line; this is not a Codex rollout"
                    ),
                ));
            }
            (true, Some(KIND_RESPONSE_ITEM), Some(p)) => {
                match serde_json::from_value::<ResponseItem>(p.clone()) {
                    Ok(item) => out.items.push(item),
                    Err(e) => out
                        .issues
                        .push(at.issue(format!("bad response_item payload: {e}"))),
                }
            }
            (true, Some(KIND_STATE), Some(p)) => {
                match serde_json::from_value::<StateSnapshot>(p.clone()) {
                    Ok(s) => out.state = Some(s),
                    Err(e) => out
                        .issues
                        .push(at.issue(format!("bad baton_state payload: {e}"))),
                }
            }
            (true, _, _) => out.other_lines.push(OtherLine {
                line: line as usize,
                value,
            }),
        }
        Ok(())
    };
    let mut lines = Lines::new(bytes, 0, 0);
    for line in lines.by_ref() {
        take(&line)?;
    }
    // A last line without `\n` counts when it is a whole JSON object (the
    // writer stopped before the newline); otherwise it is a torn tail.
    let tail = Line {
        number: lines.line_count() + 1,
        offset: lines.consumed() as u64,
        bytes: &bytes[lines.consumed()..],
    };
    if !tail.bytes.iter().all(u8::is_ascii_whitespace) {
        if tail.value().is_ok() {
            take(&tail)?;
        } else {
            torn_tail = true;
        }
    }
    out.torn_tail = torn_tail;
    match meta {
        Some(m) => {
            out.meta = m;
            Ok(out)
        }
        None => Err(invalid(
            path,
            "no session_meta line: the file is empty or not a Codex rollout".into(),
        )),
    }
}

fn invalid(path: &Path, reason: String) -> RecordError {
    RecordError::Invalid {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"timestamp":"t","type":"session_meta","payload":{"id":"s1","timestamp":"t","cwd":"/","originator":"o","cli_version":"1","source":"cli","model_provider":"openai"}}"#;

    fn item(text: &str) -> String {
        format!(
            r#"{{"timestamp":"t","type":"response_item","payload":{{"type":"message","role":"user","content":[{{"type":"input_text","text":"{text}"}}]}}}}"#
        )
    }

    #[test]
    fn loads_items_state_unknown_and_torn_tail() {
        let text = format!(
            "{META}\n{}\nnot json\n{{\"timestamp\":\"t\",\"type\":\"event_msg\",\"payload\":{{}}}}\n{{\"timestamp\":\"t\",\"type\":\"baton_state\",\"payload\":{{\"previous_response_id\":\"r1\"}}}}\n{}\n{{\"timestamp\":\"t\",\"type\":\"baton_state\",\"payload\":{{\"previous_response_id\":\"r2\"}}}}\n{{\"timestamp\":\"t\",\"ty",
            item("one"),
            item("two")
        );
        let s = parse(Path::new("x.jsonl"), text.as_bytes()).unwrap();
        assert_eq!(s.meta.id, "s1");
        assert_eq!(s.items.len(), 2);
        assert_eq!(s.state.unwrap().previous_response_id.as_deref(), Some("r2"));
        assert_eq!(s.other_lines.len(), 1);
        assert_eq!(s.other_lines[0].line, 4);
        assert_eq!(s.issues.len(), 1);
        assert_eq!(s.issues[0].line, 3);
        assert!(s.torn_tail);
        assert!(!s.ends_with_newline);
    }

    #[test]
    fn complete_last_line_without_newline_is_kept() {
        let text = format!("{META}\n{}", item("x"));
        let s = parse(Path::new("x"), text.as_bytes()).unwrap();
        assert_eq!(s.items.len(), 1);
        assert!(!s.torn_tail);
        assert!(!s.ends_with_newline);
    }

    #[test]
    fn rejects_files_without_meta() {
        assert!(parse(Path::new("x"), b"").is_err());
        assert!(parse(Path::new("x"), item("x").as_bytes()).is_err());
        assert!(parse(Path::new("x"), b"{\"torn").is_err());
    }
}
