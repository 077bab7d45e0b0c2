//! `baton doctor`: find sessions their own agent can no longer list or
//! resume, say why, and with `--fix` make each resumable again by writing a
//! baton-made copy where the agent finds it (never by changing the agent's
//! file).

use crate::context::Context;
use crate::locate::{agent_home, load, locate};
use crate::place::write_fork;
use crate::{catalog, output};
use anyhow::Result;
use baton_native::Agent;
use baton_native::fork::Cut;
use baton_native::layout::home_of;
use baton_native::rehydrate::{PathMap, SessionLines};
use baton_store::SessionRow;
use serde::Serialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Options of `baton doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Make each problem session resumable again: write a copy (new id)
    /// where its agent finds it and print the command that resumes it.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: a moved or renamed directory; cwd fields equal to OLD or
    /// below it become NEW in the copy (repeatable; the first match wins).
    #[arg(long = "map-path", value_name = "OLD=NEW")]
    pub map_path: Vec<PathMap>,
    /// Print `{"problems":[{"id","agent","kind","why","fixed"}]}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What is wrong with a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    /// Codex session recorded under another `model_provider`.
    Provider,
    /// Its working directory (for Claude: its project directory) is gone.
    CwdGone,
    /// A Codex fork whose parent's file is gone.
    ParentGone,
}

/// A fix that was applied (one per session, covering all its problems).
#[derive(Debug, Clone, Serialize)]
struct Fixed {
    /// The id to resume (a new one for a copy).
    id: String,
    /// The file baton wrote or restored.
    path: PathBuf,
    /// The agent's own command that resumes it.
    resume: String,
}

#[derive(Debug, Serialize)]
struct Problem {
    id: String,
    agent: Agent,
    kind: Kind,
    why: String,
    /// What `--fix` did (`null` without `--fix` or when it could not fix it).
    fixed: Option<Fixed>,
    /// Why `--fix` could not fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    unfixed: Option<String>,
}

/// `model_provider` in the first line (`session_meta`) of a Codex rollout.
fn recorded_provider(path: &Path) -> Option<String> {
    let mut line = Vec::new();
    std::io::BufReader::new(std::fs::File::open(path).ok()?)
        .read_until(b'\n', &mut line)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&line).ok()?;
    v.pointer("/payload/model_provider")?
        .as_str()
        .map(str::to_owned)
}

/// The provider Codex uses now under `codex_home` (`openai` when unset).
fn current_provider(codex_home: &Path) -> Option<String> {
    let target = baton_native::codex::config::resolve_target(codex_home, &[]).ok()?;
    Some(target.provider.unwrap_or_else(|| "openai".to_owned()))
}

/// The problems of one session.
fn diagnose(row: &SessionRow, rows: &[SessionRow]) -> Vec<(Kind, String)> {
    let mut found = Vec::new();
    let main = row.paths.first().map(PathBuf::from);
    if row.agent == Agent::Codex
        && let Some(main) = &main
        && let Some(home) = home_of(Agent::Codex, main)
        && let (Some(recorded), Some(current)) = (recorded_provider(main), current_provider(&home))
        && recorded != current
    {
        found.push((
            Kind::Provider,
            format!(
                "recorded under model_provider `{recorded}`, but {} is configured for `{current}`: `codex resume` does not list it",
                home.join("config.toml").display()
            ),
        ));
    }
    if let Some(cwd) = row.cwd.as_deref().filter(|c| !Path::new(c).is_dir()) {
        let why = match row.agent {
            Agent::Claude => format!(
                "its project directory {cwd} is gone (moved or renamed?): Claude Code looks for sessions under the project of the directory it starts in"
            ),
            Agent::Codex => format!("its working directory {cwd} is gone (moved or renamed?)"),
        };
        found.push((Kind::CwdGone, why));
    }
    if row.agent == Agent::Codex
        && let Some(parent) = &row.forked_from
    {
        let parent_row = rows.iter().find(|r| &r.id == parent);
        if parent_row.is_none_or(|p| p.archived) {
            let whereabouts = if parent_row.is_some() {
                "only in baton's archive"
            } else {
                "nowhere on this machine"
            };
            found.push((
                Kind::ParentGone,
                format!(
                    "forked from {parent}, whose file is {whereabouts}: Codex needs the parent's bytes to resume the fork"
                ),
            ));
        }
    }
    found
}

/// The agent's own command that resumes session `id` (Claude: from its
/// project directory `cwd`).
fn resume_command(agent: Agent, id: &str, cwd: Option<&str>) -> String {
    match (agent, cwd) {
        (Agent::Codex, _) => format!("codex resume {id}"),
        (Agent::Claude, Some(cwd)) => format!("cd {cwd} && claude --resume {id}"),
        (Agent::Claude, None) => format!("claude --resume {id}"),
    }
}

/// What `--fix` did for one session: per problem kind, the fix or why not.
type Fixes = Vec<(Kind, Result<Fixed, String>)>;

