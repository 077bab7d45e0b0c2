//! `baton`: durable, searchable, forkable and portable Codex and Claude Code sessions.

// Unit tests build their own scratch files (clippy.toml bans writes elsewhere).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod args;
mod catalog;
mod cmd;
mod context;
mod locate;
mod output;
mod place;
mod remote;
mod retention;
mod secrets;
mod watcher;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// Catalog, fork, resume and sync Codex and Claude Code sessions.
#[derive(Debug, Parser)]
#[command(name = "baton", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    roots: context::RootArgs,
    /// Answer from the catalog as it is, without looking for changed session files.
    #[arg(long, global = true)]
    no_refresh: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bring the catalog up to date with every session on this machine.
    Index(cmd::index::Args),
    /// List sessions, newest first.
    List(cmd::list::Args),
    /// Show one session's messages.
    Show(cmd::show::Args),
    /// Full-text search over prompts, replies and tool input/output.
    Search(cmd::search::Args),
    /// Export a session as Markdown, HTML, native JSONL or a portable envelope.
    Export(cmd::export::Args),
    /// Import an envelope into baton's store.
    Import(cmd::import::Args),
    /// Fork a session at a turn into a new native session of the same agent.
    Fork(cmd::fork::Args),
    /// Pick a session interactively: search as you type, preview, resume, fork or copy its id.
    Pick(cmd::pick::Args),
    /// Continue a session in its own agent, or in the other one (--in).
    Resume(cmd::resume::Args),
    /// Convert a session into a new native session of the other agent.
    Convert(cmd::convert::Args),
    /// Write a session into an agent's home where the agent looks for it.
    Rehydrate(cmd::rehydrate::Args),
    /// Run codex or claude through a capturing proxy that records raw model traffic.
    Run(cmd::run::Args),
    /// Run the sync server and web UI.
    Serve(cmd::serve::Args),
    /// Remember a sync server and token.
    Login(cmd::login::Args),
    /// Send sessions to the sync server.
    Push(cmd::push::Args),
    /// Fetch sessions from the sync server.
    Pull(cmd::pull::Args),
    /// Push and pull whatever changed.
    Sync(cmd::sync::Args),
    /// Delete old session files that baton's archive holds (verified), or old archived copies.
    Prune(cmd::prune::Args),
    /// Find secrets in sessions and allow known false positives.
    Secrets(cmd::secrets::Args),
    /// Archive coverage, bytes per agent home and the sessions agents will delete soonest.
    Status(cmd::status::Args),
    /// Find sessions their agent cannot list or resume; --fix makes them resumable.
    Doctor(cmd::doctor::Args),
    /// Keep the catalog current as agents write (foreground; --install writes a systemd user unit).
    Watch(cmd::watch::Args),
    /// Print shell completions.
    Completions(cmd::completions::Args),
}

/// Parse the command line; `--codex-home`/`--claude-dir` given before and
/// after the subcommand add up.
fn parse_cli(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, clap::Error> {
    let matches = context::with_root_args(Cli::command()).try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    cli.roots = context::RootArgs::from_all_levels(cli.roots, &matches);
    Ok(cli)
}

fn main() -> ExitCode {
    let cli = parse_cli(std::env::args_os()).unwrap_or_else(|e| e.exit());
    output::init_tracing();
    let ctx = match context::Context::from_args(&cli.roots) {
        Ok(ctx) => context::Context {
            no_refresh: cli.no_refresh,
            ..ctx
        },
        Err(err) => return output::report_error(&err),
    };
    // A query that finds the catalog damaged (it is a cache) runs once more
    // on a rebuilt one.
    let queries_only = matches!(
        cli.command,
        Command::Index(_)
            | Command::List(_)
            | Command::Show(_)
            | Command::Search(_)
            | Command::Export(_)
    );
    let mut result = run(&ctx, cli.command);
    if queries_only
        && let Err(err) = &result
        && catalog::is_corrupt(err)
    {
        result = catalog::open(&ctx)
            .and_then(|mut cat| catalog::rebuild(&mut cat, &err.root_cause()))
            .and_then(|()| run(&ctx, parse_cli(std::env::args_os())?.command));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => output::report_error(&err),
    }
}

/// Run one subcommand.
fn run(ctx: &context::Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Index(args) => cmd::index::run(ctx, args),
        Command::List(args) => cmd::list::run(ctx, args),
        Command::Show(args) => cmd::show::run(ctx, args),
        Command::Search(args) => cmd::search::run(ctx, args),
        Command::Export(args) => cmd::export::run(ctx, args),
        Command::Import(args) => cmd::import::run(ctx, args),
        Command::Fork(args) => cmd::fork::run(ctx, args),
        Command::Pick(args) => cmd::pick::run(ctx, args),
        Command::Resume(args) => cmd::resume::run(ctx, args),
        Command::Convert(args) => cmd::convert::run(ctx, args),
        Command::Rehydrate(args) => cmd::rehydrate::run(ctx, args),
        Command::Run(args) => cmd::run::run(ctx, args),
        Command::Serve(args) => cmd::serve::run(ctx, args),
        Command::Login(args) => cmd::login::run(ctx, args),
        Command::Push(args) => cmd::push::run(ctx, args),
        Command::Pull(args) => cmd::pull::run(ctx, args),
        Command::Sync(args) => cmd::sync::run(ctx, args),
        Command::Prune(args) => cmd::prune::run(ctx, args),
        Command::Secrets(args) => cmd::secrets::run(ctx, args),
        Command::Status(args) => cmd::status::run(ctx, args),
        Command::Doctor(args) => cmd::doctor::run(ctx, args),
        Command::Watch(args) => cmd::watch::run(ctx, args),
        Command::Completions(args) => cmd::completions::run::<Cli>(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(args: &[&str]) -> (Vec<String>, Vec<String>) {
        let cli = parse_cli(args.iter().map(Into::into)).unwrap();
        let show = |v: &[std::path::PathBuf]| v.iter().map(|p| p.display().to_string()).collect();
        (show(&cli.roots.codex_homes), show(&cli.roots.claude_dirs))
    }

    #[test]
    fn root_options_before_and_after_the_subcommand_add_up() {
        let (codex, claude) = roots(&[
            "baton",
            "--codex-home",
            "A",
            "--claude-dir",
            "C",
            "list",
            "--codex-home",
            "B",
            "--json",
        ]);
        assert_eq!(codex, ["A", "B"]);
        assert_eq!(claude, ["C"]);
        let (codex, claude) = roots(&["baton", "serve", "user", "add", "x", "--claude-dir", "D"]);
        assert!(codex.is_empty());
        assert_eq!(claude, ["D"]);
    }
}
