//! `baton search`.

use crate::context::Context;

/// Options of `baton search`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton search`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton search` is not built yet")
}
