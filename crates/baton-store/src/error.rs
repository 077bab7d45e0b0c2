//! Errors of the catalog.

use std::path::{Path, PathBuf};

/// How long a catalog call waits for another process's lock, in seconds.
pub(crate) const BUSY_SECS: u64 = 60;

/// Result alias for catalog operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A SQLite call failed.
    #[error(
        "catalog {path}: {source} (the catalog is a cache: delete it and run `baton index` to rebuild)"
    )]
    Sqlite {
        /// The catalog file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The catalog's path holds something other than a regular file.
    #[error(
        "{0} is not a regular file; the catalog must be one: move it away (baton then creates a new catalog there) or set BATON_HOME to another directory"
    )]
    NotAFile(PathBuf),
    /// Another process kept the catalog locked for longer than baton waits.
    #[error(
        "catalog {0} stayed locked by another baton process for {BUSY_SECS} s; run the command again when it has finished"
    )]
    Busy(PathBuf),
    /// A file or directory could not be read or created.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No session has this id or id prefix.
    #[error("no session matches `{0}`; run `baton list` to see session ids")]
    UnknownSession(String),
    /// An id prefix matches several sessions.
    #[error("`{prefix}` matches {} sessions: {}; type more characters of the id", candidates.len(), candidates.join(", "))]
    AmbiguousPrefix {
        /// The prefix the user typed.
        prefix: String,
        /// Matching `agent:id` pairs (at most 10).
        candidates: Vec<String>,
    },
    /// A `--cursor` value that `list` did not produce.
    #[error(
        "invalid cursor `{0}`: pass the `next_cursor` value printed by a previous `baton list`"
    )]
    InvalidCursor(String),
    /// [`crate::Catalog::ingest_chunk`] got bytes that do not start where the
    /// previous chunk of that file ended.
    #[error(
        "chunk of `{key}` starts at byte {offset}, but the catalog has consumed {expected} bytes of it: resend from byte {expected} (or from 0 to replace it)"
    )]
    OffsetMismatch {
        /// The file key.
        key: String,
        /// Where the rejected chunk started.
        offset: u64,
        /// Where the next chunk must start.
        expected: u64,
    },
    /// A search query with no words.
    #[error("empty search query: give at least one word to search for")]
    EmptyQuery,
    /// Stored data that cannot be decoded (a corrupted or foreign catalog).
    #[error("catalog row {what}: {message} (delete the catalog and run `baton index` to rebuild)")]
    Corrupt {
        /// Which row or field.
        what: String,
        /// Why it could not be decoded.
        message: String,
    },
    /// A SQLite call on baton's archive failed.
    #[error("baton's archive {path}: {source}{ARCHIVE_ADVICE}")]
    ArchiveSqlite {
        /// The archive's index file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// An archived copy cannot be read back (a frame missing or damaged).
    #[error("baton's archive {path}: the copy of {file}: {message}{ARCHIVE_ADVICE}")]
    ArchiveCorrupt {
        /// The archive's index file.
        path: PathBuf,
        /// The native file whose copy is damaged.
        file: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// What to do about an archive error: unlike the catalog, the archive is
/// not a cache.
const ARCHIVE_ADVICE: &str = " (the archive is not a cache: it may hold the only copy of sessions \
    gone from disk, so do not delete it; copy it somewhere safe first, then try repairing the copy \
    with `sqlite3 FILE .recover`)";

impl Error {
    /// Whether the catalog file is damaged (not a database, or corrupt):
    /// being a cache, it can be deleted and rebuilt ([`crate::Catalog::rebuild`]).
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            Error::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            )
        )
    }

    /// Whether a query was stopped through
    /// [`crate::Catalog::interrupt_handle`].
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            Error::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if e.code == rusqlite::ErrorCode::OperationInterrupted
        )
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Attach the catalog's (or the archive's) path to SQLite errors.
pub(crate) trait SqlContext<T> {
    /// Map a `rusqlite::Error` into [`Error::Sqlite`] naming `path`.
    fn at(self, path: &Path) -> Result<T>;
    /// Map a `rusqlite::Error` into [`Error::ArchiveSqlite`] naming `path`.
    fn at_archive(self, path: &Path) -> Result<T>;
}

impl<T> SqlContext<T> for std::result::Result<T, rusqlite::Error> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Sqlite {
            path: path.to_path_buf(),
            source,
        })
    }

    fn at_archive(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::ArchiveSqlite {
            path: path.to_path_buf(),
            source,
        })
    }
}
