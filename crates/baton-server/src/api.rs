//! HTTP routes: the `/api/v1` sync API, `/healthz` (the process), `/readyz`
//! (database and blob store) and the embedded web UI.
//!
//! Semantics of every route are documented in [`baton_protocol`]; the
//! OpenAPI description is served at `/api/v1/openapi.json`.

use crate::index;
use crate::listen::Timeouts;
use crate::storage::{Account, SessionFilter, SessionsQuery, Storage, StorageError};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_protocol::{
    self as protocol, DEFAULT_LIMIT, DEFAULT_MESSAGES_LIMIT, ErrorBody, ErrorCode, ForkAtRequest,
    ForkRequest, HEADER_LENGTH, HEADER_OFFSET, HEADER_PREFIX_SHA256, HEADER_SHA256, MAIN_STREAM,
    MAX_LIMIT, MAX_MESSAGES_LIMIT, MAX_SHARE_HOURS, MessageList, SearchResults, SessionMeta,
    ShareList, ShareRequest, StreamPrefix, WhoAmI,
};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::Notify;

/// Size limits applied to request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted push body, before and after zstd decoding (bytes).
    pub max_append: usize,
    /// Largest accepted JSON body (bytes).
    pub max_json: usize,
    /// Most push-body bytes held in memory at once across all requests
    /// (raw and decoded); a push that cannot reserve its share waits.
    pub max_inflight: usize,
    /// How long a push waits for its share of `max_inflight` before it is
    /// answered 503 `busy` with `Retry-After`.
    pub inflight_wait: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_append: 64 * 1024 * 1024,
            max_json: 1024 * 1024,
            max_inflight: 256 * 1024 * 1024,
            inflight_wait: std::time::Duration::from_secs(5),
        }
    }
}

/// What the server does with a push to a plaintext session whose bytes hold
/// a secret the rules detect (a client that redacts never sends one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecretPolicy {
    /// Answer 422 `secret_found` and store nothing.
    #[default]
    Refuse,
    /// Store the bytes with each secret replaced by a placeholder nobody
    /// can open (the pushing client then sees its copy as diverged).
    Redact,
    /// Store the bytes as they are.
    Accept,
}

/// Shared state of every handler.
pub struct AppState {
    /// The persistence backend.
    pub storage: Arc<dyn Storage>,
    /// Body size limits.
    pub limits: Limits,
    /// How slowly a request body may arrive.
    pub timeouts: Timeouts,
    /// Woken after every plaintext append so the indexer catches up.
    pub index_wake: Arc<Notify>,
    /// What to do with pushed secrets.
    pub secrets: SecretPolicy,
    /// Push-body bytes that may still be taken into memory, in KiB permits
    /// (see [`inflight_semaphore`]).
    pub inflight: Arc<tokio::sync::Semaphore>,
}

type St = State<Arc<AppState>>;

/// An error response: a status and an [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError(StatusCode, ErrorBody);

impl ApiError {
    fn new(status: StatusCode, error: ErrorCode, message: impl Into<String>) -> Self {
        Self(
            status,
            ErrorBody {
                error,
                message: message.into(),
                len: None,
                sha256: None,
            },
        )
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, message)
    }

    /// The answer to a response that left the router with an error status
    /// and no JSON body (a 405 from the router, an extractor's rejection).
    fn for_status(status: StatusCode, method: &axum::http::Method) -> Self {
        let (error, message) = match status.as_u16() {
            401 => (ErrorCode::Unauthorized, "send `Authorization: Bearer <token>`".to_string()),
            404 => (ErrorCode::NotFound, "no such route; see /api/v1/openapi.json".to_string()),
            405 => (
                ErrorCode::MethodNotAllowed,
                format!("this route does not take {method}; see /api/v1/openapi.json"),
            ),
            408 => (ErrorCode::Timeout, "the request took too long; retry".to_string()),
            413 | 414 | 431 => (
                ErrorCode::TooLarge,
                "the request is larger than the server accepts".to_string(),
            ),
            415 => (
                ErrorCode::UnsupportedMediaType,
                "send the body as `Content-Type: application/json`".to_string(),
            ),
            503 => (ErrorCode::Unavailable, "the server is unavailable; retry later".to_string()),
            500..=599 => (
                ErrorCode::Internal,
                "the server failed to complete the request; retry, and check the server log if it persists".to_string(),
            ),
            _ => (
                ErrorCode::BadRequest,
                format!("the request was refused ({status})"),
            ),
        };
        Self::new(status, error, message)
    }

    fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            "the server is holding as many push bytes as it allows; retry after the Retry-After seconds",
        )
    }

    fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such session on this account (check the id, or push it first)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.0, Json(self.1)).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => Self::not_found(),
            StorageError::Diverged { len, sha256 } => Self(
                StatusCode::CONFLICT,
                ErrorBody {
                    error: ErrorCode::Diverged,
                    message: "the server's copy differs from yours; keep both with POST /api/v1/sessions/{id}/fork".into(),
                    len: Some(len),
                    sha256: Some(sha256),
                },
            ),
            StorageError::OffsetAhead { len } => Self(
                StatusCode::CONFLICT,
                ErrorBody {
                    error: ErrorCode::OffsetAhead,
                    message: format!("the server has only {len} bytes; push again from offset {len}"),
                    len: Some(len),
                    sha256: None,
                },
            ),
            StorageError::Conflict(m) => Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, m),
            StorageError::Exists(id) => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::Exists,
                format!("session `{id}` already exists; choose another new_id"),
            ),
            StorageError::Invalid(m) => Self::bad(m),
            StorageError::Unavailable(m) => {
                tracing::warn!("storage unavailable: {m}");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "the server's storage is unreachable right now; retry after the Retry-After seconds",
                )
            }
            StorageError::Internal(m) => {
                tracing::error!("storage failure: {m}");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "the server failed to complete the request; retry, and check the server log if it persists",
                )
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The authenticated caller, from `Authorization: Bearer <token>`.
pub struct Auth(pub Account);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, m);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("send `Authorization: Bearer <token>`; create a token with `baton serve user add NAME`"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        match state.storage.authenticate(token).await? {
            Some(acct) => Ok(Auth(acct)),
            None => Err(unauthorized(
                "unknown token; create one with `baton serve user add NAME`",
            )),
        }
    }
}

