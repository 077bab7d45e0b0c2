//! The sync engine's shared core: [`Syncer`] (one server, one
//! [`SyncState`]), how a session's bytes are coded on the server, and the
//! bookkeeping of acknowledged positions. Its entry points are in
//! [`crate::push`] and [`crate::pull`]; the comparison they share is
//! [`crate::reconcile`].

use crate::crypto::Keyring;
use crate::error::{ClientError, io_err};
use crate::http::Client;
use crate::native::{LocalBytes, Spool};
use crate::state::{IdRewrite, RemoteSession, StreamState, SyncState, Tracked};
use baton_native::files::FileStat;
use baton_protocol::SessionInfo;
use baton_secrets::Redactor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Copies a session file that is gone from disk from a copy the caller
/// keeps (baton's archive) into the writer: `Ok(false)` when it has none
/// either.
pub type ArchiveReader =
    Arc<dyn Fn(&Path, &mut dyn std::io::Write) -> std::io::Result<bool> + Send + Sync>;

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

impl<'a> Codec<'a> {
    /// The plaintext of server bytes `piece` (whole lines, or whole frames
    /// for a sealed stream), which start at `remote_at` of the server stream
    /// and `plain_at` of its plaintext, as segments with the length each
    /// takes on the server (a redacted stream has one per line, with its
    /// placeholders restored).
    pub fn open(
        self,
        name: &str,
        piece: Vec<u8>,
        remote_at: u64,
        plain_at: u64,
    ) -> Result<Vec<(Vec<u8>, u64)>, ClientError> {
        match self {
            Codec::Plain => {
                let n = piece.len() as u64;
                Ok(vec![(piece, n)])
            }
            Codec::Sealed(keyring) => Ok(keyring
                .open_frames(name, &piece, remote_at, plain_at)?
                .into_iter()
                .map(|f| (f.plain, f.sealed_len))
                .collect()),
            Codec::Redacted { redactor, .. } => piece
                .split_inclusive(|&b| b == b'\n')
                .map(|line| Ok((redactor.restore(line)?, line.len() as u64)))
                .collect(),
        }
    }

    /// The plaintext of the server bytes in `wire`, read after `start`,
    /// opened a piece at a time (see [`Opened`]).
    pub fn opened(self, name: &'a str, wire: &'a LocalBytes, start: &Tracked) -> Opened<'a> {
        Opened {
            codec: self,
            name,
            wire,
            at: 0,
            remote_at: start.remote_len,
            plain_at: start.plain_len,
            ready: Vec::new().into_iter(),
            failed: false,
        }
    }
}

/// The plaintext segments of server bytes held in a file, with the length
/// each takes on the server, opened a piece of the file at a time (about a
/// megabyte of whole lines, or one frame of a sealed stream), so a stream of
/// any size is never held whole.
pub(crate) struct Opened<'a> {
    codec: Codec<'a>,
    name: &'a str,
    wire: &'a LocalBytes,
    /// Offset in `wire` of the next piece.
    at: u64,
    /// Server stream offset of the next piece.
    remote_at: u64,
    /// Plaintext offset of the next piece.
    plain_at: u64,
    /// Segments of the last piece not yet returned.
    ready: std::vec::IntoIter<(Vec<u8>, u64)>,
    /// Set once an error was returned: nothing follows it.
    failed: bool,
}

impl Opened<'_> {
    /// The next piece of `wire` [`Codec::open`] opens on its own.
    fn next_piece(&self) -> Result<Vec<u8>, ClientError> {
        let (wire, at) = (self.wire, self.at);
        let piece = match self.codec {
            Codec::Sealed(_) => {
                let header = wire.read(at, at + crate::crypto::FRAME_HEADER_LEN as u64)?;
                // A bad header is read alone: opening it reports it.
                let len = crate::crypto::frame_len(&header).unwrap_or(header.len());
                wire.read(at, at + len as u64)?
            }
            Codec::Plain | Codec::Redacted { .. } => wire.lines_piece(at, wire.len())?,
        };
        Ok(piece.into_owned())
    }
}

impl Iterator for Opened<'_> {
    type Item = Result<(Vec<u8>, u64), ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(segment) = self.ready.next() {
                return Some(Ok(segment));
            }
            if self.failed || self.at >= self.wire.len() {
                return None;
            }
            let opened = self.next_piece().and_then(|piece| {
                let n = piece.len() as u64;
                let segments = self
                    .codec
                    .open(self.name, piece, self.remote_at, self.plain_at)?;
                Ok((n, segments))
            });
            match opened {
                Ok((n, segments)) => {
                    self.at += n;
                    self.remote_at += n;
                    self.plain_at += segments.iter().map(|s| s.0.len() as u64).sum::<u64>();
                    self.ready = segments.into_iter();
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
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
    /// Where server bytes wait, in a temporary file, until they are checked.
    pub(crate) spool_dir: PathBuf,
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
            spool_dir: std::env::temp_dir(),
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
    /// gone, the archived copy, copied into a spool file; `None` when
    /// neither exists.
    pub(crate) fn read_local(&self, path: &Path) -> Result<Option<LocalBytes>, ClientError> {
        if let Some(bytes) = LocalBytes::open(path)? {
            return Ok(Some(bytes));
        }
        let Some(archive) = &self.archive else {
            return Ok(None);
        };
        let mut spool = Spool::new(&self.spool_dir)?;
        let copied = archive(path, &mut spool).map_err(io_err(path))?;
        Ok(copied.then(|| spool.finish()))
    }

    /// Keep server bytes being read in temporary files in `dir` (baton's
    /// home, beside the library pull writes to) instead of the system's
    /// temporary directory; the files have no name and vanish when closed.
    pub fn with_spool_dir(mut self, dir: &Path) -> Self {
        self.spool_dir = dir.to_path_buf();
        self
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
