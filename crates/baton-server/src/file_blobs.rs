//! [`FileBlobs`]: a [`BlobStore`] of files, `ab/cdef…` under a root
//! directory (sharded by the first two hex digits of the name), private to
//! the server (0600) and written atomically
//! ([`baton_native::write::replace_file_mode`]: a temp file beside it,
//! fsynced, renamed into place). Earlier versions wrote their temp files
//! to `tmp/`; the sweep still clears it.

use crate::storage::{BlobStore, StorageError, StorageResult};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Blob files under a root directory (see the module docs).
#[derive(Debug, Clone)]
pub struct FileBlobs {
    root: PathBuf,
}

fn io_error(what: &str, name: &str) -> impl Fn(std::io::Error) -> StorageError {
    move |e| StorageError::Internal(format!("cannot {what} blob {name}: {e}"))
}

impl FileBlobs {
    /// Blob files under `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        match (name.get(..2), name.get(2..)) {
            (Some(shard), Some(rest)) if !rest.is_empty() => self.root.join(shard).join(rest),
            _ => self.root.join(name),
        }
    }

    fn write_new(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if !dir.is_dir() {
            std::fs::create_dir_all(&self.root)?;
            match std::fs::create_dir(&dir) {
                Ok(()) => std::fs::File::open(&self.root)?.sync_all()?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        baton_native::write::replace_file_mode(&path, bytes, 0o600)
    }
}

impl BlobStore for FileBlobs {
    fn put(&self, name: &str, bytes: &[u8]) -> StorageResult<()> {
        if self.path(name).exists() {
            return Ok(());
        }
        self.write_new(name, bytes).map_err(io_error("write", name))
    }

    fn read(&self, name: &str, offset: u64, len: u64) -> StorageResult<Vec<u8>> {
        let read = || -> std::io::Result<Vec<u8>> {
            let mut file = std::fs::File::open(self.path(name))?;
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            file.take(len).read_to_end(&mut buf)?;
            if buf.len() as u64 != len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("it holds fewer than {len} bytes from offset {offset}"),
                ));
            }
            Ok(buf)
        };
        read().map_err(io_error("read", name))
    }

    fn delete(&self, name: &str) -> StorageResult<()> {
        match std::fs::remove_file(self.path(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("delete", name)(e)),
        }
    }

    fn check(&self) -> StorageResult<()> {
        match std::fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(StorageError::Unavailable(format!(
                "{} is not a directory: move it away so blobs can be stored there",
                self.root.display()
            ))),
            // Created on the first write.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Unavailable(format!(
                "cannot reach the blob directory {}: {e}",
                self.root.display()
            ))),
        }
    }

    fn written_before(&self, before: std::time::SystemTime) -> StorageResult<Vec<String>> {
        let old = |entry: &std::fs::DirEntry| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
        };
        let shards = match std::fs::read_dir(&self.root) {
            Ok(shards) => shards,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list", "files")(e)),
        };
        let mut names = Vec::new();
        for shard in shards.flatten() {
            let shard_name = shard.file_name().to_string_lossy().into_owned();
            let Ok(entries) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten().filter(|e| old(e)) {
                if shard_name == "tmp" {
                    // Left by a write of an earlier version that never finished.
                    if let Err(e) = std::fs::remove_file(entry.path()) {
                        tracing::warn!("cannot delete {}: {e}", entry.path().display());
                    }
                    continue;
                }
                names.push(format!(
                    "{shard_name}{}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
        Ok(names)
    }
}
