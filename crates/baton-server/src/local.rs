//! This machine's own sessions in the built-in `local` account.
//!
//! `baton serve` mirrors every Codex rollout and Claude Code transcript it
//! finds under the agent homes into the `local` account, through the same
//! [`Storage::append`] path remote pushes use: each native file becomes a
//! stream of a session (`main`, or `subagents/<file>` for a Claude subagent
//! transcript), and the indexer then makes them searchable. A single user
//! therefore gets a complete web UI with no `push` step; the copy costs disk
//! space in the server's data directory, and `--no-catalog` turns it off.
//!
//! What the mirror last saw of each file (size, mtime, inode/device and the
//! hash state of the bytes the server holds) is kept in storage
//! ([`Storage::mirror_files`]), so after a restart an unchanged file costs
//! one stat, and a grown file is read from where the server copy ends, in
//! bounded pieces. A file without a saved state (first sight, a moved file,
//! a lost state) is hashed as it is read and compared with the server
//! stream's length and sha256; only the bytes past the server's end are sent.
//!
//! The mirror never modifies an agent's file, and the server copy is
//! append-only. A file that no longer extends the server stream (rewritten
//! or truncated) is reported once and left alone while it stays the same
//! file; the server keeps the copy mirrored earlier.

use crate::hash::RunningSha256;
use crate::storage::{MirrorFile, Storage, StorageError};
use baton_native::discover::FileStat;
use baton_native::layout::library;
use baton_native::{Agent, NativeFile};
use baton_protocol::{self as protocol, SessionMeta};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Largest piece read and pushed in one append by the mirror.
const PIECE: u64 = 8 * 1024 * 1024;

/// Buffer used while hashing a file's prefix.
const HASH_BUF: usize = 64 * 1024;

/// Saved states are written after this many changed files (and at the end of a scan).
const SAVE_EVERY: usize = 256;

/// A native file as one boxed blocking reader.
type NativeReader = Box<dyn Read + Send>;

/// The agent homes whose sessions are mirrored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalSources {
    /// Codex homes (`$CODEX_HOME`).
    pub codex_homes: Vec<PathBuf>,
    /// Claude Code config dirs (`$CLAUDE_CONFIG_DIR`).
    pub claude_dirs: Vec<PathBuf>,
}

/// Outcome of one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Files that had new bytes and were pushed.
    pub updated: usize,
    /// Bytes read from local files (uncompressed bytes for `.zst` files).
    pub bytes_read: u64,
    /// Problems, one line each, naming the path.
    pub issues: Vec<String>,
}

/// Mirrors local sessions into the `local` account.
pub struct Mirror {
    storage: Arc<dyn Storage>,
    user: i64,
    sources: LocalSources,
    /// Saved per-file states by path; `None` until loaded by the first scan.
    files: Option<HashMap<String, MirrorFile>>,
    /// States changed since the last save, by path.
    unsaved: HashMap<String, MirrorFile>,
    /// Paths whose saved state must be dropped at the next save.
    forget: HashSet<String>,
    /// Bytes read from local files during the current scan.
    bytes_read: u64,
}

/// Where a native file goes on the server: (session id, stream name); see
/// [`library::stream_name`].
fn target(file: &NativeFile) -> Option<(String, String)> {
    let id = file.sidechain_of.as_ref().or(file.id_hint.as_ref())?;
    let stream = library::stream_name(file.agent, id, &file.path)?;
    Some((id.clone(), stream))
}

/// What a scan does with one file, given its saved state and current stat.
#[derive(Debug)]
enum Plan {
    /// Nothing changed (or it diverged earlier and is still the same, not shrunk, file).
    Skip,
    /// The same plain file grew: read on from the end of the mirrored bytes.
    Resume(RunningSha256),
    /// Compare the file with the server stream from its first byte.
    Verify,
}

