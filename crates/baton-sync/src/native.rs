//! Native-byte helpers of the sync engine: [`LocalBytes`], a local file as
//! push and pull read it (by range, never whole), and [`Spool`], where pull
//! keeps server bytes too many to hold in memory.

use crate::error::{ClientError, copy_error, io_err, write_err};
use crate::state::IdRewrite;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Read a native file (decompressing `.zst`); a missing file reads as `None`.
fn read_native(path: &Path) -> Result<Option<Vec<u8>>, ClientError> {
    match baton_native::files::read_whole(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Bytes read from a plain file at a time when hashing or searching it.
const PIECE: usize = 1 << 20;

/// A local session file's plaintext as the sync engine compares, sends and
/// pulls it: held in memory (a decompressed `.zst`, an archived copy) or
/// read from a plain file (a session, a library copy, a [`Spool`]) by range,
/// so syncing a file of any size holds only a piece of it at a time.
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
        // A hasher takes every byte: only reading can fail.
        self.copy_range(0, n, None, hasher)
            .map_err(copy_error(self.path()))
    }

    /// Write bytes `from..to` (clamped to the length) to `out`, a piece at
    /// a time; with `rewrite`, each piece rewritten. Pieces then end at
    /// line ends (or at `to`), so a rewrite never sees an id split in two;
    /// a line longer than a piece is held whole. Errors are `out`'s, or a
    /// [`ClientError`] reading these bytes.
    pub fn copy_range(
        &self,
        from: u64,
        to: u64,
        rewrite: Option<&IdRewrite>,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let to = to.min(self.len());
        let mut at = from.min(to);
        while at < to {
            let piece = match rewrite {
                Some(rw) => self.lines_piece(at, to).map(|p| Cow::Owned(rw.apply(&p))),
                None => self.read(at, (at + PIECE as u64).min(to)),
            }
            .map_err(std::io::Error::other)?;
            out.write_all(&piece)?;
            at += piece.len() as u64;
        }
        Ok(())
    }

    /// The bytes from `at` to the end of the last whole line within about a
    /// megabyte (a longer line whole), or to `to` when no line ends before.
    pub fn lines_piece(&self, at: u64, to: u64) -> Result<Cow<'_, [u8]>, ClientError> {
        let to = to.min(self.len());
        let end = (at + PIECE as u64).min(to);
        let piece = self.read(at, end)?;
        if end == to {
            return Ok(piece);
        }
        let lines_end = self.whole_lines_end(&piece, at, end)?.unwrap_or(to).min(to);
        match lines_end == end {
            true => Ok(piece),
            false => self.read(at, lines_end),
        }
    }

    /// The offset just after the last newline, 0 when there is none.
    pub fn last_line_start(&self) -> Result<u64, ClientError> {
        let mut to = self.len();
        while to > 0 {
            let from = to.saturating_sub(PIECE as u64);
            if let Some(i) = memchr::memrchr(b'\n', &self.read(from, to)?) {
                return Ok(from + i as u64 + 1);
            }
            to = from;
        }
        Ok(0)
    }

    /// End of the last whole line of `self[from..to]` (`piece`, which
    /// starts at `from` and holds at least those bytes), else of the first
    /// line after `from` (longer than the piece); `None` when no line after
    /// `from` is complete.
    pub fn whole_lines_end(
        &self,
        piece: &[u8],
        from: u64,
        to: u64,
    ) -> Result<Option<u64>, ClientError> {
        let within = &piece[..(to - from) as usize];
        match memchr::memrchr(b'\n', within) {
            Some(i) => Ok(Some(from + i as u64 + 1)),
            None => self.line_end_from(to),
        }
    }

    /// The file, for messages (`-` for bytes held in memory).
    fn path(&self) -> &Path {
        match self {
            LocalBytes::Memory(_) => Path::new("-"),
            LocalBytes::File { path, .. } => path,
        }
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

/// Server bytes written to a temporary file as they arrive, read back by
/// range once complete ([`Spool::finish`]). The file has no name (it is
/// gone once closed, even after a crash) and lives in the directory the
/// syncer was given (baton's home), not in memory.
#[derive(Debug)]
pub struct Spool {
    /// The directory, for messages.
    dir: PathBuf,
    file: std::fs::File,
    len: u64,
}

impl Spool {
    /// An empty spool in `dir` (created when missing).
    pub fn new(dir: &Path) -> Result<Spool, ClientError> {
        let file = baton_native::write::unnamed_temp_file(dir).map_err(write_err)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            file,
            len: 0,
        })
    }

    /// Append `bytes`.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.write_all(bytes).map_err(io_err(&self.dir))
    }

    /// The bytes written, read by range.
    pub fn finish(self) -> LocalBytes {
        LocalBytes::File {
            path: self.dir,
            file: self.file,
            len: self.len,
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (&self.file).write(buf).map_err(|e| {
            let at = self.dir.display();
            std::io::Error::new(e.kind(), format!("a temporary file in {at}: {e}"))
        })?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
