//! `baton import`.

use crate::context::Context;

/// Options of `baton import`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton import`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton import` is not built yet")
}
