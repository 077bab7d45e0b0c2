//! Where baton looks: agent homes and baton's own data directory.

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

/// Global options naming the agent homes to read.
#[derive(Debug, clap::Args)]
pub struct RootArgs {
    /// A Codex home to read (repeatable). Default: $CODEX_HOME or ~/.codex.
    #[arg(long = "codex-home", value_name = "DIR", global = true)]
    pub codex_homes: Vec<PathBuf>,
    /// A Claude Code config dir to read (repeatable). Default: $CLAUDE_CONFIG_DIR or ~/.claude.
    #[arg(long = "claude-dir", value_name = "DIR", global = true)]
    pub claude_dirs: Vec<PathBuf>,
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
        let codex_homes = if args.codex_homes.is_empty() {
            vec![from_env_or("CODEX_HOME", ".codex")?]
        } else {
            args.codex_homes.clone()
        };
        let claude_dirs = if args.claude_dirs.is_empty() {
            vec![from_env_or("CLAUDE_CONFIG_DIR", ".claude")?]
        } else {
            args.claude_dirs.clone()
        };
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
        })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
