//! The search index on PostgreSQL, under [`baton_search`]'s policy: what
//! the indexer saves (message texts, message checkpoints, derived
//! metadata), its backlog, and full-text search.
//!
//! PostgreSQL has no FTS5, so matching and ranking happen here the way the
//! SQLite index does them: each message keeps its folded tokens
//! ([`baton_search::index_tokens`]) in a `tsvector` with a GIN index, which
//! finds the messages holding every token of the query; each candidate is
//! then matched with the query's phrase rules ([`baton_search::Query::matches`])
//! and ranked with FTS5's `bm25()` ([`baton_search::Query::bm25`]) over the
//! whole index's statistics; snippets come from [`baton_search::Query::snippet`].

use super::sessions::{listings_by_pk, mark_changed, session_row};
use super::{Postgres, db_error, exec, row, rows};
use crate::storage::{IndexJob, IndexUpdate, MessageCheckpoint, StorageError, StorageResult};
use baton_native::{Agent, ReaderState};
use baton_protocol::{MAIN_STREAM, SearchHit};
use baton_search::{Corpus, Query};
use deadpool_postgres::GenericClient;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Longest a search may run before it is stopped with an error.
const SEARCH_BUDGET: Duration = Duration::from_secs(10);

/// Rows ranked before keeping the best one per session (as the SQLite index does).
const RANKED_ROWS: usize = 2000;

/// Longest token a `tsvector` holds (PostgreSQL's limit is 2 KiB).
const MAX_LEXEME: usize = 2046;

/// Most token bytes kept in one message's `tsvector` (PostgreSQL's limit is 1 MiB).
const MAX_TERMS_BYTES: usize = 900 * 1024;

