//! `baton list`: sessions, newest first.

use crate::args::{absolute_dir, parse_limit, parse_since};
use crate::context::Context;
use crate::output::{one_line, short_time, write_stdout};
use crate::{catalog, output};
use anyhow::Result;
use baton_native::Agent;
use baton_store::{Catalog, ListQuery, SessionRow};
use std::fmt::Write as _;

/// Options of `baton list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only sessions of this agent (`codex` or `claude`).
    #[arg(long, value_parser = catalog::parse_agent)]
    pub agent: Option<Agent>,
    /// Only sessions started in this directory or below it.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::path::PathBuf>,
    /// Only sessions active since a date (`2026-11-21`, RFC 3339) or for a duration (`7d`, `12h`, `30m`, `2w`).
    #[arg(long, value_name = "DATE|DURATION", value_parser = since_arg)]
    pub since: Option<String>,
    /// Sessions per page (at least 1).
    #[arg(long, default_value_t = 50, value_parser = parse_limit)]
    pub limit: usize,
    /// Continue after a previous page (its `next_cursor`).
    #[arg(long, value_parser = cursor_arg)]
    pub cursor: Option<String>,
    /// Print JSON (see README "JSON output").
    #[arg(long)]
    pub json: bool,
}

/// Run `baton list`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let query = ListQuery {
        agent: args.agent,
        cwd: args.cwd.as_deref().map(absolute_dir),
        since: args.since,
        limit: args.limit,
        cursor: args.cursor,
    };
    let cat = catalog::open_fresh(ctx)?;
    let page = cat.list(&query)?;
    if args.json {
        return output::print_json(&page);
    }
    if page.sessions.is_empty() {
        eprintln!("no sessions found{}", empty_note(&cat, &query)?);
        return Ok(());
    }
    write_stdout(&table(&page.sessions)?)?;
    if let Some(cursor) = &page.next_cursor {
        eprintln!("more sessions: baton list --cursor {cursor}");
    }
    Ok(())
}

/// `--since` for clap: the canonical UTC time it means.
fn since_arg(text: &str) -> Result<String, String> {
    parse_since(text).map_err(|e| e.to_string())
}

/// `--cursor` for clap: only a `next_cursor` that `baton list` printed.
fn cursor_arg(text: &str) -> Result<String, String> {
    baton_store::check_cursor(text)
        .map(|()| text.to_string())
        .map_err(|_| "not a cursor printed by `baton list`; pass its `next_cursor` value".into())
}

/// Why `query` listed nothing: the filter that excluded everything, or
/// where to look when there are no sessions at all.
fn empty_note(cat: &Catalog, query: &ListQuery) -> Result<String> {
    let mut filters = Vec::new();
    if let Some(agent) = query.agent {
        filters.push(format!("--agent {agent}"));
    }
    if let Some(cwd) = &query.cwd {
        filters.push(format!("--cwd {cwd}"));
    }
    if let Some(since) = &query.since {
        filters.push(format!("--since {since}"));
    }
    let note = catalog::empty_note(&filters, |on| {
        let mut flags = on.iter().copied();
        let probe = ListQuery {
            agent: query.agent.filter(|_| flags.next().unwrap_or(false)),
            cwd: query.cwd.clone().filter(|_| flags.next().unwrap_or(false)),
            since: query
                .since
                .clone()
                .filter(|_| flags.next().unwrap_or(false)),
            limit: 1,
            cursor: None,
        };
        Ok(!cat.list(&probe)?.sessions.is_empty())
    })?;
    Ok(if note.is_empty() {
        " (check --codex-home / --claude-dir, or run `baton index`)".to_string()
    } else {
        note
    })
}

/// The human table of `rows`.
fn table(rows: &[SessionRow]) -> Result<String> {
    let mut buf = String::new();
    let color = output::color_enabled();
    let header = ["ID", "AGENT", "UPDATED", "TURNS", "CWD", "TITLE"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let fork = if r.forked_from.is_some() { " ⑂" } else { "" };
            let archived = if r.archived { " archived" } else { "" };
            let safe = output::terminal_safe;
            [
                safe(&r.id).into_owned(),
                format!("{}{fork}{archived}", r.agent),
                short_time(&r.updated_at),
                r.user_turns.to_string(),
                safe(r.cwd.as_deref().unwrap_or_default()).replace(['\n', '\t'], " "),
                one_line(&safe(r.title.as_deref().unwrap_or_default()), 60),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| -> String {
        let mut out = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out
    };
    let head = line(&header.map(String::from));
    if color {
        writeln!(buf, "\x1b[1m{head}\x1b[0m")?;
    } else {
        writeln!(buf, "{head}")?;
    }
    for row in &cells {
        writeln!(buf, "{}", line(row))?;
    }
    Ok(buf)
}
