//! Capture proxy: a loopback HTTP proxy that forwards an agent's model traffic
//! to the real upstream and tees every exchange into the session directory.
//!
//! The agent is pointed at [`CaptureProxy::base_url`]; each request is
//! forwarded to the upstream origin with the same path and query, and the
//! response is streamed back chunk by chunk as it arrives (SSE is never
//! buffered). A copy of the request and the response is assembled on the side
//! and, once the response ends, appended as one [`CapturedExchange`] line to
//! the [`SessionDir`]'s `raw_api.jsonl`.
//!
//! The session is the one named by the request's session header
//! ([`SESSION_HEADERS`]); requests without one go to the [`UNATTRIBUTED`]
//! directory. Credentials never reach the disk: header values whose name looks
//! secret ([`is_secret_header`]) and matching query parameters are replaced by
//! [`REDACTED`] before anything is written or logged.
//!
//! WebSocket upgrade requests (Codex tries the Responses WebSocket transport on
//! the built-in OpenAI provider) are answered `426 Upgrade Required`, which
//! makes the agent fall back to HTTPS + SSE at once, so every turn is captured.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::error::RecordError;
use crate::session_dir::{CapturedExchange, REDACTED};
use crate::session_dir::{MetaKind, MetaRecord, RawApiRecord, SessionDir};
use crate::types::now_timestamp;

/// Session directory name for traffic that carries no session header.
pub const UNATTRIBUTED: &str = "unattributed";

/// Request headers that name the agent session, in order of preference:
/// Codex 0.169 `session-id`, Codex 0.58 `session_id`, Claude Code
/// `x-claude-code-session-id`.
pub const SESSION_HEADERS: [&str; 3] = ["session-id", "session_id", "x-claude-code-session-id"];

/// How long [`CaptureProxy::shutdown`] waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Response headers not passed back to the agent (hop-by-hop, RFC 9110 §7.6.1).
const RESPONSE_HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "trailer",
    "upgrade",
];

/// Request headers not forwarded upstream: hop-by-hop ones, ones the client
/// recomputes, and `accept-encoding` (so the capture copy is plain text).
const REQUEST_DROPPED: [&str; 10] = [
    "accept-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
];

/// Everything that can stop the capture proxy.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The upstream URL is not an absolute `http` or `https` URL.
    #[error(
        "invalid upstream URL {url:?}: {reason}; pass an absolute http(s) URL such as https://api.openai.com/v1"
    )]
    BadUpstream {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The loopback listener could not be opened.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Writing captured traffic failed; the first failure is reported.
    #[error("cannot save captured traffic: {0}")]
    Write(#[source] RecordError),
    /// The background writer task stopped unexpectedly.
    #[error("the capture writer stopped unexpectedly")]
    WriterGone,
}

/// Counts reported by [`CaptureProxy::shutdown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// Exchanges written to `raw_api.jsonl` files.
    pub exchanges: usize,
    /// Session directories written to (including [`UNATTRIBUTED`]), in first-use order.
    pub sessions: Vec<String>,
}

/// Called with each session directory the moment the proxy first opens it,
/// before its first exchange is written (attach a [`crate::SessionLogRouter`],
/// link a transcript, ...).
pub type SessionHook = Arc<dyn Fn(&SessionDir) + Send + Sync>;

/// Settings of a [`CaptureProxy`].
#[derive(Clone)]
pub struct CaptureConfig {
    /// Where the agent's requests go, e.g. `https://api.openai.com/v1`.
    pub upstream: String,
    /// baton data directory; captures go to `<data_dir>/sessions/<id>/`.
    pub data_dir: PathBuf,
    /// Told about every session directory as it opens.
    pub on_session: Option<SessionHook>,
}

impl std::fmt::Debug for CaptureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureConfig")
            .field("upstream", &self.upstream)
            .field("data_dir", &self.data_dir)
            .field("on_session", &self.on_session.is_some())
            .finish()
    }
}

impl CaptureConfig {
    /// Forward to `upstream`, capture under `data_dir`, report no sessions.
    pub fn new(upstream: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        CaptureConfig {
            upstream: upstream.into(),
            data_dir: data_dir.into(),
            on_session: None,
        }
    }
}

/// A running capture proxy on `127.0.0.1`.
#[derive(Debug)]
pub struct CaptureProxy {
    addr: SocketAddr,
    base_path: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<Result<CaptureSummary, CaptureError>>,
}