/// Text PostgreSQL can store: a NUL becomes U+FFFD (neither is part of a token).
fn pg_text(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

/// [`pg_text`] of an optional value.
fn pg_opt(text: &Option<String>) -> Option<String> {
    text.as_deref().map(pg_text)
}

/// A message's candidate-index tokens, and whether they are all there (a
/// message with an over-long token or too many is always a candidate).
fn index_terms(text: &str) -> (Vec<String>, bool) {
    let all = baton_search::index_tokens(text);
    let count = all.len();
    let kept: Vec<String> = all.into_iter().filter(|t| t.len() <= MAX_LEXEME).collect();
    if kept.iter().map(|t| t.len() + 1).sum::<usize>() > MAX_TERMS_BYTES {
        return (Vec::new(), false);
    }
    let complete = kept.len() == count;
    (kept, complete)
}

/// A `tsquery` lexeme, quoted so nothing in it is syntax.
fn lexeme(token: &str, prefix: bool) -> String {
    let quoted = format!("'{}'", token.replace('\\', "\\\\").replace('\'', "''"));
    if prefix { quoted + ":*" } else { quoted }
}

/// The `tsquery` finding messages that hold every token of `terms` (each a
/// term's tokens and whether its last one is a prefix).
fn tsquery(terms: &[(Vec<String>, bool)]) -> String {
    terms
        .iter()
        .flat_map(|(tokens, prefix)| {
            let last = tokens.len().saturating_sub(1);
            tokens
                .iter()
                .enumerate()
                .map(move |(i, t)| lexeme(t, *prefix && i == last))
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// Store what the indexer read from a session's main stream. Indexers of
/// several replicas may read the same bytes: a pass that does not start
/// where the saved reader state ends (another replica saved first) is
/// dropped, and a pass from byte 0 replaces what was saved before.
pub(super) async fn save_index(store: &Postgres, update: IndexUpdate) -> StorageResult<()> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db_error)?;
    let session = session_row(&tx, update.user_id, &update.session_id, true).await?;
    let Some(stream) = row(
        &tx,
        "SELECT pk, indexed_len, reader_state FROM streams WHERE session_pk = $1 AND name = $2",
        &[&session.pk, &MAIN_STREAM],
    )
    .await?
    else {
        return Ok(());
    };
    let (stream_pk, indexed_before): (i64, i64) = (stream.get(0), stream.get(1));
    let saved_from = stream
        .get::<_, Option<String>>(2)
        .and_then(|s| serde_json::from_str::<ReaderState>(&s).ok())
        .map_or(0, |s| s.consumed);
    if update.from != 0 && update.from != saved_from {
        return Ok(());
    }
    let Some(state) = &update.state else {
        exec(
            &tx,
            "UPDATE streams SET indexed_len = GREATEST(indexed_len, $1) WHERE pk = $2",
            &[&(update.seen_len as i64), &stream_pk],
        )
        .await?;
        return tx.commit().await.map_err(db_error);
    };
    let state_json = serde_json::to_string(state).map_err(internal)?;
    exec(
        &tx,
        "UPDATE streams SET indexed_len = $1, reader_state = $2, skipped_lines = $3 WHERE pk = $4",
        &[
            &(update.seen_len as i64),
            &state_json,
            &(update.skipped as i64),
            &stream_pk,
        ],
    )
    .await?;
    if update.from == 0 && (indexed_before > 0 || saved_from > 0) {
        // Indexed again from the start: the new texts and checkpoints
        // replace the earlier ones.
        exec(
            &tx,
            "WITH gone AS (DELETE FROM msg_texts WHERE session_pk = $1 RETURNING tokens)
             UPDATE search_corpus SET rows = rows - (SELECT count(*) FROM gone),
               tokens = tokens - (SELECT COALESCE(sum(tokens), 0) FROM gone)",
            &[&session.pk],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM msg_copy_keys WHERE session_pk = $1",
            &[&session.pk],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM msg_checkpoints WHERE stream_pk = $1",
            &[&stream_pk],
        )
        .await?;
    }
    for c in &update.checkpoints {
        let json = serde_json::to_string(&c.state).map_err(internal)?;
        exec(
            &tx,
            "INSERT INTO msg_checkpoints(stream_pk, msg_no, skipped, state) VALUES ($1, $2, $3, $4)
             ON CONFLICT(stream_pk, msg_no) DO UPDATE SET skipped = excluded.skipped, state = excluded.state",
            &[
                &stream_pk,
                &(c.state.facts.message_count as i64),
                &(c.skipped as i64),
                &json,
            ],
        )
        .await?;
    }
    let mut added_tokens = 0i64;
    for t in &update.texts {
        let text = pg_text(&t.text);
        let tokens = baton_search::token_count(&text) as i64;
        added_tokens += tokens;
        let (terms, complete) = index_terms(&text);
        exec(
            &tx,
            "INSERT INTO msg_texts(session_pk, copy_key, text, tokens, terms, terms_complete, msg_no)
             VALUES ($1, $2, $3, $4, array_to_tsvector($5::text[]), $6, $7)",
            &[
                &session.pk,
                &t.copy_key,
                &text,
                &tokens,
                &terms,
                &complete,
                &(t.message.min(i64::MAX as u64) as i64),
            ],
        )
        .await?;
        if let Some(key) = &t.copy_key {
            exec(
                &tx,
                "INSERT INTO msg_copy_keys(session_pk, key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&session.pk, key],
            )
            .await?;
        }
    }
    if !update.texts.is_empty() {
        exec(
            &tx,
            "UPDATE search_corpus SET rows = rows + $1, tokens = tokens + $2",
            &[&(update.texts.len() as i64), &added_tokens],
        )
        .await?;
    }
    let f = &state.facts;
    let forked_from = pg_opt(&f.forked_from.clone().or(f.fork_hint.clone()));
    let changed = exec(
        &tx,
        "UPDATE sessions SET d_cwd = $1, d_title = $2, d_first_prompt = $3, d_started_at = $4,
           d_updated_at = $5, d_forked_from = $6, d_user_turns = $7, d_message_count = $8
         WHERE pk = $9 AND (d_cwd IS DISTINCT FROM $1 OR d_title IS DISTINCT FROM $2
           OR d_first_prompt IS DISTINCT FROM $3 OR d_started_at IS DISTINCT FROM $4
           OR d_updated_at IS DISTINCT FROM $5 OR d_forked_from IS DISTINCT FROM $6
           OR d_user_turns IS DISTINCT FROM $7 OR d_message_count IS DISTINCT FROM $8)",
        &[
            &pg_opt(&f.cwd),
            &pg_opt(&f.title),
            &pg_opt(&f.first_prompt),
            &pg_opt(&f.started_at),
            &pg_opt(&f.updated_at),
            &forked_from,
            &(f.user_turns as i64),
            &(f.message_count as i64),
            &session.pk,
        ],
    )
    .await?;
    if changed > 0 {
        // The listed metadata changed: the `changes` feed must report it.
        mark_changed(&tx, session.pk).await?;
    }
    tx.commit().await.map_err(db_error)
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(e.to_string())
}

/// A message that matches a query.
struct Found {
    id: i64,
    session_pk: i64,
    /// The message's number in the main stream (`None`: indexed before numbers were kept).
    msg_no: Option<i64>,
    text: String,
    matched: baton_search::Match,
}

/// `user`'s messages matching `query` (phrase rules checked here), with a
/// record a fork copied from an ancestor (same copy key) left out when
/// `own_only`.
async fn matching_messages(
    c: &impl GenericClient,
    user: i64,
    query: &Query,
    own_only: bool,
) -> StorageResult<Vec<Found>> {
    let copies = if own_only {
        "AND NOT s.encrypted AND NOT (m.copy_key IS NOT NULL AND EXISTS (
           WITH RECURSIVE ancestors(pk, parent) AS (
             SELECT ps.pk, COALESCE(ps.d_forked_from, ps.forked_from) FROM sessions ps
             WHERE ps.user_id = s.user_id AND ps.id = COALESCE(s.d_forked_from, s.forked_from)
             UNION
             SELECT ps.pk, COALESCE(ps.d_forked_from, ps.forked_from)
             FROM sessions ps JOIN ancestors a ON ps.id = a.parent
             WHERE ps.user_id = s.user_id)
           SELECT 1 FROM ancestors a JOIN msg_copy_keys k
             ON k.session_pk = a.pk AND k.key = m.copy_key))"
    } else {
        ""
    };
    let sql = format!(
        "SELECT m.id, m.session_pk, m.msg_no, m.text FROM msg_texts m JOIN sessions s ON s.pk = m.session_pk
         WHERE (m.terms @@ $1::text::tsquery OR NOT m.terms_complete) AND s.user_id = $2 {copies}"
    );
    let found = rows(c, &sql, &[&tsquery(&query.term_tokens()), &user]).await?;
    let query = query.clone();
    let candidates: Vec<(i64, i64, Option<i64>, String)> = found
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    tokio::task::spawn_blocking(move || {
        candidates
            .into_iter()
            .filter_map(|(id, session_pk, msg_no, text)| {
                query.matches(&text).map(|matched| Found {
                    id,
                    session_pk,
                    msg_no,
                    text,
                    matched,
                })
            })
            .collect()
    })
    .await
    .map_err(internal)
}

