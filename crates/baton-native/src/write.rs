//! Writing native session files safely.
//!
//! baton only ever *creates* session files; it never rewrites one. A new file
//! is written to a temporary file in the target directory, fsynced, and then
//! moved into place with a no-replace rename (`renameat2`), or a hard link
//! where that is unsupported, so a file that appeared in the meantime is
//! never overwritten. A write refused because of an existing file or a held
//! lock creates nothing, not even directories (both are checked before the
//! lock file or any directory is created); one that fails later, on I/O, may
//! leave the target's directories and Codex's writer-lock file, never a
//! partial session file.
//!
//! When the target already exists:
//! - same bytes → nothing is written ([`WriteOutcome::Unchanged`]);
//! - our bytes followed by more (the agent continued the session) → left as
//!   is ([`WriteOutcome::Continued`]);
//! - anything else → [`WriteError::Conflict`].
//!
//! Content streamed as it is produced ([`Content::Stream`]) is compared with
//! an existing file as it streams, never held whole.
//!
//! Codex sessions are written while holding Codex's own cross-process writer
//! lock, `<codex_home>/thread-writer-locks/<thread-id>.lock`.
//!
//! Files baton owns (its state, tokens, exports) are replaced atomically with
//! [`replace_file`]: every temporary file baton creates is made here (named
//! ones beside their target, unnamed ones by [`unnamed_temp_file`]).

// The one module allowed to create, rename and overwrite files (clippy.toml).
#![allow(clippy::disallowed_methods)]

use crate::layout::{claude, codex};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What happened when a session file was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file did not exist and was created.
    Created,
    /// The file already held exactly these bytes; nothing was written.
    Unchanged,
    /// The file already held these bytes followed by `extra_bytes` more (the
    /// agent continued the session); it was left untouched.
    Continued {
        /// How many bytes the existing file has beyond ours.
        extra_bytes: u64,
    },
}

impl WriteOutcome {
    /// A short word for messages and JSON (`created`, `unchanged`, `continued`).
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOutcome::Created => "created",
            WriteOutcome::Unchanged => "unchanged",
            WriteOutcome::Continued { .. } => "continued",
        }
    }
}

/// What a new session file holds: bytes in hand, or bytes written as they
/// are produced (a fork or a rehydrated session of any size, never held
/// whole).
pub enum Content<'a> {
    /// The file's bytes.
    Bytes(&'a [u8]),
    /// Writes the file's bytes, the same each time it is called (once to
    /// compare them with an existing file, once to write them).
    Stream(&'a mut dyn FnMut(&mut dyn Write) -> io::Result<()>),
}

impl Content<'_> {
    /// Write the content into `out`.
    fn write_into(&mut self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Content::Bytes(bytes) => out.write_all(bytes),
            Content::Stream(write) => write(out),
        }
    }
}

impl<'a> From<&'a [u8]> for Content<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Content::Bytes(bytes)
    }
}

impl<'a> From<&'a Vec<u8>> for Content<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        Content::Bytes(bytes)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Content<'a> {
    fn from(bytes: &'a [u8; N]) -> Self {
        Content::Bytes(bytes)
    }
}

/// Why a session file could not be placed. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The target directory could not be created (not writable, or a path
    /// component is a regular file).
    #[error(
        "cannot create directory {}: {source}; make sure its parent is writable, or choose another place (--codex-home / --claude-dir for an agent home, BATON_HOME for baton's library)",
        path.display()
    )]
    CreateDir {
        /// The directory that could not be created.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A different file already holds this session id.
    #[error(
        "{} already exists with different content; baton never overwrites a session file (fork it to a new id with `baton fork`, or move the existing file away)",
        path.display()
    )]
    Conflict {
        /// The existing file.
        path: PathBuf,
    },
    /// Codex's writer lock for the thread is held by another process.
    #[error(
        "session {id} is being written by another process (lock {}); wait until that codex process exits and retry",
        lock.display()
    )]
    Locked {
        /// Thread id.
        id: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// Any other I/O failure.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file being written or read.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How existing bytes compare with the content meant for their file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// The same bytes.
    Equal,
    /// The content followed by this many more bytes.
    ExistingLonger(u64),
    /// A strict prefix of the content.
    ExistingShorter,
    /// Bytes the content does not have at the same place.
    Diverged,
}

