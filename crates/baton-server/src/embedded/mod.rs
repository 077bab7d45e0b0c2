//! The embedded [`Storage`] backend: SQLite (WAL) for accounts, tokens,
//! session metadata, lineage, stream/chunk lists and the FTS5 search index;
//! session bytes as content-addressed chunks.
//!
//! Layout under the data directory:
//!
//! ```text
//! baton.db (+ -wal, -shm)   users, tokens, sessions, streams, chunks, msg_fts, msg_copy_keys, shares, mirror_files
//! blobs/ab/cdef…            chunk bodies larger than the inline limit, named by
//!                           sha256 ([`crate::file_blobs::FileBlobs`])
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
//! after the commit is durable. Blobs are stored durably
//! ([`crate::storage::BlobStore::put`]) before the request that references
//! them is queued: after a crash an unreferenced blob is harmless and an append is
//! either wholly visible or not at all. A large push is checked before its
//! blob is written, a blob of a rejected append is deleted unless another
//! append or chunk uses it, and [`Storage::sweep_blobs`] (run at start-up)
//! removes what a crash left behind. Reads use a small pool of read-only
//! connections on the blocking thread pool.
//!
//! Submodules, one job each: `schema` (tables, migrations, connections),
//! `writer` (the writer thread and its group commit), `blobs` (pins and
//! unreferenced blobs over the [`crate::storage::BlobStore`]),
//! `accounts`, `sessions` (metadata, listing, changes), `streams` (chunk
//! reads and prefix hashes), `append`, `fork`, `search` (the search index,
//! under `baton-search`'s policy, with a time budget per query), `shares`
//! (read-only links) and `mirror` (the local mirror's state).

pub(crate) mod accounts;
mod append;
mod blobs;
mod fork;
mod mirror;
mod schema;
mod search;
pub(crate) mod sessions;
pub(crate) mod shares;
mod streams;
mod writer;

pub use accounts::validate_user_name;
pub(crate) use streams::chunk_slice;

use crate::file_blobs::FileBlobs;
use crate::storage::{
    Account, BlobStore, IndexJob, IndexUpdate, MessageCheckpoint, MirrorFile, SessionFilter,
    SessionsQuery, Storage, StorageError, StorageResult, StoredBytes,
};
use baton_protocol::{
    AppendResult, Changes, Checkpoint, ForkRequest, NewUser, SearchHit, SessionFacets, SessionInfo,
    SessionList, SessionMeta, Share, Stats,
};
use blobs::BlobDir;
use bytes::Bytes;
use futures::future::BoxFuture;
use rusqlite::Connection;
use schema::{SCHEMA, max_seq, migrate, open_conn};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use writer::{Job, Writer};

/// Appends up to this size are stored inline in SQLite; larger ones as blob files.
pub const INLINE_MAX: usize = 128 * 1024;
const READ_POOL: usize = 8;

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

/// A hash state stored in the database.
fn parse_state(bytes: &[u8]) -> StorageResult<crate::hash::RunningSha256> {
    crate::hash::RunningSha256::from_bytes(bytes)
        .ok_or_else(|| StorageError::Internal("corrupt hash state in database".into()))
}

impl Embedded {
    /// Open (creating if needed) the data directory, with blob files under
    /// `dir/blobs`, and start the writer thread.
    pub fn open(dir: &Path) -> StorageResult<Self> {
        Self::open_with(dir, Arc::new(FileBlobs::new(dir.join("blobs"))))
    }

    /// Open (creating if needed) the data directory, keeping large chunks in
    /// `blobs`, and start the writer thread.
    pub fn open_with(dir: &Path, blobs: Arc<dyn BlobStore>) -> StorageResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let db_path = dir.join("baton.db");
        let conn = open_conn(&db_path).map_err(internal)?;
        conn.execute_batch(SCHEMA).map_err(internal)?;
        migrate(&conn).map_err(internal)?;
        let seq = max_seq(&conn).map_err(internal)?;
        let blobs = BlobDir::new(blobs);
        let tx = Writer::spawn(conn, blobs.clone(), seq)?;
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

