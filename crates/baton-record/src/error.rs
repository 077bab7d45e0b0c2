//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while recording, loading or resuming.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// An I/O error on a known path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process (or another recorder in this one) holds the session's writer lock.
    #[error(
        "session {id} is being written by {holder}; stop that writer or wait for it to exit, then retry"
    )]
    Locked {
        /// Session id.
        id: String,
        /// Who holds it: `pid N`, or a description when the pid is unknown.
        holder: String,
    },
    /// The file is not a rollout this crate can continue.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        reason: String,
    },
    /// No rollout with this id exists under the Codex home.
    #[error(
        "no session {id} under {}; check the id with `baton list` or pass the rollout path",
        home.display()
    )]
    NotFound {
        /// The id looked up.
        id: String,
        /// The Codex home that was searched.
        home: PathBuf,
    },
    /// The writer stopped earlier (after `shutdown()` or a failed write).
    #[error("the writer for {} is closed: {reason}", path.display())]
    Closed {
        /// File the writer owned.
        path: PathBuf,
        /// Why it stopped.
        reason: String,
    },
    /// A value could not be serialized to JSON.
    #[error("cannot serialize record: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl RecordError {
    /// Wrap an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RecordError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = RecordError> = std::result::Result<T, E>;
