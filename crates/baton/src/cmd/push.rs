//! `baton push`: send sessions to the sync server.

use crate::context::Context;
use crate::output;
use crate::remote::{Failure, SessionArgs, connect, finish, print_pushes, push_rows, select_rows};
use serde::Serialize;

/// Options of `baton push`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Only bytes the server has not acknowledged are sent (4 MiB pieces, zstd on the wire); an interrupted push resumes where the server stopped. Sessions only baton holds (imported or pulled) are pushed from baton's library. A session you continued here while it was also continued elsewhere is kept as a new server session (`diverged_from`), never overwritten.\n\nSecrets (API keys, tokens, private keys, passwords) leave as placeholders `‹secret:RULE:…›`; their values stay in this machine's vault and come back on pull wherever the same key is configured. --no-redact sends them as they are.\n\nWith --encrypt the server stores ciphertext only: server-side search and the web viewer cannot show those sessions."
)]
pub struct Args {
    /// Which sessions to push (ids or `--all`) and how.
    #[command(flatten)]
    sel: SessionArgs,
    /// Send secrets as they are instead of as placeholders (after a warning
    /// that counts them). By default every secret the rules find leaves as
    /// `‹secret:RULE:…›` and its value stays in this machine's vault.
    #[arg(long)]
    no_redact: bool,
}

#[derive(Serialize)]
struct PushJson<'a> {
    pushed: &'a [baton_sync::push::PushReport],
    errors: &'a [Failure],
}

/// Run `baton push`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let no_redact = args.no_redact;
    let args = args.sel;
    let mut remote = connect(ctx, &args.crypto)?;
    remote.redact = !no_redact;
    let catalog = crate::catalog::open_fresh(ctx)?;
    let rows = select_rows(&catalog, &args.ids)?;
    let (reports, failures) = push_rows(ctx, &remote, &rows, false)?;
    if args.json {
        output::print_json(&PushJson {
            pushed: &reports,
            errors: &failures,
        })?;
    } else {
        print_pushes(&reports);
    }
    finish(&failures)
}
