//! `baton export`: a session as Markdown, self-contained HTML or its native JSONL.

use crate::catalog;
use crate::context::Context;
use crate::output::UsageError;
use crate::output::{label, one_line, stream_stdout};
use anyhow::{Context as _, Result, bail};
use baton_native::{Message, MessageKind};
use baton_secrets::Redactor;
use baton_store::{Catalog, SessionRow, Transcript};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Options of `baton export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id or a unique prefix of it.
    pub id: String,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Write to this file instead of stdout (`-` for stdout). A new file is
    /// written atomically; an existing regular file is replaced; anything
    /// else at FILE (a symlink, FIFO, device or directory) is refused.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep secrets as they are instead of as placeholders (after a warning
    /// that counts them). By default every format replaces each secret the
    /// rules find with `‹secret:RULE:…›`; `baton import` on a machine with
    /// the same key restores them.
    #[arg(long)]
    pub no_redact: bool,
}

/// Export formats; each variant is one arm of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown transcript (prompts, replies, tool calls and results).
    Md,
    /// One self-contained, escaped HTML page.
    Html,
    /// The native bytes of the session's lineage, exactly as the agent wrote them.
    Jsonl,
    /// A portable, verified baton envelope (native bytes of the whole lineage,
    /// metadata and hashes; zstd); load it elsewhere with `baton import`.
    Envelope,
}

/// Run `baton export`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let file = args.output.as_deref().filter(|p| *p != Path::new("-"));
    if args.format == Format::Envelope && args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(UsageError(
            "an envelope is binary: write it to a file with -o FILE (or pass -o - to send it to the terminal anyway)".into(),
        )
        .into());
    }
    let cat = catalog::open_fresh(ctx)?;
    let session = cat.resolve(&args.id)?;
    let redactor = crate::secrets::redactor(ctx, None)?;
    let redactor = if args.no_redact {
        let paths: Vec<PathBuf> = session.paths.iter().map(PathBuf::from).collect();
        let count = crate::secrets::count_in_files(&redactor, &paths);
        crate::secrets::warn_unredacted(count, &format!("session {}", session.id));
        None
    } else {
        Some(redactor)
    };
    let mut render =
        |out: &mut dyn Write| render(&cat, &session, args.format, redactor.as_ref(), out);
    match file {
        Some(path) => write_file(path, &mut render),
        None => stream_stdout(&mut render),
    }
}

/// Write `session` in `format` to `out` as it is read (a transcript
/// message by message, native bytes in blocks), with every secret replaced
/// by `redactor` when given.
pub fn render(
    cat: &Catalog,
    session: &SessionRow,
    format: Format,
    redactor: Option<&Redactor>,
    out: &mut dyn Write,
) -> Result<()> {
    let mut row = session.clone();
    if let Some(r) = redactor {
        for field in [&mut row.title, &mut row.first_prompt, &mut row.cwd] {
            if let Some(v) = field.as_mut() {
                *v = r.redact_text(v)?;
            }
        }
    }
    match format {
        Format::Md => markdown(out, &row, cat.transcript(session)?, redactor),
        Format::Html => html(out, &row, cat.transcript(session)?, redactor),
        Format::Jsonl => match redactor {
            Some(r) => {
                let mut lines = crate::secrets::RedactedLines::new(r, out);
                cat.write_native(session, &mut lines)?;
                lines.finish()
            }
            None => Ok(cat.write_native(session, out).map(drop)?),
        },
        Format::Envelope => crate::catalog::write_envelope(cat, session, redactor, out),
    }
}

/// Write what `render` writes to `path` as a regular file, atomically (a
/// temporary file in the same directory, then a rename:
/// [`baton_native::write::replace_file_with`]), so a reader never sees half
/// a file. An existing regular file is replaced; anything else (a symlink,
/// FIFO, device, socket or directory) is refused and left as it is; a
/// missing directory is named.
fn write_file(path: &Path, render: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => bail!(
            "{} is {}, not a regular file; baton export only writes regular files: choose another path (or -o - for stdout)",
            path.display(),
            file_kind(&meta.file_type())
        ),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!(
            "cannot write {}: {} is not a directory",
            path.display(),
            dir.display()
        ),
        Err(e) => bail!(
            "cannot write {}: directory {} is not there ({e}); create it first",
            path.display(),
            dir.display()
        ),
    }
    path.file_name()
        .context("the output path has no file name")?;
    // An error of `render` (not of the file) is kept whole and reported as is.
    let mut failed: Option<anyhow::Error> = None;
    let written = baton_native::write::replace_file_with(path, 0o666, &mut |out| {
        render(out).map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            failed = Some(e);
            io
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    written.with_context(|| {
        format!(
            "cannot create {} (is the directory {} writable?)",
            path.display(),
            dir.display()
        )
    })
}

/// "a symbolic link", "a FIFO", ... for messages.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        } else if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        } else if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

fn header_fields(s: &SessionRow) -> Vec<(&'static str, String)> {
    let mut f = vec![("id", s.id.clone()), ("agent", s.agent.to_string())];
    if let Some(cwd) = &s.cwd {
        f.push(("cwd", cwd.clone()));
    }
    f.push(("started", s.started_at.clone()));
    f.push(("updated", s.updated_at.clone()));
    if let Some(model) = &s.model {
        f.push(("model", model.clone()));
    }
    if let Some(parent) = &s.forked_from {
        f.push(("forked from", parent.clone()));
    }
    f
}

fn context_note(messages: &Transcript) -> Option<String> {
    let n = messages.count_kind(MessageKind::Context);
    (n > 0).then(|| {
        format!("{n} injected context message(s) omitted; `--format jsonl` keeps everything.")
    })
}

/// A code fence longer than any backtick run inside `text`.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

fn title(s: &SessionRow) -> String {
    one_line(s.title.as_deref().unwrap_or(&s.id), 120)
}

/// The messages of a transcript that are exported (injected context is
/// not), their texts redacted by `redactor` when given.
fn exported<'a>(
    messages: Transcript<'a>,
    redactor: Option<&'a Redactor>,
) -> impl Iterator<Item = Result<Message>> + 'a {
    messages
        .filter(|m| m.as_ref().map_or(true, |m| m.kind != MessageKind::Context))
        .map(move |m| {
            let mut m = m?;
            if let Some(r) = redactor {
                m.text = r.redact_text(&m.text)?;
            }
            Ok(m)
        })
}

/// Markdown transcript.
pub fn markdown(
    out: &mut dyn Write,
    s: &SessionRow,
    messages: Transcript,
    redactor: Option<&Redactor>,
) -> Result<()> {
    write!(out, "# {}\n\n", title(s))?;
    for (k, v) in header_fields(s) {
        writeln!(out, "- **{k}**: `{}`", v.replace('`', "'"))?;
    }
    if let Some(note) = context_note(&messages) {
        write!(out, "\n_{note}_\n")?;
    }
    for m in exported(messages, redactor) {
        let m = m?;
        write!(out, "\n## {}", label(&m))?;
        if let Some(ts) = &m.timestamp {
            write!(out, " · {ts}")?;
        }
        write!(out, "\n\n")?;
        match m.kind {
            MessageKind::ToolCall | MessageKind::ToolResult | MessageKind::Other => {
                let fence = fence_for(&m.text);
                writeln!(out, "{fence}\n{}\n{fence}", m.text.trim_end())?;
            }
            _ => writeln!(out, "{}", m.text.trim_end())?,
        }
    }
    Ok(())
}

