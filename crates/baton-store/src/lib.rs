//! Local catalog: discovery, incremental ingest, SQLite index and full-text search.
//!
//! The catalog lives in `$BATON_HOME/catalog.sqlite` (WAL, `synchronous=NORMAL`)
//! and is a rebuildable cache over the agents' native files, which stay the
//! source of truth. [`Catalog::refresh`] walks the given [`Roots`], stats every
//! native file and ingests **only new bytes** of files that grew; files that
//! shrank, were replaced or are compressed and changed are re-read from
//! scratch, and rows of vanished files are removed. A refresh where nothing
//! changed costs one `stat` per file and one query. Rows of roots that a
//! refresh did not read are kept (and hidden from its queries), so a run over
//! other homes does not purge the catalog.
//!
//! Sessions are keyed by (agent, id). Session-level facts are updatable rows
//! recomputed whenever one of their files (or an ancestor's) changes;
//! messages are immutable rows tagged with their file and byte offset, so an
//! append only adds rows. What is searchable, how queries and snippets work
//! and how fork copies are attributed is [`baton_search`]'s policy (shared
//! with the server); messages that are not searchable are stored (for
//! `show`) but not indexed.
//!
//! The same ingest unit serves files on disk and bytes pushed over the network
//! ([`Catalog::ingest_chunk`]).

// Unit tests build their own scratch files (clippy.toml bans writes elsewhere).
#![cfg_attr(test, allow(clippy::disallowed_methods))]
#![warn(missing_docs)]

mod archive;
mod conversion;
mod error;
mod ingest;
mod pick;
mod query;
mod schema;
mod sessions;
mod sidecar;
mod timefmt;

pub use archive::{
    ARCHIVE_DIR, Appended, Archive, ArchiveReader, ArchiveRun, ArchiveTotals, ArchivedFile,
    sha256_hex,
};
pub use baton_search::fts_query;
pub use conversion::{
    CONVERSIONS_DIR, Conversion, SessionRef, conversion_path, read_conversions, record_conversion,
};
pub use error::{Error, Result};
pub use ingest::{ChunkOutcome, Issue, Progress, ProgressPhase, RefreshReport, Roots};
pub use pick::{PickEntry, PickScan, QueryInterrupt, as_you_type};
pub use query::{
    Found, Hit, ListQuery, Page, SearchQuery, Segment, SessionRow, Transcript, check_cursor,
};
pub use sidecar::{SIDECAR_SUFFIX, Sidecar, sidecar_path};

use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// Version of the on-disk schema. A catalog written with another version is
/// dropped and rebuilt from the native files on the next refresh.
pub const SCHEMA_VERSION: i64 = 11;

/// File name of the catalog database inside `BATON_HOME`.
pub const CATALOG_FILE: &str = "catalog.sqlite";

/// An open catalog (one SQLite connection). Not shared between threads;
/// open one per thread or process, SQLite WAL handles concurrent readers and
/// refreshes. Until its first [`Catalog::refresh`] a catalog shows every
/// cataloged session; after it, only those of the roots that refresh read.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
    /// Queries are limited to the roots of the last refresh (`temp.scope_roots`).
    scoped: bool,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("path", &self.path).finish()
    }
}

impl Catalog {
    /// Open (creating if needed) `baton_home/catalog.sqlite`. A catalog with
    /// another [`SCHEMA_VERSION`], or a file that is not a SQLite database or
    /// is corrupt, is discarded with a warning: the next [`Catalog::refresh`]
    /// rebuilds it from the native files. `baton_home` is created mode 0700
    /// and the catalog's files 0600; a catalog path that is not a regular
    /// file (a symlink, a device) is refused. Concurrent first opens are
    /// safe: one process creates the schema while the others wait for it.
    pub fn open(baton_home: &Path) -> Result<Catalog> {
        schema::create_private_dir(baton_home)?;
        let path = baton_home.join(CATALOG_FILE);
        let conn = schema::open(&path)?;
        Ok(Catalog {
            conn,
            path,
            scoped: false,
        })
    }

    /// Open `baton_home/catalog.sqlite` read-only, exactly as it is (for a
    /// `BATON_HOME` that cannot be written): queries work, a
    /// [`Catalog::refresh`] fails. The file must exist with this schema.
    pub fn open_read_only(baton_home: &Path) -> Result<Catalog> {
        let path = baton_home.join(CATALOG_FILE);
        let conn = schema::open_read_only(&path)?;
        Ok(Catalog {
            conn,
            path,
            scoped: false,
        })
    }

    /// Whether this catalog was opened with [`Catalog::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false)
    }

    /// Close this catalog, delete its files (it is a cache) and open a new,
    /// empty one in their place: for a catalog found corrupt after it was
    /// opened ([`Error::is_corrupt`]). The next [`Catalog::refresh`] fills it.
    pub fn rebuild(&mut self) -> Result<()> {
        use error::SqlContext as _;
        // Close the old connection first, so closing it later cannot touch
        // the new catalog's files.
        self.conn = Connection::open_in_memory().at(&self.path)?;
        schema::remove_files(&self.path);
        let home = self.path.parent().unwrap_or(Path::new("."));
        *self = Catalog::open(home)?;
        Ok(())
    }

    /// Path of the SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
