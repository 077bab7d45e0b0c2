//! Data types written to and read from a Codex-compatible rollout.
//!
//! A rollout is JSONL; every line is an envelope
//! `{"timestamp": "...Z", "type": <kind>, "payload": {...}}` (plus `ordinal` in
//! Codex's paginated layout). The recorder writes three kinds:
//!
//! * `session_meta` ([`RolloutSessionMeta`]): always the first line;
//! * `response_item` ([`ResponseItem`]): the conversation, replayed by Codex on resume;
//! * `baton_state` ([`StateSnapshot`]): harness state; Codex skips unknown kinds.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use ts_rs::TS;

/// Envelope `type` of the first line of a rollout.
pub const KIND_SESSION_META: &str = "session_meta";
/// Envelope `type` of a conversation item line.
pub const KIND_RESPONSE_ITEM: &str = "response_item";
/// Envelope `type` of a baton state snapshot line (ignored by Codex on resume).
pub const KIND_STATE: &str = "baton_state";

/// Base instructions stored in `session_meta` (Codex 0.169 shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct BaseInstructions {
    /// The instruction text the harness sends as its first developer item.
    pub text: String,
}

/// Payload of the `session_meta` line: identity and settings of one session.
///
/// The named fields are the ones Codex 0.169 needs to resume a legacy
/// rollout. Any other field found in a file (`history_mode`, `forked_from_id`,
/// `git`, ...) is kept in [`RolloutSessionMeta::extra`] and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RolloutSessionMeta {
    /// Session (thread) id: a UUID, v7 for sessions created by baton.
    pub id: String,
    /// Creation time, UTC with millisecond precision (`2025-01-02T03:04:05.678Z`).
    pub timestamp: String,
    /// Working directory of the session.
    pub cwd: String,
    /// Program that created the session (Codex uses `codex_exec`, `codex-tui`, ...).
    pub originator: String,
    /// Version string of that program.
    pub cli_version: String,
    /// Session source as Codex names it (`exec`, `cli`, `vscode`, ...).
    pub source: String,
    /// Model provider id (`openai`, or a custom provider from `config.toml`).
    pub model_provider: String,
    /// Base instructions, when the harness wants them persisted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub base_instructions: Option<BaseInstructions>,
    /// Every other field of the payload, kept verbatim.
    #[serde(flatten)]
    #[ts(skip)]
    pub extra: Map<String, Value>,
}

/// One content part of a [`ResponseItem::Message`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentItem {
    /// Text sent to the model (user and developer messages).
    InputText {
        /// The text.
        text: String,
    },
    /// Text produced by the model (assistant messages).
    OutputText {
        /// The text.
        text: String,
    },
}

impl ContentItem {
    /// The text of this part.
    pub fn text(&self) -> &str {
        match self {
            ContentItem::InputText { text } | ContentItem::OutputText { text } => text,
        }
    }
}

/// One conversation item in OpenAI Responses API shape, as Codex stores it in
/// `response_item` lines and replays it to the model on resume.
///
/// Items baton does not model, and modelled items carrying fields baton does
/// not know, load as [`ResponseItem::Other`] with their JSON untouched, so a
/// load → record round trip is lossless.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseItem {
    /// A chat message.
    Message {
        /// Provider item id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
        /// `user`, `assistant` or `developer`.
        role: String,
        /// Content parts.
        content: Vec<ContentItem>,
    },
    /// A tool call made by the model.
    FunctionCall {
        /// Provider item id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
        /// Tool name.
        name: String,
        /// Arguments as a JSON-encoded string (as the Responses API sends them).
        arguments: String,
        /// Pairs the call with its [`ResponseItem::FunctionCallOutput`].
        call_id: String,
    },
    /// The result of a tool call.
    FunctionCallOutput {
        /// The `call_id` of the matching call.
        call_id: String,
        /// Tool output text.
        output: String,
    },
    /// Any other item (reasoning, shell calls, web search, ...) kept as raw JSON.
    #[serde(untagged)]
    Other(Value),
}

/// The typed variants of [`ResponseItem`] without the catch-all, parsed
/// strictly before the lossless check. (One derive on `ResponseItem` would
/// need serde's `remote = "Self"`, which ts-rs cannot parse and warns about
/// on every build.)
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TypedItem {
    Message {
        #[serde(default)]
        id: Option<String>,
        role: String,
        content: Vec<ContentItem>,
    },
    FunctionCall {
        #[serde(default)]
        id: Option<String>,
        name: String,
        arguments: String,
        call_id: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: String,
    },
}

impl From<TypedItem> for ResponseItem {
    fn from(t: TypedItem) -> Self {
        match t {
            TypedItem::Message { id, role, content } => ResponseItem::Message { id, role, content },
            TypedItem::FunctionCall {
                id,
                name,
                arguments,
                call_id,
            } => ResponseItem::FunctionCall {
                id,
                name,
                arguments,
                call_id,
            },
            TypedItem::FunctionCallOutput { call_id, output } => {
                ResponseItem::FunctionCallOutput { call_id, output }
            }
        }
    }
}

impl<'de> Deserialize<'de> for ResponseItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        if !raw.is_object() {
            return Err(D::Error::custom("a response item must be a JSON object"));
        }
        Ok(ResponseItem::from_value(raw))
    }
}

