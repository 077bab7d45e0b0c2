//! `baton resume`: continue a session in its own agent, or (`--in`) in the
//! other one through a conversion.

use crate::context::Context;
use crate::locate::{Located, agent_home, codex_roots, locate_or_fetch};
use anyhow::{Context as _, Result, bail};
use baton_native::Agent;
use baton_native::layout::{claude, codex};
use baton_native::rehydrate::{NativeSession, PathMap, SessionLines, SessionOnDisk, rehydrate};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options of `baton resume`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id or unique id prefix.
    pub id: String,
    /// Send this prompt non-interactively (`codex exec … resume` / `claude -p --resume`);
    /// it may start with `-`.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub prompt: Option<String>,
    /// Continue in this agent (`codex` or `claude`): a session of the other
    /// agent is converted first (`baton convert`), or an earlier conversion
    /// of the same source bytes is reused. With --print too.
    #[arg(long = "in", value_name = "AGENT", value_parser = crate::catalog::parse_agent)]
    pub in_agent: Option<Agent>,
    /// With --in: keep secrets as they are in the conversion instead of as
    /// placeholders (after a warning that counts them).
    #[arg(long, requires = "in_agent")]
    pub no_redact: bool,
    /// Print the command (with its environment) instead of running it.
    #[arg(long)]
    pub print: bool,
    /// With --print: print `{"agent","cwd","env":{...},"argv":[...],"session_id"}` as JSON.
    #[arg(long, requires = "print")]
    pub json: bool,
}

/// Make sure the agent can find the session: if it is only in baton's
/// library, write it (whole lineage) into the agent's home. Returns the home
/// the agent should use and the session's file there.
pub fn ensure_in_agent_home(ctx: &Context, located: &Located) -> Result<(PathBuf, PathBuf)> {
    if !located.in_library {
        // A Codex fork also needs its ancestors where Codex looks.
        let session = crate::locate::on_disk(ctx, located)?;
        if session.files.len() > 1 {
            rehydrate(&session, &located.home)?;
        }
        return Ok((located.home.clone(), located.path.clone()));
    }
    let home = agent_home(ctx, located.agent)?;
    let already = match located.agent {
        Agent::Codex => codex::find_rollout(std::slice::from_ref(&home), &located.id),
        Agent::Claude => claude::find_transcripts(&home, &located.id)
            .into_iter()
            .next(),
    };
    if let Some(path) = already {
        // Rehydrated before (perhaps moved with --map-path): use that copy.
        return Ok((home, path));
    }
    let session = crate::locate::on_disk(ctx, located)?;
    let written = rehydrate(&session, &home)?;
    let path = written
        .last()
        .map(|w| w.placed.path.clone())
        .context("rehydrate wrote no file")?;
    Ok((home, path))
}

/// The command that continues a session: program, args, env and cwd.
#[derive(Debug)]
pub struct AgentCommand {
    /// The agent binary.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment to set.
    pub env: Vec<(String, OsString)>,
    /// Directory to run in.
    pub cwd: PathBuf,
}

impl AgentCommand {
    /// Build `codex resume <id>` / `claude --resume <id>` (or the
    /// non-interactive forms with a prompt after `--`) for a session in `home`.
    pub fn new(agent: Agent, id: &str, home: &Path, cwd: PathBuf, prompt: Option<&str>) -> Self {
        let (bin_var, default, home_var) = match agent {
            Agent::Codex => ("BATON_CODEX_BIN", "codex", "CODEX_HOME"),
            Agent::Claude => ("BATON_CLAUDE_BIN", "claude", "CLAUDE_CONFIG_DIR"),
        };
        let program = std::env::var_os(bin_var)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.into());
        let mut args: Vec<&str> = match (agent, prompt) {
            (Agent::Codex, None) => vec!["resume", id],
            (Agent::Codex, Some(_)) => vec!["exec", "--skip-git-repo-check", "resume", id],
            (Agent::Claude, None) => vec!["--resume", id],
            (Agent::Claude, Some(_)) => vec!["-p", "--resume", id],
        };
        if let Some(prompt) = prompt {
            // `--` ends the options (both CLIs accept it), so a prompt
            // starting with `-` is sent as text, not read as a flag.
            args.extend(["--", prompt]);
        }
        AgentCommand {
            program,
            args: args.into_iter().map(OsString::from).collect(),
            env: vec![(home_var.to_string(), home.as_os_str().to_owned())],
            cwd,
        }
    }

    /// A shell line equivalent to running this command.
    pub fn shell_line(&self) -> String {
        let mut parts = vec![format!("cd {} &&", shell_quote(self.cwd.as_os_str()))];
        parts.extend(
            self.env
                .iter()
                .map(|(k, v)| format!("{k}={}", shell_quote(v))),
        );
        parts.push(shell_quote(&self.program));
        parts.extend(self.args.iter().map(|a| shell_quote(a)));
        parts.join(" ")
    }

    /// The `resume --print --json` view: `{"agent","cwd","env","argv","session_id"}`
    /// (`argv[0]` is the program; non-UTF-8 bytes are replaced).
    pub fn to_json(&self, agent: Agent, session_id: &str) -> serde_json::Value {
        let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
        let env: serde_json::Map<String, serde_json::Value> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), text(v).into()))
            .collect();
        let argv: Vec<String> = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| text(a))
            .collect();
        serde_json::json!({
            "agent": agent,
            "cwd": text(self.cwd.as_os_str()),
            "env": env,
            "argv": argv,
            "session_id": session_id,
        })
    }

    /// Run it with inherited stdio; returns the agent's exit code.
    pub fn run(&self) -> Result<i32> {
        let status = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .status()
            .with_context(|| {
                format!(
                    "cannot start {}; install it or point BATON_CODEX_BIN / BATON_CLAUDE_BIN at it",
                    self.program.to_string_lossy()
                )
            })?;
        Ok(status.code().unwrap_or(1))
    }
}

