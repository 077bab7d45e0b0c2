//! The resident file watcher that keeps the catalog current (`baton watch`,
//! and inside `baton serve`), and the cheap check by which other commands
//! trust the catalog instead of walking the agent homes.
//!
//! A watcher holds an exclusive `flock` on `BATON_HOME/watcher.lock` for as
//! long as it runs (the kernel drops it when the process dies), and keeps
//! `BATON_HOME/watcher.json` saying which roots it watches and whether the
//! catalog holds every change it has been told of. It refreshes the catalog
//! once at start, then after each burst of inotify events on the roots (and
//! fully again when the kernel's event queue overflowed). A command trusts
//! the catalog only while the lock is held, the state says caught up, and
//! every root the command reads is one the watcher watches.

use crate::catalog;
use crate::context::Context;
use anyhow::{Context as _, Result, bail};
use baton_store::{Catalog, RefreshReport};
use notify::{EventKind, RecursiveMode, Watcher as _};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Lock file a running watcher holds (exclusive `flock`).
const LOCK_FILE: &str = "watcher.lock";
/// State file of the running watcher (see [`State`]).
const STATE_FILE: &str = "watcher.json";
/// A burst of events ends after this long without a new one.
const QUIET: Duration = Duration::from_millis(25);
/// A burst is refreshed after at most this long, even if events keep coming.
const MAX_BURST: Duration = Duration::from_millis(250);
/// How often roots that did not exist yet are looked for again.
const POLL_MISSING: Duration = Duration::from_secs(2);

/// What `watcher.json` says.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// Process id of the watcher.
    pid: u32,
    /// Every root it keeps current (agent homes and baton's library homes).
    roots: Vec<PathBuf>,
    /// Whether the catalog holds every change the watcher has seen.
    caught_up: bool,
}

