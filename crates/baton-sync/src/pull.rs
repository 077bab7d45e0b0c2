//! Pull: bring server sessions into baton's library (never into an agent's
//! home), appending only bytes the server holds beyond the local copy, each
//! range checked against the server's SHA-256 before anything is written.
//! The server's bytes wait in a temporary file until then, and every file
//! is read by range: a session of any size is never held whole.

use crate::engine::{Codec, Syncer, mirror_rewrite, set_mirror, set_source, whole_file_stamp};
use crate::error::{ClientError, copy_error, write_err};
use crate::http::{Prefix, check_session_info};
use crate::native::LocalBytes;
use crate::reconcile::{Ahead, LocalStream, Relation};
use crate::state::{IdRewrite, RemoteSession, Tracked};
use baton_native::files::FileStat;
use baton_native::write::{Content, WriteError};
use baton_protocol::{SessionInfo, StreamInfo};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What happened to one session during a pull.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullReport {
    /// Server session id.
    pub id: String,
    /// Bytes received (after decryption).
    pub bytes_received: u64,
    /// Library files created or appended to.
    pub files: Vec<PathBuf>,
    /// Streams whose local agent copy differs from the server (push to keep both).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local_diverged: Vec<String>,
}

/// The rewrite a library copy of server session `info` needs: `None` when
/// the id inside its bytes (`raw`, the stream's first bytes) is the server
/// id, else the same-length rewrite to the server id.
fn id_rewrite(info: &SessionInfo, raw: &[u8]) -> Result<Option<IdRewrite>, ClientError> {
    let Some(inner) = baton_native::head::peek(info.agent, raw).session_id else {
        return Ok(None);
    };
    if inner == info.id {
        return Ok(None);
    }
    IdRewrite::new(&inner, &info.id)
        .map(Some)
        .ok_or_else(|| ClientError::IdLength {
            id: info.id.clone(),
            inner,
        })
}

