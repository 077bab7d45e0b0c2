//! Opening and refreshing the catalog for commands that read sessions.

use crate::context::Context;
use crate::output;
use anyhow::{Context as _, Result};
use baton_native::Agent;
use baton_native::envelope::{
    EnvelopeMeta, WriteBytes, session_parts, write_envelope as write_envelope_parts,
};
use baton_native::files::is_compressed;
use baton_native::layout::{home_of, library};
use baton_native::rehydrate::{SessionLines, SessionOnDisk};
use baton_store::{Catalog, Issue, Progress, ProgressPhase, RefreshReport, Roots, SessionRow};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;

/// The roots a refresh reads: the agent homes of `ctx` plus baton's library
/// (where native files may carry a `<file>.baton.json` sidecar).
pub fn roots(ctx: &Context) -> Roots {
    let mut roots = Roots {
        codex_homes: ctx.codex_homes.clone(),
        claude_dirs: ctx.claude_dirs.clone(),
        library: vec![library::root(&ctx.baton_home)],
    };
    roots
        .codex_homes
        .push(library::agent_home(&ctx.baton_home, Agent::Codex));
    roots
        .claude_dirs
        .push(library::agent_home(&ctx.baton_home, Agent::Claude));
    roots
}

/// Open the catalog under `$BATON_HOME` without refreshing it. When
/// `BATON_HOME` cannot be written but holds a catalog, that catalog is
/// opened read-only, as it is, with a warning.
pub fn open(ctx: &Context) -> Result<Catalog> {
    Catalog::open(&ctx.baton_home).or_else(|e| {
        if let Ok(catalog) = Catalog::open_read_only(&ctx.baton_home) {
            eprintln!(
                "warning: cannot write {}: answering from its catalog as it is, without looking for new sessions",
                ctx.baton_home.display()
            );
            return Ok(catalog);
        }
        Err(e)
    }).map_err(|e| {
        let hint = match e {
            baton_store::Error::Io { .. } => " (set BATON_HOME to a writable directory)",
            _ => "",
        };
        anyhow::Error::new(e).context(format!(
            "cannot open the catalog in {}{hint}",
            ctx.baton_home.display()
        ))
    })
}

/// Check the agent homes of `ctx` before reading them: a named home that
/// is missing or not a directory is a warning naming it; none there at all
/// is an error, unless sessions can come from elsewhere: baton's library
/// (imported or pulled) or a sync server this machine is logged in to (a
/// machine where the agents have not run yet).
fn check_homes(ctx: &Context) -> Result<()> {
    let homes = ctx.codex_homes.iter().chain(&ctx.claude_dirs);
    let mut problems = Vec::new();
    for home in homes.clone() {
        let problem = match std::fs::metadata(home) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => "is not a directory",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
            Err(_) => "cannot be read",
        };
        problems.push((home, problem));
    }
    let library = library::root(&ctx.baton_home);
    let logged_in = ctx
        .baton_home
        .join(baton_sync::state::CONFIG_FILE)
        .is_file();
    if problems.len() == homes.count() && !library.is_dir() && !logged_in {
        let list: Vec<String> = problems
            .iter()
            .map(|(home, problem)| format!("{} {problem}", home.display()))
            .collect();
        anyhow::bail!(
            "no agent home to read: {}; name yours with --codex-home DIR / --claude-dir DIR (or CODEX_HOME / CLAUDE_CONFIG_DIR)",
            list.join(", ")
        );
    }
    for (home, problem) in problems {
        if !ctx.default_homes.contains(home) {
            eprintln!(
                "warning: {} {problem}; its sessions are not read",
                home.display()
            );
        }
    }
    Ok(())
}

