//! The sync wire protocol spoken between `baton push/pull/sync` and `baton serve`.
//!
//! This crate is the single source of truth for the HTTP API under
//! [`API_PREFIX`] (`/api/v1`). Every JSON body is one of the types below;
//! they derive `ts_rs::TS` so the web viewer gets matching TypeScript types.
//!
//! # Model
//!
//! A session on the server is its agent's **append-only native bytes**, split
//! into one or more named *streams* ([`MAIN_STREAM`] is the transcript itself;
//! other streams are e.g. Claude subagent files such as
//! `subagents/agent-x.jsonl`), plus metadata ([`SessionMeta`]) and lineage
//! (`forked_from`, `diverged_from`). Every change bumps the session's
//! `updated_seq`, a server-wide monotonic sequence number used by
//! `GET /api/v1/changes?since=SEQ` for incremental sync.
//!
//! # Authentication
//!
//! Every `/api/v1` route except `GET /api/v1/openapi.json` needs
//! `Authorization: Bearer <token>`; a missing or unknown token is `401`.
//! Sessions are per account: an id owned by another account is `404`, exactly
//! like an id that does not exist.
//!
//! # Routes
//!
//! | Method and path | Body in → out |
//! |---|---|
//! | `GET /api/v1/me` | → [`WhoAmI`] |
//! | `GET /api/v1/sessions/{id}` | → [`SessionInfo`] |
//! | `PUT /api/v1/sessions/{id}` | [`SessionMeta`] → [`SessionInfo`] (create or update) |
//! | `GET /api/v1/sessions/{id}/messages?offset=&limit=` | → [`MessageList`] (one page) |
//! | `GET /api/v1/sessions/{id}/checkpoints?stream=NAME` | → [`CheckpointList`] |
//! | `POST /api/v1/sessions/{id}/fork` | [`ForkRequest`] → [`SessionInfo`] |
//! | `POST /api/v1/sessions/{id}/streams/{name}` | raw bytes → [`AppendResult`] (push) |
//! | `GET /api/v1/sessions/{id}/streams/{name}?from=N` | → raw bytes (pull) |
//! | `GET /api/v1/sessions?cursor=&limit=&q=&agent=&cwd=&from=&to=&has_forks=&parent=` | → [`SessionList`] (filtered) |
//! | `GET /api/v1/facets?q=&agent=&cwd=&from=&to=&has_forks=&parent=` | → [`SessionFacets`] |
//! | `GET /api/v1/stats` | → [`Stats`] |
//! | `POST /api/v1/sessions/{id}/fork-at` | [`ForkAtRequest`] → [`SessionInfo`] |
//! | `GET /api/v1/sessions/{id}/shares` | → [`ShareList`] |
//! | `POST /api/v1/sessions/{id}/shares` | [`ShareRequest`] → [`Share`] (with `token`) |
//! | `DELETE /api/v1/sessions/{id}/shares/{share}` | → `204` (revoke) |
//! | `GET /api/v1/shared/{token}/messages?offset=&limit=` | → [`MessageList`] (no bearer token: the share token is the credential) |
//! | `GET /api/v1/search?q=&limit=` | → [`SearchResults`] |
//! | `GET /api/v1/changes?since=SEQ&limit=` | → [`Changes`] |
//! | `GET /api/v1/openapi.json` | → OpenAPI 3 document (no auth) |
//!
//! Errors are always an [`ErrorBody`] with an [`ErrorCode`]: `400 bad_request`
//! (malformed id, stream name, header, query or JSON), `401 unauthorized`,
//! `404 not_found`, `405 method_not_allowed`, `408 timeout`,
//! `409 diverged | offset_ahead | conflict | exists`, `413`/`414`/`431
//! too_large`, `415 unsupported_encoding | unsupported_media_type`, `416
//! offset_ahead` (pull beyond the end), `500 internal`, `503 busy |
//! unavailable` (with `Retry-After`).
//!
//! # Push (append)
//!
//! `POST /api/v1/sessions/{id}/streams/{name}` with headers
//! [`HEADER_OFFSET`]` = N` (the stream length the client believes the server
//! has), [`HEADER_PREFIX_SHA256`]` = hex sha256 of the client's bytes [0, N)`,
//! optionally `Content-Encoding: zstd`, and the bytes after N as the body.
//! The session must exist (`PUT` it first), else `404`.
//!
//! * `N == len` and the prefix hash matches: the body is appended; `200`
//!   [`AppendResult`] with the new length and whole-stream sha256.
//! * `N < len`, the prefix hash matches the server's prefix [0, N), and the
//!   server's bytes from N agree with the body on their overlap: this is a
//!   retry. Nothing is duplicated; any part of the body beyond `len` is
//!   appended; `200` [`AppendResult`].
//! * The prefix hash does not match, or the overlapping bytes differ: `409`
//!   `{"error":"diverged","len","sha256"}` (see *Divergence*).
//! * `N > len`: `409` `{"error":"offset_ahead","len"}`; resume by pushing from
//!   `len` (the client's own sha256 of [0, len) as the prefix hash).
//!
//! An append is atomic: after a crash or a dropped connection either all of
//! its bytes are in the stream or none are, so an interrupted push resumes
//! by reading `len` (from `GET /sessions/{id}` or the `offset_ahead`/`diverged`
//! reply) and pushing again. Large pushes should be sent in pieces no larger
//! than the server's per-append limit (64 MiB by default, `413` beyond it).
//!
//! # Divergence
//!
//! The same session continued on two machines gives two different byte
//! sequences with a common prefix. The flow keeps both, loses nothing:
//!
//! 1. A push answers `409 diverged`.
//! 2. The client asks `GET /api/v1/sessions/{id}/checkpoints?stream=main`: the
//!    server's prefix hashes at every append boundary ([`Checkpoint`]). One
//!    pass over its local bytes tells the client the longest common prefix
//!    `P` that is a checkpoint (0 always qualifies, with the sha256 of no
//!    bytes).
//! 3. The client calls `POST /api/v1/sessions/{id}/fork` with a fresh
//!    `new_id` (a UUID is fine) and, per stream, the prefix to share
//!    (`{"name":"main","len":P,"sha256":…}`). The server creates `new_id`
//!    with the same metadata, `diverged_from = id`, and streams that already
//!    hold the shared prefix (blobs are shared, not copied). The request is
//!    idempotent: repeating it for an existing `new_id` that diverged from
//!    `id` returns that session.
//! 4. The client pushes its bytes to `new_id` from offset `P`, and remembers
//!    that its local session now maps to `new_id` on this server.
//!
//! `fork` with a prefix that does not match the server's bytes is
//! `409 diverged`. A client-side fork of a session (the agent's own fork) is
//! a new session whose `SessionMeta.forked_from` names its parent.
//!
//! # Pull
//!
//! `GET /api/v1/sessions/{id}/streams/{name}?from=N` answers the bytes from
//! N to the end, with headers [`HEADER_LENGTH`] (the stream's length at the
//! time of the read) and [`HEADER_SHA256`] (sha256 of [0, that length)). With
//! `Accept-Encoding: zstd` the body is zstd-compressed and marked
//! `Content-Encoding: zstd`. `N > len` is `416 offset_ahead`.
//!
//! # Changes
//!
//! `GET /api/v1/changes?since=SEQ` lists the caller's sessions whose
//! `updated_seq > SEQ`, oldest change first, at most `limit` of them; call
//! again with `since = next_since` while `more` is true. Start from `0`.
//!
//! # End-to-end encryption
//!
//! A session created with `encrypted: true` holds opaque ciphertext: the
//! server stores and syncs it byte for byte, but cannot index, search or
//! render it. Its `messages` list is empty and `encrypted` is set, and only
//! the metadata the client chose to send is shown. `encrypted` cannot change
//! once a stream holds bytes (`409 conflict`).
//!
//! The whole API is also described as OpenAPI 3 in [`OPENAPI_JSON`].

