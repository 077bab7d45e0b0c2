//! Printing: JSON, colour only on a terminal (and never with NO_COLOR), errors.

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

/// True when stdout is a terminal and `NO_COLOR` is unset.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
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
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
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
