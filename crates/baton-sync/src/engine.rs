//! The sync engine's shared core: [`Syncer`] (one server, one
//! [`SyncState`]), how a session's bytes are coded on the server, and the
//! bookkeeping of acknowledged positions. Its entry points are in
//! [`crate::push`] and [`crate::pull`]; the comparison they share is
//! [`crate::reconcile`].

use crate::crypto::Keyring;
use crate::error::{ClientError, io_err};
use crate::http::Client;
use crate::native::read_native;
use crate::state::{IdRewrite, RemoteSession, StreamState, SyncState, Tracked};
use baton_native::files::FileStat;
use baton_protocol::SessionInfo;
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
}

impl Codec<'_> {
    /// The plaintext of server bytes read after `start`, as segments with
    /// the length each takes on the server.
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
        }
    }
}

/// Runs pushes and pulls against one server, keeping [`SyncState`] current.
pub struct Syncer<'a> {
    pub(crate) client: &'a Client,
    keyring: Option<&'a Keyring>,
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
    pub(crate) fn read_local(&self, path: &Path) -> Result<Option<Vec<u8>>, ClientError> {
        if let Some(bytes) = read_native(path)? {
            return Ok(Some(bytes));
        }
        match &self.archive {
            Some(archive) => archive(path).map_err(io_err(path)),
            None => Ok(None),
        }
    }

    /// Send at most `bytes` (at least 1) of plaintext per append request
    /// instead of [`CHUNK_SIZE`]: smaller pieces lose less to a broken link.
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// True when a keyring is configured.
    pub(crate) fn has_key(&self) -> bool {
        self.keyring.is_some()
    }

    /// The codec of session `id`.
    pub(crate) fn codec(&self, id: &str, encrypted: bool) -> Result<Codec<'a>, ClientError> {
        match (encrypted, self.keyring) {
            (false, _) => Ok(Codec::Plain),
            (true, Some(k)) => Ok(Codec::Sealed(k)),
            (true, None) => Err(ClientError::NeedKey(id.to_owned())),
        }
    }
}

/// `stamp`, taken before `bytes` were read from the file, when `at` covers
/// all of them (so the stamp describes a file the server holds entirely).
pub(crate) fn whole_file_stamp(
    stamp: &Option<FileStat>,
    at: &Tracked,
    bytes: &[u8],
) -> Option<FileStat> {
    (at.plain_len == bytes.len() as u64)
        .then_some(*stamp)
        .flatten()
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