/// Keys of `user`'s sessions with a message matching `text` (the session
/// list's filter).
pub(super) async fn matching_sessions(
    store: &Postgres,
    user: i64,
    text: &str,
) -> StorageResult<Vec<i64>> {
    let Some(query) = Query::parse(text) else {
        return Ok(Vec::new());
    };
    let client = store.client().await?;
    let found = matching_messages(&client, user, &query, false).await?;
    let pks: HashSet<i64> = found.iter().map(|f| f.session_pk).collect();
    Ok(pks.into_iter().collect())
}

/// How many messages of the whole index hold each term's tokens, and the
/// index's size: the statistics `bm25()` ranks with.
async fn statistics(c: &impl GenericClient, query: &Query) -> StorageResult<(Vec<u64>, Corpus)> {
    let mut docs = Vec::new();
    for term in query.term_tokens() {
        let n: i64 = row(
            c,
            "SELECT count(*) FROM msg_texts WHERE terms @@ $1::text::tsquery",
            &[&tsquery(std::slice::from_ref(&term))],
        )
        .await?
        .map_or(0, |r| r.get(0));
        docs.push(n as u64);
    }
    let corpus = row(c, "SELECT rows, tokens FROM search_corpus", &[])
        .await?
        .map_or(Corpus { rows: 0, tokens: 0 }, |r| Corpus {
            rows: r.get::<_, i64>(0).max(0) as u64,
            tokens: r.get::<_, i64>(1).max(0) as u64,
        });
    Ok((docs, corpus))
}

/// `user`'s sessions whose messages match `q`, best first, one hit per
/// session (its best message, and how many of the ranked rows are its), under [`baton_search`]'s policy (see the module docs), within
/// [`SEARCH_BUDGET`].
pub(super) async fn search(
    store: &Postgres,
    user: i64,
    q: String,
    limit: u32,
) -> StorageResult<Vec<SearchHit>> {
    match tokio::time::timeout(SEARCH_BUDGET, hits(store, user, &q, limit)).await {
        Ok(found) => found,
        Err(_) => Err(StorageError::Invalid(format!(
            "the search was stopped after {} s: search for more specific words",
            SEARCH_BUDGET.as_secs()
        ))),
    }
}

