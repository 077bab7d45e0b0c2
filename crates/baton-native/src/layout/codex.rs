//! The Codex home layout: rollout file names, and where a thread's rollouts
//! are.
//!
//! A rollout lives at `sessions/YYYY/MM/DD/rollout-<stamp>-<thread-id>.jsonl`
//! (live, filed by day) or flat in `archived_sessions/`, possibly
//! zstd-compressed (`.jsonl.zst`). A revert segment is
//! `rollout-<stamp>-<thread-id>_<rollout-id>.jsonl`: it belongs to the
//! session of its **thread** id. When both `x.jsonl` and `x.jsonl.zst` exist,
//! the plain file is the one read ([`drop_shadowed_zst`]).

use crate::files::{self, Descend, Entry};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Folder of a Codex home holding live rollouts, by day.
pub const SESSIONS_DIR: &str = "sessions";
/// Folder of a Codex home holding archived rollouts (flat).
pub const ARCHIVED_DIR: &str = "archived_sessions";
/// Folder of a Codex home holding the per-thread writer locks.
pub const WRITER_LOCKS_DIR: &str = "thread-writer-locks";

/// Codex's cross-process writer lock of thread `thread_id`:
/// `<codex_home>/thread-writer-locks/<thread_id>.lock`.
pub fn writer_lock_path(codex_home: &Path, thread_id: &str) -> PathBuf {
    codex_home
        .join(WRITER_LOCKS_DIR)
        .join(format!("{thread_id}.lock"))
}

/// `strftime` format of the time stamp in a rollout name.
const STAMP_FORMAT: &str = "%Y-%m-%dT%H-%M-%S";
/// Length of a formatted stamp (`YYYY-MM-DDThh-mm-ss`).
const STAMP_LEN: usize = 19;

/// The parts of a rollout file name
/// `rollout-<stamp>-<thread-id>[_<rollout-id>].jsonl[.zst]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutName<'a> {
    /// When the rollout was created, `YYYY-MM-DDThh-mm-ss`.
    pub stamp: &'a str,
    /// The thread (session) id.
    pub thread_id: &'a str,
    /// A revert segment's own rollout id.
    pub rollout_id: Option<&'a str>,
    /// zstd-compressed (`.jsonl.zst`).
    pub compressed: bool,
}

impl<'a> RolloutName<'a> {
    /// Parse a file name; `None` when it is not a rollout name (the ids must
    /// be non-empty ASCII letters, digits and `-`).
    pub fn parse(file_name: &'a str) -> Option<Self> {
        let rest = file_name.strip_prefix("rollout-")?;
        let (rest, compressed) = match rest.strip_suffix(".jsonl.zst") {
            Some(rest) => (rest, true),
            None => (rest.strip_suffix(".jsonl")?, false),
        };
        let stamp = rest.get(..STAMP_LEN).filter(|s| is_stamp(s))?;
        let ids = rest[STAMP_LEN..].strip_prefix('-')?;
        let (thread_id, rollout_id) = match ids.split_once('_') {
            Some((thread, rollout)) => (thread, Some(rollout)),
            None => (ids, None),
        };
        (is_name_id(thread_id) && rollout_id.is_none_or(is_name_id)).then_some(RolloutName {
            stamp,
            thread_id,
            rollout_id,
            compressed,
        })
    }

    /// [`RolloutName::parse`] of a path's file name.
    pub fn of_path(path: &'a Path) -> Option<Self> {
        Self::parse(path.file_name()?.to_str()?)
    }

    /// The file name these parts make.
    pub fn file_name(&self) -> String {
        let segment = self.rollout_id.map(|r| format!("_{r}")).unwrap_or_default();
        let zst = if self.compressed { ".zst" } else { "" };
        format!(
            "rollout-{}-{}{segment}.jsonl{zst}",
            self.stamp, self.thread_id
        )
    }

    /// Where a live rollout of this name is kept, relative to the Codex
    /// home: `sessions/YYYY/MM/DD/<file name>`, dated by its stamp.
    pub fn session_path(&self) -> String {
        let part = |r: std::ops::Range<usize>| self.stamp.get(r).unwrap_or_default();
        let (y, m, d) = (part(0..4), part(5..7), part(8..10));
        format!("{SESSIONS_DIR}/{y}/{m}/{d}/{}", self.file_name())
    }
}

