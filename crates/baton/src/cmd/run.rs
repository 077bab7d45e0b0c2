//! `baton run`.

use crate::context::Context;

/// Options of `baton run`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `baton run`.
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`baton run` is not built yet")
}
