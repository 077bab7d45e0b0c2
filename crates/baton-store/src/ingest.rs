//! Discovery, change detection and incremental ingest (see [`Catalog::refresh`]).

use crate::error::{Error, Result, SqlContext};
use crate::query::FtsTable;
use crate::sessions::{self, Affected};
use crate::{Archive, ArchivedFile, Catalog};
use baton_native::{Agent, FileReader, LineIssue, Message, NativeFile, ReaderState, Scanned};
use rayon::prelude::*;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The agent homes a refresh reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roots {
    /// Codex homes (`$CODEX_HOME` layouts: `sessions/`, `archived_sessions/`, `session_index.jsonl`).
    pub codex_homes: Vec<PathBuf>,
    /// Claude Code config dirs (`$CLAUDE_CONFIG_DIR` layouts: `projects/<slug>/*.jsonl`).
    pub claude_dirs: Vec<PathBuf>,
    /// baton-owned directories (baton's library, also listed above as a home
    /// or config dir): native files under them may have a
    /// `<file>.baton.json` [`crate::Sidecar`] naming their parent.
    pub library: Vec<PathBuf>,
}

impl Roots {
    /// Every Codex home and Claude config dir, Codex first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &PathBuf> {
        self.codex_homes.iter().chain(&self.claude_dirs)
    }
}

/// Which stage of a refresh a [`Progress`] report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressPhase {
    /// Walking the roots and comparing file metadata with the catalog.
    Scan,
    /// Reading and indexing new bytes.
    Ingest,
    /// Recomputing session rows.
    Sessions,
}

/// A progress report, sent after each ingested file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Current stage.
    pub phase: ProgressPhase,
    /// Files finished in this stage.
    pub files_done: u64,
    /// Files this stage will handle.
    pub files_total: u64,
    /// Bytes read so far (ingest stage).
    pub bytes_done: u64,
    /// Bytes expected to be read (ingest stage; an estimate from file sizes).
    pub bytes_total: u64,
}

/// Something that was skipped: a line, a file or a directory. Never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The file or directory concerned.
    pub path: String,
    /// 1-based line number, for a bad line.
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path, line, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// What a [`Catalog::refresh`] did.
#[derive(Debug, Clone, Default)]
pub struct RefreshReport {
    /// Native files found under the roots.
    pub files_seen: u64,
    /// Files whose metadata had not changed (not opened).
    pub files_unchanged: u64,
    /// Files indexed for the first time.
    pub files_new: u64,
    /// Files that grew and had only their new bytes read.
    pub files_appended: u64,
    /// Files re-read from the start (shrunk, replaced, or compressed and changed).
    pub files_reread: u64,
    /// Rows removed because their file vanished from a root that was read.
    pub files_removed: u64,
    /// Files that vanished but whose bytes are in baton's archive: their
    /// rows are kept, marked archived.
    pub files_archived: u64,
    /// Bytes read from native files (uncompressed).
    pub bytes_read: u64,
    /// Messages added to the catalog.
    pub messages_added: u64,
    /// Session rows recomputed.
    pub sessions_updated: u64,
    /// Lines, files and directories that were skipped.
    pub issues: Vec<Issue>,
    /// Wall time of the refresh.
    pub elapsed: Duration,
}

/// What [`Catalog::ingest_chunk`] did.
#[derive(Debug, Clone)]
pub struct ChunkOutcome {
    /// The reader state after the chunk; `state.consumed` is where the next
    /// chunk of this file must start (a trailing partial line is not consumed).
    pub state: ReaderState,
    /// Messages added.
    pub messages_added: u64,
    /// Lines skipped.
    pub issues: Vec<Issue>,
}

/// File metadata used for change detection.
pub(crate) use baton_native::discover::FileStat as Stat;

/// A native file found by the walk, carried through the phases of a
/// [`Catalog::refresh`]: walked, matched with its row, selected for reading
/// (its prior state loaded), then parsed.
struct Candidate {
    file: NativeFile,
    key: String,
    /// Its metadata as walked.
    stat: std::io::Result<Stat>,
    /// Fingerprint of the file's sidecar, when it has one.
    sidecar: Option<String>,
    /// The file lies under baton's library.
    library: bool,
    /// Its row id, when the catalog knows the file.
    row: Option<i64>,
    /// The row matches the file as walked: nothing to read.
    unchanged: bool,
    /// Stored state to resume reading from.
    prior: Option<Prior>,
}

/// Stored state needed to resume reading a file.
struct Prior {
    stat: Stat,
    compressed: bool,
    state: ReaderState,
    digest: Option<String>,
    digest_off: u64,
    head: Option<String>,
}

/// A file's sidecar as read for ingest.
#[derive(Clone)]
pub(crate) struct SidecarSeen {
    /// Size, mtime and inode of the sidecar, for change detection.
    pub fingerprint: String,
    /// Its `forked_from` (`None` when absent or unreadable).
    pub forked_from: Option<String>,
}

/// What feeding one file's bytes to its reader produced.
pub(crate) struct Fed {
    /// `state.consumed` the parse resumed from (`None`: from scratch, and
    /// existing rows of this file are dropped first). The write is skipped
    /// when the stored state no longer ends there (another process appended
    /// these bytes meanwhile).
    pub base: Option<u64>,
    /// The first piece of a file read in pieces (see [`feed_pieces`]), or
    /// all of it: the piece that counts the file in a report.
    pub first: bool,
    pub state: ReaderState,
    pub messages: Vec<Message>,
    /// How each of `messages` is written, in the same order.
    pub indexing: Vec<Indexing>,
    pub issues: Vec<LineIssue>,
    /// Digest of the last consumed line, which starts at `digest_off`.
    pub digest: Option<String>,
    pub digest_off: u64,
    /// Digest of the file's first block (see [`head_digest`]).
    pub head: Option<String>,
    pub bytes_read: u64,
}

/// Where a message's text is indexed (`messages.indexed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Indexed {
    /// Not searchable.
    Nowhere,
    /// Word by word in `messages_fts`.
    Words,
    /// As this bag of words ([`baton_search::bag_text`]) in `messages_bag`.
    Bag(String),
}

impl Indexed {
    /// The `messages.indexed` value.
    fn column(&self) -> i64 {
        match self {
            Indexed::Nowhere => 0,
            Indexed::Words => FtsTable::Words.indexed(),
            Indexed::Bag(_) => FtsTable::Bags.indexed(),
        }
    }
}

/// What the writer needs about one parsed message beyond the message,
/// worked out on the parsing thread: the catalog has one writer, so it
/// hashes and tokenizes nothing itself.
pub(crate) struct Indexing {
    /// `messages.text_key` of its text.
    pub text_key: i64,
    /// `messages.dkey` ([`baton_search::copy_key`]).
    pub dkey: Option<String>,
    /// Where its text is indexed.
    pub indexed: Indexed,
}

impl Indexing {
    /// How `m`, a message of an `agent` session, is written.
    fn of(agent: Agent, m: &Message) -> Indexing {
        let indexed = match baton_search::searchable_text(m) {
            None => Indexed::Nowhere,
            Some(text) if text.len() > baton_search::BAG_BYTES => {
                Indexed::Bag(baton_search::bag_text(text))
            }
            Some(_) => Indexed::Words,
        };
        Indexing {
            text_key: text_key(&m.text),
            dkey: baton_search::copy_key(agent, m),
            indexed,
        }
    }
}

