//! The embedded [`Storage`] backend: SQLite (WAL) for accounts, tokens,
//! session metadata, lineage, stream/chunk lists and the FTS5 search index;
//! session bytes as content-addressed chunks.
//!
//! Layout under the data directory:
//!
//! ```text
//! baton.db (+ -wal, -shm)   users, tokens, sessions, streams, chunks, msg_fts, mirror_files
//! blobs/ab/cdef…            chunk bodies larger than the inline limit, named by sha256
//! blobs/tmp/                temp files of blobs being written
//! ```
//!
//! A stream is an ordered list of chunks, one per append. A chunk is either
//! inline (small appends, stored in its SQLite row) or a range of a blob
//! file. Each chunk row carries the serialized SHA-256 state after its last
//! byte, so the hash of any prefix ending at an append boundary is one row
//! lookup, and any other prefix costs at most one chunk of hashing.
//!
//! Writes go through one writer thread that owns the only write connection
//! and commits whatever requests are queued in one transaction (group
//! commit, each request in its own savepoint), answering every request only
//! after the commit is durable. Blob files are written (temp file, fsync,
//! rename, fsync of the directory) before the request that references them
//! is queued: after a crash an unreferenced blob is harmless and an append is
//! either wholly visible or not at all. A large push is checked before its
//! blob is written, a blob of a rejected append is deleted unless another
//! append or chunk uses it, and [`Embedded::sweep_blobs`] (run at start-up)
//! removes what a crash left behind. Reads use a small pool of read-only
//! connections on the blocking thread pool.

use crate::hash::RunningSha256;
use crate::storage::{
    Account, IndexJob, IndexUpdate, ListQuery, MessageCheckpoint, MirrorFile, Storage,
    StorageError, StorageResult, StreamRead,
};
use baton_native::Agent;
use baton_native::discover::FileStat;
use baton_sync::protocol::{
    AppendResult, Changes, Checkpoint, ForkRequest, MAIN_STREAM, NewUser, SearchHit, SessionInfo,
    SessionList, SessionMeta, StreamInfo,
};
use bytes::Bytes;
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Digest;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use tokio::sync::oneshot;

/// Appends up to this size are stored inline in SQLite; larger ones as blob files.
pub const INLINE_MAX: usize = 128 * 1024;
const MAX_BATCH: usize = 512;
const READ_POOL: usize = 8;

const SCHEMA: &str = r#"
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
CREATE VIRTUAL TABLE IF NOT EXISTS msg_fts USING fts5(text, session_pk UNINDEXED);
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

