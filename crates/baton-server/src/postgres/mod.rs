//! The team server's [`Storage`] backend: PostgreSQL (tokio-postgres with a
//! deadpool pool) for accounts, tokens, session metadata, lineage,
//! stream/chunk lists and the search index; session bytes as
//! content-addressed chunks, small ones inline in PostgreSQL and larger ones
//! as blobs in a [`BlobStore`] (an S3-compatible bucket,
//! [`crate::object_blobs::ObjectBlobs`], or blob files).
//!
//! Any number of replicas may share one database and bucket; nothing that
//! decides a request lives in process memory:
//!
//! * an append runs in one transaction that locks its session row
//!   (`FOR NO KEY UPDATE`) before checking offset, prefix hash and overlap,
//!   so two replicas appending to one session are serialized by the
//!   database, and `UNIQUE` constraints reject twin sessions and streams;
//! * a large append's blob is stored before the transaction that references
//!   it commits; blobs of rejected appends and crashes are left to the
//!   start-up sweep, which only removes blobs older than [`SWEEP_GRACE`]
//!   that no chunk references (another replica's append may be in flight);
//! * the `changes` feed's `updated_seq` is handed out by one serialized
//!   sequencer (`schema::SEQUENCER`) to sessions whose change has committed,
//!   so a reader never sees a later number before an earlier one;
//! * the indexers of all replicas may pick the same session: an indexing
//!   pass is saved only when it starts where the saved reader state ends.
//!
//! A database or bucket that cannot be reached gives
//! [`StorageError::Unavailable`] (503 with `Retry-After`); the pool opens new
//! connections once it is back, without a restart.
//!
//! Submodules, one job each like the embedded backend's: `schema`
//! (versioned migrations under an advisory lock, the sequencer), `accounts`,
//! `sessions` (metadata, listing and its filters, facets, stats,
//! changes), `shares` (share links), `streams` (chunk reads and
//! prefix hashes), `append`, `fork`, `search` (the index and search under
//! [`baton_search`]'s policy), `mirror` and `blobs` (the sweep).

mod accounts;
mod append;
mod blobs;
mod fork;
mod mirror;
mod schema;
mod search;
mod sessions;
mod shares;
mod streams;

use crate::storage::{
    Account, BlobStore, IndexJob, IndexUpdate, MessageCheckpoint, MirrorFile, SessionFilter,
    SessionsQuery, Storage, StorageError, StorageResult, StoredBytes,
};
use baton_protocol::{
    AppendResult, Changes, Checkpoint, ForkRequest, NewUser, SearchHit, SessionFacets, SessionInfo,
    SessionList, SessionMeta, Share, Stats,
};
use bytes::Bytes;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Appends up to this size are stored inline in PostgreSQL; larger ones as blobs.
pub const INLINE_MAX: usize = crate::embedded::INLINE_MAX;

/// Connections each replica keeps at most.
const POOL_SIZE: usize = 32;

/// How long a request waits for a connection, and a connection attempt
/// for the database, before the request gets a 503.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// Blobs younger than this are never swept: an append on another replica
/// may have stored one and not committed yet.
pub const SWEEP_GRACE: Duration = Duration::from_secs(3600);

/// The PostgreSQL backend (see the module docs).
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    blobs: Arc<dyn BlobStore>,
}

/// A failed database call: server-side errors by SQLSTATE, a connection
/// that failed or closed as [`StorageError::Unavailable`].
pub(crate) fn db_error(e: tokio_postgres::Error) -> StorageError {
    use tokio_postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let transient = code.code().starts_with("08")
            || code.code().starts_with("57P")
            || [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::READ_ONLY_SQL_TRANSACTION,
            ]
            .contains(code);
        let text = format!("the database: {} ({})", db.message(), code.code());
        return if transient {
            StorageError::Unavailable(text)
        } else {
            StorageError::Internal(text)
        };
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io || e.to_string().contains("connect") {
        StorageError::Unavailable(format!("the database: {e}"))
    } else {
        StorageError::Internal(format!("the database: {e}"))
    }
}

/// Rows of a statement, prepared once per connection.
pub(crate) async fn rows(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StorageResult<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(db_error)?;
    c.query(&stmt, params).await.map_err(db_error)
}

/// The row of a statement returning at most one, prepared once per connection.
pub(crate) async fn row(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StorageResult<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(db_error)?;
    c.query_opt(&stmt, params).await.map_err(db_error)
}

