//! Finding native session files under agent homes, and reading their bytes.
//!
//! Walks never abort: unreadable directories and files that vanish during
//! the walk (Claude's retention sweep deletes files at any time) are returned
//! as issues naming the path.

use crate::files;
use crate::layout::{claude, codex};
use crate::model::Agent;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::files::{FileStat, open_native_path, read_native_path};

/// One native file found under an agent home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFile {
    /// Which agent wrote it.
    pub agent: Agent,
    /// Absolute path.
    pub path: PathBuf,
    /// Session id taken from the file name (Codex: the thread id of the
    /// rollout name, a revert segment's included; Claude `<id>.jsonl`;
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
    let (found, issues) = codex::walk_home(home, with_stat);
    let files = found
        .into_iter()
        .map(|f| Scanned {
            file: NativeFile {
                agent: Agent::Codex,
                path: f.entry.path,
                id_hint: f.thread_id,
                sidechain_of: None,
                compressed: f.compressed,
            },
            stat: f.entry.stat,
        })
        .collect();
    (files, issues)
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
    let root = dir.join(claude::PROJECTS_DIR);
    if !root.is_dir() {
        return (Vec::new(), Vec::new());
    }
    // Only `<slug>/`, `<slug>/<id>/` and `<slug>/<id>/subagents/` can hold
    // transcripts: other directories (tool results, memory) are not read.
    let descend =
        |depth: usize, name: &OsStr| depth <= 2 || (depth == 3 && name == claude::SUBAGENTS_DIR);
    let (entries, mut issues) = files::walk(&root, &descend, with_stat);
    let mut files = Vec::new();
    let mut older_agents = Vec::new();
    for e in entries {
        let Some(name) = e.path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (session, agent_id) = (claude::transcript_id(name), claude::subagent_id(name));
        let (id_hint, sidechain_of) = match (e.depth, session, agent_id) {
            (2, Some(id), _) => (Some(id.to_owned()), None),
            (2, _, Some(a)) => {
                older_agents.push(files.len());
                (Some(a.to_owned()), None)
            }
            (4, _, Some(a)) => {
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
        match crate::head::peek_file(Agent::Claude, &f.path) {
            Ok(head) => f.sidechain_of = head.session_id,
            Err(e) => issues.push(format!("{}: {e}", f.path.display())),
        }
    }
    (files, issues)
}

/// The bytes of a native file from uncompressed offset `from` to its end;
/// `.zst` files are decompressed (offsets always count uncompressed bytes).
/// An offset past the end yields no bytes.
pub fn read_native(file: &NativeFile, from: u64) -> io::Result<Vec<u8>> {
    read_native_path(&file.path, file.compressed, from)
}

#[cfg(test)]
mod tests {
    use super::*;

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
