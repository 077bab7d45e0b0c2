//! The pinned real CLIs, throwaway agent homes, and running commands with a timeout.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::ModelServer;
use baton_native::layout::{claude, codex};

/// Pinned Codex CLI version.
pub const CODEX_VERSION: &str = "0.169.0";
/// Pinned Claude Code version.
pub const CLAUDE_VERSION: &str = "2.1.330";
/// Name of the env var Codex reads the (dummy) provider key from.
pub const CODEX_KEY_ENV: &str = "BATON_TEST_MODEL_KEY";
/// Default timeout of [`run_ok`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Model name written into the Codex config (the fixtures used it too).
const CODEX_MODEL: &str = "gpt-5";
/// Environment variables a scrubbed agent command keeps from the test process.
const KEPT_ENV: &[&str] = &[
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "TMPDIR", "TERM",
];

/// Paths of the pinned real CLIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agents {
    /// `codex` (codex-cli 0.169.0).
    pub codex: PathBuf,
    /// `claude` (Claude Code 2.1.330).
    pub claude: PathBuf,
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The pinned real CLIs, installed once per process with `scripts/install-agents` into
/// `$BATON_AGENTS_DIR` (default `<workspace>/.cache/agents`, which is also the fallback).
///
/// When they cannot be installed this prints a loud `SKIPPING real-agent test: …` line to
/// stderr and returns `None`; with `CI=true` it panics instead, because CI must run these tests.
pub fn agents() -> Option<Agents> {
    static INSTALLED: OnceLock<Result<Agents, String>> = OnceLock::new();
    match INSTALLED.get_or_init(install_agents) {
        Ok(a) => Some(a.clone()),
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
                panic!("real-agent tests must run in CI, but the pinned CLIs are missing: {why}");
            }
            eprintln!("\n!!! SKIPPING real-agent test: {why}\n");
            None
        }
    }
}