/// Make `row` resumable again despite `kinds`. Finding it restores an
/// archived parent (the `parent_gone` fix); the other problems share one
/// copy (new id) that names the current Codex provider and moves the
/// directory by `maps`.
fn fix(ctx: &Context, row: &SessionRow, kinds: &[Kind], maps: &[PathMap]) -> Fixes {
    let fixed = locate(ctx, &row.id)
        .and_then(|located| Ok((load(ctx, &located)?, located)))
        .map_err(|e| format!("{e:#}"));
    let needs_copy = kinds.iter().any(|k| *k != Kind::ParentGone);
    let copy = match &fixed {
        Ok((session, located)) if needs_copy => {
            fix_by_copy(ctx, row, session, &located.path, kinds, maps)
        }
        Ok(_) => Err("no copy needed".to_owned()),
        Err(e) => Err(e.clone()),
    };
    kinds
        .iter()
        .map(|kind| {
            let result = match kind {
                Kind::ParentGone => {
                    fixed
                        .as_ref()
                        .map_err(Clone::clone)
                        .map(|(s, located)| Fixed {
                            id: s.id.clone(),
                            path: located.path.clone(),
                            resume: resume_command(row.agent, &s.id, row.cwd.as_deref()),
                        })
                }
                _ => copy.clone(),
            };
            (*kind, result)
        })
        .collect()
}

/// The copy that fixes the `provider` and `cwd_gone` problems of `kinds`.
fn fix_by_copy(
    ctx: &Context,
    row: &SessionRow,
    original: &baton_native::rehydrate::NativeSession,
    located_path: &Path,
    kinds: &[Kind],
    maps: &[PathMap],
) -> Result<Fixed, String> {
    let mut session = original.clone();
    if kinds.contains(&Kind::Provider) {
        let home = home_of(Agent::Codex, located_path).ok_or("its file is not in a Codex home")?;
        let provider = current_provider(&home).ok_or("cannot read Codex's config")?;
        session = session.with_codex_provider(&provider);
    }
    if kinds.contains(&Kind::CwdGone) {
        let moved = session.map_paths(maps);
        if moved == session {
            return Err("pass --map-path OLD=NEW to say where its directory went".into());
        }
        session = moved;
    }
    if session == *original {
        return Err("nothing baton can change fixes this".into());
    }
    let home = agent_home(ctx, row.agent).map_err(|e| format!("{e:#}"))?;
    let cwd = session.cwd();
    let folder = (row.agent == Agent::Claude)
        .then(|| {
            cwd.as_deref()
                .map(baton_native::layout::claude::project_slug)
        })
        .flatten();
    let (forked, path) = write_fork(&session, Cut::DropLast(0), &home, folder.as_deref())
        .map_err(|e| format!("{e:#}"))?;
    Ok(Fixed {
        resume: resume_command(row.agent, &forked.id, cwd.as_deref()),
        id: forked.id,
        path,
    })
}

/// Run `baton doctor`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let cat = catalog::open_fresh(ctx)?;
    let rows = crate::remote::select_rows(&cat, &[])?;
    drop(cat);
    let library = baton_native::layout::library::root(&ctx.baton_home);
    let mut problems = Vec::new();
    for row in rows.iter().filter(|r| !r.archived) {
        if row
            .paths
            .first()
            .is_none_or(|p| Path::new(p).starts_with(&library))
        {
            continue;
        }
        let found = diagnose(row, &rows);
        if found.is_empty() {
            continue;
        }
        let kinds: Vec<Kind> = found.iter().map(|(k, _)| *k).collect();
        let fixes = if args.fix {
            fix(ctx, row, &kinds, &args.map_path)
        } else {
            Vec::new()
        };
        for (kind, why) in found {
            let (fixed, unfixed) = match fixes.iter().find(|(k, _)| *k == kind) {
                Some((_, Ok(f))) => (Some(f.clone()), None),
                Some((_, Err(e))) => (None, Some(e.clone())),
                None => (None, None),
            };
            problems.push(Problem {
                id: row.id.clone(),
                agent: row.agent,
                kind,
                why,
                fixed,
                unfixed,
            });
        }
    }
    if args.json {
        return output::print_json(&serde_json::json!({ "problems": problems }));
    }
    if problems.is_empty() {
        println!("every session can be listed and resumed by its agent");
    }
    for p in &problems {
        println!("{} {}: {}", p.agent.as_str(), p.id, p.why);
        if let Some(f) = &p.fixed {
            println!(
                "  fixed: wrote {} (session {}); resume it with: {}",
                f.path.display(),
                f.id,
                f.resume
            );
        }
        if let Some(why) = &p.unfixed {
            println!("  not fixed: {why}");
        }
    }
    if !problems.is_empty() && !args.fix {
        println!(
            "run `baton doctor --fix` (with --map-path OLD=NEW for moved directories) to make them resumable"
        );
    }
    Ok(())
}
