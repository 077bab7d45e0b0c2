//! `baton convert`: a session of one agent as a new native session of the
//! other, written where that agent looks for it (or into baton's library).

use crate::catalog;
use crate::context::Context;
use crate::locate::{agent_home, codex_roots, library_root, locate_or_fetch};
use crate::place::{describe_dropped, write_converted};
use anyhow::Result;
use baton_native::Agent;
use baton_native::convert::Dropped;
use baton_native::rehydrate::{PathMap, PathsMapped, SessionOnDisk};
use std::path::Path;

/// Options of `baton convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id or unique id prefix.
    pub id: String,
    /// The agent to continue in (`codex` or `claude`).
    #[arg(long, value_parser = catalog::parse_agent)]
    pub to: Agent,
    /// Write into baton's library instead of the agent's home.
    #[arg(long)]
    pub library: bool,
    /// Move the session's working directory first: paths equal to OLD or
    /// below it become NEW (repeatable; the first matching rule wins).
    #[arg(long = "map-path", value_name = "OLD=NEW")]
    pub map_path: Vec<PathMap>,
    /// Keep secrets as they are instead of as placeholders (after a warning
    /// that counts them). By default every secret the rules find becomes
    /// `‹secret:RULE:…›` in the new session, as on every exit.
    #[arg(long)]
    pub no_redact: bool,
    /// Print `{"id","agent","path","converted_from":{"agent","id"},"dropped":[{"what","count"}]}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton convert --json` output.
#[derive(Debug, serde::Serialize)]
struct Output<'a> {
    id: &'a str,
    agent: Agent,
    path: &'a Path,
    converted_from: baton_store::SessionRef,
    dropped: &'a [Dropped],
}

/// Run `baton convert`: the session streamed from its files (paths moved,
/// secrets redacted, a line at a time) into the new session's file.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let located = locate_or_fetch(ctx, &args.id)?;
    let on_disk = SessionOnDisk::locate(located.agent, &located.path, &codex_roots(ctx))?;
    let mapped = PathsMapped::new(&on_disk, &args.map_path);
    let redactor = crate::secrets::redactor(ctx, None)?;
    let session = crate::secrets::for_exit(&redactor, &mapped, args.no_redact)?;
    let home = if args.library {
        library_root(ctx, args.to)
    } else {
        agent_home(ctx, args.to)?
    };
    let (converted, path) = write_converted(&session, args.to, &home, &ctx.baton_home)?;
    if args.json {
        return crate::output::print_json(&Output {
            id: &converted.id,
            agent: converted.agent,
            path: &path,
            converted_from: baton_store::SessionRef {
                agent: converted.source_agent,
                id: converted.converted_from.clone(),
            },
            dropped: &converted.dropped,
        });
    }
    println!(
        "converted {} {} -> {} {}\n  {}\n{}\n  continue it with: baton resume {}",
        converted.source_agent,
        converted.converted_from,
        converted.agent,
        converted.id,
        path.display(),
        describe_dropped(&converted.dropped),
        converted.id
    );
    Ok(())
}
