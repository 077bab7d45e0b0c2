//! `baton serve`: the sync server and web UI, `baton serve user add` and
//! `baton serve token`.

use crate::context::Context;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Options of `baton serve`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Do not mirror this machine's own sessions into the `local` account.
    #[arg(long)]
    no_catalog: bool,
    /// Largest accepted push body, in MiB (413 beyond it; 1 to 1024).
    #[arg(long, value_name = "MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    max_append_mib: u64,
    /// Most push bytes held in memory at once across all requests, in MiB;
    /// pushes beyond it wait, then get 503 with Retry-After (at least
    /// --max-append-mib, at most 65536).
    #[arg(long, value_name = "MIB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    max_inflight_mib: u64,
    /// Seconds between rescans of this machine's sessions (1 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    rescan_secs: u64,
    /// What to do with a push whose plaintext holds a secret the rules
    /// detect (only clients run with --no-redact, or older ones, send any):
    /// `refuse` it (422 `secret_found`), `redact` it with placeholders nobody
    /// can open, or `accept` it.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = Secrets::Refuse)]
    secrets: Secrets,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(subcommand)]
    command: Option<ServeCommand>,
}

/// Values of `baton serve --secrets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Secrets {
    /// Answer 422 and store nothing.
    Refuse,
    /// Store the push with every secret replaced.
    Redact,
    /// Store the push as it is.
    Accept,
}

/// Where the server keeps its data: `baton serve` and `baton serve user add` take the same.
#[derive(Debug, Clone, clap::Args)]
struct StorageArgs {
    /// Database for metadata, accounts and search: `postgres://USER@HOST:PORT/DATABASE`
    /// (a password goes after USER and a colon) runs a team server (any number of replicas may
    /// share it); default: SQLite in BATON_HOME.
    #[arg(long, value_name = "URL", env = "BATON_DATABASE_URL")]
    database: Option<String>,
    /// Store for session bytes: s3://BUCKET[/PREFIX] in an S3-compatible store (AWS_ENDPOINT_URL,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP=true for plain http);
    /// default: files in BATON_HOME.
    #[arg(long, value_name = "URL", env = "BATON_BLOBS")]
    blobs: Option<String>,
}

impl StorageArgs {
    /// The backends named (an empty value means the default).
    fn backends(&self) -> baton_server::Backends {
        let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        baton_server::Backends {
            database: given(&self.database),
            blobs: given(&self.blobs),
        }
    }

    /// Where the data lives, for messages.
    fn describe(&self, dir: &std::path::Path) -> String {
        let b = self.backends();
        let database = b.database.as_deref().map_or_else(
            || format!("{}", dir.display()),
            baton_server::postgres::redact,
        );
        match b.blobs {
            Some(blobs) => format!("{database} and {blobs}"),
            None => database,
        }
    }
}

/// Administration subcommands (work offline against the data directory).
#[derive(Debug, clap::Subcommand)]
enum ServeCommand {
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the built-in `local` account's token (created on first use),
    /// for `baton login` or the web viewer; the server never logs it.
    Token {
        /// Print `{"user","token"}` as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Create an account and print its bearer token.
    Add {
        /// Account name (letters, digits, `-`, `_`, `.`).
        name: String,
        /// Print `{"user","token"}` as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// `n` MiB in bytes (`n` is range-checked by clap, so this cannot overflow).
fn mib(n: u64) -> usize {
    usize::try_from(n * 1024 * 1024).unwrap_or(usize::MAX)
}

fn data_dir(ctx: &Context) -> PathBuf {
    ctx.baton_home.join("server")
}

/// Run `baton serve`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let dir = data_dir(ctx);
    match args.command {
        Some(ServeCommand::User(UserCommand::Add {
            name,
            json,
            storage,
        })) => {
            let user = runtime
                .block_on(baton_server::add_user_to(&storage.backends(), &dir, &name))
                .with_context(|| {
                    format!("cannot create user `{name}` in {}", storage.describe(&dir))
                })?;
            if json {
                crate::output::print_json(&user)?;
            } else {
                println!("created user {}; its token (shown once):", user.user);
                println!("{}", user.token);
            }
            Ok(())
        }
        Some(ServeCommand::Token { json }) => {
            let token = baton_server::local_token(&dir)
                .with_context(|| format!("cannot read the `local` token in {}", dir.display()))?;
            if json {
                crate::output::print_json(&baton_protocol::NewUser {
                    user: baton_server::LOCAL_USER.to_string(),
                    token,
                })?;
            } else {
                println!("{token}");
            }
            Ok(())
        }
        None => {
            let mut config = baton_server::ServerConfig::new(dir.clone());
            config.listen = args.listen;
            config.backends = args.storage.backends();
            let described = args.storage.describe(&dir);
            if args.max_inflight_mib < args.max_append_mib {
                return Err(crate::output::UsageError(format!(
                    "--max-inflight-mib ({}) must be at least --max-append-mib ({}), or no push of the largest size could ever run",
                    args.max_inflight_mib, args.max_append_mib
                ))
                .into());
            }
            config.limits.max_append = mib(args.max_append_mib);
            config.limits.max_inflight = mib(args.max_inflight_mib);
            config.rescan_every = std::time::Duration::from_secs(args.rescan_secs);
            config.secrets = match args.secrets {
                Secrets::Refuse => baton_server::api::SecretPolicy::Refuse,
                Secrets::Redact => baton_server::api::SecretPolicy::Redact,
                Secrets::Accept => baton_server::api::SecretPolicy::Accept,
            };
            if !args.no_catalog {
                let rescan_now = config.rescan_now.clone();
                let watch_ctx = ctx.clone();
                std::thread::spawn(move || {
                    let watched = crate::watcher::run(&watch_ctx, |_| rescan_now.notify_one());
                    if let Err(e) = watched {
                        eprintln!(
                            "warning: no file watcher, sessions are rescanned every {}s: {e:#}",
                            args.rescan_secs
                        );
                    }
                });
                config.local = Some(baton_server::local::LocalSources {
                    codex_homes: ctx.codex_homes.clone(),
                    claude_dirs: ctx.claude_dirs.clone(),
                });
            }
            runtime.block_on(async move {
                let server = baton_server::start(config)
                    .await
                    .with_context(|| format!("cannot start the server with data in {described}"))?;
                eprintln!("baton serve: listening on http://{}", server.addr);
                eprintln!(
                    "open http://{}/#token=TOKEN with the `local` account's token, which `baton serve token` prints",
                    server.addr
                );
                if args.no_catalog {
                    eprintln!("this machine's sessions are not mirrored (--no-catalog)");
                }
                tokio::select! {
                    res = server.wait() => res.context("the server stopped"),
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
    }
}
