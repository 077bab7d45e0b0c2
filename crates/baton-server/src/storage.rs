//! The server's persistence boundary: the [`Storage`] trait (metadata,
//! lineage, accounts, search, stream bookkeeping) and the [`BlobStore`]
//! trait (the session bytes of large appends).
//!
//! Everything the HTTP layer needs from persistence goes through
//! [`Storage`], so a backend is a self-contained choice made at start-up
//! ([`crate::open_storage`]). The embedded backend
//! ([`crate::embedded::Embedded`]) keeps metadata, lineage, tokens and the
//! search index in SQLite (WAL) and the session bytes as content-addressed
//! chunks: small ones inline in SQLite, larger ones as blobs in a
//! [`BlobStore`] ([`crate::file_blobs::FileBlobs`]: `blobs/ab/cdef…`
//! files named by their sha256, or [`crate::object_blobs::ObjectBlobs`]: an
//! S3-compatible bucket).
//!
//! The team server's backend ([`crate::postgres::Postgres`]) keeps the same
//! tables in PostgreSQL (tokio-postgres) and its blobs in a bucket, so any
//! number of replicas share one database and bucket. A backend that cannot reach its database or bucket answers
//! [`StorageError::Unavailable`] (the HTTP layer's 503 with `Retry-After`)
//! and recovers without a restart. The contract every backend must keep
//! (checked by `tests/storage.rs`'s backend-generic suite):
//!
//! * appends are atomic and ordered per stream, and O(appended bytes): the
//!   backend keeps a resumable hash state per stream and per append
//!   boundary ([`crate::hash::RunningSha256`]), so a prefix hash never needs
//!   the whole stream;
//! * blob bytes are durable before the metadata that references them is
//!   committed, so a crash leaves at worst an unreferenced (harmless) blob
//!   and never a half-visible append;
//! * every change to a session takes a new, strictly increasing
//!   `updated_seq` (the `changes` feed relies on it);
//! * sessions are scoped by account: a session of another account behaves
//!   exactly like a missing one ([`StorageError::NotFound`]).
//!
//! Methods return boxed futures so the trait stays object-safe
//! (`Arc<dyn Storage>`).

use crate::hash::RunningSha256;
use baton_native::discover::FileStat;
use baton_native::{Agent, ReaderState};
use baton_protocol::{
    AppendResult, Changes, Checkpoint, ForkRequest, NewUser, SearchHit, SessionFacets, SessionInfo,
    SessionList, SessionMeta, Share, Stats,
};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

/// An account as seen by the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Backend-internal account id.
    pub id: i64,
    /// Account name.
    pub name: String,
}

/// Why a storage operation did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// No such session or stream for this account.
    #[error("no such session")]
    NotFound,
    /// The client's prefix or bytes differ from the stored stream.
    #[error("the stream diverged from the server's copy")]
    Diverged {
        /// Server stream length.
        len: u64,
        /// Server whole-stream sha256.
        sha256: String,
    },
    /// The offset is beyond the stored stream's end.
    #[error("offset is beyond the server's length {len}")]
    OffsetAhead {
        /// Server stream length.
        len: u64,
    },
    /// The request contradicts the session's state.
    #[error("{0}")]
    Conflict(String),
    /// A fork's `new_id` is already taken by something else.
    #[error("session `{0}` already exists")]
    Exists(String),
    /// The input is invalid (a name already exists, a value is malformed).
    #[error("{0}")]
    Invalid(String),
    /// The backend failed (I/O, database).
    #[error("storage failure: {0}")]
    Internal(String),
    /// The database or blob store cannot be reached right now; the request
    /// may succeed when retried (the HTTP layer answers 503 with `Retry-After`).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// Result of a storage operation.
pub type StorageResult<T> = Result<T, StorageError>;