/// A writer comparing what it is given with `existing`, read as it goes;
/// once `existing` ends, the rest goes to `tail` (when there is one). Fails
/// with [`Diverging`] at the first difference.
struct Compare<'a> {
    existing: &'a mut dyn io::Read,
    chunk: Vec<u8>,
    exhausted: bool,
    diverged: bool,
    tail: Option<&'a mut dyn Write>,
    tail_bytes: u64,
}

/// The error that stops a [`Compare`] at the first difference.
#[derive(Debug)]
struct Diverging;

impl std::fmt::Display for Diverging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the existing bytes differ")
    }
}

impl std::error::Error for Diverging {}

impl Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !self.exhausted && !rest.is_empty() {
            let want = rest.len().min(64 << 10);
            self.chunk.resize(want, 0);
            let got = crate::files::read_full(self.existing, &mut self.chunk)?;
            if self.chunk[..got] != rest[..got] {
                self.diverged = true;
                return Err(io::Error::other(Diverging));
            }
            rest = &rest[got..];
            self.exhausted = got < want;
        }
        if !rest.is_empty() {
            self.tail_bytes += rest.len() as u64;
            if let Some(tail) = self.tail.as_mut() {
                tail.write_all(rest)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compare the bytes of `existing` with `content`, streaming both; bytes of
/// the content beyond the end of `existing` are written to `tail`, if any.
fn overlap<'a>(
    existing: &'a mut dyn io::Read,
    content: &mut Content<'_>,
    tail: Option<&'a mut dyn Write>,
) -> io::Result<Overlap> {
    let mut compare = Compare {
        existing,
        chunk: Vec::new(),
        exhausted: false,
        diverged: false,
        tail,
        tail_bytes: 0,
    };
    match content.write_into(&mut compare) {
        Err(_) if compare.diverged => return Ok(Overlap::Diverged),
        result => result?,
    }
    if compare.tail_bytes > 0 {
        return Ok(Overlap::ExistingShorter);
    }
    let more = io::copy(compare.existing, &mut io::sink())?;
    Ok(match more {
        0 => Overlap::Equal,
        n => Overlap::ExistingLonger(n),
    })
}

/// How the existing file at `path` (a `.zst` one decompressed) compares
/// with `content`, both streamed.
pub fn overlap_with_file(path: &Path, content: &mut Content<'_>) -> Result<Overlap, WriteError> {
    let mut existing = crate::files::open_native_path(path, crate::files::is_compressed(path), 0)
        .map_err(io_err(path))?;
    overlap(&mut existing, content, None).map_err(io_err(path))
}

/// Compare an existing file (a `.zst` one decompressed) with the content
/// we wanted to write (see the module docs for the outcomes).
pub fn compare_existing(
    path: &Path,
    content: &mut Content<'_>,
) -> Result<WriteOutcome, WriteError> {
    match overlap_with_file(path, content)? {
        Overlap::Equal => Ok(WriteOutcome::Unchanged),
        Overlap::ExistingLonger(extra_bytes) => Ok(WriteOutcome::Continued { extra_bytes }),
        Overlap::ExistingShorter | Overlap::Diverged => Err(WriteError::Conflict {
            path: path.to_path_buf(),
        }),
    }
}

/// Create the directory `dir` (and its missing parents, mode 0700: they
/// hold conversations), reporting a clear error.
pub fn ensure_dir(dir: &Path) -> Result<(), WriteError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| WriteError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Create `path` holding exactly `bytes`, atomically and without ever
/// replacing an existing file (see the module docs for the outcomes).
/// The new file's mtime is now; its mode 0600 (a conversation is private).
pub fn write_new_file(path: &Path, bytes: &[u8]) -> Result<WriteOutcome, WriteError> {
    write_new_file_mode(path, bytes, 0o600)
}

/// [`write_new_file`] creating the file with Unix permission bits `mode`
/// (less the umask; ignored elsewhere), e.g. `0o600` for a private file.
pub fn write_new_file_mode<'a>(
    path: &Path,
    content: impl Into<Content<'a>>,
    mode: u32,
) -> Result<WriteOutcome, WriteError> {
    create_new_file(path, content.into(), mode)
}

