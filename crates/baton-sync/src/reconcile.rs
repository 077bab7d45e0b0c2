//! Reconcile: how a local file relates to its server stream.
//!
//! The engine never trusts its own memory blindly: before sending or
//! appending anything it compares each local file with the server stream,
//! using the position acknowledged earlier when it still holds and the
//! server's bytes otherwise. The comparison itself is pure: [`plan`] decides
//! from the local bytes, the earlier position and the server's listing
//! whether the answer is already known or which server bytes are needed, and
//! [`compare`] answers from those bytes, a segment at a time. The engine's
//! `Syncer::reconcile` does the one fetch between them, into a temporary
//! file: a stream of any size is never held whole.

use crate::engine::{Codec, Syncer};
use crate::error::{ClientError, copy_error};
use crate::http::Prefix;
use crate::native::{LocalBytes, Spool};
use crate::state::{IdRewrite, Tracked};
use baton_protocol::{Checkpoint, EMPTY_SHA256, StreamInfo};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Server bytes beyond the local file: the plaintext `tail`, and the
/// server stream's length and hash at the read.
#[derive(Debug)]
pub struct Ahead {
    /// Plaintext the local file lacks, in a temporary file.
    pub tail: LocalBytes,
    /// Server stream length.
    pub len: u64,
    /// Hex sha256 of the server stream's first `len` bytes.
    pub sha256: String,
}

/// How a local file relates to its server stream.
#[derive(Debug)]
pub enum Relation {
    /// Same bytes.
    InSync,
    /// The local file extends the server stream.
    LocalAhead,
    /// The server stream extends the local file.
    RemoteAhead(Ahead),
    /// Different bytes after a common prefix.
    Diverged,
}

/// Outcome of reconciling one local file with one server stream.
#[derive(Debug)]
pub struct Reconciled {
    /// How the two relate.
    pub relation: Relation,
    /// Agreed position with both hashes (known for `InSync` and `LocalAhead`).
    pub at: Option<Tracked>,
    /// Append boundaries (remote, plain) both sides share, ascending; for
    /// plain streams every offset up to the last one is shared.
    pub shared: Vec<(u64, u64)>,
    /// True for a plain stream.
    pub plain: bool,
}

impl Reconciled {
    /// The longest shared prefix that is a server checkpoint: (remote, plain, sha).
    pub fn shared_checkpoint(&self, checkpoints: &[Checkpoint]) -> (u64, u64, String) {
        let last = self.shared.last().map(|s| s.0).unwrap_or(0);
        for cp in checkpoints.iter().rev() {
            if self.plain && cp.offset <= last {
                return (cp.offset, cp.offset, cp.sha256.clone());
            }
            if let Some(&(_, p)) = self.shared.iter().find(|s| s.0 == cp.offset) {
                return (cp.offset, p, cp.sha256.clone());
            }
        }
        (0, 0, EMPTY_SHA256.to_owned())
    }
}

/// One local file as the comparison sees it.
#[derive(Debug, Clone, Copy)]
pub struct LocalStream<'a> {
    /// The file.
    pub path: &'a Path,
    /// Its plaintext bytes (empty when it does not exist yet), read by
    /// range.
    pub bytes: &'a LocalBytes,
    /// The position acknowledged for it earlier, if any.
    pub prev: Option<&'a Tracked>,
    /// The id rewrite its bytes carry (a diverged copy's library file).
    pub rewrite: Option<&'a IdRewrite>,
    /// True for a plain stream, false for a sealed one.
    pub plain: bool,
}

/// What [`plan`] decided.
#[derive(Debug)]
pub enum Step {
    /// The relation is known without server bytes.
    Known(Reconciled),
    /// Compare the server's bytes after this agreed position.
    Fetch(Tracked),
}

/// Plaintext segments of server bytes, each with the length it takes on the
/// server (a plain stream's are pieces of whole lines; a sealed one's are
/// its frames; a redacted one's its lines), read as they are needed.
pub type Segments<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, u64), ClientError>> + 'a>;

/// Server bytes after the start of a [`Step::Fetch`].
pub struct ServerBytes<'a> {
    /// The bytes, as plaintext segments.
    pub segments: Segments<'a>,
    /// Server stream length at the read.
    pub len: u64,
    /// Hex sha256 of the server stream's first `len` bytes.
    pub sha256: String,
}

/// A [`Tracked`] position of `path` at `plain_len` of `local` and
/// `remote_len` (hash `sha`) of the server stream.
pub(crate) fn tracked(
    path: &Path,
    local: &LocalBytes,
    plain_len: u64,
    remote_len: u64,
    sha: &str,
) -> Result<Tracked, ClientError> {
    let plain_sha256 = match plain_len {
        0 => EMPTY_SHA256.to_owned(),
        n => local.prefix_sha256(n)?,
    };
    Ok(tracked_at(path, plain_len, plain_sha256, remote_len, sha))
}