use baton_native::{Agent, Message};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The OpenAPI 3 description of `/api/v1`, served at `/api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Path prefix of every API route.
pub const API_PREFIX: &str = "/api/v1";
/// Request header: the stream length the client believes the server has.
pub const HEADER_OFFSET: &str = "Baton-Offset";
/// Request header: hex sha256 of the stream's bytes `[0, Baton-Offset)`.
pub const HEADER_PREFIX_SHA256: &str = "Baton-Prefix-Sha256";
/// Response header of a pull: the stream's total length at the time of the read.
pub const HEADER_LENGTH: &str = "Baton-Length";
/// Response header of a pull: hex sha256 of the stream's bytes `[0, Baton-Length)`.
pub const HEADER_SHA256: &str = "Baton-Sha256";
/// Name of the stream holding a session's main native transcript.
pub use baton_native::layout::library::MAIN_STREAM;
/// Hex sha256 of zero bytes: the prefix hash to send with `Baton-Offset: 0`.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Longest accepted session id, in bytes.
pub use baton_native::layout::MAX_SESSION_ID_LEN as MAX_ID_LEN;
/// Longest accepted stream name, in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 255;
/// Default page size of list, search and changes routes.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size accepted by list, search and changes routes.
pub const MAX_LIMIT: u32 = 500;
/// Default page size of `GET /sessions/{id}/messages`, in messages.
pub const DEFAULT_MESSAGES_LIMIT: u32 = 500;
/// Largest page size accepted by `GET /sessions/{id}/messages`.
pub const MAX_MESSAGES_LIMIT: u32 = 5000;

/// One named append-only byte stream of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct StreamInfo {
    /// Stream name: `main` or a relative path such as `subagents/agent-x.jsonl`.
    pub name: String,
    /// Length in bytes.
    #[ts(type = "number")]
    pub len: u64,
    /// Hex sha256 of the whole stream.
    pub sha256: String,
}

/// A session as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SessionInfo {
    /// Session id (the agent's id, or the id a diverged copy was given).
    pub id: String,
    /// Which agent wrote it.
    pub agent: Agent,
    /// Working directory the session started in.
    pub cwd: Option<String>,
    /// Title, when the agent or the client gave one.
    pub title: Option<String>,
    /// True when `title` was cut to [`LISTING_TEXT_MAX_CHARS`] (in listings;
    /// `GET /sessions/{id}` has it whole).
    #[serde(default)]
    pub title_truncated: bool,
    /// First typed prompt.
    pub first_prompt: Option<String>,
    /// True when `first_prompt` was cut to [`LISTING_TEXT_MAX_CHARS`] (in
    /// listings; `GET /sessions/{id}` has it whole).
    #[serde(default)]
    pub first_prompt_truncated: bool,
    /// Creation time (RFC 3339 UTC).
    pub started_at: Option<String>,
    /// Time of the newest record (RFC 3339 UTC).
    pub updated_at: Option<String>,
    /// Typed prompts.
    #[ts(type = "number")]
    pub user_turns: u64,
    /// Normalized messages.
    #[ts(type = "number")]
    pub message_count: u64,
    /// Parent session of an agent fork.
    pub forked_from: Option<String>,
    /// Session this one is a diverged copy of (see *Divergence*).
    pub diverged_from: Option<String>,
    /// True when the bytes are client-side encrypted (not indexed, not rendered).
    pub encrypted: bool,
    /// True when the agent's own files are gone from the machine that sent
    /// the session: only baton's archive (and this server) still hold it.
    #[serde(default)]
    pub archived: bool,
    /// The session's streams, `main` first.
    pub streams: Vec<StreamInfo>,
    /// Server sequence number of the latest change to this session.
    #[ts(type = "number")]
    pub updated_seq: u64,
}

/// Most characters of `title` and `first_prompt` in a session listing
/// (`GET /sessions` and `GET /changes`); longer ones are cut
/// on a character boundary and flagged `title_truncated` /
/// `first_prompt_truncated`.
pub const LISTING_TEXT_MAX_CHARS: usize = 1024;

/// Body of `PUT /api/v1/sessions/{id}`: creates the session or updates its
/// metadata. Fields the server derives from plaintext bytes (title, first
/// prompt, times, counts) take precedence over the values sent here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SessionMeta {
    /// Which agent wrote it.
    pub agent: Agent,
    /// Working directory.
    #[serde(default)]
    #[ts(optional)]
    pub cwd: Option<String>,
    /// Title.
    #[serde(default)]
    #[ts(optional)]
    pub title: Option<String>,
    /// First typed prompt.
    #[serde(default)]
    #[ts(optional)]
    pub first_prompt: Option<String>,
    /// Creation time (RFC 3339 UTC).
    #[serde(default)]
    #[ts(optional)]
    pub started_at: Option<String>,
    /// Time of the newest record (RFC 3339 UTC).
    #[serde(default)]
    #[ts(optional)]
    pub updated_at: Option<String>,
    /// Parent session of an agent fork.
    #[serde(default)]
    #[ts(optional)]
    pub forked_from: Option<String>,
    /// The streams hold client-side ciphertext (default `false`).
    #[serde(default)]
    pub encrypted: bool,
    /// The agent's files are gone from the sending machine; only baton's
    /// archive holds them there (default `false`). Unlike the rest of the
    /// metadata, this may change on every push.
    #[serde(default)]
    pub archived: bool,
}

impl SessionMeta {
    /// Metadata naming only the agent: every other field absent, not encrypted.
    pub fn of_agent(agent: Agent) -> SessionMeta {
        SessionMeta {
            agent,
            cwd: None,
            title: None,
            first_prompt: None,
            started_at: None,
            updated_at: None,
            forked_from: None,
            encrypted: false,
            archived: false,
        }
    }
}

/// One page of `GET /api/v1/sessions`, most recently changed first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SessionList {
    /// The sessions on this page.
    pub sessions: Vec<SessionInfo>,
    /// Pass as `cursor=` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Successful push: the stream's state after the append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AppendResult {
    /// New stream length.
    #[ts(type = "number")]
    pub len: u64,
    /// Hex sha256 of the whole stream.
    pub sha256: String,
}

/// Machine-readable error kind of an [`ErrorBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed id, stream name, header, query or body.
    BadRequest,
    /// 401: missing or unknown bearer token.
    Unauthorized,
    /// 404: no such session (or it belongs to another account), or no such route.
    NotFound,
    /// 409: the pushed prefix or bytes differ from the server's; `len` and `sha256` describe the server's stream.
    Diverged,
    /// 409 (push) / 416 (pull): the offset is beyond the server's `len`.
    OffsetAhead,
    /// 409: the request contradicts the session's state (e.g. changing `encrypted` after bytes were pushed).
    Conflict,
    /// 409: `new_id` of a fork already exists and is not that fork.
    Exists,
    /// 413 (body), 414 (URI), 431 (headers): the request exceeds the server's limit.
    TooLarge,
    /// 415: a `Content-Encoding` other than `zstd` or `identity`, or an undecodable zstd body.
    UnsupportedEncoding,
    /// 500: the server failed; the request may be retried.
    Internal,
    /// 503: the server holds as many push bytes as it allows; retry after `Retry-After` seconds.
    Busy,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 408: the request body arrived too slowly.
    Timeout,
    /// 415: a JSON route got a body whose `Content-Type` is not JSON.
    UnsupportedMediaType,
    /// 503: the server's database or blob store is unreachable; retry after `Retry-After` seconds.
    Unavailable,
    /// 422: the pushed bytes hold a secret and the server refuses secrets (`baton serve --secrets refuse`); push with a client that redacts.
    SecretFound,
}

