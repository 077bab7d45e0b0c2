//! The sync client: typed HTTP calls to `baton serve` ([`Client`]) and the
//! engine that pushes and pulls sessions stream by stream ([`Syncer`]).
//!
//! The engine never trusts its own memory blindly: before sending or
//! appending anything it *reconciles* each local file with the server stream
//! (using the acknowledged position in [`crate::state`] when it still holds,
//! and the server's bytes otherwise). So a retried push sends nothing twice,
//! an interrupted push resumes from what the server really has, and a
//! session continued on two machines is detected as divergence and kept as a
//! new server session (`diverged_from`) instead of being overwritten.

use crate::crypto::{CryptoError, Keyring};
use crate::state::{FileStamp, IdRewrite, RemoteSession, StreamState, SyncState, Tracked};
use baton_native::write::WriteError;
use baton_protocol::{
    API_PREFIX, AppendResult, Changes, Checkpoint, CheckpointList, EMPTY_SHA256, ErrorBody,
    ErrorCode, ForkRequest, HEADER_LENGTH, HEADER_OFFSET, HEADER_PREFIX_SHA256, HEADER_SHA256,
    InvalidName, SessionInfo, SessionList, SessionMeta, StreamInfo, StreamPrefix, WhoAmI,
    sha256_hex, validate_session_id, validate_stream_name,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Largest plaintext piece sent in one append request.
pub const CHUNK_SIZE: usize = 4 << 20;
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
/// How many times a push re-reconciles after the server moved under it.
const MAX_ROUNDS: usize = 4;

/// What can go wrong talking to the server or moving bytes.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL given to `baton login` is not usable.
    #[error("invalid server URL `{0}`: use http://HOST:PORT or https://HOST")]
    BadUrl(String),
    /// The server could not be reached or the connection broke.
    #[error(
        "cannot reach the sync server at {url}: {source}; check the URL and that `baton serve` is running there"
    )]
    Connect {
        /// Request URL.
        url: String,
        /// Transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The token was refused.
    #[error(
        "the sync server refused the token (401); run `baton login URL TOKEN` with a token from `baton serve user add NAME`"
    )]
    Unauthorized,
    /// Any other error answer.
    #[error("the sync server answered {status} to {what}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Which request.
        what: String,
        /// Error kind, when the body was an [`ErrorBody`].
        code: Option<ErrorCode>,
        /// The server's explanation.
        message: String,
    },
    /// The server's answer did not make sense.
    #[error(
        "unexpected answer from the sync server to {what}: {detail}; is the URL really a `baton serve`?"
    )]
    Protocol {
        /// Which request.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// Encryption or decryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The session is encrypted and no key is configured.
    #[error(
        "session {0} is end-to-end encrypted on the server; set BATON_PASSPHRASE or pass --key-file (the same as on the machine that pushed it)"
    )]
    NeedKey(String),
    /// A local file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A library file exists with content that is not this session's.
    #[error(
        "{0} already exists with different content; move it away and pull again (baton never overwrites a file it did not write)"
    )]
    Occupied(PathBuf),
    /// The server named a session or stream in a way that is not safe as a
    /// file name (a hostile or broken server).
    #[error(
        "the sync server sent an unsafe name ({0}); baton wrote nothing for it. Is the URL really your `baton serve`?"
    )]
    Unsafe(InvalidName),
    /// A library copy baton pulled earlier no longer matches the server.
    #[error(
        "the server's session {id} no longer starts with the bytes of your library copy {path} (was the server reset or restored?); baton keeps your copy: move it out of the library and pull again to fetch the server's version"
    )]
    Conflict {
        /// Server session id.
        id: String,
        /// The library copy, left as it is.
        path: PathBuf,
    },
    /// The server sent more bytes than it announced (or than any sane
    /// answer holds): a broken or hostile server, or a zstd bomb.
    #[error(
        "the sync server sent more than {limit} bytes in answer to {what} (more than it announced); baton stopped reading and wrote nothing for it. Is the URL really your `baton serve`?"
    )]
    TooLarge {
        /// Which request.
        what: String,
        /// The most baton accepted.
        limit: u64,
    },
    /// The server kept changing while pushing.
    #[error("session {0} kept changing on the server while pushing; run the command again")]
    Busy(String),
    /// A diverged copy's inner id cannot be rewritten without moving bytes.
    #[error(
        "session {id} holds the id {inner} inside its bytes, and the two ids differ in length, so baton cannot give the library copy its own id; pull it with `baton export`/`baton import` on the machine that pushed it instead"
    )]
    IdLength {
        /// Server session id.
        id: String,
        /// The id inside its native bytes.
        inner: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    }
}

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

