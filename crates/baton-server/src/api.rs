//! HTTP routes: the `/api/v1` sync API, `/healthz` and the embedded web UI.
//!
//! Semantics of every route are documented in [`baton_protocol`]; the
//! OpenAPI description is served at `/api/v1/openapi.json`.

use crate::index;
use crate::storage::{Account, ListQuery, Storage, StorageError};
use axum::body::Body;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_protocol::{
    self as protocol, DEFAULT_LIMIT, DEFAULT_MESSAGES_LIMIT, ErrorBody, ErrorCode, ForkRequest,
    HEADER_LENGTH, HEADER_OFFSET, HEADER_PREFIX_SHA256, HEADER_SHA256, MAIN_STREAM, MAX_LIMIT,
    MAX_MESSAGES_LIMIT, MessageList, SearchResults, SessionMeta, WhoAmI,
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

/// Shared state of every handler.
pub struct AppState {
    /// The persistence backend.
    pub storage: Arc<dyn Storage>,
    /// Body size limits.
    pub limits: Limits,
    /// Woken after every plaintext append so the indexer catches up.
    pub index_wake: Arc<Notify>,
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

fn body(b: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                "request body too large; push in smaller pieces",
            )
        } else {
            ApiError::bad(e.body_text())
        }
    })
}

/// A JSON request body, with errors answered as [`ApiError`]s.
struct JsonBody<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body(Bytes::from_request(req, state).await)?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
    }
}

/// A push body, read only once the bytes it may take in memory (its
/// `Content-Length`, or the push limit when unknown, plus the push limit
/// again when it must be decoded) are reserved from
/// [`AppState::inflight`]; the reservation is held until the request ends.
struct PushBody {
    bytes: Bytes,
    _reserved: tokio::sync::OwnedSemaphorePermit,
}

impl FromRequest<Arc<AppState>> for PushBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let limits = state.limits;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let encoded = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("identity"));
        // Beyond the push limit the body is refused unread, so it never needs more.
        let raw = declared
            .unwrap_or(limits.max_append)
            .min(limits.max_append + 1);
        let want = raw
            .saturating_add(if encoded { limits.max_append } else { 0 })
            .clamp(1, limits.max_inflight.max(1));
        let permits = u32::try_from(want.div_ceil(INFLIGHT_UNIT)).unwrap_or(u32::MAX);
        let acquire = state.inflight.clone().acquire_many_owned(permits);
        let reserved = match tokio::time::timeout(limits.inflight_wait, acquire).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(ApiError::busy()),
        };
        let bytes = body(Bytes::from_request(req, state).await)?;
        Ok(Self {
            bytes,
            _reserved: reserved,
        })
    }
}

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
    q: Option<String>,
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
            ListQuery {
                cursor: p.cursor,
                limit: parse_limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?,
                q: p.q,
            },
        )
        .await?;
    Ok(Json(list).into_response())
}

async fn get_session(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
) -> ApiResult<Response> {
    Ok(Json(st.storage.session(acct.id, &id).await?).into_response())
}

fn check_optional_id(field: &str, v: &Option<String>) -> ApiResult<()> {
    if let Some(id) = v {
        protocol::validate_session_id(id)
            .map_err(|e| ApiError::bad(format!("`{field}`: {}", e.0)))?;
    }
    Ok(())
}

async fn put_session(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
    JsonBody(meta): JsonBody<SessionMeta>,
) -> ApiResult<Response> {
    check_optional_id("forked_from", &meta.forked_from)?;
    Ok(Json(st.storage.put_session(acct.id, &id, meta).await?).into_response())
}

async fn messages(
    State(st): St,
    Auth(acct): Auth,
    SessionId(id): SessionId,
    Params(params): Params<MessagesParams>,
) -> ApiResult<Response> {
    let offset = parse_num("offset", params.offset.as_deref())?.unwrap_or(0);
    let limit = parse_limit(
        params.limit.as_deref(),
        DEFAULT_MESSAGES_LIMIT,
        MAX_MESSAGES_LIMIT,
    )?;
    let mut session = st.storage.session(acct.id, &id).await?;
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
        acct.id,
        &mut session,
        offset,
        limit as usize,
    )
    .await?;
    let next_offset = page.more.then(|| offset + page.messages.len() as u64);
    Ok(Json(MessageList {
        session,
        encrypted: false,
        messages: page.messages,
        skipped_lines: page.skipped_lines,
        next_offset,
    })
    .into_response())
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
            let decoder = zstd::stream::read::Decoder::new(&raw[..]).map_err(|e| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedEncoding,
                    format!("bad zstd body: {e}"),
                )
            })?;
            let mut out = Vec::new();
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        ErrorCode::UnsupportedEncoding,
                        format!("bad zstd body: {e}"),
                    )
                })?;
            if out.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::TooLarge,
                    format!("decoded body exceeds {limit} bytes; push in smaller pieces"),
                ));
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
    let result = st
        .storage
        .append(acct.id, &id, &name, offset, prefix, data)
        .await?;
    if name == MAIN_STREAM {
        st.index_wake.notify_one();
    }
    Ok(Json(result).into_response())
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

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such route; see /api/v1/openapi.json",
    )
}

/// Reject paths with `.`/`..` segments (also percent-encoded) or backslashes before routing.
async fn reject_traversal(req: Request, next: Next) -> Response {
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

async fn web_file(uri: axum::http::Uri) -> Response {
    match crate::web::asset(uri.path()) {
        Some((mime, bytes)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => not_found().await.into_response(),
    }
}

/// Build the router for a state.
pub fn router(state: Arc<AppState>) -> Router {
    use axum::routing::{get as g, post, put};
    let push_limit = DefaultBodyLimit::max(state.limits.max_append);
    let api = Router::new()
        .route("/me", g(me))
        .route("/sessions", g(list))
        .route("/sessions/{id}", g(get_session).merge(put(put_session)))
        .route("/sessions/{id}/messages", g(messages))
        .route("/sessions/{id}/checkpoints", g(checkpoints))
        .route("/sessions/{id}/fork", post(fork))
        .route(
            "/sessions/{id}/streams/{*name}",
            g(pull).merge(post(push).layer(push_limit)),
        )
        .route("/search", g(search))
        .route("/changes", g(changes))
        .route("/openapi.json", g(openapi))
        .fallback(not_found);
    Router::new()
        .nest(protocol::API_PREFIX, api)
        .route("/healthz", get(healthz))
        .route("/", get(web_file))
        .route("/app.js", get(web_file))
        .route("/style.css", get(web_file))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_json))
        .layer(axum::middleware::from_fn(reject_traversal))
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