/// Escape text for HTML content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}\
.m{border-left:4px solid #ccc;margin:1rem 0;padding:.2rem 1rem}.m h2{font-size:.85rem;color:#666;margin:.3rem 0}\
.prompt{border-color:#2a6fdb}.reply{border-color:#2da44e}.tool_call,.tool_result{border-color:#bf8700}\
pre{white-space:pre-wrap;word-break:break-word;margin:.3rem 0;font:13px/1.4 ui-monospace,monospace}\
.note{color:#666;font-style:italic}";

/// One self-contained HTML page; all session text is escaped.
pub fn html(
    out: &mut dyn Write,
    s: &SessionRow,
    messages: Transcript,
    redactor: Option<&Redactor>,
) -> Result<()> {
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n<dl>",
        escape_html(&title(s)),
        escape_html(&title(s))
    )?;
    for (k, v) in header_fields(s) {
        write!(out, "<dt>{k}</dt><dd>{}</dd>", escape_html(&v))?;
    }
    writeln!(out, "</dl>")?;
    if let Some(note) = context_note(&messages) {
        writeln!(out, "<p class=\"note\">{}</p>", escape_html(&note))?;
    }
    for m in exported(messages, redactor) {
        let m = m?;
        let kind = serde_json::to_value(m.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        writeln!(
            out,
            "<section class=\"m {kind}\"><h2>{}{}</h2><pre>{}</pre></section>",
            escape_html(&label(&m)),
            m.timestamp
                .as_deref()
                .map(|t| format!(" · {}", escape_html(t)))
                .unwrap_or_default(),
            escape_html(m.text.trim_end())
        )?;
    }
    writeln!(out, "</body></html>")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_everything() {
        assert_eq!(
            escape_html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn fences_outgrow_backticks_in_text() {
        assert_eq!(fence_for("no ticks"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }
}