/// An authenticated connection to one sync server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:7878`) using `token`.
    pub fn new(url: &str, token: &str) -> Result<Self, ClientError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let valid = reqwest::Url::parse(&base)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .unwrap_or(false);
        if !valid {
            return Err(ClientError::BadUrl(url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|source| ClientError::Connect {
                url: base.clone(),
                source,
            })?;
        Ok(Self {
            base,
            token: token.to_owned(),
            http,
        })
    }

    /// The server base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
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
            let resp = req.send().await.map_err(|source| ClientError::Connect {
                url: self.base.clone(),
                source,
            })?;
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
        while let Some(chunk) = resp.chunk().await.map_err(|source| ClientError::Connect {
            url: self.base.clone(),
            source,
        })? {
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
                .list_sessions(cursor.as_deref(), Some(baton_protocol::MAX_LIMIT), None)
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

    /// `GET /api/v1/sessions/{id}/streams/{name}?from=N`, zstd on the wire.
    /// Never holds more than the announced stream length minus `from`
    /// (decoded), nor a body larger than that could compress to: a server
    /// sending more gets [`ClientError::TooLarge`].
    pub async fn read_stream(
        &self,
        id: &str,
        name: &str,
        from: u64,
    ) -> Result<StreamRead, ClientError> {
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

/// Read a native file (decompressing `.zst`); a missing file reads as `None`.
pub fn read_native(path: &Path) -> Result<Option<Vec<u8>>, ClientError> {
    let compressed = path.extension().is_some_and(|e| e == "zst");
    match baton_native::discover::read_native_path(path, compressed, 0) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
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

/// How a session's bytes are stored on the server.
#[derive(Debug, Clone, Copy)]
enum Codec<'a> {
    Plain,
    Sealed(&'a Keyring),
}

/// How a local file relates to its server stream.
#[derive(Debug)]
enum Relation {
    /// Same bytes.
    InSync,
    /// The local file extends the server stream.
    LocalAhead,
    /// The server stream extends the local file by `tail` (plaintext).
    RemoteAhead {
        tail: Vec<u8>,
        remote_len: u64,
        remote_sha256: String,
    },
    /// Different bytes after a common prefix.
    Diverged,
}

/// Outcome of reconciling one local file with one server stream.
#[derive(Debug)]
struct Reconciled {
    relation: Relation,
    /// Agreed position with both hashes (known for `InSync` and `LocalAhead`).
    at: Option<Tracked>,
    /// Append boundaries (remote, plain) both sides share, ascending; for
    /// plain streams every offset up to the last one is shared.
    shared: Vec<(u64, u64)>,
    plain: bool,
}

impl Reconciled {
    /// The longest shared prefix that is a server checkpoint: (remote, plain, sha).
    fn shared_checkpoint(&self, checkpoints: &[Checkpoint]) -> (u64, u64, String) {
        let last = self.shared.last().map(|s| s.0).unwrap_or(0);
        for cp in checkpoints.iter().rev() {
            if self.plain && cp.offset <= last {
                return (cp.offset, cp.offset, cp.sha256.clone());
            }
            if let Some(&(_, p)) = self.shared.iter().find(|s| s.0 == cp.offset) {
                return (cp.offset, p, cp.sha256.clone());
            }
        }
        (0, 0, EMPTY_SHA256.to_owned())
    }
}

fn tracked(path: &Path, local: &[u8], plain_len: u64, remote_len: u64, sha: &str) -> Tracked {
    Tracked {
        path: path.to_path_buf(),
        plain_len,
        plain_sha256: sha256_hex(&local[..plain_len as usize]),
        remote_len,
        remote_sha256: sha.to_owned(),
        rewrite: None,
        stamp: None,
    }
}

/// The session id written inside native bytes: Codex `session_meta.payload.id`
/// of the first line, Claude the first record's `sessionId` (a subagent
/// transcript carries its parent's).
pub fn native_session_id(agent: baton_native::Agent, bytes: &[u8]) -> Option<String> {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .take(50)
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok());
    match agent {
        baton_native::Agent::Codex => {
            let first = lines.next()?;
            (first.get("type")?.as_str()? == "session_meta")
                .then(|| first.pointer("/payload/id")?.as_str().map(str::to_owned))
                .flatten()
        }
        baton_native::Agent::Claude => {
            lines.find_map(|v| v.get("sessionId")?.as_str().map(str::to_owned))
        }
    }
}

/// The rewrite a library copy of server session `info` needs: `None` when
/// the id inside its bytes (`raw`, the stream's first bytes) is the server
/// id, else the same-length rewrite to the server id.
fn id_rewrite(info: &SessionInfo, raw: &[u8]) -> Result<Option<IdRewrite>, ClientError> {
    let Some(inner) = native_session_id(info.agent, raw) else {
        return Ok(None);
    };
    if inner == info.id {
        return Ok(None);
    }
    IdRewrite::new(&inner, &info.id)
        .map(Some)
        .ok_or_else(|| ClientError::IdLength {
            id: info.id.clone(),
            inner,
        })
}

/// What happened to one session during a push.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// The local session id.
    pub id: String,
    /// The server session it was pushed to (differs after divergence).
    pub remote_id: String,
    /// Bytes sent to the server (after encryption, before wire compression).
    pub bytes_sent: u64,
    /// `up_to_date`, `pushed` or `diverged`.
    pub status: PushStatus,
    /// Set when the local copy diverged: the server session it diverged from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diverged_from: Option<String>,
    /// Streams the server holds more of than this machine (pull them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub behind: Vec<String>,
}

/// Summary state of a pushed session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// The server already had every byte.
    UpToDate,
    /// New bytes were sent.
    Pushed,
    /// The local copy differed from the server's and was kept as a new session.
    Diverged,
}

/// What happened to one session during a pull.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullReport {
    /// Server session id.
    pub id: String,
    /// Bytes received (after decryption).
    pub bytes_received: u64,
    /// Library files created or appended to.
    pub files: Vec<PathBuf>,
    /// Streams whose local agent copy differs from the server (push to keep both).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local_diverged: Vec<String>,
}

