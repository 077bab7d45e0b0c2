//! [`AppendLog`]: the append-only JSONL writer behind every file this crate
//! writes (the rollout, `raw_api.jsonl`, `meta.jsonl`, `session.log`).
//!
//! Each log owns one OS thread fed by a bounded channel. Callers only
//! serialize and enqueue; the thread drains whatever is queued into one batch,
//! writes it with one `write` call and, under [`Durability::Fsync`], makes it
//! durable with one `fdatasync`: concurrent appenders share that sync (group
//! commit). The file is opened in append mode and never rewritten.

use std::fs::File;

use baton_native::write::{self, Owned};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::{RecordError, Result};

/// How far a record has travelled when [`AppendLog::flush`] (and
/// `Recorder::flush`) returns, and what each batch does on its own.
///
/// Every policy writes whole lines in order to a file opened with `O_APPEND`;
/// they differ in when bytes leave the process and when they reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Records collect in a 64 KiB in-process buffer that is written to the OS
    /// when full, on `flush()` and on shutdown. After `flush()` returns the
    /// records survive the process being killed, but not an OS crash or power
    /// loss; without `flush()` a killed process loses up to 64 KiB.
    Buffered,
    /// Every batch the writer dequeues is written to the OS before the next
    /// one is taken. A record reaches the OS page cache within one batch of
    /// being enqueued; after `flush()` returns everything recorded before it
    /// survives the process being killed, but not an OS crash or power loss.
    #[default]
    Flush,
    /// Every batch is written and then `fdatasync`ed before the writer takes
    /// the next one; records enqueued concurrently share one sync. A file (and
    /// any directory) created under this policy has its directory entry
    /// fsynced before the first record is written, so a new rollout cannot
    /// vanish with its parent folder. After `flush()` returns everything
    /// recorded before it is on stable storage and survives power loss (to
    /// the extent the disk honours flushes).
    Fsync,
}

/// Size of the in-process buffer under [`Durability::Buffered`].
const BUFFER_CAP: usize = 64 * 1024;
/// A batch stops draining the channel once it holds this many bytes.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Default capacity of the channel in front of the writer thread.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1024;

/// One line to append, already serialized by the caller.
pub(crate) enum Line {
    /// Complete line bytes without the trailing newline.
    Raw(Vec<u8>),
    /// A rollout envelope; the writer adds `ordinal` when the file has them.
    Envelope {
        timestamp: String,
        kind: &'static str,
        payload: String,
    },
}

enum Cmd {
    Lines(Vec<Line>),
    Barrier(oneshot::Sender<Result<(), String>>),
    Shutdown(oneshot::Sender<Result<(), String>>),
}

/// Handle to an append-only JSONL file written by a background thread.
/// Cheap to clone; the thread exits (after a final write) when the last clone
/// is dropped or [`AppendLog::shutdown`] is called.
#[derive(Clone)]
pub struct AppendLog {
    tx: mpsc::Sender<Cmd>,
    path: Arc<PathBuf>,
    failed: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for AppendLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendLog")
            .field("path", &self.path)
            .finish()
    }
}

/// Settings for [`AppendLog::spawn`].
pub(crate) struct SpawnOptions {
    pub durability: Durability,
    pub capacity: usize,
    /// `Some(n)`: envelopes get `"ordinal": n, n+1, ...` (Codex paginated files).
    pub next_ordinal: Option<u64>,
    /// Kept alive by the writer thread and dropped when it exits (writer locks).
    pub guard: Option<Box<dyn Send>>,
}

impl AppendLog {
    /// Open (creating it if needed) `path` for appending with `durability`.
    ///
    /// If the file ends in a torn line (no trailing newline), a newline is
    /// written before the first new record so the fragment stays its own line.
    /// Under [`Durability::Fsync`] a newly created file's directory entry is
    /// fsynced before the log starts.
    pub fn open(path: impl Into<PathBuf>, durability: Durability) -> Result<AppendLog> {
        let path = path.into();
        let existed = path.exists();
        let file = write::open_owned(&path, Owned::Append, 0o600)
            .map_err(|e| RecordError::io(&path, e))?;
        if !existed {
            sync_new_entry(&path, durability)?;
        }
        Self::spawn(
            file,
            path,
            SpawnOptions {
                durability,
                capacity: DEFAULT_CHANNEL_CAPACITY,
                next_ordinal: None,
                guard: None,
            },
        )
    }

