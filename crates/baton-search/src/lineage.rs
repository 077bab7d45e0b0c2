//! How forks are attributed: records a fork copied from its parent, and the
//! parent bytes a Codex paginated fork's history starts with.

use crate::text::searchable_text;
use baton_native::{Agent, HistoryBase, Message};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// Key identifying a record that a fork copied from its parent, or `None`
/// when the record cannot be recognised as a copy. A search hit on a record
/// whose key the session's parent (anywhere in its lineage) also holds is a
/// hit of the parent only, so of the oldest session holding it.
///
/// Claude: the record's `uuid` (`--fork-session` copies records with their
/// uuids). Codex: for a searchable message with a timestamp, a hash of role,
/// kind, text and timestamp (Codex and baton forks copy records verbatim,
/// and Codex records carry no id the reader exposes).
pub fn copy_key(agent: Agent, m: &Message) -> Option<String> {
    if let Some(uuid) = &m.uuid {
        return Some(uuid.clone());
    }
    let text = searchable_text(m).filter(|_| agent == Agent::Codex)?;
    let ts = m.timestamp.as_deref()?;
    let mut h = Sha256::new();
    for part in [m.role.as_str(), m.kind.as_str(), text, ts] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    Some(hex::encode(&h.finalize()[..16]))
}

/// Walks the inherited history of a Codex paginated fork: its
/// `history_base` names a parent thread and how many of the parent's bytes
/// it inherits; the parent may itself be such a fork. The conversation is
/// those parent prefixes, oldest first, then the session's own bytes. A
/// cycle, or a parent that is not known, ends the walk.
///
/// The caller looks ancestors up in its own storage:
/// ```
/// # use baton_search::InheritedHistory;
/// # fn lookup(_: &str) -> Option<baton_native::SessionFacts> { None }
/// # let facts = baton_native::SessionFacts::default();
/// let mut walk = InheritedHistory::new("fork-id", facts.history_base.clone());
/// let mut pieces = Vec::new(); // (ancestor id, inherited bytes), newest first
/// while let Some(base) = walk.next_parent().cloned() {
///     let Some(parent) = lookup(&base.thread_id) else { break };
///     pieces.push((base.thread_id, base.end_byte_offset));
///     walk.found(parent.history_base.clone());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct InheritedHistory {
    visited: HashSet<String>,
    next: Option<HistoryBase>,
}

impl InheritedHistory {
    /// Start at session `id`, whose own facts carry `base`.
    pub fn new(id: &str, base: Option<HistoryBase>) -> Self {
        let mut walk = InheritedHistory {
            visited: HashSet::from([id.to_string()]),
            next: None,
        };
        walk.found(base);
        walk
    }

    /// The ancestor to read next (its id and how many of its bytes are
    /// inherited), `None` when the walk is over.
    pub fn next_parent(&self) -> Option<&HistoryBase> {
        self.next.as_ref()
    }

    /// The ancestor [`Self::next_parent`] named was found; its own facts
    /// carry `base`.
    pub fn found(&mut self, base: Option<HistoryBase>) {
        self.next = base.filter(|b| self.visited.insert(b.thread_id.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_native::{MessageKind, Role};

    fn base(parent: &str, end: u64) -> Option<HistoryBase> {
        Some(HistoryBase {
            thread_id: parent.into(),
            end_ordinal_exclusive: 0,
            end_byte_offset: end,
        })
    }

    #[test]
    fn the_walk_follows_parents_and_stops_at_a_cycle() {
        let mut walk = InheritedHistory::new("c", base("b", 20));
        let mut seen = Vec::new();
        while let Some(b) = walk.next_parent().cloned() {
            seen.push((b.thread_id.clone(), b.end_byte_offset));
            walk.found(match b.thread_id.as_str() {
                "b" => base("a", 10),
                _ => base("c", 5),
            });
        }
        assert_eq!(seen, [("b".into(), 20), ("a".into(), 10)]);
    }

    #[test]
    fn copies_are_keyed_by_uuid_or_by_content_and_time() {
        let mut m = Message {
            role: Role::User,
            kind: MessageKind::Prompt,
            text: "hi".into(),
            tool_name: None,
            call_id: None,
            timestamp: Some("2026-01-01T00:00:00Z".into()),
            offset: 7,
            uuid: None,
            parent_uuid: None,
        };
        let codex = copy_key(Agent::Codex, &m).unwrap();
        m.offset = 99;
        assert_eq!(copy_key(Agent::Codex, &m).as_ref(), Some(&codex));
        assert_eq!(copy_key(Agent::Claude, &m), None);
        m.kind = MessageKind::Context;
        assert_eq!(copy_key(Agent::Codex, &m), None);
        m.uuid = Some("u-1".into());
        assert_eq!(copy_key(Agent::Claude, &m).as_deref(), Some("u-1"));
    }
}
