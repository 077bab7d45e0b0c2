//! Test support: scripted model server (Responses and Messages SSE) and installer for the pinned real agent CLIs.
//!
//! A typical end-to-end test:
//!
//! ```no_run
//! use baton_testkit::{AgentEnv, ModelServer, agents, run_ok};
//!
//! let Some(agents) = agents() else { return };
//! let server = ModelServer::start();
//! let env = AgentEnv::new(&server);
//! let project = env.dir("project");
//! run_ok(env.codex(&agents, &project).args(["exec", "--skip-git-repo-check", "hello"]));
//! let id = env.codex_session_ids().pop().expect("a rollout");
//! assert_eq!(server.turn_requests()[0].user_texts(), ["hello"]);
//! # let _ = id;
//! ```

#![warn(missing_docs)]
// Test support builds scratch agent homes, scripts and fixture copies: it is
// not held to the write-module rule of clippy.toml.
#![allow(clippy::disallowed_methods)]

mod agents;
pub mod bench;
mod big;
mod request;
pub mod script;
mod server;
pub mod team;

use std::path::{Path, PathBuf};

pub use agents::{
    AgentEnv, Agents, CLAUDE_VERSION, CODEX_KEY_ENV, CODEX_VERSION, DEFAULT_TIMEOUT, agents,
    claude_id_of, codex_id_of, run_ok, run_ok_within, run_within, workspace_root,
};
pub use big::{big_session_id, write_big_session};
pub use request::{RecordedRequest, fixture_requests, read_requests_file};
pub use server::ModelServer;

/// The real-CLI corpus kept in the repository at `fixtures/agents-v1`
/// (override with `BATON_FIXTURES_DIR`). Panics with a clear message when it
/// is missing.
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("BATON_FIXTURES_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("fixtures").join("agents-v1"));
    if !dir.join("manifest.jsonl").is_file() {
        panic!(
            "fixtures not found at {} (expected manifest.jsonl there): restore the repository's \
             fixtures/agents-v1 (git checkout -- fixtures) or set BATON_FIXTURES_DIR",
            dir.display()
        );
    }
    dir
}

/// A new temp dir holding writable copies of the fixture agent homes `codex`,
/// `codex-legacy` and `claude` (Claude's config dir is `claude/.claude`).
/// Panics with the reason when the fixtures cannot be copied.
pub fn fixture_homes() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    let fixtures = fixtures_dir();
    for dir in ["codex", "codex-legacy", "claude"] {
        copy_tree(&fixtures.join(dir), &tmp.path().join(dir))
            .unwrap_or_else(|e| panic!("cannot copy the {dir} fixtures: {e}"));
    }
    tmp
}

/// Copy the directory tree `from` into `to` (created if needed; existing files are
/// overwritten). Copies are made writable by their owner, symlinks are recreated as symlinks.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to)?;
    let mut perms = std::fs::metadata(to)?.permissions();
    perms.set_mode(perms.mode() | 0o700);
    std::fs::set_permissions(to, perms)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src)?;
            if std::fs::symlink_metadata(&dst).is_ok() {
                std::fs::remove_file(&dst)?;
            }
            std::os::unix::fs::symlink(target, &dst)?;
        } else {
            if std::fs::symlink_metadata(&dst).is_ok_and(|m| !m.is_dir()) {
                // An existing read-only copy cannot be opened for writing: replace it.
                std::fs::remove_file(&dst)?;
            }
            std::fs::copy(&src, &dst)?;
            let mut perms = std::fs::metadata(&dst)?.permissions();
            perms.set_mode(perms.mode() | 0o600);
            std::fs::set_permissions(&dst, perms)?;
        }
    }
    Ok(())
}

/// A zstd frame holding `prefix` followed by `count` copies of `byte`,
/// written by hand as run-length blocks (4 bytes per 128 KiB): a
/// decompression bomb such as 3 GiB in about 100 KB, built without
/// compressing anything.
pub fn zstd_bomb(prefix: &[u8], byte: u8, count: u64) -> Vec<u8> {
    const BLOCK: usize = 128 << 10;
    // Magic number; no content size, no checksum; a 128 KiB window.
    let mut out = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    let mut blocks: Vec<(u32, usize, &[u8])> = prefix
        .chunks(BLOCK)
        .map(|chunk| (0, chunk.len(), chunk))
        .collect();
    let fill = [byte];
    let mut left = count;
    while left > 0 {
        let n = left.min(BLOCK as u64);
        blocks.push((1, n as usize, &fill));
        left -= n;
    }
    if blocks.is_empty() {
        blocks.push((0, 0, &[]));
    }
    let last = blocks.len() - 1;
    for (i, (kind, size, body)) in blocks.into_iter().enumerate() {
        let header = (size as u32) << 3 | kind << 1 | u32::from(i == last);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(body);
    }
    out
}

/// Run `cmd` to its end: its exit code and peak resident set in KiB
/// (measured by `wait4`, so only the process itself and its reaped
/// children count). A process killed by a signal is a panic.
pub fn run_with_peak_rss(cmd: &mut std::process::Command) -> (i32, i64) {
    wait_with_peak_rss(cmd.spawn().expect("spawn the measured process"))
}

/// Send `child` SIGINT (what Ctrl-C sends; a server shuts down gracefully)
/// and wait for it to exit: its exit code and peak resident set in KiB over
/// its whole run. A process killed by a signal is a panic.
pub fn interrupt_with_peak_rss(child: std::process::Child) -> (i32, i64) {
    // SAFETY: a plain kill(2) of our own child, which has not been reaped.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0, "cannot interrupt process {}", child.id());
    wait_with_peak_rss(child)
}

/// Wait for `child` to exit: its exit code and peak resident set in KiB
/// (measured by `wait4`). A process killed by a signal is a panic.
fn wait_with_peak_rss(child: std::process::Child) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; `usage` is a zeroed out-struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status),
        "process {pid} did not exit normally"
    );
    // The child was reaped by wait4 above; dropping the handle is all that is left.
    drop(child);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}
