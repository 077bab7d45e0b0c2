//! `baton prune`: free disk space with a safety net. Deletes old session
//! files from the agent homes only when baton's archive holds a verified,
//! byte-identical copy (the one place baton removes a file an agent wrote,
//! see [`baton_native::write::remove_archived_agent_file`]); with
//! `--archive`, deletes old archived copies of files already gone from disk,
//! and only with `--yes`. A session that is the parent of a fork that stays
//! is never pruned: its file is kept (the fork needs it).

use crate::context::Context;
use crate::{catalog, output};
use anyhow::{Result, bail};
use baton_native::Agent;
use baton_native::layout::codex::RolloutName;
use baton_store::{Archive, Catalog, SessionRow};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Options of `baton prune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only sessions (or, with --archive, archived files) not updated for
    /// this long (`90d`, `12w`, `2y`) or since a date (`2026-01-31`).
    #[arg(long, value_name = "DURATION|DATE", value_parser = cutoff_arg)]
    pub older_than: String,
    /// Only this agent's sessions.
    #[arg(long, value_parser = catalog::parse_agent)]
    pub agent: Option<Agent>,
    /// Say what would be deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete from baton's archive (copies of files already gone from disk)
    /// instead of from the agent homes. Those sessions are then lost for good.
    #[arg(long)]
    pub archive: bool,
    /// Confirm deleting from the archive (`--archive`).
    #[arg(long)]
    pub yes: bool,
    /// Print `{"dry_run","archive","deleted":[…],"kept":[…],"freed_bytes"}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--older-than` for clap: the UTC time before which things are old. Takes
/// what `list --since` takes, plus years (`2y` = 730 days).
fn cutoff_arg(text: &str) -> Result<String, String> {
    let t = text.trim();
    let days = t
        .strip_suffix('y')
        .and_then(|n| n.parse::<u64>().ok())
        .map(|years| format!("{}d", years.saturating_mul(365)));
    crate::args::parse_since(days.as_deref().unwrap_or(t)).map_err(|e| e.to_string())
}

/// A file deleted (or, dry, to be deleted).
#[derive(Debug, Serialize)]
struct Deleted {
    id: Option<String>,
    agent: Agent,
    path: PathBuf,
    bytes: u64,
}

/// A file that was left alone, and why.
#[derive(Debug, Serialize)]
struct Kept {
    id: Option<String>,
    agent: Agent,
    path: PathBuf,
    reason: String,
}

/// What `baton prune --json` prints.
#[derive(Debug, Serialize)]
struct Report {
    dry_run: bool,
    archive: bool,
    deleted: Vec<Deleted>,
    kept: Vec<Kept>,
    freed_bytes: u64,
}

/// Run `baton prune`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let mut cat = catalog::open_fresh(ctx)?;
    let rows = crate::remote::select_rows(&cat, &[])?;
    let mut report = if args.archive {
        prune_archive(ctx, &mut cat, &rows, &args)?
    } else {
        prune_homes(ctx, &rows, &args)?
    };
    report.freed_bytes = report.deleted.iter().map(|d| d.bytes).sum();
    if !args.dry_run && !report.deleted.is_empty() {
        // The catalog marks the deleted files archived (or forgets them).
        catalog::refresh(ctx, &mut cat)?;
    }
    let unconfirmed = args.archive && !args.yes && !args.dry_run && !report.deleted.is_empty();
    if args.json {
        output::print_json(&report)?;
    } else {
        print_human(&report, unconfirmed);
    }
    if unconfirmed {
        bail!(
            "nothing deleted: these archived copies are the last ones (their files are gone from disk); pass --yes to delete them"
        );
    }
    Ok(())
}

fn print_human(report: &Report, unconfirmed: bool) {
    let would = report.dry_run || unconfirmed;
    let verb = if would { "would delete" } else { "deleted" };
    for d in &report.deleted {
        println!(
            "{verb} {} ({})",
            d.path.display(),
            crate::output::human_bytes(d.bytes)
        );
    }
    for k in &report.kept {
        println!("kept {}: {}", k.path.display(), k.reason);
    }
    let where_ = if report.archive {
        "the archive"
    } else {
        "the agent homes"
    };
    println!(
        "{} {} in {} file(s) from {where_}; {} file(s) kept",
        if would { "would free" } else { "freed" },
        crate::output::human_bytes(report.freed_bytes),
        report.deleted.len(),
        report.kept.len()
    );
}

/// Sessions of `rows` forked from `id` that are not in `leaving`.
fn kept_forks<'a>(rows: &'a [SessionRow], id: &str, leaving: &BTreeSet<&str>) -> Vec<&'a str> {
    rows.iter()
        .filter(|r| r.forked_from.as_deref() == Some(id) && !leaving.contains(r.id.as_str()))
        .map(|r| r.id.as_str())
        .collect()
}

fn is_library(ctx: &Context, path: &Path) -> bool {
    path.starts_with(baton_native::layout::library::root(&ctx.baton_home))
}

/// Delete old session files from the agent homes, each only after its
/// archived copy verified byte for byte.
fn prune_homes(ctx: &Context, rows: &[SessionRow], args: &Args) -> Result<Report> {
    let archive = Archive::open_existing(&ctx.baton_home)?;
    let old: Vec<&SessionRow> = rows
        .iter()
        .filter(|r| !r.archived && r.updated_at < args.older_than)
        .filter(|r| args.agent.is_none_or(|a| a == r.agent))
        .collect();
    let leaving: BTreeSet<&str> = old.iter().map(|r| r.id.as_str()).collect();
    let mut report = Report {
        dry_run: args.dry_run,
        archive: false,
        deleted: Vec::new(),
        kept: Vec::new(),
        freed_bytes: 0,
    };
    for row in old {
        let forks = kept_forks(rows, &row.id, &leaving);
        for path in row.paths.iter().map(PathBuf::from) {
            if is_library(ctx, &path) || !path.is_file() {
                continue;
            }
            let kept = |reason: String| Kept {
                id: Some(row.id.clone()),
                agent: row.agent,
                path: path.clone(),
                reason,
            };
            if !forks.is_empty() {
                report.kept.push(kept(format!(
                    "parent of kept fork {}, which needs this file (skipped)",
                    forks.join(", ")
                )));
                continue;
            }
            let archived = match &archive {
                Some(a) => a.entry(&path)?.map(|entry| (a, entry.len)),
                None => None,
            };
            let Some((archive, bytes)) = archived else {
                report.kept.push(kept(
                    "not archived; run `baton index` first (archiving must be on)".into(),
                ));
                continue;
            };
            let deleted = if args.dry_run {
                archive.verifies(&path)?
            } else {
                match archive.reader_ref(&path, 0)? {
                    Some(mut copy) => delete_verified(row, &path, &mut copy)?,
                    None => false,
                }
            };
            if deleted {
                report.deleted.push(Deleted {
                    id: Some(row.id.clone()),
                    agent: row.agent,
                    path,
                    bytes,
                });
            } else {
                report.kept.push(kept(
                    "differs from its archived copy (the agent wrote more); run `baton index` and prune again".into(),
                ));
            }
        }
    }
    Ok(report)
}

/// Delete one agent file after verifying it against `archived` (its copy,
/// streamed); a Codex rollout under Codex's writer lock, so Codex cannot
/// append meanwhile.
fn delete_verified(row: &SessionRow, path: &Path, archived: &mut dyn Read) -> Result<bool> {
    let _lock = match (row.agent, baton_native::layout::codex::home_of(path)) {
        (Agent::Codex, Some(home)) => {
            let thread =
                RolloutName::of_path(path).map_or(row.id.clone(), |n| n.thread_id.to_owned());
            Some(baton_native::write::CodexWriterLock::acquire(
                &home, &thread,
            )?)
        }
        _ => None,
    };
    Ok(baton_native::write::remove_archived_agent_file(
        path, archived,
    )?)
}

/// Delete old archived copies of files gone from disk (only with `--yes`).
fn prune_archive(
    ctx: &Context,
    cat: &mut Catalog,
    rows: &[SessionRow],
    args: &Args,
) -> Result<Report> {
    let mut report = Report {
        dry_run: args.dry_run,
        archive: true,
        deleted: Vec::new(),
        kept: Vec::new(),
        freed_bytes: 0,
    };
    let Some(mut archive) = Archive::open_existing(&ctx.baton_home)? else {
        return Ok(report);
    };
    let cutoff: jiff::Timestamp = args.older_than.parse()?;
    let cutoff_ns = cutoff.as_nanosecond() as i64;
    let old: Vec<_> = archive
        .files()?
        .into_iter()
        .filter(|f| f.mtime_ns < cutoff_ns && !f.path.exists())
        .filter(|f| args.agent.is_none_or(|a| a == f.agent))
        .collect();
    let session_of = |path: &Path| {
        rows.iter()
            .find(|r| r.paths.iter().any(|p| Path::new(p) == path))
    };
    let leaving: BTreeSet<&str> = old
        .iter()
        .filter_map(|f| session_of(&f.path))
        .map(|r| r.id.as_str())
        .collect();
    let delete = !args.dry_run && args.yes;
    let mut forgotten = Vec::new();
    for f in old {
        let row = session_of(&f.path);
        let forks = row.map_or_else(Vec::new, |r| kept_forks(rows, &r.id, &leaving));
        if !forks.is_empty() {
            report.kept.push(Kept {
                id: row.map(|r| r.id.clone()),
                agent: f.agent,
                path: f.path,
                reason: format!(
                    "parent of kept fork {}, which needs these bytes (kept in the archive)",
                    forks.join(", ")
                ),
            });
            continue;
        }
        if delete {
            archive.remove(&f.path)?;
            forgotten.push(f.path.clone());
        }
        report.deleted.push(Deleted {
            id: row.map(|r| r.id.clone()),
            agent: f.agent,
            bytes: f.len,
            path: f.path,
        });
    }
    if !forgotten.is_empty() {
        cat.forget_archived(&forgotten)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_than_takes_years_durations_and_dates() {
        let two_years = cutoff_arg("2y").unwrap();
        let days = cutoff_arg("730d").unwrap();
        assert_eq!(two_years[..10], days[..10]);
        assert_eq!(
            cutoff_arg("2026-01-31").unwrap(),
            "2026-01-31T00:00:00.000Z"
        );
        assert!(cutoff_arg("soon").is_err());
    }
}
