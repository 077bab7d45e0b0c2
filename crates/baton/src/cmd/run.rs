//! `baton run`: launch `codex` or `claude` behind the capture proxy.
//!
//! The proxy (`baton_record::capture`) listens on 127.0.0.1; the agent is
//! pointed at it, and every model request and response is written to
//! `<data>/sessions/<session_id>/raw_api.jsonl`.
//!
//! * Claude Code: `ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`.
//! * Codex, built-in `openai` provider: `-c openai_base_url="http://127.0.0.1:PORT/v1"`.
//! * Codex, custom provider (the `model_provider` of `config.toml`, a profile,
//!   or a `-c model_provider=...` in the agent arguments, resolved by
//!   `baton_native::codex::config`):
//!   `-c model_providers.<id>.base_url="http://127.0.0.1:PORT<path of its base_url>"`.
//!
//! The default upstream is where the agent would have gone without baton.
//!
//! The session directory is always written (capturing is what `baton run` is
//! for). `--persist-session` also links the agent's own transcript into it as
//! `transcript.jsonl` and routes baton's log lines about the session to its
//! `session.log`; `--debug-log` writes baton's debug log (a relative path
//! lands inside the session directory). When the data directory cannot be
//! written baton warns once and the agent runs uncaptured; `baton run` always
//! exits with the agent's exit code.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use baton_native::Agent;
use baton_native::write::{self, Owned};
use baton_record::capture::{CaptureConfig, CaptureProxy, SessionHook, UNATTRIBUTED};
use baton_record::{SessionDir, SessionLogRouter, resolve_debug_log};
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use tracing::Level;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::context::Context;

/// Upstream of Claude Code.
const ANTHROPIC_UPSTREAM: &str = "https://api.anthropic.com";

/// Options of `baton run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  baton run codex -- exec \"fix the tests\"\n  baton run claude -- -p \"hi\"\n  baton run codex --upstream http://127.0.0.1:8080/v1\n  baton run codex --persist-session --debug-log debug.log -- exec \"hi\""
)]
pub struct Args {
    /// The agent to launch.
    #[arg(value_parser = PossibleValuesParser::new([Agent::Codex.as_str(), Agent::Claude.as_str()])
        .try_map(|s| s.parse::<Agent>()))]
    pub agent: Agent,
    /// Forward model traffic here instead of the agent's own upstream
    /// (Codex: the configured provider's base URL, default `https://api.openai.com/v1`;
    /// Claude: $ANTHROPIC_BASE_URL, default `https://api.anthropic.com`).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// baton data directory receiving `sessions/<id>/raw_api.jsonl` (default: $BATON_HOME).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Also link the agent's transcript into the session directory
    /// (`transcript.jsonl`) and write baton's log lines about the session to
    /// its `session.log`.
    #[arg(long)]
    pub persist_session: bool,
    /// Write baton's debug log to PATH; a relative PATH lands inside the
    /// session directory (inside the data directory when no session was seen).
    #[arg(long, value_name = "PATH")]
    pub debug_log: Option<PathBuf>,
    /// The agent executable (default: `codex` or `claude` on PATH).
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// Arguments passed to the agent unchanged (put them after `--`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// How the agent is launched once the proxy is up.
#[derive(Debug, Default, PartialEq)]
struct Launch {
    /// Arguments inserted before the user's.
    prefix_args: Vec<String>,
    /// Environment variables set on the agent.
    env: Vec<(String, OsString)>,
}

/// Run `baton run`: exits with the agent's exit code.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let plan = Plan::new(ctx, &args)?;
    let data_dir = args.data.clone().unwrap_or_else(|| ctx.baton_home.clone());
    let logs = RunLogs::new(&args);
    let dispatch = logs.dispatch();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    if let Some(dispatch) = dispatch.clone() {
        // Runtime threads live as long as the runtime: keep the default set.
        builder
            .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&dispatch)));
    }
    let runtime = builder.build().context("cannot start the async runtime")?;
    let work = || runtime.block_on(run_agent(plan, &args, data_dir, &logs));
    let code = match &dispatch {
        Some(dispatch) => tracing::dispatcher::with_default(dispatch, work)?,
        None => work()?,
    };
    drop(runtime);
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// What `baton run` decided before starting anything.
#[derive(Debug)]
struct Plan {
    agent: Agent,
    upstream: String,
    /// Codex provider whose base URL is overridden (`None`: built-in openai).
    codex_provider: Option<String>,
    /// `CODEX_HOME` / `CLAUDE_CONFIG_DIR` to pass on, when not the agent default.
    home_env: Option<(String, PathBuf)>,
    /// The agent home the agent writes its transcripts under.
    home: PathBuf,
}

