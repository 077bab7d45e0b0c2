//! Where agents and baton keep session files: the one owner of every naming
//! and placement rule.
//!
//! - [`codex`]: rollout names (revert segments included) and finding a
//!   thread's rollouts in a Codex home;
//! - [`claude`]: the project slug, transcripts and session folders;
//! - [`library`]: baton's library under `BATON_HOME` and sync stream names;
//! - here: which session ids may name a file ([`check_session_id`]) and the
//!   agent home a native file is in ([`home_of`]).

pub mod claude;
pub mod codex;
pub mod library;

use crate::model::Agent;
use std::path::{Path, PathBuf};

/// The agent home a native file of `agent` lives in: the parent of its
/// `sessions/` or `archived_sessions/` folder (Codex), of its `projects/`
/// folder (Claude).
pub fn home_of(agent: Agent, path: &Path) -> Option<PathBuf> {
    match agent {
        Agent::Codex => codex::home_of(path),
        Agent::Claude => claude::home_of(path),
    }
}

/// Longest session id baton accepts.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Check a session id before it names a file or goes into a URL: 1 to
/// [`MAX_SESSION_ID_LEN`] ASCII letters, digits, `-`, `_` and `.`, not
/// starting with `.` (UUIDs and agent ids qualify). The error says what is
/// wrong.
pub fn check_session_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_SESSION_ID_LEN {
        return Err(format!(
            "session id must be 1 to {MAX_SESSION_ID_LEN} characters"
        ));
    }
    let name_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if id.starts_with('.') || !id.bytes().all(name_char) {
        return Err(format!(
            "session id `{}` may only use letters, digits, `-`, `_` and `.`, and must not start with `.`",
            id.escape_debug()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_that_may_name_a_file() {
        for ok in ["01a1ff8d-8c3d-7551-b270-db431e8a8997", "agent_a.1", "x"] {
            assert_eq!(check_session_id(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(MAX_SESSION_ID_LEN + 1);
        for bad in ["", ".hidden", "..", "a/b", "a\\b", "é", long.as_str()] {
            assert!(check_session_id(bad).is_err(), "{bad}");
        }
        assert_eq!(
            home_of(
                Agent::Codex,
                Path::new("/h/.codex/archived_sessions/r.jsonl")
            )
            .as_deref(),
            Some(Path::new("/h/.codex"))
        );
    }
}