/// Every error response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ErrorBody {
    /// Error kind.
    pub error: ErrorCode,
    /// Human-readable explanation, saying what to do.
    pub message: String,
    /// Server stream length (`diverged`, `offset_ahead`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub len: Option<u64>,
    /// Server whole-stream sha256 (`diverged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub sha256: Option<String>,
}

/// A prefix of one stream: its length and the sha256 of bytes `[0, len)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct StreamPrefix {
    /// Stream name.
    pub name: String,
    /// Prefix length in bytes.
    #[ts(type = "number")]
    pub len: u64,
    /// Hex sha256 of the prefix.
    pub sha256: String,
}

/// Body of `POST /api/v1/sessions/{id}/fork`: keep a diverged copy as a new
/// session sharing a common prefix with `{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// Id of the new session (must be unused, or an earlier identical fork).
    pub new_id: String,
    /// Prefixes to share, per stream; streams not listed start empty.
    #[serde(default)]
    pub streams: Vec<StreamPrefix>,
}

/// A point in a stream where an append ended, with the prefix hash there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Checkpoint {
    /// Byte offset (end of an append).
    #[ts(type = "number")]
    pub offset: u64,
    /// Hex sha256 of bytes `[0, offset)`.
    pub sha256: String,
}

/// Answer of `GET /api/v1/sessions/{id}/checkpoints?stream=NAME`: ascending
/// offsets, starting with `0` and ending with the stream's length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct CheckpointList {
    /// Stream name.
    pub stream: String,
    /// Checkpoints, ascending.
    pub checkpoints: Vec<Checkpoint>,
}

