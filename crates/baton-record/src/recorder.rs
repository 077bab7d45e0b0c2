//! [`Recorder`]: writes one session as a Codex-compatible rollout.
//!
//! Layout (Codex's legacy, non-paginated layout, which `codex` 0.169 resumes):
//! `<codex_home>/sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<uuid v7>.jsonl`
//! (local time, as Codex names them), first line `session_meta`, then
//! `response_item` and `baton_state` lines. When resuming a paginated file the
//! recorder continues its ordinals instead.

use baton_native::write::{self, Owned};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{RecordError, Result};
use crate::load::{LoadedSession, load};
use crate::lock::SessionLock;
use crate::session_dir::{SessionDir, SessionLogRouter};
use crate::types::{
    BaseInstructions, KIND_RESPONSE_ITEM, KIND_SESSION_META, KIND_STATE, ResponseItem,
    RolloutSessionMeta, StateSnapshot, now_timestamp,
};
use crate::writer::{
    AppendLog, DEFAULT_CHANNEL_CAPACITY, Durability, Line, SpawnOptions, create_dirs,
    sync_new_entry,
};
use baton_native::layout::codex;

/// Folder under the Codex home holding rollouts.
pub const SESSIONS_SUBDIR: &str = codex::SESSIONS_DIR;

/// How to create or resume sessions.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Codex home (`$CODEX_HOME`, usually `~/.codex`): rollouts and locks go here.
    pub codex_home: PathBuf,
    /// Working directory recorded in `session_meta`.
    pub cwd: PathBuf,
    /// `session_meta.originator`.
    pub originator: String,
    /// `session_meta.cli_version`.
    pub cli_version: String,
    /// `session_meta.source`; `cli` makes sessions visible in `codex resume`'s picker.
    pub source: String,
    /// `session_meta.model_provider`; Codex's picker only lists sessions of the current provider.
    pub model_provider: String,
    /// Base instructions persisted in `session_meta`.
    pub base_instructions: Option<String>,
    /// Durability of appended records.
    pub durability: Durability,
    /// Capacity of the channel in front of the writer thread.
    pub channel_capacity: usize,
    /// Persistence: `Some(data_dir)` puts a session directory under
    /// `<data_dir>/sessions/<id>/`; `None` changes nothing.
    pub persistence: Option<PathBuf>,
    /// Router that sends each session's tracing events to its `session.log`.
    pub log_router: Option<SessionLogRouter>,
}

impl RecorderConfig {
    /// Defaults: originator `baton`, this crate's version, source `cli`,
    /// provider `openai`, [`Durability::Flush`], persistence off.
    pub fn new(codex_home: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Self {
        RecorderConfig {
            codex_home: codex_home.into(),
            cwd: cwd.into(),
            originator: "baton".into(),
            cli_version: env!("CARGO_PKG_VERSION").into(),
            source: "cli".into(),
            model_provider: "openai".into(),
            base_instructions: None,
            durability: Durability::default(),
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            persistence: None,
            log_router: None,
        }
    }
}

/// Path of a new rollout for session `id` created at local time `at`
/// (see [`codex::new_rollout_path`]).
pub fn rollout_path(codex_home: &Path, id: Uuid, at: &jiff::Zoned) -> PathBuf {
    codex_home.join(codex::new_rollout_path(&id.to_string(), at))
}

/// Session (thread) id encoded in the name of a plain rollout file
/// (`rollout-<ts>-<uuid>.jsonl`, or a revert segment
/// `rollout-<ts>-<uuid>_<rollout-id>.jsonl`); `None` for a `.zst` file,
/// which cannot be appended to.
pub fn id_from_path(path: &Path) -> Option<Uuid> {
    let name = codex::RolloutName::of_path(path).filter(|n| !n.compressed)?;
    Uuid::parse_str(name.thread_id).ok()
}

struct Inner {
    id: Uuid,
    path: PathBuf,
    log: AppendLog,
    session_dir: Option<SessionDir>,
    router: Option<SessionLogRouter>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(router) = &self.router {
            router.detach(&self.id.to_string());
        }
    }
}

