//! Session rows: metadata writes, the listing each route returns, the
//! session list (newest `updated_at` first, keyset-paged) and its filter,
//! and the `changes` feed.

use super::{Postgres, db_error, exec, parse_state, row, rows, schema};
use crate::embedded::sessions::{decode_cursor, encode_cursor, like_pattern};
use crate::storage::{SessionsQuery, StorageError, StorageResult};
use baton_native::Agent;
use baton_protocol::{
    Changes, LISTING_TEXT_MAX_CHARS, SessionInfo, SessionList, SessionMeta, StreamInfo,
};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use tokio_postgres::Row;

/// A session's key.
pub(super) struct SessionRow {
    pub(super) pk: i64,
}

/// The session `id` of `user`, or [`StorageError::NotFound`]; `lock` takes
/// its row lock until the transaction ends (appends, forks, indexing).
pub(super) async fn session_row(
    c: &impl GenericClient,
    user: i64,
    id: &str,
    lock: bool,
) -> StorageResult<SessionRow> {
    let sql = if lock {
        "SELECT pk FROM sessions WHERE user_id = $1 AND id = $2 FOR NO KEY UPDATE"
    } else {
        "SELECT pk FROM sessions WHERE user_id = $1 AND id = $2"
    };
    let r = row(c, sql, &[&user, &id])
        .await?
        .ok_or(StorageError::NotFound)?;
    Ok(SessionRow { pk: r.get(0) })
}

/// Sort key of the session list, compared bytewise like SQLite does.
const UPDATED_KEY: &str = "(COALESCE(d_updated_at, updated_at, '') COLLATE \"C\")";

/// Columns of a listing: `title` and `first_prompt` cut to `cut` characters
/// (`None`: whole), with flags saying whether they were.
fn columns(cut: Option<usize>) -> String {
    let n = cut.unwrap_or(i32::MAX as usize);
    format!(
        "pk, id, agent, COALESCE(d_cwd, cwd), substr(COALESCE(d_title, title), 1, {n}),
  substr(COALESCE(d_first_prompt, first_prompt), 1, {n}), COALESCE(d_started_at, started_at),
  COALESCE(d_updated_at, updated_at), d_user_turns, d_message_count,
  COALESCE(d_forked_from, forked_from), diverged_from, encrypted, updated_seq,
  COALESCE(length(COALESCE(d_title, title)) > {n}, false),
  COALESCE(length(COALESCE(d_first_prompt, first_prompt)) > {n}, false), archived"
    )
}

fn info_from_row(r: &Row) -> (i64, SessionInfo) {
    let agent: String = r.get(2);
    (
        r.get(0),
        SessionInfo {
            id: r.get(1),
            agent: agent.parse().unwrap_or(Agent::Codex),
            cwd: r.get(3),
            title: r.get(4),
            title_truncated: r.get(14),
            first_prompt: r.get(5),
            first_prompt_truncated: r.get(15),
            started_at: r.get(6),
            updated_at: r.get(7),
            user_turns: r.get::<_, i64>(8) as u64,
            message_count: r.get::<_, i64>(9) as u64,
            forked_from: r.get(10),
            diverged_from: r.get(11),
            encrypted: r.get(12),
            archived: r.get(16),
            streams: Vec::new(),
            updated_seq: r.get::<_, i64>(13) as u64,
        },
    )
}

/// Listings of the given session rows, with their streams (one query for all).
async fn infos(c: &impl GenericClient, found: Vec<Row>) -> StorageResult<Vec<SessionInfo>> {
    let listed: Vec<(i64, SessionInfo)> = found.iter().map(info_from_row).collect();
    let pks: Vec<i64> = listed.iter().map(|(pk, _)| *pk).collect();
    let mut streams: HashMap<i64, Vec<StreamInfo>> = HashMap::new();
    for r in rows(
        c,
        "SELECT session_pk, name, len, state FROM streams WHERE session_pk = ANY($1)
         ORDER BY session_pk, name != 'main', name COLLATE \"C\"",
        &[&pks],
    )
    .await?
    {
        let state: Vec<u8> = r.get(3);
        streams.entry(r.get(0)).or_default().push(StreamInfo {
            name: r.get(1),
            len: r.get::<_, i64>(2) as u64,
            sha256: parse_state(&state)?.hex(),
        });
    }
    Ok(listed
        .into_iter()
        .map(|(pk, mut info)| {
            info.streams = streams.remove(&pk).unwrap_or_default();
            info
        })
        .collect())
}

