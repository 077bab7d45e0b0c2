//! Finding native session files under agent homes, and reading their bytes.
//!
//! Walks never abort: unreadable directories and files that vanish during
//! the walk (Claude's retention sweep deletes files at any time) are returned
//! as issues naming the path.

use crate::model::Agent;
use rayon::prelude::*;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One native file found under an agent home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFile {
    /// Which agent wrote it.
    pub agent: Agent,
    /// Absolute path.
    pub path: PathBuf,
    /// Session id taken from the file name (Codex UUID, Claude `<id>.jsonl`,
    /// Claude subagent `agent-<agentId>.jsonl` → `<agentId>`).
    pub id_hint: Option<String>,
    /// Claude subagent transcript: the id of the session it belongs to.
    pub sidechain_of: Option<String>,
    /// zstd-compressed (`.jsonl.zst`).
    pub compressed: bool,
}

/// Every Codex rollout under `home` (`sessions/**`, flat `archived_sessions/`),
/// sorted by path, and the issues met on the way. When both `x.jsonl` and
/// `x.jsonl.zst` exist, only the plain file is returned.
pub fn discover_codex(home: &Path) -> (Vec<NativeFile>, Vec<String>) {
    let (found, issues) = codex_files(home, false);
    (found.into_iter().map(|s| s.file).collect(), issues)
}

/// [`discover_codex`], with each file's stat taken during the walk (relative
/// to its open directory, across cores): what a change check needs, at one
/// `statx` per file and one `getdents` pass per directory.
pub fn scan_codex(home: &Path) -> (Vec<Scanned>, Vec<String>) {
    codex_files(home, true)
}

/// A native file found by [`scan_codex`] or [`scan_claude`], and its stat
/// (an error when it vanished or could not be stat'ed after the walk saw it).
#[derive(Debug)]
pub struct Scanned {
    /// The file.
    pub file: NativeFile,
    /// Its size, mtime and identity at the time of the walk.
    pub stat: io::Result<FileStat>,
}

fn codex_files(home: &Path, with_stat: bool) -> (Vec<Scanned>, Vec<String>) {
    let mut files = Vec::new();
    let mut issues = Vec::new();
    // `archived_sessions` sorts before `sessions`: walking it first keeps
    // the whole list sorted by path.
    let every_dir = |_: usize, _: &OsStr| true;
    let no_dir = |_: usize, _: &OsStr| false;
    let dirs: [(&str, &Descend); 2] = [("archived_sessions", &no_dir), ("sessions", &every_dir)];
    for (dir, descend) in dirs {
        let root = home.join(dir);
        // A file where the directory should be holds no sessions.
        if !root.is_dir() {
            continue;
        }
        let (entries, errs) = walk(&root, descend, with_stat);
        issues.extend(errs);
        let mut found: Vec<Scanned> = entries
            .into_iter()
            .filter_map(|e| {
                let name = e.path.file_name()?.to_str()?;
                let (stem, compressed) = match name.strip_suffix(".jsonl.zst") {
                    Some(stem) => (stem, true),
                    None => (name.strip_suffix(".jsonl")?, false),
                };
                let id_hint = codex_id_from_name(stem.strip_prefix("rollout-")?);
                Some(Scanned {
                    file: NativeFile {
                        agent: Agent::Codex,
                        path: e.path,
                        id_hint,
                        sidechain_of: None,
                        compressed,
                    },
                    stat: e.stat,
                })
            })
            .collect();
        if found.iter().any(|s| s.file.compressed) {
            let plain: HashSet<PathBuf> = found
                .iter()
                .filter(|s| !s.file.compressed)
                .map(|s| s.file.path.clone())
                .collect();
            found
                .retain(|s| !s.file.compressed || !plain.contains(&s.file.path.with_extension("")));
        }
        files.extend(found);
    }
    (files, issues)
}

