//! `baton index`.

use crate::context::Context;

/// Options of `baton index`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton index`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton index` is not built yet")
}