impl Plan {
    fn new(ctx: &Context, args: &Args) -> Result<Self> {
        match args.agent {
            Agent::Codex => {
                let home = ctx
                    .codex_homes
                    .first()
                    .context("no Codex home; pass --codex-home")?;
                let target = baton_native::codex::config::resolve_target(home, &args.args)?;
                let upstream = args
                    .upstream
                    .clone()
                    .unwrap_or_else(|| target.upstream.clone());
                Ok(Self {
                    agent: Agent::Codex,
                    upstream,
                    codex_provider: target.provider,
                    home_env: home_env("CODEX_HOME", home, ".codex"),
                    home: home.clone(),
                })
            }
            Agent::Claude => {
                let dir = ctx
                    .claude_dirs
                    .first()
                    .context("no Claude config dir; pass --claude-dir")?;
                let upstream = args.upstream.clone().unwrap_or_else(|| {
                    std::env::var("ANTHROPIC_BASE_URL")
                        .ok()
                        .filter(|v| !v.trim().is_empty())
                        .unwrap_or_else(|| ANTHROPIC_UPSTREAM.to_string())
                });
                Ok(Self {
                    agent: Agent::Claude,
                    upstream,
                    codex_provider: None,
                    home_env: home_env("CLAUDE_CONFIG_DIR", dir, ".claude"),
                    home: dir.clone(),
                })
            }
        }
    }

    /// Arguments and environment that point the agent at `base_url`
    /// (`None`: the agent's own upstream, nothing captured).
    fn launch(&self, base_url: Option<&str>) -> Launch {
        let mut launch = Launch::default();
        match (self.agent, base_url) {
            (_, None) => {}
            (Agent::Codex, Some(base_url)) => {
                let key = match &self.codex_provider {
                    Some(id) => format!("model_providers.{id}.base_url"),
                    None => "openai_base_url".to_string(),
                };
                let value = toml::Value::String(base_url.to_string());
                launch.prefix_args = vec!["-c".to_string(), format!("{key}={value}")];
            }
            (Agent::Claude, Some(base_url)) => {
                launch
                    .env
                    .push(("ANTHROPIC_BASE_URL".to_string(), base_url.into()));
            }
        }
        if let Some((var, path)) = &self.home_env {
            launch
                .env
                .push((var.clone(), path.clone().into_os_string()));
        }
        // The agent must reach the loopback proxy directly, never through an
        // HTTP proxy configured for the outside world.
        for var in ["NO_PROXY", "no_proxy"] {
            let mut value = std::env::var_os(var).unwrap_or_default();
            if !value.is_empty() {
                value.push(",");
            }
            value.push("127.0.0.1,localhost");
            launch.env.push((var.to_string(), value));
        }
        launch
    }
}

/// Pass a home directory to the agent only when it is not what the agent
/// would pick itself (the variable unset means `~/<default>`).
fn home_env(var: &str, path: &Path, default: &str) -> Option<(String, PathBuf)> {
    let is_default = std::env::var_os(var).is_none_or(|v| v.is_empty())
        && dirs::home_dir().is_some_and(|h| h.join(default) == path);
    (!is_default).then(|| (var.to_string(), path.to_path_buf()))
}

async fn run_agent(plan: Plan, args: &Args, data_dir: PathBuf, logs: &RunLogs) -> Result<i32> {
    let default_bin = plan.agent.as_str();
    let sessions = data_dir.join("sessions");
    let proxy = match std::fs::create_dir_all(&sessions) {
        Ok(()) => Some(
            CaptureProxy::start(CaptureConfig {
                on_session: Some(logs.hook(&plan)),
                ..CaptureConfig::new(plan.upstream.clone(), &data_dir)
            })
            .await?,
        ),
        Err(err) => {
            eprintln!(
                "baton: warning: cannot write session directories under {}: {err}; running {default_bin} without capturing its traffic (fix the permissions, free some space or pass --data DIR)",
                sessions.display()
            );
            None
        }
    };
    let base_url = proxy.as_ref().map(CaptureProxy::base_url);
    let launch = plan.launch(base_url.as_deref());
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_bin));
    let mut command = tokio::process::Command::new(&bin);
    command.args(&launch.prefix_args).args(&args.args);
    for (key, value) in &launch.env {
        command.env(key, value);
    }
    tracing::debug!(
        upstream = %plan.upstream,
        proxy = ?base_url,
        "launching {}",
        bin.display()
    );
    let status = match command.spawn() {
        Ok(child) => wait_forwarding_signals(child).await,
        Err(err) => Err(spawn_error(&bin, default_bin, err)),
    };
    let summary = match proxy {
        Some(proxy) => Some(proxy.shutdown().await),
        None => None,
    };
    logs.finish(&plan, &data_dir).await;
    let code = status?;
    match summary {
        None => {}
        Some(Err(err)) => eprintln!(
            "baton: warning: the agent ran, but its traffic could not be saved under {}: {err}; check the permissions and free space there, or pass --data DIR",
            sessions.display()
        ),
        Some(Ok(summary)) if summary.exchanges == 0 => eprintln!(
            "baton: no model traffic went through the capture proxy (upstream {})",
            plan.upstream
        ),
        Some(Ok(summary)) => eprintln!(
            "baton: recorded {} model request(s) for {} under {}",
            summary.exchanges,
            summary.sessions.join(", "),
            sessions.display()
        ),
    }
    Ok(code)
}