/// The embedded backend (see the module docs).
#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    db_path: PathBuf,
    blobs: BlobDir,
    writer: Mutex<mpsc::Sender<Box<dyn Job>>>,
    readers: Mutex<Vec<Connection>>,
    auth_cache: RwLock<HashMap<[u8; 32], Account>>,
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(e.to_string())
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn token_hash(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Content-addressed blob files under `blobs/`.
#[derive(Debug, Clone)]
struct BlobDir {
    root: PathBuf,
    /// Blobs that appends in flight rely on (name → how many); a pinned blob
    /// is never deleted, even before the chunk referencing it is committed.
    pins: Arc<Mutex<HashMap<String, usize>>>,
}

/// A blob written (or found) for an append that has not finished yet; dropping it unpins.
struct BlobPin {
    dir: BlobDir,
    hex: Option<String>,
}

impl BlobPin {
    fn hex(&self) -> &str {
        self.hex.as_deref().unwrap_or_default()
    }

    /// The append was rejected: unpin, and delete the file when no other
    /// append is using it and no chunk references it.
    fn discard(mut self, conn: &Connection) {
        let Some(hex) = self.hex.take() else { return };
        let mut pins = self.dir.lock_pins();
        if self.dir.unpin(&mut pins, &hex) == 0 {
            self.dir.remove_if_unreferenced(conn, &hex);
        }
    }
}

impl Drop for BlobPin {
    fn drop(&mut self) {
        if let Some(hex) = self.hex.take() {
            let mut pins = self.dir.lock_pins();
            self.dir.unpin(&mut pins, &hex);
        }
    }
}

impl BlobDir {
    fn new(root: PathBuf) -> Self {
        Self {
            root,
            pins: Arc::default(),
        }
    }

    fn path(&self, hex: &str) -> PathBuf {
        match (hex.get(..2), hex.get(2..)) {
            (Some(shard), Some(rest)) if !rest.is_empty() => self.root.join(shard).join(rest),
            _ => self.root.join(hex),
        }
    }

    fn lock_pins(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drop one pin of `hex`; how many remain.
    fn unpin(&self, pins: &mut HashMap<String, usize>, hex: &str) -> usize {
        match pins.get_mut(hex) {
            Some(n) if *n > 1 => {
                *n -= 1;
                *n
            }
            _ => {
                pins.remove(hex);
                0
            }
        }
    }

    /// Delete a blob file no chunk references (the caller holds the pin lock
    /// and has checked nothing pins it). Failures are logged: an unreferenced
    /// blob is harmless, and the next start-up sweep retries.
    fn remove_if_unreferenced(&self, conn: &Connection, hex: &str) {
        let referenced = conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM chunks WHERE blob = ?1)")
            .and_then(|mut stmt| stmt.query_row(params![hex], |r| r.get::<_, bool>(0)));
        match referenced {
            Ok(true) => {}
            Ok(false) => match std::fs::remove_file(self.path(hex)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot delete unused blob {hex}: {e}"),
            },
            Err(e) => tracing::warn!("cannot check whether blob {hex} is used: {e}"),
        }
    }

    /// Write bytes durably under their sha256, pinned until the append finishes.
    fn put(&self, bytes: &[u8]) -> std::io::Result<BlobPin> {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        *self.lock_pins().entry(hex.clone()).or_default() += 1;
        let pin = BlobPin {
            dir: self.clone(),
            hex: Some(hex.clone()),
        };
        let path = self.path(&hex);
        if path.exists() {
            return Ok(pin);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if !dir.is_dir() {
            match std::fs::create_dir(&dir) {
                Ok(()) => std::fs::File::open(&self.root)?.sync_all()?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let tmp_dir = self.root.join("tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        let tmp = tmp_dir.join(format!("{hex}.{:016x}", rand::random::<u64>()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(pin)
    }

    /// Delete temp files and blob files no chunk references, skipping files
    /// modified at or after `before` (they may belong to appends in flight).
    fn sweep(&self, conn: &Connection, before: std::time::SystemTime) -> std::io::Result<usize> {
        let old = |entry: &std::fs::DirEntry| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
        };
        let mut removed = 0;
        for shard in std::fs::read_dir(&self.root)?.flatten() {
            let shard_name = shard.file_name().to_string_lossy().into_owned();
            let Ok(entries) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                if !old(&entry) {
                    continue;
                }
                if shard_name == "tmp" {
                    if std::fs::remove_file(entry.path()).is_ok() {
                        removed += 1;
                    }
                    continue;
                }
                let hex = format!("{shard_name}{}", entry.file_name().to_string_lossy());
                let pins = self.lock_pins();
                if pins.contains_key(&hex) {
                    continue;
                }
                self.remove_if_unreferenced(conn, &hex);
                drop(pins);
                if !entry.path().exists() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn read(&self, hex: &str, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(self.path(hex))?;
        file.seek(SeekFrom::Start(off))?;
        let mut buf = Vec::new();
        file.take(len).read_to_end(&mut buf)?;
        if buf.len() as u64 != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the blob holds fewer than {len} bytes from offset {off}"),
            ));
        }
        Ok(buf)
    }
}

/// One queued write, run inside the writer's transaction.
trait Job: Send {
    /// Run in a savepoint; `false` rolls the savepoint back.
    fn run(&mut self, w: &mut Writer) -> bool;
    /// Deliver the result once the transaction committed (or failed).
    fn finish(self: Box<Self>, commit: StorageResult<()>);
}

type WriteFn<T> = Box<dyn FnOnce(&mut Writer) -> StorageResult<T> + Send>;

struct TypedJob<T> {
    f: Option<WriteFn<T>>,
    res: Option<StorageResult<T>>,
    tx: Option<oneshot::Sender<StorageResult<T>>>,
}

impl<T: Send> Job for TypedJob<T> {
    fn run(&mut self, w: &mut Writer) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panicking job fails alone: its savepoint is rolled back and the
        // writer thread keeps serving every other request.
        let res =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(w))).unwrap_or_else(|_| {
                Err(StorageError::Internal(
                    "a database write failed unexpectedly; see the server log".into(),
                ))
            });
        let ok = res.is_ok();
        self.res = Some(res);
        ok
    }

    fn finish(mut self: Box<Self>, commit: StorageResult<()>) {
        let res = match (commit, self.res.take()) {
            (Err(e), Some(Ok(_))) => Err(e),
            (_, Some(res)) => res,
            (Err(e), None) => Err(e),
            (Ok(()), None) => Err(StorageError::Internal("write was not run".into())),
        };
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(res);
        }
    }
}

/// State owned by the writer thread.
struct Writer {
    conn: Connection,
    blobs: BlobDir,
    seq: u64,
}

impl Writer {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn run_loop(mut self, rx: mpsc::Receiver<Box<dyn Job>>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let commit = self.run_batch(&mut batch);
            if commit.is_err() {
                let _ = self.conn.execute_batch("ROLLBACK");
                if let Ok(seq) = max_seq(&self.conn) {
                    self.seq = self.seq.max(seq);
                }
            }
            for job in batch {
                job.finish(commit.clone());
            }
        }
    }

    fn run_batch(&mut self, batch: &mut [Box<dyn Job>]) -> StorageResult<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(internal)?;
        for job in batch.iter_mut() {
            self.conn.execute_batch("SAVEPOINT job").map_err(internal)?;
            let ok = job.run(self);
            if !ok {
                self.conn
                    .execute_batch("ROLLBACK TO job")
                    .map_err(internal)?;
            }
            self.conn.execute_batch("RELEASE job").map_err(internal)?;
        }
        self.conn.execute_batch("COMMIT").map_err(internal)
    }
}

/// Bring a database made by an earlier version up to [`SCHEMA`].
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_skipped: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info('streams') WHERE name = 'skipped_lines')",
        [],
        |r| r.get(0),
    )?;
    if !has_skipped {
        conn.execute_batch(
            "ALTER TABLE streams ADD COLUMN skipped_lines INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    Ok(())
}

fn max_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COALESCE(MAX(updated_seq), 0) FROM sessions",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|v| v as u64)
}

