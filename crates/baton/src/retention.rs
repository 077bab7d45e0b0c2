//! The retention guard: which sessions an agent will delete on its own, and
//! when. Claude Code deletes transcripts whose file was last modified more
//! than `cleanupPeriodDays` (its `settings.json`, default 30) ago when it
//! starts; Codex deletes nothing by itself.

use baton_native::Agent;
use baton_native::layout::home_of;
use baton_store::{Archive, SessionRow};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Claude Code's default `cleanupPeriodDays`.
pub const DEFAULT_CLEANUP_DAYS: u64 = 30;

/// How close to its deletion a session must be for `baton index` to warn.
pub const WARN_WITHIN_DAYS: i64 = 7;

/// File in `BATON_HOME` remembering the files already warned about.
const WARNED_FILE: &str = "retention-warned.json";

/// Claude Code's `cleanupPeriodDays` for the config dir `claude_dir` (its
/// `settings.json`; [`DEFAULT_CLEANUP_DAYS`] when unset or unreadable).
pub fn cleanup_period_days(claude_dir: &Path) -> u64 {
    std::fs::read(claude_dir.join("settings.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("cleanupPeriodDays")?.as_u64())
        .filter(|d| *d >= 1)
        .unwrap_or(DEFAULT_CLEANUP_DAYS)
}

/// A session file its agent will delete by itself.
#[derive(Debug, Clone, Serialize)]
pub struct AtRisk {
    /// Session id.
    pub id: String,
    /// Which agent will delete it.
    pub agent: Agent,
    /// The file.
    pub path: PathBuf,
    /// When the agent deletes it (at its first start after this time), RFC 3339.
    pub deletes_at: String,
    /// Whole days until then (negative: overdue, gone at the agent's next start).
    pub days_left: i64,
    /// baton's archive holds all of its current bytes.
    pub archived: bool,
}

/// Every Claude session file on disk with the time Claude Code will delete
/// it, soonest first.
pub fn at_risk(rows: &[SessionRow], archive: Option<&Archive>) -> Vec<AtRisk> {
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    for row in rows
        .iter()
        .filter(|r| r.agent == Agent::Claude && !r.archived)
    {
        for path in row.paths.iter().map(PathBuf::from) {
            let Some(dir) = home_of(Agent::Claude, &path) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let Some(modified) = meta
                .modified()
                .ok()
                .and_then(|m| jiff::Timestamp::try_from(m).ok())
            else {
                continue;
            };
            let period = jiff::SignedDuration::from_hours(24 * cleanup_period_days(&dir) as i64);
            let Ok(deletes_at) = modified.checked_add(period) else {
                continue;
            };
            let days_left = (deletes_at.as_second() - now.as_second()).div_euclid(86_400);
            let archived = archive
                .and_then(|a| a.entry(&path).ok().flatten())
                .is_some_and(|e| e.len == meta.len());
            out.push(AtRisk {
                id: row.id.clone(),
                agent: row.agent,
                path,
                deletes_at: deletes_at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                days_left,
                archived,
            });
        }
    }
    out.sort_by(|a, b| a.deletes_at.cmp(&b.deletes_at));
    out
}

/// The files of `risks` due within [`WARN_WITHIN_DAYS`] and not archived
/// that were never warned about; they are remembered in `baton_home`, so
/// each is warned about once.
pub fn new_warnings(baton_home: &Path, risks: &[AtRisk]) -> anyhow::Result<Vec<AtRisk>> {
    let file = baton_home.join(WARNED_FILE);
    let mut warned: BTreeSet<PathBuf> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let fresh: Vec<AtRisk> = risks
        .iter()
        .filter(|r| r.days_left < WARN_WITHIN_DAYS && !r.archived)
        .filter(|r| !warned.contains(&r.path))
        .cloned()
        .collect();
    if !fresh.is_empty() {
        warned.extend(fresh.iter().map(|r| r.path.clone()));
        baton_native::write::replace_file_mode(&file, &serde_json::to_vec(&warned)?, 0o600)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_period_defaults_to_30_days_and_reads_settings_json() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cleanup_period_days(dir.path()), DEFAULT_CLEANUP_DAYS);
        std::fs::write(
            dir.path().join("settings.json"),
            r#"{"cleanupPeriodDays": 0}"#,
        )
        .unwrap();
        assert_eq!(cleanup_period_days(dir.path()), DEFAULT_CLEANUP_DAYS);
        std::fs::write(
            dir.path().join("settings.json"),
            r#"{"cleanupPeriodDays": 3}"#,
        )
        .unwrap();
        assert_eq!(cleanup_period_days(dir.path()), 3);
    }
}
