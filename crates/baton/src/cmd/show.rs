//! `baton show`.

use crate::context::Context;

/// Options of `baton show`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton show`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton show` is not built yet")
}