impl Embedded {
    /// Open (creating if needed) the data directory and start the writer thread.
    pub fn open(dir: &Path) -> StorageResult<Self> {
        std::fs::create_dir_all(dir.join("blobs").join("tmp"))
            .map_err(|e| StorageError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let db_path = dir.join("baton.db");
        let conn = open_conn(&db_path).map_err(internal)?;
        conn.execute_batch(SCHEMA).map_err(internal)?;
        migrate(&conn).map_err(internal)?;
        let seq = max_seq(&conn).map_err(internal)?;
        let blobs = BlobDir::new(dir.join("blobs"));
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let writer = Writer {
            conn,
            blobs: blobs.clone(),
            seq,
        };
        std::thread::Builder::new()
            .name("baton-db-writer".into())
            .spawn(move || writer.run_loop(rx))
            .map_err(internal)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db_path,
                blobs,
                writer: Mutex::new(tx),
                readers: Mutex::new(Vec::new()),
                auth_cache: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// Delete leftover temp files and blob files no chunk references (left
    /// by a crash or a failed commit), skipping files modified at or after
    /// `before`; returns how many files were removed.
    pub async fn sweep_blobs(&self, before: std::time::SystemTime) -> StorageResult<usize> {
        self.read_with(move |conn, blobs| {
            blobs
                .sweep(conn, before)
                .map_err(|e| StorageError::Internal(format!("cannot sweep unused blobs: {e}")))
        })
        .await
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> StorageResult<T> + Send + 'static,
    ) -> StorageResult<T> {
        let (tx, rx) = oneshot::channel();
        let job = TypedJob {
            f: Some(Box::new(f) as WriteFn<T>),
            res: None,
            tx: Some(tx),
        };
        self.inner
            .writer
            .lock()
            .map_err(internal)?
            .send(Box::new(job))
            .map_err(|_| StorageError::Internal("the database writer stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Internal("the database writer stopped".into()))?
    }

    async fn read_with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &BlobDir) -> StorageResult<T> + Send + 'static,
    ) -> StorageResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().map_err(internal)?.pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_conn(&inner.db_path).map_err(internal)?,
            };
            let res = f(&conn, &inner.blobs);
            if let Ok(mut pool) = inner.readers.lock()
                && pool.len() < READ_POOL
            {
                pool.push(conn);
            }
            res
        })
        .await
        .map_err(internal)?
    }
}

/// Validate an account name (same alphabet as session ids, at most 64 characters).
pub fn validate_user_name(name: &str) -> StorageResult<()> {
    if name.len() > 64 {
        return Err(StorageError::Invalid(
            "user name must be at most 64 characters".into(),
        ));
    }
    baton_sync::protocol::validate_session_id(name)
        .map_err(|_| StorageError::Invalid(format!(
            "user name `{}` may only use letters, digits, `-`, `_` and `.`, and must not start with `.`",
            name.escape_debug()
        )))
}

fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

struct SessionRow {
    pk: i64,
    encrypted: bool,
}

fn session_row(conn: &Connection, user: i64, id: &str) -> StorageResult<SessionRow> {
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

struct StreamRow {
    pk: i64,
    len: u64,
    state: RunningSha256,
}

fn parse_state(bytes: &[u8]) -> StorageResult<RunningSha256> {
    RunningSha256::from_bytes(bytes)
        .ok_or_else(|| StorageError::Internal("corrupt hash state in database".into()))
}

fn stream_row(conn: &Connection, session_pk: i64, name: &str) -> StorageResult<Option<StreamRow>> {
    let row = conn
        .prepare_cached("SELECT pk, len, state FROM streams WHERE session_pk = ?1 AND name = ?2")
        .map_err(internal)?
        .query_row(params![session_pk, name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()
        .map_err(internal)?;
    match row {
        None => Ok(None),
        Some((pk, len, state)) => Ok(Some(StreamRow {
            pk,
            len: len as u64,
            state: parse_state(&state)?,
        })),
    }
}

struct ChunkRow {
    start: u64,
    len: u64,
    data: Option<Vec<u8>>,
    blob: Option<String>,
    blob_off: u64,
    state_after: Vec<u8>,
}

impl ChunkRow {
    fn bytes(&self, blobs: &BlobDir) -> StorageResult<Vec<u8>> {
        match (&self.data, &self.blob) {
            (Some(d), _) => Ok(d.clone()),
            (None, Some(b)) => blobs
                .read(b, self.blob_off, self.len)
                .map_err(|e| StorageError::Internal(format!("cannot read blob {b}: {e}"))),
            (None, None) => Err(StorageError::Internal("chunk without data".into())),
        }
    }
}

fn chunk_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRow> {
    Ok(ChunkRow {
        start: r.get::<_, i64>(0)? as u64,
        len: r.get::<_, i64>(1)? as u64,
        data: r.get(2)?,
        blob: r.get(3)?,
        blob_off: r.get::<_, i64>(4)? as u64,
        state_after: r.get(5)?,
    })
}

/// Chunks overlapping `[from, to)`, in order.
fn chunks_between(
    conn: &Connection,
    stream_pk: i64,
    from: u64,
    to: u64,
) -> StorageResult<Vec<ChunkRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT start, len, data, blob, blob_off, state_after FROM chunks
             WHERE stream_pk = ?1
               AND start >= (SELECT COALESCE(MAX(start), 0) FROM chunks WHERE stream_pk = ?1 AND start <= ?2)
               AND start < ?3
             ORDER BY start",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![stream_pk, from as i64, to as i64], chunk_from_row)
        .map_err(internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(internal)
}

/// The stored bytes `[from, to)` of a stream.
fn read_range(
    conn: &Connection,
    blobs: &BlobDir,
    stream_pk: i64,
    from: u64,
    to: u64,
) -> StorageResult<Vec<u8>> {
    let mut out = Vec::with_capacity((to - from) as usize);
    for chunk in chunks_between(conn, stream_pk, from, to)? {
        let end = chunk.start + chunk.len;
        if end <= from {
            continue;
        }
        let bytes = chunk.bytes(blobs)?;
        let lo = from.saturating_sub(chunk.start) as usize;
        let hi = (to.min(end) - chunk.start) as usize;
        out.extend_from_slice(chunk_slice(&bytes, lo, hi)?);
    }
    if out.len() as u64 != to - from {
        return Err(StorageError::Internal(
            "stream chunks do not cover the range".into(),
        ));
    }
    Ok(out)
}

/// Hash state after `[0, offset)` of a stream (`offset` ≤ its length).
fn prefix_state(
    conn: &Connection,
    blobs: &BlobDir,
    stream_pk: i64,
    offset: u64,
) -> StorageResult<RunningSha256> {
    if offset == 0 {
        return Ok(RunningSha256::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT start, len, data, blob, blob_off, state_after FROM chunks
             WHERE stream_pk = ?1 AND start < ?2 ORDER BY start DESC LIMIT 2",
        )
        .map_err(internal)?;
    let rows: Vec<ChunkRow> = stmt
        .query_map(params![stream_pk, offset as i64], chunk_from_row)
        .map_err(internal)?
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let Some(last) = rows.first() else {
        return Err(StorageError::Internal("stream has no chunks".into()));
    };
    if last.start + last.len == offset {
        return parse_state(&last.state_after);
    }
    let mut state = match rows.get(1) {
        Some(prev) => parse_state(&prev.state_after)?,
        None => RunningSha256::new(),
    };
    let bytes = last.bytes(blobs)?;
    state.update(chunk_slice(&bytes, 0, (offset - last.start) as usize)?);
    Ok(state)
}

/// `bytes[lo..hi]` of a stored chunk, or a storage error when the chunk row
/// claims more bytes than are stored (a corrupt database).
fn chunk_slice(bytes: &[u8], lo: usize, hi: usize) -> StorageResult<&[u8]> {
    bytes.get(lo..hi).ok_or_else(|| {
        StorageError::Internal(format!(
            "a stored chunk holds {} bytes but its row needs bytes {lo}..{hi}; the server database is corrupt (restore it from a backup)",
            bytes.len()
        ))
    })
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
  COALESCE(d_forked_from, forked_from), diverged_from, encrypted, updated_seq";

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
                first_prompt: r.get(5)?,
                started_at: r.get(6)?,
                updated_at: r.get(7)?,
                user_turns: r.get::<_, i64>(8)? as u64,
                message_count: r.get::<_, i64>(9)? as u64,
                forked_from: r.get(10)?,
                diverged_from: r.get(11)?,
                encrypted: r.get::<_, i64>(12)? != 0,
                streams: Vec::new(),
                updated_seq: r.get::<_, i64>(13)? as u64,
            },
        ))
    };
    let (pk, mut info) = get(r).map_err(internal)?;
    info.streams = stream_infos(conn, pk)?;
    Ok(info)
}

