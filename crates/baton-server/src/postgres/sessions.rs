//! Session rows: metadata writes, the listing each route returns, the
//! session list (newest `updated_at` first, keyset-paged) and its filters,
//! facet counts and usage stats, and the `changes` feed.

use super::{Postgres, db_error, exec, parse_state, row, rows, schema};
use crate::embedded::sessions::{decode_cursor, encode_cursor, like_pattern};
use crate::storage::{SessionFilter, SessionsQuery, StorageError, StorageResult};
use baton_native::Agent;
use baton_protocol::{
    Changes, FacetCount, LISTING_TEXT_MAX_CHARS, MAX_FACET_VALUES, SessionFacets, SessionInfo,
    SessionList, SessionMeta, StatRow, Stats, StreamInfo,
};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

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

/// A query argument of [`filter_sql`].
type Arg = Box<dyn ToSql + Sync + Send>;

/// Borrowed arguments, as statements take them.
fn arg_refs(args: &[Arg]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// The SQL condition over `sessions` that selects `user`'s sessions
/// matching `f` (without the `skip` dimension), and its arguments
/// (numbered from `$1`); `matching` are the sessions whose messages match
/// `f.q` ([`super::search::matching_sessions`]).
fn filter_sql(user: i64, f: &SessionFilter, skip: Dim, matching: &[i64]) -> (String, Vec<Arg>) {
    let mut args: Vec<Arg> = vec![Box::new(user)];
    let mut arg = |v: Arg| {
        args.push(v);
        format!("${}", args.len())
    };
    let mut sql = "sessions.user_id = $1".to_string();
    if let (Some(agent), false) = (f.agent, skip == Dim::Agent) {
        sql += &format!(" AND agent = {}", arg(Box::new(agent.as_str().to_string())));
    }
    if let (Some(cwd), false) = (&f.cwd, skip == Dim::Cwd) {
        sql += &format!(" AND COALESCE(d_cwd, cwd) = {}", arg(Box::new(cwd.clone())));
    }
    if let Some(from) = &f.from {
        sql += &format!(
            " AND {UPDATED_KEY} >= {}::text",
            arg(Box::new(from.clone()))
        );
    }
    if let Some(to) = &f.to {
        sql += &format!(" AND {UPDATED_KEY} < {}::text", arg(Box::new(to.clone())));
    }
    if f.has_forks {
        sql += &format!(" AND {HAS_FORKS}");
    }
    if let Some(parent) = &f.parent {
        let p = arg(Box::new(parent.clone()));
        sql += &format!(
            " AND (COALESCE(d_forked_from, forked_from) = {p}::text OR diverged_from = {p}::text)"
        );
    }
    if let Some(text) = filter_text(f) {
        let like = arg(Box::new(like_pattern(text)));
        let pks = arg(Box::new(matching.to_vec()));
        sql += &format!(
            " AND (id ILIKE {like} OR COALESCE(d_title, title, '') ILIKE {like}
               OR COALESCE(d_first_prompt, first_prompt, '') ILIKE {like}
               OR COALESCE(d_cwd, cwd, '') ILIKE {like} OR sessions.pk = ANY({pks}))"
        );
    }
    (sql, args)
}

/// The free-text part of `f`, if it has one.
fn filter_text(f: &SessionFilter) -> Option<&str> {
    f.q.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Keys of the sessions whose messages match `f`'s free text (none without one).
async fn matching(store: &Postgres, user: i64, f: &SessionFilter) -> StorageResult<Vec<i64>> {
    match filter_text(f) {
        Some(text) => super::search::matching_sessions(store, user, text).await,
        None => Ok(Vec::new()),
    }
}

/// The session (a `sessions` row) is named as parent by a fork or diverged copy.
const HAS_FORKS: &str = "(EXISTS (SELECT 1 FROM sessions c WHERE c.user_id = sessions.user_id
     AND COALESCE(c.d_forked_from, c.forked_from) = sessions.id)
   OR EXISTS (SELECT 1 FROM sessions c WHERE c.user_id = sessions.user_id
     AND c.diverged_from = sessions.id))";

/// A page of `user`'s sessions matching `q.filter`, newest `updated_at`
/// first (then newest change), keyset-paged by `q.cursor`.
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
    let matching = matching(store, user, &q.filter).await?;
    let client = store.client().await?;
    schema::sequence(&client).await?;
    let (filter, mut args) = filter_sql(user, &q.filter, Dim::All, &matching);
    let n = args.len();
    args.push(Box::new(after_at));
    args.push(Box::new(after_seq));
    args.push(Box::new(limit));
    let clause = format!(
        "{filter} AND ({UPDATED_KEY}, updated_seq) < (${}::text, ${}::bigint)
         ORDER BY {UPDATED_KEY} DESC, updated_seq DESC LIMIT ${}",
        n + 1,
        n + 2,
        n + 3
    );
    let sessions = sessions_where(
        &client,
        Some(LISTING_TEXT_MAX_CHARS),
        &clause,
        &arg_refs(&args),
    )
    .await?;
    let next_cursor = (sessions.len() as i64 == limit)
        .then(|| sessions.last().map(encode_cursor))
        .flatten();
    Ok(SessionList {
        sessions,
        next_cursor,
    })
}

