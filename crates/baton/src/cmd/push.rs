//! `baton push`: send sessions to the sync server.

use crate::context::Context;
use crate::output;
use crate::remote::{Failure, SessionArgs, connect, finish, print_pushes, push_rows, select_rows};
use serde::Serialize;

/// Options of `baton push`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Only bytes the server has not acknowledged are sent (4 MiB pieces, zstd on the wire); an interrupted push resumes where the server stopped. Sessions only baton holds (imported or pulled) are pushed from baton's library. A session you continued here while it was also continued elsewhere is kept as a new server session (`diverged_from`), never overwritten.\n\nWith --encrypt the server stores ciphertext only: server-side search and the web viewer cannot show those sessions."
)]
pub struct Args {
    /// Which sessions to push (ids or `--all`) and how.
    #[command(flatten)]
    sel: SessionArgs,
}

#[derive(Serialize)]
struct PushJson<'a> {
    pushed: &'a [baton_sync::push::PushReport],
    errors: &'a [Failure],
}

/// Run `baton push`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let args = args.sel;
    let remote = connect(ctx, &args.crypto)?;
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
