//! Opening the SQLite file, pragmas and the schema.

use crate::SCHEMA_VERSION;
use crate::error::{BUSY_SECS, Error, Result, SqlContext};
use baton_native::write::{self, Owned};
use rusqlite::Connection;
use std::error::Error as _;
use std::path::{Path, PathBuf};

/// Tables of the catalog. `files` holds one row per native file (or pushed
/// file key) with its reader state (`consumed` mirrors `state.consumed`, so a
/// writer can check that nobody appended since it parsed, `digest` of the
/// last consumed line at `digest_off` and `head` of the first block telling
/// an append from an in-place rewrite, `library` set for
/// files under baton's library, whose copies yield to an agent's own file in
/// fork inference, `archived` set for a file gone from disk whose bytes
/// are in baton's [`crate::Archive`] (its rows are kept); `files_session`
/// covers what the scope check of a session reads (see `Catalog::in_scope`),
/// so counting sessions never reads the wide rows; `files_scan` covers the columns a change check reads, so a
/// refresh that finds nothing changed reads the index, not the wide rows);
/// `messages` the
/// immutable normalized messages, unique per (file, line offset, ordinal in
/// the line), with `dkey` identifying a record copied into a fork
/// ([`baton_search::copy_key`]), `text` NULL when it is not copied (a long
/// text of a file on disk is read back from its line, see
/// `Catalog::message_text`), `text_key` the first 8 bytes of the text's
/// SHA-256 (to compare texts the catalog does not hold) and `indexed` where
/// its text is indexed: 0 nowhere, 1 in `messages_fts`, a contentless FTS5
/// index (rows deleted by rowid) over the searchable messages
/// ([`baton_search::searchable_text`], tokenizer
/// [`baton_search::TOKENIZER`]), 2 in `messages_bag`, the same over the bags
/// of words ([`baton_search::bag_text`]) of texts longer than
/// [`baton_search::BAG_BYTES`]; `sessions` the updatable per-session facts;
/// `conversions` the lineage of converted sessions, read from the
/// conversion sidecars ([`crate::conversion`]).
const DDL: &str = r#"
CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    agent       TEXT NOT NULL,
    on_disk     INTEGER NOT NULL,
    compressed  INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ino         INTEGER NOT NULL,
    dev         INTEGER NOT NULL,
    state       TEXT NOT NULL,
    consumed    INTEGER NOT NULL DEFAULT 0,
    sidecar     TEXT,
    library     INTEGER NOT NULL DEFAULT 0,
    digest      TEXT,
    digest_off  INTEGER NOT NULL DEFAULT 0,
    head        TEXT,
    session_id  TEXT,
    sidechain   INTEGER NOT NULL DEFAULT 0,
    first_uuid  TEXT,
    forked_from TEXT,
    archived    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX files_session ON files(agent, session_id, on_disk, path);
CREATE INDEX files_scan ON files(path, size, mtime_ns, ino, dev, compressed, on_disk, sidecar,
                                 library);
CREATE INDEX files_first_uuid ON files(first_uuid) WHERE first_uuid IS NOT NULL;
CREATE INDEX files_forked_from ON files(forked_from) WHERE forked_from IS NOT NULL;

CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    file_id     INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    ordinal     INTEGER NOT NULL,
    role        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT,
    tool_name   TEXT,
    call_id     TEXT,
    timestamp   TEXT,
    uuid        TEXT,
    parent_uuid TEXT,
    dkey        TEXT,
    indexed     INTEGER NOT NULL,
    text_key    INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_file ON messages(file_id, offset, ordinal);
CREATE INDEX messages_dkey ON messages(dkey) WHERE dkey IS NOT NULL;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    text,
    content = '',
    contentless_delete = 1,
    tokenize = '{TOKENIZER}'
);

CREATE VIRTUAL TABLE messages_bag USING fts5(
    text,
    content = '',
    contentless_delete = 1,
    tokenize = '{TOKENIZER}'
);

CREATE TABLE sessions (
    agent         TEXT NOT NULL,
    id            TEXT NOT NULL,
    file_id       INTEGER NOT NULL,
    cwd           TEXT,
    title         TEXT,
    first_prompt  TEXT,
    started_at    TEXT,
    updated_at    TEXT NOT NULL,
    user_turns    INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    model         TEXT,
    git_branch    TEXT,
    forked_from   TEXT,
    lineage       TEXT NOT NULL,
    paths         TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    PRIMARY KEY (agent, id)
) WITHOUT ROWID;
CREATE INDEX sessions_updated ON sessions(updated_at, agent, id);
CREATE INDEX sessions_id ON sessions(id);
CREATE INDEX sessions_forked_from ON sessions(agent, forked_from) WHERE forked_from IS NOT NULL;

CREATE TABLE names (
    agent TEXT NOT NULL,
    id    TEXT NOT NULL,
    name  TEXT NOT NULL,
    PRIMARY KEY (agent, id)
) WITHOUT ROWID;

CREATE TABLE conversions (
    agent      TEXT NOT NULL,
    id         TEXT NOT NULL,
    from_agent TEXT NOT NULL,
    from_id    TEXT NOT NULL,
    PRIMARY KEY (agent, id)
) WITHOUT ROWID;
CREATE INDEX conversions_from ON conversions(from_agent, from_id);

CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// Open the catalog file, set pragmas, and create or rebuild the schema.
/// Processes take turns (a lock file next to the catalog), so concurrent
/// first opens create the schema once; the catalog's files are made 0600.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    let _turn = take_turn(path)?;
    for file in catalog_files(path) {
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if !meta.is_file() => return Err(Error::NotAFile(file)),
            Ok(meta) => make_private(&file, &meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&file, e)),
        }
    }
    // SQLite gives its -wal and -shm files the mode of the database file.
    if !path.exists() {
        private_file(path)?;
    }
    let opened = match try_open(path) {
        Err(e) if e.is_corrupt() => {
            // Not a database, or corrupted beyond use: it is only a cache.
            tracing::warn!(
                "{}: {}; rebuilding the catalog",
                path.display(),
                e.source()
                    .map_or_else(|| e.to_string(), ToString::to_string)
            );
            remove_files(path);
            private_file(path)?;
            try_open(path)
        }
        other => other,
    };
    opened.map_err(|e| match e {
        Error::Sqlite {
            source: rusqlite::Error::SqliteFailure(f, _),
            ..
        } if matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        ) =>
        {
            Error::Busy(path.to_path_buf())
        }
        e => e,
    })
}

/// The catalog file and the -wal and -shm files SQLite keeps next to it.
fn catalog_files(path: &Path) -> [PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    })
}

/// Delete the catalog's files (missing ones are fine).
pub(crate) fn remove_files(path: &Path) {
    for file in catalog_files(path) {
        let _ = std::fs::remove_file(file);
    }
}

/// Create `dir` and its missing parents, mode 0700 (less the umask).
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

/// Open `path` for reading and writing, creating it mode 0600 when missing
/// (never truncating it).
pub(crate) fn private_file(path: &Path) -> Result<std::fs::File> {
    write::open_owned(path, Owned::ReadWrite, 0o600).map_err(|e| Error::io(path, e))
}

/// Take away group and other permissions from an existing catalog file
/// (catalogs of older versions were created 0644). Best effort: a read-only
/// `BATON_HOME` keeps what it has.
fn make_private(path: &Path, meta: &std::fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
}

/// Wait (at most [`BUSY_SECS`]) for this process's turn to open the catalog:
/// an exclusive lock on `catalog.sqlite.lock`, released when the returned
/// file is dropped. `None` when the lock file cannot be created because
/// `BATON_HOME` is read-only: then nobody can create the schema there either.
fn take_turn(path: &Path) -> Result<Option<std::fs::File>> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = match private_file(&lock_path) {
        Ok(file) => file,
        Err(Error::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) && path.is_file() =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(BUSY_SECS);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Busy(path.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
    }
}

/// Open the catalog at `path` read-only and as it is (SQLite's `immutable`:
/// no lock, no journal, nothing created), for a directory baton cannot
/// write. A schema of another version is an error.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection> {
    let mut uri = url_path(path);
    uri.insert_str(0, "file:");
    uri.push_str("?immutable=1");
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&uri, flags).at(path)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .at(path)?;
    if version != SCHEMA_VERSION {
        return Err(Error::io(
            path,
            std::io::Error::other(format!(
                "the catalog has schema {version}, this baton reads {SCHEMA_VERSION}, and it cannot be rebuilt read-only"
            )),
        ));
    }
    Ok(conn)
}

/// `path` percent-encoded for a SQLite URI (`%`, `?` and `#` are special).
fn url_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Bytes of the catalog file SQLite maps into memory for reading (its pages
/// then count in the process's resident memory); writes turn it off, see
/// [`crate::Catalog::refresh`].
pub(crate) const MMAP_BYTES: i64 = 256 << 20;

fn try_open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).at(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(BUSY_SECS))
        .at(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )
    .at(path)?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES).at(path)?;
    let version = |conn: &Connection| -> Result<i64> {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .at(path)
    };
    if version(&conn)? == SCHEMA_VERSION {
        return Ok(conn);
    }
    // Another process may be creating the schema right now: take the write
    // lock, then look again.
    conn.execute_batch("BEGIN IMMEDIATE").at(path)?;
    let created = create_schema(&conn, path, version(&conn)?);
    let end = if created.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    conn.execute_batch(end).at(path)?;
    created?;
    Ok(conn)
}

/// Drop whatever the file holds and create the current schema, unless it
/// is already at [`SCHEMA_VERSION`]. Runs inside the caller's transaction.
fn create_schema(conn: &Connection, path: &Path, version: i64) -> Result<()> {
    if version != SCHEMA_VERSION {
        let tables: Vec<(String, String)> = {
            let mut stmt = conn
                .prepare(
                    "SELECT type, name FROM sqlite_master
                     WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%'
                       AND name NOT LIKE 'messages_fts_%'
                       AND name NOT LIKE 'messages_bag_%'",
                )
                .at(path)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .at(path)?
                .collect::<Result<_, _>>()
                .at(path)?
        };
        let mut sql = String::new();
        for (kind, name) in tables {
            let kind = if kind == "view" { "VIEW" } else { "TABLE" };
            sql.push_str(&format!(
                "DROP {kind} IF EXISTS \"{}\";",
                name.replace('"', "\"\"")
            ));
        }
        sql.push_str(&DDL.replace("{TOKENIZER}", baton_search::TOKENIZER));
        sql.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION};"));
        conn.execute_batch(&sql).at(path)?;
    }
    Ok(())
}