/// A [`Tracked`] position of `path` at `plain_len` (hash `plain_sha256`) of
/// the local file and `remote_len` (hash `sha`) of the server stream.
fn tracked_at(
    path: &Path,
    plain_len: u64,
    plain_sha256: String,
    remote_len: u64,
    sha: &str,
) -> Tracked {
    Tracked {
        path: path.to_path_buf(),
        plain_len,
        plain_sha256,
        remote_len,
        remote_sha256: sha.to_owned(),
        rewrite: None,
        stamp: None,
    }
}

/// `LocalAhead` when `local` holds more than `agreed` bytes, else `InSync`.
fn ahead_or_equal(local: &LocalStream, agreed: u64) -> Relation {
    if local.bytes.len() > agreed {
        Relation::LocalAhead
    } else {
        Relation::InSync
    }
}

/// A finished comparison agreeing on `at`.
fn agreed(local: &LocalStream, at: Tracked) -> Reconciled {
    Reconciled {
        relation: ahead_or_equal(local, at.plain_len),
        shared: vec![(at.remote_len, at.plain_len)],
        at: Some(at),
        plain: local.plain,
    }
}

/// Decide what comparing `local` with the server stream `server` (as
/// listed; `None` when the server has no such stream) needs: the answer
/// itself when hashes settle it, else the agreed position to fetch the
/// server's bytes after. Hashing reads the local file a piece at a time.
pub fn plan(local: &LocalStream, server: Option<&StreamInfo>) -> Result<Step, ClientError> {
    let bytes = local.bytes;
    let zero = tracked_at(local.path, 0, EMPTY_SHA256.to_owned(), 0, EMPTY_SHA256);
    let Some(server) = server else {
        return Ok(Step::Known(agreed(local, zero)));
    };
    if local.plain && local.rewrite.is_none() && bytes.len() >= server.len {
        let sha = bytes.prefix_sha256(server.len)?;
        if sha == server.sha256 {
            let at = tracked_at(local.path, server.len, sha, server.len, &server.sha256);
            return Ok(Step::Known(agreed(local, at)));
        }
    }
    let mut start = None;
    if let Some(p) = local.prev
        && p.path == local.path
        && p.plain_len <= bytes.len()
        && p.remote_len <= server.len
        && bytes.prefix_sha256(p.plain_len)? == p.plain_sha256
    {
        start = Some(p.clone());
    }
    Ok(match start {
        Some(start) if start.remote_len == server.len && start.remote_sha256 == server.sha256 => {
            Step::Known(agreed(local, start))
        }
        Some(start) if start.remote_len < server.len => Step::Fetch(start),
        _ => Step::Fetch(zero),
    })
}

/// Compare `local` with the server's bytes after `start` (a position
/// [`plan`] returned), reading of `local` only as much as the server sent,
/// a segment at a time. Server bytes beyond `local` are written to a
/// temporary file in `spool_dir` ([`Ahead::tail`]).
pub fn compare(
    local: &LocalStream,
    start: &Tracked,
    server: ServerBytes<'_>,
    spool_dir: &Path,
) -> Result<Reconciled, ClientError> {
    let plain = local.plain;
    // A rewritten library copy is compared with the server's bytes as they
    // look after the rewrite (same length, so positions agree).
    let rewritten = |(seg, n): (Vec<u8>, u64)| match local.rewrite {
        Some(rw) => (rw.apply(&seg), n),
        None => (seg, n),
    };
    let (mut p, mut r) = (start.plain_len, start.remote_len);
    let mut shared = vec![(r, p)];
    let mut segments = server.segments;
    while let Some(segment) = segments.next() {
        let (seg, sealed_len) = rewritten(segment?);
        let avail = local.bytes.read(p, p + seg.len() as u64)?;
        let n = avail.len();
        if avail[..] != seg[..n] {
            if plain {
                let k = avail[..n]
                    .iter()
                    .zip(&seg[..n])
                    .take_while(|(a, b)| a == b)
                    .count() as u64;
                shared.push((r + k, p + k));
            }
            return Ok(Reconciled {
                relation: Relation::Diverged,
                at: None,
                shared,
                plain,
            });
        }
        if n == seg.len() {
            p += n as u64;
            r += sealed_len;
            shared.push((r, p));
            continue;
        }
        if plain {
            shared.push((r + n as u64, p + n as u64));
        }
        let mut tail = Spool::new(spool_dir)?;
        tail.append(&seg[n..])?;
        for rest in segments {
            tail.append(&rewritten(rest?).0)?;
        }
        return Ok(Reconciled {
            relation: Relation::RemoteAhead(Ahead {
                tail: tail.finish(),
                len: server.len,
                sha256: server.sha256,
            }),
            at: None,
            shared,
            plain,
        });
    }
    let at = tracked(local.path, local.bytes, p, server.len, &server.sha256)?;
    Ok(agreed(local, at))
}

