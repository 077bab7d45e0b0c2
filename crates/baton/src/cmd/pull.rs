//! `baton pull`.

use crate::context::Context;

/// Options of `baton pull`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton pull`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton pull` is not built yet")
}
