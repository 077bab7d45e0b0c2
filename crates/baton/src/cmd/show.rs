//! `baton show`: one session's messages in conversation order.

use crate::context::Context;
use crate::output::{label, one_line, short_time};
use crate::{catalog, output};
use anyhow::Result;
use baton_native::{Message, MessageKind};
use baton_store::{SessionRow, Transcript};
use std::cell::RefCell;
use std::io::Write;

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
    let session = cat.resolve(&args.id)?;
    let mut messages = cat.transcript(&session)?;
    if args.json {
        return output::print_json(&ShowJson {
            session: &session,
            messages: Streamed(RefCell::new(Some(messages))),
        });
    }
    output::page(&mut |out| human(out, &session, &mut messages))
}

/// `baton show --json`: the session, then its messages, each read as it is
/// printed.
#[derive(serde::Serialize)]
struct ShowJson<'a> {
    session: &'a SessionRow,
    messages: Streamed<'a>,
}

/// A transcript serialized as a JSON array as it is read.
struct Streamed<'a>(RefCell<Option<Transcript<'a>>>);

impl serde::Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq as _};
        let mut seq = s.serialize_seq(None)?;
        for m in self.0.borrow_mut().take().into_iter().flatten() {
            seq.serialize_element(&m.map_err(S::Error::custom)?)?;
        }
        seq.end()
    }
}

/// The human transcript, written message by message.
fn human(
    buf: &mut dyn Write,
    session: &SessionRow,
    messages: impl Iterator<Item = baton_store::Result<Message>>,
) -> Result<()> {
    let color = output::color_enabled();
    let safe = output::terminal_safe;
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
    if let Some(from) = &session.converted_from {
        writeln!(buf, "converted: from {} {}", from.agent, safe(&from.id))?;
    }
    for to in &session.converted_to {
        writeln!(buf, "converted: to {} {}", to.agent, safe(&to.id))?;
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
    for m in messages {
        let m = m?;
        writeln!(buf)?;
        let label = label(&m);
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
    Ok(())
}