impl Syncer<'_> {
    /// Pull one server session into baton's library. `sources` are this
    /// machine's own agent files already synced with it (stream name, path):
    /// streams they hold completely are not copied again. `mirror_path`
    /// chooses the library file for a stream not pulled before, from the
    /// session and the stream's first bytes. `on_progress(bytes)` reports
    /// received bytes.
    #[tracing::instrument(skip_all, fields(session = %info.id))]
    pub async fn pull_session(
        &mut self,
        info: &SessionInfo,
        sources: &[(String, PathBuf)],
        mirror_path: &(dyn Fn(&SessionInfo, &str, &[u8]) -> PathBuf + Sync),
        on_progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<PullReport, ClientError> {
        check_session_info(info)?;
        let codec = self.codec(&info.id, info.encrypted)?;
        let mut report = PullReport {
            id: info.id.clone(),
            bytes_received: 0,
            files: Vec::new(),
            local_diverged: Vec::new(),
        };
        let prev_state = self
            .state
            .sessions
            .get(&info.id)
            .cloned()
            .unwrap_or(RemoteSession {
                agent: info.agent,
                encrypted: info.encrypted,
                streams: Default::default(),
            });
        for stream in &info.streams {
            let prev = prev_state
                .streams
                .get(&stream.name)
                .cloned()
                .unwrap_or_default();
            let rewrite = mirror_rewrite(&prev_state, &stream.name);
            let source = sources.iter().find(|(n, _)| n == &stream.name);
            let stamp = source.and_then(|(_, path)| FileStat::of_path(path));
            if let Some((_, path)) = source
                && let Some(bytes) = LocalBytes::open(path)?
            {
                let local = LocalStream {
                    path,
                    bytes: &bytes,
                    prev: prev.source.as_ref(),
                    rewrite: rewrite.as_ref(),
                    plain: matches!(codec, Codec::Plain),
                };
                let rec = self
                    .reconcile(&info.id, &stream.name, &local, Some(stream), codec)
                    .await?;
                match rec.relation {
                    Relation::InSync | Relation::LocalAhead => {
                        if let Some(mut at) = rec.at {
                            at.rewrite = rewrite;
                            at.stamp = whole_file_stamp(&stamp, &at, bytes.len());
                            set_source(&mut self.state, &info.id, &stream.name, at);
                        }
                        continue;
                    }
                    Relation::Diverged => report.local_diverged.push(stream.name.clone()),
                    Relation::RemoteAhead(_) => {}
                }
            }
            self.pull_mirror(info, stream, prev.mirror, codec, mirror_path, &mut report)
                .await?;
            on_progress(report.bytes_received);
        }
        let entry = self
            .state
            .sessions
            .entry(info.id.clone())
            .or_insert(prev_state);
        entry.encrypted = info.encrypted;
        Ok(report)
    }

    /// Bring the library copy of one stream up to the server: create it or
    /// append the server's new bytes. A copy that extends the server's
    /// stream is kept as it is; one the server no longer matches is never
    /// replaced ([`ClientError::Conflict`]). A diverged copy (server id
    /// differs from the id inside its bytes) is written with its ids
    /// rewritten to the server id.
    async fn pull_mirror(
        &mut self,
        info: &SessionInfo,
        stream: &StreamInfo,
        prev: Option<Tracked>,
        codec: Codec<'_>,
        mirror_path: &(dyn Fn(&SessionInfo, &str, &[u8]) -> PathBuf + Sync),
        report: &mut PullReport,
    ) -> Result<(), ClientError> {
        let name = stream.name.as_str();
        let plain = matches!(codec, Codec::Plain);
        let known = match &prev {
            Some(t) => LocalBytes::open(&t.path)?.map(|b| (t.path.clone(), b)),
            None => None,
        };
        // The library file (existing or not yet), its bytes, and how they
        // relate to the server stream.
        let (path, local, prev, rewrite, rec) = match known {
            Some((path, bytes)) => {
                let rewrite = prev.as_ref().and_then(|t| t.rewrite.clone());
                let local = LocalStream {
                    path: &path,
                    bytes: &bytes,
                    prev: prev.as_ref(),
                    rewrite: rewrite.as_ref(),
                    plain,
                };
                let rec = self
                    .reconcile(&info.id, name, &local, Some(stream), codec)
                    .await?;
                (path, bytes, prev, rewrite, rec)
            }
            None => {
                let nothing = LocalStream {
                    path: Path::new(""),
                    bytes: &LocalBytes::Memory(Vec::new()),
                    prev: None,
                    rewrite: None,
                    plain,
                };
                let rec = self
                    .reconcile(&info.id, name, &nothing, Some(stream), codec)
                    .await?;
                let Relation::RemoteAhead(ahead) = &rec.relation else {
                    return Ok(());
                };
                let head = head_of(&ahead.tail)?;
                let rewrite = id_rewrite(info, &head)?;
                let path = mirror_path(info, name, &head);
                match LocalBytes::open(&path)? {
                    Some(existing) => {
                        let local = LocalStream {
                            path: &path,
                            bytes: &existing,
                            prev: None,
                            rewrite: rewrite.as_ref(),
                            plain,
                        };
                        let rec = self
                            .reconcile(&info.id, name, &local, Some(stream), codec)
                            .await?;
                        (path, existing, None, rewrite, rec)
                    }
                    None => (path, LocalBytes::Memory(Vec::new()), None, rewrite, rec),
                }
            }
        };
        match rec.relation {
            Relation::InSync | Relation::LocalAhead => {
                // A copy longer than the server's stream (the server lost
                // bytes) is kept whole: pull never shrinks a file.
                if let Some(mut at) = rec.at {
                    at.rewrite = rewrite;
                    set_mirror(&mut self.state, info, name, at);
                }
                Ok(())
            }
            Relation::RemoteAhead(ahead) => {
                let copy = LocalStream {
                    path: &path,
                    bytes: &local,
                    prev: prev.as_ref(),
                    rewrite: rewrite.as_ref(),
                    plain,
                };
                let (tail, at) = self.settle(info, name, &copy, ahead).await?;
                if tail.keep == 0 {
                    return Ok(());
                }
                // Written under the library copy's own lock, checking its
                // bytes again: another run (a `baton import`) may have
                // extended it since `local` was read.
                let mut want = |out: &mut dyn Write| {
                    local.copy_range(0, local.len(), None, out)?;
                    tail.write_to(out)
                };
                let written = baton_native::write::extend_owned_file(
                    &path,
                    Content::Stream(&mut want),
                    0o600,
                )
                .map_err(|e| match e {
                    WriteError::Conflict { .. } if prev.is_some() => ClientError::Conflict {
                        id: info.id.clone(),
                        path: path.clone(),
                    },
                    e => write_err(e),
                })?;
                set_mirror(&mut self.state, info, name, at);
                report.bytes_received += tail.keep;
                if written > 0 {
                    report.files.push(path);
                }
                Ok(())
            }
            Relation::Diverged if prev.is_some() => Err(ClientError::Conflict {
                id: info.id.clone(),
                path,
            }),
            Relation::Diverged => Err(ClientError::Occupied(path)),
        }
    }

    /// What to write after `local` given the server's new bytes (`ahead`),
    /// and the position that reaches. With a rewrite, the tail is rewritten
    /// and, for plain streams, a torn last line is held back until it is
    /// complete (a rewrite must see whole ids); the held-back position's
    /// server hash is then computed from the server's bytes, read again.
    async fn settle(
        &self,
        info: &SessionInfo,
        name: &str,
        local: &LocalStream<'_>,
        ahead: Ahead,
    ) -> Result<(Tail, Tracked), ClientError> {
        let Ahead {
            tail: bytes,
            len: mut remote_len,
            sha256: mut remote_sha256,
        } = ahead;
        let mut tail = Tail {
            keep: bytes.len(),
            bytes,
            // The reconcile of a known copy already rewrote the tail;
            // rewriting again is harmless (the old id no longer occurs in it).
            rewrite: local.rewrite.cloned(),
        };
        let torn = tail.keep > 0 && tail.bytes.read(tail.keep - 1, tail.keep)?[..] != *b"\n";
        if tail.rewrite.is_some() && local.plain && torn {
            tail.keep = tail.bytes.last_line_start()?;
            remote_len -= tail.bytes.len() - tail.keep;
            let mut upto = HashUpTo {
                hasher: Sha256::new(),
                left: remote_len,
            };
            self.client
                .read_stream(&info.id, name, Prefix::start(), &mut upto)
                .await?;
            remote_sha256 = hex::encode(upto.hasher.finalize());
        }
        let mut at = tracked_after(local.path, local.bytes, &tail, remote_len, &remote_sha256)?;
        at.rewrite = tail.rewrite.clone();
        Ok((tail, at))
    }
}

