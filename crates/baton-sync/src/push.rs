//! Push: send a local session's new bytes to the server, stream by stream,
//! in acknowledged chunks; a session continued elsewhere meanwhile is kept
//! as a new server session (`diverged_from`) instead of being overwritten.

use crate::engine::{Codec, Syncer, mirror_rewrite, set_source, whole_file_stamp};
use crate::error::ClientError;
use crate::http::{AppendOutcome, Client};
use crate::native::LocalBytes;
use crate::reconcile::{LocalStream, Reconciled, Relation, tracked};
use crate::state::{IdRewrite, RemoteSession, SyncState, Tracked};
use baton_native::files::FileStat;
use baton_protocol::{ForkRequest, SessionInfo, SessionMeta, StreamPrefix};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// How many times a push re-reconciles after the server moved under it.
const MAX_ROUNDS: usize = 4;

/// A local session to push: its id, metadata for creating it on the
/// server, and its native files as named streams (`main` first).
#[derive(Debug, Clone)]
pub struct LocalSession {
    /// Local session id.
    pub id: String,
    /// Metadata sent when the server does not have the session yet.
    pub meta: SessionMeta,
    /// Stream name and local file, `main` first.
    pub streams: Vec<(String, PathBuf)>,
}

/// What happened to one session during a push.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// The local session id.
    pub id: String,
    /// The server session it was pushed to (differs after divergence).
    pub remote_id: String,
    /// Bytes sent to the server (after encryption, before wire compression).
    pub bytes_sent: u64,
    /// `up_to_date`, `pushed` or `diverged`.
    pub status: PushStatus,
    /// Set when the local copy diverged: the server session it diverged from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diverged_from: Option<String>,
    /// Streams the server holds more of than this machine (pull them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub behind: Vec<String>,
}

/// Summary state of a pushed session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// The server already had every byte.
    UpToDate,
    /// New bytes were sent.
    Pushed,
    /// The local copy differed from the server's and was kept as a new session.
    Diverged,
}

