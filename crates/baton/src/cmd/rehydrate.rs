//! `baton rehydrate`: write a session (whole lineage) into the agent's home
//! where the real CLI looks for it, optionally moving its working directory.

use crate::context::Context;
use crate::locate::{agent_home, locate_or_fetch, on_disk};
use crate::place::{FileOut, print_outcome, write_fork};
use crate::secrets::SecretLines;
use anyhow::Result;
use baton_native::Agent;
use baton_native::fork::Cut;
use baton_native::rehydrate::{NativeError, PathMap, PathsMapped, SessionLines, rehydrate};
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

/// Run `baton rehydrate`: the session streamed from its files (secrets
/// restored, paths moved, a line at a time) into the agent home.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let located = locate_or_fetch(ctx, &args.id)?;
    let on_disk = on_disk(ctx, &located)?;
    let redactor = crate::secrets::redactor(ctx, None)?;
    let restored = SecretLines::restored(&on_disk, &redactor);
    let session = PathsMapped::new(&restored, &args.map_path);
    let home: PathBuf = agent_home(ctx, located.agent)?;
    let (agent, session_id) = (session.agent(), session.id());
    let (id, forked_from, files, summary) = match rehydrate(&session, &home) {
        Ok(written) => (
            session_id.to_owned(),
            None,
            FileOut::list(&written),
            format!(
                "{agent} session {session_id} is ready in {}; continue it with: baton resume {session_id}",
                home.display(),
            ),
        ),
        // The home already holds the session where it was: keep that file
        // and write the moved copy under a new id.
        Err(NativeError::Write(WriteError::Conflict { path })) if session.moves_anything()? => {
            let folder = (agent == Agent::Claude).then(|| session.claude_project_folder());
            let (forked, new_path) =
                write_fork(&session, Cut::DropLast(0), &home, folder.as_deref())?;
            let summary = format!(
                "{agent} session {session_id} is already in {} ({}) and stays as it is; the moved copy is new session {} (forked from {session_id})\ncontinue it with: baton resume {}",
                home.display(),
                path.display(),
                forked.id,
                forked.id
            );
            let files = vec![FileOut::created(&forked.id, new_path)];
            (forked.id, Some(session_id), files, summary)
        }
        Err(e) => return Err(e.into()),
    };
    let json = Output {
        id: &id,
        agent,
        home: &home,
        cwd: session.cwd(),
        forked_from,
        files: &files,
    };
    print_outcome(args.json, &json, &files, &summary)
}
