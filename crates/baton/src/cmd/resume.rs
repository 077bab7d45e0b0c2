//! `baton resume`.

use crate::context::Context;

/// Options of `baton resume`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton resume`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton resume` is not built yet")
}
