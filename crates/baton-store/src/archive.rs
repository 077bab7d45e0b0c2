//! The archive: a zstd-compressed copy of every session's native files in
//! `$BATON_HOME/archive`, kept so that a session survives its agent deleting
//! the file (Claude Code's `cleanupPeriodDays`, a hand-cleaned
//! `~/.codex/sessions`).
//!
//! Unlike the catalog, the archive is not a cache: it is baton's own copy of
//! the agents' bytes and is never dropped or rebuilt. It is one SQLite file,
//! `archive/index.sqlite` (WAL, `synchronous=FULL`, 0600 in a 0700
//! directory), holding per native file its archived length and the zstd
//! frames that make up those bytes. Files are archived **by byte range**, as
//! ingest reads them: a file that grew gets new frames for its new bytes
//! only. A frame and the range it records are written in one transaction, so
//! a range is recorded only once its frame is durable and a crash
//! (even SIGKILL) in the middle of archiving loses nothing. A file rewritten
//! in place (its first block or the last archived bytes changed, or it
//! shrank) starts a new *generation* from byte 0; older generations stay in
//! the archive (`baton prune --archive` removes a gone file's whole entry).

use crate::Catalog;
use crate::error::{Error, Result, SqlContext};
use baton_native::Agent;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use std::borrow::Borrow;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Directory of the archive inside `BATON_HOME`.
pub const ARCHIVE_DIR: &str = "archive";

/// File name of the archive's index (frames included) inside [`ARCHIVE_DIR`].
const INDEX_FILE: &str = "index.sqlite";

/// zstd level of archive frames: 0.22× the fixtures' bytes on disk at about
/// 150 MiB/s (level 9 saved 0.01× more at a third of the speed).
const LEVEL: i32 = 3;

/// Largest range compressed into one frame.
const FRAME_BYTES: usize = 8 << 20;

/// Files archived per transaction by [`Catalog::archive`].
const BATCH_FILES: usize = 500;

/// Bytes archived per transaction by [`Catalog::archive`] (at most).
const BATCH_BYTES: u64 = 64 << 20;

/// Bytes at each end of the archived range whose digests tell an append
/// from a rewrite.
const EDGE_BYTES: u64 = 4096;

const DDL: &str = "
CREATE TABLE IF NOT EXISTS files (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    agent       TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    len         INTEGER NOT NULL,
    stored      INTEGER NOT NULL,
    head        TEXT NOT NULL,
    tail        TEXT NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    archived_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    file_id     INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    start       INTEGER NOT NULL,
    len         INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (file_id, generation, start)
) WITHOUT ROWID;
";

/// One archived native file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedFile {
    /// Where the agent wrote it (where it is restored).
    pub path: PathBuf,
    /// Which agent wrote it.
    pub agent: Agent,
    /// Bytes archived (of the current generation).
    pub len: u64,
    /// Compressed bytes stored for the current generation.
    pub stored: u64,
    /// Modification time of the file when last archived (ns since the epoch).
    pub mtime_ns: i64,
}

/// What [`Archive::archive_file`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    /// Bytes of the native file newly archived.
    pub bytes: u64,
    /// Compressed bytes written for them.
    pub stored: u64,
    /// The file had been rewritten: a new generation was started from byte 0.
    pub new_generation: bool,
}

/// Totals of the archive ([`Archive::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveTotals {
    /// Archived files.
    pub files: u64,
    /// Their archived (uncompressed) bytes, current generations.
    pub bytes: u64,
    /// Compressed bytes stored, all generations.
    pub stored: u64,
}

/// The open archive of one `BATON_HOME`.
pub struct Archive {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("path", &self.path).finish()
    }
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn parse_agent(s: &str) -> rusqlite::Result<Agent> {
    s.parse::<Agent>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// Digests of the first and the last [`EDGE_BYTES`] of `len` bytes read
/// through `file` (which must hold at least `len` bytes).
fn edges(file: &mut std::fs::File, len: u64) -> std::io::Result<(String, String)> {
    let mut head = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.by_ref()
        .take(EDGE_BYTES.min(len))
        .read_to_end(&mut head)?;
    let tail_start = len.saturating_sub(EDGE_BYTES);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(tail_start))?;
    file.by_ref()
        .take(len - tail_start)
        .read_to_end(&mut tail)?;
    Ok((sha_hex(&head), sha_hex(&tail)))
}