    /// Run `f` on the writer thread; the result arrives once its transaction committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> StorageResult<T> + Send + 'static,
    ) -> StorageResult<T> {
        let (job, rx) = writer::job(f);
        self.inner
            .writer
            .lock()
            .map_err(internal)?
            .send(job)
            .map_err(|_| StorageError::Internal("the database writer stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Internal("the database writer stopped".into()))?
    }

    /// Run `f` on a pooled read-only connection on the blocking thread pool.
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

impl Storage for Embedded {
    fn create_user(&self, name: &str) -> BoxFuture<'_, StorageResult<NewUser>> {
        let name = name.to_string();
        Box::pin(async move {
            validate_user_name(&name)?;
            self.write(move |w| accounts::create_user_in(w, name)).await
        })
    }

    fn ensure_user_token(&self, name: &str, token: &str) -> BoxFuture<'_, StorageResult<Account>> {
        let name = name.to_string();
        let token = token.to_string();
        Box::pin(async move {
            validate_user_name(&name)?;
            self.write(move |w| accounts::ensure_user_token_in(w, name, &token))
                .await
        })
    }

    fn authenticate(&self, token: &str) -> BoxFuture<'_, StorageResult<Option<Account>>> {
        let hash = accounts::token_hash(token);
        Box::pin(async move {
            if let Some(acct) = self.inner.auth_cache.read().map_err(internal)?.get(&hash) {
                return Ok(Some(acct.clone()));
            }
            let found = self
                .read_with(move |conn, _| accounts::account_by_token(conn, hash))
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
        Box::pin(self.write(move |w| sessions::put_in(w, user, &id, meta)))
    }

    fn session(&self, user: i64, id: &str) -> BoxFuture<'_, StorageResult<SessionInfo>> {
        let id = id.to_string();
        Box::pin(self.read_with(move |conn, _| sessions::session_info(conn, user, &id)))
    }

    fn list_sessions(
        &self,
        user: i64,
        q: SessionsQuery,
    ) -> BoxFuture<'_, StorageResult<SessionList>> {
        Box::pin(self.read_with(move |conn, _| sessions::list(conn, user, q)))
    }

    fn changes(&self, user: i64, since: u64, limit: u32) -> BoxFuture<'_, StorageResult<Changes>> {
        Box::pin(self.read_with(move |conn, _| sessions::changes(conn, user, since, limit)))
    }

    fn facets(
        &self,
        user: i64,
        filter: SessionFilter,
    ) -> BoxFuture<'_, StorageResult<SessionFacets>> {
        Box::pin(self.read_with(move |conn, _| sessions::facets(conn, user, &filter)))
    }

    fn stats(&self, user: i64) -> BoxFuture<'_, StorageResult<Stats>> {
        Box::pin(self.read_with(move |conn, _| sessions::stats(conn, user)))
    }

    fn create_share(
        &self,
        user: i64,
        id: &str,
        token: &str,
        expires_unix: i64,
    ) -> BoxFuture<'_, StorageResult<Share>> {
        let (id, token) = (id.to_string(), token.to_string());
        Box::pin(self.write(move |w| shares::create_in(w, user, &id, &token, expires_unix)))
    }

    fn shares(
        &self,
        user: i64,
        id: &str,
        now_unix: i64,
    ) -> BoxFuture<'_, StorageResult<Vec<Share>>> {
        let id = id.to_string();
        Box::pin(self.read_with(move |conn, _| shares::list(conn, user, &id, now_unix)))
    }

    fn revoke_share(&self, user: i64, id: &str, share: &str) -> BoxFuture<'_, StorageResult<()>> {
        let (id, share) = (id.to_string(), share.to_string());
        Box::pin(self.write(move |w| shares::revoke_in(w, user, &id, &share)))
    }

    fn shared_session(
        &self,
        token: &str,
        now_unix: i64,
    ) -> BoxFuture<'_, StorageResult<(i64, String)>> {
        let token = token.to_string();
        Box::pin(self.read_with(move |conn, _| shares::resolve(conn, &token, now_unix)))
    }

    fn search(
        &self,
        user: i64,
        q: &str,
        limit: u32,
    ) -> BoxFuture<'_, StorageResult<Vec<SearchHit>>> {
        Box::pin(search::search(self, user, q.to_string(), limit))
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
        Box::pin(self.append_bytes(
            user,
            id.to_string(),
            stream.to_string(),
            offset,
            prefix_sha256,
            bytes,
        ))
    }

    fn read(
        &self,
        user: i64,
        id: &str,
        stream: &str,
        from: u64,
    ) -> BoxFuture<'_, StorageResult<StoredBytes>> {
        Box::pin(self.read_stream(user, id.to_string(), stream.to_string(), from))
    }

    fn checkpoints(
        &self,
        user: i64,
        id: &str,
        stream: &str,
    ) -> BoxFuture<'_, StorageResult<Vec<Checkpoint>>> {
        let id = id.to_string();
        let stream = stream.to_string();
        Box::pin(self.read_with(move |conn, _| streams::checkpoints(conn, user, &id, &stream)))
    }

    fn fork(
        &self,
        user: i64,
        id: &str,
        req: ForkRequest,
    ) -> BoxFuture<'_, StorageResult<SessionInfo>> {
        let id = id.to_string();
        Box::pin(self.write(move |w| fork::fork_in(w, user, &id, req)))
    }

    fn index_backlog(&self, limit: u32) -> BoxFuture<'_, StorageResult<Vec<IndexJob>>> {
        Box::pin(self.read_with(move |conn, _| search::backlog(conn, limit)))
    }

    fn message_checkpoint(
        &self,
        user: i64,
        id: &str,
        at_most: u64,
    ) -> BoxFuture<'_, StorageResult<Option<MessageCheckpoint>>> {
        let id = id.to_string();
        Box::pin(
            self.read_with(move |conn, _| search::message_checkpoint(conn, user, &id, at_most)),
        )
    }

    fn save_index(&self, update: IndexUpdate) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(self.write(move |w| search::save_index_in(w, update)))
    }

    fn sweep_blobs(&self, before: std::time::SystemTime) -> BoxFuture<'_, StorageResult<usize>> {
        Box::pin(self.read_with(move |conn, blobs| blobs.sweep(conn, before)))
    }

    fn ready(&self) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(self.read_with(|conn, blobs| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| StorageError::Unavailable(format!("the database: {e}")))?;
            blobs.check()
        }))
    }

    fn mirror_files(&self, user: i64) -> BoxFuture<'_, StorageResult<Vec<MirrorFile>>> {
        Box::pin(self.read_with(move |conn, _| mirror::files(conn, user)))
    }

    fn save_mirror_files(
        &self,
        user: i64,
        save: Vec<MirrorFile>,
        forget: Vec<String>,
    ) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(self.write(move |w| mirror::save_files_in(w, user, &save, &forget)))
    }
}