async fn hits(store: &Postgres, user: i64, q: &str, limit: u32) -> StorageResult<Vec<SearchHit>> {
    let Some(query) = Query::parse(q) else {
        return Ok(Vec::new());
    };
    let client = store.client().await?;
    let mut found = matching_messages(&client, user, &query, true).await?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let (docs, corpus) = statistics(&client, &query).await?;
    let mut ranked: Vec<(f64, Found)> = found
        .drain(..)
        .map(|f| (query.bm25(&f.matched, &docs, corpus), f))
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    ranked.truncate(RANKED_ROWS);
    let mut counts: HashMap<i64, u64> = HashMap::new();
    for (_, f) in &ranked {
        *counts.entry(f.session_pk).or_default() += 1;
    }
    let mut seen = HashSet::new();
    let best: Vec<Found> = ranked
        .into_iter()
        .map(|(_, f)| f)
        .filter(|f| seen.insert(f.session_pk))
        .take(limit as usize)
        .collect();
    let pks: Vec<i64> = best.iter().map(|f| f.session_pk).collect();
    let mut listings = listings_by_pk(&client, &pks).await?;
    let snippets = tokio::task::spawn_blocking(move || {
        best.into_iter()
            .map(|f| (f.session_pk, f.msg_no, query.snippet(&f.text)))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(internal)?;
    Ok(snippets
        .into_iter()
        .filter_map(|(pk, msg_no, snippet)| {
            listings.remove(&pk).map(|session| SearchHit {
                session,
                snippet,
                message: msg_no.map(|n| n as u64),
                hit_count: counts.get(&pk).copied().unwrap_or(1),
            })
        })
        .collect())
}

/// Up to `limit` main streams with bytes the indexer has not read yet.
pub(super) async fn backlog(store: &Postgres, limit: u32) -> StorageResult<Vec<IndexJob>> {
    let client = store.client().await?;
    let found = rows(
        &client,
        "SELECT s.user_id, s.id, s.agent, st.reader_state, st.len, st.skipped_lines
         FROM streams st JOIN sessions s ON s.pk = st.session_pk
         WHERE st.indexed_len < st.len AND st.name = 'main' AND NOT s.encrypted
         LIMIT $1",
        &[&(limit as i64)],
    )
    .await?;
    Ok(found
        .iter()
        .map(|r| {
            let agent: String = r.get(2);
            IndexJob {
                user_id: r.get(0),
                session_id: r.get(1),
                agent: agent.parse().unwrap_or(Agent::Codex),
                state: r
                    .get::<_, Option<String>>(3)
                    .and_then(|s| serde_json::from_str(&s).ok()),
                len: r.get::<_, i64>(4) as u64,
                skipped: r.get::<_, i64>(5) as u64,
            }
        })
        .collect())
}

/// The last saved reader state of session `id`'s main stream at or before
/// message `at_most`.
pub(super) async fn message_checkpoint(
    store: &Postgres,
    user: i64,
    id: String,
    at_most: u64,
) -> StorageResult<Option<MessageCheckpoint>> {
    let client = store.client().await?;
    let session = session_row(&client, user, &id, false).await?;
    let found = row(
        &client,
        "SELECT c.skipped, c.state FROM msg_checkpoints c
         JOIN streams st ON st.pk = c.stream_pk
         WHERE st.session_pk = $1 AND st.name = $2 AND c.msg_no <= $3
         ORDER BY c.msg_no DESC LIMIT 1",
        &[
            &session.pk,
            &MAIN_STREAM,
            &(at_most.min(i64::MAX as u64) as i64),
        ],
    )
    .await?;
    // A checkpoint that does not parse is ignored: the page is read from byte 0.
    Ok(found.and_then(|r| {
        let state: String = r.get(1);
        serde_json::from_str(&state)
            .ok()
            .map(|state| MessageCheckpoint {
                state,
                skipped: r.get::<_, i64>(0) as u64,
            })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_quoted_tsqueries() {
        let q = Query::parse("auth bug* it's").unwrap();
        assert_eq!(tsquery(&q.term_tokens()), "'auth' & 'bug':* & 'it' & 's'");
        assert_eq!(lexeme("a'b\\", false), "'a''b\\\\'");
    }

    #[test]
    fn huge_messages_are_always_candidates() {
        assert_eq!(index_terms("b a b"), (vec!["a".into(), "b".into()], true));
        let long = "x".repeat(3000);
        assert_eq!(index_terms(&format!("{long} y")), (vec!["y".into()], false));
    }
}