/// [`write_new_file_mode`] for any [`Content`].
fn create_new_file(
    path: &Path,
    mut content: Content<'_>,
    mode: u32,
) -> Result<WriteOutcome, WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    ensure_dir(dir)?;
    if path.exists() {
        return compare_existing(path, &mut content);
    }
    let tmp = temp_path(dir, path);
    let written = write_temp(&tmp, &mut |f| content.write_into(f), mode);
    let result = written.and_then(|()| link_no_clobber(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match result {
        Ok(()) => {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(WriteOutcome::Created)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => compare_existing(path, &mut content),
        Err(source) => Err(WriteError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Create or replace `path`, a file baton owns (its state, a token, an
/// export; never an agent's session file, see [`write_new_file`]), so that
/// it holds exactly `bytes`: written to a temporary file beside it, fsynced,
/// renamed over it, and the directory synced. A reader sees the old or the
/// new content, never a mix. The directory must exist.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file_mode(path, bytes, 0o666)
}

/// [`replace_file`] creating the file with Unix permission bits `mode`
/// (less the umask; ignored elsewhere), e.g. `0o600` for a private file.
pub fn replace_file_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace_file_with(path, mode, &mut |f| f.write_all(bytes))
}

/// [`replace_file_mode`] with the content written by `write` as it is
/// produced (an export of any size, streamed, never held whole).
pub fn replace_file_with(
    path: &Path,
    mode: u32,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = temp_path(dir, path);
    let result = write_temp(&tmp, write, mode).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Make the file `path`, which baton owns (a copy in baton's library, never
/// an agent's file), hold `want`: create it (mode `mode`, as
/// [`write_new_file_mode`]) when missing, or append the part of `want` it
/// lacks when it holds a prefix of `want`. The bytes are checked again while
/// holding an exclusive lock on the file itself, the one lock every baton
/// writer of a library file takes, so two runs extending the same copy (a
/// `baton pull` and a `baton import`) never append the same bytes twice. A
/// file already holding `want`, or `want` followed by more, is left alone.
/// Returns the number of bytes written; [`WriteError::Conflict`] when the file
/// holds other bytes. Only for plain (not `.zst`) files. `want` is streamed
/// (compared, then its tail appended as it comes), never held whole; a
/// streamed `want` may be asked for twice (when another writer creates the
/// file meanwhile), each time from its start.
pub fn extend_owned_file<'a>(
    path: &Path,
    want: impl Into<Content<'a>>,
    mode: u32,
) -> Result<u64, WriteError> {
    let mut want = want.into();
    let open = || OpenOptions::new().read(true).append(true).open(path);
    let file = match open() {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut created = 0;
            let mut counted = |out: &mut dyn Write| {
                let mut counter = Counted { out, bytes: 0 };
                want.write_into(&mut counter)?;
                created = counter.bytes;
                Ok(())
            };
            match create_new_file(path, Content::Stream(&mut counted), mode) {
                Ok(WriteOutcome::Created) => return Ok(created),
                Ok(_) => return Ok(0),
                // Created meanwhile by another writer with a shorter prefix:
                // extend it under the lock like any existing copy.
                Err(WriteError::Conflict { .. }) => open().map_err(io_err(path))?,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    file.lock().map_err(io_err(path))?;
    let mut appended = io::BufWriter::new(&file);
    let mut counter = Counted {
        out: &mut appended,
        bytes: 0,
    };
    let overlap = overlap(&mut &file, &mut want, Some(&mut counter)).map_err(io_err(path))?;
    let written = counter.bytes;
    appended
        .into_inner()
        .map_err(io::IntoInnerError::into_error)
        .and_then(|f| f.sync_all())
        .map_err(io_err(path))?;
    match overlap {
        Overlap::Diverged => Err(WriteError::Conflict {
            path: path.to_path_buf(),
        }),
        _ => Ok(written),
    }
}

/// A writer counting the bytes it hands on to `out`.
struct Counted<'a> {
    out: &'a mut dyn Write,
    bytes: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// How [`open_owned`] opens a file that baton owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// Read and write in place (a lock file, a pid file); created when missing.
    ReadWrite,
    /// Read and append (a log or a transcript baton keeps); created when missing.
    Append,
    /// Read and append to a file that must not exist yet (a new transcript).
    AppendNew,
}

/// Open `path`, a file baton owns (never an agent's file), as `how` says,
/// creating it with Unix permission bits `mode` where `how` allows. Never
/// truncates. This is how code outside this module creates the files it
/// appends to or locks; whole-file writes go through [`replace_file`] or
/// [`write_new_file`].
pub fn open_owned(path: &Path, how: Owned, mode: u32) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    match how {
        Owned::ReadWrite => opts.write(true).create(true).truncate(false),
        Owned::Append => opts.append(true).create(true),
        Owned::AppendNew => opts.append(true).create_new(true),
    };
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path)
}

/// Point the symbolic link `link` (a link baton owns) at `target`,
/// atomically: a new link is made beside it and renamed over it.
pub fn replace_symlink(target: &Path, link: &Path) -> io::Result<()> {
    let dir = match link.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = temp_path(dir, link);
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &tmp)?;
    #[cfg(windows)]
    std::os::windows::fs::symlink_file(target, &tmp)?;
    fs::rename(&tmp, link).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// A new temporary file in `dir` (created when missing, as
/// [`ensure_dir`]) for bytes baton holds only while it works on them (a
/// pull's server bytes until they are checked): it has no name, so it is
/// gone once closed, even after a crash, and nothing mistakes it for a
/// session.
pub fn unnamed_temp_file(dir: &Path) -> Result<File, WriteError> {
    ensure_dir(dir)?;
    tempfile::tempfile_in(dir).map_err(io_err(dir))
}

/// A temporary name in `dir` that no agent's discovery would match.
fn temp_path(dir: &Path, target: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let stem = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{stem}.baton-tmp-{}-{nanos}", std::process::id()))
}

fn write_temp(
    tmp: &Path,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    mode: u32,
) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = io::BufWriter::new(opts.open(tmp)?);
    write(&mut f)?;
    let f = f.into_inner().map_err(io::IntoInnerError::into_error)?;
    f.set_modified(SystemTime::now())?;
    f.sync_all()
}

/// Move `tmp` to `target`, failing with `AlreadyExists` rather than
/// replacing a file that appeared in the meantime: `renameat2` with
/// `RENAME_NOREPLACE` on Linux, a hard link (the caller removes `tmp`) where
/// that is unsupported. There is no check-then-rename fallback: when neither
/// works the write fails.
fn link_no_clobber(tmp: &Path, target: &Path) -> io::Result<()> {
    let rename_err = match rename_no_replace(tmp, target) {
        Ok(()) => return Ok(()),
        Err(e) if !is_unsupported(&e) => return Err(e),
        Err(e) => e,
    };
    match fs::hard_link(tmp, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(link_err) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "this filesystem supports neither a no-replace rename ({rename_err}) nor hard links ({link_err}), \
                 so the file cannot be created without risking overwriting another; use an agent home on a local filesystem"
            ),
        )),
    }
}

