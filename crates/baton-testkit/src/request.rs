//! Requests as the scripted model server recorded them, and helpers that read the conversation
//! history a CLI sent (typed prompts, tool outputs, session id).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use baton_native::{claude, codex};

/// Start of the caveat text Claude Code sends before local-command output. In
/// a transcript that record is `isMeta` (which [`claude::is_typed_prompt`]
/// checks); a Messages API request carries no such flag, so it is matched by
/// text here, on top of [`claude::HARNESS_PREFIXES`].
const CLAUDE_CAVEAT_PREFIX: &str = "Caveat: The messages below were generated";

/// One HTTP request the model server received, recorded before it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `"responses"` (Codex model call), `"messages"` (Claude model call) or `"other"`.
    pub api: String,
    /// HTTP method, upper case (`"POST"`).
    pub method: String,
    /// Path plus query string as sent, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// Headers with lower-case names; repeated headers are joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; a non-JSON body is kept as a string, an empty one as `null`.
    pub body: Value,
}

impl RecordedRequest {
    /// Texts of the user-typed messages in this request's history, in order.
    ///
    /// Responses API: `input[]` messages with role `user`, one entry per text part, skipping
    /// injected context (the catalog's list, [`codex::INJECTED_PREFIXES`]).
    /// Messages API: `messages[]` with role `user`, one entry per string content or text block,
    /// skipping `tool_result` blocks, leading `<system-reminder>` sections and blocks the CLI
    /// injects ([`claude::HARNESS_PREFIXES`] and the local-command caveat).
    pub fn user_texts(&self) -> Vec<String> {
        match self.api.as_str() {
            "responses" => responses_user_texts(&self.body),
            "messages" => messages_user_texts(&self.body),
            _ => Vec::new(),
        }
    }