/// The server's new bytes as pull appends them to a library copy: the
/// first `keep` of `bytes`, with `rewrite` applied.
struct Tail {
    bytes: LocalBytes,
    keep: u64,
    rewrite: Option<IdRewrite>,
}

impl Tail {
    /// Write the bytes to append to `out`, a piece at a time.
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.bytes
            .copy_range(0, self.keep, self.rewrite.as_ref(), out)
    }
}

/// A writer hashing only the first `left` bytes written to it.
struct HashUpTo {
    hasher: Sha256,
    left: u64,
}

impl Write for HashUpTo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The first bytes of a stream's `tail`, for [`baton_native::head::peek`]:
/// its first [`baton_native::head::HEAD_BYTES`], or its first line whole
/// when that is longer.
fn head_of(tail: &LocalBytes) -> Result<Vec<u8>, ClientError> {
    let first_line = tail.line_end_from(0)?.unwrap_or(tail.len());
    Ok(tail
        .read(0, first_line.max(baton_native::head::HEAD_BYTES))?
        .into_owned())
}

/// The position of `path` once `tail` is appended to `local`: all of it,
/// at `remote_len` (hash `remote_sha256`) of the server stream.
fn tracked_after(
    path: &Path,
    local: &LocalBytes,
    tail: &Tail,
    remote_len: u64,
    remote_sha256: &str,
) -> Result<Tracked, ClientError> {
    let mut hasher = Sha256::new();
    local.hash_prefix(&mut hasher, local.len())?;
    tail.write_to(&mut hasher).map_err(copy_error(path))?;
    Ok(Tracked {
        path: path.to_path_buf(),
        plain_len: local.len() + tail.keep,
        plain_sha256: hex::encode(hasher.finalize()),
        remote_len,
        remote_sha256: remote_sha256.to_owned(),
        rewrite: None,
        stamp: None,
    })
}
