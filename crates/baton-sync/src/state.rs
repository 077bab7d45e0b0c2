//! What the client remembers between runs, under `$BATON_HOME`:
//!
//! * `sync.json` ([`SyncConfig`], mode 0600): the server URL, the bearer
//!   token and the encryption settings written by `baton login`.
//! * `sync-state.json` ([`SyncState`], mode 0600): per server session and
//!   stream, which local files it is synced with and the last position the
//!   server acknowledged: plaintext length and sha256 of the local prefix,
//!   server length and sha256 of the server prefix (they differ only for
//!   encrypted streams). Pushes send only the bytes after that position.
//!
//! Both files are written atomically (temp file + rename). The state is a
//! cache of what the server already holds: deleting it is safe, the next sync
//! re-checks every stream against the server and sends nothing twice.

use baton_native::Agent;
use baton_native::files::FileStat;
use baton_native::write::{self, Owned};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the login configuration inside `$BATON_HOME`.
pub const CONFIG_FILE: &str = "sync.json";
/// File name of the sync state inside `$BATON_HOME`.
pub const STATE_FILE: &str = "sync-state.json";
/// File name of the lock held by a running `baton sync`, `push` or `pull`.
pub const LOCK_FILE: &str = "sync.lock";
const STATE_VERSION: u32 = 1;

/// What can go wrong reading or writing client files.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("cannot access {path}: {source}; check its permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path} is damaged ({source}); {hint}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
        /// What to do about it.
        hint: &'static str,
    },
}

/// The login written by `baton login` (`$BATON_HOME/sync.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncConfig {
    /// Server base URL, e.g. `http://127.0.0.1:7878`.
    pub url: String,
    /// Bearer token from `baton serve user add`.
    pub token: String,
    /// Encrypt new sessions end to end by default.
    #[serde(default)]
    pub encrypt: bool,
    /// Key file to use instead of a passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// This machine's Argon2id salt for passphrase keys (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

impl SyncConfig {
    /// Where the config lives.
    pub fn path(baton_home: &Path) -> PathBuf {
        baton_home.join(CONFIG_FILE)
    }

    /// Read the config; `None` when nobody has logged in yet.
    pub fn load(baton_home: &Path) -> Result<Option<Self>, StateError> {
        read_json(
            &Self::path(baton_home),
            "run `baton login URL TOKEN` again to rewrite it",
        )
    }

    /// Write the config atomically with mode 0600.
    pub fn save(&self, baton_home: &Path) -> Result<(), StateError> {
        write_json(&Self::path(baton_home), self)
    }
}

/// A synced position in one stream: how far the local file and the server
/// stream agree, as last acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    /// Local file.
    pub path: PathBuf,
    /// Agreed plaintext length of the local file.
    pub plain_len: u64,
    /// Hex sha256 of the local file's first `plain_len` bytes.
    pub plain_sha256: String,
    /// Server stream length at that point (ciphertext length when encrypted).
    pub remote_len: u64,
    /// Hex sha256 of the server stream's first `remote_len` bytes.
    pub remote_sha256: String,
    /// For a library copy whose ids were rewritten on pull (a diverged copy
    /// still carrying its original id inside): the rewrite that maps the
    /// server's bytes to the local ones. Same-length, so positions agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<IdRewrite>,
    /// How the local file looked when all of it (exactly `plain_len` bytes)
    /// was agreed with the server. A file whose stamp still matches needs no
    /// re-check; any other is compared by content again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<FileStat>,
}

/// A same-length session id rewrite applied to pulled bytes: every JSON
/// string whose whole value is `from` (`"from"`, quotes included) becomes
/// `to`. Used when a server session's id differs from the id inside its
/// native bytes (a diverged copy), so the library copy is indexed and
/// resumed under the server id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRewrite {
    /// The id inside the server's bytes.
    pub from: String,
    /// The id the library copy carries (the server session id).
    pub to: String,
}

impl IdRewrite {
    /// A rewrite of `from` to `to`; `None` when the ids differ in length
    /// (byte positions could then not be shared with the server).
    pub fn new(from: &str, to: &str) -> Option<Self> {
        (from.len() == to.len() && !from.is_empty()).then(|| Self {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    /// `bytes` with every quoted `from` replaced by quoted `to`. The result
    /// always has the same length as `bytes`.
    pub fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let needle = format!("\"{}\"", self.from).into_bytes();
        let with = format!("\"{}\"", self.to).into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(&needle) {
                out.extend_from_slice(&with);
                i += needle.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    /// The rewrite back: `to` to `from` (what the server's bytes hold).
    pub fn reversed(&self) -> Self {
        Self {
            from: self.to.clone(),
            to: self.from.clone(),
        }
    }
}

/// The local files one server stream is synced with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// The agent's own file this machine pushes from (in an agent home).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Tracked>,
    /// The copy pull keeps in baton's library (a file baton created and owns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Tracked>,
}

/// What this machine knows about one server session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSession {
    /// Which agent wrote it.
    pub agent: Agent,
    /// Its streams hold ciphertext.
    #[serde(default)]
    pub encrypted: bool,
    /// Per stream name.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamState>,
}

/// Everything `$BATON_HOME/sync-state.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// Format version.
    pub version: u32,
    /// Server URL this state belongs to (a different server starts afresh).
    pub server: String,
    /// `since` for the next `GET /api/v1/changes`.
    #[serde(default)]
    pub changes_since: u64,
    /// Per server session id.
    #[serde(default)]
    pub sessions: BTreeMap<String, RemoteSession>,
    /// Local session id → server session id, for local copies that diverged
    /// and were kept on the server under a new id.
    #[serde(default)]
    pub redirects: BTreeMap<String, String>,
}

impl SyncState {
    /// Where the state lives.
    pub fn path(baton_home: &Path) -> PathBuf {
        baton_home.join(STATE_FILE)
    }

