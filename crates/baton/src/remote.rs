//! The CLI's side of sync, shared by `baton login`, `push`, `pull`, `sync`
//! and the server fallback of `baton resume`: connecting to the logged-in
//! server with its key material, choosing catalog sessions, running the
//! engine of `baton-sync` over them under a progress bar, and reporting.

use crate::context::Context;
use crate::output;
use anyhow::{Context as _, Result, bail};
use baton_protocol::{MAIN_STREAM, SessionInfo, SessionMeta, WhoAmI};
use baton_secrets::Redactor;
use baton_store::{Catalog, ListQuery, SessionRow};
use baton_sync::crypto::{self, Keyring};
use baton_sync::engine::Syncer;
use baton_sync::error::ClientError;
use baton_sync::http::Client;
use baton_sync::local::{library_path, unchanged, with_missing_parents};
use baton_sync::pull::PullReport;
use baton_sync::push::{LocalSession, PushReport, PushStatus};
use baton_sync::state::{SyncConfig, SyncLock, SyncState};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Encryption options shared by `login`, `push`, `pull` and `sync`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CryptoArgs {
    /// Encrypt end to end: the server stores ciphertext it cannot read, index,
    /// search or render (search and the viewer then work only on your
    /// machines). The key comes from BATON_PASSPHRASE (or a prompt, derived
    /// with Argon2id) or from --key-file. Applies to sessions new on the server.
    #[arg(long)]
    pub encrypt: bool,
    /// Use this key file (64 hex characters) instead of a passphrase; with
    /// `baton login --encrypt` a missing file is created with a random key.
    /// Copy it to your other machines.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
}

/// Options shared by `baton push` and `baton pull`: session ids or `--all`
/// (exactly one of them; clap refuses anything else with exit code 2).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("sessions").required(true).args(["ids", "all"])))]
pub struct SessionArgs {
    /// Session ids or unique prefixes (a fork's parents come too).
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Every session: all of this machine's (push) or of your account (pull).
    #[arg(long)]
    pub all: bool,
    /// Encryption options.
    #[command(flatten)]
    pub crypto: CryptoArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A logged-in server with the key material for encrypted sessions.
pub struct Remote {
    /// The login.
    pub config: SyncConfig,
    /// HTTP client for it.
    pub client: Client,
    /// Key for encrypted sessions (when configured).
    pub keyring: Option<Arc<Keyring>>,
    /// Redacts what is pushed and restores what is pulled.
    pub redactor: Redactor,
    /// Redact pushed bytes (false with `--no-redact`).
    pub redact: bool,
    /// Encrypt sessions new on the server.
    pub encrypt: bool,
    /// The one runtime every request of this command runs on (the client's
    /// pooled connections belong to it).
    pub rt: tokio::runtime::Runtime,
    /// Held while this command runs: one sync, push or pull at a time.
    _lock: SyncLock,
}

/// A single-threaded runtime for the async client.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The passphrase from `BATON_PASSPHRASE`, else a prompt on the terminal.
fn passphrase(required: bool) -> Result<Option<String>> {
    if let Some(p) = std::env::var_os("BATON_PASSPHRASE").filter(|p| !p.is_empty()) {
        return p
            .into_string()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("BATON_PASSPHRASE is not valid UTF-8"));
    }
    if !required {
        return Ok(None);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "encryption needs a passphrase: set BATON_PASSPHRASE, or pass --key-file PATH (no terminal to prompt on)"
        );
    }
    let pass = rpassword::prompt_password("baton sync passphrase: ")
        .context("cannot read the passphrase from the terminal")?;
    if pass.is_empty() {
        bail!("the passphrase is empty; set BATON_PASSPHRASE or type a passphrase");
    }
    Ok(Some(pass))
}