impl Syncer<'_> {
    /// Push one local session: create it on the server if needed, send the
    /// bytes after what the server acknowledged, and on divergence keep the
    /// local copy as a new server session with `diverged_from`.
    /// `on_progress(bytes)` is called after every acknowledged chunk;
    /// `save(state)` after every change of state worth keeping.
    #[tracing::instrument(skip_all, fields(session = %session.id))]
    pub async fn push_session(
        &mut self,
        session: &LocalSession,
        on_progress: &mut (dyn FnMut(u64) + Send),
        save: &mut (dyn FnMut(&SyncState) + Send),
    ) -> Result<PushReport, ClientError> {
        let mut locals = Vec::new();
        let mut stamps = Vec::new();
        for (name, path) in &session.streams {
            let stamp = FileStat::of_path(path);
            if let Some(bytes) = self.read_local(path)? {
                locals.push((name.clone(), path.clone(), bytes));
                stamps.push(stamp);
            }
        }
        let mut report = PushReport {
            id: session.id.clone(),
            remote_id: self.state.remote_id(&session.id).to_owned(),
            bytes_sent: 0,
            status: PushStatus::UpToDate,
            diverged_from: None,
            behind: Vec::new(),
        };
        for _round in 0..MAX_ROUNDS {
            let remote_id = self.state.remote_id(&session.id).to_owned();
            report.remote_id = remote_id.clone();
            // Created when new; updated when only the archive holds it now
            // (or the agent's file came back).
            let info = match self.client.session(&remote_id).await? {
                Some(info) if info.archived == session.meta.archived => info,
                _ => {
                    let mut meta = session.meta.clone();
                    if meta.encrypted && !self.has_key() {
                        return Err(ClientError::NeedKey(remote_id));
                    }
                    if meta.encrypted {
                        meta.cwd = None;
                        meta.title = None;
                        meta.first_prompt = None;
                    }
                    if let Some(r) = self.redactor() {
                        for field in [&mut meta.cwd, &mut meta.title, &mut meta.first_prompt] {
                            if let Some(v) = field.as_mut() {
                                *v = r.redact_text(v)?;
                            }
                        }
                    }
                    self.client.put_session(&remote_id, &meta).await?
                }
            };
            let codec = self.codec(&remote_id, info.encrypted)?;
            let entry = self
                .state
                .sessions
                .entry(remote_id.clone())
                .or_insert_with(|| RemoteSession {
                    agent: info.agent,
                    encrypted: info.encrypted,
                    streams: Default::default(),
                });
            entry.encrypted = info.encrypted;
            let prevs: Vec<Option<Tracked>> = locals
                .iter()
                .map(|(name, _, _)| entry.streams.get(name).and_then(|s| s.source.clone()))
                .collect();
            // A rehydrated diverged copy carries the server id where the
            // server's bytes carry the original one: compare and push
            // through the pull's rewrite.
            let rewrites: Vec<Option<IdRewrite>> = locals
                .iter()
                .map(|(name, _, _)| mirror_rewrite(entry, name))
                .collect();
            let mut recs = Vec::new();
            for ((((name, path, bytes), prev), rw), stamp) in
                locals.iter().zip(&prevs).zip(&rewrites).zip(&stamps)
            {
                let server = info.streams.iter().find(|s| &s.name == name);
                let local = LocalStream {
                    path,
                    bytes,
                    prev: prev.as_ref(),
                    rewrite: rw.as_ref(),
                    plain: matches!(codec, Codec::Plain),
                };
                let mut rec = self
                    .reconcile(&remote_id, name, &local, server, codec)
                    .await?;
                if let Some(at) = rec.at.as_mut() {
                    at.rewrite = rw.clone();
                    at.stamp = whole_file_stamp(stamp, at, bytes.len());
                }
                recs.push(rec);
            }
            if recs
                .iter()
                .any(|r| matches!(r.relation, Relation::Diverged))
            {
                self.diverge(session, &remote_id, &info, &locals, &recs)
                    .await?;
                report.status = PushStatus::Diverged;
                report.diverged_from = Some(remote_id);
                save(&self.state);
                continue;
            }
            let mut moved = false;
            report.behind.clear();
            for (((name, _, bytes), rec), stamp) in locals.iter().zip(recs).zip(&stamps) {
                match rec.relation {
                    Relation::RemoteAhead(_) => report.behind.push(name.clone()),
                    Relation::Diverged => {}
                    Relation::InSync | Relation::LocalAhead => {
                        let Some(at) = rec.at else { continue };
                        let state = &mut self.state;
                        let mut on_ack = |name: &str, at: &Tracked, n: u64| {
                            set_source(state, &remote_id, name, at.clone());
                            on_progress(n);
                            save(state);
                        };
                        on_ack(name, &at, 0);
                        if matches!(rec.relation, Relation::LocalAhead) {
                            let job = StreamPush {
                                client: self.client,
                                id: &remote_id,
                                name,
                                local: bytes,
                                stamp: stamp.as_ref(),
                                codec,
                                chunk_size: self.chunk_size,
                            };
                            let (pushed, sent) = push_stream(&job, at, &mut on_ack).await?;
                            report.bytes_sent += sent;
                            if sent > 0 && report.status == PushStatus::UpToDate {
                                report.status = PushStatus::Pushed;
                            }
                            if pushed.is_none() {
                                moved = true;
                                break;
                            }
                        }
                    }
                }
            }
            if !moved {
                return Ok(report);
            }
        }
        Err(ClientError::Busy(session.id.clone()))
    }

    /// Keep the local copy of `remote_id` as a new server session sharing
    /// the longest common checkpoint of every stream.
    async fn diverge(
        &mut self,
        session: &LocalSession,
        remote_id: &str,
        info: &SessionInfo,
        locals: &[(String, PathBuf, LocalBytes)],
        recs: &[Reconciled],
    ) -> Result<(), ClientError> {
        let mut prefixes = Vec::new();
        let mut trackers = Vec::new();
        for ((name, path, bytes), rec) in locals.iter().zip(recs) {
            if !info.streams.iter().any(|s| &s.name == name) {
                continue;
            }
            let cps = self.client.checkpoints(remote_id, name).await?;
            let (r, p, sha) = rec.shared_checkpoint(&cps.checkpoints);
            prefixes.push(StreamPrefix {
                name: name.clone(),
                len: r,
                sha256: sha.clone(),
            });
            trackers.push((name.clone(), tracked(path, bytes, p, r, &sha)?));
        }
        let cut = recs
            .first()
            .and_then(|r| r.shared.last())
            .map(|s| s.1)
            .unwrap_or(0);
        let new_id = match locals.first() {
            Some((_, _, main)) => diverged_id(remote_id, main, cut)?,
            None => diverged_id(remote_id, &LocalBytes::Memory(Vec::new()), 0)?,
        };
        let request = ForkRequest {
            new_id: new_id.clone(),
            streams: prefixes,
        };
        self.client.fork(remote_id, &request).await?;
        if let Some(old) = self.state.sessions.get_mut(remote_id) {
            for state in old.streams.values_mut() {
                state.source = None;
            }
        }
        self.state
            .redirects
            .insert(session.id.clone(), new_id.clone());
        let entry = self
            .state
            .sessions
            .entry(new_id.clone())
            .or_insert_with(|| RemoteSession {
                agent: info.agent,
                encrypted: info.encrypted,
                streams: Default::default(),
            });
        for (name, t) in trackers {
            entry.streams.entry(name).or_default().source = Some(t);
        }
        Ok(())
    }
}

/// One local stream to send: where, what, and how.
struct StreamPush<'a> {
    client: &'a Client,
    /// Server session id.
    id: &'a str,
    /// Stream name.
    name: &'a str,
    /// The local file (plaintext), read a piece at a time.
    local: &'a LocalBytes,
    /// The file's stamp when it was read (kept once all of it is acknowledged).
    stamp: Option<&'a FileStat>,
    codec: Codec<'a>,
    /// Largest plaintext piece per append request.
    chunk_size: usize,
}

