//! The embedded backend's view of its [`BlobStore`]: pins that keep a blob
//! of an append in flight alive, and deleting blobs no chunk references.

use crate::storage::{BlobStore, StorageResult};
use rusqlite::{Connection, params};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The blob store chunks refer to, with the pins of appends in flight.
#[derive(Clone)]
pub(super) struct BlobDir {
    store: Arc<dyn BlobStore>,
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

    /// The append was rejected: unpin, and delete the blob when no other
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
    /// Blobs kept in `store`.
    pub(super) fn new(store: Arc<dyn BlobStore>) -> Self {
        Self {
            store,
            pins: Arc::default(),
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

    /// Delete a blob no chunk references (the caller holds the pin lock and
    /// has checked nothing pins it); whether it was deleted. Failures are
    /// logged: an unreferenced blob is harmless, and the next start-up sweep
    /// retries.
    fn remove_if_unreferenced(&self, conn: &Connection, hex: &str) -> bool {
        let referenced = conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM chunks WHERE blob = ?1)")
            .and_then(|mut stmt| stmt.query_row(params![hex], |r| r.get::<_, bool>(0)));
        match referenced {
            Ok(true) => false,
            Ok(false) => match self.store.delete(hex) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("cannot delete unused blob {hex}: {e}");
                    false
                }
            },
            Err(e) => {
                tracing::warn!("cannot check whether blob {hex} is used: {e}");
                false
            }
        }
    }

    /// Store bytes durably under their sha256, pinned until the append finishes.
    pub(super) fn put(&self, bytes: &[u8]) -> StorageResult<BlobPin> {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        *self.lock_pins().entry(hex.clone()).or_default() += 1;
        let pin = BlobPin {
            dir: self.clone(),
            hex: Some(hex.clone()),
        };
        self.store.put(&hex, bytes)?;
        Ok(pin)
    }

    /// Delete blobs written before `before` (later ones may belong to appends
    /// in flight) that nothing pins and no chunk references; how many.
    pub(super) fn sweep(
        &self,
        conn: &Connection,
        before: std::time::SystemTime,
    ) -> StorageResult<usize> {
        let mut removed = 0;
        for hex in self.store.written_before(before)? {
            let pins = self.lock_pins();
            if !pins.contains_key(&hex) && self.remove_if_unreferenced(conn, &hex) {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Whether the blob store can be used now.
    pub(super) fn check(&self) -> StorageResult<()> {
        self.store.check()
    }

    /// `len` bytes of a blob from offset `off`.
    pub(super) fn read(&self, hex: &str, off: u64, len: u64) -> StorageResult<Vec<u8>> {
        self.store.read(hex, off, len)
    }
}