/// Whether a no-replace rename failed because the kernel or filesystem does
/// not support it (rather than because the target exists or I/O failed).
fn is_unsupported(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    if matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP)
    ) {
        return true;
    }
    e.kind() == io::ErrorKind::Unsupported
}

/// `rename(from, to)` that fails with `AlreadyExists` instead of replacing `to`.
#[cfg(target_os = "linux")]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let from = CString::new(from.as_os_str().as_bytes())?;
    let to = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the
    // call; the raw syscall works whatever the C library version.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `rename(from, to)` that fails instead of replacing `to`: not available
/// here, so the hard-link path is used.
#[cfg(not(target_os = "linux"))]
fn rename_no_replace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no-replace rename is not available on this platform",
    ))
}

/// **The one place baton deletes a file an agent wrote** (`baton prune`),
/// and only when baton holds a verified copy: the file is deleted only when
/// its bytes, read through one open handle, are exactly those `archived`
/// reads (the copy in baton's archive, compared a block at a time) and the
/// path still names that same, unchanged file right before the unlink.
/// Returns `false`, deleting nothing, when the bytes differ (the agent
/// wrote more since it was archived). Callers hold Codex's
/// [`CodexWriterLock`] for Codex rollouts.
pub fn remove_archived_agent_file(
    path: &Path,
    archived: &mut dyn io::Read,
) -> Result<bool, WriteError> {
    use std::os::unix::fs::MetadataExt;
    let mut file = File::open(path).map_err(io_err(path))?;
    let before = file.metadata().map_err(io_err(path))?;
    if !crate::files::same_bytes(&mut file, archived).map_err(io_err(path))? {
        return Ok(false);
    }
    let now = fs::symlink_metadata(path).map_err(io_err(path))?;
    let same = now.ino() == before.ino()
        && now.dev() == before.dev()
        && now.len() == before.len()
        && now.modified().ok() == before.modified().ok();
    if !same {
        return Ok(false);
    }
    fs::remove_file(path).map_err(io_err(path))?;
    Ok(true)
}