fn session_info(conn: &Connection, user: i64, id: &str) -> StorageResult<SessionInfo> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM sessions WHERE user_id = ?1 AND id = ?2");
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let mut rows = stmt.query(params![user, id]).map_err(internal)?;
    match rows.next().map_err(internal)? {
        Some(r) => info_from_row(conn, r),
        None => Err(StorageError::NotFound),
    }
}

fn session_info_by_pk(conn: &Connection, pk: i64) -> StorageResult<SessionInfo> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM sessions WHERE pk = ?1");
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
    args: &[&dyn rusqlite::ToSql],
) -> StorageResult<Vec<SessionInfo>> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM sessions WHERE {clause}");
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let mut rows = stmt.query(args).map_err(internal)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(internal)? {
        out.push(info_from_row(conn, r)?);
    }
    Ok(out)
}

fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn bump(w: &mut Writer, session_pk: i64) -> StorageResult<()> {
    let seq = w.next_seq();
    w.conn
        .prepare_cached("UPDATE sessions SET updated_seq = ?1 WHERE pk = ?2")
        .map_err(internal)?
        .execute(params![seq as i64, session_pk])
        .map_err(internal)?;
    Ok(())
}

fn insert_stream(conn: &Connection, session_pk: i64, name: &str) -> StorageResult<i64> {
    conn.prepare_cached("INSERT INTO streams(session_pk, name, len, state) VALUES (?1, ?2, 0, ?3)")
        .map_err(internal)?
        .execute(params![session_pk, name, RunningSha256::new().to_bytes()])
        .map_err(internal)?;
    Ok(conn.last_insert_rowid())
}

/// An append's bytes, already durable in a blob file when large.
struct Incoming {
    bytes: Bytes,
    blob: Option<String>,
}

/// What an append will do, once its session, offset, prefix and overlap are checked.
struct AppendPlan {
    session_pk: i64,
    existing: Option<StreamRow>,
    /// Bytes at the start of the body the stream already holds.
    overlap: u64,
}

impl AppendPlan {
    /// The stream's state before the append.
    fn state(&self) -> RunningSha256 {
        self.existing
            .as_ref()
            .map(|s| s.state.clone())
            .unwrap_or_default()
    }

    /// True when the append adds bytes (or creates the stream).
    fn writes(&self, body_len: usize) -> bool {
        self.existing.is_none() || (self.overlap as usize) < body_len
    }
}

