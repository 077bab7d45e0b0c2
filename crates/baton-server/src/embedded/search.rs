//! The search index: what the indexer saves (FTS texts, message
//! checkpoints, derived metadata), its backlog, and full-text search.

use super::sessions::{session_listing_by_pk, session_row};
use super::writer::Writer;
use super::{Embedded, internal};
use crate::storage::{IndexJob, IndexUpdate, MessageCheckpoint, StorageError, StorageResult};
use baton_native::Agent;
use baton_protocol::{MAIN_STREAM, SearchHit};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Store what the indexer read from a session's main stream: reader state,
/// message checkpoints, searchable texts and derived metadata.
pub(super) fn save_index_in(w: &mut Writer, update: IndexUpdate) -> StorageResult<()> {
    let session = session_row(&w.conn, update.user_id, &update.session_id)?;
    let indexed_before: i64 = w
        .conn
        .query_row(
            "SELECT COALESCE(MAX(indexed_len), 0) FROM streams WHERE session_pk = ?1 AND name = ?2",
            params![session.pk, MAIN_STREAM],
            |r| r.get(0),
        )
        .map_err(internal)?;
    w.conn
        .execute(
            "UPDATE streams SET indexed_len = MAX(indexed_len, ?1) WHERE session_pk = ?2 AND name = ?3",
            params![update.seen_len as i64, session.pk, MAIN_STREAM],
        )
        .map_err(internal)?;
    let Some(state) = &update.state else {
        return Ok(());
    };
    let state_json = serde_json::to_string(state).map_err(internal)?;
    w.conn
        .execute(
            "UPDATE streams SET reader_state = ?1, skipped_lines = ?2 WHERE session_pk = ?3 AND name = ?4",
            params![state_json, update.skipped as i64, session.pk, MAIN_STREAM],
        )
        .map_err(internal)?;
    if update.from == 0 && indexed_before > 0 {
        // Re-indexed from the start (the saved reader state was unusable):
        // the new texts and checkpoints replace the earlier ones.
        w.conn
            .execute_batch(&format!(
                "DELETE FROM msg_fts WHERE session_pk = {pk};
                 DELETE FROM msg_copy_keys WHERE session_pk = {pk};",
                pk = session.pk
            ))
            .map_err(internal)?;
        w.conn
            .execute(
                "DELETE FROM msg_checkpoints WHERE stream_pk IN
                   (SELECT pk FROM streams WHERE session_pk = ?1 AND name = ?2)",
                params![session.pk, MAIN_STREAM],
            )
            .map_err(internal)?;
    }
    let mut checkpoint = w
        .conn
        .prepare_cached(
            "INSERT OR REPLACE INTO msg_checkpoints(stream_pk, msg_no, skipped, state)
             SELECT pk, ?1, ?2, ?3 FROM streams WHERE session_pk = ?4 AND name = ?5",
        )
        .map_err(internal)?;
    for c in &update.checkpoints {
        let json = serde_json::to_string(&c.state).map_err(internal)?;
        checkpoint
            .execute(params![
                c.state.facts.message_count as i64,
                c.skipped as i64,
                json,
                session.pk,
                MAIN_STREAM
            ])
            .map_err(internal)?;
    }
    drop(checkpoint);
    let mut insert = w
        .conn
        .prepare_cached(
            "INSERT INTO msg_fts(text, session_pk, copy_key, msg_no) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(internal)?;
    let mut insert_key = w
        .conn
        .prepare_cached("INSERT OR IGNORE INTO msg_copy_keys(session_pk, key) VALUES (?1, ?2)")
        .map_err(internal)?;
    for t in &update.texts {
        insert
            .execute(params![t.text, session.pk, t.copy_key, t.message as i64])
            .map_err(internal)?;
        if let Some(key) = &t.copy_key {
            insert_key
                .execute(params![session.pk, key])
                .map_err(internal)?;
        }
    }
    drop((insert, insert_key));
    let f = &state.facts;
    let changed = w
        .conn
        .execute(
            "UPDATE sessions SET d_cwd = ?1, d_title = ?2, d_first_prompt = ?3, d_started_at = ?4,
               d_updated_at = ?5, d_forked_from = ?6, d_user_turns = ?7, d_message_count = ?8
             WHERE pk = ?9 AND (d_cwd IS NOT ?1 OR d_title IS NOT ?2 OR d_first_prompt IS NOT ?3
               OR d_started_at IS NOT ?4 OR d_updated_at IS NOT ?5 OR d_forked_from IS NOT ?6
               OR d_user_turns IS NOT ?7 OR d_message_count IS NOT ?8)",
            params![
                f.cwd,
                f.title,
                f.first_prompt,
                f.started_at,
                f.updated_at,
                f.forked_from.as_ref().or(f.fork_hint.as_ref()),
                f.user_turns as i64,
                f.message_count as i64,
                session.pk
            ],
        )
        .map_err(internal)?;
    if changed > 0 {
        // The listed metadata changed: the `changes` feed must report it.
        w.bump(session.pk)?;
    }
    Ok(())
}

/// Longest a search may run before it is stopped with an error.
const SEARCH_BUDGET: Duration = Duration::from_secs(10);

/// SQLite virtual-machine steps between checks of a search's [`Budget`].
const BUDGET_CHECK_EVERY: i32 = 10_000;

/// Rows ranked before keeping the best one per session.
const RANKED_ROWS: i64 = 2000;

/// A search's time budget, and whether its client went away.
#[derive(Debug)]
struct Budget {
    deadline: Instant,
    cancelled: AtomicBool,
}

impl Budget {
    fn new(budget: Duration) -> Arc<Budget> {
        Arc::new(Budget {
            deadline: Instant::now() + budget,
            cancelled: AtomicBool::new(false),
        })
    }

    /// The search must stop: out of time, or nobody waits for it.
    fn spent(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    fn check(&self) -> StorageResult<()> {
        if self.spent() {
            return Err(stopped());
        }
        Ok(())
    }
}

/// Cancels its [`Budget`] when dropped: the request future holding it was
/// dropped because the client went away (or the search finished).
struct CancelOnDrop(Arc<Budget>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }
}

fn stopped() -> StorageError {
    StorageError::Invalid(format!(
        "the search was stopped after {} s: search for more specific words",
        SEARCH_BUDGET.as_secs()
    ))
}

/// `user`'s sessions whose messages match `q` (see [`hits`]), within
/// [`SEARCH_BUDGET`]; the query stops as soon as the returned future is
/// dropped (the client went away).
pub(super) async fn search(
    store: &Embedded,
    user: i64,
    q: String,
    limit: u32,
) -> StorageResult<Vec<SearchHit>> {
    let budget = Budget::new(SEARCH_BUDGET);
    let guard = CancelOnDrop(budget.clone());
    let hits = store
        .read_with(move |conn, _| hits(conn, user, &q, limit, &budget))
        .await;
    drop(guard);
    hits
}

/// `user`'s sessions whose messages match `q`, best first, one hit per
/// session (its best message, and how many of the ranked rows are its), under [`baton_search`]'s policy: the query as `baton search`
/// reads it, snippets computed from the message text (linear in it), and a
/// record a fork copied from an ancestor (same copy key) a hit of the
/// ancestor only. Stops with an error once `budget` is spent.
fn hits(
    conn: &Connection,
    user: i64,
    q: &str,
    limit: u32,
    budget: &Arc<Budget>,
) -> StorageResult<Vec<SearchHit>> {
    let watch = budget.clone();
    conn.progress_handler(BUDGET_CHECK_EVERY, Some(move || watch.spent()));
    let found = budgeted_hits(conn, user, q, limit, budget);
    conn.progress_handler(0, None::<fn() -> bool>);
    found
}

/// [`hits`], with the budget's progress handler installed.
fn budgeted_hits(
    conn: &Connection,
    user: i64,
    q: &str,
    limit: u32,
    budget: &Budget,
) -> StorageResult<Vec<SearchHit>> {
    let Some(query) = baton_search::Query::parse(q) else {
        return Ok(Vec::new());
    };
    let interrupted = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::OperationInterrupted) => stopped(),
        _ => internal(e),
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.rowid, m.session_pk, m.msg_no
             FROM msg_fts m JOIN sessions s ON s.pk = m.session_pk
             WHERE msg_fts MATCH ?1 AND s.user_id = ?2 AND s.encrypted = 0
               AND NOT (m.copy_key IS NOT NULL AND EXISTS (
                 WITH RECURSIVE ancestors(pk, parent) AS (
                   SELECT ps.pk, COALESCE(ps.d_forked_from, ps.forked_from) FROM sessions ps
                   WHERE ps.user_id = s.user_id AND ps.id = COALESCE(s.d_forked_from, s.forked_from)
                   UNION
                   SELECT ps.pk, COALESCE(ps.d_forked_from, ps.forked_from)
                   FROM sessions ps JOIN ancestors a ON ps.id = a.parent
                   WHERE ps.user_id = s.user_id)
                 SELECT 1 FROM ancestors a JOIN msg_copy_keys k
                   ON k.session_pk = a.pk AND k.key = m.copy_key))
             ORDER BY bm25(msg_fts) LIMIT ?3",
        )
        .map_err(internal)?;
    let rows: Vec<(i64, i64, Option<i64>)> = stmt
        .query_map(params![query.fts(), user, RANKED_ROWS], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(interrupted)?
        .collect::<Result<_, _>>()
        .map_err(interrupted)?;
    let mut counts = std::collections::HashMap::<i64, u64>::new();
    for (_, pk, _) in &rows {
        *counts.entry(*pk).or_default() += 1;
    }
    let mut seen = std::collections::HashSet::new();
    let best: Vec<(i64, i64, Option<i64>)> = rows
        .into_iter()
        .filter(|(_, pk, _)| seen.insert(*pk))
        .take(limit as usize)
        .collect();
    let mut text = conn
        .prepare_cached("SELECT text FROM msg_fts WHERE rowid = ?1")
        .map_err(internal)?;
    let mut hits = Vec::with_capacity(best.len());
    for (rowid, pk, message) in best {
        budget.check()?;
        let body: String = text
            .query_row(params![rowid], |r| r.get(0))
            .map_err(interrupted)?;
        hits.push(SearchHit {
            session: session_listing_by_pk(conn, pk)?,
            snippet: query.snippet(&body),
            message: message.map(|n| n as u64),
            hit_count: counts.get(&pk).copied().unwrap_or(1),
        });
    }
    Ok(hits)
}

