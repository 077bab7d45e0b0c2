//! `baton rehydrate`: write a session (whole lineage) into the agent's home
//! where the real CLI looks for it, optionally moving its working directory.

use crate::context::Context;
use crate::locate::{agent_home, load, locate_or_fetch};
use crate::place::{FileOut, print_outcome, write_fork};
use anyhow::Result;
use baton_native::Agent;
use baton_native::fork::Cut;
use baton_native::rehydrate::{NativeError, PathMap, rehydrate};
use baton_native::write::WriteError;
use std::path::{Path, PathBuf};

/// Options of `baton rehydrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id or unique id prefix.
    pub id: String,
    /// Move the session's working directory: cwd fields equal to OLD or below
    /// it are rewritten to NEW (repeatable; the first matching rule wins).
    /// When the agent home already holds the session unmoved, the moved copy
    /// is written as a new session (a full-copy fork) and its id printed.
    #[arg(long = "map-path", value_name = "OLD=NEW")]
    pub map_path: Vec<PathMap>,
    /// Print `{"id","agent","home","cwd","files":[{"id","path","outcome"}]}`
    /// (plus `"forked_from"` when the moved copy got a new id) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, serde::Serialize)]
struct Output<'a> {
    id: &'a str,
    agent: Agent,
    home: &'a Path,
    cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forked_from: Option<&'a str>,
    files: &'a [FileOut],
}

/// Run `baton rehydrate`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let located = locate_or_fetch(ctx, &args.id)?;
    let mut original = load(ctx, &located)?;
    let redactor = crate::secrets::redactor(ctx, None)?;
    crate::secrets::restore_session(&redactor, &mut original)?;
    let session = original.map_paths(&args.map_path);
    let home: PathBuf = agent_home(ctx, located.agent)?;
    let (id, forked_from, files, summary) = match rehydrate(&session, &home) {
        Ok(written) => (
            session.id.clone(),
            None,
            FileOut::list(&written),
            format!(
                "{} session {} is ready in {}; continue it with: baton resume {}",
                session.agent,
                session.id,
                home.display(),
                session.id
            ),
        ),
        // The home already holds the session where it was: keep that file
        // and write the moved copy under a new id.
        Err(NativeError::Write(WriteError::Conflict { path })) if session != original => {
            let folder = (session.agent == Agent::Claude)
                .then(|| {
                    session
                        .cwd()
                        .map(|c| baton_native::layout::claude::project_slug(&c))
                })
                .flatten();
            let (forked, new_path) =
                write_fork(&session, Cut::DropLast(0), &home, folder.as_deref())?;
            let summary = format!(
                "{} session {} is already in {} ({}) and stays as it is; the moved copy is new session {} (forked from {})\ncontinue it with: baton resume {}",
                session.agent,
                session.id,
                home.display(),
                path.display(),
                forked.id,
                session.id,
                forked.id
            );
            let files = vec![FileOut::created(&forked.id, new_path)];
            (forked.id, Some(session.id.as_str()), files, summary)
        }
        Err(e) => return Err(e.into()),
    };
    let json = Output {
        id: &id,
        agent: session.agent,
        home: &home,
        cwd: session.cwd(),
        forked_from,
        files: &files,
    };
    print_outcome(args.json, &json, &files, &summary)
}
