//! `baton fork`: a new native session of the same agent holding a prefix
//! of another one, written next to it so the real CLI can resume it.

use crate::context::Context;
use crate::locate::{locate_or_fetch, on_disk};
use crate::place::write_fork;
use anyhow::Result;
use baton_native::Agent;
use baton_native::fork::{Cut, Forked};
use std::path::{Path, PathBuf};

/// Options of `baton fork`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id or unique id prefix.
    pub id: String,
    /// Drop the last N typed prompts and everything after each (0 = full copy; default 0).
    #[arg(long, value_name = "N", conflicts_with = "before_prompt")]
    pub drop_last: Option<usize>,
    /// Keep everything before the K-th typed prompt (1-based).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub before_prompt: Option<u64>,
    /// Print `{"id","agent","path","forked_from"}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton fork --json` output.
#[derive(Debug, serde::Serialize)]
struct Output<'a> {
    id: &'a str,
    agent: Agent,
    path: &'a Path,
    forked_from: &'a str,
}

/// Fork session `id` (an id or unique prefix) at `cut` next to it, streamed
/// from its files on disk; returns the fork and its new file.
pub fn fork_at(ctx: &Context, id: &str, cut: Cut) -> Result<(Forked, PathBuf)> {
    let located = locate_or_fetch(ctx, id)?;
    let session = on_disk(ctx, &located)?;
    write_fork(&session, cut, &located.home, None)
}

/// Run `baton fork`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let cut = match (args.drop_last, args.before_prompt) {
        (_, Some(k)) => Cut::BeforePrompt(usize::try_from(k).unwrap_or(usize::MAX)),
        (n, None) => Cut::DropLast(n.unwrap_or(0)),
    };
    let (forked, path) = fork_at(ctx, &args.id, cut)?;
    if args.json {
        return crate::output::print_json(&Output {
            id: &forked.id,
            agent: forked.agent,
            path: &path,
            forked_from: &forked.forked_from,
        });
    }
    println!(
        "forked {} {} -> {} (kept {} of {} typed prompts)\n  {}\n  continue it with: baton resume {}",
        forked.agent,
        forked.forked_from,
        forked.id,
        forked.prompts_kept,
        forked.prompts_total,
        path.display(),
        forked.id
    );
    Ok(())
}
