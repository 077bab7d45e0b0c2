//! `baton import` (and the envelope half of `baton export`): move a session
//! between machines as one verified envelope file.

use crate::context::Context;
use crate::locate::library_root;
use crate::place::{FileOut, print_outcome, write_fork};
use crate::secrets::SecretLines;
use anyhow::{Context as _, Result};
use baton_native::Agent;
use baton_native::envelope::{EnvelopeError, EnvelopeHeader, FileRole, read_envelope};
use baton_native::fork::Cut;
use baton_native::layout::{claude, codex, library};
use baton_native::rehydrate::{FileOnDisk, SessionLines, SessionOnDisk, rehydrate};
use baton_native::write::{
    Content, Overlap, Owned, WriteError, ensure_dir, extend_owned_file, open_owned,
    overlap_with_file,
};
use std::io::{Read, Write};
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

/// Run `baton import`: verify the envelope while it is unpacked into a
/// spool folder in baton's library, then store its native files in baton's
/// library (`$BATON_HOME/library/<agent>`), where the catalog lists them
/// and `rehydrate`/`resume` find them. A library copy the envelope extends
/// (the same session, continued elsewhere) gets the new bytes appended; one
/// with history the envelope lacks is refused. Every file is streamed
/// (secrets restored a line at a time), never held whole, whatever its size.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let spool = Spool::create(ctx)?;
    let header = if args.file == Path::new("-") {
        spool.unpack(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        spool.unpack(std::io::BufReader::new(file))
    }
    .with_context(|| format!("cannot import {}", args.file.display()))?;
    let on_disk = spool.session(&header);
    let redactor = crate::secrets::redactor(ctx, None)?;
    let session = SecretLines::restored(&on_disk, &redactor);
    let (agent, id) = (header.agent, header.id.as_str());
    let library = library_root(ctx, agent);
    if args.as_fork {
        let (forked, path) = write_fork(&session, Cut::DropLast(0), &library, None)?;
        let files = [FileOut::created(&forked.id, path)];
        let summary = format!(
            "imported {agent} session {id} as new session {} (forked from {id}); continue it with: baton resume {}",
            forked.id, forked.id
        );
        let json = Output {
            id: &forked.id,
            agent,
            sha256: header.sha256.clone(),
            forked_from: Some(id),
            files: &files,
        };
        return print_outcome(args.json, &json, &files, &summary);
    }
    let appended = extend_library_copies(&session, &library, &args.file)?;
    let mut files = FileOut::list(&rehydrate(&session, &library)?);
    for f in &mut files {
        if let Some((_, n)) = appended.iter().find(|(id, _)| *id == f.id) {
            f.outcome = "updated";
            f.added_bytes = Some(*n);
        }
    }
    let summary = format!(
        "imported {agent} session {id}; continue it with: baton resume {id} (move it with `baton rehydrate {id} --map-path OLD=NEW` first if its directory differs here)",
    );
    let json = Output {
        id,
        agent,
        sha256: header.sha256.clone(),
        forked_from: None,
        files: &files,
    };
    print_outcome(args.json, &json, &files, &summary)
}

/// A folder in baton's library (`library/.spool/<pid>-<time>`, outside
/// every agent layout the catalog reads) holding an envelope's files while
/// it is imported; removed with everything in it when dropped, and so are
/// the folders above it that it created (an import that fails leaves no
/// library behind).
struct Spool {
    dir: PathBuf,
    /// The highest folder created for the spool.
    created_from: PathBuf,
}

impl Spool {
    /// A new, empty spool folder.
    fn create(ctx: &Context) -> Result<Spool> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = library::root(&ctx.baton_home)
            .join(".spool")
            .join(format!("{}-{nanos}", std::process::id()));
        let created_from = dir
            .ancestors()
            .take_while(|a| !a.exists())
            .last()
            .unwrap_or(&dir)
            .to_path_buf();
        ensure_dir(&dir)?;
        Ok(Spool { dir, created_from })
    }
    /// Unpack the envelope read from `r` into the spool, each file under
    /// its name in the envelope (checked safe before any is written),
    /// verifying every hash; its header once all matched.
    fn unpack(&self, r: impl Read) -> Result<EnvelopeHeader, EnvelopeError> {
        read_envelope(r, u64::MAX, |entry, part| {
            let path = self.dir.join(&entry.name);
            if let Some(parent) = path.parent() {
                ensure_dir(parent).map_err(std::io::Error::other)?;
            }
            let file = open_owned(&path, Owned::AppendNew, 0o600)?;
            let mut out = std::io::BufWriter::new(file);
            std::io::copy(part, &mut out)?;
            out.into_inner()
                .map_err(std::io::IntoInnerError::into_error)?
                .sync_all()
        })
    }

    /// The session of the unpacked envelope `header`, read from the spool.
    fn session(&self, header: &EnvelopeHeader) -> SessionOnDisk {
        let files = header
            .files
            .iter()
            .filter(|f| matches!(f.role, FileRole::Ancestor | FileRole::Session))
            .map(|f| FileOnDisk {
                id: f.id.clone(),
                name: f.name.clone(),
                path: self.dir.join(&f.name),
            })
            .collect();
        SessionOnDisk {
            agent: header.agent,
            id: header.id.clone(),
            files,
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // Folders above that the import did not fill (remove_dir leaves a
        // folder with anything in it).
        for above in self.dir.ancestors().skip(1) {
            if !above.starts_with(&self.created_from) || std::fs::remove_dir(above).is_err() {
                break;
            }
        }
    }
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
/// Both sides are streamed.
fn extend_library_copies(
    session: &dyn SessionLines,
    library: &Path,
    envelope: &Path,
) -> Result<Vec<(String, u64)>> {
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
    for (i, id) in session.file_ids().into_iter().enumerate() {
        let Some(path) = library_copy(session.agent(), library, id) else {
            continue;
        };
        let mut ours = |out: &mut dyn Write| session.copy_file(i, out);
        match overlap_with_file(&path, &mut Content::Stream(&mut ours))
            .with_context(|| format!("cannot compare with {}", path.display()))?
        {
            Overlap::Equal | Overlap::ExistingLonger(_) => {}
            Overlap::ExistingShorter => grow.push((i, id, path)),
            Overlap::Diverged => return Err(diverged(id, &path)),
        }
    }
    let mut appended = Vec::new();
    for (i, id, path) in grow {
        let mut ours = |out: &mut dyn Write| session.copy_file(i, out);
        match extend_owned_file(&path, Content::Stream(&mut ours), 0o666) {
            Ok(0) => {}
            Ok(n) => appended.push((id.to_owned(), n)),
            Err(WriteError::Conflict { .. }) => return Err(diverged(id, &path)),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot append to {}", path.display()));
            }
        }
    }
    Ok(appended)
}
