//! Stream rows and their chunks: lookups, reading byte ranges, hash states
//! of prefixes, fork checkpoints and streaming a stream's body.

use super::blobs::BlobDir;
use super::sessions::session_row;
use super::{Embedded, internal, parse_state};
use crate::hash::RunningSha256;
use crate::storage::{StorageError, StorageResult, StoredBytes};
use baton_protocol::Checkpoint;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

/// A stream's key, length and hash state after its last byte.
pub(super) struct StreamRow {
    pub(super) pk: i64,
    pub(super) len: u64,
    pub(super) state: RunningSha256,
}

/// The stream `name` of a session, if it exists.
pub(super) fn stream_row(
    conn: &Connection,
    session_pk: i64,
    name: &str,
) -> StorageResult<Option<StreamRow>> {
    let row = conn
        .prepare_cached("SELECT pk, len, state FROM streams WHERE session_pk = ?1 AND name = ?2")
        .map_err(internal)?
        .query_row(params![session_pk, name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()
        .map_err(internal)?;
    match row {
        None => Ok(None),
        Some((pk, len, state)) => Ok(Some(StreamRow {
            pk,
            len: len as u64,
            state: parse_state(&state)?,
        })),
    }
}

/// One append's bytes: inline, or a range of a blob file.
pub(super) struct ChunkRow {
    pub(super) start: u64,
    pub(super) len: u64,
    pub(super) data: Option<Vec<u8>>,
    pub(super) blob: Option<String>,
    pub(super) blob_off: u64,
    state_after: Vec<u8>,
}

/// Largest piece of a chunk read at once when comparing, hashing or sending it.
const WINDOW: u64 = 1024 * 1024;

impl ChunkRow {
    /// Pass the chunk's bytes `[lo, hi)` to `f` a window of at most
    /// [`WINDOW`] bytes at a time, stopping early when `f` returns false;
    /// returns false when it stopped early.
    fn each_window(
        &self,
        blobs: &BlobDir,
        lo: u64,
        hi: u64,
        mut f: impl FnMut(&[u8]) -> bool,
    ) -> StorageResult<bool> {
        let mut at = lo;
        while at < hi {
            let n = (hi - at).min(WINDOW);
            let window = self.range(blobs, at, n)?;
            if !f(&window) {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
    }

    /// Bytes `[at, at + n)` of the chunk, inline or read from its blob.
    fn range(&self, blobs: &BlobDir, at: u64, n: u64) -> StorageResult<Vec<u8>> {
        match (&self.data, &self.blob) {
            (Some(d), _) => Ok(chunk_slice(d, at as usize, (at + n) as usize)?.to_vec()),
            (None, Some(b)) => blobs.read(b, self.blob_off + at, n),
            (None, None) => Err(StorageError::Internal("chunk without data".into())),
        }
    }
}

fn chunk_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRow> {
    Ok(ChunkRow {
        start: r.get::<_, i64>(0)? as u64,
        len: r.get::<_, i64>(1)? as u64,
        data: r.get(2)?,
        blob: r.get(3)?,
        blob_off: r.get::<_, i64>(4)? as u64,
        state_after: r.get(5)?,
    })
}

/// Chunks overlapping `[from, to)`, in order.
pub(super) fn chunks_between(
    conn: &Connection,
    stream_pk: i64,
    from: u64,
    to: u64,
) -> StorageResult<Vec<ChunkRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT start, len, data, blob, blob_off, state_after FROM chunks
             WHERE stream_pk = ?1
               AND start >= (SELECT COALESCE(MAX(start), 0) FROM chunks WHERE stream_pk = ?1 AND start <= ?2)
               AND start < ?3
             ORDER BY start",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![stream_pk, from as i64, to as i64], chunk_from_row)
        .map_err(internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(internal)
}

/// True when the stored bytes of a stream from `from` on equal `data`
/// (which must lie within the stream), compared a window at a time so a
/// long overlap is never copied whole.
pub(super) fn stored_equals(
    conn: &Connection,
    blobs: &BlobDir,
    stream_pk: i64,
    from: u64,
    data: &[u8],
) -> StorageResult<bool> {
    let to = from + data.len() as u64;
    let mut at = from;
    for chunk in chunks_between(conn, stream_pk, from, to)? {
        let end = chunk.start + chunk.len;
        if end <= at {
            continue;
        }
        let (lo, hi) = (at - chunk.start, to.min(end) - chunk.start);
        let mut rest = &data[(at - from) as usize..];
        let same = chunk.each_window(blobs, lo, hi, |window| {
            let (want, next) = rest.split_at(window.len().min(rest.len()));
            rest = next;
            window == want
        })?;
        if !same {
            return Ok(false);
        }
        at = chunk.start + hi;
    }
    if at != to {
        return Err(StorageError::Internal(
            "stream chunks do not cover the range".into(),
        ));
    }
    Ok(true)
}

/// Hash state after `[0, offset)` of a stream (`offset` ≤ its length).
pub(super) fn prefix_state(
    conn: &Connection,
    blobs: &BlobDir,
    stream_pk: i64,
    offset: u64,
) -> StorageResult<RunningSha256> {
    if offset == 0 {
        return Ok(RunningSha256::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT start, len, data, blob, blob_off, state_after FROM chunks
             WHERE stream_pk = ?1 AND start < ?2 ORDER BY start DESC LIMIT 2",
        )
        .map_err(internal)?;
    let rows: Vec<ChunkRow> = stmt
        .query_map(params![stream_pk, offset as i64], chunk_from_row)
        .map_err(internal)?
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let Some(last) = rows.first() else {
        return Err(StorageError::Internal("stream has no chunks".into()));
    };
    if last.start + last.len == offset {
        return parse_state(&last.state_after);
    }
    let mut state = match rows.get(1) {
        Some(prev) => parse_state(&prev.state_after)?,
        None => RunningSha256::new(),
    };
    last.each_window(blobs, 0, offset - last.start, |window| {
        state.update(window);
        true
    })?;
    Ok(state)
}

/// `bytes[lo..hi]` of a stored chunk, or a storage error when the chunk row
/// claims more bytes than are stored (a corrupt database).
pub(crate) fn chunk_slice(bytes: &[u8], lo: usize, hi: usize) -> StorageResult<&[u8]> {
    bytes.get(lo..hi).ok_or_else(|| {
        StorageError::Internal(format!(
            "a stored chunk holds {} bytes but its row needs bytes {lo}..{hi}; the server database is corrupt (restore it from a backup)",
            bytes.len()
        ))
    })
}

/// Create an empty stream; returns its key.
pub(super) fn insert_stream(conn: &Connection, session_pk: i64, name: &str) -> StorageResult<i64> {
    conn.prepare_cached("INSERT INTO streams(session_pk, name, len, state) VALUES (?1, ?2, 0, ?3)")
        .map_err(internal)?
        .execute(params![session_pk, name, RunningSha256::new().to_bytes()])
        .map_err(internal)?;
    Ok(conn.last_insert_rowid())
}

/// The offsets (and hashes of the prefixes ending there) a fork can cut
/// stream `name` of session `id` at: 0 and the end of every append.
pub(super) fn checkpoints(
    conn: &Connection,
    user: i64,
    id: &str,
    stream: &str,
) -> StorageResult<Vec<Checkpoint>> {
    let session = session_row(conn, user, id)?;
    let mut out = vec![Checkpoint {
        offset: 0,
        sha256: RunningSha256::new().hex(),
    }];
    let Some(s) = stream_row(conn, session.pk, stream)? else {
        return Ok(out);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT start + len, state_after FROM chunks WHERE stream_pk = ?1 ORDER BY start",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![s.pk], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(internal)?;
    for row in rows {
        let (end, state) = row.map_err(internal)?;
        out.push(Checkpoint {
            offset: end as u64,
            sha256: parse_state(&state)?.hex(),
        });
    }
    Ok(out)
}

impl Embedded {
    /// Stream `stream` of session `id` from byte `from`, read chunk by chunk.
    pub(super) async fn read_stream(
        &self,
        user: i64,
        id: String,
        stream: String,
        from: u64,
    ) -> StorageResult<StoredBytes> {
        let (len, sha256, chunks) = self
            .read_with(move |conn, _| {
                let session = session_row(conn, user, &id)?;
                let Some(s) = stream_row(conn, session.pk, &stream)? else {
                    return Err(StorageError::NotFound);
                };
                if from > s.len {
                    return Err(StorageError::OffsetAhead { len: s.len });
                }
                let chunks = chunks_between(conn, s.pk, from, s.len)?;
                Ok((s.len, s.state.hex(), chunks))
            })
            .await?;
        // Each chunk goes out in pieces of at most WINDOW bytes, so a pull
        // holds one window of a large blob in memory at a time.
        let pieces = chunks
            .into_iter()
            .filter(move |c| c.start + c.len > from)
            .flat_map(move |c| {
                let lo = from.saturating_sub(c.start);
                let len = c.len;
                let c = std::sync::Arc::new(c);
                (lo..len)
                    .step_by(WINDOW as usize)
                    .map(move |at| (c.clone(), at, (len - at).min(WINDOW)))
            });
        let blobs = self.inner.blobs.clone();
        let body = futures::stream::iter(pieces).then(move |(c, at, n)| {
            let blobs = blobs.clone();
            async move {
                let bytes = if c.data.is_some() {
                    c.range(&blobs, at, n)?
                } else {
                    tokio::task::spawn_blocking(move || c.range(&blobs, at, n))
                        .await
                        .map_err(internal)??
                };
                Ok(Bytes::from(bytes))
            }
        });
        use futures::StreamExt;
        Ok(StoredBytes {
            len,
            sha256,
            body: body.boxed(),
        })
    }
}
