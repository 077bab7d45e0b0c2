//! `baton show`: one session's messages in conversation order.

use crate::context::Context;
use crate::output::{label, one_line, short_time};
use crate::{catalog, output};
use anyhow::Result;
use baton_native::MessageKind;
use serde_json::json;
use std::fmt::Write as _;

/// Options of `baton show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id or a unique prefix of it.
    pub id: String,
    /// Print JSON (see README "JSON output").
    #[arg(long)]
    pub json: bool,
}

/// Run `baton show`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let cat = catalog::open_fresh(ctx)?;
    let (session, messages) = cat.show(&args.id)?;
    if args.json {
        return output::print_json(&json!({ "session": session, "messages": messages }));
    }
    let color = output::color_enabled();
    let safe = output::terminal_safe;
    let mut buf = String::new();
    let bold = |s: &str| {
        if color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let dim = |s: &str| {
        if color {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    writeln!(
        buf,
        "{}",
        bold(&safe(session.title.as_deref().unwrap_or(&session.id)))
    )?;
    writeln!(buf, "id:       {} ({})", safe(&session.id), session.agent)?;
    if let Some(cwd) = &session.cwd {
        writeln!(buf, "cwd:      {}", safe(cwd))?;
    }
    writeln!(
        buf,
        "time:     {} → {}",
        short_time(&session.started_at),
        short_time(&session.updated_at)
    )?;
    if let Some(parent) = &session.forked_from {
        writeln!(buf, "forked:   from {}", safe(parent))?;
    }
    if session.archived {
        writeln!(
            buf,
            "archived: its file is gone from disk; `baton resume {}` writes it back",
            safe(&session.id)
        )?;
    }
    writeln!(
        buf,
        "turns:    {} prompts, {} messages",
        session.user_turns, session.message_count
    )?;
    for m in &messages {
        writeln!(buf)?;
        let label = label(m);
        let label = safe(&label);
        let when = m.timestamp.as_deref().map(short_time).unwrap_or_default();
        if m.kind == MessageKind::Context {
            let first = one_line(&safe(&m.text), 70);
            writeln!(
                buf,
                "{}",
                dim(&format!(
                    "[{label}] {first} ({} chars)",
                    m.text.chars().count()
                ))
            )?;
            continue;
        }
        writeln!(buf, "{}  {}", bold(&format!("── {label}")), dim(&when))?;
        writeln!(buf, "{}", safe(m.text.trim_end()))?;
    }
    output::page(&buf)
}
