//! `baton login`.

use crate::context::Context;

/// Options of `baton login`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton login`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton login` is not built yet")
}
