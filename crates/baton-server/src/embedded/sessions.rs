//! Session rows: metadata writes, the listing each route returns, the
//! session list (newest `updated_at` first, keyset-paged) and its filters,
//! facet counts and usage stats.

use super::internal;
use super::parse_state;
use super::writer::Writer;
use crate::storage::{SessionFilter, SessionsQuery, StorageError, StorageResult};
use baton_native::Agent;
use baton_protocol::{
    Changes, FacetCount, LISTING_TEXT_MAX_CHARS, MAX_FACET_VALUES, SessionFacets, SessionInfo,
    SessionList, SessionMeta, StatRow, Stats, StreamInfo,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

/// A session's key and whether its streams are encrypted.
pub(super) struct SessionRow {
    pub(super) pk: i64,
    pub(super) encrypted: bool,
}

/// The session `id` of `user`, or [`StorageError::NotFound`].
pub(super) fn session_row(conn: &Connection, user: i64, id: &str) -> StorageResult<SessionRow> {
    conn.prepare_cached("SELECT pk, encrypted FROM sessions WHERE user_id = ?1 AND id = ?2")
        .map_err(internal)?
        .query_row(params![user, id], |r| {
            Ok(SessionRow {
                pk: r.get(0)?,
                encrypted: r.get::<_, i64>(1)? != 0,
            })
        })
        .optional()
        .map_err(internal)?
        .ok_or(StorageError::NotFound)
}

fn stream_infos(conn: &Connection, session_pk: i64) -> StorageResult<Vec<StreamInfo>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, len, state FROM streams WHERE session_pk = ?1 ORDER BY name != 'main', name",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![session_pk], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, len, state) = row.map_err(internal)?;
        out.push(StreamInfo {
            name,
            len: len as u64,
            sha256: parse_state(&state)?.hex(),
        });
    }
    Ok(out)
}

const INFO_COLUMNS: &str = "pk, id, agent, COALESCE(d_cwd, cwd), COALESCE(d_title, title),
  COALESCE(d_first_prompt, first_prompt), COALESCE(d_started_at, started_at),
  COALESCE(d_updated_at, updated_at), d_user_turns, d_message_count,
  COALESCE(d_forked_from, forked_from), diverged_from, encrypted, updated_seq, 0, 0, archived";

/// [`INFO_COLUMNS`] of a listing: `title` and `first_prompt` cut to
/// [`LISTING_TEXT_MAX_CHARS`] characters, with flags saying whether they were.
fn listing_columns() -> String {
    let n = LISTING_TEXT_MAX_CHARS;
    format!(
        "pk, id, agent, COALESCE(d_cwd, cwd), substr(COALESCE(d_title, title), 1, {n}),
  substr(COALESCE(d_first_prompt, first_prompt), 1, {n}), COALESCE(d_started_at, started_at),
  COALESCE(d_updated_at, updated_at), d_user_turns, d_message_count,
  COALESCE(d_forked_from, forked_from), diverged_from, encrypted, updated_seq,
  COALESCE(length(COALESCE(d_title, title)) > {n}, 0),
  COALESCE(length(COALESCE(d_first_prompt, first_prompt)) > {n}, 0), archived"
    )
}

fn info_from_row(conn: &Connection, r: &rusqlite::Row<'_>) -> StorageResult<SessionInfo> {
    let get = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, SessionInfo)> {
        let agent: String = r.get(2)?;
        Ok((
            r.get(0)?,
            SessionInfo {
                id: r.get(1)?,
                agent: agent.parse().unwrap_or(Agent::Codex),
                cwd: r.get(3)?,
                title: r.get(4)?,
                title_truncated: r.get::<_, i64>(14)? != 0,
                first_prompt: r.get(5)?,
                first_prompt_truncated: r.get::<_, i64>(15)? != 0,
                started_at: r.get(6)?,
                updated_at: r.get(7)?,
                user_turns: r.get::<_, i64>(8)? as u64,
                message_count: r.get::<_, i64>(9)? as u64,
                forked_from: r.get(10)?,
                diverged_from: r.get(11)?,
                encrypted: r.get::<_, i64>(12)? != 0,
                archived: r.get::<_, i64>(16)? != 0,
                streams: Vec::new(),
                updated_seq: r.get::<_, i64>(13)? as u64,
            },
        ))
    };
    let (pk, mut info) = get(r).map_err(internal)?;
    info.streams = stream_infos(conn, pk)?;
    Ok(info)
}