/// A local session to push: its id, metadata for creating it on the
/// server, and its native files as named streams (`main` first).
#[derive(Debug, Clone)]
pub struct LocalSession {
    /// Local session id.
    pub id: String,
    /// Metadata sent when the server does not have the session yet.
    pub meta: SessionMeta,
    /// Stream name and local file, `main` first.
    pub streams: Vec<(String, PathBuf)>,
}

/// Runs pushes and pulls against one server, keeping [`SyncState`] current.
pub struct Syncer<'a> {
    client: &'a Client,
    keyring: Option<&'a Keyring>,
    chunk_size: usize,
    /// The client state (save it after each session).
    pub state: SyncState,
}

impl<'a> Syncer<'a> {
    /// A syncer; `keyring` is needed for encrypted sessions.
    pub fn new(client: &'a Client, keyring: Option<&'a Keyring>, state: SyncState) -> Self {
        Self {
            client,
            keyring,
            chunk_size: CHUNK_SIZE,
            state,
        }
    }

    /// Send at most `bytes` (at least 1) of plaintext per append request
    /// instead of [`CHUNK_SIZE`]: smaller pieces lose less to a broken link.
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    fn codec(&self, id: &str, encrypted: bool) -> Result<Codec<'a>, ClientError> {
        match (encrypted, self.keyring) {
            (false, _) => Ok(Codec::Plain),
            (true, Some(k)) => Ok(Codec::Sealed(k)),
            (true, None) => Err(ClientError::NeedKey(id.to_owned())),
        }
    }

    /// Compare `local` with the server stream `server` of session `id`.
    #[allow(clippy::too_many_arguments)]
    async fn reconcile(
        &self,
        id: &str,
        name: &str,
        path: &Path,
        local: &[u8],
        prev: Option<&Tracked>,
        server: Option<&StreamInfo>,
        codec: Codec<'_>,
        rewrite: Option<&IdRewrite>,
    ) -> Result<Reconciled, ClientError> {
        let plain = matches!(codec, Codec::Plain);
        let done = |relation, at: Tracked| Reconciled {
            relation,
            shared: vec![(at.remote_len, at.plain_len)],
            at: Some(at),
            plain,
        };
        let ahead_or_equal = |p: u64| {
            if local.len() as u64 > p {
                Relation::LocalAhead
            } else {
                Relation::InSync
            }
        };
        let Some(server) = server else {
            return Ok(done(
                ahead_or_equal(0),
                tracked(path, local, 0, 0, EMPTY_SHA256),
            ));
        };
        if plain
            && rewrite.is_none()
            && local.len() as u64 >= server.len
            && sha256_hex(&local[..server.len as usize]) == server.sha256
        {
            return Ok(done(
                ahead_or_equal(server.len),
                tracked(path, local, server.len, server.len, &server.sha256),
            ));
        }
        let zero = tracked(path, local, 0, 0, EMPTY_SHA256);
        let mut start = prev
            .filter(|p| {
                p.path == path
                    && p.plain_len <= local.len() as u64
                    && p.remote_len <= server.len
                    && sha256_hex(&local[..p.plain_len as usize]) == p.plain_sha256
            })
            .cloned()
            .unwrap_or_else(|| zero.clone());
        if start.remote_len == server.len {
            if start.remote_sha256 == server.sha256 {
                return Ok(done(ahead_or_equal(start.plain_len), start));
            }
            start = zero;
        }
        let read = self.client.read_stream(id, name, start.remote_len).await?;
        let segments: Vec<(Vec<u8>, u64)> = match codec {
            Codec::Plain => {
                let n = read.bytes.len() as u64;
                vec![(read.bytes, n)]
            }
            Codec::Sealed(keyring) => keyring
                .open_frames(name, &read.bytes, start.remote_len, start.plain_len)?
                .into_iter()
                .map(|f| (f.plain, f.sealed_len))
                .collect(),
        };
        // A rewritten library copy is compared with the server's bytes as
        // they look after the rewrite (same length, so positions agree).
        let segments: Vec<(Vec<u8>, u64)> = match rewrite {
            Some(rw) => segments
                .into_iter()
                .map(|(seg, n)| (rw.apply(&seg), n))
                .collect(),
            None => segments,
        };
        let (mut p, mut r) = (start.plain_len, start.remote_len);
        let mut shared = vec![(r, p)];
        let mut iter = segments.into_iter();
        while let Some((seg, sealed_len)) = iter.next() {
            let avail = &local[p as usize..];
            let n = seg.len().min(avail.len());
            if avail[..n] != seg[..n] {
                if plain {
                    let k = avail[..n]
                        .iter()
                        .zip(&seg[..n])
                        .take_while(|(a, b)| a == b)
                        .count() as u64;
                    shared.push((r + k, p + k));
                }
                return Ok(Reconciled {
                    relation: Relation::Diverged,
                    at: None,
                    shared,
                    plain,
                });
            }
            if n == seg.len() {
                p += n as u64;
                r += sealed_len;
                shared.push((r, p));
                continue;
            }
            if plain {
                shared.push((r + n as u64, p + n as u64));
            }
            let mut tail = seg[n..].to_vec();
            for (rest, _) in iter {
                tail.extend_from_slice(&rest);
            }
            return Ok(Reconciled {
                relation: Relation::RemoteAhead {
                    tail,
                    remote_len: read.len,
                    remote_sha256: read.sha256,
                },
                at: None,
                shared,
                plain,
            });
        }
        Ok(done(
            ahead_or_equal(p),
            tracked(path, local, p, read.len, &read.sha256),
        ))
    }

    /// Push one local session: create it on the server if needed, send the
    /// bytes after what the server acknowledged, and on divergence keep the
    /// local copy as a new server session with `diverged_from`.
    /// `on_progress(bytes)` is called after every acknowledged chunk;
    /// `save(state)` after every change of state worth keeping.
    pub async fn push_session(
        &mut self,
        session: &LocalSession,
        on_progress: &mut (dyn FnMut(u64) + Send),
        save: &mut (dyn FnMut(&SyncState) + Send),
    ) -> Result<PushReport, ClientError> {
        let mut locals = Vec::new();
        let mut stamps = Vec::new();
        for (name, path) in &session.streams {
            let stamp = FileStamp::of(path);
            if let Some(bytes) = read_native(path)? {
                locals.push((name.clone(), path.clone(), bytes));
                stamps.push(stamp);
            }
        }
        let mut report = PushReport {
            id: session.id.clone(),
            remote_id: self.state.remote_id(&session.id).to_owned(),
            bytes_sent: 0,
            status: PushStatus::UpToDate,
            diverged_from: None,
            behind: Vec::new(),
        };
        for _round in 0..MAX_ROUNDS {
            let remote_id = self.state.remote_id(&session.id).to_owned();
            report.remote_id = remote_id.clone();
            let info = match self.client.session(&remote_id).await? {
                Some(info) => info,
                None => {
                    let mut meta = session.meta.clone();
                    if meta.encrypted && self.keyring.is_none() {
                        return Err(ClientError::NeedKey(remote_id));
                    }
                    if meta.encrypted {
                        meta.cwd = None;
                        meta.title = None;
                        meta.first_prompt = None;
                    }
                    self.client.put_session(&remote_id, &meta).await?
                }
            };
            let codec = self.codec(&remote_id, info.encrypted)?;
            let entry = self
                .state
                .sessions
                .entry(remote_id.clone())
                .or_insert_with(|| RemoteSession {
                    agent: info.agent,
                    encrypted: info.encrypted,
                    streams: Default::default(),
                });
            entry.encrypted = info.encrypted;
            let prevs: Vec<Option<Tracked>> = locals
                .iter()
                .map(|(name, _, _)| entry.streams.get(name).and_then(|s| s.source.clone()))
                .collect();
            // A rehydrated diverged copy carries the server id where the
            // server's bytes carry the original one: compare and push
            // through the pull's rewrite.
            let rewrites: Vec<Option<IdRewrite>> = locals
                .iter()
                .map(|(name, _, _)| mirror_rewrite(entry, name))
                .collect();
            let mut recs = Vec::new();
            for ((((name, path, bytes), prev), rw), stamp) in
                locals.iter().zip(&prevs).zip(&rewrites).zip(&stamps)
            {
                let server = info.streams.iter().find(|s| &s.name == name);
                let mut rec = self
                    .reconcile(
                        &remote_id,
                        name,
                        path,
                        bytes,
                        prev.as_ref(),
                        server,
                        codec,
                        rw.as_ref(),
                    )
                    .await?;
                if let Some(at) = rec.at.as_mut() {
                    at.rewrite = rw.clone();
                    at.stamp = whole_file_stamp(stamp, at, bytes);
                }
                recs.push(rec);
            }
            if recs
                .iter()
                .any(|r| matches!(r.relation, Relation::Diverged))
            {
                self.diverge(session, &remote_id, &info, &locals, &recs)
                    .await?;
                report.status = PushStatus::Diverged;
                report.diverged_from = Some(remote_id);
                save(&self.state);
                continue;
            }
            let mut moved = false;
            report.behind.clear();
            for (((name, _, bytes), rec), stamp) in locals.iter().zip(recs).zip(&stamps) {
                match rec.relation {
                    Relation::RemoteAhead { .. } => report.behind.push(name.clone()),
                    Relation::Diverged => {}
                    Relation::InSync | Relation::LocalAhead => {
                        let Some(at) = rec.at else { continue };
                        let state = &mut self.state;
                        let mut on_ack = |name: &str, at: &Tracked, n: u64| {
                            set_source(state, &remote_id, name, at.clone());
                            on_progress(n);
                            save(state);
                        };
                        on_ack(name, &at, 0);
                        if matches!(rec.relation, Relation::LocalAhead) {
                            let mut sent = 0;
                            let pushed = push_stream(
                                self.client,
                                &remote_id,
                                name,
                                bytes,
                                at,
                                stamp.as_ref(),
                                codec,
                                self.chunk_size,
                                &mut sent,
                                &mut on_ack,
                            )
                            .await?;
                            report.bytes_sent += sent;
                            if sent > 0 && report.status == PushStatus::UpToDate {
                                report.status = PushStatus::Pushed;
                            }
                            if pushed.is_none() {
                                moved = true;
                                break;
                            }
                        }
                    }
                }
            }
            if !moved {
                return Ok(report);
            }
        }
        Err(ClientError::Busy(session.id.clone()))
    }

    /// Keep the local copy of `remote_id` as a new server session sharing
    /// the longest common checkpoint of every stream.
    async fn diverge(
        &mut self,
        session: &LocalSession,
        remote_id: &str,
        info: &SessionInfo,
        locals: &[(String, PathBuf, Vec<u8>)],
        recs: &[Reconciled],
    ) -> Result<(), ClientError> {
        let mut prefixes = Vec::new();
        let mut trackers = Vec::new();
        for ((name, path, bytes), rec) in locals.iter().zip(recs) {
            if !info.streams.iter().any(|s| &s.name == name) {
                continue;
            }
            let cps = self.client.checkpoints(remote_id, name).await?;
            let (r, p, sha) = rec.shared_checkpoint(&cps.checkpoints);
            prefixes.push(StreamPrefix {
                name: name.clone(),
                len: r,
                sha256: sha.clone(),
            });
            trackers.push((name.clone(), tracked(path, bytes, p, r, &sha)));
        }
        let main = locals.first().map(|l| l.2.as_slice()).unwrap_or_default();
        let cut = recs
            .first()
            .and_then(|r| r.shared.last())
            .map(|s| s.1 as usize)
            .unwrap_or(0);
        let new_id = diverged_id(remote_id, main, cut);
        let request = ForkRequest {
            new_id: new_id.clone(),
            streams: prefixes,
        };
        self.client.fork(remote_id, &request).await?;
        if let Some(old) = self.state.sessions.get_mut(remote_id) {
            for state in old.streams.values_mut() {
                state.source = None;
            }
        }
        self.state
            .redirects
            .insert(session.id.clone(), new_id.clone());
        let entry = self
            .state
            .sessions
            .entry(new_id.clone())
            .or_insert_with(|| RemoteSession {
                agent: info.agent,
                encrypted: info.encrypted,
                streams: Default::default(),
            });
        for (name, t) in trackers {
            entry.streams.entry(name).or_default().source = Some(t);
        }
        Ok(())
    }

    /// Pull one server session into baton's library. `sources` are this
    /// machine's own agent files already synced with it (stream name, path):
    /// streams they hold completely are not copied again. `mirror_path`
    /// chooses the library file for a stream not pulled before, from the
    /// session and the stream's first bytes. `on_progress(bytes)` reports
    /// received bytes.
    pub async fn pull_session(
        &mut self,
        info: &SessionInfo,
        sources: &[(String, PathBuf)],
        mirror_path: &(dyn Fn(&SessionInfo, &str, &[u8]) -> PathBuf + Sync),
        on_progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<PullReport, ClientError> {
        check_session_info(info)?;
        let codec = self.codec(&info.id, info.encrypted)?;
        let mut report = PullReport {
            id: info.id.clone(),
            bytes_received: 0,
            files: Vec::new(),
            local_diverged: Vec::new(),
        };
        let prev_state = self
            .state
            .sessions
            .get(&info.id)
            .cloned()
            .unwrap_or(RemoteSession {
                agent: info.agent,
                encrypted: info.encrypted,
                streams: Default::default(),
            });
        for stream in &info.streams {
            let prev = prev_state
                .streams
                .get(&stream.name)
                .cloned()
                .unwrap_or_default();
            let rewrite = mirror_rewrite(&prev_state, &stream.name);
            let source = sources.iter().find(|(n, _)| n == &stream.name);
            let stamp = source.and_then(|(_, path)| FileStamp::of(path));
            if let Some((_, path)) = source
                && let Some(bytes) = read_native(path)?
            {
                let rec = self
                    .reconcile(
                        &info.id,
                        &stream.name,
                        path,
                        &bytes,
                        prev.source.as_ref(),
                        Some(stream),
                        codec,
                        rewrite.as_ref(),
                    )
                    .await?;
                match rec.relation {
                    Relation::InSync | Relation::LocalAhead => {
                        if let Some(mut at) = rec.at {
                            at.rewrite = rewrite;
                            at.stamp = whole_file_stamp(&stamp, &at, &bytes);
                            set_source(&mut self.state, &info.id, &stream.name, at);
                        }
                        continue;
                    }
                    Relation::Diverged => report.local_diverged.push(stream.name.clone()),
                    Relation::RemoteAhead { .. } => {}
                }
            }
            self.pull_mirror(info, stream, prev.mirror, codec, mirror_path, &mut report)
                .await?;
            on_progress(report.bytes_received);
        }
        let entry = self
            .state
            .sessions
            .entry(info.id.clone())
            .or_insert(prev_state);
        entry.encrypted = info.encrypted;
        Ok(report)
    }

    /// Bring the library copy of one stream up to the server: create it or
    /// append the server's new bytes. A copy that extends the server's
    /// stream is kept as it is; one the server no longer matches is never
    /// replaced ([`ClientError::Conflict`]). A diverged copy (server id
    /// differs from the id inside its bytes) is written with its ids
    /// rewritten to the server id.
    async fn pull_mirror(
        &mut self,
        info: &SessionInfo,
        stream: &StreamInfo,
        prev: Option<Tracked>,
        codec: Codec<'_>,
        mirror_path: &(dyn Fn(&SessionInfo, &str, &[u8]) -> PathBuf + Sync),
        report: &mut PullReport,
    ) -> Result<(), ClientError> {
        let name = stream.name.as_str();
        let known = match &prev {
            Some(t) => read_native(&t.path)?.map(|b| (t.path.clone(), b)),
            None => None,
        };
        // The library file (existing or not yet), its bytes, and how they
        // relate to the server stream.
        let (path, local, prev, rewrite, rec) = match known {
            Some((path, bytes)) => {
                let rewrite = prev.as_ref().and_then(|t| t.rewrite.clone());
                let rec = self
                    .reconcile(
                        &info.id,
                        name,
                        &path,
                        &bytes,
                        prev.as_ref(),
                        Some(stream),
                        codec,
                        rewrite.as_ref(),
                    )
                    .await?;
                (path, bytes, prev, rewrite, rec)
            }
            None => {
                let rec = self
                    .reconcile(
                        &info.id,
                        name,
                        Path::new(""),
                        &[],
                        None,
                        Some(stream),
                        codec,
                        None,
                    )
                    .await?;
                let Relation::RemoteAhead { tail, .. } = &rec.relation else {
                    return Ok(());
                };
                let rewrite = id_rewrite(info, tail)?;
                let path = mirror_path(info, name, tail);
                match read_native(&path)? {
                    Some(existing) => {
                        let rec = self
                            .reconcile(
                                &info.id,
                                name,
                                &path,
                                &existing,
                                None,
                                Some(stream),
                                codec,
                                rewrite.as_ref(),
                            )
                            .await?;
                        (path, existing, None, rewrite, rec)
                    }
                    None => (path, Vec::new(), None, rewrite, rec),
                }
            }
        };
        match rec.relation {
            Relation::InSync | Relation::LocalAhead => {
                // A copy longer than the server's stream (the server lost
                // bytes) is kept whole: pull never shrinks a file.
                if let Some(mut at) = rec.at {
                    at.rewrite = rewrite;
                    set_mirror(&mut self.state, info, name, at);
                }
                Ok(())
            }
            Relation::RemoteAhead {
                tail,
                remote_len,
                remote_sha256,
            } => {
                let (tail, at) = self
                    .settle(
                        info,
                        name,
                        &path,
                        &local,
                        tail,
                        remote_len,
                        remote_sha256,
                        rewrite,
                        codec,
                    )
                    .await?;
                if tail.is_empty() {
                    return Ok(());
                }
                // Written under the library copy's own lock, checking its
                // bytes again: another run (a `baton import`) may have
                // extended it since `local` was read.
                let mut want = local;
                want.extend_from_slice(&tail);
                let written = baton_native::write::extend_owned_file(&path, &want, 0o600).map_err(
                    |e| match e {
                        WriteError::Conflict { .. } if prev.is_some() => ClientError::Conflict {
                            id: info.id.clone(),
                            path: path.clone(),
                        },
                        WriteError::Conflict { .. } => ClientError::Occupied(path.clone()),
                        WriteError::CreateDir { path, source }
                        | WriteError::Io { path, source } => ClientError::Io { path, source },
                        e @ WriteError::Locked { .. } => io_err(&path)(std::io::Error::other(e)),
                    },
                )?;
                set_mirror(&mut self.state, info, name, at);
                report.bytes_received += tail.len() as u64;
                if written > 0 {
                    report.files.push(path);
                }
                Ok(())
            }
            Relation::Diverged if prev.is_some() => Err(ClientError::Conflict {
                id: info.id.clone(),
                path,
            }),
            Relation::Diverged => Err(ClientError::Occupied(path)),
        }
    }

    /// What to write after `local` given the server's new bytes `tail`
    /// (ending at `remote_len` with prefix hash `remote_sha256`), and the
    /// position that reaches. With a rewrite, `tail` is rewritten and, for
    /// plain streams, a torn last line is held back until it is complete (a
    /// rewrite must see whole ids); the held-back position's server hash is
    /// then computed from the server's bytes.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        info: &SessionInfo,
        name: &str,
        path: &Path,
        local: &[u8],
        tail: Vec<u8>,
        remote_len: u64,
        remote_sha256: String,
        rewrite: Option<IdRewrite>,
        codec: Codec<'_>,
    ) -> Result<(Vec<u8>, Tracked), ClientError> {
        let Some(rw) = rewrite else {
            let mut all = local.to_vec();
            all.extend_from_slice(&tail);
            let at = tracked(path, &all, all.len() as u64, remote_len, &remote_sha256);
            return Ok((tail, at));
        };
        // The reconcile of a known copy already rewrote `tail`; rewriting
        // again is harmless (the old id no longer occurs in it).
        let mut tail = rw.apply(&tail);
        let (mut remote_len, mut remote_sha256) = (remote_len, remote_sha256);
        if matches!(codec, Codec::Plain) && tail.last().is_some_and(|&b| b != b'\n') {
            let keep = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            remote_len -= (tail.len() - keep) as u64;
            tail.truncate(keep);
            let whole = self.client.read_stream(&info.id, name, 0).await?;
            let end = (remote_len as usize).min(whole.bytes.len());
            remote_sha256 = sha256_hex(&whole.bytes[..end]);
        }
        let mut all = local.to_vec();
        all.extend_from_slice(&tail);
        let mut at = tracked(path, &all, all.len() as u64, remote_len, &remote_sha256);
        at.rewrite = Some(rw);
        Ok((tail, at))
    }
}