/// Run the installer (under a cross-process lock) and locate working binaries.
fn install_agents() -> Result<Agents, String> {
    let root = workspace_root();
    let default_dir = root.join(".cache").join("agents");
    let dir = std::env::var_os("BATON_AGENTS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| default_dir.clone());
    let mut problems = Vec::new();
    match run_installer(&root, &dir) {
        Ok(()) => {}
        Err(e) => problems.push(e),
    }
    for candidate in [&dir, &default_dir] {
        match check_install(candidate) {
            Ok(a) => return Ok(a),
            Err(e) => problems.push(e),
        }
    }
    problems.dedup();
    Err(format!(
        "{} (run scripts/install-agents, or set BATON_AGENTS_DIR to a dir holding node_modules/.bin/{{codex,claude}})",
        problems.join("; ")
    ))
}

/// Run `scripts/install-agents` for `dir`, holding an exclusive lock so parallel test
/// processes do not run npm into the same prefix at once.
fn run_installer(root: &Path, dir: &Path) -> Result<(), String> {
    let script = root.join("scripts").join("install-agents");
    if !script.is_file() {
        return Err(format!("{} is missing", script.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock_path = dir.join(".install.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    let _guard = FileLock::exclusive(&lock);
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .current_dir(root)
        .env("BATON_AGENTS_DIR", dir)
        .stdin(Stdio::null());
    let out = run_within(&mut cmd, Duration::from_secs(900));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/install-agents failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// An exclusive `flock` held until dropped.
struct FileLock<'a>(&'a std::fs::File);

impl<'a> FileLock<'a> {
    /// Block until the lock is held; on error, go on unlocked (the installer is idempotent).
    fn exclusive(file: &'a std::fs::File) -> FileLock<'a> {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own for the guard's lifetime.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        FileLock(file)
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above; unlocking a lock we hold.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Binaries under `dir/node_modules/.bin`, checked to report the pinned versions.
fn check_install(dir: &Path) -> Result<Agents, String> {
    let bin = dir.join("node_modules").join(".bin");
    let agents = Agents {
        codex: bin.join("codex"),
        claude: bin.join("claude"),
    };
    for (path, version) in [
        (&agents.codex, CODEX_VERSION),
        (&agents.claude, CLAUDE_VERSION),
    ] {
        if !path.exists() {
            return Err(format!("{} not found", path.display()));
        }
        let mut cmd = Command::new(path);
        cmd.arg("--version").env("HOME", std::env::temp_dir());
        let out = run_within(&mut cmd, Duration::from_secs(60));
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains(version) {
            return Err(format!(
                "{} --version printed {:?}, expected {version}",
                path.display(),
                text.trim()
            ));
        }
    }
    Ok(agents)
}

/// A throwaway "machine": a temp dir with its own `HOME`, `CODEX_HOME` (whose `config.toml`
/// points Codex at the model server) and `CLAUDE_CONFIG_DIR`. Deleted when dropped.
#[derive(Debug)]
pub struct AgentEnv {
    /// The temp dir holding everything below.
    pub root: PathBuf,
    /// `HOME` of the agents (`root/home`).
    pub home: PathBuf,
    /// `CODEX_HOME` (`home/.codex`).
    pub codex_home: PathBuf,
    /// `CLAUDE_CONFIG_DIR` (`home/.claude`).
    pub claude_dir: PathBuf,
    /// Where Claude is pointed (`ANTHROPIC_BASE_URL`).
    anthropic_base_url: std::sync::Mutex<String>,
    /// Keeps the temp dir alive.
    _tmp: tempfile::TempDir,
}

impl Drop for AgentEnv {
    /// Stop what the agents left running from this machine's home: Codex
    /// starts an app-server daemon (re-parented to init) that would
    /// otherwise outlive the test by minutes, holding ~180 MB each.
    fn drop(&mut self) {
        let root = self.root.to_string_lossy().into_owned();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(root.as_str()) {
                // SAFETY: kill(2) on a pid read from /proc; a process that
                // has exited in between only makes the call fail.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

impl AgentEnv {
    /// Create the dirs and point both agents at `server`. Panics only when the temp dir
    /// cannot be created or written.
    pub fn new(server: &ModelServer) -> AgentEnv {
        let tmp = tempfile::Builder::new()
            .prefix("baton-agent-env-")
            .tempdir()
            .unwrap_or_else(|e| panic!("AgentEnv: cannot create a temp dir: {e}"));
        // Canonical paths: agents record the cwd they see (e.g. /private/tmp on macOS).
        let root = tmp
            .path()
            .canonicalize()
            .unwrap_or_else(|_| tmp.path().to_path_buf());
        let home = root.join("home");
        let env = AgentEnv {
            codex_home: home.join(".codex"),
            claude_dir: home.join(".claude"),
            home,
            root,
            anthropic_base_url: std::sync::Mutex::new(server.url()),
            _tmp: tmp,
        };
        for dir in [&env.home, &env.codex_home, &env.claude_dir] {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("AgentEnv: cannot create {}: {e}", dir.display()));
        }
        env.point_codex_at(&server.url());
        env
    }

    /// A new empty directory `root/<name>` (e.g. a project dir to run the agents in).
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("AgentEnv: cannot create {}: {e}", dir.display()));
        dir
    }

    /// Write (or rewrite) `codex_home/config.toml` so Codex talks to `base_url` (the server
    /// root, without `/v1`; e.g. a proxy in front of the model server).
    pub fn point_codex_at(&self, base_url: &str) {
        let base = base_url.trim_end_matches('/');
        let config = format!(
            "# Written by baton-testkit: Codex talks to the scripted model server.\n\
             model = \"{CODEX_MODEL}\"\n\
             model_provider = \"baton-mock\"\n\
             check_for_update_on_startup = false\n\
             \n\
             [model_providers.baton-mock]\n\
             name = \"baton-mock\"\n\
             base_url = \"{}/v1\"\n\
             wire_api = \"responses\"\n\
             env_key = \"{CODEX_KEY_ENV}\"\n\
             request_max_retries = 0\n\
             stream_max_retries = 0\n",
            toml_escape(base)
        );
        let path = self.codex_home.join("config.toml");
        std::fs::write(&path, config)
            .unwrap_or_else(|e| panic!("AgentEnv: cannot write {}: {e}", path.display()));
    }

    /// A command with a scrubbed environment (only locale/PATH-like variables survive), `HOME`
    /// set, no stdin and `cwd` as current dir.
    fn base_command(&self, program: &Path, cwd: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear();
        for name in KEPT_ENV {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        cmd.env("HOME", &self.home)
            .env("SHELL", shell())
            .env("NO_COLOR", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .current_dir(cwd)
            .stdin(Stdio::null());
        cmd
    }

    /// `codex` with `HOME`, `CODEX_HOME`, the provider key variable, quiet `RUST_LOG`, current
    /// dir `cwd` and no stdin. Add args, e.g. `["exec", "--skip-git-repo-check", "hello"]`.
    pub fn codex(&self, agents: &Agents, cwd: &Path) -> Command {
        let mut cmd = self.base_command(&agents.codex, cwd);
        cmd.env("CODEX_HOME", &self.codex_home)
            .env(CODEX_KEY_ENV, "baton-test-key")
            .env("RUST_LOG", "error");
        cmd
    }

    /// `claude` with `HOME`, `CLAUDE_CONFIG_DIR`, `ANTHROPIC_BASE_URL` (server root),
    /// `ANTHROPIC_API_KEY` (dummy), `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, current dir
    /// `cwd` and no stdin. Add args, e.g. `["-p", "hello", "--allowedTools", "Bash"]`.
    pub fn claude(&self, agents: &Agents, cwd: &Path) -> Command {
        let base_url = self
            .anthropic_base_url
            .lock()
            .map(|u| u.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let mut cmd = self.base_command(&agents.claude, cwd);
        cmd.env("CLAUDE_CONFIG_DIR", &self.claude_dir)
            .env("ANTHROPIC_BASE_URL", base_url)
            .env("ANTHROPIC_API_KEY", "baton-test-key")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_ERROR_REPORTING", "1");
        cmd
    }

    /// Point later [`claude`](Self::claude) commands at `base_url` (server root, e.g. a proxy).
    pub fn point_claude_at(&self, base_url: &str) {
        let url = base_url.trim_end_matches('/').to_owned();
        match self.anthropic_base_url.lock() {
            Ok(mut u) => *u = url,
            Err(e) => *e.into_inner() = url,
        }
    }

    /// Codex rollout files under `codex_home/sessions` (plain `.jsonl` and `.jsonl.zst`),
    /// oldest first by modification time.
    pub fn codex_rollouts(&self) -> Vec<PathBuf> {
        let sessions = self.codex_home.join(codex::SESSIONS_DIR);
        let files = baton_native::discover_codex(&self.codex_home)
            .0
            .into_iter()
            .map(|f| f.path)
            .filter(|p| p.starts_with(&sessions) && codex_id_of(p).is_some())
            .collect();
        sort_by_mtime(files)
    }

    /// Codex thread ids found on disk (from rollout file names), newest last, no duplicates.
    pub fn codex_session_ids(&self) -> Vec<String> {
        dedup_keep_last(self.codex_rollouts().iter().filter_map(|p| codex_id_of(p)))
    }

    /// The rollout file of Codex thread `id`, if present.
    pub fn codex_rollout(&self, id: &str) -> Option<PathBuf> {
        self.codex_rollouts()
            .into_iter()
            .rfind(|p| codex_id_of(p).as_deref() == Some(id))
    }

    /// Claude transcripts `claude_dir/projects/<slug>/<uuid>.jsonl`, oldest first by
    /// modification time.
    pub fn claude_transcripts(&self) -> Vec<PathBuf> {
        let files = baton_native::discover_claude(&self.claude_dir)
            .0
            .into_iter()
            .filter(|f| f.sidechain_of.is_none())
            .map(|f| f.path)
            .filter(|p| claude_id_of(p).is_some())
            .collect();
        sort_by_mtime(files)
    }

    /// Claude session ids found on disk (transcript file names), newest last, no duplicates.
    pub fn claude_session_ids(&self) -> Vec<String> {
        dedup_keep_last(
            self.claude_transcripts()
                .iter()
                .filter_map(|p| claude_id_of(p)),
        )
    }

    /// The transcript of Claude session `id`, if present (the newest when several projects
    /// hold one).
    pub fn claude_transcript(&self, id: &str) -> Option<PathBuf> {
        self.claude_transcripts()
            .into_iter()
            .rfind(|p| claude_id_of(p).as_deref() == Some(id))
    }
}

/// The shell the agents should use.
fn shell() -> OsString {
    if Path::new("/bin/bash").exists() {
        OsString::from("/bin/bash")
    } else {
        std::env::var_os("SHELL").unwrap_or_else(|| OsString::from("/bin/sh"))
    }
}

/// Escape a string for a TOML basic string.
fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// True for a canonical hyphenated UUID (any version).
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The thread id in a rollout file name `rollout-<ts>-<uuid>[_<segment>].jsonl[.zst]`
/// (see [`codex::RolloutName`]), when it is a UUID.
pub fn codex_id_of(path: &Path) -> Option<String> {
    let id = codex::RolloutName::of_path(path)?.thread_id;
    is_uuid(id).then(|| id.to_owned())
}

/// The session id in a Claude transcript name `<uuid>.jsonl`.
pub fn claude_id_of(path: &Path) -> Option<String> {
    let id = claude::transcript_id(path.file_name()?.to_str()?)?;
    is_uuid(id).then(|| id.to_owned())
}

/// Sort paths by modification time, then name (stable for equal mtimes).
fn sort_by_mtime(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut keyed: Vec<(SystemTime, PathBuf)> = files
        .into_iter()
        .map(|p| {
            let t = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (t, p)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, p)| p).collect()
}

/// Remove duplicates, keeping each value's last position.
fn dedup_keep_last(ids: impl Iterator<Item = String>) -> Vec<String> {
    let ids: Vec<String> = ids.collect();
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if !ids[i + 1..].contains(id) {
            out.push(id.clone());
        }
    }
    out
}

/// Run `cmd` to completion within [`DEFAULT_TIMEOUT`] and return its output; panics with the
/// command, stdout and stderr when it exits non-zero or times out.
pub fn run_ok(cmd: &mut Command) -> Output {
    run_ok_within(cmd, DEFAULT_TIMEOUT)
}

/// [`run_ok`] with an explicit timeout.
pub fn run_ok_within(cmd: &mut Command, timeout: Duration) -> Output {
    let out = run_within(cmd, timeout);
    if !out.status.success() {
        panic!(
            "command failed ({}): {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            describe(cmd),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Run `cmd` (stdin closed, stdout/stderr captured, in its own process group) and return its
/// output whatever the exit status. On timeout the whole process group is killed and this
/// panics with the partial output; it also panics when the program cannot be started.
pub fn run_within(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", describe(cmd)));
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let pgid = child.id() as libc::pid_t;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => break None,
        }
    };
    let Some(status) = status else {
        kill_group(pgid);
        let _ = child.wait();
        let out = stdout
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        let err = stderr
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        panic!(
            "command timed out after {timeout:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            describe(cmd),
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
    };
    // Leftover children of the command may keep the pipes open: wait a little, then kill them.
    let grace = Duration::from_secs(10);
    let mut out = stdout.recv_timeout(grace);
    let mut err = stderr.recv_timeout(grace);
    if out.is_err() || err.is_err() {
        kill_group(pgid);
        out = out.or_else(|_| stdout.recv_timeout(Duration::from_secs(5)));
        err = err.or_else(|_| stderr.recv_timeout(Duration::from_secs(5)));
    }
    Output {
        status,
        stdout: out.unwrap_or_default(),
        stderr: err.unwrap_or_default(),
    }
}

/// Read a pipe to its end on a thread; the bytes arrive on the returned channel.
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    match pipe {
        Some(mut pipe) => {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
        }
        None => {
            let _ = tx.send(Vec::new());
        }
    }
    rx
}

/// SIGKILL every process of group `pgid`.
fn kill_group(pgid: libc::pid_t) {
    if pgid > 0 {
        // SAFETY: plain kill(2) on a process group this module created.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// `program arg…` (in cwd) for messages.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&format!("{:?}", arg.to_string_lossy()));
    }
    if let Some(dir) = cmd.get_current_dir() {
        s.push_str(&format!(" (in {})", dir.display()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake `node_modules/.bin` whose binaries print the given versions.
    fn fake_install(codex: &str, claude: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("node_modules/.bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, version) in [("codex", codex), ("claude", claude)] {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\necho '{version}'\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn check_install_accepts_only_the_pinned_versions() {
        let good = fake_install("codex-cli 0.169.0", "2.1.330 (Claude Code)");
        let agents = check_install(good.path()).unwrap();
        assert!(agents.codex.ends_with("node_modules/.bin/codex"));
        let old = fake_install("codex-cli 0.58.0", "2.1.330 (Claude Code)");
        let err = check_install(old.path()).unwrap_err();
        assert!(err.contains("expected 0.169.0"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(
            check_install(empty.path())
                .unwrap_err()
                .contains("not found")
        );
    }

    #[test]
    fn ids_are_parsed_from_file_names() {
        let id = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            codex_id_of(&p(&format!("/x/rollout-2026-11-21T19-20-28-{id}.jsonl"))).as_deref(),
            Some(id)
        );
        assert_eq!(
            codex_id_of(&p(&format!(
                "rollout-2026-11-21T19-20-28-{id}_seg.jsonl.zst"
            )))
            .as_deref(),
            Some(id)
        );
        assert_eq!(codex_id_of(&p("rollout-short.jsonl")), None);
        assert_eq!(codex_id_of(&p(&format!("{id}.jsonl"))), None);
        assert_eq!(
            claude_id_of(&p(&format!("/p/{id}.jsonl"))).as_deref(),
            Some(id)
        );
        assert_eq!(claude_id_of(&p("/p/ünïcødé.jsonl")), None);
        assert_eq!(claude_id_of(&p(&format!("/p/{id}.json"))), None);
    }

    #[test]
    fn dedup_keeps_the_last_position() {
        let ids = ["a", "b", "a", "c"].map(String::from);
        assert_eq!(dedup_keep_last(ids.into_iter()), ["b", "a", "c"]);
    }

    #[test]
    fn run_within_captures_output_and_status() {
        let out = run_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        let ok = run_ok(Command::new("sh").args(["-c", "printf hi"]));
        assert_eq!(ok.stdout, b"hi");
    }

    #[test]
    fn run_ok_panics_with_the_output_on_failure() {
        let err = std::panic::catch_unwind(|| {
            run_ok(
                Command::new("sh").args(["-c", "echo visible-out; echo visible-err >&2; exit 1"]),
            )
        })
        .unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("visible-out") && msg.contains("visible-err"),
            "{msg}"
        );
    }

    #[test]
    fn run_within_kills_the_whole_group_on_timeout() {
        let started = Instant::now();
        let err = std::panic::catch_unwind(|| {
            // The grandchild `sleep` keeps the pipes open; it must be killed too.
            run_within(
                Command::new("sh").args(["-c", "echo partial; sleep 30 & sleep 30"]),
                Duration::from_millis(300),
            )
        })
        .unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("timed out") && msg.contains("partial"),
            "{msg}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn agent_env_layout() {
        let server = ModelServer::start();
        let env = AgentEnv::new(&server);
        assert!(env.home.starts_with(&env.root));
        assert_eq!(env.codex_home, env.home.join(".codex"));
        assert_eq!(env.claude_dir, env.home.join(".claude"));
        assert!(env.codex_home.join("config.toml").is_file());
        let project = env.dir("project");
        assert!(project.is_dir());
        let root = env.root.clone();
        drop(env);
        assert!(!root.exists(), "the temp dir is removed on drop");
    }
}