/// The listing of session `id` of `user`, or [`StorageError::NotFound`].
pub(super) fn session_info(conn: &Connection, user: i64, id: &str) -> StorageResult<SessionInfo> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM sessions WHERE user_id = ?1 AND id = ?2");
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let mut rows = stmt.query(params![user, id]).map_err(internal)?;
    match rows.next().map_err(internal)? {
        Some(r) => info_from_row(conn, r),
        None => Err(StorageError::NotFound),
    }
}

/// The whole listing of the session with key `pk`.
pub(super) fn session_info_by_pk(conn: &Connection, pk: i64) -> StorageResult<SessionInfo> {
    info_by_pk(conn, pk, INFO_COLUMNS)
}

/// The listing of the session with key `pk` as lists show it: `title` and
/// `first_prompt` bounded (see [`listing_columns`]).
pub(super) fn session_listing_by_pk(conn: &Connection, pk: i64) -> StorageResult<SessionInfo> {
    info_by_pk(conn, pk, &listing_columns())
}

fn info_by_pk(conn: &Connection, pk: i64, columns: &str) -> StorageResult<SessionInfo> {
    let sql = format!("SELECT {columns} FROM sessions WHERE pk = ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let mut rows = stmt.query(params![pk]).map_err(internal)?;
    match rows.next().map_err(internal)? {
        Some(r) => info_from_row(conn, r),
        None => Err(StorageError::NotFound),
    }
}

fn sessions_where(
    conn: &Connection,
    clause: &str,
    args: impl rusqlite::Params,
) -> StorageResult<Vec<SessionInfo>> {
    let sql = format!("SELECT {} FROM sessions WHERE {clause}", listing_columns());
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let mut rows = stmt.query(args).map_err(internal)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(internal)? {
        out.push(info_from_row(conn, r)?);
    }
    Ok(out)
}

/// A `LIKE` pattern finding `q` anywhere (`\\` escapes).
pub(crate) fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Create or update the metadata of session `id`.
pub(super) fn put_in(
    w: &mut Writer,
    user: i64,
    id: &str,
    meta: SessionMeta,
) -> StorageResult<SessionInfo> {
    let existing = match session_row(&w.conn, user, id) {
        Ok(row) => Some(row),
        Err(StorageError::NotFound) => None,
        Err(e) => return Err(e),
    };
    if let Some(row) = existing {
        let agent: String = w
            .conn
            .query_row(
                "SELECT agent FROM sessions WHERE pk = ?1",
                params![row.pk],
                |r| r.get(0),
            )
            .map_err(internal)?;
        let changing = if agent != meta.agent.as_str() {
            "`agent`"
        } else if row.encrypted != meta.encrypted {
            "`encrypted`"
        } else {
            ""
        };
        let has_bytes: bool = !changing.is_empty()
            && w.conn
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM streams WHERE session_pk = ?1 AND len > 0)",
                    params![row.pk],
                    |r| r.get(0),
                )
                .map_err(internal)?;
        if has_bytes {
            return Err(StorageError::Conflict(format!(
                "{changing} cannot change once the session holds bytes; push under a new id instead"
            )));
        }
    }
    let seq = w.next_seq() as i64;
    w.conn
        .prepare_cached(
            "INSERT INTO sessions(user_id, id, agent, cwd, title, first_prompt, started_at,
               updated_at, forked_from, encrypted, archived, updated_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT(user_id, id) DO UPDATE SET agent = excluded.agent, cwd = excluded.cwd,
               title = excluded.title, first_prompt = excluded.first_prompt,
               started_at = excluded.started_at, updated_at = excluded.updated_at,
               forked_from = excluded.forked_from, encrypted = excluded.encrypted,
               archived = excluded.archived, updated_seq = excluded.updated_seq",
        )
        .map_err(internal)?
        .execute(params![
            user,
            id,
            meta.agent.as_str(),
            meta.cwd,
            meta.title,
            meta.first_prompt,
            meta.started_at,
            meta.updated_at,
            meta.forked_from,
            meta.encrypted as i64,
            meta.archived as i64,
            seq
        ])
        .map_err(internal)?;
    session_info(&w.conn, user, id)
}

/// Sort key of the session list: newest `updated_at` first, then newest change.
const LIST_ORDER: &str = "COALESCE(d_updated_at, updated_at, '') DESC, updated_seq DESC";

/// The `next_cursor` after `s`: its list sort key.
pub(crate) fn encode_cursor(s: &SessionInfo) -> String {
    let at = s.updated_at.as_deref().unwrap_or_default();
    hex::encode(format!("{at}\u{1f}{}", s.updated_seq))
}