fn bad_path(e: PathRejection) -> ApiError {
    ApiError::bad(e.body_text())
}

/// A validated `{id}` path parameter.
struct SessionId(String);

impl<S: Send + Sync> FromRequestParts<S> for SessionId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(bad_path)?;
        protocol::validate_session_id(&id).map_err(|e| ApiError::bad(e.0))?;
        Ok(Self(id))
    }
}

/// Validated `{id}` and `{*name}` path parameters of a stream route.
struct StreamPath {
    id: String,
    name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for StreamPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Path((id, name)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(bad_path)?;
        protocol::validate_session_id(&id).map_err(|e| ApiError::bad(e.0))?;
        protocol::validate_stream_name(&name).map_err(|e| ApiError::bad(e.0))?;
        Ok(Self { id, name })
    }
}

/// A query string, with a malformed one answered as `bad_request`.
struct Params<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e: QueryRejection| ApiError::bad(e.body_text()))
    }
}

/// The `Content-Length` a request declares, if any (hyper has already
/// refused a malformed one).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Refuse a body whose declared length exceeds `limit` before reading any of it.
fn check_declared(headers: &HeaderMap, limit: usize, hint: &str) -> ApiResult<()> {
    match declared_length(headers) {
        Some(n) if n > limit as u64 => Err(ApiError::too_large(format!(
            "the request body of {n} bytes exceeds the limit of {limit} bytes; {hint}"
        ))),
        _ => Ok(()),
    }
}

/// Read a request body into one buffer of its declared length (growing by
/// doubling when undeclared), never beyond `limit` (413 past it). The body must keep up with
/// [`Timeouts::body_min_rate`] once [`Timeouts::body_grace`] has passed
/// (408 otherwise), so a client trickling bytes cannot hold the request open.
async fn read_body(
    body: Body,
    declared: Option<u64>,
    limit: usize,
    timeouts: &Timeouts,
) -> ApiResult<Bytes> {
    let mut frames = body.into_data_stream();
    // The declared length (already checked against `limit`) is reserved as
    // address space only: pages become resident as the bytes arrive.
    let expected = declared.map_or(0, |n| (n as usize).min(limit));
    let mut buf: Vec<u8> = Vec::with_capacity(expected);
    let start = tokio::time::Instant::now();
    let rate = timeouts.body_min_rate.max(1);
    loop {
        let earned = std::time::Duration::from_secs_f64(buf.len() as f64 / rate as f64);
        let deadline = start + timeouts.body_grace + earned;
        let frame = tokio::time::timeout_at(deadline, frames.next())
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::Timeout,
                    format!(
                        "the request body arrived slower than {rate} bytes/s after {} s; retry on a faster connection or send smaller pieces",
                        timeouts.body_grace.as_secs()
                    ),
                )
            })?;
        match frame {
            None => return Ok(Bytes::from(buf)),
            Some(Err(e)) => {
                return Err(ApiError::bad(format!("cannot read the request body: {e}")));
            }
            Some(Ok(piece)) => {
                let len = buf.len() + piece.len();
                if len > limit {
                    return Err(ApiError::too_large(format!(
                        "the request body exceeds the limit of {limit} bytes; send smaller pieces"
                    )));
                }
                if len > buf.capacity() {
                    let grown = len.max(buf.capacity() * 2).min(limit);
                    buf.reserve_exact(grown - buf.len());
                }
                buf.extend_from_slice(&piece);
            }
        }
    }
}