/// Build the keyring for `config` (+ per-command overrides); `None` when no
/// key is configured and encryption is not asked for.
pub fn keyring(
    ctx: &Context,
    config: &mut SyncConfig,
    args: &CryptoArgs,
    create_key_file: bool,
) -> Result<Option<Keyring>> {
    let encrypt = args.encrypt || config.encrypt;
    if let Some(path) = args.key_file.clone().or_else(|| config.key_file.clone()) {
        let path = std::path::absolute(&path).unwrap_or(path);
        let key = if create_key_file && !path.exists() {
            let key = crypto::create_key_file(&path)?;
            eprintln!(
                "created key file {} — copy it to your other machines; without it your synced sessions cannot be read",
                path.display()
            );
            key
        } else {
            crypto::read_key_file(&path)?
        };
        if create_key_file {
            config.key_file = Some(path);
        }
        return Ok(Some(Keyring::from_key(key)));
    }
    let Some(pass) = passphrase(encrypt)? else {
        return Ok(None);
    };
    let salt = match config.salt.as_deref().and_then(|s| hex::decode(s).ok()) {
        Some(bytes) if bytes.len() == crypto::SALT_LEN => {
            let mut salt = [0u8; crypto::SALT_LEN];
            salt.copy_from_slice(&bytes);
            salt
        }
        _ => {
            let salt = crypto::new_salt();
            config.salt = Some(hex::encode(salt));
            config.save(&ctx.baton_home)?;
            salt
        }
    };
    Ok(Some(Keyring::from_passphrase(pass, salt)))
}

/// Connect to the server `baton login` saved.
pub fn connect(ctx: &Context, args: &CryptoArgs) -> Result<Remote> {
    let mut config = SyncConfig::load(&ctx.baton_home)?.with_context(|| {
        format!(
            "not logged in to a sync server ({} is missing); run `baton login URL TOKEN` first",
            SyncConfig::path(&ctx.baton_home).display()
        )
    })?;
    let client = Client::new(&config.url, &config.token)?;
    let keyring = keyring(ctx, &mut config, args, false)?.map(Arc::new);
    let redactor = crate::secrets::redactor(ctx, keyring.clone())?;
    let encrypt = args.encrypt || config.encrypt;
    let lock = SyncLock::acquire(&ctx.baton_home, |holder| {
        let pid = holder.map(|p| format!(" (pid {p})")).unwrap_or_default();
        eprintln!(
            "another baton sync, push or pull{pid} is running on {}; waiting for it to finish",
            ctx.baton_home.display()
        );
    })?;
    Ok(Remote {
        config,
        client,
        keyring,
        redactor,
        redact: true,
        encrypt,
        rt: runtime()?,
        _lock: lock,
    })
}

/// Save `config` after checking it against the server (`baton login`);
/// also returns the account the token belongs to.
pub fn login(
    ctx: &Context,
    url: &str,
    token: &str,
    args: &CryptoArgs,
) -> Result<(SyncConfig, WhoAmI)> {
    let client = Client::new(url, token)?;
    let who = runtime()?.block_on(client.whoami())?;
    let mut config = SyncConfig {
        url: client.url().to_owned(),
        token: token.to_owned(),
        encrypt: args.encrypt,
        key_file: None,
        salt: None,
    };
    if let Some(old) = SyncConfig::load(&ctx.baton_home).ok().flatten() {
        config.salt = old.salt;
    }
    if args.key_file.is_some() {
        keyring(ctx, &mut config, args, true)?;
    } else if args.encrypt && config.salt.is_none() {
        config.salt = Some(hex::encode(crypto::new_salt()));
    }
    config.save(&ctx.baton_home)?;
    Ok((config, who))
}

/// baton's library, where pulled sessions go.
fn library(ctx: &Context) -> PathBuf {
    baton_native::layout::library::root(&ctx.baton_home)
}

/// A catalog session as something to push, `main` first (see
/// [`LocalSession::from_files`]).
fn local_session(ctx: &Context, row: &SessionRow, encrypt: bool) -> Option<LocalSession> {
    let meta = SessionMeta {
        agent: row.agent,
        cwd: row.cwd.clone(),
        title: row.title.clone(),
        first_prompt: row.first_prompt.clone(),
        started_at: Some(row.started_at.clone()),
        updated_at: Some(row.updated_at.clone()),
        forked_from: row.forked_from.clone(),
        encrypted: encrypt,
        archived: row.archived,
    };
    let files: Vec<PathBuf> = row.paths.iter().map(PathBuf::from).collect();
    LocalSession::from_files(&row.id, meta, &files, &library(ctx))
}