/// The relative path of a new rollout for `thread_id` created at `at`
/// (filed by the date and named by the time of `at`'s own time zone).
pub fn new_rollout_path(thread_id: &str, at: &jiff::Zoned) -> String {
    let stamp = at.strftime(STAMP_FORMAT).to_string();
    RolloutName {
        stamp: &stamp,
        thread_id,
        rollout_id: None,
        compressed: false,
    }
    .session_path()
}

/// Whether `s` is `YYYY-MM-DDThh-mm-ss` (digits where digits go).
fn is_stamp(s: &str) -> bool {
    s.len() == STAMP_LEN
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 13 | 16 => b == b'-',
            10 => b == b'T',
            _ => b.is_ascii_digit(),
        })
}

/// Whether `s` can be an id in a rollout name.
fn is_name_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A file met by [`walk_home`]: named `rollout-*.jsonl[.zst]`, with its
/// thread id when the name parses.
pub(crate) struct Found {
    /// The walked file (path, stat).
    pub(crate) entry: Entry,
    /// The thread id its name carries.
    pub(crate) thread_id: Option<String>,
    /// `.jsonl.zst`.
    pub(crate) compressed: bool,
}

/// Every `rollout-*.jsonl[.zst]` under `home` (`sessions/**`, flat
/// `archived_sessions/`), sorted by path, shadowed `.zst` copies dropped,
/// with each file's stat when `with_stat`; and the issues met on the way.
pub(crate) fn walk_home(home: &Path, with_stat: bool) -> (Vec<Found>, Vec<String>) {
    let mut files = Vec::new();
    let mut issues = Vec::new();
    // `archived_sessions` sorts before `sessions`: walking it first keeps
    // the whole list sorted by path.
    let every_dir = |_: usize, _: &OsStr| true;
    let no_dir = |_: usize, _: &OsStr| false;
    let dirs: [(&str, &Descend); 2] = [(ARCHIVED_DIR, &no_dir), (SESSIONS_DIR, &every_dir)];
    for (dir, descend) in dirs {
        let root = home.join(dir);
        // A file where the directory should be holds no sessions.
        if !root.is_dir() {
            continue;
        }
        let (entries, errs) = files::walk(&root, descend, with_stat);
        issues.extend(errs);
        let mut found: Vec<Found> = entries
            .into_iter()
            .filter_map(|entry| {
                let name = entry.path.file_name()?.to_str()?;
                let compressed = name.ends_with(".jsonl.zst");
                if !name.starts_with("rollout-") || !(compressed || name.ends_with(".jsonl")) {
                    return None;
                }
                let thread_id = RolloutName::parse(name).map(|n| n.thread_id.to_owned());
                Some(Found {
                    entry,
                    thread_id,
                    compressed,
                })
            })
            .collect();
        drop_shadowed_zst(&mut found, |f| &f.entry.path);
        files.extend(found);
    }
    (files, issues)
}

/// Drop every `x.jsonl.zst` whose plain `x.jsonl` is also in `files`: the
/// plain file is the one read (Codex compresses a copy and removes the
/// plain file afterwards).
pub fn drop_shadowed_zst<T>(files: &mut Vec<T>, path: impl Fn(&T) -> &Path) {
    if !files.iter().any(|f| files::is_compressed(path(f))) {
        return;
    }
    let plain: std::collections::HashSet<PathBuf> = files
        .iter()
        .map(&path)
        .filter(|p| !files::is_compressed(p))
        .map(Path::to_path_buf)
        .collect();
    files.retain(|f| {
        let p = path(f);
        !files::is_compressed(p) || !plain.contains(&p.with_extension(""))
    });
}

/// Every rollout of `thread_id` under the Codex home `home` (revert segments
/// included), sorted by path, a `.zst` shadowed by its plain file left out.
pub fn rollouts_of(home: &Path, thread_id: &str) -> Vec<PathBuf> {
    walk_home(home, false)
        .0
        .into_iter()
        .filter(|f| f.thread_id.as_deref() == Some(thread_id))
        .map(|f| f.entry.path)
        .collect()
}

/// The rollout holding `thread_id`, searching the Codex homes `roots` in
/// order: in the first home that has one, the first plain rollout, else
/// the first compressed one (see [`rollouts_of`]).
pub fn find_rollout(roots: &[PathBuf], thread_id: &str) -> Option<PathBuf> {
    roots.iter().find_map(|root| {
        let found = rollouts_of(root, thread_id);
        let plain = found.iter().position(|p| !files::is_compressed(p));
        found.into_iter().nth(plain.unwrap_or(0))
    })
}

