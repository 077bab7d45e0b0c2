//! Where baton looks: agent homes and baton's own data directory.

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

const CODEX_HELP: &str = "A Codex home to read (repeatable). Default: $CODEX_HOME or ~/.codex.";
const CLAUDE_HELP: &str =
    "A Claude Code config dir to read (repeatable). Default: $CLAUDE_CONFIG_DIR or ~/.claude.";

/// Options naming the agent homes to read. Accepted before and after the
/// subcommand; occurrences at every level add up (see [`with_root_args`]).
#[derive(Debug, clap::Args)]
pub struct RootArgs {
    #[doc = "A Codex home to read (repeatable). Default: $CODEX_HOME or ~/.codex."]
    #[arg(long = "codex-home", value_name = "DIR")]
    pub codex_homes: Vec<PathBuf>,
    #[doc = "A Claude Code config dir to read (repeatable). Default: $CLAUDE_CONFIG_DIR or ~/.claude."]
    #[arg(long = "claude-dir", value_name = "DIR")]
    pub claude_dirs: Vec<PathBuf>,
}

/// Ids of the copies of `--codex-home` / `--claude-dir` on subcommands.
const SUB_CODEX: &str = "baton_sub_codex_homes";
const SUB_CLAUDE: &str = "baton_sub_claude_dirs";

/// `cmd` with `--codex-home` and `--claude-dir` also accepted after every
/// subcommand, at any depth. (clap's `global` args keep only the values of
/// the deepest level, so `baton --codex-home A list --codex-home B` would
/// lose `A`; these copies are collected by [`RootArgs::from_all_levels`].)
pub fn with_root_args(cmd: clap::Command) -> clap::Command {
    fn add(mut cmd: clap::Command) -> clap::Command {
        for sub in cmd.get_subcommands_mut() {
            let owned = std::mem::take(sub);
            *sub = add(owned
                .arg(root_arg(SUB_CODEX, "codex-home", CODEX_HELP))
                .arg(root_arg(SUB_CLAUDE, "claude-dir", CLAUDE_HELP)));
        }
        cmd
    }
    add(cmd)
}

fn root_arg(id: &'static str, long: &'static str, help: &'static str) -> clap::Arg {
    clap::Arg::new(id)
        .long(long)
        .value_name("DIR")
        .help(help)
        .action(clap::ArgAction::Append)
        .value_parser(clap::value_parser!(PathBuf))
}

impl RootArgs {
    /// `top` (parsed before the subcommand) plus every occurrence after the
    /// subcommands in `matches` (of a command built with [`with_root_args`]),
    /// in command-line order of the levels.
    pub fn from_all_levels(top: RootArgs, matches: &clap::ArgMatches) -> RootArgs {
        let RootArgs {
            mut codex_homes,
            mut claude_dirs,
        } = top;
        let mut level = matches.subcommand();
        while let Some((_, m)) = level {
            for (id, into) in [
                (SUB_CODEX, &mut codex_homes),
                (SUB_CLAUDE, &mut claude_dirs),
            ] {
                if let Ok(Some(values)) = m.try_get_many::<PathBuf>(id) {
                    into.extend(values.cloned());
                }
            }
            level = m.subcommand();
        }
        RootArgs {
            codex_homes,
            claude_dirs,
        }
    }
}

/// Resolved locations for one invocation.
#[derive(Debug, Clone)]
pub struct Context {
    /// Codex homes, first one is where baton writes.
    pub codex_homes: Vec<PathBuf>,
    /// Claude config dirs, first one is where baton writes.
    pub claude_dirs: Vec<PathBuf>,
    /// baton's own data (`$BATON_HOME`, default the XDG data dir + `/baton`).
    pub baton_home: PathBuf,
    /// `--no-refresh`: read the catalog as it is, never walk the homes.
    pub no_refresh: bool,
    /// The homes above nobody named (`~/.codex`, `~/.claude` by default):
    /// missing ones are not worth a warning.
    pub default_homes: Vec<PathBuf>,
}

impl Context {
    /// Resolve options and environment into absolute locations.
    pub fn from_args(args: &RootArgs) -> Result<Self> {
        let home = dirs::home_dir();
        let from_env_or = |var: &str, default: &str| -> Result<PathBuf> {
            match std::env::var_os(var) {
                Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
                _ => home
                    .as_ref()
                    .map(|h| h.join(default))
                    .with_context(|| format!("cannot find your home directory; set {var}")),
            }
        };
        let mut default_homes = Vec::new();
        let mut homes = |given: &[PathBuf], var: &str, default: &str| -> Result<Vec<PathBuf>> {
            if !given.is_empty() {
                return Ok(given.to_vec());
            }
            let home = from_env_or(var, default)?;
            if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
                default_homes.push(absolute(&home));
            }
            Ok(vec![home])
        };
        let codex_homes = homes(&args.codex_homes, "CODEX_HOME", ".codex")?;
        let claude_dirs = homes(&args.claude_dirs, "CLAUDE_CONFIG_DIR", ".claude")?;
        let baton_home = match std::env::var_os("BATON_HOME") {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => dirs::data_dir()
                .map(|d| d.join("baton"))
                .context("cannot find a data directory; set BATON_HOME")?,
        };
        Ok(Self {
            codex_homes: codex_homes.iter().map(|p| absolute(p)).collect(),
            claude_dirs: claude_dirs.iter().map(|p| absolute(p)).collect(),
            baton_home: absolute(&baton_home),
            no_refresh: false,
            default_homes,
        })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
