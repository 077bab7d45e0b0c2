//! Reading the catalog: list, resolve, show, search, native bytes.

use crate::error::{Error, Result, SqlContext};
use crate::{Catalog, Roots};
use baton_native::{Agent, Message, MessageKind, Role};
use rusqlite::{OptionalExtension, Row, ToSql, params};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

/// A session's messages in conversation order, read one at a time (see
/// [`Catalog::transcript`]).
pub struct Transcript<'c> {
    catalog: &'c Catalog,
    /// Message ids with everything but their text, in conversation order.
    messages: std::vec::IntoIter<(i64, Message)>,
}

impl Transcript<'_> {
    /// How many of the messages still to come are of `kind` (their texts
    /// are not read).
    pub fn count_kind(&self, kind: MessageKind) -> usize {
        self.messages
            .as_slice()
            .iter()
            .filter(|(_, m)| m.kind == kind)
            .count()
    }
}

impl Iterator for Transcript<'_> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Result<Message>> {
        let (id, mut message) = self.messages.next()?;
        Some(self.catalog.message_text(id).map(|text| {
            message.text = text;
            message
        }))
    }
}

/// One session as listed (`baton list --json` prints these fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    /// Session id (Codex thread id, Claude session id).
    pub id: String,
    /// Which agent wrote it.
    pub agent: Agent,
    /// Working directory the session started in.
    pub cwd: Option<String>,
    /// The agent's name for the session, else its first typed prompt.
    pub title: Option<String>,
    /// First typed prompt of the whole lineage (a fork's inherited one included).
    pub first_prompt: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub started_at: String,
    /// Time of the newest record, RFC 3339 UTC.
    pub updated_at: String,
    /// Typed prompts over the lineage.
    pub user_turns: u64,
    /// Normalized messages over the lineage.
    pub message_count: u64,
    /// Most recent model.
    pub model: Option<String>,
    /// Most recent git branch.
    pub git_branch: Option<String>,
    /// The session this one was forked from.
    pub forked_from: Option<String>,
    /// The session of the other agent this one was converted from (`baton convert`).
    pub converted_from: Option<crate::SessionRef>,
    /// Sessions of the other agent converted from this one.
    pub converted_to: Vec<crate::SessionRef>,
    /// The session's own native files (main transcript first, then subagent files).
    pub paths: Vec<String>,
    /// Total size of `paths` in bytes.
    pub bytes: u64,
    /// The session's file is gone from disk and its bytes come from baton's
    /// archive (`baton resume`/`rehydrate` write it back).
    pub archived: bool,
}

