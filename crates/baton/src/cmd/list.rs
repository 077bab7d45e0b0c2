//! `baton list`.

use crate::context::Context;

/// Options of `baton list`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton list`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton list` is not built yet")
}
