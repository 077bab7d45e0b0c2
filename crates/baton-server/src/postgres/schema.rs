//! The PostgreSQL schema as numbered migrations, applied at start-up under
//! an advisory lock (replicas starting together take turns; the later ones
//! find the schema current), and the sequencer of the `changes` feed.

use super::db_error;
use crate::storage::StorageResult;
use deadpool_postgres::Object;

/// Advisory lock key held while migrating ("baton" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_6174_6f6e;

/// Advisory lock key the sequencer holds while numbering changes.
const SEQUENCE_LOCK: i64 = 0x0062_6174_6f6e + 1;

/// Migrations in order; `MIGRATIONS[i]` brings the schema to version `i + 1`.
/// Never edit one that shipped: add the next.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users(
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL);
CREATE TABLE tokens(
  hash BYTEA PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL);
CREATE SEQUENCE session_seq;
CREATE TABLE sessions(
  pk BIGSERIAL PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id),
  id TEXT NOT NULL,
  agent TEXT NOT NULL,
  cwd TEXT, title TEXT, first_prompt TEXT, started_at TEXT, updated_at TEXT, forked_from TEXT,
  d_cwd TEXT, d_title TEXT, d_first_prompt TEXT, d_started_at TEXT, d_updated_at TEXT,
  d_forked_from TEXT, d_user_turns BIGINT NOT NULL DEFAULT 0,
  d_message_count BIGINT NOT NULL DEFAULT 0,
  diverged_from TEXT,
  encrypted BOOLEAN NOT NULL DEFAULT false,
  updated_seq BIGINT NOT NULL DEFAULT 0,
  seq_pending BOOLEAN NOT NULL DEFAULT true,
  UNIQUE(user_id, id));
CREATE INDEX sessions_by_seq ON sessions(user_id, updated_seq);
CREATE INDEX sessions_seq_pending ON sessions(pk) WHERE seq_pending;
CREATE INDEX sessions_by_updated
  ON sessions(user_id, (COALESCE(d_updated_at, updated_at, '') COLLATE "C"), updated_seq);
CREATE TABLE streams(
  pk BIGSERIAL PRIMARY KEY,
  session_pk BIGINT NOT NULL REFERENCES sessions(pk),
  name TEXT NOT NULL,
  len BIGINT NOT NULL,
  state BYTEA NOT NULL,
  indexed_len BIGINT NOT NULL DEFAULT 0,
  reader_state TEXT,
  skipped_lines BIGINT NOT NULL DEFAULT 0,
  UNIQUE(session_pk, name));
CREATE INDEX streams_unindexed ON streams(pk) WHERE indexed_len < len;
CREATE TABLE chunks(
  stream_pk BIGINT NOT NULL REFERENCES streams(pk),
  start BIGINT NOT NULL,
  len BIGINT NOT NULL,
  data BYTEA,
  blob TEXT,
  blob_off BIGINT NOT NULL DEFAULT 0,
  state_after BYTEA NOT NULL,
  PRIMARY KEY(stream_pk, start));
CREATE INDEX chunks_by_blob ON chunks(blob) WHERE blob IS NOT NULL;
CREATE TABLE msg_checkpoints(
  stream_pk BIGINT NOT NULL REFERENCES streams(pk),
  msg_no BIGINT NOT NULL,
  skipped BIGINT NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY(stream_pk, msg_no));
CREATE TABLE msg_texts(
  id BIGSERIAL PRIMARY KEY,
  session_pk BIGINT NOT NULL REFERENCES sessions(pk),
  copy_key TEXT,
  text TEXT NOT NULL,
  tokens BIGINT NOT NULL,
  terms TSVECTOR NOT NULL,
  terms_complete BOOLEAN NOT NULL);
