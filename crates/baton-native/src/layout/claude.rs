//! The Claude Code config-dir layout: project folders, transcripts and a
//! session's own folder.
//!
//! A session is `projects/<slug of its cwd>/<session-id>.jsonl`; its own
//! folder beside it, `projects/<slug>/<session-id>/`, holds subagent
//! transcripts (`subagents/agent-<agentId>.jsonl`, with `.meta.json`) and
//! large tool outputs (`tool-results/<name>`). Older Claude versions kept
//! subagent transcripts as `projects/<slug>/agent-<agentId>.jsonl`.

use std::path::{Path, PathBuf};

/// Folder of a Claude config dir holding one folder per project.
pub const PROJECTS_DIR: &str = "projects";
/// Folder of a session folder holding subagent transcripts.
pub const SUBAGENTS_DIR: &str = "subagents";
/// Folder of a session folder holding large tool outputs.
pub const TOOL_RESULTS_DIR: &str = "tool-results";

/// The project folder name Claude Code uses for a working directory
/// (§2.1): every UTF-16 code unit outside `[A-Za-z0-9]` becomes `-`; a result
/// longer than 200 characters is cut to 200 and suffixed with `-` and the
/// base-36 absolute value of the 31-multiplier hash of the raw path.
pub fn project_slug(cwd: &str) -> String {
    let mut slug = String::with_capacity(cwd.len());
    let mut hash: i32 = 0;
    for unit in cwd.encode_utf16() {
        hash = hash
            .wrapping_shl(5)
            .wrapping_sub(hash)
            .wrapping_add(i32::from(unit));
        slug.push(match u8::try_from(unit) {
            Ok(b) if b.is_ascii_alphanumeric() => char::from(b),
            _ => '-',
        });
    }
    if slug.len() > 200 {
        slug.truncate(200);
        slug.push('-');
        slug.push_str(&base36(i64::from(hash).unsigned_abs()));
    }
    slug
}

/// Lowercase base-36 digits of `n`.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Where a session's transcript is kept, relative to the config dir:
/// `projects/<project_folder>/<session_id>.jsonl`.
pub fn transcript_path(project_folder: &str, session_id: &str) -> String {
    format!("{PROJECTS_DIR}/{project_folder}/{session_id}.jsonl")
}

/// The session id a transcript's file name carries (`<id>.jsonl`); `None`
/// for a subagent transcript or another file.
pub fn transcript_id(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".jsonl")
        .filter(|id| subagent_id(file_name).is_none() && !id.is_empty())
}

/// The agent id a subagent transcript's file name carries
/// (`agent-<agentId>.jsonl`).
pub fn subagent_id(file_name: &str) -> Option<&str> {
    file_name
        .strip_prefix("agent-")?
        .strip_suffix(".jsonl")
        .filter(|id| !id.is_empty())
}

/// The session folder beside a transcript: `projects/<slug>/<id>/` for
/// `projects/<slug>/<id>.jsonl`.
pub fn session_folder(transcript: &Path, session_id: &str) -> PathBuf {
    transcript.with_file_name(session_id)
}

/// The project folder a transcript is in (`projects/<folder>/<id>.jsonl`).
pub fn project_folder(transcript: &Path) -> Option<&str> {
    transcript.parent()?.file_name()?.to_str()
}

/// Every `projects/*/<session_id>.jsonl` under the config dir `claude_dir`,
/// sorted by path.
pub fn find_transcripts(claude_dir: &Path, session_id: &str) -> Vec<PathBuf> {
    let name = format!("{session_id}.jsonl");
    let mut found = Vec::new();
    if let Ok(projects) = std::fs::read_dir(claude_dir.join(PROJECTS_DIR)) {
        for project in projects.flatten() {
            let candidate = project.path().join(&name);
            if candidate.is_file() {
                found.push(candidate);
            }
        }
    }
    found.sort();
    found
}

/// The config dir a transcript lives in: the parent of its `projects/` folder.
pub fn home_of(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|a| a.file_name().is_some_and(|n| n == PROJECTS_DIR))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_short_and_long() {
        assert_eq!(project_slug("/home/dev/my_app.v2"), "-home-dev-my-app-v2");
        assert_eq!(
            project_slug("/srv/corpus/work-pub/beta"),
            "-srv-corpus-work-pub-beta"
        );
        assert_eq!(project_slug("/a/ünï/😀"), "-a--n----");
        let mut long = String::from("/home/dev/src/");
        for n in 0..10 {
            long.push_str(&format!("deeply_nested_module_{n:02}/"));
        }
        long.pop();
        assert_eq!(long.chars().count(), 253, "{long}");
        let slug = project_slug(&long);
        assert_eq!(slug.len(), 207);
        assert!(slug.ends_with("-c2e73e"), "{slug}");
        assert_eq!(&slug[..200], &project_slug(&long[..200])[..200]);
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(2_147_483_648), "zik0zk");
    }

    #[test]
    fn transcript_and_subagent_names() {
        assert_eq!(transcript_path("-w", "s1"), "projects/-w/s1.jsonl");
        assert_eq!(transcript_id("s1.jsonl"), Some("s1"));
        assert_eq!(transcript_id("agent-a1.jsonl"), None);
        assert_eq!(transcript_id("s1.meta.json"), None);
        assert_eq!(subagent_id("agent-a1.jsonl"), Some("a1"));
        assert_eq!(subagent_id("agent-a1.meta.json"), None);
        let t = Path::new("/h/.claude/projects/-w/s1.jsonl");
        assert_eq!(
            session_folder(t, "s1"),
            Path::new("/h/.claude/projects/-w/s1")
        );
        assert_eq!(project_folder(t), Some("-w"));
        assert_eq!(home_of(t).as_deref(), Some(Path::new("/h/.claude")));
        let sub = Path::new("/h/.claude/projects/-w/s1/subagents/agent-a.jsonl");
        assert_eq!(home_of(sub).as_deref(), Some(Path::new("/h/.claude")));
    }
}