/// The list sort key a `next_cursor` names.
pub(crate) fn decode_cursor(cursor: &str) -> StorageResult<(String, i64)> {
    let bad = || {
        StorageError::Invalid(format!(
            "invalid cursor `{cursor}`: pass the `next_cursor` of the previous page"
        ))
    };
    let raw = String::from_utf8(hex::decode(cursor).map_err(|_| bad())?).map_err(|_| bad())?;
    let (at, seq) = raw.split_once('\u{1f}').ok_or_else(bad)?;
    Ok((at.to_string(), seq.parse().map_err(|_| bad())?))
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

/// The SQL condition over `sessions` that selects `user`'s sessions
/// matching `f` (without the `skip` dimension), and its arguments
/// (numbered from `?1`).
fn filter_sql(user: i64, f: &SessionFilter, skip: Dim) -> (String, Vec<Value>) {
    let mut args = vec![Value::Integer(user)];
    let mut arg = |v: Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    let mut sql = "sessions.user_id = ?1".to_string();
    if let (Some(agent), false) = (f.agent, skip == Dim::Agent) {
        sql += &format!(" AND agent = {}", arg(Value::Text(agent.as_str().into())));
    }
    if let (Some(cwd), false) = (&f.cwd, skip == Dim::Cwd) {
        sql += &format!(
            " AND COALESCE(d_cwd, cwd) = {}",
            arg(Value::Text(cwd.clone()))
        );
    }
    if let Some(from) = &f.from {
        sql += &format!(
            " AND COALESCE(d_updated_at, updated_at, '') >= {}",
            arg(Value::Text(from.clone()))
        );
    }
    if let Some(to) = &f.to {
        sql += &format!(
            " AND COALESCE(d_updated_at, updated_at, '') < {}",
            arg(Value::Text(to.clone()))
        );
    }
    if f.has_forks {
        sql += &format!(" AND {HAS_FORKS}");
    }
    if let Some(parent) = &f.parent {
        let p = arg(Value::Text(parent.clone()));
        sql += &format!(" AND (COALESCE(d_forked_from, forked_from) = {p} OR diverged_from = {p})");
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let like = arg(Value::Text(like_pattern(text)));
        // Without a searchable term (only punctuation) the FTS part is left out.
        let fts = match baton_search::fts_query(text) {
            Some(fts) => format!(
                "OR sessions.pk IN (SELECT session_pk FROM msg_fts WHERE msg_fts MATCH {})",
                arg(Value::Text(fts))
            ),
            None => String::new(),
        };
        sql += &format!(
            " AND (id LIKE {like} ESCAPE '\\' OR COALESCE(d_title, title, '') LIKE {like} ESCAPE '\\'
               OR COALESCE(d_first_prompt, first_prompt, '') LIKE {like} ESCAPE '\\'
               OR COALESCE(d_cwd, cwd, '') LIKE {like} ESCAPE '\\' {fts})"
        );
    }
    (sql, args)
}

/// The session (a `sessions` row) is named as parent by a fork or diverged copy.
const HAS_FORKS: &str = "(EXISTS (SELECT 1 FROM sessions c WHERE c.user_id = sessions.user_id
     AND COALESCE(c.d_forked_from, c.forked_from) = sessions.id)
   OR EXISTS (SELECT 1 FROM sessions c WHERE c.user_id = sessions.user_id
     AND c.diverged_from = sessions.id))";

/// A page of `user`'s sessions matching `q.filter`, newest `updated_at`
/// first (then newest change), keyset-paged by `q.cursor`.
pub(super) fn list(conn: &Connection, user: i64, q: SessionsQuery) -> StorageResult<SessionList> {
    let (after_at, after_seq) = match q.cursor.as_deref() {
        Some(c) => decode_cursor(c)?,
        // Before the first row: every key sorts below it.
        None => ("\u{10ffff}".to_string(), i64::MAX),
    };
    let limit = q.limit.max(1) as i64;
    let (filter, mut args) = filter_sql(user, &q.filter, Dim::All);
    let n = args.len();
    args.extend([
        Value::Text(after_at),
        Value::Integer(after_seq),
        Value::Integer(limit),
    ]);
    let clause = format!(
        "{filter} AND (COALESCE(d_updated_at, updated_at, ''), updated_seq) < (?{}, ?{})
         ORDER BY {LIST_ORDER} LIMIT ?{}",
        n + 1,
        n + 2,
        n + 3
    );
    let sessions = sessions_where(conn, &clause, rusqlite::params_from_iter(args))?;
    let next_cursor = (sessions.len() as i64 == limit)
        .then(|| sessions.last().map(encode_cursor))
        .flatten();
    Ok(SessionList {
        sessions,
        next_cursor,
    })
}