/// An exclusive hold on Codex's writer lock for one thread; released on drop.
#[derive(Debug)]
pub struct CodexWriterLock {
    _file: File,
    thread_id: String,
}

impl CodexWriterLock {
    /// Take `<codex_home>/thread-writer-locks/<thread_id>.lock` without
    /// waiting; [`WriteError::Locked`] when another process holds it.
    pub fn acquire(codex_home: &Path, thread_id: &str) -> Result<Self, WriteError> {
        let path = codex::writer_lock_path(codex_home, thread_id);
        ensure_dir(&codex_home.join(codex::WRITER_LOCKS_DIR))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        // `File::try_lock` is flock on Unix, the same lock Codex takes.
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
                thread_id: thread_id.to_string(),
            }),
            Err(TryLockError::WouldBlock) => Err(WriteError::Locked {
                id: thread_id.to_string(),
                lock: path,
            }),
            Err(TryLockError::Error(source)) => Err(WriteError::Io { path, source }),
        }
    }
}

/// Where a session file ended up and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The session file (new, or the existing one that already held it).
    pub path: PathBuf,
    /// What happened.
    pub outcome: WriteOutcome,
}

/// Where the rollout of `thread_id` already is under `codex_home` (plain or
/// `.jsonl.zst`), compared with `content`; `None` when there is none.
fn existing_codex_session(
    codex_home: &Path,
    thread_id: &str,
    content: &mut Content<'_>,
) -> Result<Option<Placed>, WriteError> {
    match codex::find_rollout(&[codex_home.to_path_buf()], thread_id) {
        Some(path) => {
            let outcome = compare_existing(&path, content)?;
            Ok(Some(Placed { path, outcome }))
        }
        None => Ok(None),
    }
}

/// Place a Codex rollout for `thread_id` under `codex_home`, holding the
/// thread's writer lock. If a rollout for the id (plain or `.jsonl.zst`)
/// already exists anywhere in the home it is compared with `content` instead
/// (see [`WriteOutcome`]);
/// otherwise the file is created at `codex_home/relative`.
pub fn place_codex_session<'a>(
    codex_home: &Path,
    thread_id: &str,
    relative: &Path,
    content: impl Into<Content<'a>>,
) -> Result<Placed, WriteError> {
    let mut content = content.into();
    // Checked before the lock too, so a refused write creates nothing (not
    // even the lock file); checked again under the lock before writing.
    if let Some(placed) = existing_codex_session(codex_home, thread_id, &mut content)? {
        return Ok(placed);
    }
    let lock = CodexWriterLock::acquire(codex_home, thread_id)?;
    place_codex_session_locked(&lock, codex_home, relative, content)
}

