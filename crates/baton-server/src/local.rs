//! This machine's own sessions in the built-in `local` account.
//!
//! `baton serve` mirrors every Codex rollout and Claude Code transcript it
//! finds under the agent homes into the `local` account, through the same
//! [`Storage::append`] path remote pushes use: each native file becomes a
//! stream of a session (`main`, or `subagents/<file>` for a Claude subagent
//! transcript), only the bytes appended since the last scan are read and
//! sent, and the indexer then makes them searchable. A single user therefore
//! gets a complete web UI with no `push` step; the copy costs disk space in
//! the server's data directory, and `--no-catalog` turns it off.
//!
//! The mirror never modifies an agent's file. A file whose start no longer
//! matches what was mirrored (rewritten, not appended) is reported and left
//! as it is on the server.

use crate::hash::RunningSha256;
use crate::storage::{Storage, StorageError};
use baton_native::{Agent, NativeFile};
use baton_sync::protocol::{self, MAIN_STREAM, SessionMeta};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Largest piece pushed in one append by the mirror.
const PIECE: usize = 8 * 1024 * 1024;

/// The agent homes whose sessions are mirrored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalSources {
    /// Codex homes (`$CODEX_HOME`).
    pub codex_homes: Vec<PathBuf>,
    /// Claude Code config dirs (`$CLAUDE_CONFIG_DIR`).
    pub claude_dirs: Vec<PathBuf>,
}

/// What one file looks like on the server, as far as the mirror knows.
#[derive(Debug, Clone)]
struct Mirrored {
    hash: RunningSha256,
    /// Set when the file diverged from the server copy; retried when its size changes.
    stuck_at_len: Option<u64>,
}

/// Outcome of one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Files that had new bytes and were pushed.
    pub updated: usize,
    /// Problems, one line each, naming the path.
    pub issues: Vec<String>,
}

/// Mirrors local sessions into the `local` account.
pub struct Mirror {
    storage: Arc<dyn Storage>,
    user: i64,
    sources: LocalSources,
    files: HashMap<PathBuf, Mirrored>,
}

/// Where a native file goes on the server: (session id, stream name).
fn target(file: &NativeFile) -> Option<(String, String)> {
    match &file.sidechain_of {
        Some(parent) => {
            let name = file.path.file_name()?.to_str()?;
            let name = name.strip_suffix(".zst").unwrap_or(name);
            Some((parent.clone(), format!("subagents/{name}")))
        }
        None => Some((file.id_hint.clone()?, MAIN_STREAM.to_string())),
    }
}

impl Mirror {
    /// A mirror for `user` over `sources`.
    pub fn new(storage: Arc<dyn Storage>, user: i64, sources: LocalSources) -> Self {
        Self {
            storage,
            user,
            sources,
            files: HashMap::new(),
        }
    }

    /// Rescan forever, every `every`, waking the indexer after changes.
    pub async fn run(mut self, every: Duration, wake: Arc<Notify>) {
        loop {
            let report = self.scan().await;
            for issue in &report.issues {
                tracing::warn!("local sessions: {issue}");
            }
            if report.updated > 0 {
                tracing::info!("local sessions: {} file(s) updated", report.updated);
                wake.notify_one();
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Find every native file and push what is new.
    pub async fn scan(&mut self) -> ScanReport {
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
        let (files, mut issues) = match found {
            Ok(v) => v,
            Err(e) => {
                return ScanReport {
                    updated: 0,
                    issues: vec![format!("discovery failed: {e}")],
                };
            }
        };
        let mut updated = 0;
        for file in files {
            match self.sync_file(&file).await {
                Ok(true) => updated += 1,
                Ok(false) => {}
                Err(e) => issues.push(format!("{}: {e}", file.path.display())),
            }
        }
        ScanReport { updated, issues }
    }

    /// Push a file's new bytes; `Ok(true)` when something was sent.
    async fn sync_file(&mut self, file: &NativeFile) -> Result<bool, String> {
        let Some((id, stream)) = target(file) else {
            return Err("cannot tell the session id from the file name; skipped".into());
        };
        protocol::validate_session_id(&id).map_err(|e| e.0)?;
        protocol::validate_stream_name(&stream).map_err(|e| e.0)?;
        let size = if file.compressed {
            None
        } else {
            Some(
                std::fs::metadata(&file.path)
                    .map_err(|e| e.to_string())?
                    .len(),
            )
        };
        if let (Some(m), Some(size)) = (self.files.get(&file.path), size) {
            if m.hash.len() == size || m.stuck_at_len == Some(size) {
                return Ok(false);
            }
            if size < m.hash.len() {
                self.files.remove(&file.path);
            }
        }
        let known = self.files.get(&file.path).cloned();
        let from = known.as_ref().map(|m| m.hash.len()).unwrap_or(0);
        let path = file.path.clone();
        let compressed = file.compressed;
        let bytes = tokio::task::spawn_blocking(move || {
            baton_native::discover::read_native_path(&path, compressed, from)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read: {e}"))?;
        let mut hash = match known {
            Some(m) => m.hash,
            None => {
                // First sight: find what the server already has, and check it is our prefix.
                let server_len = self.ensure_session(&id, file.agent, &stream).await?;
                let mut h = RunningSha256::new();
                let upto = (server_len as usize).min(bytes.len());
                h.update(&bytes[..upto]);
                h
            }
        };
        let skip = (hash.len() - from) as usize;
        let mut sent = false;
        for piece in bytes[skip.min(bytes.len())..].chunks(PIECE) {
            let res = self
                .storage
                .append(
                    self.user,
                    &id,
                    &stream,
                    hash.len(),
                    hash.digest(),
                    Bytes::copy_from_slice(piece),
                )
                .await;
            match res {
                Ok(_) => {
                    hash.update(piece);
                    sent = true;
                }
                Err(StorageError::Diverged { .. }) | Err(StorageError::OffsetAhead { .. }) => {
                    let len = from + bytes.len() as u64;
                    self.files.insert(
                        file.path.clone(),
                        Mirrored {
                            hash,
                            stuck_at_len: Some(len),
                        },
                    );
                    return Err("the file no longer starts with the bytes mirrored earlier (it was rewritten); the server keeps the earlier copy".into());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        self.files.insert(
            file.path.clone(),
            Mirrored {
                hash,
                stuck_at_len: None,
            },
        );
        Ok(sent)
    }

    /// Create the session if needed; the server length of `stream`.
    async fn ensure_session(&self, id: &str, agent: Agent, stream: &str) -> Result<u64, String> {
        match self.storage.session(self.user, id).await {
            Ok(info) => Ok(info
                .streams
                .iter()
                .find(|s| s.name == stream)
                .map(|s| s.len)
                .unwrap_or(0)),
            Err(StorageError::NotFound) => {
                let meta = SessionMeta {
                    agent,
                    cwd: None,
                    title: None,
                    first_prompt: None,
                    started_at: None,
                    updated_at: None,
                    forked_from: None,
                    encrypted: false,
                };
                self.storage
                    .put_session(self.user, id, meta)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(0)
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