/// Quote for POSIX sh when needed. Text with control characters (a
/// transcript's cwd or prompt) is written as `$'…'` with `\xHH` escapes, so
/// the printed line stays exact and cannot drive the terminal.
fn shell_quote(s: &std::ffi::OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b));
    if plain {
        s.into_owned()
    } else if s.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' | '\'' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => {
                    let mut utf8 = [0u8; 4];
                    for b in c.encode_utf8(&mut utf8).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How the library copy of a session relates to its agent-home file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Newer {
    /// No library copy, or it holds nothing the agent-home file lacks.
    No,
    /// The library copy strictly extends the agent-home file by this many bytes.
    Extends(u64),
    /// Neither is a prefix of the other.
    Diverged,
}

/// Compare the agent-home bytes `home` with the library copy `library`.
pub fn compare_copies(home: &[u8], library: &[u8]) -> Newer {
    if library.len() > home.len() && library.starts_with(home) {
        Newer::Extends((library.len() - home.len()) as u64)
    } else if home.starts_with(library) {
        Newer::No
    } else {
        Newer::Diverged
    }
}

/// Where the library copy of a session came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// `baton pull`/`sync` keeps it as the mirror of a server stream.
    Pulled(String),
    /// Anything else in the library: `baton import`.
    Imported,
}

impl Origin {
    /// Whether the sync state lists `library` as a pulled mirror.
    fn of(ctx: &Context, library: &Path) -> Origin {
        let Some(config) = baton_sync::state::SyncConfig::load(&ctx.baton_home)
            .ok()
            .flatten()
        else {
            return Origin::Imported;
        };
        let Ok(state) = baton_sync::state::SyncState::load(&ctx.baton_home, &config.url) else {
            return Origin::Imported;
        };
        let same = |p: &Path| {
            p == library
                || p.canonicalize()
                    .ok()
                    .is_some_and(|c| Some(c) == library.canonicalize().ok())
        };
        let pulled = state
            .sessions
            .values()
            .flat_map(|s| s.streams.values())
            .filter_map(|st| st.mirror.as_ref())
            .any(|m| same(&m.path));
        if pulled {
            Origin::Pulled(config.url)
        } else {
            Origin::Imported
        }
    }

    fn describe(&self) -> String {
        match self {
            Origin::Pulled(url) => format!("pulled from {url}"),
            Origin::Imported => "imported into baton's library".to_owned(),
        }
    }
}

/// The `--map-path` rules that would move a session from `from` to `to`:
/// none when equal, else the exact working directory, then the widest rule
/// (common trailing components dropped: `/old/x=/new/x` → `/old=/new`), as
/// `baton rehydrate --map-path` is typically given one or the other.
fn cwd_maps(from: &str, to: &str) -> Vec<Vec<PathMap>> {
    if from == to {
        return vec![Vec::new()];
    }
    let exact = PathMap {
        from: from.to_owned(),
        to: to.to_owned(),
    };
    let (mut f, mut t) = (Path::new(from), Path::new(to));
    while f.file_name().is_some() && f.file_name() == t.file_name() {
        match (f.parent(), t.parent()) {
            (Some(fp), Some(tp)) if fp.parent().is_some() && tp.parent().is_some() => {
                (f, t) = (fp, tp);
            }
            _ => break,
        }
    }
    let wide = PathMap {
        from: f.to_string_lossy().into_owned(),
        to: t.to_string_lossy().into_owned(),
    };
    let mut out = vec![Vec::new(), vec![exact.clone()]];
    if wide != exact {
        out.push(vec![wide]);
    }
    out
}

