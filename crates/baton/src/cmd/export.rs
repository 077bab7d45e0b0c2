//! `baton export`.

use crate::context::Context;

/// Options of `baton export`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton export`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton export` is not built yet")
}
