//! Everything that can go wrong syncing: transport, server answers, local files.

use crate::crypto::CryptoError;
use baton_native::write::WriteError;
use baton_protocol::{ErrorCode, InvalidName};
use std::path::{Path, PathBuf};

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
        /// Error kind, when the body was an [`baton_protocol::ErrorBody`].
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
    /// The server did not answer in time.
    #[error(
        "the sync server at {url} did not answer within {secs} s; check that it is running and reachable (raise BATON_HTTP_TIMEOUT, in seconds, for a slow link)"
    )]
    Timeout {
        /// Server base URL.
        url: String,
        /// The timeout that expired, in seconds.
        secs: u64,
    },
    /// The bytes the server sent do not hash to the SHA-256 it announced.
    #[error(
        "the sync server's bytes of session {id} (stream {stream}) do not match the SHA-256 it announced; baton wrote nothing for it. The server's copy may be damaged: check the server, or push the session again from a machine that has it"
    )]
    Integrity {
        /// Server session id.
        id: String,
        /// Stream name.
        stream: String,
    },
    /// Encryption or decryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Redacting or restoring secrets failed.
    #[error(transparent)]
    Secrets(#[from] baton_secrets::SecretsError),
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

/// Wrap an I/O error on `path`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An error of [`crate::native::LocalBytes::copy_range`] as a
/// [`ClientError`]: the read error it carries, else the writer's, as an
/// error on `path`.
pub(crate) fn copy_error(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |e| match e.downcast::<ClientError>() {
        Ok(e) => e,
        Err(e) => io_err(path)(e),
    }
}

/// A [`WriteError`] as a [`ClientError`]: other content in the way is
/// [`ClientError::Occupied`]; an I/O error is one on its path (or the
/// [`ClientError`] a streamed content carried, see [`copy_error`]).
pub(crate) fn write_err(e: WriteError) -> ClientError {
    match e {
        WriteError::Conflict { path } => ClientError::Occupied(path),
        WriteError::CreateDir { path, source } | WriteError::Io { path, source } => {
            copy_error(&path)(source)
        }
        WriteError::Locked { id, lock } => {
            let message = WriteError::Locked {
                id,
                lock: lock.clone(),
            }
            .to_string();
            io_err(&lock)(std::io::Error::other(message))
        }
    }
}