/// Check an append against the stored stream without changing anything
/// (used by the writer, and before a large body is written to a blob file).
#[allow(clippy::too_many_arguments)]
fn plan_append(
    conn: &Connection,
    blobs: &BlobDir,
    user: i64,
    id: &str,
    name: &str,
    offset: u64,
    prefix: [u8; 32],
    data: &[u8],
) -> StorageResult<AppendPlan> {
    let session = session_row(conn, user, id)?;
    let existing = stream_row(conn, session.pk, name)?;
    let (len, state) = match &existing {
        Some(s) => (s.len, s.state.clone()),
        None => (0, RunningSha256::new()),
    };
    if offset > len {
        return Err(StorageError::OffsetAhead { len });
    }
    let diverged = || StorageError::Diverged {
        len,
        sha256: state.hex(),
    };
    let at_offset = match &existing {
        Some(s) if offset < len => prefix_state(conn, blobs, s.pk, offset)?,
        _ => state.clone(),
    };
    if at_offset.digest() != prefix {
        return Err(diverged());
    }
    let overlap = (len - offset).min(data.len() as u64);
    if overlap > 0 {
        let Some(s) = &existing else {
            return Err(diverged());
        };
        let stored = read_range(conn, blobs, s.pk, offset, offset + overlap)?;
        if stored[..] != data[..overlap as usize] {
            return Err(diverged());
        }
    }
    Ok(AppendPlan {
        session_pk: session.pk,
        existing,
        overlap,
    })
}

fn append_in(
    w: &mut Writer,
    user: i64,
    id: &str,
    name: &str,
    offset: u64,
    prefix: [u8; 32],
    incoming: Incoming,
) -> StorageResult<AppendResult> {
    let data = &incoming.bytes;
    let plan = plan_append(&w.conn, &w.blobs, user, id, name, offset, prefix, data)?;
    let state = plan.state();
    let overlap = plan.overlap;
    let existing = plan.existing;
    let session_pk = plan.session_pk;
    let len = state.len();
    let new = &data[overlap as usize..];
    if new.is_empty() && existing.is_some() {
        return Ok(AppendResult {
            len,
            sha256: state.hex(),
        });
    }
    let stream_pk = match &existing {
        Some(s) => s.pk,
        None => insert_stream(&w.conn, session_pk, name)?,
    };
    let mut state = state;
    if !new.is_empty() {
        state.update(new);
        let state_bytes = state.to_bytes();
        let (inline, blob, blob_off) = match &incoming.blob {
            Some(b) => (None, Some(b.as_str()), overlap as i64),
            None => (Some(new), None, 0),
        };
        w.conn
            .prepare_cached(
                "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(internal)?
            .execute(params![
                stream_pk,
                len as i64,
                new.len() as i64,
                inline,
                blob,
                blob_off,
                state_bytes
            ])
            .map_err(internal)?;
        w.conn
            .prepare_cached("UPDATE streams SET len = ?1, state = ?2 WHERE pk = ?3")
            .map_err(internal)?
            .execute(params![state.len() as i64, state_bytes, stream_pk])
            .map_err(internal)?;
    }
    bump(w, session_pk)?;
    Ok(AppendResult {
        len: state.len(),
        sha256: state.hex(),
    })
}

fn put_in(w: &mut Writer, user: i64, id: &str, meta: SessionMeta) -> StorageResult<SessionInfo> {
    let existing = match session_row(&w.conn, user, id) {
        Ok(row) => Some(row),
        Err(StorageError::NotFound) => None,
        Err(e) => return Err(e),
    };
    if let Some(row) = existing
        && row.encrypted != meta.encrypted
    {
        let has_bytes: bool = w
            .conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM streams WHERE session_pk = ?1 AND len > 0)",
                params![row.pk],
                |r| r.get(0),
            )
            .map_err(internal)?;
        if has_bytes {
            return Err(StorageError::Conflict(
                "`encrypted` cannot change once the session holds bytes; push under a new id instead".into(),
            ));
        }
    }
    let seq = w.next_seq() as i64;
    w.conn
        .prepare_cached(
            "INSERT INTO sessions(user_id, id, agent, cwd, title, first_prompt, started_at,
               updated_at, forked_from, encrypted, updated_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT(user_id, id) DO UPDATE SET agent = excluded.agent, cwd = excluded.cwd,
               title = excluded.title, first_prompt = excluded.first_prompt,
               started_at = excluded.started_at, updated_at = excluded.updated_at,
               forked_from = excluded.forked_from, encrypted = excluded.encrypted,
               updated_seq = excluded.updated_seq",
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
            seq
        ])
        .map_err(internal)?;
    session_info(&w.conn, user, id)
}

