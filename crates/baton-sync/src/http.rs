//! The transport: typed HTTP calls to `baton serve` ([`Client`]), nothing
//! else. Every answer is bounded in size, every wait in time (connect and
//! idle read, [`DEFAULT_TIMEOUT`] or `BATON_HTTP_TIMEOUT`), and every pulled
//! range is checked against the SHA-256 the server announces for it.

use crate::error::{ClientError, io_err};
use baton_protocol::{
    API_PREFIX, AppendResult, Changes, CheckpointList, ErrorBody, ErrorCode, ForkRequest,
    HEADER_LENGTH, HEADER_OFFSET, HEADER_PREFIX_SHA256, HEADER_SHA256, MAX_LIMIT, SessionInfo,
    SessionList, SessionMeta, WhoAmI, validate_session_id, validate_stream_name,
};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Connect and idle-read timeout when `BATON_HTTP_TIMEOUT` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment variable overriding [`DEFAULT_TIMEOUT`], in whole seconds.
pub const TIMEOUT_ENV: &str = "BATON_HTTP_TIMEOUT";

/// The connect and idle-read timeout: `BATON_HTTP_TIMEOUT` seconds when it
/// is a positive number, else [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}
/// Largest JSON answer accepted from the server (a session list page is far
/// smaller).
const MAX_JSON_BODY: usize = 64 << 20;

/// How often a `503 busy` answer is retried before it is reported.
const BUSY_RETRIES: u32 = 5;
/// The longest a `Retry-After` is honoured for.
const MAX_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The wait a `503` asks for: its `Retry-After` seconds (capped at
/// [`MAX_BUSY_WAIT`]), or one second when it names none.
fn retry_after(resp: &reqwest::Response) -> std::time::Duration {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs,
        )
        .min(MAX_BUSY_WAIT)
}
/// How much of an error answer is read for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// The result of one append request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Appended (or recognised as a retry).
    Appended(AppendResult),
    /// The server's bytes differ from the client's prefix or body.
    Diverged {
        /// Server stream length.
        len: u64,
    },
    /// The client's offset is beyond the server's stream length.
    OffsetAhead {
        /// Server stream length.
        len: u64,
    },
}

/// How a stream read ended: the server stream's length and hash at the
/// read (its bytes went to the caller's writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRead {
    /// Stream length at the time of the read.
    pub len: u64,
    /// Hex sha256 of the stream's first `len` bytes.
    pub sha256: String,
}

/// Where a pull starts, and what the bytes before it are.
#[derive(Debug, Clone)]
pub enum Prefix {
    /// The server's first `len` bytes as the caller holds them, already fed
    /// to `hasher` ([`Prefix::start`] reads from 0): the answer is verified
    /// against the announced SHA-256.
    Hashed {
        /// How many bytes `hasher` saw.
        len: u64,
        /// SHA-256 of the server's first `len` bytes, unfinished.
        hasher: Sha256,
    },
    /// Only the offset is known (a sealed stream held decrypted): the
    /// answer's SHA-256 cannot be checked here.
    Unverified(u64),
}

impl Prefix {
    /// Read the whole stream, verified.
    pub fn start() -> Self {
        Prefix::Hashed {
            len: 0,
            hasher: Sha256::new(),
        }
    }

    /// The offset the read starts at.
    pub fn offset(&self) -> u64 {
        match self {
            Prefix::Hashed { len, .. } => *len,
            Prefix::Unverified(n) => *n,
        }
    }
}

/// The writer a stream's decoded bytes pass through on their way to the
/// caller's: counted against `cap`, hashed when the prefix is known.
struct Checked<'w> {
    into: &'w mut (dyn Write + Send),
    hasher: Option<Sha256>,
    written: u64,
    /// The most bytes accepted so far.
    cap: u64,
    /// Set when more than `cap` bytes came.
    over: bool,
    /// Set when the caller's writer failed.
    failed: Option<std::io::Error>,
}