/// True when a request may carry JSON: no `Content-Type`, or one naming
/// JSON (`application/json`, `application/…+json`).
fn json_content_type(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type else {
        return true;
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// A JSON request body (a JSON or absent `Content-Type`, at most
/// [`Limits::max_json`] bytes), with errors answered as [`ApiError`]s.
struct JsonBody<T>(T);

impl<T: serde::de::DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let limit = state.limits.max_json;
        check_declared(req.headers(), limit, "send a smaller JSON body")?;
        let declared = declared_length(req.headers());
        let bytes = read_body(req.into_body(), declared, limit, &state.timeouts).await?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
    }
}

/// A push body. A declared `Content-Length` beyond the push limit is refused
/// before anything is read or reserved; otherwise the bytes it may take in
/// memory (its `Content-Length`, or the push limit when undeclared, plus the
/// push limit and the zstd window when it must be decoded) are reserved from
/// [`AppState::inflight`] first, and the reservation is held until the
/// request ends. The body is read into a buffer no larger than the raw part
/// of the reservation.
struct PushBody {
    bytes: Bytes,
    _reserved: tokio::sync::OwnedSemaphorePermit,
}

impl FromRequest<Arc<AppState>> for PushBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let limits = state.limits;
        check_declared(req.headers(), limits.max_append, "push in smaller pieces")?;
        let encoded = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("identity"));
        let declared = declared_length(req.headers());
        let raw = declared.map_or(limits.max_append, |n| n as usize);
        let decoded = if encoded {
            limits.max_append.saturating_add(1 << ZSTD_WINDOW_LOG_MAX)
        } else {
            0
        };
        let want = raw
            .saturating_add(decoded)
            .clamp(1, limits.max_inflight.max(1));
        let permits = u32::try_from(want.div_ceil(INFLIGHT_UNIT)).unwrap_or(u32::MAX);
        let acquire = state.inflight.clone().acquire_many_owned(permits);
        let reserved = match tokio::time::timeout(limits.inflight_wait, acquire).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(ApiError::busy()),
        };
        let bytes = read_body(req.into_body(), declared, raw, &state.timeouts).await?;
        Ok(Self {
            bytes,
            _reserved: reserved,
        })
    }
}

/// Largest zstd window a push body may use (8 MiB; the client's level-3
/// frames use 2 MiB at most), so a frame cannot make the decoder allocate
/// more than the push's reservation covers.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Granularity of [`AppState::inflight`]: one permit per KiB.
const INFLIGHT_UNIT: usize = 1024;

/// The semaphore of [`AppState::inflight`] for `limits`.
pub fn inflight_semaphore(limits: &Limits) -> Arc<tokio::sync::Semaphore> {
    let permits = limits
        .max_inflight
        .max(1)
        .div_ceil(INFLIGHT_UNIT)
        .min(tokio::sync::Semaphore::MAX_PERMITS)
        .min(u32::MAX as usize);
    Arc::new(tokio::sync::Semaphore::new(permits))
}

fn parse_num(name: &str, v: Option<&str>) -> ApiResult<Option<u64>> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad(format!("`{name}` must be a non-negative integer"))),
    }
}

fn parse_limit(v: Option<&str>, default: u32, max: u32) -> ApiResult<u32> {
    match parse_num("limit", v)? {
        None => Ok(default),
        Some(n) if (1..=max as u64).contains(&n) => Ok(n as u32),
        Some(_) => Err(ApiError::bad(format!(
            "`limit` must be between 1 and {max}"
        ))),
    }
}

/// Query of `GET /sessions`.
#[derive(Debug, Deserialize)]
struct ListParams {
    cursor: Option<String>,
    limit: Option<String>,
    #[serde(flatten)]
    filter: FilterParams,
}

/// The filter part of the query of `GET /sessions` and `GET /facets`.
#[derive(Debug, Deserialize)]
struct FilterParams {
    q: Option<String>,
    agent: Option<String>,
    cwd: Option<String>,
    from: Option<String>,
    to: Option<String>,
    has_forks: Option<String>,
    parent: Option<String>,
}