impl Fed {
    /// Existing rows of this file must be dropped first (re-read from scratch).
    pub fn fresh(&self) -> bool {
        self.base.is_none()
    }
}

/// Messages and state parsed from one file's bytes, ready to be written.
pub(crate) struct Parsed {
    pub key: String,
    pub agent: Agent,
    pub on_disk: bool,
    /// Bytes read from baton's archive (the file is gone from disk).
    pub archived: bool,
    pub compressed: bool,
    pub stat: Stat,
    pub fed: Fed,
    pub id_hint: Option<String>,
    pub sidechain_of: Option<String>,
    pub sidecar: Option<SidecarSeen>,
    /// A sidecar that could not be read or decoded.
    pub sidecar_issue: Option<Issue>,
    /// The file lies under baton's library.
    pub library: bool,
}

enum Outcome {
    Parsed(Box<Parsed>),
    /// The file disappeared between the walk and the read.
    Vanished {
        key: String,
        issue: Issue,
    },
    /// The file could not be read; its row (if any) is kept as it was.
    Failed {
        issue: Issue,
    },
}

fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

/// Bytes at the start of a file covered by [`head_digest`].
const HEAD_BYTES: u64 = 4096;

/// Digest of a file's first block: its first `min(HEAD_BYTES, consumed)`
/// bytes, taken from `head` (the file's first bytes); `None` when `head` is
/// shorter than that. An append is only trusted when this is unchanged, so
/// an in-place rewrite of the file's first lines forces a full re-read.
fn head_digest(head: &[u8], consumed: u64) -> Option<String> {
    let len = usize::try_from(HEAD_BYTES.min(consumed)).ok()?;
    head.get(..len).map(digest_hex)
}

/// Feed `bytes` (which start at file offset `base`, 0 when `None`, a line
/// boundary) to a reader and work out the digest of the last consumed line
/// (`prior_digest` when no line was consumed). `head` is left unset.
fn feed(
    reader: &mut FileReader,
    bytes: &[u8],
    base: Option<u64>,
    prior_digest: Option<(String, u64)>,
) -> Fed {
    let chunk = reader.feed(bytes);
    let state = reader.state().clone();
    // Hashing and bagging long texts is most of the work: both cores.
    let indexing = chunk
        .messages
        .par_iter()
        .map(|m| Indexing::of(state.agent, m))
        .collect();
    let start_off = base.unwrap_or(0);
    let end = state.consumed.saturating_sub(start_off) as usize;
    let (digest, digest_off) = if end == 0 || end > bytes.len() {
        prior_digest.map_or((None, 0), |(d, o)| (Some(d), o))
    } else {
        let start = memrchr_newline(&bytes[..end - 1]).map_or(0, |i| i + 1);
        (
            Some(digest_hex(&bytes[start..end])),
            start_off + start as u64,
        )
    };
    Fed {
        base,
        first: true,
        state,
        indexing,
        messages: chunk.messages,
        issues: chunk.issues,
        digest,
        digest_off,
        head: None,
        bytes_read: bytes.len() as u64,
    }
}

fn memrchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b == b'\n')
}

/// Bytes of a file parsed and written at a time: a larger file is read in
/// pieces of about this size (a line longer than this is read whole), so
/// memory stays bounded whatever the file's size.
const PIECE_BYTES: u64 = 4 << 20;

/// Feed what `src` yields (bytes that start at file offset `base`, 0 when
/// `None`, a line boundary) to `reader` in pieces of about [`PIECE_BYTES`],
/// handing each piece's [`Fed`] to `emit`, at least one. `head` is the
/// file's first block; `None` takes it from `src` (which then starts at 0).
fn feed_pieces(
    mut reader: FileReader,
    src: &mut dyn Read,
    mut base: Option<u64>,
    mut prior_digest: Option<(String, u64)>,
    mut head: Option<Vec<u8>>,
    emit: &mut dyn FnMut(Fed),
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut first = true;
    let mut read = 0u64;
    loop {
        let n = (&mut *src).take(PIECE_BYTES).read_to_end(&mut buf)? as u64;
        read += n;
        let eof = n < PIECE_BYTES;
        let head = head.get_or_insert_with(|| buf[..buf.len().min(HEAD_BYTES as usize)].to_vec());
        let start = reader.state().consumed;
        let mut fed = feed(&mut reader, &buf, base, prior_digest.take());
        let used = (fed.state.consumed - start) as usize;
        if used == 0 && !eof {
            // No line ended in this piece yet: read on.
            prior_digest = fed.digest.map(|d| (d, fed.digest_off));
            continue;
        }
        fed.head = head_digest(head, fed.state.consumed);
        fed.first = first;
        fed.bytes_read = std::mem::take(&mut read);
        prior_digest = fed.digest.clone().map(|d| (d, fed.digest_off));
        base = Some(fed.state.consumed);
        buf.drain(..used);
        emit(fed);
        if eof {
            return Ok(());
        }
        first = false;
    }
}

fn issue_at(path: &str, e: &std::io::Error) -> Issue {
    let message = match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            format!("{e}; check the file's permissions (skipped, other sessions are still indexed)")
        }
        std::io::ErrorKind::NotFound => "vanished while indexing (removed from the catalog)".into(),
        _ => format!("{e} (skipped, other sessions are still indexed)"),
    };
    Issue {
        path: path.to_string(),
        line: None,
        message,
    }
}

/// Whether a file may have grown by appending since `p` was stored: the
/// same uncompressed file (inode and device), not shrunk, its mtime not moved
/// back (as a copy that keeps an older mtime does), and already partly read.
fn may_be_append(p: &Prior, file: &NativeFile, stat: &Stat) -> bool {
    !file.compressed
        && !p.compressed
        && p.stat.ino == stat.ino
        && p.stat.dev == stat.dev
        && stat.size >= p.stat.size
        && stat.mtime_ns >= p.stat.mtime_ns
        && p.state.consumed > 0
}

/// Feed only the bytes appended to `path` since `p` (see [`feed_pieces`]),
/// when both its first block and its last consumed line are unchanged;
/// `false` when either was rewritten (the file must be read from scratch).
fn feed_append(path: &Path, p: &Prior, emit: &mut dyn FnMut(Fed)) -> std::io::Result<bool> {
    let (Some(digest), Some(head)) = (&p.digest, &p.head) else {
        return Ok(false);
    };
    let mut f = std::fs::File::open(path)?;
    let mut head_bytes = Vec::new();
    f.by_ref().take(HEAD_BYTES).read_to_end(&mut head_bytes)?;
    f.seek(SeekFrom::Start(p.digest_off))?;
    let line_len = p.state.consumed.saturating_sub(p.digest_off);
    let mut line = Vec::new();
    f.by_ref().take(line_len).read_to_end(&mut line)?;
    let unchanged = head_digest(&head_bytes, p.state.consumed).as_ref() == Some(head)
        && line.len() as u64 == line_len
        && digest_hex(&line) == *digest;
    if !unchanged {
        return Ok(false);
    }
    feed_pieces(
        FileReader::resume(p.state.clone()),
        &mut f,
        Some(p.state.consumed),
        Some((digest.clone(), p.digest_off)),
        Some(head_bytes),
        emit,
    )?;
    Ok(true)
}