impl Write for Checked<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.cap {
            self.over = true;
            return Err(std::io::Error::other("more bytes than announced"));
        }
        if let Err(e) = self.into.write_all(buf) {
            let kind = e.kind();
            self.failed = Some(e);
            return Err(kind.into());
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(buf);
        }
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A stream's body as it is decoded: as sent, or through zstd.
enum Decoding<'w> {
    Identity(Checked<'w>),
    Zstd(zstd::stream::write::Decoder<'static, Checked<'w>>),
}

impl<'w> Decoding<'w> {
    fn checked(&mut self) -> &mut Checked<'w> {
        match self {
            Decoding::Identity(c) => c,
            Decoding::Zstd(d) => d.get_mut(),
        }
    }

    fn write_all(&mut self, piece: &[u8]) -> std::io::Result<()> {
        match self {
            Decoding::Identity(c) => c.write_all(piece),
            Decoding::Zstd(d) => d.write_all(piece),
        }
    }

    /// Decode what is still buffered.
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Decoding::Identity(_) => Ok(()),
            Decoding::Zstd(d) => d.flush(),
        }
    }

    fn into_checked(self) -> Checked<'w> {
        match self {
            Decoding::Identity(c) => c,
            Decoding::Zstd(d) => d.into_inner(),
        }
    }
}

