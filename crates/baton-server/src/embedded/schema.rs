//! The SQLite schema, its migrations, and how every connection is opened.

use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

/// Tables of `baton.db` (see the module docs of [`super`] for what each holds).
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(
  hash BLOB PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions(
  pk INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  id TEXT NOT NULL,
  agent TEXT NOT NULL,
  cwd TEXT, title TEXT, first_prompt TEXT, started_at TEXT, updated_at TEXT, forked_from TEXT,
  d_cwd TEXT, d_title TEXT, d_first_prompt TEXT, d_started_at TEXT, d_updated_at TEXT,
  d_forked_from TEXT, d_user_turns INTEGER NOT NULL DEFAULT 0, d_message_count INTEGER NOT NULL DEFAULT 0,
  diverged_from TEXT,
  encrypted INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  updated_seq INTEGER NOT NULL,
  UNIQUE(user_id, id));
CREATE INDEX IF NOT EXISTS sessions_by_seq ON sessions(user_id, updated_seq);
CREATE TABLE IF NOT EXISTS streams(
  pk INTEGER PRIMARY KEY,
  session_pk INTEGER NOT NULL REFERENCES sessions(pk),
  name TEXT NOT NULL,
  len INTEGER NOT NULL,
  state BLOB NOT NULL,
  indexed_len INTEGER NOT NULL DEFAULT 0,
  reader_state TEXT,
  skipped_lines INTEGER NOT NULL DEFAULT 0,
  UNIQUE(session_pk, name));
CREATE INDEX IF NOT EXISTS streams_unindexed ON streams(pk) WHERE indexed_len < len;
CREATE TABLE IF NOT EXISTS chunks(
  stream_pk INTEGER NOT NULL REFERENCES streams(pk),
  start INTEGER NOT NULL,
  len INTEGER NOT NULL,
  data BLOB,
  blob TEXT,
  blob_off INTEGER NOT NULL DEFAULT 0,
  state_after BLOB NOT NULL,
  PRIMARY KEY(stream_pk, start));
CREATE INDEX IF NOT EXISTS chunks_by_blob ON chunks(blob) WHERE blob IS NOT NULL;
CREATE TABLE IF NOT EXISTS msg_checkpoints(
  stream_pk INTEGER NOT NULL REFERENCES streams(pk),
  msg_no INTEGER NOT NULL,
  skipped INTEGER NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY(stream_pk, msg_no)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS msg_copy_keys(
  session_pk INTEGER NOT NULL REFERENCES sessions(pk),
  key TEXT NOT NULL,
  PRIMARY KEY(session_pk, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_updated
  ON sessions(user_id, COALESCE(d_updated_at, updated_at, ''), updated_seq);
CREATE INDEX IF NOT EXISTS sessions_by_parent
  ON sessions(user_id, COALESCE(d_forked_from, forked_from));
CREATE INDEX IF NOT EXISTS sessions_by_diverged ON sessions(user_id, diverged_from);
CREATE TABLE IF NOT EXISTS shares(
  hash BLOB PRIMARY KEY,
  id TEXT NOT NULL,
  session_pk INTEGER NOT NULL REFERENCES sessions(pk),
  created_at TEXT NOT NULL,
  expires_unix INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shares_by_session ON shares(session_pk, id);
CREATE TABLE IF NOT EXISTS mirror_files(
  user_id INTEGER NOT NULL REFERENCES users(id),
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ino INTEGER NOT NULL,
  dev INTEGER NOT NULL,
  state BLOB NOT NULL,
  diverged INTEGER NOT NULL,
  PRIMARY KEY(user_id, path)) WITHOUT ROWID;
"#;

/// Open a connection in WAL mode with full fsync and foreign keys on.
pub(super) fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The full-text index of message texts, under the shared search policy
/// (tokenizer [`baton_search::TOKENIZER`]; `copy_key` see
/// [`baton_search::copy_key`]).
fn msg_fts_ddl() -> String {
    format!(
        "CREATE VIRTUAL TABLE msg_fts USING fts5(text, session_pk UNINDEXED, copy_key UNINDEXED,
           msg_no UNINDEXED, tokenize = '{}')",
        baton_search::TOKENIZER
    )
}

/// Create `msg_fts`, or replace one made under another search policy and
/// have the indexer read every main stream again.
fn migrate_search_index(conn: &Connection) -> rusqlite::Result<()> {
    let ddl = msg_fts_ddl();
    let current: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'msg_fts'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if current.as_deref() == Some(ddl.as_str()) {
        return Ok(());
    }
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         DROP TABLE IF EXISTS msg_fts;
         {ddl};
         DELETE FROM msg_copy_keys;
         DELETE FROM msg_checkpoints;
         UPDATE streams SET indexed_len = 0, reader_state = NULL, skipped_lines = 0
           WHERE name = 'main';
         COMMIT;"
    ))
}

/// Bring a database made by an earlier version up to [`SCHEMA`].
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    migrate_search_index(conn)?;
    add_column(
        conn,
        "streams",
        "skipped_lines",
        "INTEGER NOT NULL DEFAULT 0",
    )?;
    add_column(conn, "sessions", "archived", "INTEGER NOT NULL DEFAULT 0")
}

/// Add `column` (of type `decl`) to `table` unless an earlier run did.
fn add_column(conn: &Connection, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        [table, column],
        |r| r.get(0),
    )?;
    if !present {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
    }
    Ok(())
}

/// The highest `updated_seq` any session carries (0 for an empty database).
pub(super) fn max_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COALESCE(MAX(updated_seq), 0) FROM sessions",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|v| v as u64)
}
