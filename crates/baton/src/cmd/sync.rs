//! `baton sync`.

use crate::context::Context;

/// Options of `baton sync`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton sync`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton sync` is not built yet")
}
