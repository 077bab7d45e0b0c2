//! `baton search`: full-text search over prompts, replies and tool input/output.

use crate::args::{absolute_dir, parse_limit};
use crate::context::Context;
use crate::output::UsageError;
use crate::output::{one_line, short_time, write_stdout};
use crate::{catalog, output};
use anyhow::Result;
use baton_native::Agent;
use baton_store::{Hit, SearchQuery};
use serde_json::json;
use std::fmt::Write as _;

/// Options of `baton search`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to find (all must match; `word*` matches a prefix). Punctuation is literal.
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// Only sessions of this agent (`codex` or `claude`).
    #[arg(long, value_parser = catalog::parse_agent)]
    pub agent: Option<Agent>,
    /// Only sessions started in this directory or below it.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::path::PathBuf>,
    /// Maximum number of hits (at least 1).
    #[arg(long, default_value_t = 20, value_parser = parse_limit)]
    pub limit: usize,
    /// Most hits shown of one session (at least 1); the rest are counted.
    #[arg(long, default_value_t = 3, value_parser = parse_limit)]
    pub per_session: usize,
    /// Print JSON (see README "JSON output").
    #[arg(long)]
    pub json: bool,
}

/// Run `baton search`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let query = SearchQuery {
        query: args.query.join(" "),
        agent: args.agent,
        cwd: args.cwd.as_deref().map(absolute_dir),
        limit: args.limit,
        per_session: args.per_session,
    };
    if baton_store::fts_query(&query.query).is_none() {
        return Err(UsageError(format!(
            "nothing to search for in `{}`: give at least one word with a letter or digit",
            query.query
        ))
        .into());
    }
    let cat = catalog::open_fresh(ctx)?;
    let found = cat.search_grouped(&query)?;
    if args.json {
        let hits: Vec<_> = found
            .hits
            .iter()
            .map(|h| {
                json!({
                    "session_id": h.session_id,
                    "agent": h.agent,
                    "role": h.role,
                    "kind": h.kind,
                    "snippet": h.snippet,
                    "timestamp": h.timestamp,
                    "title": h.title,
                    "cwd": h.cwd,
                    "more_in_session": h.more_in_session,
                })
            })
            .collect();
        return output::print_json(&json!({
            "hits": hits,
            "sessions_left_out": found.sessions_left_out,
            "sessions_left_out_exact": found.sessions_left_out_exact,
        }));
    }
    if found.hits.is_empty() {
        let mut filters = Vec::new();
        if let Some(agent) = query.agent {
            filters.push(format!("--agent {agent}"));
        }
        if let Some(cwd) = &query.cwd {
            filters.push(format!("--cwd {cwd}"));
        }
        let note = catalog::empty_note(&filters, |on| {
            let mut flags = on.iter().copied();
            let probe = SearchQuery {
                agent: query.agent.filter(|_| flags.next().unwrap_or(false)),
                cwd: query.cwd.clone().filter(|_| flags.next().unwrap_or(false)),
                limit: 1,
                per_session: 0,
                ..query.clone()
            };
            Ok(!cat.search(&probe)?.is_empty())
        })?;
        eprintln!("no matches for `{}`{note}", query.query);
        return Ok(());
    }
    write_stdout(&human(&found.hits)?)?;
    if found.sessions_left_out > 0 {
        eprintln!(
            "more results: {}{} more session(s) match; raise --limit (now {})",
            found.sessions_left_out,
            if found.sessions_left_out_exact {
                ""
            } else {
                "+"
            },
            args.limit
        );
    }
    Ok(())
}

/// The human listing of `hits`: one heading per session (id, agent, title,
/// cwd) in the order of its best hit, its hits below, then a count of the
/// rest of its hits.
fn human(hits: &[Hit]) -> Result<String> {
    let color = output::color_enabled();
    let safe = output::terminal_safe;
    let mut order: Vec<(&str, Agent)> = Vec::new();
    for h in hits {
        if !order.contains(&(h.session_id.as_str(), h.agent)) {
            order.push((h.session_id.as_str(), h.agent));
        }
    }
    let mut buf = String::new();
    for (id, agent) in order {
        let mut of_session = hits
            .iter()
            .filter(|h| h.session_id == id && h.agent == agent)
            .peekable();
        let Some(first) = of_session.peek().copied() else {
            continue;
        };
        let title = one_line(&safe(first.title.as_deref().unwrap_or_default()), 60);
        let cwd = safe(first.cwd.as_deref().unwrap_or_default()).replace(['\n', '\t'], " ");
        let head = format!("{}  {agent}  {title}", safe(id));
        if color {
            writeln!(buf, "\x1b[1m{head}\x1b[0m  \x1b[2m{cwd}\x1b[0m")?;
        } else {
            writeln!(buf, "{head}  {cwd}")?;
        }
        for h in of_session {
            let when = h.timestamp.as_deref().map(short_time).unwrap_or_default();
            let snippet = safe(&h.snippet).replace(['\n', '\t'], " ");
            let snippet = if color {
                snippet.replace('«', "\x1b[1;31m").replace('»', "\x1b[0m")
            } else {
                snippet
            };
            writeln!(buf, "    {} {when}: {snippet}", h.kind.as_str())?;
        }
        if first.more_in_session > 0 {
            writeln!(
                buf,
                "    … {} more hit(s) in this session (--per-session)",
                first.more_in_session
            )?;
        }
    }
    Ok(buf)
}