impl FilterParams {
    /// The checked filter: a known agent, RFC 3339 times or `YYYY-MM-DD`
    /// dates, `has_forks` as `true`/`false`; empty values are absent.
    fn parse(self) -> ApiResult<SessionFilter> {
        let present = |v: Option<String>| v.filter(|v| !v.is_empty());
        let agent = match present(self.agent) {
            None => None,
            Some(a) => Some(a.parse().map_err(|_| {
                ApiError::bad(format!(
                    "`agent` must be `codex` or `claude`, not `{}`",
                    a.escape_debug()
                ))
            })?),
        };
        let time = |field: &str, v: Option<String>| -> ApiResult<Option<String>> {
            let Some(v) = present(v) else { return Ok(None) };
            if v.parse::<jiff::Timestamp>().is_ok() || v.parse::<jiff::civil::Date>().is_ok() {
                Ok(Some(v))
            } else {
                Err(ApiError::bad(format!(
                    "`{field}` must be a date such as `2026-01-31` or an RFC 3339 time such as `2026-01-31T00:00:00Z`"
                )))
            }
        };
        let has_forks = match present(self.has_forks).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::bad("`has_forks` must be `true` or `false`")),
        };
        Ok(SessionFilter {
            q: present(self.q),
            agent,
            cwd: present(self.cwd),
            from: time("from", self.from)?,
            to: time("to", self.to)?,
            has_forks,
            parent: present(self.parent),
        })
    }
}

/// Query of `GET /search`.
#[derive(Debug, Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<String>,
}

/// Query of `GET /changes`.
#[derive(Debug, Deserialize)]
struct ChangesParams {
    since: Option<String>,
    limit: Option<String>,
}

/// Query of `GET /messages`.
#[derive(Debug, Deserialize)]
struct MessagesParams {
    offset: Option<String>,
    limit: Option<String>,
}

/// Query of pulls.
#[derive(Debug, Deserialize)]
struct FromParams {
    from: Option<String>,
}

/// Query of `GET /checkpoints`.
#[derive(Debug, Deserialize)]
struct CheckpointParams {
    stream: Option<String>,
}

async fn me(Auth(acct): Auth) -> Json<WhoAmI> {
    Json(WhoAmI { user: acct.name })
}

async fn list(
    State(st): St,
    Auth(acct): Auth,
    Params(p): Params<ListParams>,
) -> ApiResult<Response> {
    let list = st
        .storage
        .list_sessions(
            acct.id,
            SessionsQuery {
                cursor: p.cursor,
                limit: parse_limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?,
                filter: p.filter.parse()?,
            },
        )
        .await?;
    let mut list = list;
    let shown = Shown::new();
    list.sessions.iter_mut().for_each(|s| shown.session(s));
    Ok(Json(list).into_response())
}

async fn get_session(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
) -> ApiResult<Response> {
    let mut session = st.storage.session(acct.id, &id).await?;
    Shown::new().session(&mut session);
    Ok(Json(session).into_response())
}

fn check_optional_id(field: &str, v: &Option<String>) -> ApiResult<()> {
    if let Some(id) = v {
        protocol::validate_session_id(id)
            .map_err(|e| ApiError::bad(format!("`{field}`: {}", e.0)))?;
    }
    Ok(())
}

fn check_time(field: &str, v: &Option<String>) -> ApiResult<()> {
    match v {
        Some(t) if t.parse::<jiff::Timestamp>().is_err() => Err(ApiError::bad(format!(
            "`{field}` must be an RFC 3339 time such as `2026-01-01T00:00:00Z`, not `{}`",
            t.chars().take(64).collect::<String>()
        ))),
        _ => Ok(()),
    }
}

async fn put_session(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
    JsonBody(meta): JsonBody<SessionMeta>,
) -> ApiResult<Response> {
    check_optional_id("forked_from", &meta.forked_from)?;
    check_time("started_at", &meta.started_at)?;
    check_time("updated_at", &meta.updated_at)?;
    Ok(Json(st.storage.put_session(acct.id, &id, meta).await?).into_response())
}

async fn messages(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
    Params(params): Params<MessagesParams>,
) -> ApiResult<Response> {
    message_page(&st, acct.id, &id, params).await
}