/// `stamp`, taken before `bytes` were read from the file, when `at` covers
/// all of them (so the stamp describes a file the server holds entirely).
fn whole_file_stamp(stamp: &Option<FileStamp>, at: &Tracked, bytes: &[u8]) -> Option<FileStamp> {
    (at.plain_len == bytes.len() as u64)
        .then(|| stamp.clone())
        .flatten()
}

/// Push `local[at.plain_len..]` in pieces of `chunk_size`; saves each acknowledged
/// position through `on_ack`. Returns `None` when the server moved
/// (diverged or offset_ahead) and the caller must reconcile again.
#[allow(clippy::too_many_arguments)]
async fn push_stream(
    client: &Client,
    id: &str,
    name: &str,
    local: &[u8],
    mut at: Tracked,
    stamp: Option<&FileStamp>,
    codec: Codec<'_>,
    chunk_size: usize,
    sent: &mut u64,
    on_ack: &mut (dyn FnMut(&str, &Tracked, u64) + Send),
) -> Result<Option<Tracked>, ClientError> {
    let mut hasher = Sha256::new();
    hasher.update(&local[..at.plain_len as usize]);
    while (at.plain_len as usize) < local.len() {
        let from = at.plain_len as usize;
        let mut to = (from + chunk_size).min(local.len());
        // Undo a rewrite on whole lines only, so no id is split.
        let back = at.rewrite.as_ref().map(|rw| IdRewrite {
            from: rw.to.clone(),
            to: rw.from.clone(),
        });
        if back.is_some()
            && to < local.len()
            && let Some(nl) = local[from..to].iter().rposition(|&b| b == b'\n')
        {
            to = from + nl + 1;
        }
        let chunk = &local[from..to];
        let wire = back.map(|b| b.apply(chunk));
        let wire = wire.as_deref().unwrap_or(chunk);
        let (body, zstd) = match codec {
            Codec::Plain => (wire.to_vec(), true),
            Codec::Sealed(k) => (k.seal(name, at.plain_len, wire)?, false),
        };
        let outcome = client
            .append(id, name, at.remote_len, &at.remote_sha256, &body, zstd)
            .await?;
        let AppendOutcome::Appended(result) = outcome else {
            return Ok(None);
        };
        hasher.update(chunk);
        at = Tracked {
            path: at.path.clone(),
            plain_len: to as u64,
            plain_sha256: hex::encode(hasher.clone().finalize()),
            remote_len: result.len,
            remote_sha256: result.sha256,
            rewrite: at.rewrite.clone(),
            stamp: stamp.filter(|_| to == local.len()).cloned(),
        };
        *sent += body.len() as u64;
        on_ack(name, &at, body.len() as u64);
    }
    Ok(Some(at))
}