impl Archive {
    /// Path of the archive's index in `baton_home`.
    pub fn index_path(baton_home: &Path) -> PathBuf {
        baton_home.join(ARCHIVE_DIR).join(INDEX_FILE)
    }

    /// Open (creating if needed) the archive of `baton_home`: the directory
    /// 0700, its files 0600.
    pub fn open(baton_home: &Path) -> Result<Archive> {
        let dir = baton_home.join(ARCHIVE_DIR);
        crate::schema::create_private_dir(&dir)?;
        let path = dir.join(INDEX_FILE);
        if !path.exists() {
            crate::schema::private_file(&path)?;
        }
        let conn = Connection::open(&path).at_archive(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(crate::error::BUSY_SECS))
            .at_archive(&path)?;
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;",
        )
        .at_archive(&path)?;
        conn.execute_batch(DDL).at_archive(&path)?;
        Ok(Archive { conn, path })
    }

    /// Open the archive of `baton_home` when one exists.
    pub fn open_existing(baton_home: &Path) -> Result<Option<Archive>> {
        if !Archive::index_path(baton_home).is_file() {
            return Ok(None);
        }
        Archive::open(baton_home).map(Some)
    }

    /// Path of the index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the archive holds for the native file `path`.
    pub fn entry(&self, path: &Path) -> Result<Option<ArchivedFile>> {
        self.conn
            .query_row(
                "SELECT path, agent, len, stored, mtime_ns FROM files WHERE path = ?1",
                [path.to_string_lossy()],
                archived_file,
            )
            .optional()
            .at_archive(&self.path)
    }

    /// Every archived file, by path.
    pub fn files(&self) -> Result<Vec<ArchivedFile>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, agent, len, stored, mtime_ns FROM files ORDER BY path")
            .at_archive(&self.path)?;
        let rows = stmt.query_map([], archived_file).at_archive(&self.path)?;
        rows.collect::<rusqlite::Result<_>>().at_archive(&self.path)
    }

    /// Sizes of the whole archive.
    pub fn totals(&self) -> Result<ArchiveTotals> {
        let (files, bytes): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), coalesce(sum(len), 0) FROM files",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .at_archive(&self.path)?;
        let stored: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(sum(length(data)), 0) FROM frames",
                [],
                |r| r.get(0),
            )
            .at_archive(&self.path)?;
        Ok(ArchiveTotals {
            files: files as u64,
            bytes: bytes as u64,
            stored: stored as u64,
        })
    }

    /// Archive the bytes of the native file `path` that the archive does not
    /// hold yet: from its archived length to its end when it only grew,
    /// from byte 0 as a new generation when it was rewritten. A file that
    /// did not change costs one `stat`. The frames and the new length are
    /// committed together.
    pub fn archive_file(&mut self, path: &Path, agent: Agent) -> Result<Appended> {
        let key = path.to_string_lossy().into_owned();
        let prior: Option<(i64, i64, u64, String, String, i64)> = self
            .conn
            .query_row(
                "SELECT id, generation, len, head, tail, mtime_ns FROM files WHERE path = ?1",
                [&key],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<_, i64>(2)? as u64,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
            .at_archive(&self.path)?;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let size = meta.len();
        let mtime_ns = crate::ingest::Stat::of(&meta).mtime_ns;
        if prior
            .as_ref()
            .is_some_and(|p| p.2 == size && p.5 == mtime_ns)
        {
            return Ok(Appended::default());
        }
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let (start, generation) = match &prior {
            Some((_, generation, len, head, tail, _)) if size >= *len => {
                let same = edges(&mut file, *len).map_err(|e| Error::io(path, e))?
                    == (head.clone(), tail.clone());
                if same {
                    (*len, *generation)
                } else {
                    (0, generation + 1)
                }
            }
            Some((_, generation, ..)) => (0, generation + 1),
            None => (0, 0),
        };
        let unchanged = prior
            .as_ref()
            .is_some_and(|p| p.1 == generation && p.2 == size);
        if unchanged {
            return Ok(Appended::default());
        }
        file.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io(path, e))?;
        let db = self.path.clone();
        // A savepoint: its own transaction, or part of a batch (see [`Archive::batch`]).
        // The row goes in first (its id names the frames), then the frames as
        // they are compressed, a bounded piece at a time, then the new length
        // and edges: all committed together.
        let tx = self.conn.savepoint().at_archive(&db)?;
        let now = jiff::Timestamp::now().to_string();
        let file_id: i64 = tx
            .query_row(
                "INSERT INTO files (path, agent, generation, len, stored, head, tail, mtime_ns, archived_at)
                 VALUES (?1, ?2, ?3, ?4, 0, '', '', ?5, ?6)
                 ON CONFLICT(path) DO UPDATE SET
                    agent = excluded.agent,
                    stored = CASE WHEN generation = excluded.generation
                                  THEN stored ELSE 0 END,
                    generation = excluded.generation, len = excluded.len,
                    mtime_ns = excluded.mtime_ns, archived_at = excluded.archived_at
                 RETURNING id",
                params![key, agent.as_str(), generation, start as i64, mtime_ns, now],
                |r| r.get(0),
            )
            .at_archive(&db)?;
        let mut offset = start;
        let mut stored_new = 0u64;
        let mut chunk = Vec::with_capacity(FRAME_BYTES);
        loop {
            chunk.clear();
            (&mut file)
                .take(FRAME_BYTES as u64)
                .read_to_end(&mut chunk)
                .map_err(|e| Error::io(path, e))?;
            if chunk.is_empty() {
                break;
            }
            let data = zstd::bulk::compress(&chunk, LEVEL).map_err(|e| Error::io(path, e))?;
            tx.execute(
                "INSERT OR REPLACE INTO frames (file_id, generation, start, len, data)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![file_id, generation, offset as i64, chunk.len() as i64, data],
            )
            .at_archive(&db)?;
            stored_new += data.len() as u64;
            offset += chunk.len() as u64;
        }
        let end = offset;
        let (head, tail) = edges(&mut file, end).map_err(|e| Error::io(path, e))?;
        tx.execute(
            "UPDATE files SET len = ?2, stored = stored + ?3, head = ?4, tail = ?5 WHERE id = ?1",
            params![file_id, end as i64, stored_new as i64, head, tail],
        )
        .at_archive(&db)?;
        tx.commit().at_archive(&db)?;
        Ok(Appended {
            bytes: end - start,
            stored: stored_new,
            new_generation: prior.is_some() && start == 0,
        })
    }

    /// Run `work` in one write transaction, so that many
    /// [`Archive::archive_file`] calls share one commit (one fsync). Each
    /// file's frames and length still go in together (a savepoint), and
    /// nothing of a batch is recorded before it commits.
    pub fn batch<T>(&mut self, work: impl FnOnce(&mut Archive) -> Result<T>) -> Result<T> {
        let db = self.path.clone();
        self.conn.execute_batch("BEGIN IMMEDIATE").at_archive(&db)?;
        match work(self) {
            Ok(out) => {
                self.conn.execute_batch("COMMIT").at_archive(&db)?;
                Ok(out)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The archived bytes of the native file at `path` (`None` when it is
    /// not archived), checked frame by frame. Holds the whole file: for
    /// reading a large one, see [`Archive::reader`].
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let Some(mut reader) = self.frames(path, 0)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(reader.len as usize);
        while reader.next_frame(self)? {
            let frame = &reader.frame;
            out.extend_from_slice(&frame.get_ref()[frame.position() as usize..]);
        }
        Ok(Some(out))
    }

    /// A reader of the archived bytes of the native file at `path` from
    /// byte `from` on (`None` when it is not archived), decompressing one
    /// frame at a time: memory stays bounded whatever the file's size.
    pub fn reader(self, path: &Path, from: u64) -> Result<Option<ArchiveReader>> {
        Ok(self.frames(path, from)?.map(|frames| ArchiveReader {
            archive: self,
            frames,
        }))
    }

    /// [`Archive::reader`] borrowing this archive.
    pub fn reader_ref(&self, path: &Path, from: u64) -> Result<Option<ArchiveReader<&Archive>>> {
        Ok(self.frames(path, from)?.map(|frames| ArchiveReader {
            archive: self,
            frames,
        }))
    }

    /// The frames of `path`'s current generation, positioned at `from`.
    fn frames(&self, path: &Path, from: u64) -> Result<Option<Frames>> {
        let key = path.to_string_lossy().into_owned();
        let file: Option<(i64, i64, u64)> = self
            .conn
            .query_row(
                "SELECT id, generation, len FROM files WHERE path = ?1",
                [&key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)),
            )
            .optional()
            .at_archive(&self.path)?;
        Ok(file.map(|(file_id, generation, len)| Frames {
            key,
            file_id,
            generation,
            len,
            next: from.min(len),
            frame: std::io::Cursor::new(Vec::new()),
        }))
    }

    /// Whether the archive holds exactly the bytes of the native file at
    /// `path` as it is now (same length, same SHA-256): the check before
    /// baton deletes an agent's file.
    pub fn verifies(&self, path: &Path) -> Result<bool> {
        let Some(mut archived) = self.reader_ref(path, 0)? else {
            return Ok(false);
        };
        let mut on_disk = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        baton_native::files::same_bytes(&mut archived, &mut on_disk)
            .map_err(|e| read_error(path, e))
    }

    /// Remove a file from the archive (all generations) and give the space
    /// back. Returns the compressed bytes freed.
    pub fn remove(&mut self, path: &Path) -> Result<u64> {
        let db = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at_archive(&db)?;
        let key = path.to_string_lossy();
        let freed: i64 = tx
            .query_row(
                "SELECT coalesce(sum(length(data)), 0) FROM frames
                 WHERE file_id = (SELECT id FROM files WHERE path = ?1)",
                [&key],
                |r| r.get(0),
            )
            .at_archive(&db)?;
        tx.execute(
            "DELETE FROM frames WHERE file_id = (SELECT id FROM files WHERE path = ?1)",
            [&key],
        )
        .at_archive(&db)?;
        tx.execute("DELETE FROM files WHERE path = ?1", [&key])
            .at_archive(&db)?;
        tx.commit().at_archive(&db)?;
        self.conn
            .execute_batch("PRAGMA incremental_vacuum;")
            .at_archive(&db)?;
        Ok(freed as u64)
    }
}

/// What [`Catalog::archive`] did.
#[derive(Debug, Clone, Default)]
pub struct ArchiveRun {
    /// Files that got new frames.
    pub files: u64,
    /// Native bytes newly archived.
    pub bytes: u64,
    /// Compressed bytes written for them.
    pub stored: u64,
    /// Files that could not be archived (they stay on disk; the next run tries again).
    pub issues: Vec<crate::Issue>,
}

impl Catalog {
    /// Archive the new bytes of every native file of this catalog that is
    /// on disk in an agent home (baton's own library is not archived: baton
    /// already owns those files). Opens (creating) the archive of the
    /// catalog's `BATON_HOME`.
    pub fn archive(&mut self) -> Result<ArchiveRun> {
        let home = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut archive = Archive::open(&home)?;
        let files: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT path, agent FROM files WHERE on_disk AND NOT library")
                .at(&self.path)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .at(&self.path)?;
            rows.collect::<rusqlite::Result<_>>().at(&self.path)?
        };
        let mut run = ArchiveRun::default();
        for group in files.chunks(BATCH_FILES) {
            archive.batch(|archive| {
                let mut batch_bytes = 0;
                for (path, agent) in group {
                    let Ok(agent) = agent.parse::<Agent>() else {
                        continue;
                    };
                    match archive.archive_file(Path::new(path), agent) {
                        Ok(done) => {
                            run.files += u64::from(done.bytes > 0);
                            run.bytes += done.bytes;
                            run.stored += done.stored;
                            batch_bytes += done.bytes;
                        }
                        Err(e) => run.issues.push(crate::Issue {
                            path: path.clone(),
                            line: None,
                            message: format!("not archived: {e}"),
                        }),
                    }
                    if batch_bytes >= BATCH_BYTES {
                        // Commit what this batch holds so far, then go on.
                        archive
                            .conn
                            .execute_batch("COMMIT; BEGIN IMMEDIATE")
                            .at_archive(&archive.path)?;
                        batch_bytes = 0;
                    }
                }
                Ok(())
            })?;
        }
        Ok(run)
    }

    /// Drop the catalog rows of archived files that were deleted from the
    /// archive (`baton prune --archive`); their sessions leave the catalog.
    pub fn forget_archived(&mut self, paths: &[PathBuf]) -> Result<()> {
        let db = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&db)?;
        let mut affected = crate::sessions::Affected::new();
        for path in paths {
            let key = path.to_string_lossy();
            let archived: Option<bool> = tx
                .query_row("SELECT archived FROM files WHERE path = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()
                .at(&db)?;
            if archived == Some(true) {
                crate::ingest::remove_file(&tx, &db, &key, &mut affected)?;
            }
        }
        crate::sessions::recompute(&tx, &db, affected)?;
        tx.commit().at(&db)
    }

    /// A reader of the archived bytes of the file `path` from byte `from`
    /// on, a frame at a time (see [`Archive::reader`]).
    pub fn archived_reader(&self, path: &Path, from: u64) -> Result<ArchiveReader> {
        self.archive_holding(path)?
            .reader(path, from)?
            .ok_or_else(|| not_archived(path))
    }

    /// This catalog's archive, which should hold `path`.
    fn archive_holding(&self, path: &Path) -> Result<Archive> {
        let home = self.path.parent().unwrap_or(Path::new("."));
        Archive::open_existing(home)?.ok_or_else(|| not_archived(path))
    }
}