/// Up to `limit` main streams with bytes the indexer has not read yet.
pub(super) fn backlog(conn: &Connection, limit: u32) -> StorageResult<Vec<IndexJob>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT s.user_id, s.id, s.agent, st.reader_state, st.len, st.skipped_lines
             FROM streams st JOIN sessions s ON s.pk = st.session_pk
             WHERE st.indexed_len < st.len AND st.name = 'main' AND s.encrypted = 0
             LIMIT ?1",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        let (user_id, session_id, agent, state, len, skipped) = row.map_err(internal)?;
        out.push(IndexJob {
            user_id,
            session_id,
            agent: agent.parse().unwrap_or(Agent::Codex),
            state: state.and_then(|s| serde_json::from_str(&s).ok()),
            len: len as u64,
            skipped: skipped as u64,
        });
    }
    Ok(out)
}

/// The last saved reader state of session `id`'s main stream at or before
/// message `at_most`.
pub(super) fn message_checkpoint(
    conn: &Connection,
    user: i64,
    id: &str,
    at_most: u64,
) -> StorageResult<Option<MessageCheckpoint>> {
    let session = session_row(conn, user, id)?;
    let row: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT c.skipped, c.state FROM msg_checkpoints c
             JOIN streams st ON st.pk = c.stream_pk
             WHERE st.session_pk = ?1 AND st.name = ?2 AND c.msg_no <= ?3
             ORDER BY c.msg_no DESC LIMIT 1",
        )
        .map_err(internal)?
        .query_row(
            params![session.pk, MAIN_STREAM, at_most.min(i64::MAX as u64) as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(internal)?;
    // A checkpoint that does not parse is ignored: the page is read from byte 0.
    Ok(row.and_then(|(skipped, state)| {
        serde_json::from_str(&state)
            .ok()
            .map(|state| MessageCheckpoint {
                state,
                skipped: skipped as u64,
            })
    }))
}

#[cfg(test)]
mod tests {
    use super::super::schema::{SCHEMA, migrate, open_conn};
    use super::*;

    #[test]
    fn a_search_whose_client_went_away_stops_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_conn(&dir.path().join("baton.db")).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO users(id, name, created_at) VALUES (1, 'a', 'now');
             INSERT INTO sessions(pk, user_id, id, agent, updated_seq) VALUES (1, 1, 's', 'codex', 1);
             INSERT INTO msg_fts(text, session_pk) VALUES ('a word in a message', 1);",
        )
        .unwrap();
        let live = Budget::new(SEARCH_BUDGET);
        let found = hits(&conn, 1, "word", 10, &live).unwrap();
        assert_eq!(found[0].snippet, "a «word» in a message");
        let abandoned = Budget::new(SEARCH_BUDGET);
        drop(CancelOnDrop(abandoned.clone()));
        assert_eq!(hits(&conn, 1, "word", 10, &abandoned), Err(stopped()));
        let late = Budget::new(Duration::ZERO);
        assert_eq!(hits(&conn, 1, "word", 10, &late), Err(stopped()));
    }

    #[test]
    fn an_index_made_under_another_policy_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_conn(&dir.path().join("baton.db")).unwrap();
        conn.execute_batch("CREATE VIRTUAL TABLE msg_fts USING fts5(text, session_pk UNINDEXED);")
            .unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(
            "INSERT INTO users(id, name, created_at) VALUES (1, 'a', 'now');
             INSERT INTO sessions(pk, user_id, id, agent, updated_seq) VALUES (1, 1, 's', 'codex', 1);
             INSERT INTO streams(session_pk, name, len, state, indexed_len, reader_state)
               VALUES (1, 'main', 10, x'', 10, '{}');
             INSERT INTO msg_fts(text, session_pk) VALUES ('old', 1);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'msg_fts'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains(baton_search::TOKENIZER), "{sql}");
        let (indexed, state): (i64, Option<String>) = conn
            .query_row("SELECT indexed_len, reader_state FROM streams", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            (indexed, state),
            (0, None),
            "the indexer reads the stream again"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM msg_fts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
        // A second start leaves the new index alone.
        conn.execute(
            "INSERT INTO msg_fts(text, session_pk) VALUES ('new', 1)",
            [],
        )
        .unwrap();
        migrate(&conn).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM msg_fts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }
}