/// Run a statement, prepared once per connection; the rows it changed.
pub(crate) async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StorageResult<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(db_error)?;
    c.execute(&stmt, params).await.map_err(db_error)
}

/// Whether a database error is a `UNIQUE` violation.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

fn pool_error(e: deadpool_postgres::PoolError) -> StorageError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_error(e),
        e => StorageError::Unavailable(format!("the database: {e}")),
    }
}

/// A stored hash state.
pub(crate) fn parse_state(bytes: &[u8]) -> StorageResult<crate::hash::RunningSha256> {
    crate::hash::RunningSha256::from_bytes(bytes)
        .ok_or_else(|| StorageError::Internal("corrupt hash state in database".into()))
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A connection error at start-up, saying what to fix.
fn startup_error(url: &str, e: StorageError) -> StorageError {
    let text = e.to_string();
    let hint = if text.contains("password authentication failed")
        || text.contains("no pg_hba.conf entry")
        || text.contains("role \"")
    {
        "the database refused the credentials: check the user and password in --database / BATON_DATABASE_URL"
    } else if text.contains("does not exist") {
        "the database does not exist: create it (createdb) or fix its name in --database / BATON_DATABASE_URL"
    } else {
        "cannot reach the database: check that PostgreSQL runs and --database / BATON_DATABASE_URL"
    };
    StorageError::Unavailable(format!("{}: {hint} ({text})", redact(url)))
}

impl Postgres {
    /// Connect to `url` (`postgres://…`), create or migrate the schema (safe
    /// when several replicas start at once) and keep large chunks in `blobs`.
    /// Errors say what to fix: unreachable server, refused credentials,
    /// missing database.
    pub async fn open(url: &str, blobs: Arc<dyn BlobStore>) -> StorageResult<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StorageError::Invalid(format!(
                "`{}` is not a PostgreSQL URL ({e}): pass --database postgres://USER@HOST[:PORT]/DATABASE (a password goes after USER and a colon)",
                redact(url)
            ))
        })?;
        config.connect_timeout(CONNECT_WAIT);
        if config.get_application_name().is_none() {
            config.application_name("baton serve");
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_WAIT))
            .create_timeout(Some(CONNECT_WAIT))
            .recycle_timeout(Some(CONNECT_WAIT))
            .build()
            .map_err(|e| StorageError::Internal(e.to_string()))?;
        let store = Self { pool, blobs };
        let mut client = store.client().await.map_err(|e| startup_error(url, e))?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    /// A pooled connection; [`StorageError::Unavailable`] when the database
    /// cannot be reached within [`CONNECT_WAIT`].
    pub(crate) async fn client(&self) -> StorageResult<Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Run a blob store call on the blocking pool.
    pub(crate) async fn with_blobs<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn BlobStore) -> StorageResult<T> + Send + 'static,
    ) -> StorageResult<T> {
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || f(blobs.as_ref()))
            .await
            .map_err(|e| StorageError::Internal(e.to_string()))?
    }
}

