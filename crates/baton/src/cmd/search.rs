//! `baton search`: full-text search over prompts, replies and tool input/output.

use crate::args::{absolute_dir, parse_limit};
use crate::context::Context;
use crate::output::UsageError;
use crate::output::{short_time, write_stdout};
use crate::{catalog, output};
use anyhow::Result;
use baton_native::Agent;
use baton_store::SearchQuery;
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
    };
    if baton_store::fts_query(&query.query).is_none() {
        return Err(UsageError(format!(
            "nothing to search for in `{}`: give at least one word with a letter or digit",
            query.query
        ))
        .into());
    }
    let cat = catalog::open_fresh(ctx)?;
    let hits = cat.search(&query)?;
    if args.json {
        let hits: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({
                    "session_id": h.session_id,
                    "agent": h.agent,
                    "role": h.role,
                    "kind": h.kind,
                    "snippet": h.snippet,
                    "timestamp": h.timestamp,
                })
            })
            .collect();
        return output::print_json(&json!({ "hits": hits }));
    }
    if hits.is_empty() {
        eprintln!("no matches for `{}`", query.query);
        return Ok(());
    }
    let color = output::color_enabled();
    let mut buf = String::new();
    for h in &hits {
        let when = h.timestamp.as_deref().map(short_time).unwrap_or_default();
        let kind = serde_json::to_value(h.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let head = format!(
            "{}  {}  {kind}  {when}",
            output::terminal_safe(&h.session_id),
            h.agent
        );
        let snippet = output::terminal_safe(&h.snippet).replace(['\n', '\t'], " ");
        if color {
            writeln!(buf, "\x1b[1m{head}\x1b[0m")?;
            writeln!(
                buf,
                "    {}",
                snippet.replace('«', "\x1b[1;31m").replace('»', "\x1b[0m")
            )?;
        } else {
            writeln!(buf, "{head}")?;
            writeln!(buf, "    {snippet}")?;
        }
    }
    write_stdout(&buf)
}
