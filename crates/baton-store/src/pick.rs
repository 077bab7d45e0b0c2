//! The per-keystroke query of `baton pick`: the sessions matching what is
//! typed so far, cheap enough to run on every key.

use crate::{Catalog, ListQuery, Result, SearchQuery};
use baton_native::Agent;

/// One session in the picker's result list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickEntry {
    /// Session id.
    pub id: String,
    /// Its agent.
    pub agent: Agent,
    /// Directory it started in.
    pub cwd: Option<String>,
    /// Its title.
    pub title: Option<String>,
    /// Time of the hit, else of the newest record (RFC 3339).
    pub when: Option<String>,
    /// The matching excerpt (`«`/`»` around matches), empty when listing.
    pub snippet: String,
}

/// Shortest word being typed that matches as a prefix: a prefix of one or
/// two characters expands to a large part of the vocabulary and costs more
/// than a frame on a big catalog (see `benches/pick.rs`).
const MIN_PREFIX_CHARS: usize = 3;

/// The full-text query for `typed`: the last word, while being typed (from
/// three characters on), matches as a prefix. `None` when
/// there is nothing to search for.
pub fn as_you_type(typed: &str) -> Option<String> {
    crate::fts_query(typed)?;
    let last_word = typed
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric())
        .count();
    Some(if last_word >= MIN_PREFIX_CHARS {
        format!("{typed}*")
    } else {
        typed.to_string()
    })
}

impl Catalog {
    /// At most `limit` sessions for the picker: the best hit of each session
    /// matching `typed` (under the search policy of [`Catalog::search`]), or
    /// the newest sessions when nothing is typed; only of `agent` and below
    /// `cwd` when given.
    pub fn pick(
        &self,
        typed: &str,
        agent: Option<Agent>,
        cwd: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PickEntry>> {
        let Some(query) = as_you_type(typed) else {
            let page = self.list(&ListQuery {
                agent,
                cwd: cwd.map(str::to_string),
                limit,
                ..ListQuery::default()
            })?;
            return Ok(page
                .sessions
                .into_iter()
                .map(|row| PickEntry {
                    id: row.id,
                    agent: row.agent,
                    cwd: row.cwd,
                    title: row.title,
                    when: Some(row.updated_at),
                    snippet: String::new(),
                })
                .collect());
        };
        let hits = self.search(&SearchQuery {
            query,
            agent,
            cwd: cwd.map(str::to_string),
            limit,
            per_session: 1,
        })?;
        Ok(hits
            .into_iter()
            .map(|h| PickEntry {
                id: h.session_id,
                agent: h.agent,
                cwd: h.cwd,
                title: h.title,
                when: h.timestamp,
                snippet: h.snippet,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_being_typed_matches_as_a_prefix() {
        assert_eq!(as_you_type("fix ret").as_deref(), Some("fix ret*"));
        assert_eq!(as_you_type("fix retry ").as_deref(), Some("fix retry "));
        assert_eq!(
            as_you_type("fix re").as_deref(),
            Some("fix re"),
            "too short"
        );
        assert_eq!(as_you_type("  "), None);
        assert_eq!(as_you_type(""), None);
    }
}
