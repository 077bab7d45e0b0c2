//! `baton import` (and the envelope half of `baton export`): move a session
//! between machines as one verified envelope file.

use crate::context::Context;
use crate::locate::library_root;
use crate::place::{FileOut, print_outcome, write_fork};
use anyhow::{Context as _, Result};
use baton_native::Agent;
use baton_native::envelope::Envelope;
use baton_native::fork::Cut;
use baton_native::layout::{claude, codex};
use baton_native::rehydrate::{NativeSession, rehydrate};
use baton_native::write::{WriteError, extend_owned_file};
use std::path::{Path, PathBuf};

/// Options of `baton import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Envelope file written by `baton export --format envelope` (`-` for stdin).
    pub file: PathBuf,
    /// Import the session as a new session (fresh id, a full-copy fork of the
    /// envelope's session) instead of under its own id: for an envelope whose
    /// history diverged from the copy already in baton's library.
    #[arg(long)]
    pub as_fork: bool,
    /// Print `{"id","agent","sha256","files":[{"id","path","outcome"}]}` (plus
    /// `"forked_from"` with --as-fork) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, serde::Serialize)]
struct Output<'a> {
    id: &'a str,
    agent: Agent,
    sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    forked_from: Option<&'a str>,
    files: &'a [FileOut],
}

/// Run `baton import`: verify the envelope, then store its native files in
/// baton's library (`$BATON_HOME/library/<agent>`), where the catalog lists
/// them and `rehydrate`/`resume` find them. A library copy the envelope
/// extends (the same session, continued elsewhere) gets the new bytes
/// appended; one with history the envelope lacks is refused.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let envelope = if args.file == Path::new("-") {
        Envelope::read_from(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        Envelope::read_from(std::io::BufReader::new(file))
    }
    .with_context(|| format!("cannot import {}", args.file.display()))?;
    let sha256 = envelope.sha256();
    let mut envelope = envelope;
    let redactor = crate::secrets::redactor(ctx, None)?;
    crate::secrets::restore_session(&redactor, &mut envelope.session)?;
    let session = &envelope.session;
    let library = library_root(ctx, session.agent);
    if args.as_fork {
        let (forked, path) = write_fork(session, Cut::DropLast(0), &library, None)?;
        let files = [FileOut::created(&forked.id, path)];
        let summary = format!(
            "imported {} session {} as new session {} (forked from {}); continue it with: baton resume {}",
            session.agent, session.id, forked.id, session.id, forked.id
        );
        let json = Output {
            id: &forked.id,
            agent: session.agent,
            sha256: sha256.clone(),
            forked_from: Some(&session.id),
            files: &files,
        };
        return print_outcome(args.json, &json, &files, &summary);
    }
    let appended = extend_library_copies(session, &library, &args.file)?;
    let mut files = FileOut::list(&rehydrate(session, &library)?);
    for f in &mut files {
        if let Some((_, n)) = appended.iter().find(|(id, _)| *id == f.id) {
            f.outcome = "updated";
            f.added_bytes = Some(*n);
        }
    }
    let summary = format!(
        "imported {} session {}; continue it with: baton resume {} (move it with `baton rehydrate {} --map-path OLD=NEW` first if its directory differs here)",
        session.agent, session.id, session.id, session.id
    );
    let json = Output {
        id: &session.id,
        agent: session.agent,
        sha256: sha256.clone(),
        forked_from: None,
        files: &files,
    };
    print_outcome(args.json, &json, &files, &summary)
}

/// The plain library file holding session `id`, if any.
fn library_copy(agent: Agent, library: &Path, id: &str) -> Option<PathBuf> {
    match agent {
        Agent::Codex => codex::find_rollout(&[library.to_path_buf()], id)
            .filter(|p| !baton_native::files::is_compressed(p)),
        Agent::Claude => claude::find_transcripts(library, id).into_iter().next(),
    }
}

/// Bring library copies the envelope extends up to date: a file of
/// `session` already in `library` holding a strict prefix of the envelope's
/// bytes gets the rest appended (baton owns its library) by
/// [`extend_owned_file`], which checks the bytes again under the library
/// copy's lock, the same one `baton pull` takes to extend it. A copy with
/// bytes the envelope lacks is refused
/// before anything is appended. Returns `(id, bytes appended)` per file grown.
fn extend_library_copies(
    session: &NativeSession,
    library: &Path,
    envelope: &Path,
) -> Result<Vec<(String, u64)>> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let diverged = |id: &str, path: &Path| {
        anyhow::anyhow!(
            "session {id} is already in baton's library ({}) with history this envelope does not have \
             (the two copies diverged); nothing was imported. To keep both, import this one as a new \
             session forked from {id}: `baton import {} --as-fork`",
            path.display(),
            envelope.display()
        )
    };
    let mut grow = Vec::new();
    for file in &session.files {
        let Some(path) = library_copy(session.agent, library, &file.id) else {
            continue;
        };
        let existing = read(&path)?;
        if existing.starts_with(&file.bytes) {
            continue;
        }
        if !file.bytes.starts_with(&existing) {
            return Err(diverged(&file.id, &path));
        }
        grow.push((file, path));
    }
    let mut appended = Vec::new();
    for (file, path) in grow {
        match extend_owned_file(&path, &file.bytes, 0o666) {
            Ok(0) => {}
            Ok(n) => appended.push((file.id.clone(), n)),
            Err(WriteError::Conflict { .. }) => return Err(diverged(&file.id, &path)),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot append to {}", path.display()));
            }
        }
    }
    Ok(appended)
}