/// An authenticated connection to one sync server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl Client {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:7878`) using
    /// `token`, with the timeout of [`timeout_from_env`].
    pub fn new(url: &str, token: &str) -> Result<Self, ClientError> {
        Self::with_timeout(url, token, timeout_from_env())
    }

    /// A client whose connects and idle reads give up after `timeout`.
    pub fn with_timeout(url: &str, token: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let valid = reqwest::Url::parse(&base)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .unwrap_or(false);
        if !valid {
            return Err(ClientError::BadUrl(url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .build()
            .map_err(|source| ClientError::Connect {
                url: base.clone(),
                source,
            })?;
        Ok(Self {
            base,
            token: token.to_owned(),
            timeout,
            http,
        })
    }

    /// The server base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// A transport error as [`ClientError::Timeout`] when a timeout expired,
    /// else [`ClientError::Connect`].
    fn transport(&self, source: reqwest::Error) -> ClientError {
        if source.is_timeout() {
            return ClientError::Timeout {
                url: self.base.clone(),
                secs: self.timeout.as_secs(),
            };
        }
        ClientError::Connect {
            url: self.base.clone(),
            source,
        }
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.base)
    }

    /// Send `req` with the token. A `503` (the server's push-memory cap is
    /// full) is retried after its `Retry-After` (at most [`MAX_BUSY_WAIT`]),
    /// up to [`BUSY_RETRIES`] times; the last answer is returned as is.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let mut req = req.bearer_auth(&self.token);
        let mut retries = 0;
        loop {
            let again = req.try_clone();
            let resp = req.send().await.map_err(|e| self.transport(e))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                return Err(ClientError::Unauthorized);
            }
            match again {
                Some(next)
                    if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                        && retries < BUSY_RETRIES =>
                {
                    retries += 1;
                    tokio::time::sleep(retry_after(&resp)).await;
                    req = next;
                }
                _ => return Ok(resp),
            }
        }
    }

    /// The body of `resp`, refusing more than `limit` bytes
    /// ([`ClientError::TooLarge`]) instead of holding whatever the server
    /// sends.
    async fn body(
        &self,
        mut resp: reqwest::Response,
        limit: usize,
        what: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(e))? {
            if out.len() + chunk.len() > limit {
                return Err(ClientError::TooLarge {
                    what: what.to_owned(),
                    limit: limit as u64,
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn error_of(&self, resp: reqwest::Response, what: &str) -> ClientError {
        let status = resp.status().as_u16();
        let raw = self
            .body(resp, MAX_ERROR_BODY, what)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).into_owned();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Server {
                status,
                what: what.to_owned(),
                code: Some(body.error),
                message: body.message,
            },
            Err(_) => ClientError::Server {
                status,
                what: what.to_owned(),
                code: None,
                message: text.chars().take(300).collect(),
            },
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, ClientError> {
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp, what).await);
        }
        let bytes = self.body(resp, MAX_JSON_BODY, what).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            what: what.to_owned(),
            detail: e.to_string(),
        })
    }

    /// `GET /api/v1/me`: the account the token belongs to (checks the URL
    /// and the token).
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.json(self.http.get(self.endpoint("/me")), "GET /me")
            .await
    }

    /// One page of `GET /api/v1/sessions`.
    pub async fn list_sessions(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
        q: Option<&str>,
    ) -> Result<SessionList, ClientError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(q) = q {
            query.push(("q", q.to_owned()));
        }
        let req = self.http.get(self.endpoint("/sessions")).query(&query);
        self.json(req, "GET /sessions").await
    }

    /// Every session of the account (all pages).
    pub async fn all_sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .list_sessions(cursor.as_deref(), Some(MAX_LIMIT), None)
                .await?;
            out.extend(page.sessions);
            match page.next_cursor {
                Some(c) if cursor.as_deref() != Some(c.as_str()) => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// `GET /api/v1/sessions/{id}`; `None` when the server has no such session.
    pub async fn session(&self, id: &str) -> Result<Option<SessionInfo>, ClientError> {
        let what = format!("GET /sessions/{id}");
        let resp = self
            .send(self.http.get(self.endpoint(&format!("/sessions/{id}"))))
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.error_of(resp, &what).await);
        }
        let bytes = self.body(resp, MAX_JSON_BODY, &what).await?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClientError::Protocol {
                what,
                detail: e.to_string(),
            })
    }

    /// `PUT /api/v1/sessions/{id}`: create the session or update its metadata.
    pub async fn put_session(
        &self,
        id: &str,
        meta: &SessionMeta,
    ) -> Result<SessionInfo, ClientError> {
        let req = self
            .http
            .put(self.endpoint(&format!("/sessions/{id}")))
            .json(meta);
        self.json(req, &format!("PUT /sessions/{id}")).await
    }

    /// `POST /api/v1/sessions/{id}/streams/{name}`: append `body` (the bytes
    /// after `offset`) given the hash of the client's first `offset` bytes.
    /// With `zstd`, the body is compressed on the wire.
    pub async fn append(
        &self,
        id: &str,
        name: &str,
        offset: u64,
        prefix_sha256: &str,
        body: &[u8],
        zstd: bool,
    ) -> Result<AppendOutcome, ClientError> {
        let what = format!("POST /sessions/{id}/streams/{name}");
        let mut req = self
            .http
            .post(self.endpoint(&format!("/sessions/{id}/streams/{name}")))
            .header(HEADER_OFFSET, offset.to_string())
            .header(HEADER_PREFIX_SHA256, prefix_sha256);
        let payload = if zstd {
            req = req.header(reqwest::header::CONTENT_ENCODING, "zstd");
            zstd::bulk::compress(body, 3).map_err(io_err(Path::new("<zstd>")))?
        } else {
            body.to_vec()
        };
        let resp = self.send(req.body(payload)).await?;
        let status = resp.status();
        if status.is_success() {
            let bytes = self.body(resp, MAX_JSON_BODY, &what).await?;
            let result = serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
                what,
                detail: e.to_string(),
            })?;
            return Ok(AppendOutcome::Appended(result));
        }
        if status == reqwest::StatusCode::CONFLICT {
            let raw = self
                .body(resp, MAX_ERROR_BODY, &what)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Ok(body) = serde_json::from_str::<ErrorBody>(&text) {
                match (body.error, body.len) {
                    (ErrorCode::Diverged, Some(len)) => return Ok(AppendOutcome::Diverged { len }),
                    (ErrorCode::OffsetAhead, Some(len)) => {
                        return Ok(AppendOutcome::OffsetAhead { len });
                    }
                    _ => {
                        return Err(ClientError::Server {
                            status: status.as_u16(),
                            what,
                            code: Some(body.error),
                            message: body.message,
                        });
                    }
                }
            }
            return Err(ClientError::Server {
                status: status.as_u16(),
                what,
                code: None,
                message: text,
            });
        }
        Err(self.error_of(resp, &what).await)
    }

    /// `GET /api/v1/sessions/{id}/streams/{name}?from=N`, zstd on the wire,
    /// where `N` is the offset of `prefix`, the server's bytes `[0, N)` as
    /// the caller holds them. The bytes read are decoded as they arrive and
    /// written to `into`; they count only once this returns `Ok`, after the
    /// check: the prefix followed by the bytes read must hash to the
    /// SHA-256 the server announces for the stream, else
    /// [`ClientError::Integrity`]. A caller that cannot rebuild the
    /// server's prefix (ciphertext it only holds decrypted) passes
    /// [`Prefix::Unverified`] with the offset and relies on the cipher's
    /// authentication instead.
    ///
    /// Holds one piece of the body (and the zstd window) at a time, and
    /// never takes more than the announced stream length minus `from`
    /// (decoded), nor a body larger than that could compress to: a server
    /// sending more gets [`ClientError::TooLarge`].
    pub async fn read_stream(
        &self,
        id: &str,
        name: &str,
        prefix: Prefix,
        into: &mut (dyn Write + Send),
    ) -> Result<StreamRead, ClientError> {
        let from = prefix.offset();
        let what = format!("GET /sessions/{id}/streams/{name}");
        let req = self
            .http
            .get(self.endpoint(&format!("/sessions/{id}/streams/{name}")))
            .query(&[("from", from.to_string())])
            .header(reqwest::header::ACCEPT_ENCODING, "zstd");
        let mut resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp, &what).await);
        }
        let header = |h: &str| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let bad = |detail: String| ClientError::Protocol {
            what: what.clone(),
            detail,
        };
        let len: u64 = header(HEADER_LENGTH)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(format!("missing {HEADER_LENGTH} header")))?;
        let sha256 =
            header(HEADER_SHA256).ok_or_else(|| bad(format!("missing {HEADER_SHA256} header")))?;
        let zstd = header(reqwest::header::CONTENT_ENCODING.as_str()).as_deref() == Some("zstd");
        let expected = len
            .checked_sub(from)
            .ok_or_else(|| bad(format!("stream length {len} is before offset {from}")))?;
        let checked = Checked {
            into,
            hasher: match prefix {
                Prefix::Hashed { hasher, .. } => Some(hasher),
                Prefix::Unverified(_) => None,
            },
            written: 0,
            cap: expected,
            over: false,
            failed: None,
        };
        // A zstd frame is never much larger than its content.
        let raw_limit = match zstd {
            true => usize::try_from(expected)
                .map(|n| zstd::zstd_safe::compress_bound(n) as u64)
                .unwrap_or(u64::MAX)
                .saturating_add(4096),
            false => expected,
        };
        let bad_zstd = |e: std::io::Error| bad(format!("bad zstd body: {e}"));
        let mut body = match zstd {
            true => Decoding::Zstd(zstd::stream::write::Decoder::new(checked).map_err(bad_zstd)?),
            false => Decoding::Identity(checked),
        };
        let mut raw = 0u64;
        let fed = loop {
            let piece = match resp.chunk().await.map_err(|e| self.transport(e))? {
                Some(piece) => piece,
                None => break body.flush(),
            };
            raw += piece.len() as u64;
            if raw > raw_limit {
                return Err(ClientError::TooLarge {
                    what,
                    limit: raw_limit,
                });
            }
            if zstd {
                // What arrived bounds what is taken, whatever the length claims.
                let arrived = baton_native::envelope::max_decompressed(raw);
                body.checked().cap = expected.min(arrived);
            }
            if let Err(e) = body.write_all(&piece) {
                break Err(e);
            }
        };
        let checked = body.into_checked();
        if checked.over {
            return Err(ClientError::TooLarge {
                what,
                limit: checked.cap,
            });
        }
        if let Some(source) = checked.failed {
            return Err(ClientError::Io {
                path: PathBuf::from(format!("(the pulled bytes of stream {name} of {id})")),
                source,
            });
        }
        fed.map_err(bad_zstd)?;
        if from + checked.written != len {
            return Err(bad(format!(
                "{} bytes from offset {from} do not end at the announced length {len}",
                checked.written
            )));
        }
        if let Some(hasher) = checked.hasher
            && hex::encode(hasher.finalize()) != sha256
        {
            return Err(ClientError::Integrity {
                id: id.to_owned(),
                stream: name.to_owned(),
            });
        }
        Ok(StreamRead { len, sha256 })
    }

    /// `GET /api/v1/sessions/{id}/checkpoints?stream=NAME`.
    pub async fn checkpoints(&self, id: &str, name: &str) -> Result<CheckpointList, ClientError> {
        let req = self
            .http
            .get(self.endpoint(&format!("/sessions/{id}/checkpoints")))
            .query(&[("stream", name)]);
        self.json(req, &format!("GET /sessions/{id}/checkpoints"))
            .await
    }

    /// `POST /api/v1/sessions/{id}/fork`: keep a diverged copy as a new session.
    pub async fn fork(&self, id: &str, request: &ForkRequest) -> Result<SessionInfo, ClientError> {
        let req = self
            .http
            .post(self.endpoint(&format!("/sessions/{id}/fork")))
            .json(request);
        self.json(req, &format!("POST /sessions/{id}/fork")).await
    }

    /// `GET /api/v1/changes?since=SEQ`.
    pub async fn changes(&self, since: u64) -> Result<Changes, ClientError> {
        let req = self
            .http
            .get(self.endpoint("/changes"))
            .query(&[("since", since.to_string())]);
        self.json(req, "GET /changes").await
    }
}