/// Filters and paging for [`Catalog::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this agent's sessions.
    pub agent: Option<Agent>,
    /// Only sessions whose cwd is this directory or below it (whole path components).
    pub cwd: Option<String>,
    /// Only sessions updated at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Page size (0 means 50).
    pub limit: usize,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of [`Catalog::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// Sessions, newest `updated_at` first.
    pub sessions: Vec<SessionRow>,
    /// Pass as [`ListQuery::cursor`] to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A full-text query for [`Catalog::search`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words to find (all of them; `word*` matches a prefix). Any text is safe.
    pub query: String,
    /// Only this agent's sessions.
    pub agent: Option<Agent>,
    /// Only sessions whose cwd is this directory or below it.
    pub cwd: Option<String>,
    /// Maximum hits (0 means 20).
    pub limit: usize,
    /// Most hits of one session (0: no limit); the others are counted in
    /// [`Hit::more_in_session`].
    pub per_session: usize,
}

/// One search hit (`baton search --json` prints these fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// Session the message belongs to (a subagent's parent session).
    pub session_id: String,
    /// Agent of that session.
    pub agent: Agent,
    /// Who produced the message.
    pub role: Role,
    /// What the message is.
    pub kind: MessageKind,
    /// Matching excerpt; matched words are wrapped in `«` and `»`.
    pub snippet: String,
    /// Message time, RFC 3339 UTC.
    pub timestamp: Option<String>,
    /// The session's title.
    pub title: Option<String>,
    /// The session's working directory.
    pub cwd: Option<String>,
    /// Matching messages of this session beyond those returned (with
    /// [`SearchQuery::per_session`]; the same number on each of its hits).
    pub more_in_session: u64,
}

/// What [`Catalog::search_grouped`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The hits, best first.
    pub hits: Vec<Hit>,
    /// Matching sessions none of whose hits are in `hits` (the limit was
    /// reached); counted only with [`SearchQuery::per_session`] set.
    pub sessions_left_out: u64,
    /// Whether `sessions_left_out` counts them all, or is a lower bound
    /// (a common word on a big catalog: the search stopped reading matches
    /// once the hits shown were certain).
    pub sessions_left_out_exact: bool,
}

/// One contiguous piece of native bytes making up a session's lineage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// File key (a path for files on disk).
    pub path: PathBuf,
    /// Only bytes before this offset belong to the lineage (`None`: the whole file).
    pub end: Option<u64>,
    /// The file is zstd-compressed (offsets count uncompressed bytes).
    pub compressed: bool,
    /// The file exists on disk (false for bytes pushed with `ingest_chunk`
    /// and for archived files).
    pub on_disk: bool,
    /// The file is gone from disk; its bytes are in baton's archive.
    pub archived: bool,
}

const SESSION_COLS: &str =
    "id, agent, cwd, title, first_prompt, started_at, updated_at, user_turns,
    message_count, model, git_branch, forked_from, paths, bytes,
    coalesce((SELECT archived FROM files WHERE files.id = s.file_id), 0),
    (SELECT json_object('agent', c.from_agent, 'id', c.from_id) FROM conversions c
     WHERE c.agent = s.agent AND c.id = s.id),
    (SELECT json_group_array(json_object('agent', c.agent, 'id', c.id)) FROM conversions c
     WHERE c.from_agent = s.agent AND c.from_id = s.id)";

pub(crate) fn parse_agent(s: &str) -> rusqlite::Result<Agent> {
    s.parse::<Agent>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    let paths: String = r.get(12)?;
    Ok(SessionRow {
        id: r.get(0)?,
        agent: parse_agent(&r.get::<_, String>(1)?)?,
        cwd: r.get(2)?,
        title: r.get(3)?,
        first_prompt: r.get(4)?,
        started_at: r.get(5)?,
        updated_at: r.get(6)?,
        user_turns: r.get::<_, i64>(7)? as u64,
        message_count: r.get::<_, i64>(8)? as u64,
        model: r.get(9)?,
        git_branch: r.get(10)?,
        forked_from: r.get(11)?,
        paths: serde_json::from_str(&paths).unwrap_or_default(),
        bytes: r.get::<_, i64>(13)? as u64,
        archived: r.get(14)?,
        converted_from: r
            .get::<_, Option<String>>(15)?
            .and_then(|j| serde_json::from_str(&j).ok()),
        converted_to: r
            .get::<_, Option<String>>(16)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
    })
}

/// `/a/b/` → `/a/b`; `None` for "no filter" (empty or `/`).
fn cwd_prefix(cwd: &Option<String>) -> Option<String> {
    let c = cwd.as_deref()?.trim_end_matches('/');
    (!c.is_empty()).then(|| c.to_string())
}

fn encode_cursor(row: &SessionRow) -> String {
    let raw = format!(
        "{}\u{1f}{}\u{1f}{}",
        row.updated_at,
        row.agent.as_str(),
        row.id
    );
    hex::encode(raw.as_bytes())
}

/// Check that `cursor` is a `next_cursor` that [`Catalog::list`] produced
/// (for validating `--cursor` before doing any work).
pub fn check_cursor(cursor: &str) -> Result<()> {
    decode_cursor(cursor).map(|_| ())
}

fn decode_cursor(cursor: &str) -> Result<(String, String, String)> {
    let bad = || Error::InvalidCursor(cursor.to_string());
    let raw = hex::decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = raw.split('\u{1f}');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(t), Some(a), Some(i), None) => Ok((t.to_string(), a.to_string(), i.to_string())),
        _ => Err(bad()),
    }
}

/// Matches a grouped search reads past the one that fills its limit, to
/// count the sessions left out, before it stops: past them the count is a
/// lower bound ([`Found::sessions_left_out_exact`] is false) and each shown
/// session's other matches are counted in that session alone. Reading every
/// match costs a few µs each, too much for common words on a big catalog
/// (see `benches/catalog.rs`).
const READ_PAST_LIMIT: usize = 500;

/// The ranked rows of a search grouped per session.
struct Grouped {
    /// The first `limit` of the rows, at most `per_session` of each session.
    kept: Vec<(i64, Hit)>,
    /// (shown, more) of each shown session, by (agent, session id).
    sessions: HashMap<(Agent, String), (usize, u64)>,
    /// Sessions with a match and no hit kept.
    left_out: u64,
    /// Every row was read: the counts are exact.
    read_all: bool,
}

/// The first `limit` of the ranked `rows`, at most `per_session` (0: any
/// number) of each session, the others of a kept session counted; and the
/// sessions left out, reading at most [`READ_PAST_LIMIT`] rows past the
/// limit.
fn per_session(
    rows: impl Iterator<Item = Result<(i64, Hit)>>,
    limit: usize,
    per_session: usize,
) -> Result<Grouped> {
    let mut kept: Vec<(i64, Hit)> = Vec::new();
    let mut sessions: HashMap<(Agent, String), (usize, u64)> = HashMap::new();
    let mut left_out: HashSet<(Agent, String)> = HashSet::new();
    let mut past_limit = 0;
    for row in rows {
        if kept.len() >= limit {
            if past_limit == READ_PAST_LIMIT {
                return Ok(Grouped {
                    kept,
                    sessions,
                    left_out: left_out.len() as u64,
                    read_all: false,
                });
            }
            past_limit += 1;
        }
        let (id, hit) = row?;
        let key = (hit.agent, hit.session_id.clone());
        match sessions.get_mut(&key) {
            Some((shown, more)) if per_session > 0 && *shown >= per_session => *more += 1,
            Some((shown, _)) if kept.len() < limit => {
                *shown += 1;
                kept.push((id, hit));
            }
            Some((_, more)) => *more += 1,
            None if kept.len() < limit => {
                sessions.insert(key, (1, 0));
                kept.push((id, hit));
            }
            None => {
                left_out.insert(key);
            }
        }
    }
    Ok(Grouped {
        kept,
        sessions,
        left_out: left_out.len() as u64,
        read_all: true,
    })
}

/// One of the catalog's two FTS5 tables (see the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FtsTable {
    /// `messages_fts`: texts word by word.
    Words,
    /// `messages_bag`: the bags of words of long texts
    /// ([`baton_search::bag_text`]).
    Bags,
}

impl FtsTable {
    /// The table's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FtsTable::Words => "messages_fts",
            FtsTable::Bags => "messages_bag",
        }
    }

    /// The `messages.indexed` value of a message whose text is here.
    pub(crate) fn indexed(self) -> i64 {
        match self {
            FtsTable::Words => 1,
            FtsTable::Bags => 2,
        }
    }

    /// The `MATCH` expression of `query` over this table.
    pub(crate) fn fts(self, query: &baton_search::Query) -> String {
        match self {
            FtsTable::Words => query.fts(),
            FtsTable::Bags => query.fts_bag(),
        }
    }

    /// Whether a hit of `query` here is only a candidate, to check against
    /// its text ([`Catalog::is_match`]).
    pub(crate) fn checked(self, query: &baton_search::Query) -> bool {
        self == FtsTable::Bags && !query.bag_is_exact()
    }
}

/// Two streams of `(score, row)`, each best (lowest score) first, merged
/// best first; an error is passed on where it occurs.
fn best_first<T>(
    a: impl Iterator<Item = Result<(f64, T)>>,
    b: impl Iterator<Item = Result<(f64, T)>>,
) -> impl Iterator<Item = Result<T>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        let take_a = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) | (Some(Err(_)), _) => true,
            (None, Some(_)) | (_, Some(Err(_))) => false,
            (Some(Ok((x, _))), Some(Ok((y, _)))) => x <= y,
        };
        let next = if take_a { a.next() } else { b.next() };
        next.map(|row| row.map(|(_, t)| t))
    })
}

/// `path/` prefix of a root, as stored file keys under it start.
fn root_prefix(root: &std::path::Path) -> String {
    let text = root.to_string_lossy();
    let trimmed = text.trim_end_matches('/');
    format!("{trimmed}/")
}

impl Catalog {
    /// From now on show only sessions with a file under `roots` (or bytes
    /// pushed with [`Catalog::ingest_chunk`]), as [`Catalog::refresh`] does,
    /// without reading the roots (for a catalog a file watcher keeps current).
    pub fn set_scope(&mut self, roots: &Roots) -> Result<()> {
        self.conn
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS scope_roots (prefix TEXT PRIMARY KEY);
                 DELETE FROM temp.scope_roots;",
            )
            .at(&self.path)?;
        let mut insert = self
            .conn
            .prepare("INSERT OR IGNORE INTO temp.scope_roots (prefix) VALUES (?1)")
            .at(&self.path)?;
        let prefixes: Vec<String> = roots.all().map(|root| root_prefix(root)).collect();
        for prefix in &prefixes {
            insert.execute([prefix]).at(&self.path)?;
        }
        // When every file on disk is under the roots, the scope keeps
        // everything: leave the condition out of the queries (it costs an
        // `EXISTS` per session or hit).
        self.scoped = self.files_outside(prefixes)?;
        Ok(())
    }

    /// Whether the catalog has a file on disk whose path starts with none of
    /// `prefixes`: a few range lookups in the path index, over the gaps
    /// between the prefixes in sorted order.
    fn files_outside(&self, mut prefixes: Vec<String>) -> Result<bool> {
        prefixes.sort();
        let mut kept: Vec<String> = Vec::new();
        for prefix in prefixes {
            if !kept.last().is_some_and(|k| prefix.starts_with(k.as_str())) {
                kept.push(prefix);
            }
        }
        let mut between = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM files WHERE path >= ?1 AND path < ?2 AND on_disk = 1)",
            )
            .at(&self.path)?;
        let mut low = String::new();
        for prefix in kept {
            if between
                .query_row(params![low, prefix], |r| r.get::<_, bool>(0))
                .at(&self.path)?
            {
                return Ok(true);
            }
            // Just past every path under `prefix` (which ends with `/`):
            // the same text with `0`, the character after `/`.
            low = format!("{}0", &prefix[..prefix.len() - 1]);
        }
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM files WHERE path >= ?1 AND on_disk = 1)")
            .and_then(|mut s| s.query_row([low], |r| r.get::<_, bool>(0)))
            .at(&self.path)
    }

    /// SQL condition (starting with ` AND`) keeping sessions `alias` of the
    /// current scope; empty before the first refresh.
    fn in_scope(&self, alias: &str) -> String {
        if !self.scoped {
            return String::new();
        }
        format!(
            " AND EXISTS (SELECT 1 FROM files sf WHERE sf.agent = {alias}.agent AND sf.session_id = {alias}.id
                 AND (sf.on_disk = 0 OR EXISTS (SELECT 1 FROM temp.scope_roots r
                      WHERE substr(sf.path, 1, length(r.prefix)) = r.prefix)))"
        )
    }

    /// Sessions newest first, filtered and paged with an opaque keyset cursor.
    pub fn list(&self, q: &ListQuery) -> Result<Page> {
        let limit = if q.limit == 0 { 50 } else { q.limit };
        let mut sql = format!(
            "SELECT {SESSION_COLS} FROM sessions s WHERE 1=1{}",
            self.in_scope("s")
        );
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(agent) = q.agent {
            sql.push_str(" AND agent = ?");
            args.push(Box::new(agent.as_str()));
        }
        if let Some(prefix) = cwd_prefix(&q.cwd) {
            sql.push_str(" AND (cwd = ? OR substr(cwd, 1, ?) = ?)");
            args.push(Box::new(prefix.clone()));
            args.push(Box::new(prefix.chars().count() as i64 + 1));
            args.push(Box::new(format!("{prefix}/")));
        }
        if let Some(since) = &q.since {
            sql.push_str(" AND updated_at >= ?");
            args.push(Box::new(since.clone()));
        }
        if let Some(cursor) = &q.cursor {
            let (t, a, i) = decode_cursor(cursor)?;
            sql.push_str(" AND (updated_at, agent, id) < (?, ?, ?)");
            args.push(Box::new(t));
            args.push(Box::new(a));
            args.push(Box::new(i));
        }
        sql.push_str(" ORDER BY updated_at DESC, agent DESC, id DESC LIMIT ?");
        args.push(Box::new(limit as i64 + 1));
        let mut stmt = self.conn.prepare_cached(&sql).at(&self.path)?;
        let mut sessions: Vec<SessionRow> = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), session_row)
            .at(&self.path)?
            .collect::<Result<_, _>>()
            .at(&self.path)?;
        let next_cursor = if sessions.len() > limit {
            sessions.truncate(limit);
            sessions.last().map(encode_cursor)
        } else {
            None
        };
        Ok(Page {
            sessions,
            next_cursor,
        })
    }

    /// Find a session by full id, unique id prefix, or (when no id has that
    /// prefix) unique id fragment, across both agents.
    pub fn resolve(&self, id_or_prefix: &str) -> Result<SessionRow> {
        let key = id_or_prefix.trim();
        if key.is_empty() {
            return Err(Error::UnknownSession(id_or_prefix.to_string()));
        }
        let scope = self.in_scope("s");
        let sql =
            format!("SELECT {SESSION_COLS} FROM sessions s WHERE id = ?1{scope} ORDER BY agent");
        let exact: Vec<SessionRow> = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_map([key], session_row)?.collect())
            .at(&self.path)?;
        let rows = if exact.is_empty() {
            // Range scan on the id index: every id starting with `key`.
            let sql = format!(
                "SELECT {SESSION_COLS} FROM sessions s WHERE id >= ?1 AND id < ?1 || char(1114111){scope}
                 ORDER BY id, agent LIMIT 11"
            );
            let by_prefix: Vec<SessionRow> = self
                .conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_map([key], session_row)?.collect())
                .at(&self.path)?;
            if by_prefix.is_empty() {
                // UUIDv7 ids of one day share their first block: accept any
                // unique part (`9126` for `01a1ff8d-9126-...`).
                let sql = format!(
                    "SELECT {SESSION_COLS} FROM sessions s WHERE instr(id, ?1) > 0{scope}
                     ORDER BY id, agent LIMIT 11"
                );
                self.conn
                    .prepare_cached(&sql)
                    .and_then(|mut s| s.query_map([key], session_row)?.collect())
                    .at(&self.path)?
            } else {
                by_prefix
            }
        } else {
            exact
        };
        match rows.len() {
            0 => Err(Error::UnknownSession(key.to_string())),
            1 => Ok(rows.into_iter().next().expect("one row")),
            _ => Err(Error::AmbiguousPrefix {
                prefix: key.to_string(),
                candidates: rows
                    .iter()
                    .take(10)
                    .map(|r| format!("{}:{}", r.agent, r.id))
                    .collect(),
            }),
        }
    }

    /// A session and its messages in conversation order (see
    /// [`Catalog::transcript`]), all of them read.
    pub fn show(&self, id_or_prefix: &str) -> Result<(SessionRow, Vec<Message>)> {
        let row = self.resolve(id_or_prefix)?;
        let messages = self.transcript(&row)?.collect::<Result<_>>()?;
        Ok((row, messages))
    }

    /// A session's messages in conversation order, each read when the
    /// iterator reaches it (so a session of any size is shown in bounded
    /// memory): for a Codex fork the inherited history (parent bytes before
    /// the fork point, recursively) comes first; Claude sessions follow the
    /// uuid chain.
    pub fn transcript(&self, row: &SessionRow) -> Result<Transcript<'_>> {
        let lineage = self.lineage(row)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, role, kind, tool_name, call_id, timestamp, offset, uuid, parent_uuid
                 FROM messages WHERE file_id = ?1 AND offset < ?2 ORDER BY offset, id",
            )
            .at(&self.path)?;
        let mut ids = Vec::new();
        let mut heads = Vec::new();
        for (file_id, end) in lineage {
            let end = end.min(i64::MAX as u64) as i64;
            let rows = stmt
                .query_map(params![file_id, end], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        Message {
                            role: r.get::<_, String>(1)?.parse().unwrap_or(Role::System),
                            kind: r.get::<_, String>(2)?.parse().unwrap_or(MessageKind::Other),
                            text: String::new(),
                            tool_name: r.get(3)?,
                            call_id: r.get(4)?,
                            timestamp: r.get(5)?,
                            offset: r.get::<_, i64>(6)? as u64,
                            uuid: r.get(7)?,
                            parent_uuid: r.get(8)?,
                        },
                    ))
                })
                .at(&self.path)?;
            for item in rows {
                let (id, head) = item.at(&self.path)?;
                ids.push(id);
                heads.push(head);
            }
        }
        let order = if row.agent == Agent::Claude {
            baton_native::claude::chain_order(&heads)
        } else {
            (0..heads.len()).collect()
        };
        let mut slots: Vec<Option<(i64, Message)>> = ids.into_iter().zip(heads).map(Some).collect();
        let messages = order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect::<Vec<_>>()
            .into_iter();
        Ok(Transcript {
            catalog: self,
            messages,
        })
    }

    /// The text of message `id`: from the catalog, or read back from its
    /// native line when the catalog keeps only where it is (see
    /// [`crate::schema`]: long texts of files on disk are not copied).
    pub(crate) fn message_text(&self, id: i64) -> Result<String> {
        let (text, file_id, offset, ordinal, kind): (Option<String>, i64, i64, i64, String) = self
            .conn
            .prepare_cached(
                "SELECT text, file_id, offset, ordinal, kind FROM messages WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
            })
            .at(&self.path)?;
        if let Some(text) = text {
            return Ok(text);
        }
        let (seg, agent) = self.file_segment(file_id)?;
        let mut line = Vec::new();
        std::io::BufReader::new(self.open_segment(&seg, offset as u64)?)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(&seg.path, e))?;
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let chunk = baton_native::FileReader::new(agent).feed(&line);
        chunk
            .messages
            .into_iter()
            .nth(ordinal as usize)
            .filter(|m| m.kind.as_str() == kind)
            .map(|m| m.text)
            .ok_or_else(|| Error::Io {
                path: seg.path.clone(),
                source: std::io::Error::other(format!(
                    "the line at byte {offset} changed since it was indexed; run `baton index` and try again"
                )),
            })
    }

    /// `(file id, end offset)` pieces of a session's lineage, oldest first.
    fn lineage(&self, row: &SessionRow) -> Result<Vec<(i64, u64)>> {
        let json: String = self
            .conn
            .query_row(
                "SELECT lineage FROM sessions WHERE agent = ?1 AND id = ?2",
                params![row.agent.as_str(), row.id],
                |r| r.get(0),
            )
            .at(&self.path)?;
        serde_json::from_str(&json).map_err(|e| Error::Corrupt {
            what: format!("sessions.lineage of {}", row.id),
            message: e.to_string(),
        })
    }

    /// The native byte ranges that make up a session's lineage, oldest first.
    pub fn segments(&self, row: &SessionRow) -> Result<Vec<Segment>> {
        self.lineage(row)?
            .into_iter()
            .map(|(file_id, end)| {
                let (mut seg, _) = self.file_segment(file_id)?;
                seg.end = (end != u64::MAX).then_some(end);
                Ok(seg)
            })
            .collect()
    }

    /// The whole native file of a `files` row, and its agent.
    fn file_segment(&self, file_id: i64) -> Result<(Segment, Agent)> {
        let (path, compressed, on_disk, archived, agent): (String, bool, bool, bool, String) = self
            .conn
            .prepare_cached(
                "SELECT path, compressed, on_disk, archived, agent FROM files WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([file_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
            })
            .at(&self.path)?;
        let agent = parse_agent(&agent).at(&self.path)?;
        let seg = Segment {
            path: PathBuf::from(path),
            end: None,
            compressed,
            on_disk,
            archived,
        };
        Ok((seg, agent))
    }

    /// A reader over a segment's native bytes from uncompressed offset
    /// `from` to the segment's end: from disk, or from baton's archive for an
    /// archived file. Compressed files are read decompressed.
    fn open_segment(&self, seg: &Segment, from: u64) -> Result<Box<dyn Read + Send>> {
        let whole: Box<dyn Read + Send> = if seg.archived && seg.compressed {
            // The archive keeps the `.zst` file as it was: decompress from
            // its start and skip to `from`.
            let raw = self.archived_reader(&seg.path, 0)?;
            let mut decoder: Box<dyn Read + Send> = Box::new(
                zstd::stream::read::Decoder::new(raw).map_err(|e| Error::io(&seg.path, e))?,
            );
            std::io::copy(&mut decoder.by_ref().take(from), &mut std::io::sink())
                .map_err(|e| Error::io(&seg.path, e))?;
            decoder
        } else if seg.archived {
            Box::new(self.archived_reader(&seg.path, from)?)
        } else if seg.on_disk {
            baton_native::discover::open_native_path(&seg.path, seg.compressed, from)
                .map_err(|e| Error::io(&seg.path, e))?
        } else {
            return Err(Error::Io {
                path: seg.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "these bytes were pushed to the catalog and are not on disk; export them from the sync server",
                ),
            });
        };
        Ok(match seg.end {
            Some(end) => Box::new(whole.take(end.saturating_sub(from))),
            None => whole,
        })
    }

    /// Write the native bytes of a session's lineage, exactly as the agent
    /// wrote them (a Codex fork: the parent's bytes up to the fork point, then
    /// the fork's file), streamed. Compressed files are written
    /// decompressed; archived files are read from baton's archive.
    pub fn write_native(&self, row: &SessionRow, out: &mut dyn Write) -> Result<u64> {
        let mut written = 0;
        for seg in self.segments(row)? {
            let mut src = self.open_segment(&seg, 0)?;
            written += std::io::copy(&mut src, out).map_err(|e| Error::io(&seg.path, e))?;
        }
        Ok(written)
    }

    /// The joins and conditions that turn FTS matches into visible hits,
    /// for a query whose `FROM` has the matching message ids as
    /// `message_id` (the FTS table's rowid, or a column of a table of them):
    /// `m` is the message, `f` its file, `s` the session it is
    /// a hit of, under the policy of [`Catalog::search`] (subagents count
    /// for their parent; copies a fork or a conversion made count for the
    /// source only), with the agent and directory filters. Appends the
    /// filters' arguments to `args`; ends inside `WHERE`, so more `AND`
    /// conditions may follow.
    pub(crate) fn visible_hits(
        &self,
        message_id: &str,
        agent: Option<Agent>,
        cwd: &Option<String>,
        args: &mut Vec<Box<dyn ToSql>>,
    ) -> String {
        let mut sql = format!(
            "JOIN messages m ON m.id = {message_id}
             JOIN files f ON f.id = m.file_id
             JOIN sessions s ON s.agent = f.agent AND s.id = f.session_id
             WHERE (f.sidechain = 1 OR f.id = s.file_id){}
               AND NOT (m.dkey IS NOT NULL AND s.forked_from IS NOT NULL AND f.sidechain = 0
                 AND EXISTS (
                   SELECT 1 FROM sessions ps, json_each(ps.lineage) l
                   JOIN messages pm ON pm.file_id = json_extract(l.value, '$[0]')
                   WHERE ps.agent = s.agent AND ps.id = s.forked_from AND pm.dkey = m.dkey{}))
               AND NOT (f.sidechain = 0 AND EXISTS (
                   SELECT 1 FROM conversions c
                   JOIN sessions ps ON ps.agent = c.from_agent AND ps.id = c.from_id,
                        json_each(ps.lineage) l
                   JOIN messages pm ON pm.file_id = json_extract(l.value, '$[0]')
                   WHERE c.agent = s.agent AND c.id = s.id
                     AND pm.kind = m.kind AND pm.text_key = m.text_key{}))",
            self.in_scope("s"),
            self.in_scope("ps"),
            self.in_scope("ps"),
        );
        if let Some(agent) = agent {
            sql.push_str(" AND s.agent = ?");
            args.push(Box::new(agent.as_str()));
        }
        if let Some(prefix) = cwd_prefix(cwd) {
            sql.push_str(" AND (s.cwd = ? OR substr(s.cwd, 1, ?) = ?)");
            args.push(Box::new(prefix.clone()));
            args.push(Box::new(prefix.chars().count() as i64 + 1));
            args.push(Box::new(format!("{prefix}/")));
        }
        sql
    }

    /// Full-text search, best (bm25) first, under [`baton_search`]'s policy:
    /// what is searchable, how the query is read, the snippet (computed from
    /// the message text in linear time, not by FTS5) and fork attribution.
    /// Subagent transcripts are searched and attributed to their parent
    /// session. A record a fork copied from its parent (same
    /// [`baton_search::copy_key`]), found anywhere in the parent's lineage,
    /// is a hit of the parent only, so of the oldest ancestor. Likewise a
    /// message a conversion copied (same kind and text as a message of the
    /// session it was converted from) is a hit of that source only.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>> {
        self.search_grouped(q).map(|found| found.hits)
    }

    /// [`Catalog::search`], also counting the matching sessions left out
    /// by the limit.
    pub fn search_grouped(&self, q: &SearchQuery) -> Result<Found> {
        let query = baton_search::Query::parse(&q.query).ok_or(Error::EmptyQuery)?;
        let limit = if q.limit == 0 { 20 } else { q.limit };
        // Each table's hits come best first from FTS5 (`ORDER BY rank`), so
        // only the rows read go through the joins; the two are merged.
        let mut words = self.ranked(FtsTable::Words, &query, q, limit)?;
        let mut bags = self.ranked(FtsTable::Bags, &query, q, limit)?;
        let rows = best_first(
            self.ranked_rows(&mut words, FtsTable::Words, &query)?,
            self.ranked_rows(&mut bags, FtsTable::Bags, &query)?,
        )
        .take(if q.per_session == 0 {
            limit
        } else {
            usize::MAX
        });
        let mut grouped = per_session(rows, limit, q.per_session)?;
        drop((words, bags));
        if !grouped.read_all {
            for ((agent, id), (shown, more)) in &mut grouped.sessions {
                let matching = self.matches_in_session(&query, *agent, id)?;
                *more = matching.saturating_sub(*shown as u64);
            }
        }
        // Only the hits shown have their text read.
        let hits = grouped
            .kept
            .into_iter()
            .map(|(id, mut hit)| {
                hit.more_in_session = grouped
                    .sessions
                    .get(&(hit.agent, hit.session_id.clone()))
                    .map_or(0, |s| s.1);
                hit.snippet = query.snippet(&self.message_text(id)?);
                Ok(hit)
            })
            .collect::<Result<_>>()?;
        Ok(Found {
            hits,
            sessions_left_out: grouped.left_out,
            sessions_left_out_exact: grouped.read_all,
        })
    }

    /// The visible matches of `query` in one session: FTS5 reads only the
    /// matches between the session's lowest and highest message ids.
    fn matches_in_session(
        &self,
        query: &baton_search::Query,
        agent: Agent,
        id: &str,
    ) -> Result<u64> {
        let (low, high): (Option<i64>, Option<i64>) = self
            .conn
            .prepare_cached(
                "SELECT min(m.id), max(m.id) FROM files f JOIN messages m ON m.file_id = f.id
                 WHERE f.agent = ?1 AND f.session_id = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![agent.as_str(), id], |r| Ok((r.get(0)?, r.get(1)?)))
            })
            .at(&self.path)?;
        let (Some(low), Some(high)) = (low, high) else {
            return Ok(0);
        };
        let mut count = 0;
        for table in [FtsTable::Words, FtsTable::Bags] {
            let t = table.name();
            let checked = table.checked(query);
            let mut args: Vec<Box<dyn ToSql>> = Vec::new();
            let sql = format!(
                "SELECT {} FROM {t} {}
                   AND {t} MATCH ? AND {t}.rowid BETWEEN ? AND ?
                   AND s.agent = ? AND s.id = ?",
                if checked { "m.id" } else { "count(*)" },
                self.visible_hits(&format!("{t}.rowid"), None, &None, &mut args)
            );
            args.push(Box::new(table.fts(query)));
            args.push(Box::new(low));
            args.push(Box::new(high));
            args.push(Box::new(agent.as_str()));
            args.push(Box::new(id.to_string()));
            let found: Vec<i64> = self
                .conn
                .prepare_cached(&sql)
                .and_then(|mut stmt| {
                    stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?
                        .collect()
                })
                .at(&self.path)?;
            if !checked {
                count += found.iter().sum::<i64>() as u64;
                continue;
            }
            for mid in found {
                count += u64::from(self.is_match(query, mid, table)?);
            }
        }
        Ok(count)
    }

    /// The statement of [`Catalog::search_grouped`] over one FTS5 table, best
    /// first, and its arguments.
    fn ranked(
        &self,
        table: FtsTable,
        query: &baton_search::Query,
        q: &SearchQuery,
        limit: usize,
    ) -> Result<(rusqlite::CachedStatement<'_>, Vec<Box<dyn ToSql>>)> {
        let t = table.name();
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        let mut sql = format!(
            "SELECT m.id, f.session_id, f.agent, m.role, m.kind, m.timestamp, s.title, s.cwd,
                    {t}.rank
             FROM {t} {} AND {t} MATCH ? ORDER BY {t}.rank",
            self.visible_hits(&format!("{t}.rowid"), q.agent, &q.cwd, &mut args)
        );
        args.push(Box::new(table.fts(query)));
        // A hit that fails its check leaves a row unused: the limit is then
        // counted after the checks.
        if q.per_session == 0 && !table.checked(query) {
            sql.push_str(" LIMIT ?");
            args.push(Box::new(limit as i64));
        }
        Ok((self.conn.prepare_cached(&sql).at(&self.path)?, args))
    }

    /// The rows of a [`Catalog::ranked`] statement that match `query`
    /// (checked, see [`Catalog::is_match`]): (score, (message id, hit)).
    fn ranked_rows<'s>(
        &'s self,
        (stmt, args): &'s mut (rusqlite::CachedStatement<'_>, Vec<Box<dyn ToSql>>),
        table: FtsTable,
        query: &'s baton_search::Query,
    ) -> Result<impl Iterator<Item = Result<(f64, (i64, Hit))>> + 's> {
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((
                    r.get::<_, f64>(8)?,
                    (
                        r.get(0)?,
                        Hit {
                            session_id: r.get(1)?,
                            agent: parse_agent(&r.get::<_, String>(2)?)?,
                            role: r.get::<_, String>(3)?.parse().unwrap_or(Role::System),
                            kind: r.get::<_, String>(4)?.parse().unwrap_or(MessageKind::Other),
                            snippet: String::new(),
                            timestamp: r.get(5)?,
                            title: r.get(6)?,
                            cwd: r.get(7)?,
                            more_in_session: 0,
                        },
                    ),
                ))
            })
            .at(&self.path)?;
        Ok(rows.filter_map(move |row| {
            let row = row.at(&self.path);
            match row {
                Ok((_, (id, _))) => match self.is_match(query, id, table) {
                    Ok(true) => Some(row),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                },
                Err(e) => Some(Err(e)),
            }
        }))
    }

    /// Whether message `mid`, found by `query` in `table`, matches it: a
    /// bag of words found by a query with phrases is checked against the
    /// message's text.
    pub(crate) fn is_match(
        &self,
        query: &baton_search::Query,
        mid: i64,
        table: FtsTable,
    ) -> Result<bool> {
        if !table.checked(query) {
            return Ok(true);
        }
        Ok(query.matches(&self.message_text(mid)?).is_some())
    }

    /// Number of sessions in the catalog (of the last refresh's roots).
    pub fn count_sessions(&self) -> Result<u64> {
        let sql = format!(
            "SELECT count(*) FROM sessions s WHERE 1=1{}",
            self.in_scope("s")
        );
        self.conn
            .query_row(&sql, [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .at(&self.path)
    }

    /// Whether a session with exactly this agent and id is cataloged (under
    /// the last refresh's roots).
    pub fn contains(&self, agent: Agent, id: &str) -> Result<bool> {
        let sql = format!(
            "SELECT 1 FROM sessions s WHERE agent = ?1 AND id = ?2{}",
            self.in_scope("s")
        );
        self.conn
            .query_row(&sql, params![agent.as_str(), id], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .at(&self.path)
    }
}
