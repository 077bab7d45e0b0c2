//! Finding native session files under agent homes.

use crate::model::Agent;
use std::path::{Path, PathBuf};

/// One native file found under an agent home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFile {
    /// Which agent wrote it.
    pub agent: Agent,
    /// Absolute path.
    pub path: PathBuf,
    /// Session id taken from the file name (Codex UUID, Claude `<id>.jsonl`).
    pub id_hint: Option<String>,
    /// Claude subagent transcript: the id of the session it belongs to.
    pub sidechain_of: Option<String>,
    /// zstd-compressed (`.jsonl.zst`).
    pub compressed: bool,
}

/// Every Codex rollout under `home` (`sessions/**`, `archived_sessions/`).
pub fn discover_codex(home: &Path) -> (Vec<NativeFile>, Vec<String>) {
    let _ = home;
    unimplemented!()
}

/// Every Claude transcript under `dir/projects/`, subagent files included.
pub fn discover_claude(dir: &Path) -> (Vec<NativeFile>, Vec<String>) {
    let _ = dir;
    unimplemented!()
}
