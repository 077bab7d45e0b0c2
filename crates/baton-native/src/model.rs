//! The normalized view shared by both agents: one [`SessionFacts`] per
//! session and one [`Message`] per conversation item.
//!
//! These types are what the catalog stores and what `baton list/show --json`
//! prints; their serde names are part of baton's stable JSON contract.

use serde::{Deserialize, Serialize};

/// Which coding agent wrote a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Agent {
    /// OpenAI Codex CLI (`$CODEX_HOME/sessions/**/rollout-*.jsonl`).
    Codex,
    /// Anthropic Claude Code (`$CLAUDE_CONFIG_DIR/projects/<slug>/<id>.jsonl`).
    Claude,
}

impl Agent {
    /// The lowercase name used on the command line and in JSON (`codex`, `claude`).
    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Codex => "codex",
            Agent::Claude => "claude",
        }
    }
}

impl std::fmt::Display for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Agent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "codex" => Ok(Agent::Codex),
            "claude" => Ok(Agent::Claude),
            other => Err(format!(
                "unknown agent `{other}` (expected `codex` or `claude`)"
            )),
        }
    }
}

/// Who produced a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The human, or context the harness injected on the user's behalf.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
    /// Developer/system instructions and harness bookkeeping.
    System,
}

impl Role {
    /// The name used in JSON and storage (`user`, `assistant`, `tool`, `system`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::System => "system",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Role::User, Role::Assistant, Role::Tool, Role::System]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`"))
    }
}

/// What a message is, independent of who produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A prompt the user typed.
    Prompt,
    /// Context injected by the harness (environment, instructions, reminders).
    Context,
    /// Model text.
    Reply,
    /// A tool invocation by the model (`tool_name`, `call_id`, `text` = input).
    ToolCall,
    /// A tool's output, paired with its call by `call_id`.
    ToolResult,
    /// Anything else worth showing (reasoning summaries, compaction markers, ...).
    Other,
}

impl MessageKind {
    /// Every kind, in declaration order.
    pub const ALL: [MessageKind; 6] = [
        MessageKind::Prompt,
        MessageKind::Context,
        MessageKind::Reply,
        MessageKind::ToolCall,
        MessageKind::ToolResult,
        MessageKind::Other,
    ];

    /// The name used in JSON and storage (`prompt`, `context`, `reply`,
    /// `tool_call`, `tool_result`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Prompt => "prompt",
            MessageKind::Context => "context",
            MessageKind::Reply => "reply",
            MessageKind::ToolCall => "tool_call",
            MessageKind::ToolResult => "tool_result",
            MessageKind::Other => "other",
        }
    }
}

impl std::str::FromStr for MessageKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown message kind `{s}`"))
    }
}

/// One normalized conversation item, with where it came from in the native file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Message {
    /// Who produced it.
    pub role: Role,
    /// What it is.
    pub kind: MessageKind,
    /// Plain text (prompt, reply, tool input as JSON text, tool output).
    pub text: String,
    /// Tool name for `tool_call` and (when known) `tool_result`.
    pub tool_name: Option<String>,
    /// Pairs a `tool_call` with its `tool_result`.
    pub call_id: Option<String>,
    /// RFC 3339 UTC timestamp, when the native record has one.
    pub timestamp: Option<String>,
    /// Byte offset of the native line this came from (within its file).
    #[serde(skip)]
    #[ts(skip)]
    pub offset: u64,
    /// Claude chain identity (`uuid`), used to order by the tree and infer forks.
    #[serde(skip)]
    #[ts(skip)]
    pub uuid: Option<String>,
    /// Claude chain parent (`parentUuid`).
    #[serde(skip)]
    #[ts(skip)]
    pub parent_uuid: Option<String>,
}

/// A Codex paginated fork's reference into its parent's bytes (`history_base`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryBase {
    /// Parent thread id.
    pub thread_id: String,
    /// First ordinal not inherited.
    pub end_ordinal_exclusive: u64,
    /// Length of the parent prefix this fork inherits, in uncompressed bytes.
    pub end_byte_offset: u64,
}

/// Session-level facts gathered from one native file (the reader keeps
/// updating them as appended bytes are fed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionFacts {
    /// Session id (Codex thread id, Claude `sessionId`).
    pub id: Option<String>,
    /// Working directory the session started in.
    pub cwd: Option<String>,
    /// The most recent cwd the agent recorded (where the session lives now).
    pub latest_cwd: Option<String>,
    /// A title the agent gave the session (Claude `custom-title`/`ai-title`/`summary`).
    pub title: Option<String>,
    /// First typed prompt in this file.
    pub first_prompt: Option<String>,
    /// Creation time (RFC 3339 UTC).
    pub started_at: Option<String>,
    /// Time of the newest record (RFC 3339 UTC).
    pub updated_at: Option<String>,
    /// Typed prompts in this file.
    pub user_turns: u64,
    /// Normalized messages in this file.
    pub message_count: u64,
    /// Most recent model name.
    pub model: Option<String>,
    /// Most recent git branch.
    pub git_branch: Option<String>,
    /// Explicit parent (Codex `forked_from_id`, Claude `forkedFrom.sessionId`).
    pub forked_from: Option<String>,
    /// Codex paginated fork reference into the parent file.
    pub history_base: Option<HistoryBase>,
    /// Claude: a `requestSessionId` differing from the session's own id (fork back-pointer).
    pub fork_hint: Option<String>,
    /// Claude: the `uuid` of the first chain record (copied by `--fork-session`).
    pub first_uuid: Option<String>,
    /// Claude subagent transcript: the id of the session it belongs to.
    pub sidechain_of: Option<String>,
    /// Codex: the file is paginated (`history_mode: "paginated"`).
    pub paginated: bool,
    /// Codex: last ordinal seen (paginated files).
    pub last_ordinal: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_match_serde_and_parse_back() {
        for role in [Role::User, Role::Assistant, Role::Tool, Role::System] {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        for kind in MessageKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(kind.as_str().parse::<MessageKind>(), Ok(kind));
        }
        assert!("nope".parse::<Role>().is_err());
        assert!("nope".parse::<MessageKind>().is_err());
    }
}