/// Where a read of one archived file is: its current generation, the next
/// byte to decompress and the frame being read.
struct Frames {
    key: String,
    file_id: i64,
    generation: i64,
    len: u64,
    /// File offset just past the frame being read (or of the first byte
    /// wanted, before the first frame).
    next: u64,
    /// The decompressed frame, positioned at the next byte to read.
    frame: std::io::Cursor<Vec<u8>>,
}

impl Frames {
    /// Decompress the frame holding byte `next` into `frame`: `false` at
    /// the end of the file. A frame that is missing, short or does not
    /// decompress is an [`Error::ArchiveCorrupt`].
    fn next_frame(&mut self, archive: &Archive) -> Result<bool> {
        if self.next >= self.len {
            return Ok(false);
        }
        let corrupt = |message: String| Error::ArchiveCorrupt {
            path: archive.path.clone(),
            file: PathBuf::from(&self.key),
            message,
        };
        let found: Option<(u64, usize, Vec<u8>)> = archive
            .conn
            .prepare_cached(
                "SELECT start, len, data FROM frames
                 WHERE file_id = ?1 AND generation = ?2 AND start <= ?3
                 ORDER BY start DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![self.file_id, self.generation, self.next as i64],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)? as u64,
                            r.get::<_, i64>(1)? as usize,
                            r.get(2)?,
                        ))
                    },
                )
                .optional()
            })
            .at_archive(&archive.path)?;
        let Some((start, frame_len, data)) = found else {
            return Err(corrupt(format!("no frame holds byte {}", self.next)));
        };
        if start + frame_len as u64 <= self.next {
            return Err(corrupt(format!("frames skip byte {}", self.next)));
        }
        let bytes = zstd::bulk::decompress(&data, frame_len)
            .map_err(|e| corrupt(format!("frame at byte {start}: {e}")))?;
        if bytes.len() != frame_len {
            return Err(corrupt(format!("frame at byte {start} is short")));
        }
        self.frame = std::io::Cursor::new(bytes);
        self.frame.set_position(self.next - start);
        self.next = start + frame_len as u64;
        Ok(true)
    }
}

