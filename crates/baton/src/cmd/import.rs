//! `baton import` (and the envelope half of `baton export`): move a session
//! between machines as one verified envelope file.

use crate::cmd::rehydrate::FileOut;
use crate::cmd::resume::{home_of, library_root};
use crate::context::Context;
use anyhow::{Context as _, Result};
use baton_native::Agent;
use baton_native::envelope::{Envelope, EnvelopeMeta};
use baton_native::rehydrate::{NativeSession, rehydrate};
use baton_store::{Catalog, SessionRow};
use std::path::{Path, PathBuf};

/// Options of `baton import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Envelope file written by `baton export --format envelope` (`-` for stdin).
    pub file: PathBuf,
    /// Print `{"id","agent","sha256","files":[{"id","path","outcome"}]}` as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, serde::Serialize)]
struct Output<'a> {
    id: &'a str,
    agent: Agent,
    sha256: String,
    files: Vec<FileOut<'a>>,
}

/// Run `baton import`: verify the envelope, then store its native files in
/// baton's library (`$BATON_HOME/library/<agent>`), where the catalog lists
/// them and `rehydrate`/`resume` find them.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let envelope = if args.file == Path::new("-") {
        Envelope::read_from(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        Envelope::read_from(std::io::BufReader::new(file))
    }
    .with_context(|| format!("cannot import {}", args.file.display()))?;
    let library = library_root(ctx, envelope.session.agent);
    let written = rehydrate(&envelope.session, &library)?;
    if args.json {
        return crate::output::print_json(&Output {
            id: &envelope.session.id,
            agent: envelope.session.agent,
            sha256: envelope.sha256(),
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
        "imported {} session {}; continue it with: baton resume {} (move it with `baton rehydrate {} --map-path OLD=NEW` first if its directory differs here)",
        envelope.session.agent, envelope.session.id, envelope.session.id, envelope.session.id
    );
    Ok(())
}

/// The envelope of a catalogued session (`baton export --format envelope`):
/// its native file plus every ancestor its history references, read from
/// the homes the catalog found them in.
pub fn envelope_bytes(cat: &Catalog, row: &SessionRow) -> Result<Vec<u8>> {
    let path = row
        .paths
        .first()
        .map(PathBuf::from)
        .with_context(|| format!("session {} has no native file on this machine", row.id))?;
    let roots: Vec<PathBuf> = cat
        .segments(row)?
        .iter()
        .filter_map(|seg| home_of(row.agent, &seg.path))
        .collect();
    let session = NativeSession::load(row.agent, &path, &roots)?;
    let meta = EnvelopeMeta {
        cwd: row.cwd.clone(),
        started_at: Some(row.started_at.clone()),
        updated_at: Some(row.updated_at.clone()),
        title: row.title.clone(),
        first_prompt: row.first_prompt.clone(),
        forked_from: row.forked_from.clone(),
    };
    let mut bytes = Vec::new();
    Envelope::from_files(session, meta).write_to(&mut bytes)?;
    Ok(bytes)
}
