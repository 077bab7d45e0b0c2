//! Finding native session files under agent homes, and reading their bytes.
//!
//! Walks never abort: unreadable directories and files that vanish during
//! the walk (Claude's retention sweep deletes files at any time) are returned
//! as issues naming the path.

use crate::model::Agent;
use std::collections::HashSet;
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
    let mut files = Vec::new();
    let mut issues = Vec::new();
    for (dir, depth) in [("sessions", usize::MAX), ("archived_sessions", 1)] {
        let root = home.join(dir);
        if !root.exists() {
            continue;
        }
        let mut found = Vec::new();
        walk(&root, depth, &mut issues, |path| {
            let name = path.file_name()?.to_str()?;
            let (stem, compressed) = match name.strip_suffix(".jsonl.zst") {
                Some(stem) => (stem, true),
                None => (name.strip_suffix(".jsonl")?, false),
            };
            let stem = stem.strip_prefix("rollout-")?;
            found.push(NativeFile {
                agent: Agent::Codex,
                path: path.to_path_buf(),
                id_hint: codex_id_from_name(stem),
                sidechain_of: None,
                compressed,
            });
            Some(())
        });
        let plain: HashSet<PathBuf> = found
            .iter()
            .filter(|f| !f.compressed)
            .map(|f| f.path.clone())
            .collect();
        found.retain(|f| !f.compressed || !plain.contains(&f.path.with_extension("")));
        files.extend(found);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
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
    let mut files = Vec::new();
    let mut issues = Vec::new();
    let root = dir.join("projects");
    if !root.exists() {
        return (files, issues);
    }
    let mut older_agents = Vec::new();
    walk(&root, 4, &mut issues, |path| {
        let rel = path.strip_prefix(&root).ok()?;
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
        let stem = parts.last()?.strip_suffix(".jsonl")?;
        let agent_id = stem.strip_prefix("agent-");
        let (id_hint, sidechain_of) = match (parts.as_slice(), agent_id) {
            ([_slug, _file], None) => (Some(stem.to_owned()), None),
            ([_slug, _file], Some(a)) => {
                older_agents.push(files.len());
                (Some(a.to_owned()), None)
            }
            ([_slug, session, "subagents", _file], Some(a)) => {
                (Some(a.to_owned()), Some((*session).to_owned()))
            }
            _ => return None,
        };
        files.push(NativeFile {
            agent: Agent::Claude,
            path: path.to_path_buf(),
            id_hint,
            sidechain_of,
            compressed: false,
        });
        Some(())
    });
    for i in older_agents {
        let f = &mut files[i];
        match first_session_id(&f.path) {
            Ok(sid) => f.sidechain_of = sid,
            Err(e) => issues.push(format!("{}: {e}", f.path.display())),
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
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

/// Walks `root` to `max_depth`, calling `visit` for every regular file and
/// recording in `issues` unreadable entries and entries named like a session
/// file (`*.jsonl`, `*.jsonl.zst`) that are not regular files: a directory,
/// or a symbolic link (dangling or not; links are not followed).
fn walk(
    root: &Path,
    max_depth: usize,
    issues: &mut Vec<String>,
    mut visit: impl FnMut(&Path) -> Option<()>,
) {
    for entry in walkdir::WalkDir::new(root)
        .max_depth(max_depth)
        .sort_by_file_name()
    {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                visit(e.path());
            }
            Ok(e) if e.depth() > 0 && named_like_a_session(e.path()) => {
                let kind = if e.file_type().is_dir() {
                    "a directory"
                } else if e.file_type().is_symlink() {
                    "a symbolic link (baton reads only regular files)"
                } else {
                    "not a regular file"
                };
                issues.push(format!(
                    "{}: named like a session file but is {kind} (skipped)",
                    e.path().display()
                ));
            }
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(root).display().to_string();
                let why = e
                    .io_error()
                    .map(|io| io.to_string())
                    .unwrap_or_else(|| e.to_string());
                issues.push(format!("{path}: {why} (skipped)"));
            }
        }
    }
}

/// Whether a path's name is that of a session file (`*.jsonl`, `*.jsonl.zst`).
fn named_like_a_session(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
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
}