/// Every session in the catalog.
fn all_rows(catalog: &Catalog) -> Result<Vec<SessionRow>> {
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let page = catalog.list(&ListQuery {
            limit: 500,
            cursor,
            ..Default::default()
        })?;
        rows.extend(page.sessions);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(rows),
        }
    }
}

/// The rows to push for `ids` (each resolved by id or prefix), parents of
/// forks first; all rows when `ids` is empty.
pub fn select_rows(catalog: &Catalog, ids: &[String]) -> Result<Vec<SessionRow>> {
    let all = all_rows(catalog)?;
    if ids.is_empty() {
        let mut rows = all;
        // Parents before their forks: oldest first is a safe order.
        rows.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        return Ok(rows);
    }
    let by_id: BTreeMap<&str, &SessionRow> = all.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut out: Vec<SessionRow> = Vec::new();
    let mut seen = BTreeSet::new();
    for id in ids {
        let row = catalog.resolve(id)?;
        let mut chain = vec![row];
        while let Some(parent) = chain.last().and_then(|r| r.forked_from.clone()) {
            match by_id.get(parent.as_str()) {
                Some(p) if !chain.iter().any(|r| r.id == p.id) => chain.push((*p).clone()),
                _ => break,
            }
        }
        for row in chain.into_iter().rev() {
            if seen.insert(row.id.clone()) {
                out.push(row);
            }
        }
    }
    Ok(out)
}

fn progress_bar(len: usize, verb: &str) -> Option<ProgressBar> {
    if !output::progress_enabled() || len == 0 {
        return None;
    }
    let bar = ProgressBar::new(len as u64);
    let template = format!("{{spinner}} {verb} [{{bar:30}}] {{pos}}/{{len}} sessions {{msg}}");
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Some(bar)
}

/// One session that failed, with why.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// Session id.
    pub id: String,
    /// What went wrong and what to do.
    pub error: String,
}