/// The bytes of one archived file, read a frame at a time
/// ([`Archive::reader`], [`Archive::reader_ref`]).
pub struct ArchiveReader<A: Borrow<Archive> = Archive> {
    archive: A,
    frames: Frames,
}

impl<A: Borrow<Archive>> Read for ArchiveReader<A> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.frames.frame.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if !self
                .frames
                .next_frame(self.archive.borrow())
                .map_err(std::io::Error::other)?
            {
                return Ok(0);
            }
        }
    }
}

/// The error of a read through an [`ArchiveReader`] of `path`'s copy: the
/// archive's own error (a frame missing or not decompressing) as it is,
/// else an I/O error naming `path`.
pub(crate) fn read_error(path: &Path, e: std::io::Error) -> Error {
    match e.downcast::<Error>() {
        Ok(archive_error) => archive_error,
        Err(e) => Error::io(path, e),
    }
}

/// The error for a file that is gone from disk and not archived.
fn not_archived(path: &Path) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "gone from disk and not in baton's archive",
        ),
    }
}

fn archived_file(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArchivedFile> {
    Ok(ArchivedFile {
        path: PathBuf::from(r.get::<_, String>(0)?),
        agent: parse_agent(&r.get::<_, String>(1)?)?,
        len: r.get::<_, i64>(2)? as u64,
        stored: r.get::<_, i64>(3)? as u64,
        mtime_ns: r.get(4)?,
    })
}

/// SHA-256 (hex) of `bytes`, as [`Archive::verifies`] compares them.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha_hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn appends_only_new_bytes_and_reads_them_back() {
        let home = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n").unwrap();
        let mut archive = Archive::open(home.path()).unwrap();
        let first = archive.archive_file(&path, Agent::Claude).unwrap();
        assert_eq!(first.bytes, 8);
        assert_eq!(archive.archive_file(&path, Agent::Claude).unwrap().bytes, 0);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"b\":2}\npart").unwrap();
        let second = archive.archive_file(&path, Agent::Claude).unwrap();
        assert_eq!((second.bytes, second.new_generation), (12, false));
        let back = archive.read(&path).unwrap().unwrap();
        assert_eq!(back, std::fs::read(&path).unwrap());
        assert!(archive.verifies(&path).unwrap());
    }

    #[test]
    fn a_rewritten_file_starts_a_new_generation() {
        let home = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n").unwrap();
        let mut archive = Archive::open(home.path()).unwrap();
        archive.archive_file(&path, Agent::Codex).unwrap();
        std::fs::write(&path, b"{\"x\":9}\n{\"y\":1}\n").unwrap();
        let again = archive.archive_file(&path, Agent::Codex).unwrap();
        assert!(again.new_generation);
        assert_eq!(
            archive.read(&path).unwrap().unwrap(),
            std::fs::read(&path).unwrap()
        );
        std::fs::write(&path, b"other\n").unwrap();
        assert!(!archive.verifies(&path).unwrap());
    }

    #[test]
    fn a_reader_streams_from_any_offset_across_frames_and_names_a_gap() {
        let home = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        // Two and a half frames, appended in two runs (two frame series).
        let line = |i: usize| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 97));
        let mut bytes = Vec::new();
        let mut i = 0;
        while bytes.len() < FRAME_BYTES * 2 + FRAME_BYTES / 2 {
            bytes.extend_from_slice(line(i).as_bytes());
            i += 1;
        }
        let half = bytes.len() / 2;
        std::fs::write(&path, &bytes[..half]).unwrap();
        let mut archive = Archive::open(home.path()).unwrap();
        archive.archive_file(&path, Agent::Codex).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        archive.archive_file(&path, Agent::Codex).unwrap();
        for from in [
            0,
            1,
            FRAME_BYTES as u64 + 7,
            half as u64,
            bytes.len() as u64,
            u64::MAX,
        ] {
            let mut back = Vec::new();
            Archive::open(home.path())
                .unwrap()
                .reader(&path, from)
                .unwrap()
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            let from = (from as usize).min(bytes.len());
            assert!(back == bytes[from..], "from {from}: {} bytes", back.len());
        }
        let other = Archive::open(home.path()).unwrap();
        assert!(
            other
                .reader(&dir.path().join("other"), 0)
                .unwrap()
                .is_none()
        );

        // A missing frame is an error naming the byte, not a short read.
        archive
            .conn
            .execute(
                "DELETE FROM frames WHERE start = (SELECT max(start) FROM frames)",
                [],
            )
            .unwrap();
        let mut reader = archive.reader_ref(&path, 0).unwrap().unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("frames skip byte"), "{err}");
        // It names the file, and never advises deleting the archive.
        let err = archive.verifies(&path).unwrap_err();
        assert!(matches!(err, Error::ArchiveCorrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("the copy of") && message.contains("do not delete it"));
        assert!(!message.contains("delete the catalog"), "{message}");
    }

    #[test]
    fn archive_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let archive = Archive::open(home.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(archive.path()), 0o600);
        assert_eq!(mode(&home.path().join(ARCHIVE_DIR)), 0o700);
    }
}