impl ResponseItem {
    /// Parse a raw item: typed when the typed form re-serializes to exactly
    /// `raw`, otherwise [`ResponseItem::Other`] holding `raw`.
    pub fn from_value(raw: Value) -> Self {
        if let Ok(typed) = serde_json::from_value::<TypedItem>(raw.clone()) {
            let item = ResponseItem::from(typed);
            if serde_json::to_value(&item).ok().as_ref() == Some(&raw) {
                return item;
            }
        }
        ResponseItem::Other(raw)
    }

    /// A user message with one `input_text` part.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self::message("user", ContentItem::InputText { text: text.into() })
    }

    /// An assistant message with one `output_text` part.
    pub fn assistant_text(text: impl Into<String>) -> Self {
        Self::message("assistant", ContentItem::OutputText { text: text.into() })
    }

    fn message(role: &str, part: ContentItem) -> Self {
        ResponseItem::Message {
            id: None,
            role: role.to_string(),
            content: vec![part],
        }
    }

    /// Role and concatenated text when this item is a message (typed or raw).
    pub fn message_text(&self) -> Option<(String, String)> {
        match self {
            ResponseItem::Message { role, content, .. } => Some((
                role.clone(),
                content
                    .iter()
                    .map(ContentItem::text)
                    .collect::<Vec<_>>()
                    .join(""),
            )),
            ResponseItem::Other(v) if v.get("type").and_then(Value::as_str) == Some("message") => {
                let role = v.get("role")?.as_str()?.to_string();
                let text = v
                    .get("content")
                    .and_then(Value::as_array)
                    .map(|parts| {
                        parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("")
                    })
                    .unwrap_or_default();
                Some((role, text))
            }
            _ => None,
        }
    }

    /// True for a prompt a person typed: the catalog's typed-prompt rule
    /// ([`baton_native::codex::is_typed_prompt`]) applied to this item as a
    /// `response_item` line, so injected blocks such as `<environment_context>`
    /// or `<user_shell_command>` are never prompts.
    pub fn is_typed_user_prompt(&self) -> bool {
        match serde_json::to_value(self) {
            Ok(payload) => baton_native::codex::is_typed_prompt(
                &serde_json::json!({"type": KIND_RESPONSE_ITEM, "payload": payload}),
            ),
            Err(_) => false,
        }
    }
}

/// Harness state persisted next to the conversation (`baton_state` lines).
///
/// Only the latest snapshot matters on load; earlier ones stay in the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct StateSnapshot {
    /// Id of the last model response, for providers that chain responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub previous_response_id: Option<String>,
    /// Free-form application state.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[ts(as = "Option<Value>", optional)]
    pub data: Value,
}

/// UTC timestamp with millisecond precision and a `Z` suffix, as Codex writes it.
pub fn now_timestamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_items_round_trip_and_unknown_fields_stay_raw() {
        let v =
            json!({"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]});
        let item: ResponseItem = serde_json::from_value(v.clone()).unwrap();
        assert!(matches!(item, ResponseItem::Message { .. }));
        assert_eq!(serde_json::to_value(&item).unwrap(), v);

        let extra = json!({"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}],"internal":{"x":1}});
        let item: ResponseItem = serde_json::from_value(extra.clone()).unwrap();
        assert_eq!(item, ResponseItem::Other(extra.clone()));
        assert_eq!(serde_json::to_value(&item).unwrap(), extra);
        assert!(item.is_typed_user_prompt());

        let reasoning = json!({"type":"reasoning","id":"r","summary":[]});
        let item: ResponseItem = serde_json::from_value(reasoning.clone()).unwrap();
        assert_eq!(item, ResponseItem::Other(reasoning));
        assert!(serde_json::from_value::<ResponseItem>(json!(3)).is_err());
    }

    #[test]
    fn injected_context_is_not_a_typed_prompt() {
        assert!(ResponseItem::user_text("fix the bug").is_typed_user_prompt());
        assert!(
            !ResponseItem::user_text("<environment_context>\n<cwd>/</cwd>").is_typed_user_prompt()
        );
        assert!(!ResponseItem::assistant_text("hello").is_typed_user_prompt());
        // The catalog's list, not a drifted copy: shell-command echoes are injected too.
        assert!(
            !ResponseItem::user_text("<user_shell_command>\nls\n</user_shell_command>")
                .is_typed_user_prompt()
        );
        for prefix in baton_native::codex::INJECTED_PREFIXES {
            assert!(!ResponseItem::user_text(format!("{prefix} x")).is_typed_user_prompt());
        }
    }

    #[test]
    fn meta_keeps_unknown_fields() {
        let v = json!({"id":"x","timestamp":"t","cwd":"/","originator":"o","cli_version":"1",
            "source":"exec","model_provider":"openai","history_mode":"paginated","git":{"branch":"main"}});
        let meta: RolloutSessionMeta = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(meta.extra.get("history_mode"), Some(&json!("paginated")));
        assert_eq!(serde_json::to_value(&meta).unwrap(), v);
    }

    #[test]
    fn timestamp_has_millis_and_z() {
        let t = now_timestamp();
        assert_eq!(t.len(), "2025-01-02T03:04:05.678Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }
}