/// The thread id at the end of a rollout name stem (`<ts>-<uuid>`, or
/// `<ts>-<thread-id>_<rollout-id>` for a revert segment).
fn codex_id_from_name(stem: &str) -> Option<String> {
    let tail = |s: &str| -> Option<String> {
        let start = s.len().checked_sub(36)?;
        let cand = s.get(start..)?;
        uuid::Uuid::parse_str(cand).ok().map(|_| cand.to_owned())
    };
    if let Some((head, seg)) = stem.rsplit_once('_')
        && let (Some(thread), Some(_)) = (tail(head), tail(seg))
    {
        return Some(thread);
    }
    tail(stem)
}

/// Every Claude transcript under `dir/projects/` (`<slug>/<id>.jsonl`,
/// `<slug>/<id>/subagents/agent-*.jsonl`, older `<slug>/agent-*.jsonl`),
/// sorted by path, and the issues met on the way.
pub fn discover_claude(dir: &Path) -> (Vec<NativeFile>, Vec<String>) {
    let (found, issues) = claude_files(dir, false);
    (found.into_iter().map(|s| s.file).collect(), issues)
}

/// [`discover_claude`], with each file's stat taken during the walk (see
/// [`scan_codex`]).
pub fn scan_claude(dir: &Path) -> (Vec<Scanned>, Vec<String>) {
    claude_files(dir, true)
}

fn claude_files(dir: &Path, with_stat: bool) -> (Vec<Scanned>, Vec<String>) {
    let root = dir.join("projects");
    if !root.is_dir() {
        return (Vec::new(), Vec::new());
    }
    // Only `<slug>/`, `<slug>/<id>/` and `<slug>/<id>/subagents/` can hold
    // transcripts: other directories (tool results, memory) are not read.
    let descend = |depth: usize, name: &OsStr| depth <= 2 || (depth == 3 && name == "subagents");
    let (entries, mut issues) = walk(&root, &descend, with_stat);
    let mut files = Vec::new();
    let mut older_agents = Vec::new();
    for e in entries {
        let Some(stem) = e
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
        else {
            continue;
        };
        let agent_id = stem.strip_prefix("agent-");
        let (id_hint, sidechain_of) = match (e.depth, agent_id) {
            (2, None) => (Some(stem.to_owned()), None),
            (2, Some(a)) => {
                older_agents.push(files.len());
                (Some(a.to_owned()), None)
            }
            (4, Some(a)) => {
                let session = e
                    .path
                    .parent()
                    .and_then(Path::parent)
                    .and_then(Path::file_name)
                    .and_then(|n| n.to_str());
                let Some(session) = session else { continue };
                (Some(a.to_owned()), Some(session.to_owned()))
            }
            _ => continue,
        };
        files.push(Scanned {
            file: NativeFile {
                agent: Agent::Claude,
                path: e.path,
                id_hint,
                sidechain_of,
                compressed: false,
            },
            stat: e.stat,
        });
    }
    for i in older_agents {
        let f = &mut files[i].file;
        match first_session_id(&f.path) {
            Ok(sid) => f.sidechain_of = sid,
            Err(e) => issues.push(format!("{}: {e}", f.path.display())),
        }
    }
    (files, issues)
}

/// The `sessionId` of the first line that has one (within the first 64 KiB).
fn first_session_id(path: &Path) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(64 * 1024)
        .read_to_end(&mut head)?;
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Head<'a> {
        #[serde(borrow)]
        session_id: crate::lenient::LStr<'a>,
    }
    Ok(crate::jsonl::Lines::new(&head, 0, 0)
        .filter_map(|l| {
            l.parse::<Head<'_>>()
                .ok()?
                .session_id
                .get()
                .map(str::to_owned)
        })
        .next())
}

/// Whether [`walk`] enters a directory, given its depth (1: a child of the
/// root) and name.
type Descend = dyn Fn(usize, &OsStr) -> bool + Sync;

