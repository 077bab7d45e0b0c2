//! Native-byte helpers of the sync engine: reading an agent file (plain or
//! `.zst`) and the session id written inside its bytes.

use crate::error::{ClientError, io_err};
use std::path::Path;

/// Read a native file (decompressing `.zst`); a missing file reads as `None`.
pub fn read_native(path: &Path) -> Result<Option<Vec<u8>>, ClientError> {
    let compressed = path.extension().is_some_and(|e| e == "zst");
    match baton_native::discover::read_native_path(path, compressed, 0) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The session id written inside native bytes: Codex `session_meta.payload.id`
/// of the first line, Claude the first record's `sessionId` (a subagent
/// transcript carries its parent's).
pub fn native_session_id(agent: baton_native::Agent, bytes: &[u8]) -> Option<String> {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .take(50)
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok());
    match agent {
        baton_native::Agent::Codex => {
            let first = lines.next()?;
            (first.get("type")?.as_str()? == "session_meta")
                .then(|| first.pointer("/payload/id")?.as_str().map(str::to_owned))
                .flatten()
        }
        baton_native::Agent::Claude => {
            lines.find_map(|v| v.get("sessionId")?.as_str().map(str::to_owned))
        }
    }
}
