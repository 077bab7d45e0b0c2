//! The per-keystroke query of `baton pick`: the sessions matching what is
//! typed so far, cheap enough to run on every key.

use crate::error::SqlContext;
use crate::query::FtsTable;
use crate::{Catalog, Error, ListQuery, Result};
use baton_native::Agent;
use rusqlite::{ToSql, params};

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
    /// The session's last activity (RFC 3339).
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

/// Stops the query a [`Catalog`] is running, from another thread.
pub struct QueryInterrupt(rusqlite::InterruptHandle);

impl QueryInterrupt {
    /// Stop the running query, if any: it fails with an error for which
    /// [`Error::is_interrupted`] holds. Queries started later run normally.
    pub fn interrupt(&self) {
        self.0.interrupt();
    }
}

/// How many matches [`Catalog::pick`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickScan {
    /// Only the `n` newest matching messages (in the order they were
    /// indexed, which with `baton watch` or `index` runs is the order they
    /// were written): a first answer within a frame on any catalog, which
    /// may miss sessions whose hits were indexed earlier, and long texts
    /// (see [`baton_search::BAG_BYTES`]) a phrase would have to be checked
    /// in.
    Newest(usize),
    /// Every match: the exact answer, slower on a big catalog.
    All,
}

impl PickScan {
    /// The picker's first answer to a key: few enough matches that their
    /// sessions come back within a frame at 100,000 sessions, enough for a
    /// screenful of them (see `benches/pick.rs`).
    pub const FIRST: PickScan = PickScan::Newest(500);
}

impl Catalog {
    /// At most `limit` sessions for the picker, most recently active first:
    /// the sessions with a message matching `typed` (under the search policy
    /// of [`Catalog::search`]), each with an excerpt of its newest hit, or
    /// the newest sessions when nothing is typed; only of `agent` and below
    /// `cwd` when given. `scan` bounds the matches read.
    pub fn pick(
        &self,
        typed: &str,
        agent: Option<Agent>,
        cwd: Option<&str>,
        limit: usize,
        scan: PickScan,
    ) -> Result<Vec<PickEntry>> {
        let Some(typed_query) = as_you_type(typed) else {
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
        let query = baton_search::Query::parse(&typed_query).ok_or(Error::EmptyQuery)?;
        let scanned = match scan {
            PickScan::Newest(n) => i64::try_from(n).unwrap_or(i64::MAX),
            PickScan::All => -1,
        };
        let mut args: Vec<Box<dyn ToSql>> = vec![Box::new(query.fts()), Box::new(scanned)];
        // Long texts' bags of words (few) are read first: those that match,
        // newest first; none in a first answer when a phrase needs checking.
        let bags = match scan {
            PickScan::Newest(_) if FtsTable::Bags.checked(&query) => Vec::new(),
            _ => self.bag_hits(&query, scanned)?,
        };
        // The newest matches come first from FTS5 without reading the rest
        // (`ORDER BY rowid DESC` is its own order); ranking them all would
        // read every match.
        let newest = if bags.is_empty() {
            "SELECT rowid AS mid FROM messages_fts WHERE messages_fts MATCH ?1
             ORDER BY rowid DESC LIMIT ?2"
        } else {
            args.push(Box::new(serde_json::Value::from(bags).to_string()));
            "SELECT mid FROM (
               SELECT rowid AS mid FROM messages_fts WHERE messages_fts MATCH ?1
               ORDER BY rowid DESC LIMIT ?2)
             UNION ALL SELECT value FROM json_each(?3)
             ORDER BY mid DESC LIMIT ?2"
        };
        let sql = format!(
            "WITH hits AS MATERIALIZED ({newest})
             SELECT s.id, s.agent, s.cwd, s.title, s.updated_at, max(m.id)
             FROM hits {}
             GROUP BY s.agent, s.id
             ORDER BY s.updated_at DESC, s.agent, s.id
             LIMIT ?",
            self.visible_hits("hits.mid", agent, &cwd.map(str::to_string), &mut args)
        );
        args.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        let found: Vec<(PickEntry, i64)> = {
            let mut stmt = self.conn.prepare_cached(&sql).at(&self.path)?;
            stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((
                    PickEntry {
                        id: r.get(0)?,
                        agent: crate::query::parse_agent(&r.get::<_, String>(1)?)?,
                        cwd: r.get(2)?,
                        title: r.get(3)?,
                        when: r.get(4)?,
                        snippet: String::new(),
                    },
                    r.get(5)?,
                ))
            })
            .at(&self.path)?
            .collect::<rusqlite::Result<_>>()
            .at(&self.path)?
        };
        found
            .into_iter()
            .map(|(mut entry, hit)| {
                entry.snippet = query.snippet(&self.message_text(hit)?);
                Ok(entry)
            })
            .collect()
    }

    /// The ids of the (at most `limit`, all when negative) newest messages
    /// whose bag of words matches `query`, each checked when a phrase asks
    /// for it (see [`Catalog::is_match`]), newest first.
    fn bag_hits(&self, query: &baton_search::Query, limit: i64) -> Result<Vec<i64>> {
        let candidates: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT rowid FROM messages_bag WHERE messages_bag MATCH ?1
                 ORDER BY rowid DESC LIMIT ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![query.fts_bag(), limit], |r| r.get(0))?
                    .collect()
            })
            .at(&self.path)?;
        let mut hits = Vec::new();
        for mid in candidates {
            if self.is_match(query, mid, FtsTable::Bags)? {
                hits.push(mid);
            }
        }
        Ok(hits)
    }

    /// A handle that stops this catalog's running query from another
    /// thread.
    pub fn interrupt_handle(&self) -> QueryInterrupt {
        QueryInterrupt(self.conn.get_interrupt_handle())
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
