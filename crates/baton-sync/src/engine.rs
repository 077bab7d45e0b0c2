//! The sync engine's shared core: [`Syncer`] (one server, one
//! [`SyncState`]), how a session's bytes are coded on the server, and the
//! bookkeeping of acknowledged positions. Its entry points are in
//! [`crate::push`] and [`crate::pull`]; the comparison they share is
//! [`crate::reconcile`].

use crate::crypto::Keyring;
use crate::error::{ClientError, io_err};
use crate::http::Client;
use crate::native::LocalBytes;
use crate::state::{IdRewrite, RemoteSession, StreamState, SyncState, Tracked};
use baton_native::files::FileStat;
use baton_protocol::SessionInfo;
use baton_secrets::Redactor;
use std::path::Path;
use std::sync::Arc;

/// Reads a session file that is gone from disk from a copy the caller keeps
/// (baton's archive): `Ok(None)` when it has none either.
pub type ArchiveReader = Arc<dyn Fn(&Path) -> std::io::Result<Option<Vec<u8>>> + Send + Sync>;

/// Largest plaintext piece sent in one append request.
pub const CHUNK_SIZE: usize = 4 << 20;

/// How a session's bytes are stored on the server.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Codec<'a> {
    /// As the agent wrote them.
    Plain,
    /// End-to-end encrypted frames.
    Sealed(&'a Keyring),
    /// Plain, but secrets leave as placeholders: pushed in whole lines,
    /// redacted when `redact` is set; pulled placeholders are restored where
    /// the key opens them.
    Redacted {
        /// The redactor (rules, key, vault).
        redactor: &'a Redactor,
        /// Redact what is pushed (off with `--no-redact`).
        redact: bool,
    },
}

impl Codec<'_> {
    /// The plaintext of server bytes read after `start`, as segments with
    /// the length each takes on the server (a redacted stream has one per
    /// line, with its placeholders restored).
    pub fn open(
        self,
        name: &str,
        bytes: Vec<u8>,
        start: &Tracked,
    ) -> Result<Vec<(Vec<u8>, u64)>, ClientError> {
        match self {
            Codec::Plain => {
                let n = bytes.len() as u64;
                Ok(vec![(bytes, n)])
            }
            Codec::Sealed(keyring) => Ok(keyring
                .open_frames(name, &bytes, start.remote_len, start.plain_len)?
                .into_iter()
                .map(|f| (f.plain, f.sealed_len))
                .collect()),
            Codec::Redacted { redactor, .. } => bytes
                .split_inclusive(|&b| b == b'\n')
                .map(|line| Ok((redactor.restore(line)?, line.len() as u64)))
                .collect(),
        }
    }
}

/// Runs pushes and pulls against one server, keeping [`SyncState`] current.
pub struct Syncer<'a> {
    pub(crate) client: &'a Client,
    keyring: Option<&'a Keyring>,
    redactor: Option<&'a Redactor>,
    redact: bool,
    pub(crate) chunk_size: usize,
    /// Where push reads a session file that is gone from disk.
    archive: Option<ArchiveReader>,
    /// The client state (save it after each session).
    pub state: SyncState,
}

impl<'a> Syncer<'a> {
    /// A syncer; `keyring` is needed for encrypted sessions.
    pub fn new(client: &'a Client, keyring: Option<&'a Keyring>, state: SyncState) -> Self {
        Self {
            client,
            keyring,
            redactor: None,
            redact: false,
            chunk_size: CHUNK_SIZE,
            archive: None,
            state,
        }
    }

    /// Push files that are gone from disk from `archive` (baton's archive):
    /// a session the agent deleted is still pushed, byte-identical.
    pub fn with_archive(mut self, archive: ArchiveReader) -> Self {
        self.archive = Some(archive);
        self
    }

    /// The native bytes of `path`: the file (decompressed), or, when it is
    /// gone, the archived copy; `None` when neither exists.
    pub(crate) fn read_local(&self, path: &Path) -> Result<Option<LocalBytes>, ClientError> {
        if let Some(bytes) = LocalBytes::open(path)? {
            return Ok(Some(bytes));
        }
        match &self.archive {
            Some(archive) => Ok(archive(path).map_err(io_err(path))?.map(LocalBytes::Memory)),
            None => Ok(None),
        }
    }

    /// Send at most `bytes` (at least 1) of plaintext per append request
    /// instead of [`CHUNK_SIZE`]: smaller pieces lose less to a broken link.
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Keep secrets on this machine: plain sessions are pushed with every
    /// secret replaced by a placeholder of `redactor` (unless `redact` is
    /// false: `--no-redact`), and pulled placeholders it can open are
    /// restored to the original bytes.
    pub fn with_redactor(mut self, redactor: &'a Redactor, redact: bool) -> Self {
        self.redactor = Some(redactor);
        self.redact = redact;
        self
    }

    /// The redactor of pushed bytes, unless redaction is off.
    pub(crate) fn redactor(&self) -> Option<&'a Redactor> {
        self.redactor.filter(|_| self.redact)
    }

    /// True when a keyring is configured.
    pub(crate) fn has_key(&self) -> bool {
        self.keyring.is_some()
    }

    /// The codec of session `id`.
    pub(crate) fn codec(&self, id: &str, encrypted: bool) -> Result<Codec<'a>, ClientError> {
        match (encrypted, self.keyring) {
            (false, _) => Ok(match self.redactor {
                Some(redactor) => Codec::Redacted {
                    redactor,
                    redact: self.redact,
                },
                None => Codec::Plain,
            }),
            (true, Some(k)) => Ok(Codec::Sealed(k)),
            (true, None) => Err(ClientError::NeedKey(id.to_owned())),
        }
    }
}

/// `stamp`, taken before the file's `len` bytes were read, when `at` covers
/// all of them (so the stamp describes a file the server holds entirely).
pub(crate) fn whole_file_stamp(
    stamp: &Option<FileStat>,
    at: &Tracked,
    len: u64,
) -> Option<FileStat> {
    (at.plain_len == len).then_some(*stamp).flatten()
}

/// The id rewrite of the library copy of stream `name`, if pull rewrote it.
pub(crate) fn mirror_rewrite(session: &RemoteSession, name: &str) -> Option<IdRewrite> {
    session.streams.get(name)?.mirror.as_ref()?.rewrite.clone()
}

/// Record `at` as the acknowledged position of the agent file of `name`.
pub(crate) fn set_source(state: &mut SyncState, remote_id: &str, name: &str, at: Tracked) {
    if let Some(session) = state.sessions.get_mut(remote_id) {
        session.streams.entry(name.to_owned()).or_default().source = Some(at);
    }
}

/// Record `at` as the acknowledged position of the library copy of `name`.
pub(crate) fn set_mirror(state: &mut SyncState, info: &SessionInfo, name: &str, at: Tracked) {
    let session = state
        .sessions
        .entry(info.id.clone())
        .or_insert_with(|| RemoteSession {
            agent: info.agent,
            encrypted: info.encrypted,
            streams: Default::default(),
        });
    let entry: &mut StreamState = session.streams.entry(name.to_owned()).or_default();
    // A library copy is plain: its stamp counts only while it is exactly as
    // long as the agreed bytes.
    let mut at = at;
    at.stamp = FileStat::of_path(&at.path).filter(|s| s.size == at.plain_len);
    entry.mirror = Some(at);
}
