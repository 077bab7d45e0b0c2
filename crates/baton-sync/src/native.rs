//! Native-byte helpers of the sync engine: reading a whole agent file
//! (plain or `.zst`), a missing one as `None`, and [`LocalBytes`], a local
//! file as push reads it (by range, never whole).

use crate::error::{ClientError, io_err};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Read a native file (decompressing `.zst`); a missing file reads as `None`.
pub fn read_native(path: &Path) -> Result<Option<Vec<u8>>, ClientError> {
    match baton_native::files::read_whole(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Bytes read from a plain file at a time when hashing or searching it.
const PIECE: usize = 1 << 20;

/// A local session file's plaintext as the sync engine compares and sends
/// it: held in memory (a decompressed `.zst`, an archived copy, a library
/// copy being pulled) or read from a plain file by range, so pushing a file
/// of any size holds only a piece of it at a time.
#[derive(Debug)]
pub enum LocalBytes {
    /// The whole plaintext.
    Memory(Vec<u8>),
    /// A plain file, read by range. Only its first `len` bytes (its length
    /// when opened) count: what an agent appends meanwhile waits for the
    /// next push.
    File {
        /// The file, for messages.
        path: PathBuf,
        /// The open file.
        file: std::fs::File,
        /// Its length when opened.
        len: u64,
    },
}

impl LocalBytes {
    /// The file at `path`: a plain one opened for reading by range, a
    /// `.zst` decompressed into memory; `None` when it does not exist.
    pub fn open(path: &Path) -> Result<Option<LocalBytes>, ClientError> {
        if baton_native::files::is_compressed(path) {
            return Ok(read_native(path)?.map(LocalBytes::Memory));
        }
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path)(e)),
        };
        let len = file.metadata().map_err(io_err(path))?.len();
        Ok(Some(LocalBytes::File {
            path: path.to_path_buf(),
            file,
            len,
        }))
    }

    /// Length of the plaintext in bytes.
    pub fn len(&self) -> u64 {
        match self {
            LocalBytes::Memory(bytes) => bytes.len() as u64,
            LocalBytes::File { len, .. } => *len,
        }
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `from..to` (clamped to the length).
    pub fn read(&self, from: u64, to: u64) -> Result<Cow<'_, [u8]>, ClientError> {
        let to = to.min(self.len());
        let from = from.min(to);
        match self {
            LocalBytes::Memory(bytes) => Ok(Cow::Borrowed(&bytes[from as usize..to as usize])),
            LocalBytes::File { path, file, .. } => {
                let mut buf = vec![0; (to - from) as usize];
                file.read_exact_at(&mut buf, from).map_err(io_err(path))?;
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// Feed the first `n` bytes to `hasher`, a piece at a time.
    pub fn hash_prefix(&self, hasher: &mut Sha256, n: u64) -> Result<(), ClientError> {
        let n = n.min(self.len());
        let mut at = 0;
        while at < n {
            let to = (at + PIECE as u64).min(n);
            hasher.update(&*self.read(at, to)?);
            at = to;
        }
        Ok(())
    }

    /// Hex SHA-256 of the first `n` bytes.
    pub fn prefix_sha256(&self, n: u64) -> Result<String, ClientError> {
        let mut hasher = Sha256::new();
        self.hash_prefix(&mut hasher, n)?;
        Ok(hex::encode(hasher.finalize()))
    }

    /// The offset just after the first newline at or after `from`, if any.
    pub fn line_end_from(&self, from: u64) -> Result<Option<u64>, ClientError> {
        let mut at = from;
        while at < self.len() {
            let to = (at + PIECE as u64).min(self.len());
            if let Some(i) = memchr::memchr(b'\n', &self.read(at, to)?) {
                return Ok(Some(at + i as u64 + 1));
            }
            at = to;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_hashes_and_finds_lines_like_its_bytes_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut bytes = vec![b'x'; PIECE + 10];
        bytes.extend_from_slice(b"\nend\ntorn");
        #[expect(clippy::disallowed_methods, reason = "the test's own scratch file")]
        std::fs::write(&path, &bytes).unwrap();
        let file = LocalBytes::open(&path).unwrap().unwrap();
        let memory = LocalBytes::Memory(bytes.clone());
        for local in [&file, &memory] {
            assert_eq!(local.len(), bytes.len() as u64);
            assert_eq!(
                &*local.read(PIECE as u64, PIECE as u64 + 15).unwrap(),
                b"xxxxxxxxxx\nend\n"
            );
            assert_eq!(&*local.read(5, u64::MAX).unwrap(), &bytes[5..]);
            let n = bytes.len() as u64 - 2;
            assert_eq!(
                local.prefix_sha256(n).unwrap(),
                baton_protocol::sha256_hex(&bytes[..n as usize])
            );
            assert_eq!(local.line_end_from(0).unwrap(), Some(PIECE as u64 + 11));
            assert_eq!(
                local.line_end_from(PIECE as u64 + 12).unwrap(),
                Some(PIECE as u64 + 15)
            );
            assert_eq!(local.line_end_from(PIECE as u64 + 15).unwrap(), None);
        }
        assert!(
            LocalBytes::open(&dir.path().join("gone"))
                .unwrap()
                .is_none()
        );
    }
}