/// Check every name in a server's session answer that could end up in a
/// file path or a request URL: the session id, its fork and divergence
/// parents and its stream names. Run it before trusting `info`.
pub fn check_session_info(info: &SessionInfo) -> Result<(), ClientError> {
    validate_session_id(&info.id).map_err(ClientError::Unsafe)?;
    for parent in [&info.forked_from, &info.diverged_from]
        .into_iter()
        .flatten()
    {
        validate_session_id(parent).map_err(ClientError::Unsafe)?;
    }
    for stream in &info.streams {
        validate_stream_name(&stream.name).map_err(ClientError::Unsafe)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback server that answers `503 busy` with `Retry-After: 0`
    /// `busy` times, then `200` with `{"user":"alice"}`; returns its URL and
    /// a counter of requests served.
    fn busy_server(busy: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let reply = if n < busy {
                    let body = r#"{"error":"busy","message":"try again"}"#;
                    format!(
                        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    let body = r#"{"user":"alice"}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        (url, served)
    }

    #[tokio::test]
    async fn busy_answers_are_retried_after_their_retry_after() {
        let (url, served) = busy_server(2);
        let client = Client::new(&url, "t").unwrap();
        let me = client.whoami().await.unwrap();
        assert_eq!(me.user, "alice");
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_server_that_stays_busy_is_reported_after_the_last_retry() {
        let (url, served) = busy_server(usize::MAX);
        let client = Client::new(&url, "t").unwrap();
        let err = client.whoami().await.unwrap_err();
        assert!(
            matches!(err, ClientError::Server { status: 503, .. }),
            "{err:?}"
        );
        assert_eq!(
            served.load(std::sync::atomic::Ordering::SeqCst),
            1 + BUSY_RETRIES as usize
        );
    }

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("http://127.0.0.1:1/", "t").is_ok());
        assert_eq!(
            Client::new("https://h.example/", "t").unwrap().url(),
            "https://h.example"
        );
        for bad in ["", "ftp://x", "localhost:8080", "http://"] {
            assert!(
                matches!(Client::new(bad, "t"), Err(ClientError::BadUrl(_))),
                "{bad}"
            );
        }
    }
}