/// Read and feed one file in pieces: only its new bytes when it grew by
/// appending (see [`may_be_append`] and [`feed_append`]), from scratch
/// otherwise.
fn read_and_feed(
    file: &NativeFile,
    stat: &Stat,
    prior: Option<&Prior>,
    emit: &mut dyn FnMut(Fed),
) -> std::io::Result<()> {
    if let Some(p) = prior.filter(|p| may_be_append(p, file, stat))
        && feed_append(&file.path, p, emit)?
    {
        return Ok(());
    }
    let mut src = baton_native::discover::open_native_path(&file.path, file.compressed, 0)?;
    feed_pieces(
        FileReader::new(file.agent),
        &mut src,
        None,
        None,
        None,
        emit,
    )
}

/// What the catalog knows of an archived native file from its path alone
/// (as discovery would have classified it on disk).
fn archived_native_file(path: &Path, agent: Agent) -> NativeFile {
    use baton_native::layout::{claude, codex::RolloutName};
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (id_hint, sidechain_of, compressed) = match agent {
        Agent::Codex => {
            let rollout = RolloutName::parse(name);
            (
                rollout.map(|r| r.thread_id.to_owned()),
                None,
                rollout.is_some_and(|r| r.compressed),
            )
        }
        Agent::Claude => {
            let in_subagents = path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "subagents");
            let session = in_subagents
                .then(|| path.parent()?.parent()?.file_name()?.to_str())
                .flatten();
            match (claude::transcript_id(name), claude::subagent_id(name)) {
                (Some(id), _) => (Some(id.to_owned()), None, false),
                (_, Some(a)) => (Some(a.to_owned()), session.map(str::to_owned), false),
                _ => (None, None, false),
            }
        }
    };
    NativeFile {
        agent,
        path: path.to_path_buf(),
        id_hint,
        sidechain_of,
        compressed,
    }
}

/// Parse an archived file that is gone from disk and unknown to the catalog
/// (a rebuilt catalog), read from the archive in pieces (see
/// [`feed_pieces`]): each piece goes to `apply`, its row marked archived.
/// `false` when the archive does not hold the file.
fn parse_archived(
    archive: &Archive,
    entry: &ArchivedFile,
    apply: &mut dyn FnMut(Parsed) -> Result<()>,
) -> Result<bool> {
    let Some(raw) = archive.reader_ref(&entry.path, 0)? else {
        return Ok(false);
    };
    let file = archived_native_file(&entry.path, entry.agent);
    let mut src: Box<dyn Read + '_> = if file.compressed {
        Box::new(zstd::stream::read::Decoder::new(raw).map_err(|e| Error::io(&entry.path, e))?)
    } else {
        Box::new(raw)
    };
    let mut applied = Ok(());
    let read = feed_pieces(
        FileReader::new(entry.agent),
        &mut src,
        None,
        None,
        None,
        &mut |fed| {
            if applied.is_err() {
                return;
            }
            applied = apply(Parsed {
                key: key_of(&entry.path),
                agent: entry.agent,
                on_disk: false,
                archived: true,
                compressed: file.compressed,
                stat: Stat {
                    size: entry.len,
                    mtime_ns: entry.mtime_ns,
                    ..Stat::default()
                },
                fed,
                id_hint: file.id_hint.clone(),
                sidechain_of: file.sidechain_of.clone(),
                sidecar: None,
                sidecar_issue: None,
                library: false,
            });
        },
    );
    applied?;
    read.map_err(|e| crate::archive::read_error(&entry.path, e))?;
    Ok(true)
}

/// Parse one file (see [`read_and_feed`]) and its sidecar, handing each
/// piece of it to `emit` in order.
fn parse_file(c: Candidate, emit: &mut dyn FnMut(Outcome)) {
    let Candidate {
        file,
        key,
        stat,
        prior,
        sidecar,
        library,
        ..
    } = c;
    let stat = match stat {
        Ok(stat) => stat,
        Err(e) => return emit(failed(key, &e)),
    };
    let (sidecar, mut sidecar_issue) = match sidecar {
        None => (None, None),
        Some(fingerprint) => {
            let path = crate::sidecar::sidecar_path(&file.path);
            let (forked_from, issue) = match crate::sidecar::read(&path) {
                Ok(s) => (s.forked_from, None),
                Err(message) => (
                    None,
                    Some(Issue {
                        path: key_of(&path),
                        line: None,
                        message,
                    }),
                ),
            };
            (
                Some(SidecarSeen {
                    fingerprint,
                    forked_from,
                }),
                issue,
            )
        }
    };
    let read = read_and_feed(&file, &stat, prior.as_ref(), &mut |fed| {
        emit(Outcome::Parsed(Box::new(Parsed {
            key: key.clone(),
            agent: file.agent,
            on_disk: true,
            archived: false,
            compressed: file.compressed,
            stat,
            fed,
            id_hint: file.id_hint.clone(),
            sidechain_of: file.sidechain_of.clone(),
            sidecar: sidecar.clone(),
            sidecar_issue: sidecar_issue.take(),
            library,
        })))
    });
    if let Err(e) = read {
        emit(failed(key, &e));
    }
}

/// The outcome of a file that could not be read: vanished when not found.
fn failed(key: String, e: &std::io::Error) -> Outcome {
    let issue = issue_at(&key, e);
    if e.kind() == std::io::ErrorKind::NotFound {
        Outcome::Vanished { key, issue }
    } else {
        Outcome::Failed { issue }
    }
}

fn line_issues<'a>(key: &'a str, issues: &'a [LineIssue]) -> impl Iterator<Item = Issue> + 'a {
    issues.iter().map(move |i| Issue {
        path: key.to_string(),
        line: Some(i.line),
        message: i.message.clone(),
    })
}

/// The statement adding a row (rowid, text) to `table`.
fn insert_sql(table: FtsTable) -> String {
    format!("INSERT INTO {} (rowid, text) VALUES (?1, ?2)", table.name())
}

/// Drop every message (and its FTS entry) of a file.
fn delete_file_messages(tx: &Transaction, path: &Path, file_id: i64) -> Result<()> {
    for table in [FtsTable::Words, FtsTable::Bags] {
        tx.prepare_cached(&format!(
            "DELETE FROM {}
             WHERE rowid IN (SELECT id FROM messages WHERE file_id = ?1 AND indexed = ?2)",
            table.name()
        ))
        .and_then(|mut s| s.execute([file_id, table.indexed()]))
        .at(path)?;
    }
    tx.prepare_cached("DELETE FROM messages WHERE file_id = ?1")
        .and_then(|mut s| s.execute([file_id]))
        .at(path)?;
    Ok(())
}

/// What [`retire_file`] did with a vanished file's row.
#[derive(Debug, PartialEq, Eq)]
enum Retired {
    /// The catalog did not know the file.
    Unknown,
    /// Removed with its messages.
    Removed,
    /// Kept, marked archived: the archive holds its bytes.
    Archived,
}