impl CaptureProxy {
    /// Bind a loopback port and start forwarding to `config.upstream`.
    pub async fn start(config: CaptureConfig) -> Result<Self, CaptureError> {
        let upstream = parse_upstream(&config.upstream)?;
        let base_path = upstream.path().trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(CaptureError::Client)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(CaptureError::Bind)?;
        let addr = listener.local_addr().map_err(CaptureError::Bind)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(config.data_dir, config.on_session, receiver));
        let state = Arc::new(ProxyState {
            client,
            origin: origin_of(&upstream),
            writer: sender,
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(err) = served {
                tracing::warn!("capture proxy stopped: {err}");
            }
        });
        Ok(Self {
            addr,
            base_path,
            shutdown: Some(tx),
            server,
            writer,
        })
    }

    /// The loopback address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give the agent instead of the upstream: the proxy origin
    /// plus the upstream's path (so `https://api.openai.com/v1` becomes
    /// `http://127.0.0.1:PORT/v1`). No trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.base_path)
    }

    /// Stop accepting requests, let open exchanges finish (up to a few
    /// seconds), then write and flush every captured exchange.
    pub async fn shutdown(mut self) -> Result<CaptureSummary, CaptureError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server)
            .await
            .is_err()
        {
            // Dropping the connections drops their taps, which still record
            // what arrived.
            self.server.abort();
            let _ = (&mut self.server).await;
        }
        // The server (and with it every sender) is gone: the writer drains and ends.
        self.writer.await.map_err(|_| CaptureError::WriterGone)?
    }
}

/// Shared by every request handler.
struct ProxyState {
    client: reqwest::Client,
    /// `scheme://host[:port]` of the upstream, without path.
    origin: String,
    writer: mpsc::UnboundedSender<CapturedExchange>,
}

fn parse_upstream(raw: &str) -> Result<reqwest::Url, CaptureError> {
    let bad = |reason: &str| CaptureError::BadUpstream {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let url = reqwest::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(bad("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not carry a query or fragment"));
    }
    Ok(url)
}

fn origin_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// True for header names whose values are credentials and must never be
/// stored: `authorization`, `proxy-authorization`, `x-api-key`, `cookie`,
/// `set-cookie`, and any name containing `key`, `token`, `secret`, `auth`
/// or `password`.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["key", "token", "secret", "auth", "cookie", "password"]
        .iter()
        .any(|s| name.contains(s))
}

/// Headers as a JSON object with secret values replaced by [`REDACTED`].
pub fn redact_headers(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        let shown = if is_secret_header(name.as_str()) {
            REDACTED.to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        match out.get_mut(name.as_str()) {
            Some(Value::String(prev)) if prev != REDACTED => {
                prev.push_str(", ");
                prev.push_str(&shown);
            }
            Some(_) => {}
            None => {
                out.insert(name.as_str().to_string(), Value::String(shown));
            }
        }
    }
    out
}