/// Sessions matching `clause` (after `WHERE`), as listings (`cut` see [`columns`]).
async fn sessions_where(
    c: &impl GenericClient,
    cut: Option<usize>,
    clause: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StorageResult<Vec<SessionInfo>> {
    let sql = format!("SELECT {} FROM sessions WHERE {clause}", columns(cut));
    let found = rows(c, &sql, params).await?;
    infos(c, found).await
}

/// The whole listing of session `id` of `user`, or [`StorageError::NotFound`].
pub(super) async fn session_info(
    c: &impl GenericClient,
    user: i64,
    id: &str,
) -> StorageResult<SessionInfo> {
    sessions_where(c, None, "user_id = $1 AND id = $2", &[&user, &id])
        .await?
        .pop()
        .ok_or(StorageError::NotFound)
}

/// Listings of the sessions with keys `pks`, as lists show them (bounded texts).
pub(super) async fn listings_by_pk(
    c: &impl GenericClient,
    pks: &[i64],
) -> StorageResult<HashMap<i64, SessionInfo>> {
    let sql = format!(
        "SELECT {} FROM sessions WHERE pk = ANY($1)",
        columns(Some(LISTING_TEXT_MAX_CHARS))
    );
    let found = rows(c, &sql, &[&pks]).await?;
    let keys: Vec<i64> = found.iter().map(|r| r.get(0)).collect();
    Ok(keys.into_iter().zip(infos(c, found).await?).collect())
}

/// Create or update the metadata of session `id`.
pub(super) async fn put(
    store: &Postgres,
    user: i64,
    id: String,
    meta: SessionMeta,
) -> StorageResult<SessionInfo> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db_error)?;
    let existing = row(
        &tx,
        "SELECT pk, agent, encrypted FROM sessions WHERE user_id = $1 AND id = $2 FOR NO KEY UPDATE",
        &[&user, &id],
    )
    .await?;
    if let Some(r) = existing {
        let (pk, agent, encrypted): (i64, String, bool) = (r.get(0), r.get(1), r.get(2));
        let changing = if agent != meta.agent.as_str() {
            "`agent`"
        } else if encrypted != meta.encrypted {
            "`encrypted`"
        } else {
            ""
        };
        if !changing.is_empty()
            && row(
                &tx,
                "SELECT 1 FROM streams WHERE session_pk = $1 AND len > 0 LIMIT 1",
                &[&pk],
            )
            .await?
            .is_some()
        {
            return Err(StorageError::Conflict(format!(
                "{changing} cannot change once the session holds bytes; push under a new id instead"
            )));
        }
    }
    exec(
        &tx,
        "INSERT INTO sessions(user_id, id, agent, cwd, title, first_prompt, started_at,
           updated_at, forked_from, encrypted, archived, seq_pending)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, true)
         ON CONFLICT(user_id, id) DO UPDATE SET agent = excluded.agent, cwd = excluded.cwd,
           title = excluded.title, first_prompt = excluded.first_prompt,
           started_at = excluded.started_at, updated_at = excluded.updated_at,
           forked_from = excluded.forked_from, encrypted = excluded.encrypted,
           archived = excluded.archived, seq_pending = true",
        &[
            &user,
            &id,
            &meta.agent.as_str(),
            &meta.cwd,
            &meta.title,
            &meta.first_prompt,
            &meta.started_at,
            &meta.updated_at,
            &meta.forked_from,
            &meta.encrypted,
            &meta.archived,
        ],
    )
    .await?;
    tx.commit().await.map_err(db_error)?;
    schema::sequence(&client).await?;
    session_info(&client, user, &id).await
}

/// A page of `user`'s sessions, newest `updated_at` first, optionally
/// filtered by `q.q` (id, title, first prompt, cwd, or message text under
/// the shared search policy).
pub(super) async fn list(
    store: &Postgres,
    user: i64,
    q: SessionsQuery,
) -> StorageResult<SessionList> {
    let (after_at, after_seq) = match q.cursor.as_deref() {
        Some(c) => decode_cursor(c)?,
        // Before the first row: every key sorts below it.
        None => ("\u{10ffff}".to_string(), i64::MAX),
    };
    let limit = q.limit.max(1) as i64;
    let text = q.filter.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let matching: Vec<i64> = match text {
        Some(text) => super::search::matching_sessions(store, user, text).await?,
        None => Vec::new(),
    };
    let client = store.client().await?;
    schema::sequence(&client).await?;
    let page = format!("user_id = $1 AND ({UPDATED_KEY}, updated_seq) < ($2::text, $3::bigint)");
    let order = format!("ORDER BY {UPDATED_KEY} DESC, updated_seq DESC LIMIT $4");
    let cut = Some(LISTING_TEXT_MAX_CHARS);
    let sessions = match text {
        None => {
            sessions_where(
                &client,
                cut,
                &format!("{page} {order}"),
                &[&user, &after_at, &after_seq, &limit],
            )
            .await?
        }
        Some(text) => {
            let like = like_pattern(text);
            let clause = format!(
                "{page} AND (
                   id ILIKE $5 OR COALESCE(d_title, title, '') ILIKE $5
                   OR COALESCE(d_first_prompt, first_prompt, '') ILIKE $5
                   OR COALESCE(d_cwd, cwd, '') ILIKE $5
                   OR pk = ANY($6))
                 {order}"
            );
            sessions_where(
                &client,
                cut,
                &clause,
                &[&user, &after_at, &after_seq, &limit, &like, &matching],
            )
            .await?
        }
    };
    let next_cursor = (sessions.len() as i64 == limit)
        .then(|| sessions.last().map(encode_cursor))
        .flatten();
    Ok(SessionList {
        sessions,
        next_cursor,
    })
}

/// `user`'s sessions changed after `since`, oldest change first.
pub(super) async fn changes(
    store: &Postgres,
    user: i64,
    since: u64,
    limit: u32,
) -> StorageResult<Changes> {
    let client = store.client().await?;
    schema::sequence(&client).await?;
    let limit = limit.max(1) as i64;
    let since_key = since.min(i64::MAX as u64) as i64;
    let mut sessions = sessions_where(
        &client,
        Some(LISTING_TEXT_MAX_CHARS),
        "user_id = $1 AND updated_seq > $2 AND NOT seq_pending ORDER BY updated_seq LIMIT $3",
        &[&user, &since_key, &(limit + 1)],
    )
    .await?;
    let more = sessions.len() as i64 > limit;
    sessions.truncate(limit as usize);
    let next_since = sessions.last().map(|s| s.updated_seq).unwrap_or(since);
    Ok(Changes {
        sessions,
        next_since,
        more,
    })
}

/// Mark session `pk` changed: the sequencer gives it the next `updated_seq`
/// once the transaction commits.
pub(super) async fn mark_changed(c: &impl GenericClient, pk: i64) -> StorageResult<()> {
    exec(
        c,
        "UPDATE sessions SET seq_pending = true WHERE pk = $1 AND NOT seq_pending",
        &[&pk],
    )
    .await?;
    Ok(())
}
