//! `baton rehydrate`: write a session (whole lineage) into the agent's home
//! where the real CLI looks for it, optionally moving its working directory.

use crate::cmd::resume::{agent_home, load, locate_or_fetch};
use crate::context::Context;
use anyhow::Result;
use baton_native::Agent;
use baton_native::rehydrate::{PathMap, RehydratedFile, rehydrate};
use std::path::{Path, PathBuf};

/// Options of `baton rehydrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id or unique id prefix.
    pub id: String,
    /// Move the session's working directory: cwd fields equal to OLD or below
    /// it are rewritten to NEW (repeatable; the first matching rule wins).
    #[arg(long = "map-path", value_name = "OLD=NEW")]
    pub map_path: Vec<PathMap>,
    /// Print `{"id","agent","home","cwd","files":[{"id","path","outcome"}]}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One file in the JSON output of `rehydrate` and `import`.
#[derive(Debug, serde::Serialize)]
pub struct FileOut<'a> {
    /// Session id of the file.
    pub id: &'a str,
    /// Where it is.
    pub path: &'a Path,
    /// `created`, `unchanged` or `continued`.
    pub outcome: &'static str,
}

impl<'a> FileOut<'a> {
    /// The JSON view of written files.
    pub fn list(written: &'a [RehydratedFile]) -> Vec<FileOut<'a>> {
        written
            .iter()
            .map(|w| FileOut {
                id: &w.id,
                path: &w.placed.path,
                outcome: w.placed.outcome.as_str(),
            })
            .collect()
    }
}

#[derive(Debug, serde::Serialize)]
struct Output<'a> {
    id: &'a str,
    agent: Agent,
    home: &'a Path,
    cwd: Option<String>,
    files: Vec<FileOut<'a>>,
}

/// Run `baton rehydrate`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let located = locate_or_fetch(ctx, &args.id)?;
    let session = load(ctx, &located)?.map_paths(&args.map_path);
    let home: PathBuf = agent_home(ctx, located.agent)?;
    let written = rehydrate(&session, &home)?;
    if args.json {
        return crate::output::print_json(&Output {
            id: &session.id,
            agent: session.agent,
            home: &home,
            cwd: session.cwd(),
            files: FileOut::list(&written),
        });
    }
    for w in &written {
        println!(
            "{:<9} {}",
            w.placed.outcome.as_str(),
            w.placed.path.display()
        );
    }
    println!(
        "{} session {} is ready in {}; continue it with: baton resume {}",
        session.agent,
        session.id,
        home.display(),
        session.id
    );
    Ok(())
}