/// Counts of `group` (an SQL expression over `sessions`) among the
/// sessions matching `f` without `skip`, most first, at most
/// [`MAX_FACET_VALUES`] groups: `(group, sessions, turns, messages)`.
fn grouped(
    conn: &Connection,
    user: i64,
    f: &SessionFilter,
    skip: Dim,
    group: &str,
    order: &str,
) -> StorageResult<Vec<(String, u64, u64, u64)>> {
    let (filter, args) = filter_sql(user, f, skip);
    let sql = format!(
        "SELECT {group} AS g, count(*), COALESCE(sum(d_user_turns), 0), COALESCE(sum(d_message_count), 0)
         FROM sessions WHERE {filter} GROUP BY g ORDER BY {order} LIMIT {MAX_FACET_VALUES}"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((
                r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
                r.get::<_, i64>(3)? as u64,
            ))
        })
        .map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

/// How many of `user`'s sessions match `f`.
fn count(conn: &Connection, user: i64, f: &SessionFilter) -> StorageResult<u64> {
    let (filter, args) = filter_sql(user, f, Dim::All);
    conn.prepare_cached(&format!("SELECT count(*) FROM sessions WHERE {filter}"))
        .map_err(internal)?
        .query_row(rusqlite::params_from_iter(args), |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(internal)
}

/// Counts per value of each dimension of `f` (see [`SessionFacets`]).
pub(super) fn facets(
    conn: &Connection,
    user: i64,
    f: &SessionFilter,
) -> StorageResult<SessionFacets> {
    let facet = |skip: Dim, group: &str| -> StorageResult<Vec<FacetCount>> {
        Ok(grouped(conn, user, f, skip, group, "2 DESC, g")?
            .into_iter()
            .map(|(value, count, _, _)| FacetCount { value, count })
            .collect())
    };
    let with_forks = SessionFilter {
        has_forks: true,
        ..f.clone()
    };
    Ok(SessionFacets {
        total: count(conn, user, f)?,
        agents: facet(Dim::Agent, "agent")?,
        projects: facet(Dim::Cwd, "COALESCE(d_cwd, cwd, '')")?,
        with_forks: count(conn, user, &with_forks)?,
    })
}

/// Usage of `user`'s sessions per day, agent and project (see [`Stats`]).
pub(super) fn stats(conn: &Connection, user: i64) -> StorageResult<Stats> {
    let all = SessionFilter::default();
    let rows = |group: &str, order: &str| -> StorageResult<Vec<StatRow>> {
        Ok(grouped(conn, user, &all, Dim::All, group, order)?
            .into_iter()
            .map(|(key, sessions, turns, messages)| StatRow {
                key,
                sessions,
                turns,
                messages,
            })
            .collect())
    };
    let day = "substr(COALESCE(d_started_at, started_at, d_updated_at, updated_at, ''), 1, 10)";
    let mut per_day = Vec::new();
    // The newest 365 days that have sessions, then oldest first.
    let (filter, args) = filter_sql(user, &all, Dim::All);
    let sql = format!(
        "SELECT {day} AS g, count(*), COALESCE(sum(d_user_turns), 0), COALESCE(sum(d_message_count), 0)
         FROM sessions WHERE {filter} GROUP BY g ORDER BY g DESC LIMIT 365"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let found = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok(StatRow {
                key: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                sessions: r.get::<_, i64>(1)? as u64,
                turns: r.get::<_, i64>(2)? as u64,
                messages: r.get::<_, i64>(3)? as u64,
            })
        })
        .map_err(internal)?;
    for row in found {
        per_day.push(row.map_err(internal)?);
    }
    per_day.reverse();
    Ok(Stats {
        per_day,
        per_agent: rows("agent", "2 DESC, g")?,
        per_project: rows("COALESCE(d_cwd, cwd, '')", "2 DESC, g")?,
    })
}

/// `user`'s sessions changed after `since`, oldest change first.
pub(super) fn changes(
    conn: &Connection,
    user: i64,
    since: u64,
    limit: u32,
) -> StorageResult<Changes> {
    let limit = limit.max(1) as i64;
    let mut sessions = sessions_where(
        conn,
        "user_id = ?1 AND updated_seq > ?2 ORDER BY updated_seq LIMIT ?3",
        params![user, since.min(i64::MAX as u64) as i64, limit + 1],
    )?;
    let more = sessions.len() as i64 > limit;
    sessions.truncate(limit as usize);
    let next_since = sessions.last().map(|s| s.updated_seq).unwrap_or(since);
    Ok(Changes {
        sessions,
        next_since,
        more,
    })
}