/// A file vanished from disk: keep its row, marked archived, when
/// `archive` holds its bytes, else remove it (see [`remove_file`]).
fn retire_file(
    tx: &Transaction,
    db: &Path,
    key: &str,
    archive: Option<&Archive>,
    affected: &mut Affected,
) -> Result<Retired> {
    let archived = match archive {
        Some(a) => a.entry(Path::new(key))?.is_some(),
        None => false,
    };
    if !archived {
        return Ok(if remove_file(tx, db, key, affected)? {
            Retired::Removed
        } else {
            Retired::Unknown
        });
    }
    let session: Option<(String, Option<String>)> = tx
        .prepare_cached(
            "UPDATE files SET on_disk = 0, archived = 1 WHERE path = ?1 RETURNING agent, session_id",
        )
        .and_then(|mut s| s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .at(db)?;
    Ok(match session {
        None => Retired::Unknown,
        Some((agent, session)) => {
            if let Some(s) = session {
                affected.insert((agent, s));
            }
            Retired::Archived
        }
    })
}

impl RefreshReport {
    /// Count what [`retire_file`] did.
    fn count(&mut self, retired: Retired) {
        match retired {
            Retired::Unknown => {}
            Retired::Removed => self.files_removed += 1,
            Retired::Archived => self.files_archived += 1,
        }
    }
}

/// Remove a file's row and messages; returns the session it belonged to.
pub(crate) fn remove_file(
    tx: &Transaction,
    db: &Path,
    key: &str,
    affected: &mut Affected,
) -> Result<bool> {
    let row: Option<(i64, String, Option<String>)> = tx
        .prepare_cached("SELECT id, agent, session_id FROM files WHERE path = ?1")
        .and_then(|mut s| {
            s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .at(db)?;
    let Some((id, agent, session)) = row else {
        return Ok(false);
    };
    delete_file_messages(tx, db, id)?;
    tx.prepare_cached("DELETE FROM files WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .at(db)?;
    if let Some(s) = session {
        affected.insert((agent, s));
    }
    Ok(true)
}

/// What [`apply`] did.
pub(crate) enum Applied {
    /// Written; this many messages were added.
    Added(u64),
    /// Nothing written: the stored state of the file no longer ends where
    /// the parse started (another process wrote these bytes meanwhile, or
    /// removed the file's row); it ends at `consumed`.
    Stale {
        /// Where the stored state ends (0 when the file has no row).
        consumed: u64,
    },
}

/// Write one parsed file: the single write path shared by refresh and
/// [`Catalog::ingest_chunk`]. Must run in an immediate (write-locked)
/// transaction: the stored state is re-read here, and a parse that resumed
/// from a state another writer has since moved past is not written.
pub(crate) fn apply(
    tx: &Transaction,
    db: &Path,
    p: &Parsed,
    affected: &mut Affected,
) -> Result<Applied> {
    let old: Option<(i64, Option<String>, i64)> = tx
        .prepare_cached("SELECT id, session_id, consumed FROM files WHERE path = ?1")
        .and_then(|mut s| {
            s.query_row([&p.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .at(db)?;
    if let Some(base) = p.fed.base {
        let stored = old.as_ref().map_or(0, |o| o.2 as u64);
        if old.is_none() || stored != base {
            return Ok(Applied::Stale { consumed: stored });
        }
    }
    let agent = p.agent.as_str();
    if let Some((id, old_session, _)) = &old {
        if p.fed.fresh() {
            delete_file_messages(tx, db, *id)?;
        }
        if let Some(s) = old_session {
            affected.insert((agent.to_string(), s.clone()));
        }
    }
    let facts = &p.fed.state.facts;
    let sidechain_of = p
        .sidechain_of
        .clone()
        .or_else(|| facts.sidechain_of.clone());
    let own_id = facts.id.clone().or_else(|| p.id_hint.clone());
    let (session_id, sidechain) = match &sidechain_of {
        Some(parent) => (Some(parent.clone()), true),
        None => (own_id, false),
    };
    // A sidecar is baton's statement about this very file: it beats a parent
    // named in the bytes (a diverged copy of a fork still carries the fork's
    // own `forked_from_id`).
    let forked_from = p
        .sidecar
        .as_ref()
        .and_then(|s| s.forked_from.clone())
        .filter(|parent| session_id.as_ref() != Some(parent))
        .or_else(|| facts.forked_from.clone());
    let state_json = serde_json::to_string(&p.fed.state).map_err(|e| Error::Corrupt {
        what: format!("files.state of {}", p.key),
        message: e.to_string(),
    })?;
    let file_id: i64 = tx
        .prepare_cached(
            "INSERT INTO files (path, agent, on_disk, compressed, size, mtime_ns, ino, dev, state,
                                consumed, sidecar, digest, digest_off, session_id, sidechain,
                                first_uuid, forked_from, library, head, archived)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20)
             ON CONFLICT(path) DO UPDATE SET
                agent = excluded.agent, on_disk = excluded.on_disk, compressed = excluded.compressed,
                size = excluded.size, mtime_ns = excluded.mtime_ns, ino = excluded.ino,
                dev = excluded.dev, state = excluded.state, consumed = excluded.consumed,
                sidecar = excluded.sidecar, digest = excluded.digest,
                digest_off = excluded.digest_off, session_id = excluded.session_id,
                sidechain = excluded.sidechain, first_uuid = excluded.first_uuid,
                forked_from = excluded.forked_from, library = excluded.library,
                head = excluded.head, archived = excluded.archived
             RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    p.key,
                    agent,
                    p.on_disk,
                    p.compressed,
                    p.stat.size as i64,
                    p.stat.mtime_ns,
                    p.stat.ino as i64,
                    p.stat.dev as i64,
                    state_json,
                    p.fed.state.consumed as i64,
                    p.sidecar.as_ref().map(|s| s.fingerprint.as_str()),
                    p.fed.digest,
                    p.fed.digest_off as i64,
                    session_id,
                    sidechain,
                    if sidechain { None } else { facts.first_uuid.clone() },
                    forked_from,
                    p.library,
                    p.fed.head,
                    p.archived,
                ],
                |r| r.get(0),
            )
        })
        .at(db)?;
    if let Some(s) = &session_id {
        affected.insert((agent.to_string(), s.clone()));
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO messages (file_id, offset, ordinal, role, kind, text, tool_name, call_id,
                                   timestamp, uuid, parent_uuid, dkey, indexed, text_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT(file_id, offset, ordinal) DO NOTHING",
        )
        .at(db)?;
    let mut insert_words = tx.prepare_cached(&insert_sql(FtsTable::Words)).at(db)?;
    let mut insert_bag = tx.prepare_cached(&insert_sql(FtsTable::Bags)).at(db)?;
    let mut ordinals: HashMap<u64, i64> = HashMap::new();
    let mut added = 0;
    for (m, indexing) in p.fed.messages.iter().zip(&p.fed.indexing) {
        let ordinal = ordinals.entry(m.offset).or_insert(0);
        let ts = m.timestamp.as_deref().and_then(crate::timefmt::normalize);
        let inserted = insert
            .execute(params![
                file_id,
                m.offset as i64,
                *ordinal,
                m.role.as_str(),
                m.kind.as_str(),
                (!spilled(p, m)).then_some(&m.text),
                m.tool_name,
                m.call_id,
                ts,
                m.uuid,
                m.parent_uuid,
                indexing.dkey,
                indexing.indexed.column(),
                indexing.text_key,
            ])
            .at(db)?;
        *ordinal += 1;
        if inserted == 0 {
            // Already stored (the same line written twice): never duplicated.
            continue;
        }
        added += 1;
        let rowid = tx.last_insert_rowid();
        match &indexing.indexed {
            Indexed::Nowhere => {}
            Indexed::Words => {
                insert_words.execute(params![rowid, &m.text]).at(db)?;
            }
            Indexed::Bag(bag) => {
                insert_bag.execute(params![rowid, bag]).at(db)?;
            }
        }
    }
    Ok(Applied::Added(added))
}

/// `messages.text_key` of `text`: its SHA-256's first 8 bytes, so that two
/// texts compare equal in SQL whether or not the catalog holds them.
fn text_key(text: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    i64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// Texts longer than this of files on disk are not copied into the catalog
/// (the native bytes are the source of truth): `messages.text` is NULL and
/// the text is read back from its line when shown or quoted in a snippet.
const SPILL_BYTES: usize = 1024;

/// Whether the catalog keeps only where `m`'s text is, not the text: a long
/// text of an uncompressed file on disk, except a typed prompt (read for
/// the session's first prompt).
fn spilled(p: &Parsed, m: &Message) -> bool {
    p.on_disk
        && !p.compressed
        && m.kind != baton_native::MessageKind::Prompt
        && m.text.len() > SPILL_BYTES
}

/// A root that a refresh walked.
struct Walked {
    root: PathBuf,
    /// The walk met no unreadable directory, so a known file under this root
    /// that was not found is gone.
    complete: bool,
}

/// Phase 1: discover and stat every native file under the roots (missing
/// roots are skipped), and say which roots were walked.
fn walk(roots: &Roots, issues: &mut Vec<Issue>) -> (Vec<Candidate>, Vec<Walked>) {
    let (found, walked) = discover(roots, issues);
    let library_prefixes: Vec<String> = roots.library.iter().map(|l| dir_prefix(l)).collect();
    let candidates = found
        .into_iter()
        .map(|Scanned { file, stat }| {
            let key = key_of(&file.path);
            let library = library_prefixes.iter().any(|l| key.starts_with(l.as_str()));
            let sidecar = library.then(|| sidecar_fingerprint(&file.path)).flatten();
            Candidate {
                file,
                key,
                stat,
                sidecar,
                library,
                row: None,
                unchanged: false,
                prior: None,
            }
        })
        .collect();
    (candidates, walked)
}

/// The native files under the roots, and which roots were walked.
fn discover(roots: &Roots, issues: &mut Vec<Issue>) -> (Vec<Scanned>, Vec<Walked>) {
    let mut found = Vec::new();
    let mut walked = Vec::new();
    let homes = roots.codex_homes.iter().map(|h| (h, true));
    let dirs = roots.claude_dirs.iter().map(|d| (d, false));
    for (root, codex) in homes.chain(dirs) {
        if !root.is_dir() {
            continue;
        }
        let (files, errs) = if codex {
            baton_native::scan_codex(root)
        } else {
            baton_native::scan_claude(root)
        };
        walked.push(Walked {
            root: root.clone(),
            complete: errs.is_empty(),
        });
        found.push(files);
        issues.extend(errs.into_iter().map(|message| {
            // Discovery messages already name their path ("path: reason").
            match message.split_once(": ") {
                Some((p, m)) => Issue {
                    path: p.to_string(),
                    line: None,
                    message: m.to_string(),
                },
                None => Issue {
                    path: String::new(),
                    line: None,
                    message,
                },
            }
        }));
    }
    if found.len() <= 1 {
        return (found.into_iter().flatten().collect(), walked);
    }
    // The same file reached through two roots is indexed once.
    let mut seen = HashSet::new();
    let found = found
        .into_iter()
        .flatten()
        .filter(|s| seen.insert(s.file.path.as_os_str().to_owned()))
        .collect();
    (found, walked)
}

/// Whether a known file that discovery did not return is gone: it lies under
/// a root that was walked, and that walk was complete or the file is missing.
/// Files of roots not read this time keep their rows.
fn is_gone(path: &Path, walked: &[Walked]) -> bool {
    walked.iter().any(|w| {
        path.starts_with(&w.root)
            && (w.complete
                || matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound))
    })
}

/// Change-detection fingerprint of a sidecar (`None`: there is none).
fn sidecar_fingerprint(native: &Path) -> Option<String> {
    let meta = std::fs::metadata(crate::sidecar::sidecar_path(native)).ok()?;
    let s = Stat::of(&meta);
    Some(format!("{}:{}:{}:{}", s.size, s.mtime_ns, s.ino, s.dev))
}

/// `dir` as a string prefix of the keys of the files under it (ending in a
/// separator, so that `/a/lib` does not cover `/a/library2/x`).
fn dir_prefix(dir: &Path) -> String {
    let mut prefix = key_of(dir);
    if !prefix.ends_with(std::path::MAIN_SEPARATOR) {
        prefix.push(std::path::MAIN_SEPARATOR);
    }
    prefix
}

/// Key of a file on disk in the `files` table.
fn key_of(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Phase 3: the candidates to read. Unchanged files are counted; a file
/// that could not be stat'ed is an issue, its row kept unless it is gone
/// (added to `gone`).
fn select(
    candidates: Vec<Candidate>,
    gone: &mut Vec<String>,
    report: &mut RefreshReport,
) -> Vec<Candidate> {
    let mut to_read = Vec::new();
    for c in candidates {
        match &c.stat {
            Ok(_) if c.unchanged => report.files_unchanged += 1,
            Ok(_) => to_read.push(c),
            Err(e) => {
                report.issues.push(issue_at(&c.key, e));
                if e.kind() == std::io::ErrorKind::NotFound {
                    gone.push(c.key);
                }
            }
        }
    }
    gone.sort();
    gone.dedup();
    to_read
}

/// `kv` key set once a catalog has indexed the archived files gone from disk.
const ARCHIVE_ROWS_KEY: &str = "archive_rows_restored";

/// Results are committed every this many files or bytes.
const BATCH_FILES: usize = 2000;
const BATCH_BYTES: u64 = 256 << 20;

/// Parsed files or pieces of files (see [`PIECE_BYTES`]) waiting to be
/// written: bounds the memory the parsers run ahead with.
const PIECES_QUEUED: usize = 4;

impl Catalog {
    /// Bring the catalog up to date with the native files under `roots`.
    ///
    /// Only new bytes of grown files are read. Files that shrank, were
    /// replaced (inode change, mtime moved back, or a changed first 4 KiB or
    /// last consumed line) or are `.zst` and changed are re-read from
    /// scratch (a rewrite in place of other bytes of a file that also grew
    /// is not detected); rows of files that vanished from a
    /// root read this time are removed, unless baton's [`Archive`] holds
    /// their bytes: then they stay, marked archived. Rows of other roots are kept (a run
    /// over other homes does not empty the catalog), but from now on this
    /// catalog's queries show only sessions with a file under `roots` (or
    /// pushed with [`Catalog::ingest_chunk`]). Several processes may refresh
    /// the same catalog at once: bytes another one wrote meanwhile are not
    /// written twice. Bad lines, unreadable or vanished files and unreadable
    /// directories are returned as [`Issue`]s and never stop the run.
    ///
    /// Phases, over one candidate per walked file: walk the roots, match
    /// the candidates with their rows, select the changed ones, load their
    /// stored reader state, remove vanished files, ingest (parse in
    /// parallel, write in batches), recompute the affected session rows.
    pub fn refresh(&mut self, roots: &Roots, progress: &dyn Fn(Progress)) -> Result<RefreshReport> {
        let started = Instant::now();
        let mut report = RefreshReport::default();
        self.set_scope(roots)?;
        let (mut candidates, walked) = walk(roots, &mut report.issues);
        report.files_seen = candidates.len() as u64;
        let mut gone = self.match_rows(&mut candidates, &walked)?;
        let mut to_read = select(candidates, &mut gone, &mut report);
        progress(Progress {
            phase: ProgressPhase::Scan,
            files_done: report.files_seen,
            files_total: report.files_seen,
            bytes_done: 0,
            bytes_total: 0,
        });
        let mut affected = Affected::new();
        let names_changed = self.refresh_names(roots, &mut affected)?;
        self.refresh_conversions(&mut report)?;
        let home = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let archive = Archive::open_existing(&home)?;
        let restore = archive.is_some() && !self.archive_rows_restored()?;
        if to_read.is_empty() && gone.is_empty() && !names_changed && !restore {
            report.elapsed = started.elapsed();
            return Ok(report);
        }
        self.load_priors(&mut to_read)?;
        self.remove_gone(&gone, archive.as_ref(), &mut affected, &mut report)?;
        if let Some(archive) = archive.as_ref().filter(|_| restore) {
            self.restore_archived_rows(archive, &mut affected, &mut report)?;
        }
        // Writing reads b-tree pages back: mapped, they would add up to the
        // whole map to the resident memory of an index of a huge session.
        self.conn
            .pragma_update(None, "mmap_size", 0)
            .at(&self.path)?;
        let ingested = self.ingest(
            to_read,
            archive.as_ref(),
            &mut affected,
            &mut report,
            progress,
        );
        self.conn
            .pragma_update(None, "mmap_size", crate::schema::MMAP_BYTES)
            .at(&self.path)?;
        ingested?;
        progress(Progress {
            phase: ProgressPhase::Sessions,
            files_done: 0,
            files_total: affected.len() as u64,
            bytes_done: 0,
            bytes_total: 0,
        });
        let db = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&db)?;
        report.sessions_updated += sessions::recompute(&tx, &db, affected)?;
        tx.commit().at(&db)?;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Phase 2: compare the stats taken by the walk with the `files` rows, in
    /// one pass over them (read from a covering index): set each
    /// candidate's row and whether it is unchanged. Returns the keys of
    /// known files that are gone from a root this walk read.
    fn match_rows(&self, candidates: &mut [Candidate], walked: &[Walked]) -> Result<Vec<String>> {
        let db = &self.path;
        let by_key: HashMap<&str, usize> = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (c.key.as_str(), i))
            .collect();
        // (row id, unchanged) of each candidate the catalog knows.
        let mut found: Vec<Option<(i64, bool)>> = vec![None; candidates.len()];
        let mut gone = Vec::new();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, id, size, mtime_ns, ino, dev, compressed, on_disk, sidecar, library
                 FROM files INDEXED BY files_scan",
            )
            .at(db)?;
        let mut rows = stmt.query([]).at(db)?;
        while let Some(r) = rows.next().at(db)? {
            let path = r.get_ref(0).and_then(|v| Ok(v.as_str()?)).at(db)?;
            let on_disk: bool = r.get(7).at(db)?;
            let Some(&i) = by_key.get(path) else {
                // Not found by this walk (or unreadable right now: a stat
                // error keeps the row, see [`select`]).
                if on_disk && is_gone(Path::new(path), walked) {
                    gone.push(path.to_string());
                }
                continue;
            };
            let c = &candidates[i];
            let stat = Stat {
                size: r.get::<_, i64>(2).at(db)? as u64,
                mtime_ns: r.get(3).at(db)?,
                ino: r.get::<_, i64>(4).at(db)? as u64,
                dev: r.get::<_, i64>(5).at(db)? as u64,
            };
            let unchanged = on_disk
                && c.stat.as_ref().is_ok_and(|st| *st == stat)
                && r.get::<_, bool>(6).at(db)? == c.file.compressed
                && r.get_ref(8).and_then(|v| Ok(v.as_str_or_null()?)).at(db)?
                    == c.sidecar.as_deref()
                && r.get::<_, bool>(9).at(db)? == c.library;
            found[i] = Some((r.get(1).at(db)?, unchanged));
        }
        drop(by_key);
        for (c, f) in candidates.iter_mut().zip(found) {
            if let Some((row, unchanged)) = f {
                c.row = Some(row);
                c.unchanged = unchanged;
            }
        }
        Ok(gone)
    }

    /// Phase 4: load the stored reader state of the files to read that the
    /// catalog already knows (an undecodable state just means a full re-read).
    fn load_priors(&self, to_read: &mut [Candidate]) -> Result<()> {
        let db = &self.path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT size, mtime_ns, ino, dev, compressed, state, digest, digest_off, head
                 FROM files WHERE id = ?1",
            )
            .at(db)?;
        for c in to_read.iter_mut() {
            let Some(id) = c.row else { continue };
            c.prior = stmt
                .query_row([id], |r| {
                    Ok((
                        Stat {
                            size: r.get::<_, i64>(0)? as u64,
                            mtime_ns: r.get(1)?,
                            ino: r.get::<_, i64>(2)? as u64,
                            dev: r.get::<_, i64>(3)? as u64,
                        },
                        r.get::<_, bool>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, i64>(7)? as u64,
                        r.get::<_, Option<String>>(8)?,
                    ))
                })
                .optional()
                .at(db)?
                .and_then(|(stat, compressed, state, digest, digest_off, head)| {
                    Some(Prior {
                        stat,
                        compressed,
                        state: serde_json::from_str::<ReaderState>(&state).ok()?,
                        digest,
                        digest_off,
                        head,
                    })
                });
        }
        Ok(())
    }

    /// Phase 5: remove the rows of vanished files.
    fn remove_gone(
        &mut self,
        gone: &[String],
        archive: Option<&Archive>,
        affected: &mut Affected,
        report: &mut RefreshReport,
    ) -> Result<()> {
        let db = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&db)?;
        for key in gone {
            report.count(retire_file(&tx, &db, key, archive, affected)?);
        }
        // Sessions change in the same transaction as their files, so a
        // concurrent refresh never finds files indexed but no sessions.
        report.sessions_updated += sessions::recompute(&tx, &db, std::mem::take(affected))?;
        tx.commit().at(&db)
    }

    /// Whether this catalog already took in the archived files that are gone
    /// from disk (a new or rebuilt catalog has not).
    fn archive_rows_restored(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM kv WHERE key = ?1",
                [ARCHIVE_ROWS_KEY],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .at(&self.path)
    }

    /// Phase 5b, once per catalog (new or rebuilt): archived files that are
    /// gone from disk and that the catalog does not know are indexed from
    /// the archive, so their sessions stay listed.
    fn restore_archived_rows(
        &mut self,
        archive: &Archive,
        affected: &mut Affected,
        report: &mut RefreshReport,
    ) -> Result<()> {
        let db = self.path.clone();
        let known: HashSet<String> = {
            let mut stmt = self.conn.prepare("SELECT path FROM files").at(&db)?;
            let rows = stmt.query_map([], |r| r.get(0)).at(&db)?;
            rows.collect::<rusqlite::Result<_>>().at(&db)?
        };
        let missing: Vec<ArchivedFile> = archive
            .files()?
            .into_iter()
            .filter(|f| !known.contains(key_of(&f.path).as_str()) && !f.path.exists())
            .collect();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&db)?;
        tx.execute(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, '1')",
            [ARCHIVE_ROWS_KEY],
        )
        .at(&db)?;
        for entry in &missing {
            let mut first = true;
            parse_archived(archive, entry, &mut |parsed| {
                if let Applied::Added(added) = apply(&tx, &db, &parsed, affected)? {
                    report.files_archived += u64::from(std::mem::take(&mut first));
                    report.messages_added += added;
                }
                Ok(())
            })?;
        }
        report.sessions_updated += sessions::recompute(&tx, &db, std::mem::take(affected))?;
        tx.commit().at(&db)
    }

    /// Phase 6: parse the files on the rayon pool (largest first, which
    /// keeps both cores busy until the end) and write them on this thread in
    /// batched transactions.
    fn ingest(
        &mut self,
        mut to_read: Vec<Candidate>,
        archive: Option<&Archive>,
        affected: &mut Affected,
        report: &mut RefreshReport,
        progress: &dyn Fn(Progress),
    ) -> Result<()> {
        let db = self.path.clone();
        let known: HashSet<String> = to_read
            .iter()
            .filter(|c| c.row.is_some())
            .map(|c| c.key.clone())
            .collect();
        let size = |c: &Candidate| c.stat.as_ref().map_or(0, |s| s.size);
        to_read.sort_by_key(|c| std::cmp::Reverse(size(c)));
        let files_total = to_read.len() as u64;
        let bytes_total: u64 = to_read
            .iter()
            .map(|c| size(c).saturating_sub(c.prior.as_ref().map_or(0, |p| p.state.consumed)))
            .sum();
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Outcome>(PIECES_QUEUED);
        std::thread::scope(|scope| -> Result<()> {
            scope.spawn(move || {
                to_read.into_par_iter().for_each_with(sender, |s, c| {
                    parse_file(c, &mut |outcome| {
                        let _ = s.send(outcome);
                    });
                });
            });
            let mut done = 0u64;
            let mut bytes_done = 0u64;
            let mut receiver = receiver.into_iter().peekable();
            while receiver.peek().is_some() {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .at(&db)?;
                let mut batch_files = 0usize;
                let mut batch_bytes = 0u64;
                for outcome in receiver.by_ref() {
                    let first = !matches!(&outcome, Outcome::Parsed(p) if !p.fed.first);
                    done += u64::from(first);
                    match outcome {
                        Outcome::Parsed(p) => {
                            let Applied::Added(added) = apply(&tx, &db, &p, affected)? else {
                                // Another process indexed these bytes first.
                                report.files_unchanged += u64::from(first);
                                continue;
                            };
                            report.issues.extend(line_issues(&p.key, &p.fed.issues));
                            report.issues.extend(p.sidecar_issue.clone());
                            match (first, p.fed.fresh(), known.contains(p.key.as_str())) {
                                (false, _, _) => {}
                                (true, false, _) => report.files_appended += 1,
                                (true, true, true) => report.files_reread += 1,
                                (true, true, false) => report.files_new += 1,
                            }
                            report.messages_added += added;
                            report.bytes_read += p.fed.bytes_read;
                            bytes_done += p.fed.bytes_read;
                            batch_bytes += p.fed.bytes_read;
                        }
                        Outcome::Vanished { key, issue } => {
                            report.issues.push(issue);
                            report.count(retire_file(&tx, &db, &key, archive, affected)?);
                        }
                        Outcome::Failed { issue } => report.issues.push(issue),
                    }
                    progress(Progress {
                        phase: ProgressPhase::Ingest,
                        files_done: done,
                        files_total,
                        bytes_done,
                        bytes_total,
                    });
                    batch_files += 1;
                    if batch_files >= BATCH_FILES || batch_bytes >= BATCH_BYTES {
                        break;
                    }
                }
                report.sessions_updated += sessions::recompute(&tx, &db, std::mem::take(affected))?;
                tx.commit().at(&db)?;
            }
            Ok(())
        })
    }

    /// Index `bytes` of one native file that start at byte `offset` of that
    /// file, without the file being on disk (bytes received from elsewhere;
    /// [`Catalog::refresh`] writes through the same code). The sync server
    /// keeps its own index (`baton-server`), not this catalog.
    ///
    /// `file_key` names the file (any stable string, e.g. `device/path`).
    /// `offset` must be 0 (the file is (re)read from scratch, replacing what
    /// was indexed under this key) or the `state.consumed` of the previous
    /// outcome for this key. A trailing partial line is not consumed: send it
    /// again, completed, in the next chunk. Refresh never removes these rows.
    pub fn ingest_chunk(
        &mut self,
        file_key: &str,
        agent: Agent,
        offset: u64,
        bytes: &[u8],
    ) -> Result<ChunkOutcome> {
        let db = self.path.clone();
        let prior = if offset == 0 {
            None
        } else {
            let state = self.file_state(file_key)?;
            match state {
                Some(s) if s.consumed == offset && s.agent == agent => Some(s),
                other => {
                    return Err(Error::OffsetMismatch {
                        key: file_key.to_string(),
                        offset,
                        expected: other.map_or(0, |s| s.consumed),
                    });
                }
            }
        };
        let base = prior.is_some().then_some(offset);
        let mut reader = match prior {
            Some(s) => FileReader::resume(s),
            None => FileReader::new(agent),
        };
        let fed = feed(&mut reader, bytes, base, None);
        let parsed = Parsed {
            key: file_key.to_string(),
            agent,
            on_disk: false,
            archived: false,
            compressed: false,
            stat: Stat {
                size: fed.state.consumed,
                ..Stat::default()
            },
            fed,
            id_hint: None,
            sidechain_of: None,
            sidecar: None,
            sidecar_issue: None,
            library: false,
        };
        let mut affected = Affected::new();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&db)?;
        let messages_added = match apply(&tx, &db, &parsed, &mut affected)? {
            Applied::Added(n) => n,
            Applied::Stale { consumed } => {
                // Another writer appended to this key since its state was read.
                return Err(Error::OffsetMismatch {
                    key: file_key.to_string(),
                    offset,
                    expected: consumed,
                });
            }
        };
        sessions::recompute(&tx, &db, affected)?;
        tx.commit().at(&db)?;
        Ok(ChunkOutcome {
            issues: line_issues(file_key, &parsed.fed.issues).collect(),
            state: parsed.fed.state,
            messages_added,
        })
    }

    /// The stored reader state of a file key (a path for files on disk), if indexed.
    pub fn file_state(&self, file_key: &str) -> Result<Option<ReaderState>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT state FROM files WHERE path = ?1", [file_key], |r| {
                r.get(0)
            })
            .optional()
            .at(&self.path)?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| Error::Corrupt {
                what: format!("files.state of {file_key}"),
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// Re-read Codex `session_index.jsonl` thread names when the file changed.
    fn refresh_names(&mut self, roots: &Roots, affected: &mut Affected) -> Result<bool> {
        let db = self.path.clone();
        let mut changed = false;
        for home in &roots.codex_homes {
            let index = home.join("session_index.jsonl");
            let fingerprint = match std::fs::metadata(&index) {
                Ok(m) => {
                    let s = Stat::of(&m);
                    format!("{}:{}:{}", s.size, s.mtime_ns, s.ino)
                }
                Err(_) => continue,
            };
            let key = format!("names:{}", key_of(home));
            let stored: Option<String> = self
                .conn
                .query_row("SELECT value FROM kv WHERE key = ?1", [&key], |r| r.get(0))
                .optional()
                .at(&db)?;
            if stored.as_deref() == Some(fingerprint.as_str()) {
                continue;
            }
            let names = baton_native::codex::read_thread_names(home);
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .at(&db)?;
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO names (agent, id, name) VALUES ('codex', ?1, ?2)
                         ON CONFLICT(agent, id) DO UPDATE SET name = excluded.name
                         WHERE name IS NOT excluded.name",
                    )
                    .at(&db)?;
                for (id, name) in &names {
                    if upsert.execute(params![id, name]).at(&db)? > 0 {
                        affected.insert(("codex".to_string(), id.clone()));
                    }
                }
                tx.execute(
                    "INSERT INTO kv (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key, fingerprint],
                )
                .at(&db)?;
            }
            tx.commit().at(&db)?;
            changed = true;
        }
        Ok(changed)
    }

    /// Bring the `conversions` table in line with the conversion sidecars
    /// of this catalog's `BATON_HOME` ([`crate::conversion`]); a stat of
    /// their folder when it did not change. Unreadable sidecars are issues.
    fn refresh_conversions(&mut self, report: &mut RefreshReport) -> Result<()> {
        let db = self.path.clone();
        let home = db.parent().unwrap_or(Path::new(".")).to_path_buf();
        let fingerprint = crate::conversion::folder_fingerprint(&home).unwrap_or_default();
        let stored: Option<String> = self
            .conn
            .query_row("SELECT value FROM kv WHERE key = 'conversions'", [], |r| {
                r.get(0)
            })
            .optional()
            .at(&db)?;
        if stored.unwrap_or_default() == fingerprint {
            return Ok(());
        }
        let (found, issues) = crate::conversion::read_conversions(&home);
        report.issues.extend(issues);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&db)?;
        tx.execute("DELETE FROM conversions", []).at(&db)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO conversions (agent, id, from_agent, from_id)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .at(&db)?;
            for c in &found {
                insert
                    .execute(params![
                        c.agent.as_str(),
                        c.id,
                        c.converted_from.agent.as_str(),
                        c.converted_from.id
                    ])
                    .at(&db)?;
            }
        }
        tx.execute(
            "INSERT INTO kv (key, value) VALUES ('conversions', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [&fingerprint],
        )
        .at(&db)?;
        tx.commit().at(&db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(path: PathBuf) -> Candidate {
        Candidate {
            key: key_of(&path),
            file: NativeFile {
                agent: Agent::Claude,
                path,
                id_hint: None,
                sidechain_of: None,
                compressed: false,
            },
            stat: Ok(Stat::default()),
            sidecar: None,
            library: false,
            row: None,
            unchanged: false,
            prior: None,
        }
    }

    fn outcomes(c: Candidate) -> Vec<Outcome> {
        let mut out = Vec::new();
        parse_file(c, &mut |o| out.push(o));
        out
    }

    #[test]
    fn a_large_file_is_fed_in_pieces_that_add_up_to_one_feed() {
        let mut bytes = Vec::new();
        let long = "x".repeat(PIECE_BYTES as usize + 1000);
        for i in 0..3000u32 {
            let text = if i == 1500 {
                long.as_str()
            } else {
                "some output text"
            };
            let line = serde_json::json!({"timestamp": "2025-01-01T00:00:00Z", "type": "response_item",
                "payload": {"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": format!("{i} {text} {}", "y".repeat(2000))}]}});
            bytes.extend(serde_json::to_vec(&line).unwrap());
            bytes.push(b'\n');
        }
        bytes.extend(b"{\"torn\":");
        let whole = feed(&mut FileReader::new(Agent::Codex), &bytes, None, None);
        let mut pieces = Vec::new();
        feed_pieces(
            FileReader::new(Agent::Codex),
            &mut bytes.as_slice(),
            None,
            None,
            None,
            &mut |fed| pieces.push(fed),
        )
        .unwrap();
        assert!(pieces.len() > 2, "{} pieces", pieces.len());
        assert!(pieces[0].first && pieces[0].fresh());
        assert!(pieces[1..].iter().all(|p| !p.first && !p.fresh()));
        let last = pieces.last().unwrap();
        assert_eq!(last.state, whole.state);
        assert_eq!(
            (&last.digest, last.digest_off),
            (&whole.digest, whole.digest_off)
        );
        assert_eq!(last.head, head_digest(&bytes, whole.state.consumed));
        assert_eq!(
            pieces.iter().map(|p| p.bytes_read).sum::<u64>(),
            bytes.len() as u64
        );
        let texts = |m: &[Message]| m.iter().map(|m| m.text.clone()).collect::<Vec<_>>();
        let pieced: Vec<Message> = pieces.into_iter().flat_map(|p| p.messages).collect();
        assert_eq!(texts(&pieced), texts(&whole.messages));
        assert_eq!(pieced.len(), 3000);
    }

    #[test]
    fn a_file_deleted_between_walk_and_read_is_vanished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.jsonl");
        std::fs::write(&path, b"{}\n").unwrap();
        let w = candidate(path.clone());
        std::fs::remove_file(&path).unwrap();
        match outcomes(w).pop().unwrap() {
            Outcome::Vanished { key, issue } => {
                assert_eq!(key, key_of(&path));
                assert!(issue.to_string().contains("vanished"), "{issue}");
            }
            _ => panic!("expected a vanished outcome"),
        }
    }

    #[test]
    fn an_unreadable_path_is_an_issue_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where a file is expected: open succeeds, read fails (EISDIR).
        let path = dir.path().join("dir.jsonl");
        std::fs::create_dir(&path).unwrap();
        match outcomes(candidate(path.clone())).pop().unwrap() {
            Outcome::Failed { issue } => {
                assert!(issue.to_string().starts_with(&key_of(&path)), "{issue}");
                assert!(issue.message.contains("skipped"), "{issue}");
            }
            _ => panic!("expected a failed outcome"),
        }
    }

    #[test]
    fn digest_covers_the_last_consumed_line() {
        let bytes = b"{\"a\":1}\n{\"b\":2}\npartial";
        let fed = feed(&mut FileReader::new(Agent::Codex), bytes, None, None);
        assert_eq!(fed.state.consumed, 16);
        assert_eq!(fed.digest_off, 8);
        assert_eq!(fed.digest.unwrap(), digest_hex(b"{\"b\":2}\n"));
    }

    #[test]
    fn library_prefix_covers_only_files_under_the_directory() {
        let prefix = dir_prefix(Path::new("/a/lib"));
        assert!(key_of(Path::new("/a/lib/codex/x.jsonl")).starts_with(&prefix));
        assert!(!key_of(Path::new("/a/library2/x.jsonl")).starts_with(&prefix));
        assert_eq!(dir_prefix(Path::new("/a/lib/")), prefix);
    }
}
