//! The file system side of native files: walking agent homes (never
//! aborting; unreadable entries become issues naming the path), reading a
//! file's bytes from an uncompressed offset, and the stat used for change
//! detection.

use rayon::prelude::*;
use std::ffi::OsStr;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Whether `path` names a zstd-compressed native file (`*.jsonl.zst`).
pub fn is_compressed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zst")
}

/// The whole of the native file at `path`, decompressed when its name says
/// `.zst` (see [`is_compressed`]).
pub fn read_whole(path: &Path) -> io::Result<Vec<u8>> {
    read_native_path(path, is_compressed(path), 0)
}

/// Whether two readers yield the same bytes, compared a block at a time
/// (memory stays bounded whatever their length).
pub fn same_bytes(a: &mut dyn Read, b: &mut dyn Read) -> io::Result<bool> {
    const BLOCK: usize = 1 << 20;
    let (mut x, mut y) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    loop {
        let n = read_full(a, &mut x)?;
        let m = read_full(b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n < BLOCK {
            return Ok(true);
        }
    }
}

/// Read into `buf` until it is full or `r` ends; the bytes read.
pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether [`walk`] enters a directory, given its depth (1: a child of the
/// root) and name.
pub(crate) type Descend = dyn Fn(usize, &OsStr) -> bool + Sync;

/// A regular file met by [`walk`].
pub(crate) struct Entry {
    /// The file.
    pub(crate) path: PathBuf,
    /// 1 for a child of the root.
    pub(crate) depth: usize,
    /// Taken when the walk was asked to.
    pub(crate) stat: io::Result<FileStat>,
}

/// What walking one directory entry gave.
enum Walked {
    File(Entry),
    Dir(Vec<Entry>, Vec<String>),
}

/// Walks `root` (entering the directories `descend` accepts; links are not
/// followed), returning every regular file sorted by path and recording in
/// the issues unreadable entries and entries named like a session file
/// (`*.jsonl`, `*.jsonl.zst`) that are not regular files: a directory, or a
/// symbolic link (dangling or not). Directories and stats are spread over
/// the rayon pool; file types come from `getdents`, and stats (when
/// `with_stat`) are taken relative to the open directory.
pub(crate) fn walk(root: &Path, descend: &Descend, with_stat: bool) -> (Vec<Entry>, Vec<String>) {
    walk_dir(root, 1, descend, with_stat)
}

fn walk_dir(
    dir: &Path,
    depth: usize,
    descend: &Descend,
    with_stat: bool,
) -> (Vec<Entry>, Vec<String>) {
    let skipped = |path: &Path, e: &io::Error| format!("{}: {e} (skipped)", path.display());
    let mut issues = Vec::new();
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) => return (Vec::new(), vec![skipped(dir, &e)]),
    };
    let mut entries = Vec::new();
    for entry in read {
        match entry {
            Ok(entry) => entries.push(entry),
            Err(e) => issues.push(skipped(dir, &e)),
        }
    }
    entries.sort_by_cached_key(|e| e.file_name());
    let mut todo = Vec::with_capacity(entries.len());
    for entry in entries {
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) => {
                issues.push(skipped(&entry.path(), &e));
                continue;
            }
        };
        if kind.is_file() {
            todo.push((entry, false));
            continue;
        }
        let name = entry.file_name();
        if named_like_a_session(&name) {
            let what = if kind.is_dir() {
                "a directory"
            } else if kind.is_symlink() {
                "a symbolic link (baton reads only regular files)"
            } else {
                "not a regular file"
            };
            issues.push(format!(
                "{}: named like a session file but is {what} (skipped)",
                entry.path().display()
            ));
        }
        if kind.is_dir() && descend(depth, &name) {
            todo.push((entry, true));
        }
    }
    let walked: Vec<Walked> = todo
        .into_par_iter()
        .map(|(entry, is_dir)| {
            if is_dir {
                let (files, issues) = walk_dir(&entry.path(), depth + 1, descend, with_stat);
                return Walked::Dir(files, issues);
            }
            let stat = if with_stat {
                entry.metadata().map(|m| FileStat::of(&m))
            } else {
                Ok(FileStat::default())
            };
            Walked::File(Entry {
                path: entry.path(),
                depth,
                stat,
            })
        })
        .collect();
    let mut files = Vec::with_capacity(walked.len());
    for w in walked {
        match w {
            Walked::File(entry) => files.push(entry),
            Walked::Dir(sub, sub_issues) => {
                files.extend(sub);
                issues.extend(sub_issues);
            }
        }
    }
    (files, issues)
}

/// Whether a file name is that of a session file (`*.jsonl`, `*.jsonl.zst`).
fn named_like_a_session(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.ends_with(".jsonl") || n.ends_with(".jsonl.zst"))
}

/// The bytes of the native file at `path` from uncompressed offset `from`
/// to its end; `compressed` files (`.jsonl.zst`) are decompressed (offsets
/// always count uncompressed bytes). An offset past the end yields no bytes.
pub fn read_native_path(path: &Path, compressed: bool, from: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    open_native_path(path, compressed, from)?.read_to_end(&mut out)?;
    Ok(out)
}

/// A reader over a native file's bytes from uncompressed offset `from` on,
/// for reading in bounded pieces; `.zst` files are decompressed (the bytes
/// before `from` are decompressed and dropped), plain files are seeked.
pub fn open_native_path(
    path: &Path,
    compressed: bool,
    from: u64,
) -> io::Result<Box<dyn Read + Send>> {
    let mut f = std::fs::File::open(path)?;
    if compressed {
        let mut dec = zstd::stream::read::Decoder::new(f)?;
        io::copy(&mut (&mut dec).take(from), &mut io::sink())?;
        Ok(Box::new(dec))
    } else {
        f.seek(SeekFrom::Start(from))?;
        Ok(Box::new(f))
    }
}

/// What a file looked like when last stat'ed, for change detection: size,
/// mtime and identity (inode and device; both 0 where the platform has none).
/// Any write or replacement changes at least one of them. (The aliases read
/// the sync state that earlier versions saved.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    /// Size in bytes (of the file on disk, compressed or not).
    #[serde(alias = "len")]
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: i64,
    /// Inode number.
    #[serde(alias = "inode")]
    pub ino: u64,
    /// Device number.
    #[serde(default)]
    pub dev: u64,
}

impl FileStat {
    /// The stat of the file at `path` now; `None` when it cannot be stat'ed.
    pub fn of_path(path: &Path) -> Option<FileStat> {
        std::fs::metadata(path).ok().map(|meta| FileStat::of(&meta))
    }

    /// The stat of `meta`.
    pub fn of(meta: &std::fs::Metadata) -> FileStat {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        #[cfg(unix)]
        let (ino, dev) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev())
        };
        #[cfg(not(unix))]
        let (ino, dev) = (0, 0);
        FileStat {
            size: meta.len(),
            mtime_ns,
            ino,
            dev,
        }
    }

    /// True when both stats name the same file (same inode on the same device).
    pub fn same_file(&self, other: &FileStat) -> bool {
        self.ino == other.ino && self.dev == other.dev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_stat_reads_the_names_earlier_sync_states_saved() {
        let old: FileStat = serde_json::from_str(r#"{"len":5,"mtime_ns":7,"inode":9}"#).unwrap();
        let now = FileStat {
            size: 5,
            mtime_ns: 7,
            ino: 9,
            dev: 0,
        };
        assert_eq!(old, now);
        let round: FileStat = serde_json::from_str(&serde_json::to_string(&now).unwrap()).unwrap();
        assert_eq!(round, now);
    }
}
