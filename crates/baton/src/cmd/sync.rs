//! `baton sync`: push what changed here, then pull what changed on the
//! server.

use crate::context::Context;
use crate::output;
use crate::remote::{
    CryptoArgs, Failure, Remote, connect, finish, print_pulls, print_pushes, pull_infos, push_rows,
    select_rows,
};
use anyhow::Result;
use baton_protocol::SessionInfo;
use baton_sync::local::{changed_since, cursor_after};
use baton_sync::pull::PullReport;
use baton_sync::push::{PushReport, PushStatus};
use baton_sync::state::SyncState;
use serde::Serialize;

/// Options of `baton sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    crypto: CryptoArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
    /// Send secrets as they are instead of as placeholders (after a warning
    /// that counts them). By default every secret the rules find leaves as
    /// `‹secret:RULE:…›` and its value stays in this machine's vault.
    #[arg(long)]
    no_redact: bool,
}

/// Every server session changed since the last sync, oldest change first,
/// and the cursor that follows them. The cursor is not saved here: see
/// [`save_cursor`].
fn changed_on_server(ctx: &Context, remote: &Remote) -> Result<(Vec<SessionInfo>, u64)> {
    let state = SyncState::load(&ctx.baton_home, &remote.config.url)?;
    Ok(remote
        .rt
        .block_on(changed_since(&remote.client, state.changes_since))?)
}

/// After the pulls, advance the changes cursor to `next` (see
/// [`cursor_after`]).
fn save_cursor(
    ctx: &Context,
    remote: &Remote,
    infos: &[SessionInfo],
    next: u64,
    failures: &[Failure],
) -> Result<()> {
    let mut state = SyncState::load(&ctx.baton_home, &remote.config.url)?;
    let failed: Vec<&str> = failures.iter().map(|f| f.id.as_str()).collect();
    state.changes_since = cursor_after(infos, next, &failed, state.changes_since);
    state.save(&ctx.baton_home)?;
    Ok(())
}

#[derive(Serialize)]
struct SyncJson<'a> {
    pushed: &'a [PushReport],
    pulled: &'a [PullReport],
    errors: &'a [Failure],
}

/// Run `baton sync`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let mut remote = connect(ctx, &args.crypto)?;
    remote.redact = !args.no_redact;
    let catalog = crate::catalog::open_fresh(ctx)?;
    let rows = select_rows(&catalog, &[])?;
    let (pushed, mut failures) = push_rows(ctx, &remote, &rows, true)?;
    let (infos, next) = changed_on_server(ctx, &remote)?;
    let (pulled, pull_failures) = pull_infos(ctx, &remote, &catalog, infos.clone())?;
    save_cursor(ctx, &remote, &infos, next, &pull_failures)?;
    failures.extend(pull_failures);
    if !pulled.iter().all(|p| p.files.is_empty()) {
        crate::catalog::open_fresh(ctx)?;
    }
    if args.json {
        output::print_json(&SyncJson {
            pushed: &pushed,
            pulled: &pulled,
            errors: &failures,
        })?;
        return finish(&failures);
    }
    let changed_pushes: Vec<PushReport> = pushed
        .into_iter()
        .filter(|r| r.status != PushStatus::UpToDate || !r.behind.is_empty())
        .collect();
    let changed_pulls: Vec<PullReport> = pulled
        .into_iter()
        .filter(|r| !r.files.is_empty() || !r.local_diverged.is_empty())
        .collect();
    print_pushes(&changed_pushes);
    print_pulls(&changed_pulls);
    if changed_pushes.is_empty() && changed_pulls.is_empty() && failures.is_empty() {
        println!("everything is up to date with {}", remote.config.url);
    }
    finish(&failures)
}