/// The Codex home a rollout lives in: the parent of its `sessions/` or
/// `archived_sessions/` folder.
pub fn home_of(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|a| {
            a.file_name()
                .is_some_and(|n| n == SESSIONS_DIR || n == ARCHIVED_DIR)
        })
        .and_then(Path::parent)
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    const OTHER: &str = "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b";

    #[test]
    fn names_parse_and_build_round_trip() {
        let plain = format!("rollout-2026-11-21T19-20-28-{ID}.jsonl");
        let n = RolloutName::parse(&plain).unwrap();
        assert_eq!(
            (n.stamp, n.thread_id, n.rollout_id, n.compressed),
            ("2026-11-21T19-20-28", ID, None, false)
        );
        assert_eq!(n.file_name(), plain);
        assert_eq!(n.session_path(), format!("sessions/2026/11/21/{plain}"));
        let segment = format!("rollout-2026-11-21T19-20-28-{ID}_{OTHER}.jsonl.zst");
        let s = RolloutName::parse(&segment).unwrap();
        assert_eq!(
            (s.thread_id, s.rollout_id, s.compressed),
            (ID, Some(OTHER), true)
        );
        assert_eq!(s.file_name(), segment);
        assert_eq!(
            s.session_path(),
            format!("sessions/2026/11/21/rollout-2026-11-21T19-20-28-{ID}_{OTHER}.jsonl.zst")
        );
        assert_eq!(
            RolloutName::parse("rollout-2026-01-01T00-00-00-t1.jsonl").map(|n| n.thread_id),
            Some("t1")
        );
        for bad in [
            "rollout-2026-11-21T19-20-28-.jsonl",
            "rollout-2026-11-21T19-20-28-x_.jsonl",
            "rollout-2026-11-21-19-20-28-x.jsonl",
            "rollout-2026-11-21T19-20-28x.jsonl",
            "rollout-short.jsonl",
            "rollout-2026-11-21T19-20-28-x.json",
            "rollout-2026-11-21T19-20-28-é.jsonl",
            "é",
        ] {
            assert_eq!(RolloutName::parse(bad), None, "{bad}");
        }
        let at: jiff::Zoned = "2026-01-02T03:04:05.678Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!(
            new_rollout_path("abc", &at),
            "sessions/2026/01/02/rollout-2026-01-02T03-04-05-abc.jsonl"
        );
    }

    #[test]
    fn a_threads_rollouts_include_revert_segments_and_prefer_plain_files() {
        let home = tempfile::tempdir().unwrap();
        let day = home.path().join("sessions/2026/11/21");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::create_dir_all(home.path().join("archived_sessions")).unwrap();
        let put = |rel: String| {
            let path = home.path().join(rel);
            std::fs::write(&path, b"{}\n").unwrap();
            path
        };
        let segment = put(format!(
            "sessions/2026/11/21/rollout-2026-11-21T19-20-29-{ID}_{OTHER}.jsonl"
        ));
        let zst = put(format!(
            "sessions/2026/11/21/rollout-2026-11-21T19-20-28-{ID}.jsonl.zst"
        ));
        assert_eq!(rollouts_of(home.path(), ID), [zst.clone(), segment.clone()]);
        let roots = [home.path().to_path_buf()];
        assert_eq!(find_rollout(&roots, ID), Some(segment.clone()));
        let plain = put(format!(
            "sessions/2026/11/21/rollout-2026-11-21T19-20-28-{ID}.jsonl"
        ));
        assert_eq!(rollouts_of(home.path(), ID), [plain.clone(), segment]);
        assert_eq!(find_rollout(&roots, ID), Some(plain.clone()));
        let archived = put(format!(
            "archived_sessions/rollout-2026-11-20T00-00-00-{OTHER}.jsonl.zst"
        ));
        assert_eq!(find_rollout(&roots, OTHER), Some(archived.clone()));
        assert_eq!(find_rollout(&roots, "nope"), None);
        assert_eq!(home_of(&plain).as_deref(), Some(home.path()));
        assert_eq!(home_of(&archived).as_deref(), Some(home.path()));
        assert_eq!(home_of(Path::new("/x/rollout.jsonl")), None);
    }
}
