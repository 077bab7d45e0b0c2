//! Where agents and baton keep session files: the one owner of every naming
//! and placement rule.
//!
//! - [`codex`]: rollout names (revert segments included) and finding a
//!   thread's rollouts in a Codex home;
//! - [`claude`]: the project slug, transcripts and session folders;
//! - [`library`]: baton's library under `BATON_HOME` and sync stream names.

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
