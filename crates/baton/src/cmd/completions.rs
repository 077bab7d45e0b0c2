//! `baton completions`: shell completion scripts.

use clap::CommandFactory;

/// Options of `baton completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    pub shell: clap_complete::Shell,
}

/// Print completions for `C` to stdout.
pub fn run<C: CommandFactory>(args: Args) -> anyhow::Result<()> {
    let mut cmd = C::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(())
}