/// One page of the messages of session `id` of `user` (`GET
/// /sessions/{id}/messages` and `GET /shared/{token}/messages`).
async fn message_page(
    st: &AppState,
    user: i64,
    id: &str,
    params: MessagesParams,
) -> ApiResult<Response> {
    let offset = parse_num("offset", params.offset.as_deref())?.unwrap_or(0);
    let limit = parse_limit(
        params.limit.as_deref(),
        DEFAULT_MESSAGES_LIMIT,
        MAX_MESSAGES_LIMIT,
    )?;
    let mut session = st.storage.session(user, id).await?;
    if session.encrypted {
        return Ok(Json(MessageList {
            session,
            encrypted: true,
            messages: Vec::new(),
            skipped_lines: 0,
            next_offset: None,
        })
        .into_response());
    }
    let page = index::page_conversation(
        st.storage.as_ref(),
        user,
        &mut session,
        offset,
        limit as usize,
    )
    .await?;
    let next_offset = page.more.then(|| offset + page.messages.len() as u64);
    let skipped_lines = page.skipped_lines;
    let (session, messages) = tokio::task::spawn_blocking(move || {
        let shown = Shown::new();
        let mut session = session;
        let mut messages = page.messages;
        shown.session(&mut session);
        messages.iter_mut().for_each(|m| shown.text(&mut m.text));
        (session, messages)
    })
    .await
    .map_err(|e| ApiError::from(StorageError::Internal(e.to_string())))?;
    Ok(Json(MessageList {
        session,
        encrypted: false,
        messages,
        skipped_lines,
        next_offset,
    })
    .into_response())
}

/// Unix seconds now.
fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn shared_messages(
    State(st): St,
    Path(token): Path<String>,
    Params(params): Params<MessagesParams>,
) -> ApiResult<Response> {
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "this share link does not exist, has expired or was revoked; ask its owner for a new one",
        )
    };
    if token.len() > 128 || !token.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(unknown());
    }
    let (user, id) = match st.storage.shared_session(&token, now_unix()).await {
        Err(StorageError::NotFound) => return Err(unknown()),
        other => other?,
    };
    message_page(&st, user, &id, params).await
}

async fn list_shares(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
) -> ApiResult<Response> {
    let shares = st.storage.shares(acct.id, &id, now_unix()).await?;
    Ok(Json(ShareList { shares }).into_response())
}

async fn create_share(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
    JsonBody(req): JsonBody<ShareRequest>,
) -> ApiResult<Response> {
    if !(1..=MAX_SHARE_HOURS).contains(&req.expires_in_hours) {
        return Err(ApiError::bad(format!(
            "`expires_in_hours` must be between 1 and {MAX_SHARE_HOURS}"
        )));
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    let expires = now_unix() + i64::from(req.expires_in_hours) * 3600;
    let mut share = st
        .storage
        .create_share(acct.id, &id, &token, expires)
        .await?;
    share.token = Some(token);
    Ok((StatusCode::CREATED, Json(share)).into_response())
}

async fn revoke_share(
    State(st): St,
    Auth(acct): Auth,
    Path((id, share)): Path<(String, String)>,
) -> ApiResult<Response> {
    protocol::validate_session_id(&id).map_err(|e| ApiError::bad(e.0))?;
    st.storage.revoke_share(acct.id, &id, &share).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn facets(
    State(st): St,
    Auth(acct): Auth,
    Params(p): Params<FilterParams>,
) -> ApiResult<Response> {
    Ok(Json(st.storage.facets(acct.id, p.parse()?).await?).into_response())
}

async fn stats(State(st): St, Auth(acct): Auth) -> ApiResult<Response> {
    Ok(Json(st.storage.stats(acct.id).await?).into_response())
}

async fn fork_at(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
    JsonBody(req): JsonBody<ForkAtRequest>,
) -> ApiResult<Response> {
    let session = st.storage.session(acct.id, &id).await?;
    if session.encrypted {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "the session is encrypted: the server cannot read its messages; fork it where the key is",
        ));
    }
    let cut = index::fork_cut(st.storage.as_ref(), acct.id, &session, req.message)
        .await?
        .ok_or_else(|| {
            ApiError::bad(format!(
                "the session has no message {} of its own to fork after; pick a message it shows",
                req.message
            ))
        })?;
    let read = st.storage.read(acct.id, &id, MAIN_STREAM, 0).await?;
    let mut hash = crate::hash::RunningSha256::new();
    let (mut body, mut seen) = (read.body, 0u64);
    while seen < cut
        && let Some(piece) = body.next().await
    {
        let piece = piece?;
        let take = (cut - seen).min(piece.len() as u64) as usize;
        hash.update(&piece[..take]);
        seen += take as u64;
    }
    let new_id = uuid::Uuid::now_v7().to_string();
    let fork = ForkRequest {
        new_id: new_id.clone(),
        streams: vec![StreamPrefix {
            name: MAIN_STREAM.to_string(),
            len: cut,
            sha256: hex::encode(hash.digest()),
        }],
    };
    st.storage.fork(acct.id, &id, fork).await?;
    let meta = SessionMeta {
        forked_from: Some(id.clone()),
        cwd: session.cwd,
        title: session.title,
        first_prompt: session.first_prompt,
        started_at: session.started_at,
        updated_at: session.updated_at,
        ..SessionMeta::of_agent(session.agent)
    };
    let info = st.storage.put_session(acct.id, &new_id, meta).await?;
    st.index_wake.notify_one();
    Ok(Json(info).into_response())
}