fn fork_in(w: &mut Writer, user: i64, id: &str, req: ForkRequest) -> StorageResult<SessionInfo> {
    let source = session_row(&w.conn, user, id)?;
    match session_info(&w.conn, user, &req.new_id) {
        Ok(existing) if existing.diverged_from.as_deref() == Some(id) => return Ok(existing),
        Ok(_) => return Err(StorageError::Exists(req.new_id)),
        Err(StorageError::NotFound) => {}
        Err(e) => return Err(e),
    }
    // Check every prefix before writing anything.
    let mut plans = Vec::new();
    for p in &req.streams {
        let Some(stream) = stream_row(&w.conn, source.pk, &p.name)? else {
            if p.len == 0 {
                continue;
            }
            return Err(StorageError::NotFound);
        };
        if p.len > stream.len {
            return Err(StorageError::OffsetAhead { len: stream.len });
        }
        let at = prefix_state(&w.conn, &w.blobs, stream.pk, p.len)?;
        if at.hex() != p.sha256.to_ascii_lowercase() {
            return Err(StorageError::Diverged {
                len: stream.len,
                sha256: stream.state.hex(),
            });
        }
        plans.push((p.name.clone(), stream.pk, p.len, at));
    }
    let seq = w.next_seq() as i64;
    w.conn
        .execute(
            "INSERT INTO sessions(user_id, id, agent, cwd, title, first_prompt, started_at, updated_at,
               forked_from, diverged_from, encrypted, updated_seq)
             SELECT user_id, ?1, agent, cwd, title, first_prompt, started_at, updated_at,
               forked_from, id, encrypted, ?2 FROM sessions WHERE pk = ?3",
            params![req.new_id, seq, source.pk],
        )
        .map_err(internal)?;
    let new_pk = w.conn.last_insert_rowid();
    for (name, old_stream, len, state) in plans {
        let new_stream = insert_stream(&w.conn, new_pk, &name)?;
        w.conn
            .execute(
                "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
                 SELECT ?1, start, len, data, blob, blob_off, state_after FROM chunks
                 WHERE stream_pk = ?2 AND start + len <= ?3",
                params![new_stream, old_stream, len as i64],
            )
            .map_err(internal)?;
        // The chunk straddling the cut is shared in part.
        let straddling = chunks_between(&w.conn, old_stream, len.saturating_sub(1), len)?
            .into_iter()
            .find(|c| c.start < len && c.start + c.len > len);
        if let Some(c) = straddling {
            let keep = len - c.start;
            let data = match &c.data {
                Some(d) => Some(chunk_slice(d, 0, keep as usize)?.to_vec()),
                None => None,
            };
            w.conn
                .execute(
                    "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        new_stream,
                        c.start as i64,
                        keep as i64,
                        data,
                        c.blob,
                        c.blob_off as i64,
                        state.to_bytes()
                    ],
                )
                .map_err(internal)?;
        }
        w.conn
            .execute(
                "UPDATE streams SET len = ?1, state = ?2 WHERE pk = ?3",
                params![len as i64, state.to_bytes(), new_stream],
            )
            .map_err(internal)?;
    }
    session_info_by_pk(&w.conn, new_pk)
}

fn save_index_in(w: &mut Writer, update: IndexUpdate) -> StorageResult<()> {
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
            .execute(
                "DELETE FROM msg_fts WHERE session_pk = ?1",
                params![session.pk],
            )
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
        .prepare_cached("INSERT INTO msg_fts(text, session_pk) VALUES (?1, ?2)")
        .map_err(internal)?;
    for text in &update.texts {
        insert
            .execute(params![text, session.pk])
            .map_err(internal)?;
    }
    drop(insert);
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
        bump(w, session.pk)?;
    }
    Ok(())
}

