//! Where a session is on this machine: the catalog lookup by id or prefix
//! shared by `resume`, `fork`, `rehydrate` and `import`, the homes and
//! library roots it searches, and the hook that fetches an unknown session
//! from the sync server.

use crate::context::Context;
use anyhow::{Context as _, Result};
use baton_native::Agent;
use baton_native::layout::{home_of, library};
use baton_native::rehydrate::{NativeSession, SessionOnDisk};
use std::path::PathBuf;

/// A session found on this machine.
#[derive(Debug, Clone)]
pub struct Located {
    /// Which agent wrote it.
    pub agent: Agent,
    /// Full session id.
    pub id: String,
    /// Its native file.
    pub path: PathBuf,
    /// The home holding that file (an agent home, or one of baton's library roots).
    pub home: PathBuf,
    /// True when `home` is baton's library rather than a home the agent reads.
    pub in_library: bool,
    /// When `path` is in an agent home: the session's copy in baton's
    /// library too, if there is one (e.g. pulled from the sync server).
    pub library_copy: Option<PathBuf>,
}

/// baton's library root for an agent, laid out like that agent's home
/// (see [`library::agent_home`]).
pub fn library_root(ctx: &Context, agent: Agent) -> PathBuf {
    library::agent_home(&ctx.baton_home, agent)
}

/// Every Codex-layout root baton reads: the Codex homes, then the library.
pub fn codex_roots(ctx: &Context) -> Vec<PathBuf> {
    let mut roots = ctx.codex_homes.clone();
    roots.push(library_root(ctx, Agent::Codex));
    roots
}

/// Find a session by id or unique prefix in the catalog, preferring a copy
/// in an agent home over one in baton's library.
pub fn locate(ctx: &Context, id_or_prefix: &str) -> Result<Located> {
    let catalog = crate::catalog::open_fresh(ctx)?;
    let mut row = catalog.resolve(id_or_prefix)?;
    // The session's file, or a file of its lineage (a Codex fork's parent),
    // only in baton's archive: write it back first.
    if !restore_archived(&catalog, &row)?.is_empty() {
        drop(catalog);
        row = crate::catalog::open_fresh(ctx)?.resolve(&row.id)?;
    }
    let agent = row.agent;
    let library = library_root(ctx, agent);
    let mut candidates: Vec<Located> = row
        .paths
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .filter_map(|path| {
            let home = home_of(agent, &path)?;
            Some(Located {
                agent,
                id: row.id.clone(),
                in_library: home.starts_with(&library),
                library_copy: None,
                path,
                home,
            })
        })
        .collect();
    candidates.sort_by_key(|c| c.in_library);
    let library_copy = candidates
        .iter()
        .find(|c| c.in_library)
        .map(|c| c.path.clone());
    let mut best = candidates.into_iter().next();
    if let Some(best) = best.as_mut().filter(|b| !b.in_library) {
        best.library_copy = library_copy;
    }
    best.with_context(|| {
        format!(
            "session {} is in the catalog but its native file is gone from this machine; \
             import its envelope with `baton import FILE`, or run `baton index` to refresh",
            row.id
        )
    })
}

/// Write an archived session's files (its own and every archived file of
/// its lineage, e.g. a Codex fork's parent) back where its agent wrote them,
/// byte-identical, from baton's archive. Files are created new (atomically,
/// 0600); a file that reappeared meanwhile is left alone unless it differs
/// (then this is a conflict to resolve by hand).
pub fn restore_archived(
    catalog: &baton_store::Catalog,
    row: &baton_store::SessionRow,
) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = catalog
        .segments(row)?
        .into_iter()
        .filter(|s| s.archived)
        .map(|s| s.path)
        .collect();
    for path in row.paths.iter().map(PathBuf::from) {
        if !paths.contains(&path) && !path.exists() {
            paths.push(path);
        }
    }
    let mut restored = Vec::new();
    for path in paths {
        if catalog.archived_reader(&path, 0).is_err() {
            continue;
        }
        // Streamed from the archive, a frame at a time, each time it is read.
        let mut copy = |out: &mut dyn std::io::Write| {
            let mut archived = catalog
                .archived_reader(&path, 0)
                .map_err(std::io::Error::other)?;
            std::io::copy(&mut archived, out).map(drop)
        };
        let content = baton_native::write::Content::Stream(&mut copy);
        baton_native::write::write_new_file_mode(&path, content, 0o600)
            .with_context(|| format!("cannot restore {} from baton's archive", path.display()))?;
        eprintln!("restored {} from baton's archive", path.display());
        restored.push(path);
    }
    Ok(restored)
}

