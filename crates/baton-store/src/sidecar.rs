//! baton-owned sidecars: lineage that a native file cannot carry itself.
//!
//! A file in baton's library may have `<file>.baton.json` next to it, e.g. the
//! library copy of a diverged session pulled from sync, whose Codex bytes
//! cannot gain a `forked_from_id` without changing line lengths:
//! `{"forked_from": "<id>", "relation": "diverged"}`. The catalog reads it
//! during ingest (also when only the sidecar changed). Its `forked_from` is
//! the file's parent, before any parent named in the native bytes (a copy of
//! a fork still names the fork's parent) or inferred from shared records.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What is appended to a native file's name to name its sidecar.
pub const SIDECAR_SUFFIX: &str = ".baton.json";

/// Contents of a `<file>.baton.json` sidecar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    /// The session this one came from.
    #[serde(default)]
    pub forked_from: Option<String>,
    /// How it came from it (`"diverged"` for a diverged copy pulled from sync).
    #[serde(default)]
    pub relation: Option<String>,
}

/// Path of the sidecar of the native file `native` (`<native>.baton.json`).
pub fn sidecar_path(native: &Path) -> PathBuf {
    let mut name = native.as_os_str().to_owned();
    name.push(SIDECAR_SUFFIX);
    PathBuf::from(name)
}

/// Read and decode a sidecar; the error says what is wrong with it.
pub(crate) fn read(path: &Path) -> Result<Sidecar, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "not a baton sidecar ({e}); expected {{\"forked_from\": \"<id>\", \"relation\": \"diverged\"}} (lineage from it is ignored)"
        )
    })
}
