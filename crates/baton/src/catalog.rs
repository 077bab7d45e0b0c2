//! Opening and refreshing the catalog for commands that read sessions.

use crate::context::Context;
use crate::output;
use anyhow::{Context as _, Result};
use baton_native::Agent;
use baton_native::layout::library;
use baton_store::{Catalog, Progress, ProgressPhase, RefreshReport, Roots};
use indicatif::{ProgressBar, ProgressStyle};

/// The roots a refresh reads: the agent homes of `ctx` plus baton's library
/// (where native files may carry a `<file>.baton.json` sidecar).
pub fn roots(ctx: &Context) -> Roots {
    let mut roots = Roots {
        codex_homes: ctx.codex_homes.clone(),
        claude_dirs: ctx.claude_dirs.clone(),
        library: vec![library::root(&ctx.baton_home)],
    };
    roots
        .codex_homes
        .push(library::agent_home(&ctx.baton_home, Agent::Codex));
    roots
        .claude_dirs
        .push(library::agent_home(&ctx.baton_home, Agent::Claude));
    roots
}

/// Open the catalog under `$BATON_HOME` without refreshing it.
pub fn open(ctx: &Context) -> Result<Catalog> {
    Catalog::open(&ctx.baton_home).with_context(|| {
        format!(
            "cannot open the catalog in {} (set BATON_HOME to a writable directory)",
            ctx.baton_home.display()
        )
    })
}

/// Refresh `catalog` from the roots of `ctx`, drawing a progress bar when
/// stderr is a terminal and the refresh has real work to do.
pub fn refresh(ctx: &Context, catalog: &mut Catalog) -> Result<RefreshReport> {
    let bar = output::progress_enabled().then(|| {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} indexing {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let on_progress = |p: Progress| {
        let Some(bar) = &bar else { return };
        if p.phase == ProgressPhase::Ingest {
            if bar.is_hidden() && p.files_total > 20 {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.set_length(p.bytes_total.max(p.bytes_done));
            bar.set_position(p.bytes_done);
            bar.set_message(format!("{}/{} files", p.files_done, p.files_total));
        }
    };
    let report = catalog.refresh(&roots(ctx), &on_progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    report.context("cannot refresh the catalog")
}

/// Print refresh issues as warnings on stderr (at most `max`, then a count).
pub fn warn_issues(report: &RefreshReport, max: usize) {
    for issue in report.issues.iter().take(max) {
        eprintln!("warning: {issue}");
    }
    if report.issues.len() > max {
        eprintln!(
            "warning: ... and {} more skipped line(s) or file(s)",
            report.issues.len() - max
        );
    }
}

/// Open and refresh the catalog, printing what was skipped as warnings.
/// Issues are reported once: the next refresh does not re-read those bytes.
pub fn open_fresh(ctx: &Context) -> Result<Catalog> {
    let mut catalog = open(ctx)?;
    let report = refresh(ctx, &mut catalog)?;
    warn_issues(&report, 20);
    Ok(catalog)
}

/// Parse `codex`/`claude` for `--agent`.
pub fn parse_agent(s: &str) -> Result<baton_native::Agent, String> {
    s.parse()
}