/// What `--persist-session` and `--debug-log` add to a run.
struct RunLogs {
    /// `--persist-session` was given.
    persist: bool,
    /// Sends baton's events about a session to its `session.log`.
    router: SessionLogRouter,
    /// `--debug-log`.
    debug: Option<DebugLog>,
    /// Agent session directories opened so far.
    dirs: Arc<Mutex<Vec<SessionDir>>>,
}

impl RunLogs {
    fn new(args: &Args) -> Self {
        let debug = args.debug_log.as_deref().map(DebugLog::new);
        RunLogs {
            persist: args.persist_session,
            router: SessionLogRouter::new(),
            debug,
            dirs: Arc::default(),
        }
    }

    /// The tracing subscriber of this run: the usual stderr log plus the
    /// session router and the debug log; `None` (keep the global one) when
    /// neither flag was given.
    fn dispatch(&self) -> Option<tracing::Dispatch> {
        if !self.persist && self.debug.is_none() {
            return None;
        }
        let router = self
            .persist
            .then(|| self.router.layer().with_filter(LevelFilter::INFO));
        let debug = self.debug.clone().map(|log| {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(log)
                .with_filter(
                    Targets::new()
                        .with_target("baton", Level::DEBUG)
                        .with_default(Level::INFO),
                )
        });
        let subscriber = tracing_subscriber::registry()
            .with(crate::output::stderr_log_layer())
            .with(router)
            .with(debug);
        Some(tracing::Dispatch::new(subscriber))
    }

    /// Called by the proxy as each session directory opens, before its first
    /// exchange is written.
    fn hook(&self, plan: &Plan) -> SessionHook {
        let persist = self.persist;
        let router = self.router.clone();
        let debug = self.debug.clone();
        let dirs = self.dirs.clone();
        let (agent, home) = (plan.agent, plan.home.clone());
        Arc::new(move |dir: &SessionDir| {
            if dir.id() == UNATTRIBUTED {
                return;
            }
            if persist {
                router.attach(dir);
                link_native_transcript(agent, &home, dir);
            }
            if let Some(log) = &debug {
                log.place(dir.path());
            }
            if let Ok(mut dirs) = dirs.lock() {
                dirs.push(dir.clone());
            }
        })
    }

    /// After the agent exited: link transcripts that appeared late, open a
    /// debug log no session claimed (in `data_dir`), flush `session.log`s.
    async fn finish(&self, plan: &Plan, data_dir: &Path) {
        if let Some(log) = &self.debug {
            log.place(data_dir);
        }
        let dirs = self
            .dirs
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        for dir in &dirs {
            if self.persist {
                link_native_transcript(plan.agent, &plan.home, dir);
                self.router.detach(dir.id());
            }
            if let Err(err) = dir.flush().await {
                eprintln!("baton: warning: {err}");
            }
        }
    }
}

/// Point the session directory's `transcript.jsonl` at the agent's own
/// transcript of that session, once the agent has created it.
fn link_native_transcript(agent: Agent, home: &Path, dir: &SessionDir) {
    let home = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
    let found = match agent {
        Agent::Codex => baton_native::layout::codex::rollouts_of(&home, dir.id()),
        Agent::Claude => baton_native::layout::claude::find_transcripts(&home, dir.id()),
    };
    let Some(transcript) = found
        .into_iter()
        .rfind(|p| !baton_native::files::is_compressed(p))
    else {
        tracing::debug!(
            session_id = dir.id(),
            "the agent has not written its transcript yet"
        );
        return;
    };
    match dir.link_transcript(&transcript) {
        Ok(()) => tracing::debug!(
            session_id = dir.id(),
            "transcript.jsonl -> {}",
            transcript.display()
        ),
        Err(err) => tracing::warn!(
            session_id = dir.id(),
            "cannot link the transcript into the session directory: {err}"
        ),
    }
}

/// Largest amount of debug log kept in memory until its file can be opened.
const DEBUG_PENDING_CAP: usize = 1 << 20;

/// `--debug-log`: an absolute path is opened at once; a relative one once the
/// session directory is known, with earlier lines held in memory until then.
#[derive(Clone)]
struct DebugLog(Arc<Mutex<DebugSink>>);

enum DebugSink {
    /// Not opened yet: the path as given and what was logged so far.
    Pending { path: PathBuf, buf: Vec<u8> },
    /// Appending to this file.
    Open(std::fs::File),
    /// The file could not be opened (warned once); lines are dropped.
    Off,
}