/// Answer of `GET /api/v1/sessions/{id}/messages`: the normalized view of the
/// main stream, for the web viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct MessageList {
    /// The session.
    pub session: SessionInfo,
    /// True when the session is encrypted: the server cannot read it, `messages` is empty.
    pub encrypted: bool,
    /// One page of messages in file order: message number `offset` (the
    /// query parameter, default 0) and up to `limit` more (default
    /// [`DEFAULT_MESSAGES_LIMIT`], at most [`MAX_MESSAGES_LIMIT`]). Tool calls
    /// are paired with results by `call_id`, possibly across pages.
    pub messages: Vec<Message>,
    /// Native lines the server could not read (reported, skipped) up to the end of this page.
    #[ts(type = "number")]
    pub skipped_lines: u64,
    /// Pass as `offset=` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub next_offset: Option<u64>,
}

/// One search match: a session and its best matching message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SearchHit {
    /// The matching session.
    pub session: SessionInfo,
    /// Matching text with the matched words wrapped in `«` and `»` (as in
    /// `baton search`); the query follows `baton search`'s rules (every
    /// term must match, literally; a trailing `*` matches a prefix).
    pub snippet: String,
    /// Number of the best matching message in the session's own main
    /// stream (as `GET /sessions/{id}/messages` numbers it for sessions
    /// without inherited history); absent for text indexed before message
    /// numbers were kept.
    #[serde(default)]
    #[ts(type = "number | null")]
    pub message: Option<u64>,
    /// How many of the session's messages match (counted among the best
    /// 2,000 matching messages of the whole search).
    #[serde(default)]
    #[ts(type = "number")]
    pub hit_count: u64,
}

