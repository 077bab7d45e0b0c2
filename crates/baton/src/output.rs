//! Printing: JSON, colour only on a terminal (and never with NO_COLOR),
//! terminal-safe transcript text, errors.

use baton_native::{Message, MessageKind};
use std::borrow::Cow;
use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::layer::SubscriberExt as _;

/// Print a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    use std::io::Write;
    writeln!(out)?;
    Ok(())
}

/// Whether `NO_COLOR` asks for no colour: set to a non-empty value (an
/// empty one leaves colour on, per <https://no-color.org>).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// True when stdout is a terminal and `NO_COLOR` does not turn colour off.
pub fn color_enabled() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// `text` made safe for human output on a terminal: escape sequences (CSI,
/// OSC, DCS and the other ESC and C1 forms) are removed and every other
/// control character except `\n` and `\t` becomes `\u{FFFD}` (`\r\n` stays
/// a line break), so a transcript cannot retitle, clear or reprogram the
/// terminal. Applied to all transcript-derived text in human output, always;
/// `--json` prints text exactly.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\x1b' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_control_string(&mut chars),
                Some(' '..='/') => {
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next_if(|c| ('0'..='~').contains(c));
                }
                Some('\n') => out.push('\n'),
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_control_string(&mut chars),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Skip the rest of a CSI sequence: parameter and intermediate bytes, then
/// the final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| (' '..='?').contains(c)).is_some() {}
    chars.next_if(|c| ('@'..='~').contains(c));
}

/// Skip the rest of an OSC/DCS/SOS/PM/APC string: up to BEL or ST (`ESC \`,
/// `\u{9c}`), or up to a line break, which is kept so the text after it stays
/// visible.
fn skip_control_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next_if(|&c| c != '\n') {
        match c {
            '\x07' | '\u{9c}' => return,
            '\x1b' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

/// True when progress bars should be drawn (stderr is a terminal).
pub fn progress_enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// Log to stderr, filtered by `BATON_LOG` (default: warnings).
pub fn init_tracing() {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry()
        .with(stderr_log_layer())
        .try_init();
}

/// The stderr log layer of [`init_tracing`], for commands that add layers of
/// their own (`baton run`).
pub fn stderr_log_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(!no_color() && std::io::stderr().is_terminal())
        .with_filter(filter)
}

/// A command line that asks for something impossible (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Whether `err` is a usage error: a [`UsageError`], or a catalog error
/// about what was typed (an empty search query, a foreign `--cursor`).
fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<UsageError>()
            || matches!(
                e.downcast_ref::<baton_store::Error>(),
                Some(baton_store::Error::EmptyQuery | baton_store::Error::InvalidCursor(_))
            )
    })
}

/// Print an error chain to stderr and return its exit code: 2 for usage
/// errors, 1 otherwise.
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if is_usage(err) {
        eprintln!("\nFor more information, try '--help'.");
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// First line of `text`, cut to `max` characters with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// `2026-11-21T19:20:28.123Z` → `2026-11-21 19:20` (terminal-safe: the
/// time comes from the transcript).
pub fn short_time(ts: &str) -> String {
    let short = ts.get(..16).map(|s| s.replace('T', " "));
    terminal_safe(short.as_deref().unwrap_or(ts)).into_owned()
}

/// Write `text` to stdout; a closed pipe (`baton list | head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    stream_stdout(&mut |out| Ok(out.write_all(text.as_bytes())?))
}

/// Give `write` a buffered stdout to write as it goes, then flush; a closed
/// pipe (`baton show ID | head`) is not an error.
pub fn stream_stdout(
    write: &mut dyn FnMut(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let result = write(&mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Whether `e` is (or wraps) a write to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Give `write` the stdin of `$PAGER` (default `less -R`, with `LESS=FRX`
/// when `LESS` is unset, so a short text just prints) when stdout is a
/// terminal; otherwise, or with `PAGER` empty or `cat`, stdout
/// ([`stream_stdout`]). The pager runs through `sh -c`, as git runs it, so
/// `PAGER` may hold options; the reader quitting early (`q` in less) is not
/// an error.
pub fn page(
    write: &mut dyn FnMut(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let pager = std::env::var("PAGER").unwrap_or_else(|_| "less -R".to_string());
    if !std::io::stdout().is_terminal() || pager.trim().is_empty() || pager.trim() == "cat" {
        return stream_stdout(write);
    }
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &pager]).stdin(std::process::Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        cmd.env("LESS", "FRX");
    }
    let Ok(mut child) = cmd.spawn() else {
        return stream_stdout(write);
    };
    if let Some(stdin) = child.stdin.take() {
        let mut stdin = std::io::BufWriter::new(stdin);
        match write(&mut stdin).and_then(|()| Ok(stdin.flush()?)) {
            Err(e) if !is_broken_pipe(&e) => {
                return Err(e.context(format!("cannot write to the pager `{pager}`")));
            }
            _ => {}
        }
    }
    child.wait()?;
    Ok(())
}

/// `user`, `assistant`, `tool call Bash`, `tool result Bash`, `context`, ...
pub fn label(m: &Message) -> String {
    let tool = m
        .tool_name
        .as_deref()
        .map(|t| format!(" {t}"))
        .unwrap_or_default();
    match m.kind {
        MessageKind::Prompt => "user".to_string(),
        MessageKind::Context => "context".to_string(),
        MessageKind::Reply => "assistant".to_string(),
        MessageKind::ToolCall => format!("tool call{tool}"),
        MessageKind::ToolResult => format!("tool result{tool}"),
        MessageKind::Other => format!("{} (other)", m.role.as_str()),
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_cuts_on_characters() {
        assert_eq!(one_line("\n ünïcødé ✓ text\nmore", 8), "ünïcødé…");
        assert_eq!(one_line("short", 8), "short");
    }

    #[test]
    fn terminal_safe_strips_sequences_and_controls() {
        assert!(matches!(
            terminal_safe("plain\ttext\nünï"),
            Cow::Borrowed(_)
        ));
        let hostile = "a\x1b]0;pwned\x07b\x1b[2Jc\x1b[1;31md\x1b]8;;http://x\x1b\\e\x1bcf";
        assert_eq!(terminal_safe(hostile), "abcdef");
        assert_eq!(terminal_safe("x\u{9b}2Jy\u{9d}0;t\u{9c}z"), "xyz");
        assert_eq!(
            terminal_safe("bell\x07 back\x08 del\x7f"),
            "bell\u{FFFD} back\u{FFFD} del\u{FFFD}"
        );
        assert_eq!(
            terminal_safe("crlf\r\nover\rwrite"),
            "crlf\nover\u{FFFD}write"
        );
        // An unterminated OSC ends at the line break; the next line stays.
        assert_eq!(terminal_safe("a\x1b]0;title\nnext"), "a\nnext");
        assert_eq!(terminal_safe("end\x1b"), "end");
    }
}