impl DebugLog {
    fn new(path: &Path) -> Self {
        let log = DebugLog(Arc::new(Mutex::new(DebugSink::Pending {
            path: path.to_path_buf(),
            buf: Vec::new(),
        })));
        if path.is_absolute() {
            log.place(path);
        }
        log
    }

    /// Open the log, a relative path inside `dir` (see [`resolve_debug_log`]),
    /// unless it is open already; lines held so far are written first. A
    /// failure is reported once and the run goes on without the log.
    fn place(&self, dir: &Path) {
        let Ok(mut sink) = self.0.lock() else { return };
        let DebugSink::Pending { path, buf } = &mut *sink else {
            return;
        };
        let target = resolve_debug_log(None, dir, path);
        let opened = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write::open_owned(&target, Owned::Append, 0o600))
            .and_then(|mut file| file.write_all(buf).map(|()| file));
        *sink = match opened {
            Ok(file) => DebugSink::Open(file),
            Err(err) => {
                // Not `tracing`: this runs inside the log writer.
                eprintln!(
                    "baton: warning: cannot write the debug log {}: {err}; continuing without it",
                    target.display()
                );
                DebugSink::Off
            }
        };
    }
}

impl std::io::Write for DebugLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut sink) = self.0.lock() {
            match &mut *sink {
                DebugSink::Pending { buf, .. } => {
                    if buf.len() + bytes.len() <= DEBUG_PENDING_CAP {
                        buf.extend_from_slice(bytes);
                    }
                }
                DebugSink::Open(file) => file.write_all(bytes)?,
                DebugSink::Off => {}
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for DebugLog {
    type Writer = DebugLog;

    fn make_writer(&'a self) -> DebugLog {
        self.clone()
    }
}

fn spawn_error(bin: &Path, default_bin: &str, err: std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "cannot find `{}`; install it or pass its path with --bin",
            bin.display()
        )
    } else {
        anyhow::Error::new(err).context(format!("cannot start `{}` ({default_bin})", bin.display()))
    }
}

/// Wait for the agent. Ctrl-C reaches the agent from the terminal (same
/// process group), so baton ignores SIGINT and keeps the proxy alive; SIGTERM
/// and SIGHUP sent to baton are passed on to the agent.
#[cfg(unix)]
async fn wait_forwarding_signals(mut child: tokio::process::Child) -> Result<i32> {
    use std::os::unix::process::ExitStatusExt as _;
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let pid = child.id();
    let forward = |sig: libc::c_int| {
        if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: kill(2) with a pid we spawned and still own; no memory involved.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for the agent failed")?,
            _ = interrupt.recv() => {}
            _ = terminate.recv() => forward(libc::SIGTERM),
            _ = hangup.recv() => forward(libc::SIGHUP),
        }
    };
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

/// Wait for the agent (no signal handling off Unix).
#[cfg(not(unix))]
async fn wait_forwarding_signals(mut child: tokio::process::Child) -> Result<i32> {
    let status = child.wait().await.context("waiting for the agent failed")?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn custom_provider_gets_the_proxy_as_its_base_url() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            "model_provider = \"mock\"\n[model_providers.mock]\nbase_url = \"http://10.0.0.1:9/v1\"\n",
        )
        .unwrap();
        let target =
            baton_native::codex::config::resolve_target(home.path(), &os(&["exec", "hi"])).unwrap();
        assert_eq!(target.upstream, "http://10.0.0.1:9/v1");
        let plan = Plan {
            agent: Agent::Codex,
            upstream: target.upstream,
            codex_provider: target.provider,
            home_env: None,
            home: home.path().to_path_buf(),
        };
        let launch = plan.launch(Some("http://127.0.0.1:5/v1"));
        assert_eq!(
            launch.prefix_args,
            vec![
                "-c".to_string(),
                "model_providers.mock.base_url=\"http://127.0.0.1:5/v1\"".to_string()
            ]
        );
    }

    #[test]
    fn claude_gets_the_base_url_in_its_environment() {
        let plan = Plan {
            agent: Agent::Claude,
            upstream: ANTHROPIC_UPSTREAM.into(),
            codex_provider: None,
            home_env: None,
            home: PathBuf::from("/claude"),
        };
        let launch = plan.launch(Some("http://127.0.0.1:7"));
        assert!(launch.prefix_args.is_empty());
        assert!(launch.env.contains(&(
            "ANTHROPIC_BASE_URL".to_string(),
            OsString::from("http://127.0.0.1:7")
        )));
        let no_proxy = launch.env.iter().find(|(k, _)| k == "NO_PROXY").unwrap();
        assert!(
            no_proxy
                .1
                .to_string_lossy()
                .ends_with("127.0.0.1,localhost")
        );
    }
}