/// `path?query` with the values of secret-looking query parameters replaced
/// by [`REDACTED`] (same name rule as [`is_secret_header`]).
pub fn redact_path(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_header(name) => format!("{name}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// The session a request belongs to, from its session header, when the value
/// is usable as a directory name (`[A-Za-z0-9._-]`, 1–128 characters, not
/// `.`, `..` or [`UNATTRIBUTED`]).
pub fn session_of(headers: &HeaderMap) -> Option<String> {
    SESSION_HEADERS.iter().find_map(|name| {
        let value = headers.get(*name)?.to_str().ok()?.trim();
        is_safe_dir_name(value).then(|| value.to_string())
    })
}

fn is_safe_dir_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value != "."
        && value != ".."
        && value != UNATTRIBUTED
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A body as JSON when it parses, else its (lossy) text; `null` when empty.
fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The capture copy of a request body: `content-encoding: zstd` (Codex
/// compresses some requests) is decoded; the upstream gets the bytes as sent.
fn decoded_request_body(headers: &HeaderMap, body: &Bytes) -> Value {
    let zstd = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("zstd"));
    if zstd && let Ok(plain) = zstd::decode_all(body.as_ref()) {
        return body_value(&plain);
    }
    body_value(body)
}

fn millis(since: Instant) -> f64 {
    (since.elapsed().as_micros() as f64) / 1000.0
}

fn plain_response(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(message.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The proxy handler: forward, stream back, capture.
async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let started = Instant::now();
    let timestamp = now_timestamp();
    let (parts, body) = request.into_parts();
    if parts.headers.contains_key("upgrade") {
        tracing::debug!(path = %parts.uri.path(), "refused a protocol upgrade; the agent falls back to HTTP");
        return plain_response(
            StatusCode::UPGRADE_REQUIRED,
            "baton capture proxy: use HTTP requests, not WebSocket",
        );
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let url = format!("{}{}", state.origin, path_and_query);
    let shown_path = redact_path(&path_and_query);
    let mut exchange = CapturedExchange {
        record: RawApiRecord {
            timestamp,
            method: parts.method.to_string(),
            url: format!("{}{}", state.origin, shown_path),
            status: None,
            request_body: Value::Null,
            response_body: Value::Null,
            duration_ms: 0,
        },
        id: uuid::Uuid::now_v7().to_string(),
        session_id: session_of(&parts.headers),
        path: shown_path,
        request_headers: redact_headers(&parts.headers),
        response_headers: None,
        complete: false,
        headers_ms: None,
        ttfb_ms: None,
        total_ms: 0.0,
        error: None,
    };
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(err) => {
            let message = format!("reading the request body from the agent failed: {err}");
            return fail(&state, exchange, started, StatusCode::BAD_REQUEST, message);
        }
    };
    exchange.record.request_body = decoded_request_body(&parts.headers, &body);

    let mut upstream_request = state.client.request(parts.method.clone(), &url).body(body);
    for (name, value) in &parts.headers {
        if !REQUEST_DROPPED.contains(&name.as_str()) {
            upstream_request = upstream_request.header(name, value);
        }
    }
    let upstream = match upstream_request.send().await {
        Ok(response) => response,
        Err(err) => {
            let message = format!(
                "upstream {} unreachable: {}",
                state.origin,
                error_chain(&err)
            );
            return fail(&state, exchange, started, StatusCode::BAD_GATEWAY, message);
        }
    };
    exchange.headers_ms = Some(millis(started));
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let sse = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    exchange.record.status = Some(status.as_u16());
    exchange.response_headers = Some(redact_headers(&headers));
    let tap = Tap {
        exchange: Some(exchange),
        started,
        expected_len: upstream.content_length(),
        buffer: Vec::new(),
        sse,
        complete: false,
        error: None,
        writer: state.writer.clone(),
    };
    let mut response = Response::new(Body::from_stream(tee(upstream.bytes_stream(), tap)));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !RESPONSE_HOP_BY_HOP.contains(&name.as_str()) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// Record an exchange that got no upstream response and answer the agent.
fn fail(
    state: &ProxyState,
    mut exchange: CapturedExchange,
    started: Instant,
    status: StatusCode,
    message: String,
) -> Response {
    match &exchange.session_id {
        Some(id) => tracing::warn!(session_id = %id, "{message}"),
        None => tracing::warn!("{message}"),
    }
    exchange.total_ms = millis(started);
    exchange.record.duration_ms = exchange.total_ms as u64;
    exchange.error = Some(message.clone());
    let _ = state.writer.send(exchange);
    plain_response(status, &format!("baton capture proxy: {message}"))
}

/// An error and its sources on one line (reqwest hides the cause otherwise).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Pass `upstream` through unchanged while copying every chunk into `tap`;
/// the tap records the exchange when the stream ends or is dropped (the agent
/// went away). After an upstream error the stream ends.
fn tee<S>(upstream: S, tap: Tap) -> impl Stream<Item = Result<Bytes, reqwest::Error>> + Send
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let upstream = Box::pin(upstream);
    futures::stream::unfold(
        (upstream, tap, false),
        |(mut upstream, mut tap, failed)| async move {
            if failed {
                return None;
            }
            match upstream.next().await {
                Some(Ok(chunk)) => {
                    tap.push(&chunk);
                    Some((Ok(chunk), (upstream, tap, false)))
                }
                Some(Err(err)) => {
                    tap.error = Some(format!("upstream stream failed: {}", error_chain(&err)));
                    Some((Err(err), (upstream, tap, true)))
                }
                None => {
                    tap.finish();
                    None
                }
            }
        },
    )
}

/// The capture side of one streaming response.
struct Tap {
    exchange: Option<CapturedExchange>,
    started: Instant,
    /// The upstream's `content-length`: once that many bytes went through,
    /// the server may stop polling before seeing the end of the stream.
    expected_len: Option<u64>,
    buffer: Vec<u8>,
    sse: bool,
    complete: bool,
    error: Option<String>,
    writer: mpsc::UnboundedSender<CapturedExchange>,
}

impl Tap {
    fn push(&mut self, chunk: &[u8]) {
        if let Some(exchange) = self.exchange.as_mut()
            && exchange.ttfb_ms.is_none()
            && !chunk.is_empty()
        {
            exchange.ttfb_ms = Some(millis(self.started));
        }
        self.buffer.extend_from_slice(chunk);
    }

    /// The upstream body ended normally; the exchange is recorded on drop.
    fn finish(&mut self) {
        self.complete = self.error.is_none();
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let Some(mut exchange) = self.exchange.take() else {
            return;
        };
        exchange.total_ms = millis(self.started);
        exchange.record.duration_ms = exchange.total_ms as u64;
        let buffer = std::mem::take(&mut self.buffer);
        if self.error.is_none() && self.expected_len == Some(buffer.len() as u64) {
            self.complete = true;
        }
        exchange.record.response_body = if self.sse {
            Value::String(String::from_utf8_lossy(&buffer).into_owned())
        } else {
            body_value(&buffer)
        };
        exchange.complete = self.complete;
        exchange.error = self.error.take().or_else(|| {
            (!self.complete)
                .then(|| "the agent closed the connection before the response ended".to_string())
        });
        let _ = self.writer.send(exchange);
    }
}

/// Append every captured exchange to its session directory until all senders
/// are gone, then flush. An exchange without a response also gets an `error`
/// line in `meta.jsonl`. The first write failure is returned (for the caller
/// to report once); later exchanges that cannot be saved are dropped quietly.
async fn write_loop(
    data_dir: PathBuf,
    on_session: Option<SessionHook>,
    mut receiver: mpsc::UnboundedReceiver<CapturedExchange>,
) -> Result<CaptureSummary, CaptureError> {
    let mut dirs: HashMap<String, SessionDir> = HashMap::new();
    let mut summary = CaptureSummary::default();
    let mut first_error: Option<RecordError> = None;
    let mut note_error = |key: &str, err: RecordError| {
        if first_error.is_none() {
            // Debug only: `shutdown` returns the error for the caller to report once.
            tracing::debug!("cannot record traffic of session {key}: {err}");
            first_error = Some(err);
        }
    };
    while let Some(exchange) = receiver.recv().await {
        let key = exchange
            .session_id
            .clone()
            .unwrap_or_else(|| UNATTRIBUTED.to_string());
        let dir = match dirs.get(&key) {
            Some(dir) => dir.clone(),
            None => match SessionDir::open(&data_dir, &key) {
                Ok(dir) => {
                    dirs.insert(key.clone(), dir.clone());
                    summary.sessions.push(key.clone());
                    if let Some(hook) = &on_session {
                        hook(&dir);
                    }
                    dir
                }
                Err(err) => {
                    note_error(&key, err);
                    continue;
                }
            },
        };
        let mut result = dir.raw_api().append_json(&exchange).await;
        if result.is_ok() && exchange.record.status.is_none() {
            let event = MetaRecord {
                timestamp: now_timestamp(),
                kind: MetaKind::Error,
                detail: serde_json::json!({
                    "source": "capture_proxy",
                    "exchange_id": exchange.id,
                    "url": exchange.record.url,
                    "message": exchange.error,
                }),
            };
            result = dir.append_meta(&event).await;
        }
        match result {
            Ok(()) => {
                summary.exchanges += 1;
                tracing::info!(
                    session_id = %key,
                    status = exchange.record.status,
                    total_ms = exchange.total_ms,
                    "captured {} {}",
                    exchange.record.method,
                    exchange.path
                );
            }
            Err(err) => note_error(&key, err),
        }
    }
    for (key, dir) in &dirs {
        if let Err(err) = dir.flush().await {
            note_error(key, err);
        }
    }
    match first_error {
        Some(err) => Err(CaptureError::Write(err)),
        None => Ok(summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_dir::{META_FILE, RAW_API_FILE};
    use axum::http::HeaderName;
    use axum::routing::post;
    use std::path::Path;
    use std::sync::Mutex;

    const SECRET: &str = "sk-capture-unit-SECRET-7f3a";

    fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn secrets_are_redacted_and_other_headers_kept() {
        let map = header_map(&[
            ("authorization", "Bearer x"),
            ("x-api-key", "k"),
            ("cookie", "a=b"),
            ("x-goog-api-key", "k"),
            ("openai-organization-token", "t"),
            ("x-client-secret", "s"),
            ("accept", "text/event-stream"),
            ("x-dup", "1"),
            ("x-dup", "2"),
        ]);
        let shown = redact_headers(&map);
        for name in [
            "authorization",
            "x-api-key",
            "cookie",
            "x-goog-api-key",
            "openai-organization-token",
            "x-client-secret",
        ] {
            assert_eq!(shown[name], REDACTED, "{name}");
        }
        assert_eq!(shown["accept"], "text/event-stream");
        assert_eq!(shown["x-dup"], "1, 2");
        assert_eq!(
            redact_path("/v1/models?key=abc&alt=sse&access_token=t"),
            "/v1/models?key=[REDACTED]&alt=sse&access_token=[REDACTED]"
        );
        assert_eq!(
            redact_path("/v1/messages?beta=true"),
            "/v1/messages?beta=true"
        );
    }

    #[test]
    fn session_headers_attribute_traffic_safely() {
        assert_eq!(
            session_of(&header_map(&[("session-id", "019a-ab")])).as_deref(),
            Some("019a-ab")
        );
        assert_eq!(
            session_of(&header_map(&[("session_id", "legacy")])).as_deref(),
            Some("legacy")
        );
        assert_eq!(
            session_of(&header_map(&[("X-Claude-Code-Session-Id", "c1")])).as_deref(),
            Some("c1")
        );
        assert_eq!(session_of(&header_map(&[("session-id", "../etc")])), None);
        assert_eq!(session_of(&header_map(&[("session-id", "..")])), None);
        assert_eq!(
            session_of(&header_map(&[("session-id", UNATTRIBUTED)])),
            None
        );
        assert_eq!(session_of(&HeaderMap::new()), None);
    }

    #[test]
    fn upstream_url_must_be_absolute_http() {
        assert!(parse_upstream("https://api.openai.com/v1").is_ok());
        assert!(parse_upstream("api.openai.com").is_err());
        assert!(parse_upstream("ftp://x/").is_err());
        assert!(parse_upstream("http://x/v1?a=b").is_err());
    }

    /// An upstream streaming three SSE events; the second waits for `gate`.
    async fn sse_upstream(
        gate: Arc<tokio::sync::Notify>,
        seen: Arc<Mutex<Vec<HeaderMap>>>,
    ) -> SocketAddr {
        let app = axum::Router::new().route(
            "/v1/responses",
            post(move |headers: HeaderMap, body: Bytes| {
                let gate = gate.clone();
                seen.lock().unwrap().push(headers);
                async move {
                    assert!(serde_json::from_slice::<Value>(&body).is_ok());
                    let events = futures::stream::unfold(0u8, move |i| {
                        let gate = gate.clone();
                        async move {
                            if i == 1 {
                                gate.notified().await;
                            }
                            (i < 3).then(|| {
                                let chunk = format!("event: e{i}\ndata: {{\"n\":{i}}}\n\n");
                                (Ok::<_, std::io::Error>(Bytes::from(chunk)), i + 1)
                            })
                        }
                    });
                    let mut response = Response::new(Body::from_stream(events));
                    response.headers_mut().insert(
                        "content-type",
                        HeaderValue::from_static("text/event-stream"),
                    );
                    response
                        .headers_mut()
                        .insert("set-cookie", HeaderValue::from_static("sid=SECRETCOOKIE"));
                    response
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn read_lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn all_text(dir: &Path) -> String {
        let mut text = String::new();
        for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
            if entry.file_type().is_file() {
                text.push_str(&String::from_utf8_lossy(
                    &std::fs::read(entry.path()).unwrap(),
                ));
            }
        }
        text
    }

    #[tokio::test]
    async fn capture_streams_sse_through_and_records_the_exchange() {
        let gate = Arc::new(tokio::sync::Notify::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let upstream = sse_upstream(gate.clone(), seen.clone()).await;
        let data = tempfile::tempdir().unwrap();
        let opened = Arc::new(Mutex::new(Vec::new()));
        let seen_dirs = opened.clone();
        let hook: SessionHook = Arc::new(move |dir: &SessionDir| {
            seen_dirs.lock().unwrap().push(dir.id().to_string());
        });
        let proxy = CaptureProxy::start(CaptureConfig {
            on_session: Some(hook),
            ..CaptureConfig::new(format!("http://{upstream}/v1"), data.path())
        })
        .await
        .unwrap();
        assert!(proxy.base_url().ends_with("/v1"));
        let client = reqwest::Client::new();
        let mut response = client
            .post(format!("{}/responses", proxy.base_url()))
            .header("session-id", "sess-1")
            .header("authorization", format!("Bearer {SECRET}"))
            .header("x-api-key", SECRET)
            .header("accept-encoding", "gzip")
            .json(&serde_json::json!({"model": "m", "stream": true, "input": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        // The first event arrives while the upstream is still holding the rest:
        // the proxy does not buffer the stream.
        let first = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("first SSE chunk was held back by the proxy")
            .unwrap()
            .unwrap();
        assert_eq!(first, "event: e0\ndata: {\"n\":0}\n\n");
        gate.notify_one();
        let mut rest = Vec::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            rest.extend_from_slice(&chunk);
        }
        assert_eq!(
            String::from_utf8(rest).unwrap(),
            "event: e1\ndata: {\"n\":1}\n\nevent: e2\ndata: {\"n\":2}\n\n"
        );
        // Credentials reach the upstream untouched; accept-encoding is dropped.
        {
            let seen = seen.lock().unwrap();
            assert_eq!(
                seen[0]["authorization"],
                format!("Bearer {SECRET}").as_str()
            );
            assert!(!seen[0].contains_key("accept-encoding"));
        }

        let summary = proxy.shutdown().await.unwrap();
        assert_eq!(summary.exchanges, 1);
        assert_eq!(summary.sessions, vec!["sess-1".to_string()]);
        // The session directory was reported once, when it was opened.
        assert_eq!(*opened.lock().unwrap(), vec!["sess-1".to_string()]);
        let lines = read_lines(&data.path().join("sessions/sess-1").join(RAW_API_FILE));
        assert_eq!(lines.len(), 1);
        // Readers of the plain `RawApiRecord` read the line too.
        let plain: RawApiRecord = serde_json::from_value(lines[0].clone()).unwrap();
        assert_eq!(plain.url, format!("http://{upstream}/v1/responses"));
        let exchange: CapturedExchange = serde_json::from_value(lines[0].clone()).unwrap();
        assert_eq!(exchange.record, plain);
        assert_eq!(exchange.session_id.as_deref(), Some("sess-1"));
        assert_eq!(exchange.record.method, "POST");
        assert_eq!(exchange.path, "/v1/responses");
        assert_eq!(exchange.record.request_body["model"], "m");
        assert_eq!(exchange.request_headers["authorization"], REDACTED);
        assert_eq!(exchange.request_headers["x-api-key"], REDACTED);
        assert_eq!(exchange.request_headers["session-id"], "sess-1");
        assert_eq!(exchange.record.status, Some(200));
        assert!(exchange.complete);
        assert_eq!(
            exchange.response_headers.as_ref().unwrap()["set-cookie"],
            REDACTED
        );
        assert_eq!(
            exchange.record.response_body,
            "event: e0\ndata: {\"n\":0}\n\nevent: e1\ndata: {\"n\":1}\n\nevent: e2\ndata: {\"n\":2}\n\n"
        );
        let (headers_ms, ttfb_ms) = (exchange.headers_ms.unwrap(), exchange.ttfb_ms.unwrap());
        assert!(
            headers_ms <= ttfb_ms && ttfb_ms <= exchange.total_ms,
            "{exchange:?}"
        );
        assert!(exchange.error.is_none());
        let text = all_text(data.path());
        assert!(!text.contains(SECRET) && !text.contains("SECRETCOOKIE"));
    }

    #[tokio::test]
    async fn websocket_is_refused_and_dead_upstream_is_logged() {
        // Bind then drop a listener: a port with nothing behind it.
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let proxy = CaptureProxy::start(CaptureConfig::new(format!("http://{dead}"), data.path()))
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let ws = client
            .get(format!("{}/v1/responses", proxy.base_url()))
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .send()
            .await
            .unwrap();
        assert_eq!(ws.status(), 426);
        let failed = client
            .post(format!("{}/v1/messages?beta=true", proxy.base_url()))
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), 502);
        let summary = proxy.shutdown().await.unwrap();
        assert_eq!(summary.exchanges, 1);
        let dir = data.path().join("sessions").join(UNATTRIBUTED);
        let raw = read_lines(&dir.join(RAW_API_FILE));
        assert_eq!(raw.len(), 1);
        assert_eq!(raw[0]["request_body"], "not json");
        assert_eq!(raw[0]["path"], "/v1/messages?beta=true");
        assert!(raw[0].get("status").is_none());
        assert!(raw[0]["error"].as_str().unwrap().contains("unreachable"));
        let meta = read_lines(&dir.join(META_FILE));
        assert_eq!(meta.len(), 1);
        assert_eq!(meta[0]["kind"], "error");
        assert_eq!(meta[0]["detail"]["exchange_id"], raw[0]["id"]);
    }
}
