//! The scripted model: what it answers to a request, independent of HTTP.
//!
//! Rules (they reproduce the model that wrote `fixtures/agents-v1`, ids included):
//! - The reply text is `ECHO[n]: <last typed prompt>`, where `n` is the number of user messages
//!   in the request's history (Codex counts its injected `<environment_context>` message too;
//!   Claude messages made only of `tool_result` blocks do not count).
//! - A last prompt `RUN: <cmd>` that has no tool output after it yet gets one shell tool call
//!   instead (Codex `exec_command {"cmd"}` or legacy `shell {"command":["bash","-lc",cmd]}`,
//!   Claude `Bash {"command"}`); once the output arrived, the reply is the ECHO text followed by
//!   `\n<output>` (Codex's envelope stripped), unless the ECHO text already contains the whole
//!   output (`RUN: echo x` replies exactly `ECHO[n]: RUN: echo x`, as in the fixtures).
//! - A last prompt `PATCH: <file> <text>` sent to Codex gets one `apply_patch` call adding
//!   `<file>` with the line `<text>` (`{"input": "*** Begin Patch\n*** Add File: …"}`), then the
//!   ECHO text once its output arrived.
//! - Ids use the server's request sequence number `seq` (1-based): `resp_<seq>`, `msg_<seq>`,
//!   `fc_<seq>`/`call_<seq>`, `toolu_<seq>`. Usage is always 10 input and 5 output tokens.

use serde_json::{Value, json};

use crate::request::{RecordedRequest, blocks, items, typed_texts_of_item};

/// Input tokens reported for every model call.
pub const INPUT_TOKENS: u64 = 10;
/// Output tokens reported for every model call.
pub const OUTPUT_TOKENS: u64 = 5;

/// What the scripted model decided to answer to one model call.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An assistant text message.
    Text(String),
    /// One shell tool call.
    ToolCall {
        /// Tool name as offered by the request (`exec_command`, `shell`, `Bash`).
        name: String,
        /// Tool arguments as a JSON object.
        arguments: Value,
    },
}

/// Decide the reply to a model call (`api` `"responses"` or `"messages"`).
pub fn decide(req: &RecordedRequest) -> Reply {
    let prompt = req.user_texts().pop().unwrap_or_default();
    let n = user_message_count(req);
    let echo = format!("ECHO[{n}]: {prompt}");
    if let Some(spec) = prompt.strip_prefix("PATCH:").map(str::trim) {
        return match (tool_output_after_last_prompt(req), req.api.as_str()) {
            (None, "responses") => Reply::ToolCall {
                name: "apply_patch".to_owned(),
                arguments: json!({ "input": add_file_patch(spec) }),
            },
            _ => Reply::Text(echo),
        };
    }
    let Some(cmd) = prompt.strip_prefix("RUN:").map(str::trim) else {
        return Reply::Text(echo);
    };
    match tool_output_after_last_prompt(req) {
        Some(output) => Reply::Text(with_output(echo, &output)),
        None => match shell_call(req, cmd) {
            Some((name, arguments)) => Reply::ToolCall { name, arguments },
            None => Reply::Text(echo),
        },
    }
}

/// An `apply_patch` patch adding the file named by the first word of
/// `spec`, holding the rest as one line.
fn add_file_patch(spec: &str) -> String {
    let (file, text) = spec.split_once(' ').unwrap_or((spec, ""));
    format!("*** Begin Patch\n*** Add File: {file}\n+{text}\n*** End Patch")
}