/// Compress a stream's pieces into one zstd frame as they arrive, holding
/// one piece and its compressed form in memory at a time.
fn zstd_stream(
    body: BoxStream<'static, Result<Bytes, StorageError>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    type Enc = zstd::stream::write::Encoder<'static, Vec<u8>>;
    let start = zstd::stream::write::Encoder::new(Vec::new(), 3).map(|enc| (body, enc));
    futures::stream::unfold(Some(start), |state| async move {
        let (mut body, enc) = match state? {
            Ok(s) => s,
            Err(e) => return Some((Err(e), None)),
        };
        let next = body.next().await;
        let (piece, last) = match next {
            Some(Ok(piece)) => (piece, false),
            Some(Err(e)) => return Some((Err(std::io::Error::other(e)), None)),
            None => (Bytes::new(), true),
        };
        let step = move || -> std::io::Result<(Option<Enc>, Vec<u8>)> {
            use std::io::Write;
            let mut enc: Enc = enc;
            if last {
                return Ok((None, enc.finish()?));
            }
            enc.write_all(&piece)?;
            let out = std::mem::take(enc.get_mut());
            Ok((Some(enc), out))
        };
        match tokio::task::spawn_blocking(step).await {
            Ok(Ok((enc, out))) => Some((Ok(Bytes::from(out)), enc.map(|enc| Ok((body, enc))))),
            Ok(Err(e)) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    })
}

async fn checkpoints(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
    Params(q): Params<CheckpointParams>,
) -> ApiResult<Response> {
    let stream = q.stream.unwrap_or_else(|| MAIN_STREAM.to_string());
    protocol::validate_stream_name(&stream).map_err(|e| ApiError::bad(e.0))?;
    let checkpoints = st.storage.checkpoints(acct.id, &id, &stream).await?;
    Ok(Json(protocol::CheckpointList {
        stream,
        checkpoints,
    })
    .into_response())
}

async fn fork(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
    JsonBody(req): JsonBody<ForkRequest>,
) -> ApiResult<Response> {
    protocol::validate_session_id(&req.new_id)
        .map_err(|e| ApiError::bad(format!("`new_id`: {}", e.0)))?;
    if req.new_id == id {
        return Err(ApiError::bad(
            "`new_id` must differ from the session being forked",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for s in &req.streams {
        protocol::validate_stream_name(&s.name).map_err(|e| ApiError::bad(e.0))?;
        if s.sha256.len() != 64 || !s.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ApiError::bad(format!(
                "stream `{}`: `sha256` must be 64 hex digits",
                s.name
            )));
        }
        if !names.insert(s.name.clone()) {
            return Err(ApiError::bad(format!(
                "stream `{}` is listed twice",
                s.name
            )));
        }
    }
    let info = st.storage.fork(acct.id, &id, req).await?;
    st.index_wake.notify_one();
    Ok((StatusCode::OK, Json(info)).into_response())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| ApiError::bad(format!("header `{name}` must be ASCII"))),
    }
}

/// Decode the push body per `Content-Encoding`, refusing more than `limit` decoded bytes.
fn decode_body(encoding: Option<&str>, raw: Bytes, limit: usize) -> ApiResult<Bytes> {
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("identity") => Ok(raw),
        Some("zstd") => {
            use std::io::Read;
            let bad_zstd = |e: std::io::Error| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedEncoding,
                    format!("bad zstd body: {e}"),
                )
            };
            let mut decoder = zstd::stream::read::Decoder::new(&raw[..]).map_err(bad_zstd)?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(bad_zstd)?;
            let mut out = Vec::new();
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(bad_zstd)?;
            if out.len() > limit {
                return Err(ApiError::too_large(format!(
                    "decoded body exceeds {limit} bytes; push in smaller pieces"
                )));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedEncoding,
            format!("Content-Encoding `{other}` is not supported; use zstd or none"),
        )),
    }
}