/// Appends one session to its rollout. Cheap to clone; all clones share one
/// writer thread, which holds the session's writer lock until
/// [`Recorder::shutdown`] or until the last clone is dropped.
///
/// `record_*` calls serialize and enqueue, waiting only when the bounded
/// channel is full; disk I/O happens on the writer thread.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.inner.id)
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Recorder {
    /// Start a new session with a fresh UUID v7 and write its `session_meta`.
    pub async fn create(config: &RecorderConfig) -> Result<Recorder> {
        Self::create_with(config, Map::new()).await
    }

    /// [`Recorder::create`] with extra `session_meta` fields (e.g. `forked_from_id`).
    pub async fn create_with(
        config: &RecorderConfig,
        extra: Map<String, Value>,
    ) -> Result<Recorder> {
        let id = Uuid::now_v7();
        let now = jiff::Zoned::now();
        let path = rollout_path(&config.codex_home, id, &now);
        let meta = RolloutSessionMeta {
            id: id.to_string(),
            timestamp: now_timestamp(),
            cwd: config.cwd.display().to_string(),
            originator: config.originator.clone(),
            cli_version: config.cli_version.clone(),
            source: config.source.clone(),
            model_provider: config.model_provider.clone(),
            base_instructions: config
                .base_instructions
                .clone()
                .map(|text| BaseInstructions { text }),
            extra,
        };
        let payload = serde_json::to_string(&meta)?;
        let cfg = config.clone();
        let p = path.clone();
        let log = blocking(move || {
            let lock = SessionLock::acquire(&cfg.codex_home, &id.to_string())?;
            if let Some(dir) = p.parent() {
                create_dirs(dir, cfg.durability)?;
            }
            let file = write::open_owned(&p, Owned::AppendNew, 0o600)
                .map_err(|e| RecordError::io(&p, e))?;
            // Under Fsync the new entry is durable before session_meta is written.
            sync_new_entry(&p, cfg.durability)?;
            AppendLog::spawn(file, p, spawn_options(&cfg, None, lock))
        })
        .await??;
        log.send_lines(vec![Line::Envelope {
            timestamp: meta.timestamp.clone(),
            kind: KIND_SESSION_META,
            payload,
        }])
        .await?;
        Ok(Self::finish(config, id, path, log).await)
    }

    /// Continue the session stored at `path`, appending to the same file.
    ///
    /// Takes the writer lock before reading, repairs a torn last line with a
    /// newline before the first append, and continues ordinals when the file
    /// is paginated.
    pub async fn resume(config: &RecorderConfig, path: &Path) -> Result<(Recorder, LoadedSession)> {
        let path = path.to_path_buf();
        let id = id_from_path(&path).ok_or_else(|| RecordError::Invalid {
            path: path.clone(),
            reason: "not a rollout file name (expected rollout-<timestamp>-<uuid>.jsonl or rollout-<timestamp>-<uuid>_<rollout-id>.jsonl)".into(),
        })?;
        let cfg = config.clone();
        let p = path.clone();
        let (log, loaded) = blocking(move || {
            let lock = SessionLock::acquire(&cfg.codex_home, &id.to_string())?;
            let loaded = load(&p)?;
            if loaded.meta.id != id.to_string() {
                return Err(RecordError::Invalid {
                    path: p,
                    reason: format!(
                        "session_meta id {} does not match the id {id} in the file name",
                        loaded.meta.id
                    ),
                });
            }
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&p)
                .map_err(|e| RecordError::io(&p, e))?;
            let next_ordinal = loaded
                .is_paginated()
                .then(|| loaded.last_ordinal.map_or(0, |n| n + 1));
            let log = AppendLog::spawn(file, p, spawn_options(&cfg, next_ordinal, lock))?;
            Ok((log, loaded))
        })
        .await??;
        Ok((Self::finish(config, id, path, log).await, loaded))
    }

    async fn finish(config: &RecorderConfig, id: Uuid, path: PathBuf, log: AppendLog) -> Recorder {
        let sid = id.to_string();
        let data = config.persistence.clone();
        let durability = config.durability;
        let rollout = path.clone();
        let session_dir = blocking(move || {
            let dir = SessionDir::prepare(data.as_deref(), &sid, durability)?;
            if let Err(e) = dir.link_transcript(&rollout) {
                tracing::warn!(session_id = %sid, "cannot link the transcript into the session directory: {e}");
            }
            Some(dir)
        })
        .await
        .ok()
        .flatten();
        if let (Some(router), Some(dir)) = (&config.log_router, &session_dir) {
            router.attach(dir);
        }
        Recorder {
            inner: Arc::new(Inner {
                id,
                path,
                log,
                router: session_dir.as_ref().and(config.log_router.clone()),
                session_dir,
            }),
        }
    }

    /// The session id.
    pub fn id(&self) -> Uuid {
        self.inner.id
    }

    /// The rollout file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The session directory, when persistence is on and it could be created.
    pub fn session_dir(&self) -> Option<&SessionDir> {
        self.inner.session_dir.as_ref()
    }

    /// Enqueue `items` as `response_item` lines (in order, one batch).
    pub async fn record_items(&self, items: &[ResponseItem]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let timestamp = now_timestamp();
        let mut lines = Vec::with_capacity(items.len());
        for item in items {
            lines.push(Line::Envelope {
                timestamp: timestamp.clone(),
                kind: KIND_RESPONSE_ITEM,
                payload: serde_json::to_string(item)?,
            });
        }
        self.inner.log.send_lines(lines).await
    }

    /// Enqueue a `baton_state` line; [`crate::load`] returns the latest one.
    pub async fn record_state(&self, snapshot: &StateSnapshot) -> Result<()> {
        self.inner
            .log
            .send_lines(vec![Line::Envelope {
                timestamp: now_timestamp(),
                kind: KIND_STATE,
                payload: serde_json::to_string(snapshot)?,
            }])
            .await
    }

    /// Return once everything recorded before this call is durable as the
    /// configured [`Durability`] promises. Fails if a write failed.
    pub async fn flush(&self) -> Result<()> {
        self.inner.log.flush().await
    }

    /// Write what is queued (syncing under [`Durability::Fsync`]), close the
    /// file and release the writer lock. Later records fail.
    pub async fn shutdown(&self) -> Result<()> {
        let result = self.inner.log.shutdown().await;
        if let Some(dir) = &self.inner.session_dir {
            let _ = dir.flush().await;
        }
        result
    }
}

