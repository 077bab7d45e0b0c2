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
