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
use std::path::Path;
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

/// Bytes read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRead {
    /// The bytes from the requested offset to `len`.
    pub bytes: Vec<u8>,
    /// Stream length at the time of the read.
    pub len: u64,
    /// Hex sha256 of the stream's first `len` bytes.
    pub sha256: String,
}

/// Where a pull starts, and what the bytes before it are.
#[derive(Debug, Clone, Copy)]
pub enum Prefix<'a> {
    /// The server's bytes before the offset (empty to read from 0): the
    /// answer is verified against the announced SHA-256.
    Bytes(&'a [u8]),
    /// Only the offset is known (a sealed stream held decrypted): the
    /// answer's SHA-256 cannot be checked here.
    Unverified(u64),
}

impl Prefix<'_> {
    /// The offset the read starts at.
    pub fn offset(&self) -> u64 {
        match self {
            Prefix::Bytes(b) => b.len() as u64,
            Prefix::Unverified(n) => *n,
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
    /// where `N` is the length of `prefix`, the server's bytes `[0, N)` as
    /// the caller holds them. The answer is checked before it is returned:
    /// `prefix` followed by the bytes read must hash to the SHA-256 the
    /// server announces for the stream, else [`ClientError::Integrity`].
    /// A caller that cannot rebuild the server's prefix (ciphertext it only
    /// holds decrypted) passes [`Prefix::Unverified`] with the offset and
    /// relies on the cipher's authentication instead.
    ///
    /// Never holds more than the announced stream length minus `from`
    /// (decoded), nor a body larger than that could compress to: a server
    /// sending more gets [`ClientError::TooLarge`].
    pub async fn read_stream(
        &self,
        id: &str,
        name: &str,
        prefix: Prefix<'_>,
    ) -> Result<StreamRead, ClientError> {
        let from = prefix.offset();
        let what = format!("GET /sessions/{id}/streams/{name}");
        let req = self
            .http
            .get(self.endpoint(&format!("/sessions/{id}/streams/{name}")))
            .query(&[("from", from.to_string())])
            .header(reqwest::header::ACCEPT_ENCODING, "zstd");
        let resp = self.send(req).await?;
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
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad(format!("stream length {len} is before offset {from}")))?;
        let body = if zstd {
            // A zstd frame is never much larger than its content.
            let bound = zstd::zstd_safe::compress_bound(expected).saturating_add(4096);
            self.body(resp, bound, &what).await?
        } else {
            self.body(resp, expected, &what).await?
        };
        let bytes = if zstd {
            use std::io::Read;
            let mut out = Vec::new();
            // What arrived bounds what is held, whatever the length claims.
            let arrived = baton_native::envelope::max_decompressed(body.len() as u64);
            let cap = (expected as u64).min(arrived);
            zstd::stream::read::Decoder::new(body.as_slice())
                .and_then(|d| d.take(cap + 1).read_to_end(&mut out))
                .map_err(|e| bad(format!("bad zstd body: {e}")))?;
            if out.len() as u64 > cap {
                return Err(ClientError::TooLarge {
                    what: what.clone(),
                    limit: cap,
                });
            }
            out
        } else {
            body
        };
        if from + bytes.len() as u64 != len {
            return Err(bad(format!(
                "{} bytes from offset {from} do not end at the announced length {len}",
                bytes.len()
            )));
        }
        if let Prefix::Bytes(prefix) = prefix {
            let mut hasher = Sha256::new();
            hasher.update(prefix);
            hasher.update(&bytes);
            if hex::encode(hasher.finalize()) != sha256 {
                return Err(ClientError::Integrity {
                    id: id.to_owned(),
                    stream: name.to_owned(),
                });
            }
        }
        Ok(StreamRead { bytes, len, sha256 })
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