/// Where the read of the server's bytes after `start` (a [`Step::Fetch`])
/// starts, and what the server's bytes before it are: for a plain stream,
/// the local prefix (as the server holds it, before a rewrite) when it
/// hashes to the agreed position, else from 0; for a sealed or redacted
/// one, the agreed position unverified.
fn read_from(local: &LocalStream, start: Tracked) -> Result<(Tracked, Prefix), ClientError> {
    if !local.plain && start.remote_len > 0 {
        let offset = start.remote_len;
        return Ok((start, Prefix::Unverified(offset)));
    }
    if local.plain {
        let mut hasher = Sha256::new();
        let holds = match local.rewrite {
            // `plan` checked `plain_sha256` against the local bytes.
            None => {
                start.plain_len == start.remote_len && start.plain_sha256 == start.remote_sha256
            }
            Some(rw) => {
                let back = rw.reversed();
                local
                    .bytes
                    .copy_range(0, start.plain_len, Some(&back), &mut hasher)
                    .map_err(copy_error(local.path))?;
                hex::encode(hasher.clone().finalize()) == start.remote_sha256
            }
        };
        if holds {
            if local.rewrite.is_none() {
                local.bytes.hash_prefix(&mut hasher, start.plain_len)?;
            }
            let len = start.plain_len;
            return Ok((start, Prefix::Hashed { len, hasher }));
        }
    }
    let zero = tracked_at(local.path, 0, EMPTY_SHA256.to_owned(), 0, EMPTY_SHA256);
    Ok((zero, Prefix::start()))
}