fn spawn_options(
    cfg: &RecorderConfig,
    next_ordinal: Option<u64>,
    lock: SessionLock,
) -> SpawnOptions {
    SpawnOptions {
        durability: cfg.durability,
        capacity: cfg.channel_capacity,
        next_ordinal,
        guard: Some(Box::new(lock)),
    }
}

/// Run blocking file-system work off the async runtime, under the caller's
/// tracing subscriber (so its warnings reach the caller's logs, not the
/// global default).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    tokio::task::spawn_blocking(move || tracing::dispatcher::with_default(&dispatch, f))
        .await
        .map_err(|e| {
            RecordError::io(
                "<blocking task>",
                std::io::Error::other(format!("file-system task failed: {e}")),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_names_carry_the_thread_id() {
        let id = Uuid::parse_str("01a1ff8d-8c3d-7551-b270-db431e8a8997").unwrap();
        let at: jiff::Zoned = "2026-11-21T19:20:28[UTC]".parse().unwrap();
        let path = rollout_path(Path::new("/h"), id, &at);
        assert_eq!(
            path,
            Path::new(&format!(
                "/h/sessions/2026/11/21/rollout-2026-11-21T19-20-28-{id}.jsonl"
            ))
        );
        assert_eq!(id_from_path(&path), Some(id));
        let segment = path.with_file_name(format!(
            "rollout-2026-11-21T19-20-28-{id}_01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b.jsonl"
        ));
        assert_eq!(
            id_from_path(&segment),
            Some(id),
            "the thread, not the segment"
        );
        assert_eq!(id_from_path(&path.with_extension("jsonl.zst")), None);
    }
}