CREATE INDEX msg_texts_terms ON msg_texts USING GIN(terms);
CREATE INDEX msg_texts_incomplete ON msg_texts(id) WHERE NOT terms_complete;
CREATE INDEX msg_texts_by_session ON msg_texts(session_pk);
CREATE TABLE search_corpus(
  one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
  rows BIGINT NOT NULL,
  tokens BIGINT NOT NULL);
INSERT INTO search_corpus(rows, tokens) VALUES (0, 0);
CREATE TABLE msg_copy_keys(
  session_pk BIGINT NOT NULL REFERENCES sessions(pk),
  key TEXT NOT NULL,
  PRIMARY KEY(session_pk, key));
CREATE TABLE mirror_files(
  user_id BIGINT NOT NULL REFERENCES users(id),
  path TEXT NOT NULL,
  size BIGINT NOT NULL,
  mtime_ns BIGINT NOT NULL,
  ino BIGINT NOT NULL,
  dev BIGINT NOT NULL,
  state BYTEA NOT NULL,
  diverged BOOLEAN NOT NULL,
  PRIMARY KEY(user_id, path));
"#,
    r#"
ALTER TABLE sessions ADD COLUMN archived BOOLEAN NOT NULL DEFAULT false;
"#,
    r#"
ALTER TABLE msg_texts ADD COLUMN msg_no BIGINT;
CREATE TABLE shares(
  hash BYTEA PRIMARY KEY,
  id TEXT NOT NULL,
  session_pk BIGINT NOT NULL REFERENCES sessions(pk),
  created_at TEXT NOT NULL,
  expires_unix BIGINT NOT NULL);
CREATE INDEX shares_by_session ON shares(session_pk, id);
CREATE INDEX sessions_by_parent ON sessions(user_id, COALESCE(d_forked_from, forked_from));
CREATE INDEX sessions_by_diverged ON sessions(user_id, diverged_from);
"#,
];

/// The sequencer: numbers every committed, not yet numbered session change
/// (`seq_pending`) from `session_seq`, one caller at a time, so numbers are
/// handed out in commit order and a reader never sees a later number
/// before an earlier one. Rows an append in flight holds are left for the
/// next call. One round trip, and no write when nothing is pending.
const SEQUENCER: &str = "
CREATE OR REPLACE FUNCTION baton_sequence() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM sessions WHERE seq_pending) THEN
    PERFORM pg_advisory_xact_lock(SEQUENCE_LOCK);
    UPDATE sessions SET updated_seq = nextval('session_seq'), seq_pending = false
      WHERE pk IN (SELECT pk FROM sessions WHERE seq_pending ORDER BY pk FOR UPDATE SKIP LOCKED);
  END IF;
END $$;
";

/// Bring the database to the newest schema version, holding an advisory
/// lock so replicas starting together migrate one at a time.
pub(super) async fn migrate(client: &mut Object) -> StorageResult<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    let res = apply(client).await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error);
    res.and(unlock.map(|_| ()))
}

async fn apply(client: &mut Object) -> StorageResult<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS baton_schema(version INTEGER NOT NULL);
             INSERT INTO baton_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM baton_schema);",
        )
        .await
        .map_err(db_error)?;
    let version: i32 = client
        .query_one("SELECT version FROM baton_schema", &[])
        .await
        .map_err(db_error)?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(sql).await.map_err(db_error)?;
        tx.execute("UPDATE baton_schema SET version = $1", &[&(i as i32 + 1)])
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
    }
    client
        .batch_execute(&SEQUENCER.replace("SEQUENCE_LOCK", &SEQUENCE_LOCK.to_string()))
        .await
        .map_err(db_error)
}

/// Number the committed changes not numbered yet (see [`SEQUENCER`]);
/// call before reading `updated_seq`.
pub(super) async fn sequence(client: &Object) -> StorageResult<()> {
    let stmt = client
        .prepare_cached("SELECT baton_sequence()")
        .await
        .map_err(db_error)?;
    client.execute(&stmt, &[]).await.map_err(db_error)?;
    Ok(())
}
