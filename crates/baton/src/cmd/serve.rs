//! `baton serve`.

use crate::context::Context;

/// Options of `baton serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton serve`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton serve` is not built yet")
}
