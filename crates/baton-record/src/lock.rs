//! Cross-process single-writer lock for one session.
//!
//! Two OS file locks (`flock` on Unix, via `File::try_lock`), both under
//! `<codex_home>/thread-writer-locks/`:
//!
//! * `<id>.baton.lock`: baton's own lock; its holder writes its pid into it
//!   so a second writer can say who is in the way;
//! * `<id>.lock`: the lock a running `codex` holds on the thread it writes,
//!   taken with [`baton_native::write::CodexWriterLock`] (the same lock
//!   baton's fork and rehydrate writers take). Holding it keeps `codex resume`
//!   away while baton appends; failing to take it means a codex process is
//!   appending to the same rollout.
//!
//! The locks are released when the process exits, however it exits. Lock
//! files are never deleted (deleting a lock file while another process has it
//! open lets two writers in).

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use baton_native::layout::codex;
use baton_native::write::{self, CodexWriterLock, Owned, WriteError};

use crate::error::{RecordError, Result};

/// Folder under the Codex home holding per-thread writer locks.
pub const LOCK_DIR: &str = codex::WRITER_LOCKS_DIR;

/// Held writer locks; dropping it releases both.
#[derive(Debug)]
pub struct SessionLock {
    _baton: File,
    _codex: CodexWriterLock,
}

/// Path of baton's lock file for session `id`.
pub fn baton_lock_path(codex_home: &Path, id: &str) -> PathBuf {
    codex_home.join(LOCK_DIR).join(format!("{id}.baton.lock"))
}

/// Path of Codex's own writer lock file for session `id`
/// (see [`codex::writer_lock_path`]).
pub fn codex_lock_path(codex_home: &Path, id: &str) -> PathBuf {
    codex::writer_lock_path(codex_home, id)
}

impl SessionLock {
    /// Take both writer locks for session `id` without waiting.
    ///
    /// Fails with [`RecordError::Locked`] naming the holder's pid when another
    /// baton writer (in any process, this one included) has the session, or
    /// naming Codex's lock file when a running codex is writing it.
    pub fn acquire(codex_home: &Path, id: &str) -> Result<SessionLock> {
        let dir = codex_home.join(LOCK_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| RecordError::io(&dir, e))?;

        let baton_path = baton_lock_path(codex_home, id);
        let mut baton = open_lock_file(&baton_path)?;
        match baton.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_pid(&mut baton)
                    .map(|pid| format!("pid {pid}"))
                    .unwrap_or_else(|| "another process".into());
                return Err(RecordError::Locked {
                    id: id.to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(RecordError::io(&baton_path, e)),
        }
        write_pid(&mut baton).map_err(|e| RecordError::io(&baton_path, e))?;

        let codex = CodexWriterLock::acquire(codex_home, id).map_err(|e| match e {
            WriteError::Locked { lock, .. } => RecordError::Locked {
                id: id.to_string(),
                holder: format!(
                    "another process holding {} (a running codex?)",
                    lock.display()
                ),
            },
            WriteError::Io { path, source } | WriteError::CreateDir { path, source } => {
                RecordError::io(path, source)
            }
            other => RecordError::io(
                codex_lock_path(codex_home, id),
                std::io::Error::other(other.to_string()),
            ),
        })?;
        Ok(SessionLock {
            _baton: baton,
            _codex: codex,
        })
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    write::open_owned(path, Owned::ReadWrite, 0o600).map_err(|e| RecordError::io(path, e))
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_told_the_pid() {
        let home = tempfile::tempdir().unwrap();
        let held = SessionLock::acquire(home.path(), "abc").unwrap();
        let err = SessionLock::acquire(home.path(), "abc").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "session abc is being written by pid {}",
                std::process::id()
            )),
            "{msg}"
        );
        drop(held);
        SessionLock::acquire(home.path(), "abc").unwrap();
    }

    #[test]
    fn baton_and_native_writers_share_the_codex_lock() {
        // One implementation: the lock baton-native's fork/rehydrate writers
        // take is the one the recorder takes, in both directions.
        let home = tempfile::tempdir().unwrap();
        let held = SessionLock::acquire(home.path(), "t2").unwrap();
        assert!(matches!(
            CodexWriterLock::acquire(home.path(), "t2"),
            Err(WriteError::Locked { .. })
        ));
        drop(held);
        let _native = CodexWriterLock::acquire(home.path(), "t2").unwrap();
        let err = SessionLock::acquire(home.path(), "t2").unwrap_err();
        assert!(err.to_string().contains("a running codex"), "{err}");
    }

    #[test]
    fn a_held_codex_lock_excludes_baton() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(LOCK_DIR)).unwrap();
        let codex = File::create(codex_lock_path(home.path(), "t1")).unwrap();
        codex.try_lock().unwrap();
        let err = SessionLock::acquire(home.path(), "t1").unwrap_err();
        assert!(err.to_string().contains("a running codex"), "{err}");
        drop(codex);
        SessionLock::acquire(home.path(), "t1").unwrap();
    }
}