/// Push `job.local[at.plain_len..]` in pieces of `job.chunk_size` (each read
/// from the file when it is sent, so memory stays bounded); saves
/// each acknowledged position through `on_ack`. Returns the position reached
/// (`None` when the server moved, diverged or offset_ahead, and the caller
/// must reconcile again) and the bytes sent.
async fn push_stream(
    job: &StreamPush<'_>,
    mut at: Tracked,
    on_ack: &mut (dyn FnMut(&str, &Tracked, u64) + Send),
) -> Result<(Option<Tracked>, u64), ClientError> {
    let StreamPush {
        client,
        id,
        name,
        local,
        stamp,
        codec,
        chunk_size,
    } = *job;
    let mut sent = 0;
    let mut hasher = Sha256::new();
    local.hash_prefix(&mut hasher, at.plain_len)?;
    while at.plain_len < local.len() {
        let from = at.plain_len;
        let mut to = (from + chunk_size as u64).min(local.len());
        let mut chunk = local.read(from, to)?;
        // Undo a rewrite on whole lines only, so no id is split.
        let back = at.rewrite.as_ref().map(IdRewrite::reversed);
        if back.is_some()
            && to < local.len()
            && let Some(nl) = chunk.iter().rposition(|&b| b == b'\n')
        {
            to = from + nl as u64 + 1;
        }
        if matches!(codec, Codec::Redacted { .. }) {
            // Redaction sees whole lines only: a torn last line waits for
            // its end, a line longer than a chunk goes whole.
            match local.whole_lines_end(&chunk, from, to)? {
                Some(end) => to = end,
                None => break,
            }
        }
        if to != from + chunk.len() as u64 {
            chunk = local.read(from, to)?;
        }
        let wire = back.map(|b| b.apply(&chunk));
        let wire = wire.as_deref().unwrap_or(&chunk);
        let (body, zstd) = match codec {
            Codec::Plain | Codec::Redacted { redact: false, .. } => (wire.to_vec(), true),
            Codec::Redacted { redactor, .. } => (redactor.redact(wire)?.bytes, true),
            Codec::Sealed(k) => (k.seal(name, at.plain_len, wire)?, false),
        };
        let outcome = client
            .append(id, name, at.remote_len, &at.remote_sha256, &body, zstd)
            .await?;
        let AppendOutcome::Appended(result) = outcome else {
            return Ok((None, sent));
        };
        hasher.update(&chunk);
        at = Tracked {
            path: at.path.clone(),
            plain_len: to,
            plain_sha256: hex::encode(hasher.clone().finalize()),
            remote_len: result.len,
            remote_sha256: result.sha256,
            rewrite: at.rewrite.clone(),
            stamp: stamp.filter(|_| to == local.len()).cloned(),
        };
        sent += body.len() as u64;
        on_ack(name, &at, body.len() as u64);
    }
    Ok((Some(at), sent))
}

/// The server id for a diverged local copy of `remote_id`: derived from the
/// local bytes up to the end of the first line after the common prefix, so a
/// retried push after a crash reuses the same id.
fn diverged_id(
    remote_id: &str,
    local_main: &LocalBytes,
    common: u64,
) -> Result<String, ClientError> {
    let common = common.min(local_main.len());
    let end = local_main
        .line_end_from(common)?
        .unwrap_or(local_main.len());
    let mut h = Sha256::new();
    h.update(b"baton-diverged\0");
    h.update(remote_id.as_bytes());
    h.update([0]);
    local_main.hash_prefix(&mut h, end)?;
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(bytes: &[u8]) -> LocalBytes {
        LocalBytes::Memory(bytes.to_vec())
    }

    #[test]
    fn redacted_pieces_end_at_whole_lines() {
        let bytes = b"one\ntwo\nthree-is-long\ntorn";
        let local = mem(bytes);
        let end = |from: u64, to: u64| {
            local
                .whole_lines_end(&bytes[from as usize..], from, to)
                .unwrap()
        };
        // The last whole line inside the piece.
        assert_eq!(end(0, 10), Some(8));
        // A line longer than the piece goes whole.
        assert_eq!(end(8, 12), Some(22));
        // A torn last line waits for its end.
        assert_eq!(end(22, local.len()), None);
    }

    #[test]
    fn diverged_ids_are_stable_and_depend_on_the_divergent_line() {
        let id = |remote: &str, bytes: &[u8]| diverged_id(remote, &mem(bytes), 3).unwrap();
        let a = id("x", b"l1\nmine\nmore");
        assert_eq!(a, id("x", b"l1\nmine\nmore and more"));
        assert_ne!(a, id("x", b"l1\ntheirs\n"));
        assert_ne!(a, id("y", b"l1\nmine\nmore"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