/// Whether a live, caught-up watcher keeps the catalog current for every
/// root `ctx` reads: then a command may skip the walk. Costs one open, one
/// `flock` and one small read in `BATON_HOME` (repeated for up to
/// [`CATCH_UP_WAIT`] while the watcher is busy); never touches an agent home.
pub fn keeps_current(ctx: &Context) -> bool {
    let Ok(lock) = File::open(ctx.baton_home.join(LOCK_FILE)) else {
        return false;
    };
    match lock.try_lock_shared() {
        Err(TryLockError::WouldBlock) => {}
        // Nobody holds it (or flock is unsupported): no live watcher.
        Ok(()) | Err(TryLockError::Error(_)) => return false,
    }
    // A live watcher busy with a change is waited for (briefly): it
    // catches up faster than a walk of every home would.
    let deadline = std::time::Instant::now() + CATCH_UP_WAIT;
    loop {
        let Some(state) = read_state(&ctx.baton_home) else {
            return false;
        };
        if !roots_of(ctx).iter().all(|r| state.roots.contains(r)) {
            return false;
        }
        if state.caught_up {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// How long a command waits for a live watcher to catch up before walking
/// the homes itself.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The state file, if it is there and readable.
fn read_state(baton_home: &Path) -> Option<State> {
    let bytes = std::fs::read(baton_home.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every root a refresh for `ctx` reads, as the watcher records them.
fn roots_of(ctx: &Context) -> Vec<PathBuf> {
    let roots = catalog::roots(ctx);
    roots
        .codex_homes
        .into_iter()
        .chain(roots.claude_dirs)
        .collect()
}

/// The running watcher of one `BATON_HOME`: holds its lock.
struct Running {
    _lock: File,
    baton_home: PathBuf,
    roots: Vec<PathBuf>,
    caught_up: Option<bool>,
}

impl Running {
    /// Take the lock of `ctx`'s `BATON_HOME`; an error names the other
    /// watcher's pid when one runs.
    fn start(ctx: &Context) -> Result<Running> {
        baton_native::write::ensure_dir(&ctx.baton_home)?;
        let path = ctx.baton_home.join(LOCK_FILE);
        let lock =
            baton_native::write::open_owned(&path, baton_native::write::Owned::ReadWrite, 0o600)
                .with_context(|| format!("cannot open {}", path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = read_state(&ctx.baton_home)
                    .map(|s| format!(" (pid {})", s.pid))
                    .unwrap_or_default();
                bail!(
                    "a baton watcher already keeps {} current{pid}; stop it first, or just use baton: it trusts that watcher",
                    ctx.baton_home.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(Running {
            _lock: lock,
            baton_home: ctx.baton_home.clone(),
            roots: roots_of(ctx),
            caught_up: None,
        })
    }

    /// Record whether the catalog is caught up (written only on a change).
    fn set_caught_up(&mut self, caught_up: bool) -> Result<()> {
        if self.caught_up == Some(caught_up) {
            return Ok(());
        }
        let state = State {
            pid: std::process::id(),
            roots: self.roots.clone(),
            caught_up,
        };
        let path = self.baton_home.join(STATE_FILE);
        baton_native::write::replace_file_mode(&path, &serde_json::to_vec(&state)?, 0o600)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.caught_up = Some(caught_up);
        Ok(())
    }
}

/// Whether an event may change what the catalog holds: a native file,
/// sidecar or index file, a directory appearing, vanishing or moving, or an
/// overflowed event queue. Reads and opens never do.
fn matters(event: &notify::Event) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    if event.need_rescan() || event.paths.is_empty() {
        return true;
    }
    if matches!(
        event.kind,
        EventKind::Create(notify::event::CreateKind::Folder)
            | EventKind::Remove(notify::event::RemoveKind::Folder)
            | EventKind::Modify(notify::event::ModifyKind::Name(_))
    ) {
        return true;
    }
    event.paths.iter().any(|p| {
        p.extension()
            .is_some_and(|e| e == "jsonl" || e == "zst" || e == "json")
    })
}

/// Watch the roots of `ctx` and keep the catalog current until the process
/// is stopped; `after_refresh` runs after each refresh that changed something.
pub fn run(ctx: &Context, mut after_refresh: impl FnMut(&RefreshReport)) -> Result<()> {
    let mut running = Running::start(ctx)?;
    let (tx, rx) = channel();
    let mut watcher =
        notify::recommended_watcher(tx).context("cannot start watching files (inotify)")?;
    let mut watched: HashSet<PathBuf> = HashSet::new();
    let mut catalog = catalog::open(ctx)?;
    let mut pending = true;
    let mut looked = Instant::now() - POLL_MISSING;
    loop {
        if looked.elapsed() >= POLL_MISSING {
            for root in &running.roots {
                if !watched.contains(root) && root.is_dir() {
                    watcher
                        .watch(root, RecursiveMode::Recursive)
                        .with_context(|| {
                            format!(
                                "cannot watch {} (raise fs.inotify.max_user_watches?)",
                                root.display()
                            )
                        })?;
                    watched.insert(root.clone());
                    pending = true;
                }
            }
            looked = Instant::now();
        }
        if pending {
            running.set_caught_up(false)?;
            refresh(ctx, &mut catalog, &mut after_refresh);
            running.set_caught_up(true)?;
            pending = false;
        }
        match rx.recv_timeout(POLL_MISSING) {
            Ok(event) => {
                if event.as_ref().map_or(true, matters) {
                    running.set_caught_up(false)?;
                    pending = true;
                    drain_burst(&rx);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("the file watcher stopped"),
        }
    }
}

/// Wait for a burst of events to end ([`QUIET`], at most [`MAX_BURST`]).
fn drain_burst<T>(rx: &std::sync::mpsc::Receiver<T>) {
    let start = Instant::now();
    while start.elapsed() < MAX_BURST && rx.recv_timeout(QUIET).is_ok() {}
}

/// One refresh; problems are warnings (a watcher keeps running).
fn refresh(ctx: &Context, catalog: &mut Catalog, after: &mut impl FnMut(&RefreshReport)) {
    match catalog::refresh(ctx, catalog) {
        Ok(report) => {
            catalog::warn_new_issues(ctx, &report, 20);
            if report.files_new + report.files_appended + report.files_reread + report.files_removed
                > 0
            {
                after(&report);
            }
        }
        Err(e) => eprintln!("warning: {e:#}"),
    }
}

/// File name of the systemd user unit `baton watch --install` writes.
pub const UNIT_NAME: &str = "baton-watch.service";

/// Write a systemd user unit running `baton watch` over the homes of `ctx`
/// into `config_dir/systemd/user/`; its path.
pub fn install_unit(ctx: &Context, config_dir: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the baton executable")?;
    let mut exec = vec![quote(&exe.display()), "watch".to_string()];
    for home in &ctx.codex_homes {
        exec.extend(["--codex-home".to_string(), quote(&home.display())]);
    }
    for dir in &ctx.claude_dirs {
        exec.extend(["--claude-dir".to_string(), quote(&dir.display())]);
    }
    let unit = format!(
        "[Unit]\n\
         Description=baton: keep the session catalog current\n\n\
         [Service]\n\
         Environment={}\n\
         ExecStart={}\n\
         Restart=on-failure\n\n\
         [Install]\n\
         WantedBy=default.target\n",
        quote(&format!("BATON_HOME={}", ctx.baton_home.display())),
        exec.join(" ")
    );
    let dir = config_dir.join("systemd").join("user");
    baton_native::write::ensure_dir(&dir)?;
    let path = dir.join(UNIT_NAME);
    baton_native::write::replace_file(&path, unit.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A word of a systemd unit line, quoted (`"`, `\`, `%` and `$` escaped).
fn quote(text: &dyn std::fmt::Display) -> String {
    let text = text.to_string();
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}