/// Number of user messages in the history (see the module rules).
fn user_message_count(req: &RecordedRequest) -> usize {
    match req.api.as_str() {
        "responses" => items(&req.body, "input")
            .iter()
            .filter(|it| {
                matches!(
                    it.get("type").and_then(Value::as_str),
                    None | Some("message")
                ) && it.get("role").and_then(Value::as_str) == Some("user")
            })
            .count(),
        _ => items(&req.body, "messages")
            .iter()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .filter(|m| {
                blocks(m.get("content"))
                    .iter()
                    .any(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"))
            })
            .count(),
    }
}

/// The output of the last tool call answered after the last typed prompt, if any.
fn tool_output_after_last_prompt(req: &RecordedRequest) -> Option<String> {
    let key = if req.api == "responses" {
        "input"
    } else {
        "messages"
    };
    let history = items(&req.body, key);
    let last_prompt = history
        .iter()
        .rposition(|m| !typed_texts_of_item(&req.api, m).is_empty())?;
    let after = &history[last_prompt + 1..];
    let outputs: Vec<String> = RecordedRequest {
        body: json!({ key: after }),
        ..req.clone()
    }
    .tool_outputs();
    outputs.into_iter().next_back()
}

/// Append the command output to the ECHO text unless the text already contains it.
fn with_output(echo: String, raw: &str) -> String {
    // Codex 0.169 wraps the output in an envelope; the command's own output follows `Output:`.
    let output = match raw.split_once("\nOutput:\n") {
        Some((_, out)) => out,
        None => raw,
    }
    .trim();
    if output.is_empty() || echo.contains(output) {
        echo
    } else {
        format!("{echo}\n{output}")
    }
}

/// The shell tool call for `cmd`, shaped for the tools the request offers.
fn shell_call(req: &RecordedRequest, cmd: &str) -> Option<(String, Value)> {
    let offered = |name: &str| {
        items(&req.body, "tools")
            .iter()
            .any(|t| t.get("name").and_then(Value::as_str) == Some(name))
    };
    if req.api == "messages" {
        return offered("Bash").then(|| {
            (
                "Bash".to_owned(),
                json!({"command": cmd, "description": "run it"}),
            )
        });
    }
    if offered("exec_command") {
        Some(("exec_command".to_owned(), json!({"cmd": cmd})))
    } else if offered("shell") {
        Some(("shell".to_owned(), json!({"command": ["bash", "-lc", cmd]})))
    } else if offered("shell_command") {
        Some(("shell_command".to_owned(), json!({"command": cmd})))
    } else {
        None
    }
}

/// Usage object of the Responses API.
fn responses_usage() -> Value {
    json!({
        "input_tokens": INPUT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": OUTPUT_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    })
}

/// Usage object of the Messages API.
fn messages_usage() -> Value {
    json!({
        "input_tokens": INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": OUTPUT_TOKENS,
    })
}

/// The Responses API output item for `reply`.
pub fn responses_item(reply: &Reply, seq: u64) -> Value {
    match reply {
        Reply::Text(text) => json!({
            "type": "message",
            "id": format!("msg_{seq}"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }),
        Reply::ToolCall { name, arguments } => json!({
            "type": "function_call",
            "id": format!("fc_{seq}"),
            "status": "completed",
            "name": name,
            "arguments": arguments.to_string(),
            "call_id": format!("call_{seq}"),
        }),
    }
}

/// The Responses API SSE stream for `reply`: `response.created`, `response.output_item.added`,
/// text deltas, `response.output_item.done`, `response.completed` with usage.
pub fn responses_sse(req: &RecordedRequest, reply: &Reply, seq: u64) -> String {
    let id = format!("resp_{seq}");
    let model = req.body.get("model").cloned().unwrap_or(Value::Null);
    let item = responses_item(reply, seq);
    let mut added = item.clone();
    if let Reply::Text(_) = reply {
        added["content"] = json!([]);
        added["status"] = json!("in_progress");
    }
    let mut events = vec![
        json!({"type": "response.created", "sequence_number": 0, "response": {
            "id": id, "object": "response", "status": "in_progress", "model": model, "output": []}}),
        json!({"type": "response.in_progress", "sequence_number": 1, "response": {
            "id": id, "object": "response", "status": "in_progress", "model": model, "output": []}}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
    ];
    if let Reply::Text(text) = reply {
        events.push(
            json!({"type": "response.content_part.added", "item_id": item["id"],
            "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        );
        events.push(
            json!({"type": "response.output_text.delta", "item_id": item["id"],
            "output_index": 0, "content_index": 0, "delta": text}),
        );
        events.push(
            json!({"type": "response.output_text.done", "item_id": item["id"],
            "output_index": 0, "content_index": 0, "text": text}),
        );
        events.push(
            json!({"type": "response.content_part.done", "item_id": item["id"],
            "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": text, "annotations": []}}),
        );
    }
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    events.push(json!({"type": "response.completed", "response": {
        "id": id, "object": "response", "status": "completed", "model": model,
        "output": [item], "usage": responses_usage()}}));
    sse(&events)
}

/// The Messages API content block for `reply`.
fn messages_block(reply: &Reply, seq: u64) -> Value {
    match reply {
        Reply::Text(text) => json!({"type": "text", "text": text}),
        Reply::ToolCall { name, arguments } => json!({
            "type": "tool_use", "id": format!("toolu_{seq}"), "name": name, "input": arguments}),
    }
}

/// `stop_reason` for `reply`.
fn stop_reason(reply: &Reply) -> &'static str {
    match reply {
        Reply::Text(_) => "end_turn",
        Reply::ToolCall { .. } => "tool_use",
    }
}

/// The complete (non-streamed) Messages API response for `reply`.
pub fn messages_json(req: &RecordedRequest, reply: &Reply, seq: u64) -> Value {
    json!({
        "id": format!("msg_{seq}"),
        "type": "message",
        "role": "assistant",
        "model": req.body.get("model").cloned().unwrap_or(Value::Null),
        "content": [messages_block(reply, seq)],
        "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": messages_usage(),
    })
}

/// The Messages API SSE stream for `reply`: `message_start`, `content_block_start` / `_delta` /
/// `_stop`, `message_delta` (stop reason, usage), `message_stop`.
pub fn messages_sse(req: &RecordedRequest, reply: &Reply, seq: u64) -> String {
    let mut start = messages_json(req, reply, seq);
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    let (block_start, delta) = match reply {
        Reply::Text(text) => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": text}),
        ),
        Reply::ToolCall { name, arguments } => (
            json!({"type": "tool_use", "id": format!("toolu_{seq}"), "name": name, "input": {}}),
            json!({"type": "input_json_delta", "partial_json": arguments.to_string()}),
        ),
    };
    let events = [
        json!({"type": "message_start", "message": start}),
        json!({"type": "content_block_start", "index": 0, "content_block": block_start}),
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(reply), "stop_sequence": null},
            "usage": messages_usage()}),
        json!({"type": "message_stop"}),
    ];
    sse(&events)
}

/// `events` as server-sent events, each named by its `type`.
fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "event: {}\ndata: {}\n\n",
                e["type"].as_str().unwrap_or(""),
                e
            )
        })
        .collect()
}