/// Refresh `catalog` from the roots of `ctx`, drawing a progress bar when
/// stderr is a terminal and the refresh has real work to do.
pub fn refresh(ctx: &Context, catalog: &mut Catalog) -> Result<RefreshReport> {
    check_homes(ctx)?;
    let bar = output::progress_enabled().then(|| {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} indexing {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let on_progress = |p: Progress| {
        let Some(bar) = &bar else { return };
        if p.phase == ProgressPhase::Ingest {
            if bar.is_hidden() && p.files_total > 20 {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.set_length(p.bytes_total.max(p.bytes_done));
            bar.set_position(p.bytes_done);
            bar.set_message(format!("{}/{} files", p.files_done, p.files_total));
        }
    };
    let mut report = catalog.refresh(&roots(ctx), &on_progress);
    if let Err(e) = &report
        && e.is_corrupt()
    {
        rebuild(catalog, e)?;
        report = catalog.refresh(&roots(ctx), &on_progress);
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    report.context("cannot refresh the catalog")
}

/// Whether `err` comes from a damaged catalog file, which
/// [`rebuild`] replaces.
pub fn is_corrupt(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<baton_store::Error>()
            .is_some_and(baton_store::Error::is_corrupt)
    })
}

/// Replace the damaged `catalog` (it is a cache) by an empty one, warning
/// with `why`; the next refresh fills it from the native files.
pub fn rebuild(catalog: &mut Catalog, why: &dyn std::fmt::Display) -> Result<()> {
    eprintln!(
        "warning: {}: {why}; rebuilding the catalog",
        catalog.path().display()
    );
    catalog
        .rebuild()
        .with_context(|| format!("cannot rebuild {}", catalog.path().display()))
}

/// Print refresh issues as warnings on stderr (at most `max`, then a count).
pub fn warn_issues(report: &RefreshReport, max: usize) {
    print_issues(&report.issues.iter().collect::<Vec<_>>(), max);
}

fn print_issues(issues: &[&Issue], max: usize) {
    for issue in issues.iter().take(max) {
        eprintln!("warning: {issue}");
    }
    if issues.len() > max {
        eprintln!(
            "warning: ... and {} more skipped line(s) or file(s)",
            issues.len() - max
        );
    }
}

/// File in `BATON_HOME` listing the file and directory warnings already
/// printed, one a line.
const WARNED_FILE: &str = "warned-files.txt";

/// [`warn_issues`], leaving out the file and directory issues (a symlink or
/// directory named like a session, an unreadable directory) printed by an
/// earlier command while they stay the same. (A bad line is reported once
/// anyway: the next refresh does not re-read those bytes.)
pub fn warn_new_issues(ctx: &Context, report: &RefreshReport, max: usize) {
    let path = ctx.baton_home.join(WARNED_FILE);
    let warned = std::fs::read_to_string(&path).unwrap_or_default();
    let warned: std::collections::HashSet<&str> = warned.lines().collect();
    let of_files: std::collections::BTreeSet<String> = report
        .issues
        .iter()
        .filter(|i| i.line.is_none())
        .map(ToString::to_string)
        .filter(|text| !text.contains('\n'))
        .collect();
    let new: Vec<&Issue> = report
        .issues
        .iter()
        .filter(|i| i.line.is_some() || !warned.contains(i.to_string().as_str()))
        .collect();
    print_issues(&new, max);
    if of_files.len() != warned.len() || of_files.iter().any(|t| !warned.contains(t.as_str())) {
        let text: String = of_files.iter().map(|t| format!("{t}\n")).collect();
        // Best effort: failing to remember only means warning again.
        let _ = baton_native::write::replace_file_mode(&path, text.as_bytes(), 0o600);
    }
}

/// Open and refresh the catalog, printing what was skipped as warnings.
/// Each issue is reported once (see [`warn_new_issues`]).
/// With `--no-refresh`, or while a caught-up watcher keeps the catalog
/// current ([`crate::watcher::keeps_current`]), nothing is walked: the
/// catalog is only limited to the roots of `ctx`.
pub fn open_fresh(ctx: &Context) -> Result<Catalog> {
    let mut catalog = open(ctx)?;
    if ctx.no_refresh || catalog.is_read_only() || crate::watcher::keeps_current(ctx) {
        catalog
            .set_scope(&roots(ctx))
            .context("cannot read the catalog")?;
        return Ok(catalog);
    }
    let report = refresh(ctx, &mut catalog)?;
    warn_new_issues(ctx, &report, 20);
    Ok(catalog)
}

/// Why a filtered query found nothing, for a message ending in it: which of
/// the `filters` (their option text, e.g. `--agent codex`) excludes
/// everything by itself, else that they do together; empty when there are
/// no filters or nothing matches even without them. `matches(on)` runs the query
/// with only the filters whose flag in `on` is set and says whether it
/// found anything.
pub fn empty_note(filters: &[String], matches: impl Fn(&[bool]) -> Result<bool>) -> Result<String> {
    if filters.is_empty() || !matches(&vec![false; filters.len()])? {
        return Ok(String::new());
    }
    for (i, filter) in filters.iter().enumerate() {
        let only: Vec<bool> = (0..filters.len()).map(|j| j == i).collect();
        if !matches(&only)? {
            return Ok(format!(": `{filter}` excludes everything"));
        }
    }
    let all: Vec<String> = filters.iter().map(|f| format!("`{f}`")).collect();
    Ok(format!(
        ": each of {} matches something, but not together",
        all.join(", ")
    ))
}

/// Parse `codex`/`claude` for `--agent`.
pub fn parse_agent(s: &str) -> Result<baton_native::Agent, String> {
    s.parse()
}

/// Write the envelope of a catalogued session (`baton export --format
/// envelope`) to `out`: its native file plus every ancestor its history
/// references, found in the homes the catalog found them in, streamed from
/// disk (never held whole); with `redactor`, every file and the title and
/// first prompt have their secrets replaced by placeholders.
pub fn write_envelope(
    cat: &Catalog,
    row: &SessionRow,
    redactor: Option<&baton_secrets::Redactor>,
    out: &mut dyn Write,
) -> Result<()> {
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
    let session = SessionOnDisk::locate(row.agent, &path, &roots)?;
    let mut meta = EnvelopeMeta {
        cwd: row.cwd.clone(),
        started_at: Some(row.started_at.clone()),
        updated_at: Some(row.updated_at.clone()),
        title: row.title.clone(),
        first_prompt: row.first_prompt.clone(),
        forked_from: row.forked_from.clone(),
    };
    let mut extras = session.extras()?.into_owned();
    if let Some(r) = redactor {
        for extra in &mut extras {
            extra.bytes = r.redact(&extra.bytes)?.bytes;
        }
        for field in [&mut meta.cwd, &mut meta.title, &mut meta.first_prompt] {
            if let Some(v) = field.as_mut() {
                *v = r.redact_text(v)?;
            }
        }
    }
    let lineage = session.files.iter().map(|file| {
        let write: WriteBytes<'_> = Box::new(move |w: &mut dyn Write| {
            let path = &file.path;
            let mut native = baton_native::files::open_native_path(path, is_compressed(path), 0)?;
            match redactor {
                Some(r) => {
                    let mut lines = crate::secrets::RedactedLines::new(r, w);
                    std::io::copy(&mut native, &mut lines)?;
                    lines.finish().map_err(std::io::Error::other)
                }
                None => std::io::copy(&mut native, w).map(drop),
            }
        });
        (file.id.clone(), file.name.clone(), write)
    });
    let mut parts = session_parts(&session.id, lineage.collect(), &extras);
    write_envelope_parts(session.agent, &session.id, &meta, &mut parts, out)?;
    Ok(())
}

/// File name of baton's settings inside `BATON_HOME`.
pub const CONFIG_FILE: &str = "config.toml";

/// Whether `baton index` archives: `archive` in `$BATON_HOME/config.toml`,
/// on when the file or the key is missing.
pub fn archive_enabled(ctx: &Context) -> Result<bool> {
    let path = ctx.baton_home.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let config: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{} is not valid TOML; fix or remove it", path.display()))?;
    match config.get("archive") {
        None => Ok(true),
        Some(toml::Value::Boolean(on)) => Ok(*on),
        Some(other) => anyhow::bail!(
            "{}: `archive` must be true or false, not {other}",
            path.display()
        ),
    }
}