/// The bytes of a stream from some offset on, as read at one instant.
pub struct StoredBytes {
    /// Stream length at the time of the read.
    pub len: u64,
    /// Hex sha256 of `[0, len)`.
    pub sha256: String,
    /// The bytes `[from, len)`, in pieces.
    pub body: BoxStream<'static, StorageResult<Bytes>>,
}

/// Query of [`Storage::list_sessions`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionsQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Which sessions to list.
    pub filter: SessionFilter,
}

/// Which sessions a list or its facet counts cover; every field set must
/// hold (an empty filter is every session of the account).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Free-text filter over id, title, first prompt, cwd and message text.
    pub q: Option<String>,
    /// Only sessions of this agent.
    pub agent: Option<Agent>,
    /// Only sessions whose working directory is exactly this.
    pub cwd: Option<String>,
    /// Only sessions whose `updated_at` is at or after this RFC 3339 time.
    pub from: Option<String>,
    /// Only sessions whose `updated_at` is before this RFC 3339 time.
    pub to: Option<String>,
    /// Only sessions that some other session names as `forked_from` or
    /// `diverged_from`.
    pub has_forks: bool,
    /// Only the forks and diverged copies of this session (those naming it
    /// as `forked_from` or `diverged_from`).
    pub parent: Option<String>,
}

/// The searchable text of one message ([`baton_search::searchable_text`])
/// and, when it may be a copy a fork made, its [`baton_search::copy_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    /// Text to index.
    pub text: String,
    /// The message's number in the main stream (0 is the first message).
    pub message: u64,
    /// Key shared with the record it was copied from, if any.
    pub copy_key: Option<String>,
}

/// A main stream with bytes the search index has not seen yet.
#[derive(Debug, Clone)]
pub struct IndexJob {
    /// Owner.
    pub user_id: i64,
    /// Session id.
    pub session_id: String,
    /// Session agent (picks the reader).
    pub agent: Agent,
    /// Reader state saved by the last indexing pass, if any.
    pub state: Option<ReaderState>,
    /// Stream length now.
    pub len: u64,
    /// Lines the reader skipped up to `state`.
    pub skipped: u64,
}

/// A saved reader position in a main stream, so a page of messages is read
/// from the nearest checkpoint instead of from byte 0.
#[derive(Debug, Clone)]
pub struct MessageCheckpoint {
    /// The reader after its last complete line: `state.consumed` is the byte
    /// offset, `state.facts.message_count` the messages before it.
    pub state: ReaderState,
    /// Lines the reader skipped before `state.consumed`.
    pub skipped: u64,
}

/// What an indexing pass learned about one session's main stream.
#[derive(Debug, Clone)]
pub struct IndexUpdate {
    /// Owner.
    pub user_id: i64,
    /// Session id.
    pub session_id: String,
    /// Offset this pass started reading at; 0 re-indexes the session from
    /// scratch, replacing the texts of earlier passes.
    pub from: u64,
    /// Stream length this pass read up to.
    pub seen_len: u64,
    /// Reader state to resume from next time (its facts describe the session);
    /// `None` when the reader failed, keeping the previous state.
    pub state: Option<ReaderState>,
    /// Searchable texts of the new messages.
    pub texts: Vec<SearchText>,
    /// Lines the reader skipped from byte 0 to `seen_len` (kept with `state`).
    pub skipped: u64,
    /// Reader positions passed in this pass, every
    /// [`crate::index::CHECKPOINT_EVERY`] messages.
    pub checkpoints: Vec<MessageCheckpoint>,
}

/// What the local mirror ([`crate::local`]) last saw of one of this
/// machine's native files, kept so a restart costs one stat per unchanged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorFile {
    /// The file's path (lossy UTF-8); unique per account.
    pub path: String,
    /// The file when last read: size on disk, mtime, inode and device.
    pub stat: FileStat,
    /// Hash state of the file's first bytes the server stream holds: its
    /// length is the server stream length they correspond to, its digest the
    /// stream's sha256. Only meaningful while `diverged` is false.
    pub mirrored: RunningSha256,
    /// The file no longer extends the server stream (it was rewritten or
    /// truncated); it is left alone while it stays the same file and does not shrink.
    pub diverged: bool,
}

