//! Stream rows and their chunks: lookups, reading byte ranges, hash states
//! of prefixes, fork checkpoints and streaming a stream's body.

use super::blobs::BlobDir;
use super::sessions::session_row;
use super::{Embedded, internal};
use crate::hash::RunningSha256;
use crate::storage::{StorageError, StorageResult, StreamRead};
use baton_protocol::Checkpoint;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

/// A stream's key, length and hash state after its last byte.
pub(super) struct StreamRow {
    pub(super) pk: i64,
    pub(super) len: u64,
    pub(super) state: RunningSha256,
}

/// A hash state stored in the database.
pub(super) fn parse_state(bytes: &[u8]) -> StorageResult<RunningSha256> {
    RunningSha256::from_bytes(bytes)
        .ok_or_else(|| StorageError::Internal("corrupt hash state in database".into()))
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

impl ChunkRow {
    fn bytes(&self, blobs: &BlobDir) -> StorageResult<Vec<u8>> {
        match (&self.data, &self.blob) {
            (Some(d), _) => Ok(d.clone()),
            (None, Some(b)) => blobs
                .read(b, self.blob_off, self.len)
                .map_err(|e| StorageError::Internal(format!("cannot read blob {b}: {e}"))),
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

/// The stored bytes `[from, to)` of a stream.
pub(super) fn read_range(
    conn: &Connection,
    blobs: &BlobDir,
    stream_pk: i64,
    from: u64,
    to: u64,
) -> StorageResult<Vec<u8>> {
    let mut out = Vec::with_capacity((to - from) as usize);
    for chunk in chunks_between(conn, stream_pk, from, to)? {
        let end = chunk.start + chunk.len;
        if end <= from {
            continue;
        }
        let bytes = chunk.bytes(blobs)?;
        let lo = from.saturating_sub(chunk.start) as usize;
        let hi = (to.min(end) - chunk.start) as usize;
        out.extend_from_slice(chunk_slice(&bytes, lo, hi)?);
    }
    if out.len() as u64 != to - from {
        return Err(StorageError::Internal(
            "stream chunks do not cover the range".into(),
        ));
    }
    Ok(out)
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
    let bytes = last.bytes(blobs)?;
    state.update(chunk_slice(&bytes, 0, (offset - last.start) as usize)?);
    Ok(state)
}

/// `bytes[lo..hi]` of a stored chunk, or a storage error when the chunk row
/// claims more bytes than are stored (a corrupt database).
pub(super) fn chunk_slice(bytes: &[u8], lo: usize, hi: usize) -> StorageResult<&[u8]> {
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
    ) -> StorageResult<StreamRead> {
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
        let blobs = self.inner.blobs.clone();
        let body = futures::stream::iter(
            chunks.into_iter().filter(move |c| c.start + c.len > from),
        )
        .then(move |c| {
            let blobs = blobs.clone();
            async move {
                let lo = from.saturating_sub(c.start) as usize;
                let bytes = match c.data {
                    Some(d) => d,
                    None => tokio::task::spawn_blocking(move || c.bytes(&blobs))
                        .await
                        .map_err(internal)??,
                };
                let hi = bytes.len();
                chunk_slice(&bytes, lo, hi)?;
                Ok(Bytes::from(bytes).slice(lo..))
            }
        });
        use futures::StreamExt;
        Ok(StreamRead {
            len,
            sha256,
            body: body.boxed(),
        })
    }
}