async fn push(
    State(st): St,
    Auth(acct): Auth,
    StreamPath { id, name }: StreamPath,
    headers: HeaderMap,
    push_body: PushBody,
) -> ApiResult<Response> {
    let offset = parse_num(HEADER_OFFSET, header_str(&headers, HEADER_OFFSET)?)?
        .ok_or_else(|| ApiError::bad(format!("header `{HEADER_OFFSET}` is required")))?;
    let prefix = match header_str(&headers, HEADER_PREFIX_SHA256)? {
        Some(h) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).map_err(|_| {
                ApiError::bad(format!(
                    "header `{HEADER_PREFIX_SHA256}` must be 64 hex digits"
                ))
            })?;
            out
        }
        None if offset == 0 => crate::hash::RunningSha256::new().digest(),
        None => {
            return Err(ApiError::bad(format!(
                "header `{HEADER_PREFIX_SHA256}` is required when `{HEADER_OFFSET}` is not 0"
            )));
        }
    };
    let encoding = header_str(&headers, header::CONTENT_ENCODING.as_str())?.map(str::to_string);
    let raw = push_body.bytes;
    let limit = st.limits.max_append;
    let data = if encoding.is_some() {
        tokio::task::spawn_blocking(move || decode_body(encoding.as_deref(), raw, limit))
            .await
            .map_err(|e| ApiError::from(StorageError::Internal(e.to_string())))??
    } else {
        raw
    };
    let data = screen_secrets(&st, acct.id, &id, data).await?;
    let result = st
        .storage
        .append(acct.id, &id, &name, offset, prefix, data)
        .await?;
    if name == MAIN_STREAM {
        st.index_wake.notify_one();
    }
    Ok(Json(result).into_response())
}

/// What the API shows of stored text: every secret the rules still find
/// replaced by a placeholder nobody can open (`‹secret:RULE:›`). Pushes from
/// clients that redact hold none; this covers the sessions the server
/// mirrors from its own machine and those stored under `--secrets accept`,
/// so the web UI, search results and share links never show a value.
struct Shown(baton_secrets::Redactor);

impl Shown {
    fn new() -> Self {
        Shown(baton_secrets::Redactor::one_way())
    }

    /// `text` as shown (a text the redactor cannot judge is withheld).
    fn text(&self, text: &mut String) {
        *text = self
            .0
            .redact_text(text)
            .unwrap_or_else(|_| "‹secret›".to_owned());
    }

    /// The title and first prompt of `session` as shown.
    fn session(&self, session: &mut baton_protocol::SessionInfo) {
        for field in [&mut session.title, &mut session.first_prompt] {
            if let Some(text) = field.as_mut() {
                self.text(text);
            }
        }
    }
}

/// Apply the server's [`SecretPolicy`] to pushed `data` of session `id`.
/// Encrypted sessions are ciphertext and pass; so does anything when no
/// secret is found.
async fn screen_secrets(st: &AppState, user: i64, id: &str, data: Bytes) -> ApiResult<Bytes> {
    if st.secrets == SecretPolicy::Accept {
        return Ok(data);
    }
    let (data, findings) = tokio::task::spawn_blocking(move || {
        let found = baton_secrets::find_secrets(&data, &Default::default());
        (data, found)
    })
    .await
    .map_err(|e| ApiError::from(StorageError::Internal(e.to_string())))?;
    if findings.is_empty() || st.storage.session(user, id).await?.encrypted {
        return Ok(data);
    }
    let rules = baton_secrets::RuleSet::builtin().rules();
    let mut names: Vec<&str> = findings.iter().map(|f| rules[f.rule].id.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    tracing::warn!(
        session = id,
        secrets = findings.len(),
        rules = names.join(","),
        "push holds secrets"
    );
    match st.secrets {
        SecretPolicy::Redact => {
            let red = baton_secrets::Redactor::one_way()
                .redact(&data)
                .map_err(|e| ApiError::from(StorageError::Internal(e.to_string())))?;
            Ok(Bytes::from(red.bytes))
        }
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::SecretFound,
            format!(
                "this server refuses secrets and the pushed bytes hold {} ({}); push with a client that redacts them (`baton push` does unless --no-redact), or ask the admin to run `baton serve --secrets redact`",
                findings.len(),
                names.join(", ")
            ),
        )),
    }
}

fn accepts_zstd(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("zstd") && !q_zero
        })
}

async fn pull(
    State(st): St,
    Auth(acct): Auth,
    StreamPath { id, name }: StreamPath,
    Params(q): Params<FromParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let from = parse_num("from", q.from.as_deref())?.unwrap_or(0);
    let read = st
        .storage
        .read(acct.id, &id, &name, from)
        .await
        .map_err(|e| match e {
            StorageError::OffsetAhead { len } => ApiError(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorBody {
                    error: ErrorCode::OffsetAhead,
                    message: format!("the stream has only {len} bytes"),
                    len: Some(len),
                    sha256: None,
                },
            ),
            other => other.into(),
        })?;
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(HEADER_LENGTH, read.len.to_string())
        .header(HEADER_SHA256, read.sha256.clone())
        .header(header::VARY, HeaderValue::from_static("accept-encoding"));
    let body = if accepts_zstd(&headers) {
        builder = builder.header(header::CONTENT_ENCODING, "zstd");
        Body::from_stream(zstd_stream(read.body))
    } else {
        Body::from_stream(read.body.map(|r| r.map_err(std::io::Error::other)))
    };
    builder
        .body(body)
        .map_err(|e| ApiError::from(StorageError::Internal(e.to_string())))
}