    /// The session id the agent sent: Codex `session-id` (0.169) or `session_id` (0.58) header,
    /// Claude `x-claude-code-session-id` header; falls back to the Claude body's
    /// `metadata.user_id.session_id` and the Codex body's `prompt_cache_key`.
    pub fn session_id(&self) -> Option<String> {
        for name in ["session-id", "session_id", "x-claude-code-session-id"] {
            if let Some(v) = self.headers.get(name).filter(|v| !v.is_empty()) {
                return Some(v.clone());
            }
        }
        let from_metadata = self
            .body
            .pointer("/metadata/user_id")
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| {
                v.get("session_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .filter(|s| !s.is_empty());
        from_metadata.or_else(|| {
            self.body
                .get("prompt_cache_key")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }

    /// Outputs of the tool calls in this request's history, in order: Responses API
    /// `function_call_output.output` (and `custom_tool_call_output`), Messages API `tool_result`
    /// content (string or text blocks joined with `\n`).
    pub fn tool_outputs(&self) -> Vec<String> {
        match self.api.as_str() {
            "responses" => items(&self.body, "input")
                .iter()
                .filter(|it| {
                    matches!(
                        it.get("type").and_then(Value::as_str),
                        Some("function_call_output" | "custom_tool_call_output")
                    )
                })
                .map(|it| output_text(it.get("output").unwrap_or(&Value::Null)))
                .collect(),
            "messages" => items(&self.body, "messages")
                .iter()
                .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .flat_map(|m| blocks(m.get("content")))
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                .map(|b| output_text(b.get("content").unwrap_or(&Value::Null)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Texts of the assistant messages in this request's history, in order (one entry per
    /// `output_text` part or `text` block). Shows which earlier replies a CLI replayed.
    pub fn assistant_texts(&self) -> Vec<String> {
        let (key, part_type) = match self.api.as_str() {
            "responses" => ("input", "output_text"),
            "messages" => ("messages", "text"),
            _ => return Vec::new(),
        };
        items(&self.body, key)
            .iter()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
            .flat_map(|m| text_parts(m.get("content"), part_type))
            .collect()
    }

    /// True when the body asked for a streamed (SSE) answer.
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// True for a model call that carries the agent's conversation (a Codex Responses call, or a
    /// Claude Messages call that offers tools), as opposed to side requests such as Claude's
    /// title generation or token counting.
    pub fn is_conversation_turn(&self) -> bool {
        match self.api.as_str() {
            "responses" => true,
            "messages" => !items(&self.body, "tools").is_empty(),
            _ => false,
        }
    }

    /// Build a request from one line of the fixtures' `model-requests.jsonl`
    /// (`{api: "openai"|"anthropic", path, headers, body}`), lower-casing header names and
    /// mapping `api` to `"responses"`/`"messages"`. Returns `None` for a line of another shape.
    pub fn from_fixture_line(line: &Value) -> Option<RecordedRequest> {
        let path = line.get("path")?.as_str()?.to_owned();
        let api = match line.get("api").and_then(Value::as_str) {
            Some("openai" | "responses") => "responses".to_owned(),
            Some("anthropic" | "messages") => "messages".to_owned(),
            _ => classify(&path).to_owned(),
        };
        let headers = line
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        let v = v
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string());
                        (k.to_ascii_lowercase(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(RecordedRequest {
            api,
            method: line
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or("POST")
                .to_owned(),
            path,
            headers,
            body: line.get("body").cloned().unwrap_or(Value::Null),
        })
    }
}

/// Every request recorded in the fixtures' `model-requests.jsonl` (see
/// [`RecordedRequest::from_fixture_line`]), in file order. Lines that are not JSON are skipped.
pub fn fixture_requests() -> Vec<RecordedRequest> {
    read_requests_file(&crate::fixtures_dir().join("model-requests.jsonl"))
}

/// Read a JSONL file of recorded requests (fixture shape or [`RecordedRequest`]'s own serde
/// shape). A missing file yields an empty list; bad lines are skipped.
pub fn read_requests_file(path: &Path) -> Vec<RecordedRequest> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| RecordedRequest::from_fixture_line(&v))
        .collect()
}

/// Classify a request path (query included or not) as `"responses"`, `"messages"` or `"other"`.
pub(crate) fn classify(path_and_query: &str) -> &'static str {
    let path = path_and_query.split('?').next().unwrap_or("");
    let path = path.trim_end_matches('/');
    if path.ends_with("/responses") || path == "responses" {
        "responses"
    } else if path.ends_with("/messages") || path == "messages" {
        "messages"
    } else {
        "other"
    }
}

/// The array under `key` in `body`, or an empty slice.
pub(crate) fn items<'a>(body: &'a Value, key: &str) -> &'a [Value] {
    body.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Content as a list of blocks: a string becomes one `{type:"text"}` block.
pub(crate) fn blocks(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) => vec![serde_json::json!({"type": "text", "text": s})],
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

/// Texts of the parts of `content` whose type is `part_type` (a plain string counts too).
fn text_parts(content: Option<&Value>, part_type: &str) -> Vec<String> {
    match content {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some(part_type))
            .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// A tool output as text: a string as is, a list of blocks as their texts joined with `\n`.
fn output_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// True for a Responses API input item that is a message (explicit or implicit type).
fn is_message(item: &Value) -> bool {
    matches!(
        item.get("type").and_then(Value::as_str),
        None | Some("message")
    )
}

/// Typed user texts of a Responses API request body.
fn responses_user_texts(body: &Value) -> Vec<String> {
    items(body, "input")
        .iter()
        .flat_map(|it| typed_texts_of_item("responses", it))
        .collect()
}

/// Typed user texts of a Messages API request body.
fn messages_user_texts(body: &Value) -> Vec<String> {
    items(body, "messages")
        .iter()
        .flat_map(|m| typed_texts_of_item("messages", m))
        .collect()
}

/// Typed user texts of one history entry (`input[]` item for `"responses"`, `messages[]` entry
/// for `"messages"`); empty for anything else.
pub(crate) fn typed_texts_of_item(api: &str, item: &Value) -> Vec<String> {
    if item.get("role").and_then(Value::as_str) != Some("user") {
        return Vec::new();
    }
    if api == "responses" {
        if !is_message(item) {
            return Vec::new();
        }
        return text_parts(item.get("content"), "input_text")
            .into_iter()
            .filter(|t| {
                let t = t.trim_start();
                !codex::INJECTED_PREFIXES.iter().any(|p| t.starts_with(p))
            })
            .collect();
    }
    blocks(item.get("content"))
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| {
            b.get("text")
                .and_then(Value::as_str)
                .and_then(typed_claude_text)
        })
        .collect()
}

/// The typed part of a Claude user text block: leading `<system-reminder>` sections are
/// stripped; `None` when nothing typed remains or the block is a CLI-injected wrapper.
fn typed_claude_text(text: &str) -> Option<String> {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("<system-reminder>") {
            match after.find("</system-reminder>") {
                Some(end) => rest = &after[end + "</system-reminder>".len()..],
                None => return None,
            }
        } else {
            rest = trimmed;
            break;
        }
    }
    let typed = rest.trim_end();
    if typed.is_empty()
        || typed.starts_with(CLAUDE_CAVEAT_PREFIX)
        || claude::HARNESS_PREFIXES
            .iter()
            .any(|p| typed.starts_with(p))
    {
        return None;
    }
    // Keep the block verbatim when nothing was stripped, so callers compare exact prompts.
    if typed.len() == text.trim().len() {
        Some(text.to_owned())
    } else {
        Some(typed.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(api: &str, body: Value) -> RecordedRequest {
        RecordedRequest {
            api: api.into(),
            method: "POST".into(),
            path: "/v1/x".into(),
            headers: BTreeMap::new(),
            body,
        }
    }

    #[test]
    fn injected_text_follows_the_catalog_lists() {
        let user = |text: &str| json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]});
        let codex = request(
            "responses",
            json!({"input": [
                user("<user_shell_command>\nls\n</user_shell_command>"),
                user("<environment_context>x</environment_context>"),
                user("fix it"),
            ]}),
        );
        assert_eq!(codex.user_texts(), vec!["fix it".to_string()]);

        let claude = request(
            "messages",
            json!({"messages": [
                {"role": "user", "content": "<bash-stdout>hi</bash-stdout>"},
                {"role": "user", "content": "Caveat: The messages below were generated by the user"},
                {"role": "user", "content": [{"type": "text", "text": "<system-reminder>r</system-reminder>\nhello"}]},
            ]}),
        );
        assert_eq!(claude.user_texts(), vec!["hello".to_string()]);
    }
}
