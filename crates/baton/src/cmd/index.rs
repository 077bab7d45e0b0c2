//! `baton index`: bring the catalog up to date and say what changed.

use crate::context::Context;
use crate::{catalog, output};
use anyhow::Context as _;
use serde_json::json;

/// Options of `baton index`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `baton index`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let mut cat = catalog::open(ctx)?;
    let report = catalog::refresh(ctx, &mut cat)?;
    let sessions_total = cat
        .count_sessions()
        .context("cannot count the cataloged sessions")?;
    if args.json {
        return output::print_json(&json!({
            "files_seen": report.files_seen,
            "files_unchanged": report.files_unchanged,
            "files_new": report.files_new,
            "files_appended": report.files_appended,
            "files_reread": report.files_reread,
            "files_removed": report.files_removed,
            "bytes_read": report.bytes_read,
            "messages_added": report.messages_added,
            "sessions_updated": report.sessions_updated,
            "sessions_total": sessions_total,
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "issues": report.issues.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        }));
    }
    catalog::warn_issues(&report, usize::MAX);
    println!(
        "{} sessions; {} files ({} new, {} appended, {} re-read, {} removed, {} unchanged); {} read in {:.2}s{}",
        sessions_total,
        report.files_seen,
        report.files_new,
        report.files_appended,
        report.files_reread,
        report.files_removed,
        report.files_unchanged,
        human_bytes(report.bytes_read),
        report.elapsed.as_secs_f64(),
        if report.issues.is_empty() {
            String::new()
        } else {
            format!("; {} issue(s)", report.issues.len())
        }
    );
    Ok(())
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
