//! `baton login`: remember a sync server and token.

use crate::context::Context;
use crate::output;
use crate::remote::{CryptoArgs, login};
use baton_sync::state::SyncConfig;
use serde::Serialize;

/// Options of `baton login`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The token comes from `baton serve user add NAME` on the server. The login is kept in $BATON_HOME/sync.json (mode 0600).\n\nWith --encrypt, sessions you push from now on are end-to-end encrypted: the server keeps only ciphertext, so its search and web viewer cannot show them; search them with `baton search` on your machines."
)]
pub struct Args {
    /// Server base URL, e.g. http://127.0.0.1:7878 (where `baton serve` listens by default).
    pub url: String,
    /// Bearer token for your account on that server. Leave it out to type
    /// it at a prompt or pipe it on stdin, so it stays out of `ps` and your
    /// shell history.
    pub token: Option<String>,
    /// Encryption options.
    #[command(flatten)]
    crypto: CryptoArgs,
    /// Print the saved login as JSON (without the token):
    /// `{"url","user","encrypt","key_file","config"}`.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct LoginJson<'a> {
    url: &'a str,
    user: &'a str,
    encrypt: bool,
    key_file: Option<&'a std::path::Path>,
    config: std::path::PathBuf,
}

/// Run `baton login`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let token = match args.token {
        Some(token) => token,
        None => read_token()?,
    };
    let (config, who) = login(ctx, &args.url, &token, &args.crypto)?;
    let path = SyncConfig::path(&ctx.baton_home);
    if args.json {
        return output::print_json(&LoginJson {
            url: &config.url,
            user: &who.user,
            encrypt: config.encrypt,
            key_file: config.key_file.as_deref(),
            config: path,
        });
    }
    println!(
        "logged in to {} as {} (saved in {})",
        config.url,
        who.user,
        path.display()
    );
    if config.encrypt {
        match &config.key_file {
            Some(k) => println!(
                "new sessions are end-to-end encrypted with the key in {}",
                k.display()
            ),
            None => println!(
                "new sessions are end-to-end encrypted with a key from BATON_PASSPHRASE (or a prompt); use the same passphrase on every machine"
            ),
        }
    }
    Ok(())
}

/// The token typed at a prompt (stdin is a terminal) or the first line of
/// stdin, without surrounding whitespace.
fn read_token() -> anyhow::Result<String> {
    use anyhow::Context as _;
    let token = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password("token: ").context("cannot read the token from the terminal")?
    } else {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)
            .context("cannot read the token from stdin")?;
        line
    };
    let token = token.trim();
    if token.is_empty() {
        anyhow::bail!(
            "no token given: pass it on stdin (`baton login URL < token-file`), type it at the prompt, or give it as the second argument"
        );
    }
    Ok(token.to_owned())
}
