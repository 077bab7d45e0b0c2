//! `baton push`.

use crate::context::Context;

/// Options of `baton push`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton push`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton push` is not built yet")
}