/// A dimension of [`SessionFilter`] that a facet count leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    /// Keep every field of the filter.
    All,
    /// Leave out `agent`.
    Agent,
    /// Leave out `cwd`.
    Cwd,
}

/// Counts of `group` (an SQL expression over `sessions`) among the
/// sessions matching `filter` (a [`filter_sql`]), ordered by `order` (over
/// `g`, the group, and position 2, the count), at most `max` groups.
async fn grouped(
    c: &impl GenericClient,
    filter: (String, Vec<Arg>),
    group: &str,
    order: &str,
    max: usize,
) -> StorageResult<Vec<StatRow>> {
    let (filter, args) = filter;
    let sql = format!(
        "SELECT g, count(*), COALESCE(sum(turns), 0)::bigint, COALESCE(sum(messages), 0)::bigint
         FROM (SELECT COALESCE({group}, '') COLLATE \"C\" AS g, d_user_turns AS turns,
                 d_message_count AS messages
               FROM sessions WHERE {filter}) t
         GROUP BY g ORDER BY {order} LIMIT {max}"
    );
    Ok(rows(c, &sql, &arg_refs(&args))
        .await?
        .iter()
        .map(|r| StatRow {
            key: r.get(0),
            sessions: r.get::<_, i64>(1) as u64,
            turns: r.get::<_, i64>(2) as u64,
            messages: r.get::<_, i64>(3) as u64,
        })
        .collect())
}

/// How many of `user`'s sessions match `f`.
async fn count(
    c: &impl GenericClient,
    user: i64,
    f: &SessionFilter,
    matching: &[i64],
) -> StorageResult<u64> {
    let (filter, args) = filter_sql(user, f, Dim::All, matching);
    let sql = format!("SELECT count(*) FROM sessions WHERE {filter}");
    Ok(row(c, &sql, &arg_refs(&args))
        .await?
        .map_or(0, |r| r.get::<_, i64>(0) as u64))
}

/// Counts per value of each dimension of `f` (see [`SessionFacets`]).
pub(super) async fn facets(
    store: &Postgres,
    user: i64,
    f: SessionFilter,
) -> StorageResult<SessionFacets> {
    let matching = matching(store, user, &f).await?;
    let client = store.client().await?;
    let facet = |rows: Vec<StatRow>| -> Vec<FacetCount> {
        rows.into_iter()
            .map(|r| FacetCount {
                value: r.key,
                count: r.sessions,
            })
            .collect()
    };
    let by_count = "2 DESC, g";
    let agents = grouped(
        &client,
        filter_sql(user, &f, Dim::Agent, &matching),
        "agent",
        by_count,
        MAX_FACET_VALUES,
    )
    .await?;
    let projects = grouped(
        &client,
        filter_sql(user, &f, Dim::Cwd, &matching),
        PROJECT,
        by_count,
        MAX_FACET_VALUES,
    )
    .await?;
    let with_forks = SessionFilter {
        has_forks: true,
        ..f.clone()
    };
    Ok(SessionFacets {
        total: count(&client, user, &f, &matching).await?,
        agents: facet(agents),
        projects: facet(projects),
        with_forks: count(&client, user, &with_forks, &matching).await?,
    })
}

/// A session's project, as facets and stats group it.
const PROJECT: &str = "COALESCE(d_cwd, cwd)";

/// Usage of `user`'s sessions per day, agent and project (see [`Stats`]).
pub(super) async fn stats(store: &Postgres, user: i64) -> StorageResult<Stats> {
    let client = store.client().await?;
    let all = || filter_sql(user, &SessionFilter::default(), Dim::All, &[]);
    let day = "substr(COALESCE(d_started_at, started_at, d_updated_at, updated_at, ''), 1, 10)";
    // The newest 365 days that have sessions, then oldest first.
    let mut per_day = grouped(&client, all(), day, "g DESC", 365).await?;
    per_day.reverse();
    let by_count = "2 DESC, g";
    Ok(Stats {
        per_day,
        per_agent: grouped(&client, all(), "agent", by_count, MAX_FACET_VALUES).await?,
        per_project: grouped(&client, all(), PROJECT, by_count, MAX_FACET_VALUES).await?,
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