fn plan(known: Option<&MirrorFile>, stat: &FileStat, compressed: bool) -> Plan {
    let Some(known) = known else {
        return Plan::Verify;
    };
    if !known.stat.same_file(stat) {
        return Plan::Verify;
    }
    if known.diverged {
        return if stat.size >= known.stat.size {
            Plan::Skip
        } else {
            Plan::Verify
        };
    }
    if stat.size == known.stat.size && stat.mtime_ns == known.stat.mtime_ns {
        return Plan::Skip;
    }
    // A plain file's saved size is the number of bytes mirrored.
    if !compressed && stat.size > known.stat.size && known.mirrored.len() == known.stat.size {
        return Plan::Resume(known.mirrored.clone());
    }
    Plan::Verify
}

/// Read up to `max` bytes (fewer only at the end of the file).
async fn read_piece(mut reader: NativeReader, max: u64) -> Result<(NativeReader, Vec<u8>), String> {
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(max.min(PIECE) as usize);
        (&mut reader).take(max).read_to_end(&mut buf)?;
        Ok::<_, std::io::Error>((reader, buf))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot read: {e}"))
}

/// Hash the first `len` bytes (fewer only when the file is shorter).
async fn hash_prefix(
    mut reader: NativeReader,
    len: u64,
) -> Result<(NativeReader, RunningSha256), String> {
    tokio::task::spawn_blocking(move || {
        let mut hash = RunningSha256::new();
        let mut buf = vec![0u8; HASH_BUF];
        while hash.len() < len {
            let want = (len - hash.len()).min(HASH_BUF as u64) as usize;
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hash.update(&buf[..n]);
        }
        Ok((reader, hash))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot read: {e}"))
}

/// Open a native file at uncompressed offset `from`.
async fn open(path: PathBuf, compressed: bool, from: u64) -> Result<NativeReader, String> {
    tokio::task::spawn_blocking(move || {
        baton_native::discover::open_native_path(&path, compressed, from)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot read: {e}"))
}

const DIVERGED: &str = "the file no longer extends the copy mirrored earlier (it was rewritten or truncated); the server keeps that copy, and this file is not mirrored while it stays as it is";

impl Mirror {
    /// A mirror for `user` over `sources`; the saved file states are loaded by the first scan.
    pub fn new(storage: Arc<dyn Storage>, user: i64, sources: LocalSources) -> Self {
        Self {
            storage,
            user,
            sources,
            files: None,
            unsaved: HashMap::new(),
            forget: HashSet::new(),
            bytes_read: 0,
        }
    }

    /// Rescan forever, every `every` or sooner when `rescan_now` is
    /// notified, waking the indexer after changes.
    pub async fn run(mut self, every: Duration, rescan_now: Arc<Notify>, wake: Arc<Notify>) {
        loop {
            let report = self.scan().await;
            for issue in &report.issues {
                tracing::warn!("local sessions: {issue}");
            }
            if report.updated > 0 {
                tracing::info!(
                    "local sessions: {} file(s) updated, {} byte(s) read",
                    report.updated,
                    report.bytes_read
                );
                wake.notify_one();
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = rescan_now.notified() => {}
            }
        }
    }

    /// Find every native file and push what is new.
    pub async fn scan(&mut self) -> ScanReport {
        self.bytes_read = 0;
        let mut issues = Vec::new();
        if self.files.is_none() {
            let saved = match self.storage.mirror_files(self.user).await {
                Ok(saved) => saved,
                Err(e) => {
                    issues.push(format!(
                        "cannot load the saved state of mirrored files ({e}); every file is compared with the server copy instead"
                    ));
                    Vec::new()
                }
            };
            self.files = Some(saved.into_iter().map(|f| (f.path.clone(), f)).collect());
        }
        let sources = self.sources.clone();
        let found = tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            let mut issues = Vec::new();
            for home in &sources.codex_homes {
                let (f, i) = baton_native::discover_codex(home);
                files.extend(f);
                issues.extend(i);
            }
            for dir in &sources.claude_dirs {
                let (f, i) = baton_native::discover_claude(dir);
                files.extend(f);
                issues.extend(i);
            }
            (files, issues)
        })
        .await;
        let files = match found {
            Ok((files, found_issues)) => {
                issues.extend(found_issues);
                files
            }
            Err(e) => {
                issues.push(format!("discovery failed: {e}"));
                return ScanReport {
                    updated: 0,
                    bytes_read: 0,
                    issues,
                };
            }
        };
        let mut updated = 0;
        let mut seen = HashSet::with_capacity(files.len());
        for file in files {
            let key = file.path.to_string_lossy().into_owned();
            match self.sync_file(&file, &key).await {
                Ok(true) => updated += 1,
                Ok(false) => {}
                Err(e) => issues.push(format!("{}: {e}", file.path.display())),
            }
            seen.insert(key);
            if self.unsaved.len() >= SAVE_EVERY {
                issues.extend(self.save().await);
            }
        }
        for path in self.forget_vanished(&seen) {
            if let Some((agent, id)) = library::main_session_of(Path::new(&path))
                && let Err(e) = self.set_archived(id, agent, true).await
            {
                issues.push(format!(
                    "{path}: gone, but cannot mark its session archived: {e}"
                ));
            }
        }
        issues.extend(self.save().await);
        ScanReport {
            updated,
            bytes_read: self.bytes_read,
            issues,
        }
    }

    /// Drop the states of files that were not found and no longer exist;
    /// their paths.
    fn forget_vanished(&mut self, seen: &HashSet<String>) -> Vec<String> {
        let Some(files) = &mut self.files else {
            return Vec::new();
        };
        let gone: Vec<String> = files
            .keys()
            .filter(|path| !seen.contains(*path))
            .filter(|path| {
                matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            })
            .cloned()
            .collect();
        for path in &gone {
            files.remove(path);
            self.unsaved.remove(path);
            self.forget.insert(path.clone());
        }
        gone
    }

    /// Mark session `id` archived (its agent's file is gone; the server copy
    /// stays) or, with `false`, back on disk; a session the server does not
    /// hold is left alone.
    async fn set_archived(&self, id: &str, agent: Agent, archived: bool) -> Result<(), String> {
        match self.storage.session(self.user, id).await {
            Ok(info) if info.archived != archived => {
                let meta = SessionMeta {
                    archived,
                    ..SessionMeta::of_agent(agent)
                };
                self.storage
                    .put_session(self.user, id, meta)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Ok(_) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Write the changed states; the issue when that failed (they are kept for the next try).
    async fn save(&mut self) -> Option<String> {
        if self.unsaved.is_empty() && self.forget.is_empty() {
            return None;
        }
        let save: Vec<MirrorFile> = self.unsaved.values().cloned().collect();
        let forget: Vec<String> = self.forget.iter().cloned().collect();
        match self
            .storage
            .save_mirror_files(self.user, save, forget)
            .await
        {
            Ok(()) => {
                self.unsaved.clear();
                self.forget.clear();
                None
            }
            Err(e) => Some(format!(
                "cannot save the state of mirrored files ({e}); it is retried after the next scan"
            )),
        }
    }

    /// Remember a file's state (or, with `None`, forget it so it is verified next time).
    fn remember(&mut self, key: &str, state: Option<MirrorFile>) {
        let files = self.files.get_or_insert_with(HashMap::new);
        match state {
            Some(state) => {
                self.forget.remove(key);
                files.insert(key.to_string(), state.clone());
                self.unsaved.insert(key.to_string(), state);
            }
            None => {
                if files.remove(key).is_some() {
                    self.forget.insert(key.to_string());
                }
                self.unsaved.remove(key);
            }
        }
    }

    /// Push a file's new bytes; `Ok(true)` when something was sent.
    async fn sync_file(&mut self, file: &NativeFile, key: &str) -> Result<bool, String> {
        let Some((id, stream)) = target(file) else {
            return Err("cannot tell the session id from the file name; skipped".into());
        };
        protocol::validate_session_id(&id).map_err(|e| e.0)?;
        protocol::validate_stream_name(&stream).map_err(|e| e.0)?;
        let stat = FileStat::of(&std::fs::metadata(&file.path).map_err(|e| e.to_string())?);
        let known = self.files.as_ref().and_then(|f| f.get(key));
        let (reader, hash) = match plan(known, &stat, file.compressed) {
            Plan::Skip => return Ok(false),
            Plan::Resume(hash) => {
                let reader = open(file.path.clone(), file.compressed, hash.len()).await?;
                (reader, hash)
            }
            Plan::Verify => {
                let (server_len, server_sha) =
                    self.ensure_session(&id, file.agent, &stream).await?;
                let reader = open(file.path.clone(), file.compressed, 0).await?;
                let (reader, hash) = hash_prefix(reader, server_len).await?;
                self.bytes_read += hash.len();
                if hash.len() < server_len || hash.hex() != server_sha {
                    self.mark_diverged(key, stat, hash);
                    return Err(DIVERGED.into());
                }
                (reader, hash)
            }
        };
        self.push_rest(file, key, stat, (&id, &stream), (reader, hash))
            .await
    }

    /// Record that `key` no longer extends its server stream.
    fn mark_diverged(&mut self, key: &str, stat: FileStat, hash: RunningSha256) {
        let state = MirrorFile {
            path: key.to_string(),
            stat,
            mirrored: hash,
            diverged: true,
        };
        self.remember(key, Some(state));
    }

    /// Append the file's bytes after `hash.len()` (`from`: the reader there
    /// and the hash of what is mirrored) to stream `stream` of session `id`
    /// in pieces, then remember how far it got.
    async fn push_rest(
        &mut self,
        file: &NativeFile,
        key: &str,
        stat: FileStat,
        (id, stream): (&str, &str),
        from: (NativeReader, RunningSha256),
    ) -> Result<bool, String> {
        let (mut reader, mut hash) = from;
        let mut sent = false;
        let outcome = loop {
            // A plain file is read up to its stat'ed size, so its saved size
            // is exactly what was mirrored; bytes written since wait for the next scan.
            let want = if file.compressed {
                PIECE
            } else {
                stat.size.saturating_sub(hash.len()).min(PIECE)
            };
            if want == 0 {
                break Ok(());
            }
            let piece = match read_piece(reader, want).await {
                Ok((r, piece)) => {
                    reader = r;
                    piece
                }
                Err(e) => break Err(e),
            };
            self.bytes_read += piece.len() as u64;
            if piece.is_empty() {
                break Ok(());
            }
            let short = (piece.len() as u64) < want;
            let mut next = hash.clone();
            next.update(&piece);
            let res = self
                .storage
                .append(
                    self.user,
                    id,
                    stream,
                    hash.len(),
                    hash.digest(),
                    Bytes::from(piece),
                )
                .await;
            match res {
                Ok(_) => {
                    hash = next;
                    sent = true;
                }
                Err(StorageError::Diverged { .. }) | Err(StorageError::OffsetAhead { .. }) => {
                    self.mark_diverged(key, stat, hash);
                    return Err(DIVERGED.into());
                }
                Err(StorageError::NotFound) => {
                    self.remember(key, None);
                    return Err("the server copy of this session is gone; the file is sent again at the next scan".into());
                }
                Err(e) => break Err(e.to_string()),
            }
            if short {
                break Ok(());
            }
        };
        // A plain file's state records the bytes mirrored so far, so a failed
        // scan resumes where it stopped; a `.zst` file is only remembered once
        // read to its end (it cannot be resumed, only verified again).
        let size = if !file.compressed {
            Some(hash.len())
        } else if outcome.is_ok() {
            Some(stat.size)
        } else {
            None
        };
        let state = size.map(|size| MirrorFile {
            path: key.to_string(),
            stat: FileStat { size, ..stat },
            mirrored: hash,
            diverged: false,
        });
        self.remember(key, state);
        outcome.map(|()| sent)
    }

    /// Create the session if needed; the server length and sha256 of `stream`.
    async fn ensure_session(
        &self,
        id: &str,
        agent: Agent,
        stream: &str,
    ) -> Result<(u64, String), String> {
        let empty = || (0, protocol::EMPTY_SHA256.to_string());
        match self.storage.session(self.user, id).await {
            Ok(info) => {
                if info.archived && stream == protocol::MAIN_STREAM {
                    self.set_archived(id, agent, false).await?;
                }
                Ok(info
                    .streams
                    .into_iter()
                    .find(|s| s.name == stream)
                    .map(|s| (s.len, s.sha256))
                    .unwrap_or_else(empty))
            }
            Err(StorageError::NotFound) => {
                let meta = SessionMeta::of_agent(agent);
                self.storage
                    .put_session(self.user, id, meta)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(empty())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