impl Syncer<'_> {
    /// Compare `local` with the server stream `server` of session `id`:
    /// [`plan`], fetch the server's bytes it asks for into a temporary file
    /// (checked against the server's hash), [`compare`].
    #[tracing::instrument(level = "debug", skip_all, fields(session = id, stream = name))]
    pub(crate) async fn reconcile(
        &self,
        id: &str,
        name: &str,
        local: &LocalStream<'_>,
        server: Option<&StreamInfo>,
        codec: Codec<'_>,
    ) -> Result<Reconciled, ClientError> {
        let start = match plan(local, server)? {
            Step::Known(done) => return Ok(done),
            Step::Fetch(start) => start,
        };
        let (start, prefix) = read_from(local, start)?;
        let mut wire = Spool::new(&self.spool_dir)?;
        let read = self.client.read_stream(id, name, prefix, &mut wire).await?;
        let wire = wire.finish();
        let server = ServerBytes {
            segments: Box::new(codec.opened(name, &wire, &start)),
            len: read.len,
            sha256: read.sha256,
        };
        compare(local, &start, server, &self.spool_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_protocol::sha256_hex;

    fn stream(bytes: &[u8]) -> StreamInfo {
        StreamInfo {
            name: "main".into(),
            len: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }

    fn local<'a>(bytes: &'a LocalBytes, prev: Option<&'a Tracked>) -> LocalStream<'a> {
        LocalStream {
            path: Path::new("/l/s.jsonl"),
            bytes,
            prev,
            rewrite: None,
            plain: true,
        }
    }

    fn mem(bytes: &[u8]) -> LocalBytes {
        LocalBytes::Memory(bytes.to_vec())
    }

    fn server_bytes(all: &[u8], from: usize) -> ServerBytes<'static> {
        let segment = (all[from..].to_vec(), (all.len() - from) as u64);
        ServerBytes {
            segments: Box::new(std::iter::once(Ok(segment))),
            len: all.len() as u64,
            sha256: sha256_hex(all),
        }
    }

    #[test]
    fn no_server_stream_means_everything_is_to_push() {
        let Step::Known(r) = plan(&local(&mem(b"a\nb\n"), None), None).unwrap() else {
            panic!("needs no server bytes")
        };
        assert!(matches!(r.relation, Relation::LocalAhead));
        assert_eq!(r.at.unwrap().plain_len, 0);
        let Step::Known(r) = plan(&local(&mem(b""), None), None).unwrap() else {
            panic!("needs no server bytes")
        };
        assert!(matches!(r.relation, Relation::InSync));
    }

    #[test]
    fn a_local_file_extending_the_server_is_settled_by_hashes() {
        let Step::Known(r) = plan(&local(&mem(b"a\nb\n"), None), Some(&stream(b"a\n"))).unwrap()
        else {
            panic!("needs no server bytes")
        };
        assert!(matches!(r.relation, Relation::LocalAhead));
        let at = r.at.unwrap();
        assert_eq!((at.plain_len, at.remote_len), (2, 2));
        let Step::Known(r) = plan(&local(&mem(b"a\n"), None), Some(&stream(b"a\n"))).unwrap()
        else {
            panic!("needs no server bytes")
        };
        assert!(matches!(r.relation, Relation::InSync));
    }

    #[test]
    fn a_longer_server_stream_gives_its_tail() {
        let server = b"a\nb\nc\n";
        let bytes = mem(b"a\n");
        let l = local(&bytes, None);
        let Step::Fetch(start) = plan(&l, Some(&stream(server))).unwrap() else {
            panic!("needs the server's bytes")
        };
        assert_eq!(start.remote_len, 0);
        let spool = tempfile::tempdir().unwrap();
        let r = compare(&l, &start, server_bytes(server, 0), spool.path()).unwrap();
        let Relation::RemoteAhead(ahead) = r.relation else {
            panic!("server is ahead")
        };
        assert_eq!(&*ahead.tail.read(0, u64::MAX).unwrap(), b"b\nc\n");
        assert_eq!((ahead.len, ahead.sha256), (6, sha256_hex(server)));
    }

    #[test]
    fn different_bytes_diverge_after_their_common_prefix() {
        let server = b"a\nmine\n";
        let bytes = mem(b"a\ntheirs\n");
        let l = local(&bytes, None);
        let Step::Fetch(start) = plan(&l, Some(&stream(server))).unwrap() else {
            panic!("needs the server's bytes")
        };
        let spool = tempfile::tempdir().unwrap();
        let r = compare(&l, &start, server_bytes(server, 0), spool.path()).unwrap();
        assert!(matches!(r.relation, Relation::Diverged));
        assert_eq!(r.shared.last(), Some(&(2, 2)));
    }

    #[test]
    fn a_still_valid_earlier_position_is_fetched_from() {
        let server = b"a\nb\nc\n";
        let bytes = mem(b"a\nb\n");
        let prev = tracked(Path::new("/l/s.jsonl"), &bytes, 2, 2, &sha256_hex(b"a\n")).unwrap();
        let mut l = local(&bytes, Some(&prev));
        l.rewrite = None;
        // A rewrite-free plain file the server extends: fetch after `prev`.
        let Step::Fetch(start) = plan(&l, Some(&stream(server))).unwrap() else {
            panic!("needs the server's bytes")
        };
        assert_eq!(start.remote_len, 2);
        let spool = tempfile::tempdir().unwrap();
        let r = compare(&l, &start, server_bytes(server, 2), spool.path()).unwrap();
        let Relation::RemoteAhead(ahead) = r.relation else {
            panic!("server is ahead")
        };
        assert_eq!(&*ahead.tail.read(0, u64::MAX).unwrap(), b"c\n");
        // A position whose local bytes changed since is not trusted.
        let stale = tracked(
            Path::new("/l/s.jsonl"),
            &mem(b"x\n"),
            2,
            2,
            &sha256_hex(b"a\n"),
        )
        .unwrap();
        let Step::Fetch(start) = plan(&local(&bytes, Some(&stale)), Some(&stream(server))).unwrap()
        else {
            panic!("needs the server's bytes")
        };
        assert_eq!(start.remote_len, 0);
    }

    #[test]
    fn a_sealed_stream_at_its_acknowledged_position_needs_no_bytes() {
        let bytes = mem(b"plain text\n");
        let prev = tracked(Path::new("/l/s.jsonl"), &bytes, 11, 40, "cafe").unwrap();
        let mut l = local(&bytes, Some(&prev));
        l.plain = false;
        let server = StreamInfo {
            name: "main".into(),
            len: 40,
            sha256: "cafe".into(),
        };
        let Step::Known(r) = plan(&l, Some(&server)).unwrap() else {
            panic!("needs no server bytes")
        };
        assert!(matches!(r.relation, Relation::InSync));
        assert_eq!(r.at.unwrap().remote_len, 40);
    }

    #[test]
    fn shared_checkpoint_picks_the_longest_common_append_boundary() {
        let cps = |offs: &[u64]| -> Vec<Checkpoint> {
            offs.iter()
                .map(|&o| Checkpoint {
                    offset: o,
                    sha256: format!("h{o}"),
                })
                .collect()
        };
        let plain = Reconciled {
            relation: Relation::Diverged,
            at: None,
            shared: vec![(0, 0), (17, 17)],
            plain: true,
        };
        assert_eq!(
            plain.shared_checkpoint(&cps(&[0, 10, 20])),
            (10, 10, "h10".into())
        );
        let sealed = Reconciled {
            relation: Relation::Diverged,
            at: None,
            shared: vec![(0, 0), (90, 30)],
            plain: false,
        };
        assert_eq!(
            sealed.shared_checkpoint(&cps(&[0, 90, 180])),
            (90, 30, "h90".into())
        );
        assert_eq!(sealed.shared_checkpoint(&cps(&[0, 50])).0, 0);
    }
}
