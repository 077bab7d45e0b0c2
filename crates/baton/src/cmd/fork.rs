//! `baton fork`.

use crate::context::Context;

/// Options of `baton fork`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton fork`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton fork` is not built yet")
}
