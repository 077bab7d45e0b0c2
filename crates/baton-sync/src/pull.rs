//! Pull: bring server sessions into baton's library (never into an agent's
//! home), appending only bytes the server holds beyond the local copy, each
//! range checked against the server's SHA-256 before anything is written.

use crate::engine::{Codec, Syncer, mirror_rewrite, set_mirror, set_source, whole_file_stamp};
use crate::error::{ClientError, io_err};
use crate::http::{Prefix, check_session_info};
use crate::native::{LocalBytes, read_native};
use crate::reconcile::{Ahead, LocalStream, Relation};
use crate::state::{IdRewrite, RemoteSession, Tracked};
use baton_native::files::FileStat;
use baton_native::write::WriteError;
use baton_protocol::{SessionInfo, StreamInfo, sha256_hex};
use sha2::{Digest, Sha256};
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
                && let Some(bytes) = read_native(path)?
            {
                let bytes = LocalBytes::Memory(bytes);
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
            Some(t) => read_native(&t.path)?.map(|b| (t.path.clone(), LocalBytes::Memory(b))),
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
                let rewrite = id_rewrite(info, &ahead.tail)?;
                let path = mirror_path(info, name, &ahead.tail);
                match read_native(&path)? {
                    Some(existing) => {
                        let existing = LocalBytes::Memory(existing);
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
                if tail.is_empty() {
                    return Ok(());
                }
                // Written under the library copy's own lock, checking its
                // bytes again: another run (a `baton import`) may have
                // extended it since `local` was read.
                let mut want = local.read(0, local.len())?.into_owned();
                want.extend_from_slice(&tail);
                let written = baton_native::write::extend_owned_file(&path, &want, 0o600).map_err(
                    |e| match e {
                        WriteError::Conflict { .. } if prev.is_some() => ClientError::Conflict {
                            id: info.id.clone(),
                            path: path.clone(),
                        },
                        WriteError::Conflict { .. } => ClientError::Occupied(path.clone()),
                        WriteError::CreateDir { path, source }
                        | WriteError::Io { path, source } => ClientError::Io { path, source },
                        e @ WriteError::Locked { .. } => io_err(&path)(std::io::Error::other(e)),
                    },
                )?;
                set_mirror(&mut self.state, info, name, at);
                report.bytes_received += tail.len() as u64;
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
    /// server hash is then computed from the server's bytes.
    async fn settle(
        &self,
        info: &SessionInfo,
        name: &str,
        local: &LocalStream<'_>,
        ahead: Ahead,
    ) -> Result<(Vec<u8>, Tracked), ClientError> {
        let Ahead {
            tail,
            len: remote_len,
            sha256: remote_sha256,
        } = ahead;
        let (path, local_bytes) = (local.path, local.bytes);
        let Some(rw) = local.rewrite.cloned() else {
            let at = tracked_after(path, local_bytes, &tail, remote_len, &remote_sha256)?;
            return Ok((tail, at));
        };
        // The reconcile of a known copy already rewrote `tail`; rewriting
        // again is harmless (the old id no longer occurs in it).
        let mut tail = rw.apply(&tail);
        let (mut remote_len, mut remote_sha256) = (remote_len, remote_sha256);
        if local.plain && tail.last().is_some_and(|&b| b != b'\n') {
            let keep = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            remote_len -= (tail.len() - keep) as u64;
            tail.truncate(keep);
            let whole = self
                .client
                .read_stream(&info.id, name, Prefix::Bytes(&[]))
                .await?;
            let end = (remote_len as usize).min(whole.bytes.len());
            remote_sha256 = sha256_hex(&whole.bytes[..end]);
        }
        let mut at = tracked_after(path, local_bytes, &tail, remote_len, &remote_sha256)?;
        at.rewrite = Some(rw);
        Ok((tail, at))
    }
}

/// The position of `path` once `tail` is appended to `local`: all of it,
/// at `remote_len` (hash `remote_sha256`) of the server stream.
fn tracked_after(
    path: &Path,
    local: &LocalBytes,
    tail: &[u8],
    remote_len: u64,
    remote_sha256: &str,
) -> Result<Tracked, ClientError> {
    let mut hasher = Sha256::new();
    local.hash_prefix(&mut hasher, local.len())?;
    hasher.update(tail);
    Ok(Tracked {
        path: path.to_path_buf(),
        plain_len: local.len() + tail.len() as u64,
        plain_sha256: hex::encode(hasher.finalize()),
        remote_len,
        remote_sha256: remote_sha256.to_owned(),
        rewrite: None,
        stamp: None,
    })
}