async fn search(
    State(st): St,
    Auth(acct): Auth,
    Params(p): Params<SearchParams>,
) -> ApiResult<Response> {
    let limit = parse_limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let hits = st
        .storage
        .search(acct.id, p.q.as_deref().unwrap_or(""), limit)
        .await?;
    let mut hits = hits;
    let shown = Shown::new();
    for hit in &mut hits {
        shown.session(&mut hit.session);
        shown.text(&mut hit.snippet);
    }
    Ok(Json(SearchResults { hits }).into_response())
}

async fn changes(
    State(st): St,
    Auth(acct): Auth,
    Params(p): Params<ChangesParams>,
) -> ApiResult<Response> {
    let since = parse_num("since", p.since.as_deref())?.unwrap_or(0);
    let limit = parse_limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    Ok(Json(st.storage.changes(acct.id, since, limit).await?).into_response())
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::OPENAPI_JSON,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database and the blob store answer; 503 with
/// `Retry-After` otherwise (a load balancer then sends requests elsewhere).
async fn readyz(State(st): St) -> ApiResult<&'static str> {
    st.storage.ready().await?;
    Ok("ready")
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such route; see /api/v1/openapi.json",
    )
}

/// Longest accepted request target (path and query), in bytes.
pub const MAX_URI: usize = 8 * 1024;

/// Reject targets longer than [`MAX_URI`], and paths with `.`/`..` segments
/// (also percent-encoded) or backslashes, before routing.
async fn reject_traversal(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::TooLarge,
            format!("the request target exceeds {MAX_URI} bytes; shorten the query"),
        )
        .into_response();
    }
    let path = req.uri().path();
    let bad = path.contains('\\')
        || path.to_ascii_lowercase().contains("%5c")
        || path.split('/').any(|seg| {
            let lower = seg.to_ascii_lowercase().replace("%2e", ".");
            lower == "." || lower == ".."
        });
    if bad {
        return ApiError::bad("path segments must not be `.`, `..` or contain backslashes")
            .into_response();
    }
    next.run(req).await
}

/// Answer every error as an [`ErrorBody`]: a response that leaves the
/// router with an error status and no JSON body (the router's 405, a
/// rejection) gets one, keeping its other headers (`Allow`, `Retry-After`).
async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let res = next.run(req).await;
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let (fresh, body) = ApiError::for_status(status, &method)
        .into_response()
        .into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(fresh.headers);
    Response::from_parts(parts, body)
}

async fn web_file(uri: axum::http::Uri) -> Response {
    let (mime, bytes) = crate::web::asset(uri.path());
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CONTENT_SECURITY_POLICY, crate::web::CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

/// Build the router for a state.
pub fn router(state: Arc<AppState>) -> Router {
    use axum::routing::{delete, get as g, post, put};
    let api = Router::new()
        .route("/me", g(me))
        .route("/sessions", g(list))
        .route("/sessions/{id}", g(get_session).merge(put(put_session)))
        .route("/sessions/{id}/messages", g(messages))
        .route("/sessions/{id}/checkpoints", g(checkpoints))
        .route("/sessions/{id}/fork", post(fork))
        .route("/sessions/{id}/fork-at", post(fork_at))
        .route(
            "/sessions/{id}/shares",
            g(list_shares).merge(post(create_share)),
        )
        .route("/sessions/{id}/shares/{share}", delete(revoke_share))
        .route("/shared/{token}/messages", g(shared_messages))
        .route("/facets", g(facets))
        .route("/stats", g(stats))
        .route("/sessions/{id}/streams/{*name}", g(pull).merge(post(push)))
        .route("/search", g(search))
        .route("/changes", g(changes))
        .route("/openapi.json", g(openapi))
        .fallback(not_found);
    let mut app = Router::new()
        .nest(protocol::API_PREFIX, api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/assets/app.js", get(web_file))
        .route("/assets/app.css", get(web_file));
    for page in crate::web::PAGE_ROUTES {
        app = app.route(page, get(web_file));
    }
    app.fallback(not_found)
        .layer(axum::middleware::from_fn(reject_traversal))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            )
            .into_response()
        }))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_storage_is_503_unavailable_with_retry_after() {
        let res =
            ApiError::from(StorageError::Unavailable("connection refused".into())).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error, ErrorCode::Unavailable);
        assert!(
            !body.message.contains("connection refused"),
            "{}",
            body.message
        );
    }
}