/// Answer of `GET /api/v1/search?q=`: best matches first, one per session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SearchResults {
    /// Matches.
    pub hits: Vec<SearchHit>,
}

/// Answer of `GET /api/v1/changes?since=SEQ`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Changes {
    /// Sessions changed after `since`, ascending by `updated_seq`.
    pub sessions: Vec<SessionInfo>,
    /// Pass as `since=` next time.
    #[ts(type = "number")]
    pub next_since: u64,
    /// True when more changes are waiting (call again right away).
    pub more: bool,
}

/// How many sessions carry one value of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FacetCount {
    /// The value (an agent name, a working directory, a day `YYYY-MM-DD`).
    pub value: String,
    /// Sessions with that value.
    #[ts(type = "number")]
    pub count: u64,
}

/// Answer of `GET /api/v1/facets`: counts per value of each session-list
/// filter, each counted under the other filters of the query (so choosing
/// a value shows how many rows it leaves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SessionFacets {
    /// Sessions matching every filter of the query.
    #[ts(type = "number")]
    pub total: u64,
    /// Sessions per agent, most first.
    pub agents: Vec<FacetCount>,
    /// Sessions per working directory, most first (at most [`MAX_FACET_VALUES`]).
    pub projects: Vec<FacetCount>,
    /// Sessions that have at least one fork or diverged copy.
    #[ts(type = "number")]
    pub with_forks: u64,
}

/// Most values per facet in [`SessionFacets`] and per table in [`Stats`].
pub const MAX_FACET_VALUES: usize = 50;

/// Usage totals of a group of sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct StatRow {
    /// The group: a day (`YYYY-MM-DD`, by start time), an agent, or a working directory.
    pub key: String,
    /// Sessions in the group.
    #[ts(type = "number")]
    pub sessions: u64,
    /// Typed prompts in those sessions.
    #[ts(type = "number")]
    pub turns: u64,
    /// Normalized messages in those sessions.
    #[ts(type = "number")]
    pub messages: u64,
}

/// Answer of `GET /api/v1/stats`: the account's sessions, turns and
/// messages per day (oldest first, the last 365 days with sessions), per
/// agent and per project (most sessions first, at most [`MAX_FACET_VALUES`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Stats {
    /// Per day of the sessions' start.
    pub per_day: Vec<StatRow>,
    /// Per agent.
    pub per_agent: Vec<StatRow>,
    /// Per working directory.
    pub per_project: Vec<StatRow>,
}