    /// An empty state for `server`.
    pub fn new(server: &str) -> Self {
        Self {
            version: STATE_VERSION,
            server: server.to_owned(),
            changes_since: 0,
            sessions: BTreeMap::new(),
            redirects: BTreeMap::new(),
        }
    }

    /// Read the state for `server`; an absent file, or one written for
    /// another server, gives an empty state.
    pub fn load(baton_home: &Path, server: &str) -> Result<Self, StateError> {
        let state: Option<Self> = read_json(
            &Self::path(baton_home),
            "delete it; the next sync re-checks every session against the server and sends nothing twice",
        )?;
        Ok(match state {
            Some(s) if s.server == server && s.version == STATE_VERSION => s,
            _ => Self::new(server),
        })
    }

    /// Write the state atomically with mode 0600.
    pub fn save(&self, baton_home: &Path) -> Result<(), StateError> {
        write_json(&Self::path(baton_home), self)
    }

    /// The server session a local session pushes to.
    pub fn remote_id<'a>(&'a self, local_id: &'a str) -> &'a str {
        self.redirects
            .get(local_id)
            .map(String::as_str)
            .unwrap_or(local_id)
    }
}

/// An exclusive lock on `$BATON_HOME/sync.lock`, held by one sync, push or
/// pull at a time so two runs never append the same bytes to a library file
/// or overwrite each other's state. Released when dropped (or when the
/// process dies: it is an OS file lock, so no stale lock is left behind).
#[derive(Debug)]
pub struct SyncLock {
    _file: std::fs::File,
}

impl SyncLock {
    /// Where the lock lives.
    pub fn path(baton_home: &Path) -> PathBuf {
        baton_home.join(LOCK_FILE)
    }

    /// Take the lock, waiting for the run that holds it to finish; `waiting`
    /// is called once, with that run's pid when known, before waiting.
    pub fn acquire(
        baton_home: &Path,
        waiting: impl FnOnce(Option<u32>),
    ) -> Result<Self, StateError> {
        let path = Self::path(baton_home);
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        write::ensure_dir(baton_home).map_err(|e| io(std::io::Error::other(e)))?;
        let mut file = write::open_owned(&path, Owned::ReadWrite, 0o600).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
                waiting(holder);
                file.lock().map_err(io)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(io)?;
        Ok(Self { _file: file })
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    hint: &'static str,
) -> Result<Option<T>, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Io {
                path: path.into(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StateError::Parse {
            path: path.into(),
            source,
            hint,
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| StateError::Parse {
        path: path.into(),
        source,
        hint: "this is a bug in baton; please report it",
    })?;
    bytes.push(b'\n');
    write_private(path, &bytes).map_err(|source| StateError::Io {
        path: path.into(),
        source,
    })
}

/// Replace `path` atomically with `bytes` (mode 0600, through baton-native's
/// one atomic-write helper), creating parent directories (0700).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        write::ensure_dir(dir).map_err(std::io::Error::other)?;
    }
    write::replace_file_mode(path, bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_resets_for_another_server() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = SyncState::new("http://a");
        state.changes_since = 7;
        state.redirects.insert("x".into(), "y".into());
        state.save(dir.path()).unwrap();
        let loaded = SyncState::load(dir.path(), "http://a").unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.remote_id("x"), "y");
        assert_eq!(loaded.remote_id("z"), "z");
        assert_eq!(
            SyncState::load(dir.path(), "http://b").unwrap(),
            SyncState::new("http://b")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(SyncState::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn id_rewrites_keep_lengths_and_touch_only_whole_quoted_ids() {
        let x = "24618527-ae46-4f6d-902b-96792270f328";
        let y = "9b2c7a10-0000-4000-8000-000000000001";
        let rw = IdRewrite::new(x, y).unwrap();
        let src = format!(
            "{{\"sessionId\":\"{x}\",\"text\":\"see {x} here\"}}\n{{\"thread_id\":\"{x}\"}}\n"
        );
        let out = String::from_utf8(rw.apply(src.as_bytes())).unwrap();
        assert_eq!(out.len(), src.len());
        assert_eq!(
            out,
            format!(
                "{{\"sessionId\":\"{y}\",\"text\":\"see {x} here\"}}\n{{\"thread_id\":\"{y}\"}}\n"
            )
        );
        assert_eq!(IdRewrite::new("abc", "abcd"), None);
    }

    #[test]
    fn the_sync_lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = SyncLock::acquire(dir.path(), |_| panic!("nobody holds it")).unwrap();
        let pid = std::fs::read_to_string(SyncLock::path(dir.path())).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        let (tx, rx) = std::sync::mpsc::channel();
        let home = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let lock = SyncLock::acquire(&home, |holder| tx.send(holder).unwrap());
            lock.map(drop).is_ok()
        });
        // The second run is told who holds the lock, and waits for it.
        let holder = rx.recv().unwrap();
        assert_eq!(holder, Some(std::process::id()));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!waiter.is_finished(), "the lock is exclusive");
        drop(held);
        assert!(
            waiter.join().unwrap(),
            "the waiter gets the lock once it is free"
        );
    }

    #[test]
    fn damaged_files_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(SyncConfig::path(dir.path()), "{").unwrap();
        let err = SyncConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("baton login"), "{err}");
        assert_eq!(
            SyncConfig::load(tempfile::tempdir().unwrap().path()).unwrap(),
            None
        );
    }
}
