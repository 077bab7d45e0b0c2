//! `baton index`: bring the catalog up to date and say what changed.

use crate::context::Context;
use crate::output::human_bytes;
use crate::{catalog, output};
use anyhow::Context as _;
use serde_json::json;

/// Options of `baton index`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not copy new session bytes into baton's archive this time (to turn
    /// archiving off for good, put `archive = false` in `$BATON_HOME/config.toml`).
    #[arg(long)]
    pub no_archive: bool,
}

/// Run `baton index`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let mut cat = catalog::open(ctx)?;
    let report = catalog::refresh(ctx, &mut cat)?;
    let archived = if !args.no_archive && catalog::archive_enabled(ctx)? {
        Some(cat.archive().context("cannot update the archive")?)
    } else {
        None
    };
    let sessions_total = cat
        .count_sessions()
        .context("cannot count the cataloged sessions")?;
    let rows = crate::remote::select_rows(&cat, &[])?;
    let archive = baton_store::Archive::open_existing(&ctx.baton_home)?;
    let risks = crate::retention::at_risk(&rows, archive.as_ref());
    let warnings = crate::retention::new_warnings(&ctx.baton_home, &risks)?;
    if args.json {
        return output::print_json(&json!({
            "files_seen": report.files_seen,
            "files_unchanged": report.files_unchanged,
            "files_new": report.files_new,
            "files_appended": report.files_appended,
            "files_reread": report.files_reread,
            "files_removed": report.files_removed,
            "files_archived": report.files_archived,
            "archive": archived.as_ref().map(|a| json!({
                "files": a.files,
                "bytes": a.bytes,
                "stored_bytes": a.stored,
                "issues": a.issues.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            })),
            "bytes_read": report.bytes_read,
            "messages_added": report.messages_added,
            "sessions_updated": report.sessions_updated,
            "sessions_total": sessions_total,
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "issues": report.issues.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            "retention_warnings": warnings,
        }));
    }
    catalog::warn_issues(&report, usize::MAX);
    for issue in archived.iter().flat_map(|a| &a.issues) {
        eprintln!("warning: {issue}");
    }
    for w in &warnings {
        eprintln!(
            "warning: Claude Code will delete {} (session {}) {}; it is not archived: run `baton index` with archiving on (not --no-archive, no `archive = false`)",
            w.path.display(),
            w.id,
            if w.days_left <= 0 {
                "at its next start".to_owned()
            } else {
                format!("in {} day(s)", w.days_left)
            }
        );
    }
    println!(
        "{} sessions; {} files ({} new, {} appended, {} re-read, {} removed, {} gone but archived, {} unchanged); {} read in {:.2}s{}",
        sessions_total,
        report.files_seen,
        report.files_new,
        report.files_appended,
        report.files_reread,
        report.files_removed,
        report.files_archived,
        report.files_unchanged,
        human_bytes(report.bytes_read),
        report.elapsed.as_secs_f64(),
        if report.issues.is_empty() {
            String::new()
        } else {
            format!("; {} issue(s)", report.issues.len())
        }
    );
    match &archived {
        Some(a) if a.files > 0 => println!(
            "archived {} new bytes of {} files ({} compressed)",
            human_bytes(a.bytes),
            a.files,
            human_bytes(a.stored)
        ),
        Some(_) => {}
        None => println!("archive skipped (--no-archive or `archive = false` in config.toml)"),
    }
    Ok(())
}