/// Body of `POST /api/v1/sessions/{id}/fork-at`: fork a plaintext session
/// after one of its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ForkAtRequest {
    /// Number of the last message the fork keeps (as `GET
    /// /sessions/{id}/messages` numbers them); the fork holds the main
    /// stream's native lines up to the end of that message's line.
    #[ts(type = "number")]
    pub message: u64,
}

/// Body of `POST /api/v1/sessions/{id}/shares`: create a read-only link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// Hours until the link stops working (1 to [`MAX_SHARE_HOURS`]).
    pub expires_in_hours: u32,
}

/// Longest a share link may live, in hours (one year).
pub const MAX_SHARE_HOURS: u32 = 24 * 365;

/// A read-only share link of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Share {
    /// Identifies the link for revocation (not a secret).
    pub id: String,
    /// The shared session.
    pub session_id: String,
    /// Creation time (RFC 3339 UTC).
    pub created_at: String,
    /// Time the link stops working (RFC 3339 UTC).
    pub expires_at: String,
    /// The link's secret, only in the answer that created it (the server
    /// keeps its hash): open `/share/<token>` in a browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub token: Option<String>,
}

/// Answer of `GET /api/v1/sessions/{id}/shares`: the session's live links, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ShareList {
    /// Links that have not expired or been revoked.
    pub shares: Vec<Share>,
}

/// Answer of `GET /api/v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct WhoAmI {
    /// Account name the token belongs to.
    pub user: String,
}

/// Printed by `baton serve user add NAME --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct NewUser {
    /// Account name.
    pub user: String,
    /// Bearer token (shown once; the server keeps only its hash).
    pub token: String,
}

/// Why an id or stream name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Check a session id by baton-native's one rule
/// ([`baton_native::layout::check_session_id`]): 1–128 ASCII letters,
/// digits, `-`, `_`, `.`, not starting with `.` (UUIDs and agent ids qualify).
pub fn validate_session_id(id: &str) -> Result<(), InvalidName> {
    baton_native::layout::check_session_id(id).map_err(InvalidName)
}

/// Check a stream name: `main`, or a relative path of up to 8 `/`-separated
/// segments, each of ASCII letters, digits, `-`, `_`, `.` and not starting
/// with `.` (so no `..`, no absolute paths, no backslashes); 255 bytes max.
pub fn validate_stream_name(name: &str) -> Result<(), InvalidName> {
    let bad = || {
        InvalidName(format!(
            "stream name `{}` must be a relative path like `main` or `subagents/agent-x.jsonl`: segments of letters, digits, `-`, `_`, `.`, none starting with `.`",
            name.escape_debug()
        ))
    };
    if name.is_empty() || name.len() > MAX_STREAM_NAME_LEN {
        return Err(bad());
    }
    let segments: Vec<&str> = name.split('/').collect();
    if segments.len() > 8 {
        return Err(bad());
    }
    for seg in segments {
        if seg.is_empty() || seg.starts_with('.') || !seg.chars().all(is_name_char) {
            return Err(bad());
        }
    }
    Ok(())
}

/// Hex sha256 of a byte slice (what [`HEADER_PREFIX_SHA256`] carries).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_stream_names_reject_traversal() {
        assert!(validate_session_id("01a1ff8d-8c3d-7551-b270-db431e8a8997").is_ok());
        for bad in [
            "",
            "..",
            ".x",
            "a/b",
            "a\\b",
            "a b",
            "%2e%2e",
            &"x".repeat(129),
        ] {
            assert!(validate_session_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_stream_name("main").is_ok());
        assert!(validate_stream_name("subagents/agent-x.jsonl").is_ok());
        for bad in [
            "", "..", "../x", "a/../b", "/abs", "a//b", "a/", "a\\b", ".hidden", "a/.b", "é",
        ] {
            assert!(validate_stream_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn empty_sha_constant_is_right() {
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
    }

    #[test]
    fn error_body_omits_absent_fields() {
        let body = ErrorBody {
            error: ErrorCode::OffsetAhead,
            message: "m".into(),
            len: Some(3),
            sha256: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"error":"offset_ahead","message":"m","len":3})
        );
    }
}