    /// Start the writer thread for an already opened (append-mode) file.
    pub(crate) fn spawn(mut file: File, path: PathBuf, opts: SpawnOptions) -> Result<AppendLog> {
        let needs_newline = !ends_with_newline(&mut file).map_err(|e| RecordError::io(&path, e))?;
        let (tx, rx) = mpsc::channel(opts.capacity.max(1));
        let failed = Arc::new(OnceLock::new());
        let state = WriterState {
            file: Some(file),
            path: path.clone(),
            durability: opts.durability,
            next_ordinal: opts.next_ordinal,
            buf: if needs_newline {
                vec![b'\n']
            } else {
                Vec::new()
            },
            unsynced: false,
            failed: failed.clone(),
            guard: opts.guard,
        };
        std::thread::Builder::new()
            .name("baton-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| RecordError::io(&path, e))?;
        Ok(AppendLog {
            tx,
            path: Arc::new(path),
            failed,
        })
    }

    /// The file this log appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn closed(&self) -> RecordError {
        RecordError::Closed {
            path: self.path.to_path_buf(),
            reason: self
                .failed
                .get()
                .cloned()
                .unwrap_or_else(|| "it was shut down".into()),
        }
    }

    pub(crate) async fn send_lines(&self, lines: Vec<Line>) -> Result<()> {
        if self.failed.get().is_some() {
            return Err(self.closed());
        }
        self.tx
            .send(Cmd::Lines(lines))
            .await
            .map_err(|_| self.closed())
    }

    /// Serialize `value` as one JSON line and enqueue it. Waits only for room
    /// in the channel, never for disk I/O.
    pub async fn append_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value)?;
        self.send_lines(vec![Line::Raw(bytes)]).await
    }

    /// Enqueue one line without waiting; for synchronous callers such as a
    /// tracing writer. Returns false (and drops the line) when the channel is
    /// full or the writer has stopped.
    pub fn try_append_line(&self, line: Vec<u8>) -> bool {
        self.failed.get().is_none() && self.tx.try_send(Cmd::Lines(vec![Line::Raw(line)])).is_ok()
    }

    /// Return once every line enqueued before this call is as durable as the
    /// log's [`Durability`] promises.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Barrier(tx))
            .await
            .map_err(|_| self.closed())?;
        self.wait(rx).await
    }

    /// Write everything queued, close the file and release any locks the log
    /// holds. Later appends through any clone fail with [`RecordError::Closed`].
    pub async fn shutdown(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Shutdown(tx))
            .await
            .map_err(|_| self.closed())?;
        self.wait(rx).await
    }

    async fn wait(&self, rx: oneshot::Receiver<Result<(), String>>) -> Result<()> {
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(RecordError::Closed {
                path: self.path.to_path_buf(),
                reason,
            }),
            Err(_) => Err(self.closed()),
        }
    }
}

/// Create `dir` and its missing ancestors. Under [`Durability::Fsync`] the
/// parent of every directory created is fsynced, so the new entries survive
/// power loss; returns the directories that were synced (in that order).
pub(crate) fn create_dirs(dir: &Path, durability: Durability) -> Result<Vec<PathBuf>> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    std::fs::create_dir_all(dir).map_err(|e| RecordError::io(dir, e))?;
    let mut synced = Vec::new();
    if durability == Durability::Fsync {
        // Outermost first: each parent's entry is durable before its child's.
        for created in missing.iter().rev() {
            if let Some(parent) = created.parent() {
                sync_dir(parent)?;
                synced.push(parent.to_path_buf());
            }
        }
    }
    Ok(synced)
}

/// Under [`Durability::Fsync`], fsync the directory holding the just-created
/// file `path` so its entry survives power loss.
pub(crate) fn sync_new_entry(path: &Path, durability: Durability) -> Result<()> {
    match path.parent() {
        Some(dir) if durability == Durability::Fsync => sync_dir(dir),
        _ => Ok(()),
    }
}