/// Compare the local session file with the library copy moved to the local
/// working directory (a session rehydrated with `--map-path` differs from
/// its library copy only in those fields). Returns the relation and the
/// library copy as moved.
fn relate(local: &NativeSession, library: NativeSession) -> (Newer, NativeSession) {
    let mine = &local.session_file().bytes;
    let maps = match (library.cwd(), local.cwd()) {
        (Some(from), Some(to)) => cwd_maps(&from, &to),
        _ => vec![Vec::new()],
    };
    for map in maps {
        let moved = library.map_paths(&map);
        let relation = compare_copies(mine, &moved.session_file().bytes);
        if relation != Newer::Diverged {
            return (relation, moved);
        }
    }
    (Newer::Diverged, library)
}

/// When the library copy (pulled from the sync server, or imported) continues
/// the agent-home file of `located`, continue that newest history instead:
/// write a full-copy fork into the agent home (the agent's own file is never
/// modified) and return it as the session to resume. With `print` nothing is
/// written: the decision is explained and the local copy is kept. When the
/// two copies diverged, say so and keep the agent-home copy.
fn prefer_newest(ctx: &Context, located: Located, print: bool) -> Result<Located> {
    let Some(library) = located.library_copy.clone().filter(|_| !located.in_library) else {
        return Ok(located);
    };
    let roots = codex_roots(ctx);
    let local = NativeSession::load(located.agent, &located.path, &roots)?;
    let theirs = match NativeSession::load(located.agent, &library, &roots) {
        Ok(theirs) => theirs,
        Err(e) => {
            eprintln!(
                "note: not comparing with the library copy of session {} ({e}); resuming {}",
                located.id,
                located.path.display()
            );
            return Ok(located);
        }
    };
    let origin = Origin::of(ctx, &library);
    let (relation, theirs) = relate(&local, theirs);
    match relation {
        Newer::No => Ok(located),
        Newer::Diverged => {
            let what = match &origin {
                Origin::Pulled(url) => format!(
                    "{url} has a different continuation of session {}; resuming your local copy {}. \
                     Run `baton sync` to keep both (it prints the id of the divergence copy), then resume that id to continue the other one",
                    located.id,
                    located.path.display()
                ),
                Origin::Imported => format!(
                    "the copy of session {} imported into baton's library ({}) has a different continuation; \
                     resuming your local copy {}. To continue the imported one, import its envelope again with \
                     `baton import FILE --as-fork` (it gets a new id)",
                    located.id,
                    library.display(),
                    located.path.display()
                ),
            };
            eprintln!("note: {what}");
            Ok(located)
        }
        Newer::Extends(n) if print => {
            eprintln!(
                "note: the copy of session {} {} has {n} newer bytes from another machine; \
                 `baton resume {}` (without --print) would continue them as a new session forked from {}, \
                 leaving your local file {} as is. --print writes nothing, so the command below continues your local copy",
                located.id,
                origin.describe(),
                located.id,
                located.id,
                located.path.display()
            );
            Ok(located)
        }
        Newer::Extends(n) => {
            let folder = local_claude_folder(&located);
            let (forked, path) = crate::place::write_fork(
                &theirs,
                baton_native::fork::Cut::DropLast(0),
                &located.home,
                folder.as_deref(),
            )?;
            eprintln!(
                "the copy of session {} {} has {n} newer bytes from another machine; \
                 your local file {} was not modified.\ncontinuing the newest history as new session {} (forked from {}): {}",
                located.id,
                origin.describe(),
                located.path.display(),
                forked.id,
                located.id,
                path.display()
            );
            Ok(Located {
                agent: located.agent,
                id: forked.id,
                path,
                home: located.home,
                in_library: false,
                library_copy: None,
            })
        }
    }
}

/// The Claude project folder of a located agent-home file (forks of it go
/// next to it); `None` for Codex.
fn local_claude_folder(located: &Located) -> Option<String> {
    (located.agent == Agent::Claude)
        .then(|| {
            located
                .path
                .parent()?
                .file_name()?
                .to_str()
                .map(str::to_owned)
        })
        .flatten()
}