/// The id rewrite of the library copy of stream `name`, if pull rewrote it.
fn mirror_rewrite(session: &RemoteSession, name: &str) -> Option<IdRewrite> {
    session.streams.get(name)?.mirror.as_ref()?.rewrite.clone()
}

fn set_source(state: &mut SyncState, remote_id: &str, name: &str, at: Tracked) {
    if let Some(session) = state.sessions.get_mut(remote_id) {
        session.streams.entry(name.to_owned()).or_default().source = Some(at);
    }
}

fn set_mirror(state: &mut SyncState, info: &SessionInfo, name: &str, at: Tracked) {
    let session = state
        .sessions
        .entry(info.id.clone())
        .or_insert_with(|| RemoteSession {
            agent: info.agent,
            encrypted: info.encrypted,
            streams: Default::default(),
        });
    let entry: &mut StreamState = session.streams.entry(name.to_owned()).or_default();
    // A library copy is plain: its stamp counts only while it is exactly as
    // long as the agreed bytes.
    let mut at = at;
    at.stamp = FileStamp::of(&at.path).filter(|s| s.len == at.plain_len);
    entry.mirror = Some(at);
}

/// The server id for a diverged local copy of `remote_id`: derived from the
/// local bytes up to the end of the first line after the common prefix, so a
/// retried push after a crash reuses the same id.
fn diverged_id(remote_id: &str, local_main: &[u8], common: usize) -> String {
    let common = common.min(local_main.len());
    let end = local_main[common..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| common + i + 1)
        .unwrap_or(local_main.len());
    let mut h = Sha256::new();
    h.update(b"baton-diverged\0");
    h.update(remote_id.as_bytes());
    h.update([0]);
    h.update(&local_main[..end]);
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
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
    fn diverged_ids_are_stable_and_depend_on_the_divergent_line() {
        let a = diverged_id("x", b"l1\nmine\nmore", 3);
        assert_eq!(a, diverged_id("x", b"l1\nmine\nmore and more", 3));
        assert_ne!(a, diverged_id("x", b"l1\ntheirs\n", 3));
        assert_ne!(a, diverged_id("y", b"l1\nmine\nmore", 3));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
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

    #[test]
    fn shared_checkpoint_picks_the_longest_common_append_boundary() {
        let cps = |offs: &[u64]| -> Vec<Checkpoint> {
            offs.iter()
                .map(|&o| Checkpoint {
                    offset: o,
                    sha256: format!("h{o}"),
                })
                .collect()
        };
        let plain = Reconciled {
            relation: Relation::Diverged,
            at: None,
            shared: vec![(0, 0), (17, 17)],
            plain: true,
        };
        assert_eq!(
            plain.shared_checkpoint(&cps(&[0, 10, 20])),
            (10, 10, "h10".into())
        );
        let sealed = Reconciled {
            relation: Relation::Diverged,
            at: None,
            shared: vec![(0, 0), (90, 30)],
            plain: false,
        };
        assert_eq!(
            sealed.shared_checkpoint(&cps(&[0, 90, 180])),
            (90, 30, "h90".into())
        );
        assert_eq!(sealed.shared_checkpoint(&cps(&[0, 50])).0, 0);
    }
}
