//! `baton rehydrate`.

use crate::context::Context;

/// Options of `baton rehydrate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton rehydrate`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton rehydrate` is not built yet")
}