impl Storage for Embedded {
    fn create_user(&self, name: &str) -> BoxFuture<'_, StorageResult<NewUser>> {
        let name = name.to_string();
        Box::pin(async move {
            validate_user_name(&name)?;
            self.write(move |w| {
                let taken: bool = w
                    .conn
                    .query_row(
                        "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
                        params![name],
                        |r| r.get(0),
                    )
                    .map_err(internal)?;
                if taken {
                    return Err(StorageError::Invalid(format!(
                        "user `{name}` already exists"
                    )));
                }
                w.conn
                    .execute(
                        "INSERT INTO users(name, created_at) VALUES (?1, ?2)",
                        params![name, now()],
                    )
                    .map_err(internal)?;
                let user_id = w.conn.last_insert_rowid();
                let token = new_token();
                w.conn
                    .execute(
                        "INSERT INTO tokens(hash, user_id, created_at) VALUES (?1, ?2, ?3)",
                        params![token_hash(&token).to_vec(), user_id, now()],
                    )
                    .map_err(internal)?;
                Ok(NewUser { user: name, token })
            })
            .await
        })
    }

    fn ensure_user_token(&self, name: &str, token: &str) -> BoxFuture<'_, StorageResult<Account>> {
        let name = name.to_string();
        let token = token.to_string();
        Box::pin(async move {
            validate_user_name(&name)?;
            self.write(move |w| {
                w.conn
                    .execute(
                        "INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                        params![name, now()],
                    )
                    .map_err(internal)?;
                let id: i64 = w
                    .conn
                    .query_row("SELECT id FROM users WHERE name = ?1", params![name], |r| r.get(0))
                    .map_err(internal)?;
                w.conn
                    .execute(
                        "INSERT INTO tokens(hash, user_id, created_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT(hash) DO NOTHING",
                        params![token_hash(&token).to_vec(), id, now()],
                    )
                    .map_err(internal)?;
                Ok(Account { id, name })
            })
            .await
        })
    }

    fn authenticate(&self, token: &str) -> BoxFuture<'_, StorageResult<Option<Account>>> {
        let hash = token_hash(token);
        Box::pin(async move {
            if let Some(acct) = self.inner.auth_cache.read().map_err(internal)?.get(&hash) {
                return Ok(Some(acct.clone()));
            }
            let found = self
                .read_with(move |conn, _| {
                    conn.query_row(
                        "SELECT u.id, u.name FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
                        params![hash.to_vec()],
                        |r| Ok(Account { id: r.get(0)?, name: r.get(1)? }),
                    )
                    .optional()
                    .map_err(internal)
                })
                .await?;
            if let Some(acct) = &found {
                self.inner
                    .auth_cache
                    .write()
                    .map_err(internal)?
                    .insert(hash, acct.clone());
            }
            Ok(found)
        })
    }

    fn put_session(
        &self,
        user: i64,
        id: &str,
        meta: SessionMeta,
    ) -> BoxFuture<'_, StorageResult<SessionInfo>> {
        let id = id.to_string();
        Box::pin(self.write(move |w| put_in(w, user, &id, meta)))
    }

    fn session(&self, user: i64, id: &str) -> BoxFuture<'_, StorageResult<SessionInfo>> {
        let id = id.to_string();
        Box::pin(self.read_with(move |conn, _| session_info(conn, user, &id)))
    }

    fn list_sessions(&self, user: i64, q: ListQuery) -> BoxFuture<'_, StorageResult<SessionList>> {
        Box::pin(self.read_with(move |conn, _| {
            let before = q.before_seq.map(|s| s as i64).unwrap_or(i64::MAX);
            let limit = q.limit.max(1) as i64;
            let sessions = match q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => sessions_where(
                    conn,
                    "user_id = ?1 AND updated_seq < ?2 ORDER BY updated_seq DESC LIMIT ?3",
                    &[&user, &before, &limit],
                )?,
                Some(text) => {
                    let like = like_pattern(text);
                    // Without a searchable term (only punctuation) the FTS part is left out.
                    let fts = baton_store::fts_query(text);
                    let fts_clause = if fts.is_some() {
                        "OR pk IN (SELECT session_pk FROM msg_fts WHERE msg_fts MATCH ?5)"
                    } else {
                        "OR ?5 IS NOT NULL"
                    };
                    let clause = format!(
                        "user_id = ?1 AND updated_seq < ?2 AND (
                           id LIKE ?4 ESCAPE '\\' OR COALESCE(d_title, title, '') LIKE ?4 ESCAPE '\\'
                           OR COALESCE(d_first_prompt, first_prompt, '') LIKE ?4 ESCAPE '\\'
                           OR COALESCE(d_cwd, cwd, '') LIKE ?4 ESCAPE '\\'
                           {fts_clause})
                         ORDER BY updated_seq DESC LIMIT ?3"
                    );
                    sessions_where(conn, &clause, &[&user, &before, &limit, &like, &fts])?
                }
            };
            let next_cursor = (sessions.len() as i64 == limit)
                .then(|| sessions.last().map(|s| s.updated_seq.to_string()))
                .flatten();
            Ok(SessionList { sessions, next_cursor })
        }))
    }

    fn changes(&self, user: i64, since: u64, limit: u32) -> BoxFuture<'_, StorageResult<Changes>> {
        Box::pin(self.read_with(move |conn, _| {
            let limit = limit.max(1) as i64;
            let mut sessions = sessions_where(
                conn,
                "user_id = ?1 AND updated_seq > ?2 ORDER BY updated_seq LIMIT ?3",
                &[&user, &(since.min(i64::MAX as u64) as i64), &(limit + 1)],
            )?;
            let more = sessions.len() as i64 > limit;
            sessions.truncate(limit as usize);
            let next_since = sessions.last().map(|s| s.updated_seq).unwrap_or(since);
            Ok(Changes {
                sessions,
                next_since,
                more,
            })
        }))
    }

    fn search(
        &self,
        user: i64,
        q: &str,
        limit: u32,
    ) -> BoxFuture<'_, StorageResult<Vec<SearchHit>>> {
        let q = q.to_string();
        Box::pin(self.read_with(move |conn, _| {
            let Some(fts) = baton_store::fts_query(&q) else {
                return Ok(Vec::new());
            };
            let mut stmt = conn
                .prepare_cached(
                    "SELECT m.session_pk, snippet(msg_fts, 0, '«', '»', '…', 12)
                     FROM msg_fts m JOIN sessions s ON s.pk = m.session_pk
                     WHERE msg_fts MATCH ?1 AND s.user_id = ?2 AND s.encrypted = 0
                     ORDER BY bm25(msg_fts) LIMIT 2000",
                )
                .map_err(internal)?;
            let rows: Vec<(i64, String)> = stmt
                .query_map(params![fts, user], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(internal)?
                .collect::<Result<_, _>>()
                .map_err(internal)?;
            let mut seen = std::collections::HashSet::new();
            let mut hits = Vec::new();
            for (pk, snippet) in rows {
                if hits.len() >= limit as usize {
                    break;
                }
                if seen.insert(pk) {
                    hits.push(SearchHit {
                        session: session_info_by_pk(conn, pk)?,
                        snippet,
                    });
                }
            }
            Ok(hits)
        }))
    }

    fn append(
        &self,
        user: i64,
        id: &str,
        stream: &str,
        offset: u64,
        prefix_sha256: [u8; 32],
        bytes: Bytes,
    ) -> BoxFuture<'_, StorageResult<AppendResult>> {
        let id = id.to_string();
        let stream = stream.to_string();
        Box::pin(async move {
            let pin = if bytes.len() > INLINE_MAX {
                // Check first, so a push that would be rejected never leaves a blob file.
                let (id, stream, data) = (id.clone(), stream.clone(), bytes.clone());
                let writes = self
                    .read_with(move |conn, blobs| {
                        let plan = plan_append(
                            conn,
                            blobs,
                            user,
                            &id,
                            &stream,
                            offset,
                            prefix_sha256,
                            &data,
                        )?;
                        Ok(plan.writes(data.len()))
                    })
                    .await?;
                if writes {
                    let blobs = self.inner.blobs.clone();
                    let data = bytes.clone();
                    Some(
                        tokio::task::spawn_blocking(move || blobs.put(&data))
                            .await
                            .map_err(internal)?
                            .map_err(|e| {
                                StorageError::Internal(format!("cannot write blob: {e}"))
                            })?,
                    )
                } else {
                    None
                }
            } else {
                None
            };
            let incoming = Incoming {
                bytes,
                blob: pin.as_ref().map(|p| p.hex().to_string()),
            };
            let res = self
                .write(move |w| append_in(w, user, &id, &stream, offset, prefix_sha256, incoming))
                .await;
            if let (Err(_), Some(pin)) = (&res, pin) {
                // Another append may have changed the stream since the check.
                self.read_with(move |conn, _| {
                    pin.discard(conn);
                    Ok(())
                })
                .await?;
            }
            res
        })
    }

    fn read(
        &self,
        user: i64,
        id: &str,
        stream: &str,
        from: u64,
    ) -> BoxFuture<'_, StorageResult<StreamRead>> {
        let id = id.to_string();
        let stream = stream.to_string();
        Box::pin(async move {
            let (len, sha256, chunks) = self
                .read_with(move |conn, _| {
                    let session = session_row(conn, user, &id)?;
                    let Some(s) = stream_row(conn, session.pk, &stream)? else {
                        return Err(StorageError::NotFound);
                    };
                    if from > s.len {
                        return Err(StorageError::OffsetAhead { len: s.len });
                    }
                    let chunks = chunks_between(conn, s.pk, from, s.len)?;
                    Ok((s.len, s.state.hex(), chunks))
                })
                .await?;
            let blobs = self.inner.blobs.clone();
            let body =
                futures::stream::iter(chunks.into_iter().filter(move |c| c.start + c.len > from))
                    .then(move |c| {
                        let blobs = blobs.clone();
                        async move {
                            let lo = from.saturating_sub(c.start) as usize;
                            let bytes = match c.data {
                                Some(d) => d,
                                None => tokio::task::spawn_blocking(move || c.bytes(&blobs))
                                    .await
                                    .map_err(internal)??,
                            };
                            let hi = bytes.len();
                            chunk_slice(&bytes, lo, hi)?;
                            Ok(Bytes::from(bytes).slice(lo..))
                        }
                    });
            use futures::StreamExt;
            Ok(StreamRead {
                len,
                sha256,
                body: body.boxed(),
            })
        })
    }

    fn checkpoints(
        &self,
        user: i64,
        id: &str,
        stream: &str,
    ) -> BoxFuture<'_, StorageResult<Vec<Checkpoint>>> {
        let id = id.to_string();
        let stream = stream.to_string();
        Box::pin(self.read_with(move |conn, _| {
            let session = session_row(conn, user, &id)?;
            let mut out = vec![Checkpoint {
                offset: 0,
                sha256: RunningSha256::new().hex(),
            }];
            let Some(s) = stream_row(conn, session.pk, &stream)? else {
                return Ok(out);
            };
            let mut stmt = conn
                .prepare_cached("SELECT start + len, state_after FROM chunks WHERE stream_pk = ?1 ORDER BY start")
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![s.pk], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .map_err(internal)?;
            for row in rows {
                let (end, state) = row.map_err(internal)?;
                out.push(Checkpoint {
                    offset: end as u64,
                    sha256: parse_state(&state)?.hex(),
                });
            }
            Ok(out)
        }))
    }

    fn fork(
        &self,
        user: i64,
        id: &str,
        req: ForkRequest,
    ) -> BoxFuture<'_, StorageResult<SessionInfo>> {
        let id = id.to_string();
        Box::pin(self.write(move |w| fork_in(w, user, &id, req)))
    }

    fn index_backlog(&self, limit: u32) -> BoxFuture<'_, StorageResult<Vec<IndexJob>>> {
        Box::pin(self.read_with(move |conn, _| {
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
        }))
    }

    fn message_checkpoint(
        &self,
        user: i64,
        id: &str,
        at_most: u64,
    ) -> BoxFuture<'_, StorageResult<Option<MessageCheckpoint>>> {
        let id = id.to_string();
        Box::pin(self.read_with(move |conn, _| {
            let session = session_row(conn, user, &id)?;
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
        }))
    }

    fn save_index(&self, update: IndexUpdate) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(self.write(move |w| save_index_in(w, update)))
    }

    fn mirror_files(&self, user: i64) -> BoxFuture<'_, StorageResult<Vec<MirrorFile>>> {
        Box::pin(self.read_with(move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT path, size, mtime_ns, ino, dev, state, diverged
                     FROM mirror_files WHERE user_id = ?1",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![user], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        FileStat {
                            size: r.get::<_, i64>(1)? as u64,
                            mtime_ns: r.get(2)?,
                            ino: r.get::<_, i64>(3)? as u64,
                            dev: r.get::<_, i64>(4)? as u64,
                        },
                        r.get::<_, Vec<u8>>(5)?,
                        r.get::<_, i64>(6)? != 0,
                    ))
                })
                .map_err(internal)?;
            let mut out = Vec::new();
            for row in rows {
                let (path, stat, state, diverged) = row.map_err(internal)?;
                // A row whose hash state does not parse is dropped: the mirror
                // then checks that file against the server copy from scratch.
                if let Some(mirrored) = RunningSha256::from_bytes(&state) {
                    out.push(MirrorFile {
                        path,
                        stat,
                        mirrored,
                        diverged,
                    });
                }
            }
            Ok(out)
        }))
    }

    fn save_mirror_files(
        &self,
        user: i64,
        save: Vec<MirrorFile>,
        forget: Vec<String>,
    ) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(self.write(move |w| {
            let mut put = w
                .conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO mirror_files(user_id, path, size, mtime_ns, ino, dev, state, diverged)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(internal)?;
            for f in &save {
                put.execute(params![
                    user,
                    f.path,
                    f.stat.size as i64,
                    f.stat.mtime_ns,
                    f.stat.ino as i64,
                    f.stat.dev as i64,
                    f.mirrored.to_bytes(),
                    f.diverged as i64
                ])
                .map_err(internal)?;
            }
            let mut del = w
                .conn
                .prepare_cached("DELETE FROM mirror_files WHERE user_id = ?1 AND path = ?2")
                .map_err(internal)?;
            for path in &forget {
                del.execute(params![user, path]).map_err(internal)?;
            }
            Ok(())
        }))
    }
}