impl Storage for Postgres {
    fn facets(
        &self,
        user: i64,
        filter: SessionFilter,
    ) -> BoxFuture<'_, StorageResult<SessionFacets>> {
        Box::pin(sessions::facets(self, user, filter))
    }

    fn stats(&self, user: i64) -> BoxFuture<'_, StorageResult<Stats>> {
        Box::pin(sessions::stats(self, user))
    }

    fn create_share(
        &self,
        user: i64,
        id: &str,
        token: &str,
        expires_unix: i64,
    ) -> BoxFuture<'_, StorageResult<Share>> {
        Box::pin(shares::create(
            self,
            user,
            id.to_string(),
            token.to_string(),
            expires_unix,
        ))
    }

    fn shares(
        &self,
        user: i64,
        id: &str,
        now_unix: i64,
    ) -> BoxFuture<'_, StorageResult<Vec<Share>>> {
        Box::pin(shares::list(self, user, id.to_string(), now_unix))
    }

    fn revoke_share(&self, user: i64, id: &str, share: &str) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(shares::revoke(
            self,
            user,
            id.to_string(),
            share.to_string(),
        ))
    }

    fn shared_session(
        &self,
        token: &str,
        now_unix: i64,
    ) -> BoxFuture<'_, StorageResult<(i64, String)>> {
        Box::pin(shares::resolve(self, token.to_string(), now_unix))
    }

    fn create_user(&self, name: &str) -> BoxFuture<'_, StorageResult<NewUser>> {
        Box::pin(accounts::create_user(self, name.to_string()))
    }

    fn ensure_user_token(&self, name: &str, token: &str) -> BoxFuture<'_, StorageResult<Account>> {
        Box::pin(accounts::ensure_user_token(
            self,
            name.to_string(),
            token.to_string(),
        ))
    }

    fn authenticate(&self, token: &str) -> BoxFuture<'_, StorageResult<Option<Account>>> {
        Box::pin(accounts::authenticate(self, token.to_string()))
    }

    fn put_session(
        &self,
        user: i64,
        id: &str,
        meta: SessionMeta,
    ) -> BoxFuture<'_, StorageResult<SessionInfo>> {
        Box::pin(sessions::put(self, user, id.to_string(), meta))
    }

    fn session(&self, user: i64, id: &str) -> BoxFuture<'_, StorageResult<SessionInfo>> {
        let id = id.to_string();
        Box::pin(async move {
            let client = self.client().await?;
            schema::sequence(&client).await?;
            sessions::session_info(&client, user, &id).await
        })
    }

    fn list_sessions(
        &self,
        user: i64,
        q: SessionsQuery,
    ) -> BoxFuture<'_, StorageResult<SessionList>> {
        Box::pin(sessions::list(self, user, q))
    }

    fn changes(&self, user: i64, since: u64, limit: u32) -> BoxFuture<'_, StorageResult<Changes>> {
        Box::pin(sessions::changes(self, user, since, limit))
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
        let at = append::AppendAt {
            user,
            id: id.to_string(),
            name: stream.to_string(),
            offset,
            prefix: prefix_sha256,
        };
        Box::pin(append::append(self, at, bytes))
    }

    fn read(
        &self,
        user: i64,
        id: &str,
        stream: &str,
        from: u64,
    ) -> BoxFuture<'_, StorageResult<StoredBytes>> {
        Box::pin(streams::read_stream(
            self,
            user,
            id.to_string(),
            stream.to_string(),
            from,
        ))
    }

    fn checkpoints(
        &self,
        user: i64,
        id: &str,
        stream: &str,
    ) -> BoxFuture<'_, StorageResult<Vec<Checkpoint>>> {
        Box::pin(streams::checkpoints(
            self,
            user,
            id.to_string(),
            stream.to_string(),
        ))
    }

    fn fork(
        &self,
        user: i64,
        id: &str,
        req: ForkRequest,
    ) -> BoxFuture<'_, StorageResult<SessionInfo>> {
        Box::pin(fork::fork(self, user, id.to_string(), req))
    }

    fn index_backlog(&self, limit: u32) -> BoxFuture<'_, StorageResult<Vec<IndexJob>>> {
        Box::pin(search::backlog(self, limit))
    }

    fn message_checkpoint(
        &self,
        user: i64,
        id: &str,
        at_most: u64,
    ) -> BoxFuture<'_, StorageResult<Option<MessageCheckpoint>>> {
        Box::pin(search::message_checkpoint(
            self,
            user,
            id.to_string(),
            at_most,
        ))
    }

    fn save_index(&self, update: IndexUpdate) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(search::save_index(self, update))
    }

    fn sweep_blobs(&self, before: std::time::SystemTime) -> BoxFuture<'_, StorageResult<usize>> {
        Box::pin(blobs::sweep(self, before))
    }

    fn ready(&self) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(async move {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(db_error)?;
            self.with_blobs(|b| b.check()).await
        })
    }

    fn mirror_files(&self, user: i64) -> BoxFuture<'_, StorageResult<Vec<MirrorFile>>> {
        Box::pin(mirror::files(self, user))
    }

    fn save_mirror_files(
        &self,
        user: i64,
        save: Vec<MirrorFile>,
        forget: Vec<String>,
    ) -> BoxFuture<'_, StorageResult<()>> {
        Box::pin(mirror::save_files(self, user, save, forget))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_left_out_of_messages() {
        assert_eq!(
            redact("postgres://baton:secret@db:5432/baton"),
            "postgres://baton:***@db:5432/baton"
        );
        assert_eq!(
            redact("postgres://baton@db/baton"),
            "postgres://baton@db/baton"
        );
    }
}
