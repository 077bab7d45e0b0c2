//! `baton watch`: keep the catalog current in the foreground, or install a
//! systemd user unit that does.

use crate::context::Context;
use crate::watcher;
use anyhow::{Context as _, Result};

/// Options of `baton watch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write a systemd user unit (`baton-watch.service`, under
    /// `$XDG_CONFIG_HOME/systemd/user`) running this watcher, instead of watching.
    #[arg(long)]
    pub install: bool,
}

/// Run `baton watch`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    if args.install {
        let config =
            dirs::config_dir().context("cannot find your config directory; set XDG_CONFIG_HOME")?;
        let path = watcher::install_unit(ctx, &config)?;
        println!("wrote {}", path.display());
        println!(
            "start it now and at every login: systemctl --user daemon-reload && systemctl --user enable --now {}",
            watcher::UNIT_NAME
        );
        return Ok(());
    }
    eprintln!(
        "baton watch: keeping {} current (stop with Ctrl-C)",
        ctx.baton_home.display()
    );
    watcher::run(ctx, |report| {
        tracing::info!(
            "catalog: {} new, {} grown, {} re-read, {} removed file(s)",
            report.files_new,
            report.files_appended,
            report.files_reread,
            report.files_removed
        );
    })
}
