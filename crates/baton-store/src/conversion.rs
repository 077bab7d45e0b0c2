//! Conversion sidecars: the lineage of a session `baton convert` wrote for
//! the other agent, which its native bytes cannot carry (the target format
//! has no field naming a session of another agent).
//!
//! One JSON file per converted session, `BATON_HOME/conversions/<agent>-<id>.json`
//! (created once, never rewritten): `{"agent", "id", "converted_from":
//! {"agent", "id"}, "source_sha256", "model", "git_branch"}`. The catalog
//! reads them on every refresh (a stat of the folder when nothing changed),
//! so `converted_from` survives a rebuilt catalog.

use crate::error::{Error, Result};
use crate::ingest::Issue;
use baton_native::Agent;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Folder of the conversion sidecars inside `BATON_HOME`.
pub const CONVERSIONS_DIR: &str = "conversions";

/// A session named by agent and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionRef {
    /// Which agent wrote it.
    pub agent: Agent,
    /// Its id.
    pub id: String,
}

/// What `baton convert` records about a session it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// Agent of the converted session.
    pub agent: Agent,
    /// Id of the converted session.
    pub id: String,
    /// The session it was converted from.
    pub converted_from: SessionRef,
    /// SHA-256 (hex) of the source's native bytes (its lineage files in
    /// order) at conversion time: a conversion of the same bytes is reused.
    pub source_sha256: String,
    /// The source's model (model family metadata the target cannot hold).
    #[serde(default)]
    pub model: Option<String>,
    /// The source's git branch.
    #[serde(default)]
    pub git_branch: Option<String>,
}

/// Path of the sidecar of the converted session `agent`/`id`.
pub fn conversion_path(baton_home: &Path, agent: Agent, id: &str) -> PathBuf {
    baton_home
        .join(CONVERSIONS_DIR)
        .join(format!("{}-{id}.json", agent.as_str()))
}

/// Create the sidecar of `conversion` (a new file; an existing one for the
/// same session is an error, since ids are fresh). Returns its path.
pub fn record_conversion(baton_home: &Path, conversion: &Conversion) -> Result<PathBuf> {
    let path = conversion_path(baton_home, conversion.agent, &conversion.id);
    let mut bytes = serde_json::to_vec_pretty(conversion).unwrap_or_default();
    bytes.push(b'\n');
    baton_native::write::write_new_file(&path, &bytes).map_err(|e| Error::Io {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(path)
}

/// Every conversion sidecar under `baton_home`, sorted by file name, and
/// the files that could not be read (skipped, reported as issues).
pub fn read_conversions(baton_home: &Path) -> (Vec<Conversion>, Vec<Issue>) {
    let dir = baton_home.join(CONVERSIONS_DIR);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(_) => return (Vec::new(), Vec::new()),
    };
    paths.sort();
    let mut found = Vec::new();
    let mut issues = Vec::new();
    for path in paths {
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Conversion>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(c) if path == conversion_path(baton_home, c.agent, &c.id) => found.push(c),
            Ok(c) => issues.push(issue(
                &path,
                format!(
                    "names session {}:{} but is not that session's sidecar ({}); its lineage is ignored",
                    c.agent,
                    c.id,
                    conversion_path(baton_home, c.agent, &c.id).display()
                ),
            )),
            Err(e) => issues.push(issue(
                &path,
                format!(
                    "not a baton conversion sidecar ({e}); its lineage is ignored: delete it, or restore it from a backup"
                ),
            )),
        }
    }
    (found, issues)
}

fn issue(path: &Path, message: String) -> Issue {
    Issue {
        path: path.to_string_lossy().into_owned(),
        line: None,
        message,
    }
}

/// Change-detection fingerprint of the conversions folder (`None`: absent).
pub(crate) fn folder_fingerprint(baton_home: &Path) -> Option<String> {
    let meta = std::fs::metadata(baton_home.join(CONVERSIONS_DIR)).ok()?;
    let s = crate::ingest::Stat::of(&meta);
    Some(format!("{}:{}:{}", s.size, s.mtime_ns, s.ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_are_written_once_and_read_back() {
        let home = tempfile::tempdir().unwrap();
        let c = Conversion {
            agent: Agent::Codex,
            id: "019a0000-0000-7000-8000-000000000001".into(),
            converted_from: SessionRef {
                agent: Agent::Claude,
                id: "c1".into(),
            },
            source_sha256: "ab".into(),
            model: Some("claude-x".into()),
            git_branch: None,
        };
        assert_eq!(folder_fingerprint(home.path()), None);
        let path = record_conversion(home.path(), &c).unwrap();
        assert!(path.ends_with("conversions/codex-019a0000-0000-7000-8000-000000000001.json"));
        assert!(
            record_conversion(home.path(), &c).is_ok(),
            "same bytes: unchanged"
        );
        let mut other = c.clone();
        other.source_sha256 = "cd".into();
        assert!(record_conversion(home.path(), &other).is_err());
        std::fs::write(home.path().join("conversions/junk.json"), "{").unwrap();
        std::fs::write(
            home.path().join("conversions/claude-x.json"),
            serde_json::to_vec(&c).unwrap(),
        )
        .unwrap();
        let (found, issues) = read_conversions(home.path());
        assert_eq!(found, [c]);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(folder_fingerprint(home.path()).is_some());
    }
}