/// Immutable blobs named by the hex sha256 of their bytes: where a backend
/// keeps the bytes of large appends. Calls block (a file system, or an
/// object store's client driven to completion), so backends make them from
/// blocking threads.
pub trait BlobStore: Send + Sync + 'static {
    /// Store `bytes` durably under `name` (their hex sha256); when this
    /// returns, the blob survives a crash. Storing an existing name is a no-op.
    fn put(&self, name: &str, bytes: &[u8]) -> StorageResult<()>;
    /// `len` bytes of blob `name` from `offset`; an error when it holds fewer.
    fn read(&self, name: &str, offset: u64, len: u64) -> StorageResult<Vec<u8>>;
    /// Delete blob `name`; a blob already gone is not an error.
    fn delete(&self, name: &str) -> StorageResult<()>;
    /// Names of the blobs last written before `before`, for the start-up
    /// sweep of unreferenced ones; what interrupted writes from before then
    /// left behind is discarded on the way.
    fn written_before(&self, before: std::time::SystemTime) -> StorageResult<Vec<String>>;
    /// Whether the store can be used right now (the readiness probe);
    /// [`StorageError::Unavailable`] saying what to fix when not.
    fn check(&self) -> StorageResult<()>;
}

/// Persistence for the sync server (see the module docs for the contract).
pub trait Storage: Send + Sync + 'static {
    /// Create an account and its first token; fails with `Invalid` if the name is taken.
    fn create_user(&self, name: &str) -> BoxFuture<'_, StorageResult<NewUser>>;
    /// Make sure an account exists and accepts `token` (used for the built-in `local` account).
    fn ensure_user_token(&self, name: &str, token: &str) -> BoxFuture<'_, StorageResult<Account>>;
    /// The account a token belongs to.
    fn authenticate(&self, token: &str) -> BoxFuture<'_, StorageResult<Option<Account>>>;
    /// Create a session or update its metadata.
    fn put_session(
        &self,
        user: i64,
        id: &str,
        meta: SessionMeta,
    ) -> BoxFuture<'_, StorageResult<SessionInfo>>;
    /// One session.
    fn session(&self, user: i64, id: &str) -> BoxFuture<'_, StorageResult<SessionInfo>>;
    /// A page of the sessions matching `q.filter`, newest `updated_at`
    /// first (then newest change), keyset-paged by `q.cursor`.
    fn list_sessions(
        &self,
        user: i64,
        q: SessionsQuery,
    ) -> BoxFuture<'_, StorageResult<SessionList>>;
    /// Sessions changed after `since`, oldest change first.
    fn changes(&self, user: i64, since: u64, limit: u32) -> BoxFuture<'_, StorageResult<Changes>>;
    /// Counts per value of each filter of `filter` (see [`SessionFacets`]):
    /// each dimension is counted under the filter's other fields.
    fn facets(
        &self,
        user: i64,
        filter: SessionFilter,
    ) -> BoxFuture<'_, StorageResult<SessionFacets>>;
    /// Sessions, typed prompts and messages of the account per day of
    /// start (`YYYY-MM-DD` of `started_at`, else `updated_at`; the last 365
    /// days that have sessions, oldest first), per agent and per working
    /// directory (most sessions first, at most
    /// [`baton_protocol::MAX_FACET_VALUES`]; no cwd counts as `""`).
    fn stats(&self, user: i64) -> BoxFuture<'_, StorageResult<Stats>>;
    /// Keep a read-only link to session `id`: its secret `token` (chosen
    /// by the caller, stored only as its sha256), valid until
    /// `expires_unix` (Unix seconds). The answer's `id` is the first 16 hex
    /// digits of the token's sha256; its `token` is `None`.
    fn create_share(
        &self,
        user: i64,
        id: &str,
        token: &str,
        expires_unix: i64,
    ) -> BoxFuture<'_, StorageResult<Share>>;
    /// The links to session `id` still valid at `now_unix`, newest first.
    fn shares(
        &self,
        user: i64,
        id: &str,
        now_unix: i64,
    ) -> BoxFuture<'_, StorageResult<Vec<Share>>>;
    /// Delete the link `share` (a [`Share::id`]) of session `id`;
    /// [`StorageError::NotFound`] when there is none.
    fn revoke_share(&self, user: i64, id: &str, share: &str) -> BoxFuture<'_, StorageResult<()>>;
    /// The owner and session id a share `token` opens while valid at
    /// `now_unix`; [`StorageError::NotFound`] for an unknown, expired or
    /// revoked token.
    fn shared_session(
        &self,
        token: &str,
        now_unix: i64,
    ) -> BoxFuture<'_, StorageResult<(i64, String)>>;
    /// Full-text search over the account's indexed messages, best first,
    /// one hit per session (with its best message and match count).
    fn search(
        &self,
        user: i64,
        q: &str,
        limit: u32,
    ) -> BoxFuture<'_, StorageResult<Vec<SearchHit>>>;
    /// Append to a stream following the push rules of [`baton_protocol`].
    fn append(
        &self,
        user: i64,
        id: &str,
        stream: &str,
        offset: u64,
        prefix_sha256: [u8; 32],
        bytes: Bytes,
    ) -> BoxFuture<'_, StorageResult<AppendResult>>;
    /// Read a stream from `from` to its current end.
    fn read(
        &self,
        user: i64,
        id: &str,
        stream: &str,
        from: u64,
    ) -> BoxFuture<'_, StorageResult<StoredBytes>>;
    /// Prefix hashes at every append boundary of a stream.
    fn checkpoints(
        &self,
        user: i64,
        id: &str,
        stream: &str,
    ) -> BoxFuture<'_, StorageResult<Vec<Checkpoint>>>;
    /// Keep a diverged copy of `id` as a new session sharing the given prefixes.
    fn fork(
        &self,
        user: i64,
        id: &str,
        req: ForkRequest,
    ) -> BoxFuture<'_, StorageResult<SessionInfo>>;
    /// Main streams of plaintext sessions with bytes not yet indexed.
    fn index_backlog(&self, limit: u32) -> BoxFuture<'_, StorageResult<Vec<IndexJob>>>;
    /// The saved reader position of a main stream with the most messages
    /// before it, but not more than `at_most` (`None` when there is none).
    fn message_checkpoint(
        &self,
        user: i64,
        id: &str,
        at_most: u64,
    ) -> BoxFuture<'_, StorageResult<Option<MessageCheckpoint>>>;
    /// Record an indexing pass.
    fn save_index(&self, update: IndexUpdate) -> BoxFuture<'_, StorageResult<()>>;
    /// Delete blobs written before `before` that no stream references (left
    /// by a crash between writing a blob and committing the append that
    /// uses it); returns how many were removed.
    fn sweep_blobs(&self, before: std::time::SystemTime) -> BoxFuture<'_, StorageResult<usize>>;
    /// Whether the database and the blob store answer right now (`/readyz`);
    /// [`StorageError::Unavailable`] saying which does not.
    fn ready(&self) -> BoxFuture<'_, StorageResult<()>>;
    /// The local mirror's saved file states for an account.
    fn mirror_files(&self, user: i64) -> BoxFuture<'_, StorageResult<Vec<MirrorFile>>>;
    /// Insert or replace the given file states and drop those of `forget` (paths), atomically.
    fn save_mirror_files(
        &self,
        user: i64,
        save: Vec<MirrorFile>,
        forget: Vec<String>,
    ) -> BoxFuture<'_, StorageResult<()>>;
}
