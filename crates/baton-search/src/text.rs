//! Which text of a message is searchable.

use baton_native::{Message, MessageKind};

/// The text of `m` that goes into the full-text index, or `None` when the
/// message is not searchable (or has no text).
///
/// Prompts, replies, tool input and tool output are searchable. Injected
/// context (environment, instructions, reminders) is not: it repeats in
/// every session and would match everything. `Other` (reasoning summaries,
/// thinking, compaction markers) is not either: `baton search` is
/// documented to search prompts, replies and tool I/O only.
pub fn searchable_text(m: &Message) -> Option<&str> {
    let searchable = match m.kind {
        MessageKind::Prompt
        | MessageKind::Reply
        | MessageKind::ToolCall
        | MessageKind::ToolResult => true,
        MessageKind::Context | MessageKind::Other => false,
    };
    (searchable && !m.text.is_empty()).then_some(m.text.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_native::Role;

    fn message(kind: MessageKind, text: &str) -> Message {
        Message {
            role: Role::Assistant,
            kind,
            text: text.into(),
            tool_name: None,
            call_id: None,
            timestamp: None,
            offset: 0,
            uuid: None,
            parent_uuid: None,
        }
    }

    #[test]
    fn prompts_replies_and_tool_io_are_searchable_context_and_reasoning_are_not() {
        for kind in [
            MessageKind::Prompt,
            MessageKind::Reply,
            MessageKind::ToolCall,
            MessageKind::ToolResult,
        ] {
            assert_eq!(searchable_text(&message(kind, "x")), Some("x"), "{kind:?}");
            assert_eq!(searchable_text(&message(kind, "")), None, "{kind:?}");
        }
        for kind in [MessageKind::Context, MessageKind::Other] {
            assert_eq!(searchable_text(&message(kind, "x")), None, "{kind:?}");
        }
    }
}