/// A regular file met by [`walk`].
struct Entry {
    path: PathBuf,
    /// 1 for a child of the root.
    depth: usize,
    /// Taken when the walk was asked to.
    stat: io::Result<FileStat>,
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
fn walk(root: &Path, descend: &Descend, with_stat: bool) -> (Vec<Entry>, Vec<String>) {
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

/// The bytes of a native file from uncompressed offset `from` to its end;
/// `.zst` files are decompressed (offsets always count uncompressed bytes).
/// An offset past the end yields no bytes.
pub fn read_native(file: &NativeFile, from: u64) -> io::Result<Vec<u8>> {
    read_native_path(&file.path, file.compressed, from)
}

/// [`read_native`] for a bare path.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStat {
    /// Size in bytes (of the file on disk, compressed or not).
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: i64,
    /// Inode number.
    pub ino: u64,
    /// Device number.
    pub dev: u64,
}

impl FileStat {
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
    fn codex_ids_from_names() {
        let id = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
        let other = "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b";
        assert_eq!(
            codex_id_from_name(&format!("2026-11-21T19-20-28-{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(
            codex_id_from_name(&format!("2026-11-21T19-20-28-{id}_{other}")).as_deref(),
            Some(id)
        );
        assert_eq!(codex_id_from_name("2026-11-21T19-20-28-nope"), None);
        assert_eq!(codex_id_from_name("é"), None);
    }

    #[test]
    fn session_names_that_are_not_regular_files_are_issues() {
        let id = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
        let home = tempfile::tempdir().unwrap();
        let day = home.path().join("sessions/2026/01/01");
        std::fs::create_dir_all(&day).unwrap();
        let good = day.join(format!("rollout-2026-01-01T00-00-00-{id}.jsonl"));
        std::fs::write(&good, b"{}\n").unwrap();
        let dir = day.join("rollout-2026-01-01T00-00-01-x.jsonl");
        std::fs::create_dir(&dir).unwrap();
        let link = day.join("rollout-2026-01-01T00-00-02-y.jsonl");
        std::os::unix::fs::symlink(day.join("gone.jsonl"), &link).unwrap();
        let (files, issues) = discover_codex(home.path());
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].path, good);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(
            issues
                .iter()
                .any(|i| i.starts_with(&dir.display().to_string()) && i.contains("is a directory"))
        );
        assert!(
            issues
                .iter()
                .any(|i| i.starts_with(&link.display().to_string()) && i.contains("symbolic link"))
        );
    }

    #[test]
    fn scans_are_sorted_stat_each_file_and_skip_non_transcript_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("projects/-p");
        for d in ["s1/subagents", "s1/tool-results", "b", "s0"] {
            std::fs::create_dir_all(proj.join(d)).unwrap();
        }
        for (f, bytes) in [
            ("s1.jsonl", "{}\n"),
            ("s1/subagents/agent-b.jsonl", "{}\n{}\n"),
            ("s1/subagents/agent-a.jsonl", "{}\n"),
            ("s1/tool-results/agent-x.jsonl", "{}\n"),
            ("s0.jsonl", ""),
            ("a.jsonl", "{}\n"),
        ] {
            std::fs::write(proj.join(f), bytes).unwrap();
        }
        let (scanned, issues) = scan_claude(dir.path());
        assert!(issues.is_empty(), "{issues:?}");
        let paths: Vec<&Path> = scanned.iter().map(|s| s.file.path.as_path()).collect();
        let want: Vec<PathBuf> = [
            "a.jsonl",
            "s0.jsonl",
            "s1/subagents/agent-a.jsonl",
            "s1/subagents/agent-b.jsonl",
            "s1.jsonl",
        ]
        .iter()
        .map(|f| proj.join(f))
        .collect();
        assert_eq!(paths, want.iter().map(PathBuf::as_path).collect::<Vec<_>>());
        for s in &scanned {
            let meta = std::fs::metadata(&s.file.path).unwrap();
            assert_eq!(*s.stat.as_ref().unwrap(), FileStat::of(&meta));
        }
        let (plain, _) = discover_claude(dir.path());
        let files: Vec<NativeFile> = scanned.into_iter().map(|s| s.file).collect();
        assert_eq!(plain, files);
    }
}
