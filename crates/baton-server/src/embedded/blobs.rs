//! Content-addressed blob files: durable writes, pins that keep a blob of an
//! append in flight alive, deletion of unused blobs, and ranged reads.

use rusqlite::{Connection, params};
use sha2::Digest;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Content-addressed blob files under `blobs/`.
#[derive(Debug, Clone)]
pub(super) struct BlobDir {
    root: PathBuf,
    /// Blobs that appends in flight rely on (name → how many); a pinned blob
    /// is never deleted, even before the chunk referencing it is committed.
    pins: Arc<Mutex<HashMap<String, usize>>>,
}

/// A blob written (or found) for an append that has not finished yet; dropping it unpins.
pub(super) struct BlobPin {
    dir: BlobDir,
    hex: Option<String>,
}

impl BlobPin {
    /// The blob's name (its sha256 in hex).
    pub(super) fn hex(&self) -> &str {
        self.hex.as_deref().unwrap_or_default()
    }

    /// The append was rejected: unpin, and delete the file when no other
    /// append is using it and no chunk references it.
    pub(super) fn discard(mut self, conn: &Connection) {
        let Some(hex) = self.hex.take() else { return };
        let mut pins = self.dir.lock_pins();
        if self.dir.unpin(&mut pins, &hex) == 0 {
            self.dir.remove_if_unreferenced(conn, &hex);
        }
    }
}

impl Drop for BlobPin {
    fn drop(&mut self) {
        if let Some(hex) = self.hex.take() {
            let mut pins = self.dir.lock_pins();
            self.dir.unpin(&mut pins, &hex);
        }
    }
}

impl BlobDir {
    /// Blob files under `root`.
    pub(super) fn new(root: PathBuf) -> Self {
        Self {
            root,
            pins: Arc::default(),
        }
    }

    fn path(&self, hex: &str) -> PathBuf {
        match (hex.get(..2), hex.get(2..)) {
            (Some(shard), Some(rest)) if !rest.is_empty() => self.root.join(shard).join(rest),
            _ => self.root.join(hex),
        }
    }

    fn lock_pins(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drop one pin of `hex`; how many remain.
    fn unpin(&self, pins: &mut HashMap<String, usize>, hex: &str) -> usize {
        match pins.get_mut(hex) {
            Some(n) if *n > 1 => {
                *n -= 1;
                *n
            }
            _ => {
                pins.remove(hex);
                0
            }
        }
    }

    /// Delete a blob file no chunk references (the caller holds the pin lock
    /// and has checked nothing pins it). Failures are logged: an unreferenced
    /// blob is harmless, and the next start-up sweep retries.
    fn remove_if_unreferenced(&self, conn: &Connection, hex: &str) {
        let referenced = conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM chunks WHERE blob = ?1)")
            .and_then(|mut stmt| stmt.query_row(params![hex], |r| r.get::<_, bool>(0)));
        match referenced {
            Ok(true) => {}
            Ok(false) => match std::fs::remove_file(self.path(hex)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot delete unused blob {hex}: {e}"),
            },
            Err(e) => tracing::warn!("cannot check whether blob {hex} is used: {e}"),
        }
    }

    /// Write bytes durably under their sha256, pinned until the append finishes.
    pub(super) fn put(&self, bytes: &[u8]) -> std::io::Result<BlobPin> {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        *self.lock_pins().entry(hex.clone()).or_default() += 1;
        let pin = BlobPin {
            dir: self.clone(),
            hex: Some(hex.clone()),
        };
        let path = self.path(&hex);
        if path.exists() {
            return Ok(pin);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if !dir.is_dir() {
            match std::fs::create_dir(&dir) {
                Ok(()) => std::fs::File::open(&self.root)?.sync_all()?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let tmp_dir = self.root.join("tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        let tmp = tmp_dir.join(format!("{hex}.{:016x}", rand::random::<u64>()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(pin)
    }

    /// Delete temp files and blob files no chunk references, skipping files
    /// modified at or after `before` (they may belong to appends in flight).
    pub(super) fn sweep(
        &self,
        conn: &Connection,
        before: std::time::SystemTime,
    ) -> std::io::Result<usize> {
        let old = |entry: &std::fs::DirEntry| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
        };
        let mut removed = 0;
        for shard in std::fs::read_dir(&self.root)?.flatten() {
            let shard_name = shard.file_name().to_string_lossy().into_owned();
            let Ok(entries) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                if !old(&entry) {
                    continue;
                }
                if shard_name == "tmp" {
                    if std::fs::remove_file(entry.path()).is_ok() {
                        removed += 1;
                    }
                    continue;
                }
                let hex = format!("{shard_name}{}", entry.file_name().to_string_lossy());
                let pins = self.lock_pins();
                if pins.contains_key(&hex) {
                    continue;
                }
                self.remove_if_unreferenced(conn, &hex);
                drop(pins);
                if !entry.path().exists() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// `len` bytes of a blob from offset `off`; an error when the file holds fewer.
    pub(super) fn read(&self, hex: &str, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(self.path(hex))?;
        file.seek(SeekFrom::Start(off))?;
        let mut buf = Vec::new();
        file.take(len).read_to_end(&mut buf)?;
        if buf.len() as u64 != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the blob holds fewer than {len} bytes from offset {off}"),
            ));
        }
        Ok(buf)
    }
}