/// The session that continues `located` in the agent `to`: an earlier
/// conversion of the same source bytes that is still on this machine, else
/// a new one written into `to`'s home.
fn converted_for(ctx: &Context, located: Located, to: Agent, no_redact: bool) -> Result<Located> {
    let on_disk = SessionOnDisk::locate(located.agent, &located.path, &codex_roots(ctx))?;
    let redactor = crate::secrets::redactor(ctx, None)?;
    let source = crate::secrets::for_exit(&redactor, &on_disk, no_redact)?;
    let digest = crate::place::source_digest(&source)?;
    let (earlier, _) = baton_store::read_conversions(&ctx.baton_home);
    let from = baton_store::SessionRef {
        agent: located.agent,
        id: located.id.clone(),
    };
    for c in earlier.iter().rev() {
        if c.agent == to
            && c.converted_from == from
            && c.source_sha256 == digest
            && let Ok(found) = crate::locate::locate(ctx, &c.id)
        {
            eprintln!(
                "continuing {} session {} in {to} as its earlier conversion {}",
                located.agent, located.id, c.id
            );
            return Ok(found);
        }
    }
    let home = agent_home(ctx, to)?;
    let (converted, path) = crate::place::write_converted(&source, to, &home, &ctx.baton_home)?;
    eprintln!(
        "converted {} session {} to {to} session {}: {}\n{}",
        located.agent,
        located.id,
        converted.id,
        path.display(),
        crate::place::describe_dropped(&converted.dropped)
    );
    Ok(Located {
        agent: to,
        id: converted.id,
        path,
        home,
        in_library: false,
        library_copy: None,
    })
}

/// Run `baton resume`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let located = prefer_newest(ctx, locate_or_fetch(ctx, &args.id)?, args.print)?;
    let located = match args.in_agent {
        Some(to) if to != located.agent => converted_for(ctx, located, to, args.no_redact)?,
        _ => located,
    };
    let (home, path) = ensure_in_agent_home(ctx, &located)?;
    let session = SessionOnDisk::locate(located.agent, &path, &codex_roots(ctx))?;
    let cwd = match session.cwd() {
        Some(cwd) if args.print || Path::new(&cwd).is_dir() => PathBuf::from(cwd),
        Some(cwd) => bail!(
            "session {} ran in {cwd}, which does not exist on this machine; move it with \
             `baton rehydrate {} --map-path {cwd}=NEW_DIR`, then resume the id it prints \
             (a session already in the agent home is kept as is and the moved copy gets a new id)",
            located.id,
            located.id
        ),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let command = AgentCommand::new(
        located.agent,
        &located.id,
        &home,
        cwd,
        args.prompt.as_deref(),
    );
    if args.print {
        if args.json {
            return crate::output::print_json(&command.to_json(located.agent, &located.id));
        }
        println!("{}", command.shell_line());
        return Ok(());
    }
    let code = command.run()?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_compare_by_verified_prefix() {
        assert_eq!(compare_copies(b"a\n", b"a\nb\n"), Newer::Extends(2));
        assert_eq!(compare_copies(b"a\nb\n", b"a\nb\n"), Newer::No);
        assert_eq!(compare_copies(b"a\nb\n", b"a\n"), Newer::No);
        assert_eq!(compare_copies(b"a\nc\n", b"a\nb\nd\n"), Newer::Diverged);
    }

    #[test]
    fn cwd_maps_try_exact_then_widest() {
        let rules = |from: &str, to: &str| -> Vec<Vec<(String, String)>> {
            cwd_maps(from, to)
                .into_iter()
                .map(|m| m.into_iter().map(|r| (r.from, r.to)).collect())
                .collect()
        };
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(rules("/a/x", "/a/x"), vec![vec![]]);
        assert_eq!(
            rules("/srv/w/beta", "/home/me/beta"),
            vec![
                vec![],
                vec![pair("/srv/w/beta", "/home/me/beta")],
                vec![pair("/srv/w", "/home/me")],
            ]
        );
        // Never widened to the root.
        assert_eq!(
            rules("/beta", "/x/beta"),
            vec![vec![], vec![pair("/beta", "/x/beta")]]
        );
    }

    #[test]
    fn commands_quote_and_carry_the_home() {
        let cmd = AgentCommand::new(
            Agent::Claude,
            "abc",
            Path::new("/h/my dir"),
            PathBuf::from("/w"),
            Some("it's new"),
        );
        let line = cmd.shell_line();
        assert!(
            line.starts_with("cd /w && CLAUDE_CONFIG_DIR='/h/my dir' "),
            "{line}"
        );
        assert!(
            line.ends_with("-p --resume abc -- 'it'\\''s new'"),
            "{line}"
        );
        // Control characters are escaped, never printed raw.
        let cmd = AgentCommand::new(
            Agent::Codex,
            "abc",
            Path::new("/h"),
            PathBuf::from("/w/\x1b]0;pwned\x07 it's\\"),
            None,
        );
        let line = cmd.shell_line();
        assert!(
            line.starts_with(r"cd $'/w/\x1b]0;pwned\x07 it\'s\\' && "),
            "{line}"
        );
        assert!(!line.chars().any(char::is_control), "{line}");
    }
}