/// [`locate`], the seam where a session unknown on this machine can be
/// fetched from elsewhere (e.g. the sync server) before giving up. Only an
/// unknown id goes to the server: an ambiguous prefix or a session whose file
/// is gone is reported as is. When the server cannot be asked, the lookup
/// error is kept and one line about the server is added.
pub fn locate_or_fetch(ctx: &Context, id_or_prefix: &str) -> Result<Located> {
    let err = match locate(ctx, id_or_prefix) {
        Ok(found) => return Ok(found),
        Err(err) => err,
    };
    let unknown = matches!(
        err.downcast_ref::<baton_store::Error>(),
        Some(baton_store::Error::UnknownSession(_))
    );
    if !unknown {
        return Err(err);
    }
    // This machine's own continuation, kept on the server under a new id
    // after it diverged: that is the local session.
    if let Some(local) = diverged_alias(ctx, id_or_prefix) {
        eprintln!(
            "session {id_or_prefix} is this machine's continuation of {local} (kept on the server under the new id); resuming {local}"
        );
        return locate(ctx, &local);
    }
    // Not here: pull it from the logged-in sync server, if it has it.
    match crate::remote::fetch_for_resume(ctx, id_or_prefix) {
        Ok(true) => locate(ctx, id_or_prefix),
        Ok(false) => Err(err),
        Err(fetch) => Err(anyhow::anyhow!(
            "{err:#}\nlooking for it on {} failed too: {fetch}",
            server_name(ctx)
        )),
    }
}

/// The local session whose divergent continuation the sync server keeps as
/// `id_or_prefix` (the sync state's redirects), if any.
fn diverged_alias(ctx: &Context, id_or_prefix: &str) -> Option<String> {
    let config = baton_sync::state::SyncConfig::load(&ctx.baton_home).ok()??;
    let state = baton_sync::state::SyncState::load(&ctx.baton_home, &config.url).ok()?;
    let mut hits = state
        .redirects
        .iter()
        .filter(|(_, remote)| remote.starts_with(id_or_prefix));
    match (hits.next(), hits.next()) {
        (Some((local, _)), None) => Some(local.clone()),
        _ => None,
    }
}

/// The home where the agent itself looks (`--codex-home`/`--claude-dir`,
/// else the agent's default).
pub fn agent_home(ctx: &Context, agent: Agent) -> Result<PathBuf> {
    let homes = match agent {
        Agent::Codex => &ctx.codex_homes,
        Agent::Claude => &ctx.claude_dirs,
    };
    homes
        .first()
        .cloned()
        .with_context(|| format!("no {agent} home configured"))
}

/// A located session's lineage on disk, read as it is needed (only each
/// file's first line now): for commands that stream it.
pub fn on_disk(ctx: &Context, located: &Located) -> Result<SessionOnDisk> {
    Ok(SessionOnDisk::locate(
        located.agent,
        &located.path,
        &codex_roots(ctx),
    )?)
}

/// Load a located session's native bytes (whole lineage).
pub fn load(ctx: &Context, located: &Located) -> Result<NativeSession> {
    Ok(NativeSession::load(
        located.agent,
        &located.path,
        &codex_roots(ctx),
    )?)
}

/// The sync server's URL for messages ("the sync server" when not logged in).
fn server_name(ctx: &Context) -> String {
    baton_sync::state::SyncConfig::load(&ctx.baton_home)
        .ok()
        .flatten()
        .map(|c| c.url)
        .unwrap_or_else(|| "the sync server".to_owned())
}