/// fsync a directory (its entries). A no-op where directories cannot be
/// opened as files (Windows).
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let parent = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| RecordError::io(parent, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// True when the file is empty or its last byte is `\n`.
fn ends_with_newline(file: &mut File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

struct WriterState {
    file: Option<File>,
    path: PathBuf,
    durability: Durability,
    next_ordinal: Option<u64>,
    buf: Vec<u8>,
    unsynced: bool,
    failed: Arc<OnceLock<String>>,
    guard: Option<Box<dyn Send>>,
}

impl WriterState {
    fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        while let Some(first) = rx.blocking_recv() {
            let mut waiters = Vec::new();
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Lines(lines) => self.encode(lines),
                    Cmd::Barrier(w) => waiters.push(w),
                    Cmd::Shutdown(w) => {
                        shutdown = Some(w);
                        break;
                    }
                }
                if self.buf.len() < MAX_BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            let forced = !waiters.is_empty() || shutdown.is_some();
            self.commit(forced);
            let result = self.result();
            for w in waiters {
                let _ = w.send(result.clone());
            }
            if let Some(w) = shutdown {
                rx.close();
                self.close();
                let _ = w.send(result);
                return;
            }
        }
        // Every handle was dropped: write what is left, then release the file and locks.
        self.commit(true);
        self.close();
    }

    fn result(&self) -> Result<(), String> {
        self.failed.get().map_or(Ok(()), |e| Err(e.clone()))
    }

    fn close(&mut self) {
        self.file = None;
        self.guard = None;
    }

    fn encode(&mut self, lines: Vec<Line>) {
        if self.failed.get().is_some() {
            return;
        }
        for line in lines {
            match line {
                Line::Raw(bytes) => self.buf.extend_from_slice(&bytes),
                Line::Envelope {
                    timestamp,
                    kind,
                    payload,
                } => {
                    self.buf.extend_from_slice(b"{\"timestamp\":");
                    self.buf
                        .extend_from_slice(json_string(&timestamp).as_bytes());
                    if let Some(n) = self.next_ordinal.as_mut() {
                        self.buf
                            .extend_from_slice(format!(",\"ordinal\":{n}").as_bytes());
                        *n += 1;
                    }
                    self.buf.extend_from_slice(b",\"type\":");
                    self.buf.extend_from_slice(json_string(kind).as_bytes());
                    self.buf.extend_from_slice(b",\"payload\":");
                    self.buf.extend_from_slice(payload.as_bytes());
                    self.buf.push(b'}');
                }
            }
            self.buf.push(b'\n');
        }
    }

    /// Write (and sync) the buffer as the policy requires; `forced` means a
    /// caller is waiting for durability.
    fn commit(&mut self, forced: bool) {
        if self.failed.get().is_some() {
            self.buf.clear();
            return;
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let write_now =
            forced || self.durability != Durability::Buffered || self.buf.len() >= BUFFER_CAP;
        if write_now && !self.buf.is_empty() {
            if let Err(e) = file.write_all(&self.buf) {
                return self.fail("write", e);
            }
            self.buf.clear();
            self.unsynced = true;
        }
        if self.durability == Durability::Fsync && self.unsynced {
            if let Err(e) = file.sync_data() {
                return self.fail("fsync", e);
            }
            self.unsynced = false;
        }
    }

    fn fail(&mut self, what: &str, e: std::io::Error) {
        let msg = format!("{what} failed: {e}");
        tracing::warn!(path = %self.path.display(), "{msg}; later records are dropped");
        let _ = self.failed.set(msg);
        self.buf.clear();
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_lines_and_repairs_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"torn").unwrap();
        for durability in [Durability::Buffered, Durability::Flush, Durability::Fsync] {
            let log = AppendLog::open(&path, durability).unwrap();
            log.append_json(&serde_json::json!({"d": format!("{durability:?}")}))
                .await
                .unwrap();
            log.flush().await.unwrap();
            log.shutdown().await.unwrap();
            assert!(log.append_json(&1).await.is_err());
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"a\":1}\n{\"torn\n{\"d\":\"Buffered\"}\n{\"d\":\"Flush\"}\n{\"d\":\"Fsync\"}\n"
        );
    }

    #[test]
    fn fsync_syncs_the_parent_of_every_created_directory() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        assert!(create_dirs(&deep, Durability::Flush).unwrap().is_empty());
        assert!(deep.is_dir());
        let deeper = deep.join("d/e");
        assert_eq!(
            create_dirs(&deeper, Durability::Fsync).unwrap(),
            vec![deep.clone(), deep.join("d")]
        );
        // Nothing created, nothing to sync.
        assert!(create_dirs(&deeper, Durability::Fsync).unwrap().is_empty());
        sync_new_entry(&deeper.join("f.jsonl"), Durability::Fsync).unwrap();
        // A new file under Fsync: its directory is synced, the log works.
        let log_path = deeper.join("new.jsonl");
        let opened = AppendLog::open(&log_path, Durability::Fsync);
        assert!(opened.is_ok() && log_path.exists());
    }

    #[tokio::test]
    async fn buffered_writes_on_drop_and_ordinals_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let file = write::open_owned(&path, Owned::Append, 0o600).unwrap();
        let log = AppendLog::spawn(
            file,
            path.clone(),
            SpawnOptions {
                durability: Durability::Buffered,
                capacity: 4,
                next_ordinal: Some(7),
                guard: None,
            },
        )
        .unwrap();
        for i in 0..3 {
            log.send_lines(vec![Line::Envelope {
                timestamp: "t".into(),
                kind: "k",
                payload: format!("{{\"i\":{i}}}"),
            }])
            .await
            .unwrap();
        }
        assert!(log.try_append_line(b"{}".to_vec()));
        log.flush().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"timestamp":"t","ordinal":7,"type":"k","payload":{"i":0}}"#
        );
        assert!(text.contains(r#""ordinal":9,"#));
        assert_eq!(text.lines().count(), 4);
    }
}