/// [`place_codex_session`] for the thread of `lock`, which the caller already
/// holds (so several files can be locked before the first is written).
pub fn place_codex_session_locked<'a>(
    lock: &CodexWriterLock,
    codex_home: &Path,
    relative: &Path,
    content: impl Into<Content<'a>>,
) -> Result<Placed, WriteError> {
    let mut content = content.into();
    if let Some(placed) = existing_codex_session(codex_home, &lock.thread_id, &mut content)? {
        return Ok(placed);
    }
    let target = codex_home.join(relative);
    let outcome = create_new_file(&target, content, 0o600)?;
    Ok(Placed {
        path: target,
        outcome,
    })
}

/// Place a Claude transcript for `session_id` at
/// `claude_dir/projects/<project_folder>/<id>.jsonl`. Every project folder is
/// checked for the id first: Claude cannot resume an id held by two folders,
/// so an existing copy elsewhere is compared instead of creating a duplicate.
pub fn place_claude_session<'a>(
    claude_dir: &Path,
    session_id: &str,
    project_folder: &str,
    content: impl Into<Content<'a>>,
) -> Result<Placed, WriteError> {
    let mut content = content.into();
    if let Some(existing) = claude::find_transcripts(claude_dir, session_id)
        .into_iter()
        .next()
    {
        let outcome = compare_existing(&existing, &mut content)?;
        return Ok(Placed {
            path: existing,
            outcome,
        });
    }
    let target = claude_dir.join(claude::transcript_path(project_folder, session_id));
    let outcome = create_new_file(&target, content, 0o600)?;
    Ok(Placed {
        path: target,
        outcome,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_agent_file_is_removed_only_when_it_matches_its_archived_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        assert!(!remove_archived_agent_file(&path, &mut &b"{\"a\":1}\n"[..]).unwrap());
        assert!(
            path.exists(),
            "a file that grew since it was archived stays"
        );
        assert!(remove_archived_agent_file(&path, &mut &b"{\"a\":1}\n{\"b\":2}\n"[..]).unwrap());
        assert!(!path.exists());
    }

    use super::*;

    #[test]
    fn creates_then_reports_unchanged_continued_and_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/s.jsonl");
        assert_eq!(
            write_new_file(&path, b"one\n").unwrap(),
            WriteOutcome::Created
        );
        assert_eq!(fs::read(&path).unwrap(), b"one\n");
        assert_eq!(
            write_new_file(&path, b"one\n").unwrap(),
            WriteOutcome::Unchanged
        );
        fs::write(&path, b"one\ntwo\n").unwrap();
        assert_eq!(
            write_new_file(&path, b"one\n").unwrap(),
            WriteOutcome::Continued { extra_bytes: 4 }
        );
        let err = write_new_file(&path, b"other\n").unwrap_err();
        assert!(matches!(err, WriteError::Conflict { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one\ntwo\n");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn replaced_files_hold_the_new_bytes_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace_file_mode(&path, b"one", 0o600).unwrap();
        replace_file_mode(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/such/dir/f");
        assert!(replace_file(&missing, b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn owned_files_are_extended_once_and_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib/s.jsonl");
        assert_eq!(extend_owned_file(&path, b"one\n", 0o600).unwrap(), 4);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(extend_owned_file(&path, b"one\ntwo\n", 0o600).unwrap(), 4);
        // Another writer already appended the same bytes: nothing twice.
        assert_eq!(extend_owned_file(&path, b"one\ntwo\n", 0o600).unwrap(), 0);
        assert_eq!(extend_owned_file(&path, b"one\n", 0o600).unwrap(), 0);
        let err = extend_owned_file(&path, b"one\nother\n", 0o600).unwrap_err();
        assert!(matches!(err, WriteError::Conflict { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn streamed_content_is_compared_and_extended_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        // Written in small pieces, so each comparison spans several writes.
        let pieces = |text: &'static [u8]| {
            move |out: &mut dyn Write| text.chunks(3).try_for_each(|c| out.write_all(c))
        };
        let mut first = pieces(b"one\ntwo\n");
        assert_eq!(
            create_new_file(&path, Content::Stream(&mut first), 0o600).unwrap(),
            WriteOutcome::Created
        );
        let outcome =
            |text: &'static [u8]| compare_existing(&path, &mut Content::Stream(&mut pieces(text)));
        assert_eq!(outcome(b"one\ntwo\n").unwrap(), WriteOutcome::Unchanged);
        assert_eq!(
            outcome(b"one\n").unwrap(),
            WriteOutcome::Continued { extra_bytes: 4 }
        );
        assert!(matches!(
            outcome(b"one\ntwo\nthree\n"),
            Err(WriteError::Conflict { .. })
        ));
        assert!(matches!(
            outcome(b"onX\n"),
            Err(WriteError::Conflict { .. })
        ));
        let mut longer = pieces(b"one\ntwo\nthree\n");
        assert_eq!(
            extend_owned_file(&path, Content::Stream(&mut longer), 0o600).unwrap(),
            6
        );
        let mut other = pieces(b"one\ntwo\nfour\n");
        let err = extend_owned_file(&path, Content::Stream(&mut other), 0o600).unwrap_err();
        assert!(matches!(err, WriteError::Conflict { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one\ntwo\nthree\n");
    }

    #[test]
    fn owned_files_are_extended_from_streamed_content_compared_piece_by_piece() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib/s.jsonl");
        // Written in small pieces, as a pull copies a spooled tail.
        let extend = |want: &[u8]| {
            let mut write =
                |out: &mut dyn Write| want.chunks(3).try_for_each(|piece| out.write_all(piece));
            extend_owned_file(&path, Content::Stream(&mut write), 0o600)
        };
        let first = vec![b'x'; (1 << 20) + 5];
        assert_eq!(extend(&first).unwrap(), first.len() as u64);
        let mut more = first.clone();
        more.extend_from_slice(b"\nmore\n");
        assert_eq!(extend(&more).unwrap(), 6);
        assert_eq!(extend(&more).unwrap(), 0);
        assert_eq!(extend(&first).unwrap(), 0);
        let mut other = more.clone();
        other[(1 << 20) + 2] = b'y';
        let err = extend(&other).unwrap_err();
        assert!(matches!(err, WriteError::Conflict { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), more);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn unwritable_target_is_a_clear_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let err = write_new_file(&blocker.join("home/s.jsonl"), b"x\n").unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }));
        assert!(err.to_string().contains("writable"), "{err}");
        let err =
            place_codex_session(&blocker, "id", Path::new("sessions/x.jsonl"), b"x").unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err}");
    }

    #[test]
    fn held_codex_lock_refuses_and_writes_nothing() {
        let home = tempfile::tempdir().unwrap();
        let held = CodexWriterLock::acquire(home.path(), "t1").unwrap();
        let rel = Path::new("sessions/2026/01/01/rollout-2026-01-01T00-00-00-t1.jsonl");
        let err = place_codex_session(home.path(), "t1", rel, b"{}\n").unwrap_err();
        assert!(err.to_string().contains("being written by another process"));
        assert!(!home.path().join(rel).exists());
        drop(held);
        let placed = place_codex_session(home.path(), "t1", rel, b"{}\n").unwrap();
        assert_eq!(placed.outcome, WriteOutcome::Created);
        assert_eq!(placed.path, home.path().join(rel));
    }

    #[test]
    fn codex_id_elsewhere_in_home_is_compared_not_duplicated() {
        let home = tempfile::tempdir().unwrap();
        let old = home
            .path()
            .join("sessions/2030/01/01/rollout-2030-01-01T00-00-00-t2.jsonl");
        fs::create_dir_all(old.parent().unwrap()).unwrap();
        fs::write(&old, b"{}\n").unwrap();
        let rel = Path::new("sessions/2026/01/01/rollout-2026-01-01T00-00-00-t2.jsonl");
        let placed = place_codex_session(home.path(), "t2", rel, b"{}\n").unwrap();
        assert_eq!(placed.outcome, WriteOutcome::Unchanged);
        assert_eq!(placed.path, old);
        assert!(!home.path().join(rel).exists());
    }

    #[test]
    fn claude_id_in_another_project_is_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("projects/-old/s1.jsonl");
        fs::create_dir_all(other.parent().unwrap()).unwrap();
        fs::write(&other, b"different\n").unwrap();
        let err = place_claude_session(dir.path(), "s1", "-new", b"ours\n").unwrap_err();
        assert!(matches!(err, WriteError::Conflict { .. }));
        assert!(!dir.path().join("projects/-new/s1.jsonl").exists());
        let placed = place_claude_session(dir.path(), "s2", "-new", b"ours\n").unwrap();
        assert_eq!(placed.path, dir.path().join("projects/-new/s2.jsonl"));
    }

    /// Every path below `root`, sorted.
    fn tree(root: &Path) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = walkdir::WalkDir::new(root)
            .into_iter()
            .flatten()
            .map(|e| e.into_path())
            .collect();
        all.sort();
        all
    }

    #[test]
    fn refused_writes_leave_the_home_tree_unchanged() {
        let home = tempfile::tempdir().unwrap();
        let old = home
            .path()
            .join("sessions/2030/01/01/rollout-2030-01-01T00-00-00-t3.jsonl");
        fs::create_dir_all(old.parent().unwrap()).unwrap();
        fs::write(&old, b"theirs\n").unwrap();
        let claude = home.path().join("projects/-old/s3.jsonl");
        fs::create_dir_all(claude.parent().unwrap()).unwrap();
        fs::write(&claude, b"theirs\n").unwrap();
        let before = tree(home.path());
        let rel = Path::new("sessions/2026/05/06/rollout-2026-05-06T00-00-00-t3.jsonl");
        let err = place_codex_session(home.path(), "t3", rel, b"ours\n").unwrap_err();
        assert!(matches!(err, WriteError::Conflict { .. }), "{err}");
        let err = place_claude_session(home.path(), "s3", "-new", b"ours\n").unwrap_err();
        assert!(matches!(err, WriteError::Conflict { .. }), "{err}");
        assert_eq!(tree(home.path()), before);
        // A held lock refuses without creating the target's directories.
        let held = CodexWriterLock::acquire(home.path(), "t4").unwrap();
        let before = tree(home.path());
        let rel = Path::new("sessions/2026/07/08/rollout-2026-07-08T00-00-00-t4.jsonl");
        let err = place_codex_session(home.path(), "t4", rel, b"x\n").unwrap_err();
        assert!(matches!(err, WriteError::Locked { .. }), "{err}");
        assert_eq!(tree(home.path()), before);
        drop(held);
    }

    #[test]
    fn no_clobber_move_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, target) = (dir.path().join(".tmp"), dir.path().join("t.jsonl"));
        fs::write(&tmp, b"new").unwrap();
        fs::write(&target, b"old").unwrap();
        let err = link_no_clobber(&tmp, &target).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        fs::remove_file(&target).unwrap();
        link_no_clobber(&tmp, &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn a_compressed_rollout_counts_as_existing() {
        let home = tempfile::tempdir().unwrap();
        let zst = home
            .path()
            .join("sessions/2030/01/01/rollout-2030-01-01T00-00-00-t5.jsonl.zst");
        fs::create_dir_all(zst.parent().unwrap()).unwrap();
        fs::write(&zst, zstd::encode_all(&b"one\ntwo\n"[..], 3).unwrap()).unwrap();
        let rel = Path::new("sessions/2030/01/01/rollout-2030-01-01T00-00-00-t5.jsonl");
        let placed = place_codex_session(home.path(), "t5", rel, b"one\ntwo\n").unwrap();
        assert_eq!(
            (placed.path.as_path(), placed.outcome),
            (zst.as_path(), WriteOutcome::Unchanged)
        );
        let placed = place_codex_session(home.path(), "t5", rel, b"one\n").unwrap();
        assert_eq!(placed.outcome, WriteOutcome::Continued { extra_bytes: 4 });
        let err = place_codex_session(home.path(), "t5", rel, b"other\n").unwrap_err();
        assert!(matches!(err, WriteError::Conflict { .. }), "{err}");
        assert!(
            !home.path().join(rel).exists(),
            "no plain copy shadows the .zst"
        );
    }
}