/// Run `one` on each of `items` under a progress bar (`one` reports bytes
/// moved so far through its third argument), saving the sync state after
/// each; one failing item does not stop the others.
fn each_session<'a, T, R>(
    ctx: &Context,
    syncer: &mut Syncer<'a>,
    items: &[T],
    verb: &str,
    id_of: impl Fn(&T) -> &str,
    mut one: impl FnMut(&mut Syncer<'a>, &T, &mut (dyn FnMut(u64) + Send)) -> Result<R, ClientError>,
) -> Result<(Vec<R>, Vec<Failure>)> {
    let bar = progress_bar(items.len(), verb);
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for item in items {
        let id = id_of(item);
        if let Some(bar) = &bar {
            bar.set_message(id.to_owned());
        }
        let mut on_progress = |total: u64| {
            if let Some(bar) = &bar {
                bar.set_message(format!("{id} {}", indicatif::HumanBytes(total)));
            }
        };
        match one(syncer, item, &mut on_progress) {
            Ok(r) => done.push(r),
            Err(e) => failures.push(Failure {
                id: id.to_owned(),
                error: e.to_string(),
            }),
        }
        syncer.state.save(&ctx.baton_home)?;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok((done, failures))
}

/// Push `rows`; one failing session does not stop the others. With
/// `only_changed`, sessions whose files did not grow since the last
/// acknowledged push or pull are skipped without asking the server.
pub fn push_rows(
    ctx: &Context,
    remote: &Remote,
    rows: &[SessionRow],
    only_changed: bool,
) -> Result<(Vec<PushReport>, Vec<Failure>)> {
    let mut state = SyncState::load(&ctx.baton_home, &remote.config.url)?;
    let before = state.clone();
    let sessions: Vec<LocalSession> = rows
        .iter()
        .filter_map(|r| local_session(ctx, r, remote.encrypt))
        .filter(|s| !only_changed || !unchanged(&mut state, s))
        .collect();
    if state != before {
        state.save(&ctx.baton_home)?;
    }
    if !remote.redact {
        let paths = sessions
            .iter()
            .flat_map(|s| s.streams.iter().map(|(_, p)| p));
        let count = crate::secrets::count_in_files(&remote.redactor, paths);
        crate::secrets::warn_unredacted(count, &format!("{} session(s)", sessions.len()));
    }
    let mut syncer = Syncer::new(&remote.client, remote.keyring.as_deref(), state)
        .with_redactor(&remote.redactor, remote.redact)
        .with_spool_dir(&ctx.baton_home);
    if let Some(archive) = baton_store::Archive::open_existing(&ctx.baton_home)? {
        let archive = std::sync::Mutex::new(archive);
        syncer = syncer.with_archive(std::sync::Arc::new(
            move |path: &Path, out: &mut dyn std::io::Write| {
                let archive = archive.lock().unwrap_or_else(|e| e.into_inner());
                match archive.reader_ref(path, 0).map_err(std::io::Error::other)? {
                    Some(mut copy) => std::io::copy(&mut copy, out).map(|_| true),
                    None => Ok(false),
                }
            },
        ));
    }
    let home = &ctx.baton_home;
    each_session(
        ctx,
        &mut syncer,
        &sessions,
        "pushing",
        |s| &s.id,
        |syncer, session, progress| {
            let mut sent = 0u64;
            let mut on_progress = |n: u64| {
                sent += n;
                progress(sent);
            };
            let mut save = |s: &SyncState| {
                if let Err(e) = s.save(home) {
                    tracing::warn!("{e}");
                }
            };
            remote
                .rt
                .block_on(syncer.push_session(session, &mut on_progress, &mut save))
        },
    )
}

/// Agent-home files of local sessions, by the server session they push to.
fn sources_by_remote(
    ctx: &Context,
    catalog: &Catalog,
    state: &SyncState,
) -> Result<BTreeMap<String, Vec<(String, PathBuf)>>> {
    let library = library(ctx);
    let mut out = BTreeMap::new();
    for row in all_rows(catalog)? {
        if let Some(mut local) = local_session(ctx, &row, false) {
            local.streams.retain(|(_, p)| !p.starts_with(&library));
            out.insert(state.remote_id(&local.id).to_owned(), local.streams);
        }
    }
    Ok(out)
}

/// Pull `infos` (plus the parents of forks this machine lacks) into baton's
/// library; one failing session does not stop the others.
pub fn pull_infos(
    ctx: &Context,
    remote: &Remote,
    catalog: &Catalog,
    infos: Vec<SessionInfo>,
) -> Result<(Vec<PullReport>, Vec<Failure>)> {
    let state = SyncState::load(&ctx.baton_home, &remote.config.url)?;
    let sources = sources_by_remote(ctx, catalog, &state)?;
    let mut syncer = Syncer::new(&remote.client, remote.keyring.as_deref(), state)
        .with_redactor(&remote.redactor, remote.redact)
        .with_spool_dir(&ctx.baton_home);
    let rt = &remote.rt;
    // Forks need their parents: fetch any missing ancestor first.
    let have = |agent, id: &str| catalog.contains(agent, id).unwrap_or(false);
    let queue = rt.block_on(with_missing_parents(&remote.client, infos, have))?;
    let home = &ctx.baton_home;
    let place =
        |info: &SessionInfo, stream: &str, bytes: &[u8]| library_path(home, info, stream, bytes);
    each_session(
        ctx,
        &mut syncer,
        &queue,
        "pulling",
        |i| &i.id,
        |syncer, info, progress| {
            let srcs = sources.get(&info.id).cloned().unwrap_or_default();
            let report = rt.block_on(syncer.pull_session(info, &srcs, &place, progress))?;
            write_lineage(&syncer.state, info)?;
            Ok(report)
        },
    )
}

/// Next to the library copy of a diverged server session, record that it
/// continues `diverged_from` (`<file>.baton.json`), so the catalog lists it
/// as a fork of that session. Created once, atomically; an existing
/// sidecar is left alone.
fn write_lineage(state: &SyncState, info: &SessionInfo) -> Result<(), ClientError> {
    let Some(parent) = &info.diverged_from else {
        return Ok(());
    };
    let mirror = state
        .sessions
        .get(&info.id)
        .and_then(|s| s.streams.get(MAIN_STREAM))
        .and_then(|s| s.mirror.as_ref());
    let Some(file) = mirror.map(|t| &t.path) else {
        return Ok(());
    };
    let path = baton_store::sidecar_path(file);
    if path.exists() {
        return Ok(());
    }
    let sidecar = baton_store::Sidecar {
        forked_from: Some(parent.clone()),
        relation: Some("diverged".to_owned()),
    };
    let io = |source| ClientError::Io {
        path: path.clone(),
        source,
    };
    let mut bytes = serde_json::to_vec(&sidecar).map_err(|e| io(e.into()))?;
    bytes.push(b'\n');
    use baton_native::write::WriteError;
    match baton_native::write::write_new_file_mode(&path, &bytes, 0o600) {
        Ok(_) | Err(WriteError::Conflict { .. }) => Ok(()),
        Err(WriteError::CreateDir { source, .. } | WriteError::Io { source, .. }) => {
            Err(io(source))
        }
        Err(e @ WriteError::Locked { .. }) => Err(io(std::io::Error::other(e))),
    }
}

/// Print push reports as text.
pub fn print_pushes(reports: &[PushReport]) {
    let mut up_to_date = 0;
    for r in reports {
        match r.status {
            PushStatus::UpToDate => up_to_date += 1,
            PushStatus::Pushed => {
                println!("pushed {} ({})", r.id, indicatif::HumanBytes(r.bytes_sent))
            }
            PushStatus::Diverged => println!(
                "session {} diverged: your copy was kept as {} (the server's version stays {}; `baton pull` fetches it)",
                r.diverged_from.as_deref().unwrap_or(&r.id),
                r.remote_id,
                r.diverged_from.as_deref().unwrap_or(&r.id),
            ),
        }
        if !r.behind.is_empty() {
            println!(
                "session {}: the server has newer bytes than this machine; `baton pull {}` fetches them",
                r.id, r.remote_id
            );
        }
    }
    if up_to_date > 0 {
        println!("{up_to_date} session(s) already up to date on the server");
    }
}

/// Print pull reports as text.
pub fn print_pulls(reports: &[PullReport]) {
    let mut up_to_date = 0;
    for r in reports {
        if r.files.is_empty() {
            up_to_date += 1;
        }
        for f in &r.files {
            println!("pulled {} into {}", r.id, f.display());
        }
        if !r.local_diverged.is_empty() {
            println!(
                "session {} diverged: your local copy differs from the server's; the server's version is in baton's library, and `baton push {}` keeps yours as a new session",
                r.id, r.id
            );
        }
    }
    if up_to_date > 0 {
        println!("{up_to_date} session(s) already up to date here");
    }
}

/// Print failures on stderr; an error when there were any.
pub fn finish(failures: &[Failure]) -> Result<()> {
    for f in failures {
        eprintln!("error: session {}: {}", f.id, f.error);
    }
    if !failures.is_empty() {
        bail!(
            "{} session(s) could not be synced (see above)",
            failures.len()
        );
    }
    Ok(())
}

/// The server fallback of `baton resume`: when `id_or_prefix` is not on this
/// machine but on the logged-in server, pull it (and the parents of a fork)
/// into baton's library. Returns false when not logged in or the server does
/// not have it either.
pub fn fetch_for_resume(ctx: &Context, id_or_prefix: &str) -> Result<bool> {
    if SyncConfig::load(&ctx.baton_home)?.is_none() {
        return Ok(false);
    }
    let remote = connect(ctx, &CryptoArgs::default())?;
    let rt = &remote.rt;
    let info = match rt.block_on(remote.client.session(id_or_prefix))? {
        Some(info) => info,
        None => {
            let all = rt.block_on(remote.client.all_sessions())?;
            let mut matches = all.into_iter().filter(|s| s.id.starts_with(id_or_prefix));
            match (matches.next(), matches.next()) {
                (Some(one), None) => one,
                (Some(_), Some(_)) => bail!(
                    "`{id_or_prefix}` matches several sessions on {}; give more of the id",
                    remote.config.url
                ),
                _ => return Ok(false),
            }
        }
    };
    let catalog = crate::catalog::open_fresh(ctx)?;
    eprintln!("fetching session {} from {}", info.id, remote.config.url);
    let (_, failures) = pull_infos(ctx, &remote, &catalog, vec![info])?;
    finish(&failures)?;
    crate::catalog::open_fresh(ctx)?;
    Ok(true)
}
