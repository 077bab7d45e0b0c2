//! `baton status`: how much of this machine's sessions baton's archive
//! covers, how many bytes each agent home holds, and the sessions their
//! agent will delete soonest (the retention guard).

use crate::context::Context;
use crate::output::human_bytes;
use crate::retention::{self, AtRisk};
use crate::{catalog, output};
use anyhow::Result;
use baton_native::Agent;
use baton_native::layout::home_of;
use baton_store::Archive;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Options of `baton status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many of the soonest-deleted sessions to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print `{"archive":{…},"homes":[…],"at_risk":[…]}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Archive coverage of the session files on disk.
#[derive(Debug, Default, Serialize)]
struct Coverage {
    /// Archiving is on (`archive` in `$BATON_HOME/config.toml`).
    enabled: bool,
    /// Session files on disk in the agent homes.
    files_on_disk: u64,
    /// Of those, files whose every byte is archived.
    files_archived: u64,
    /// Their bytes.
    bytes_on_disk: u64,
    /// Bytes of them the archive holds.
    bytes_archived: u64,
    /// Sessions whose files are gone from disk and served from the archive.
    sessions_archived_only: u64,
    /// Compressed size of the whole archive.
    stored_bytes: u64,
}

/// One agent home.
#[derive(Debug, Serialize)]
struct Home {
    agent: Agent,
    path: PathBuf,
    sessions: u64,
    bytes: u64,
    /// Claude Code's `cleanupPeriodDays` there (`null` for Codex).
    cleanup_period_days: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Status {
    archive: Coverage,
    homes: Vec<Home>,
    at_risk: Vec<AtRisk>,
}

/// Run `baton status`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let cat = catalog::open_fresh(ctx)?;
    let rows = crate::remote::select_rows(&cat, &[])?;
    let archive = Archive::open_existing(&ctx.baton_home)?;
    let library = baton_native::layout::library::root(&ctx.baton_home);
    let mut coverage = Coverage {
        enabled: crate::catalog::archive_enabled(ctx)?,
        ..Coverage::default()
    };
    let mut homes: BTreeMap<PathBuf, (Agent, u64, u64)> = BTreeMap::new();
    for row in &rows {
        if row.archived {
            coverage.sessions_archived_only += 1;
            continue;
        }
        let mut counted = false;
        for path in row.paths.iter().map(PathBuf::from) {
            let (Some(home), Ok(meta)) = (home_of(row.agent, &path), std::fs::metadata(&path))
            else {
                continue;
            };
            if home.starts_with(&library) {
                continue;
            }
            let archived_len = archive
                .as_ref()
                .and_then(|a| a.entry(&path).ok().flatten())
                .map_or(0, |e| e.len.min(meta.len()));
            coverage.files_on_disk += 1;
            coverage.bytes_on_disk += meta.len();
            coverage.bytes_archived += archived_len;
            coverage.files_archived += u64::from(archived_len == meta.len());
            let entry = homes.entry(home).or_insert((row.agent, 0, 0));
            entry.1 += u64::from(!counted);
            entry.2 += meta.len();
            counted = true;
        }
    }
    if let Some(a) = &archive {
        coverage.stored_bytes = a.totals()?.stored;
    }
    let homes: Vec<Home> = homes
        .into_iter()
        .map(|(path, (agent, sessions, bytes))| Home {
            cleanup_period_days: (agent == Agent::Claude)
                .then(|| retention::cleanup_period_days(&path)),
            agent,
            path,
            sessions,
            bytes,
        })
        .collect();
    let mut at_risk = retention::at_risk(&rows, archive.as_ref());
    at_risk.truncate(args.limit);
    let status = Status {
        archive: coverage,
        homes,
        at_risk,
    };
    if args.json {
        return output::print_json(&status);
    }
    print_human(&status);
    Ok(())
}

fn print_human(s: &Status) {
    let c = &s.archive;
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            100.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    println!(
        "archive: {} ({}/{} files, {:.0}% of {} on disk archived; {} stored; {} session(s) only in the archive)",
        if c.enabled { "on" } else { "off" },
        c.files_archived,
        c.files_on_disk,
        percent(c.bytes_archived, c.bytes_on_disk),
        human_bytes(c.bytes_on_disk),
        human_bytes(c.stored_bytes),
        c.sessions_archived_only
    );
    for h in &s.homes {
        let cleanup = h
            .cleanup_period_days
            .map(|d| format!(", cleanupPeriodDays {d}"))
            .unwrap_or_default();
        println!(
            "{:<6} {}: {} session(s), {}{cleanup}",
            h.agent.as_str(),
            h.path.display(),
            h.sessions,
            human_bytes(h.bytes)
        );
    }
    if s.at_risk.is_empty() {
        println!("no session is due for deletion by its agent");
        return;
    }
    println!("deleted soonest by their agent:");
    for r in &s.at_risk {
        let when = if r.days_left <= 0 {
            "at its next start".to_owned()
        } else {
            format!("in {} day(s)", r.days_left)
        };
        let safe = if r.archived {
            "archived"
        } else {
            "NOT ARCHIVED"
        };
        println!(
            "  {} {} {when} ({safe}) {}",
            r.agent.as_str(),
            r.id,
            r.path.display()
        );
    }
}
