//! `baton pull`: fetch sessions from the sync server into baton's library.

use crate::context::Context;
use crate::output;
use crate::remote::{Failure, SessionArgs, connect, finish, print_pulls, pull_infos};
use anyhow::{Context as _, bail};
use serde::Serialize;

/// Options of `baton pull`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Pulled sessions go into baton's library ($BATON_HOME/library/codex and $BATON_HOME/library/claude), never into an agent's home: `baton list`/`search`/`show` see them at once, and `baton resume ID` writes one where its agent looks. Only new bytes are fetched and appended."
)]
pub struct Args {
    /// Which sessions to pull (ids or `--all`) and how.
    #[command(flatten)]
    sel: SessionArgs,
}

#[derive(Serialize)]
struct PullJson<'a> {
    pulled: &'a [baton_sync::pull::PullReport],
    errors: &'a [Failure],
}

/// Run `baton pull`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let args = args.sel;
    let remote = connect(ctx, &args.crypto)?;
    let all = remote.rt.block_on(remote.client.all_sessions())?;
    let infos = if args.all {
        all
    } else {
        let mut picked = Vec::new();
        for id in &args.ids {
            let mut matches = all
                .iter()
                .filter(|s| s.id == *id || s.id.starts_with(id.as_str()));
            let exact = all.iter().find(|s| s.id == *id);
            let one = match exact {
                Some(s) => s,
                None => {
                    let first = matches.next().with_context(|| {
                        format!(
                            "no session `{id}` on {}; `baton pull --all` fetches everything",
                            remote.config.url
                        )
                    })?;
                    if matches.next().is_some() {
                        bail!("`{id}` matches several sessions on the server; give more of the id");
                    }
                    first
                }
            };
            picked.push(one.clone());
        }
        picked
    };
    let catalog = crate::catalog::open_fresh(ctx)?;
    let (reports, failures) = pull_infos(ctx, &remote, &catalog, infos)?;
    if reports.iter().any(|r| !r.files.is_empty()) {
        crate::catalog::open_fresh(ctx)?;
    }
    if args.json {
        output::print_json(&PullJson {
            pulled: &reports,
            errors: &failures,
        })?;
    } else {
        print_pulls(&reports);
    }
    finish(&failures)
}
