//! Stream rows and their chunks: lookups, reading byte ranges, hash states
//! of prefixes, fork checkpoints and streaming a stream's body.

use super::sessions::session_row;
use super::{Postgres, parse_state, row, rows};
use crate::embedded::chunk_slice;
use crate::hash::RunningSha256;
use crate::storage::{StorageError, StorageResult, StoredBytes};
use baton_protocol::Checkpoint;
use bytes::Bytes;
use deadpool_postgres::GenericClient;
use futures::StreamExt;
use std::sync::Arc;
use tokio_postgres::Row;

/// A stream's key, length and hash state after its last byte.
pub(super) struct StreamRow {
    pub(super) pk: i64,
    pub(super) len: u64,
    pub(super) state: RunningSha256,
}

/// The stream `name` of a session, if it exists.
pub(super) async fn stream_row(
    c: &impl GenericClient,
    session_pk: i64,
    name: &str,
) -> StorageResult<Option<StreamRow>> {
    let found = row(
        c,
        "SELECT pk, len, state FROM streams WHERE session_pk = $1 AND name = $2",
        &[&session_pk, &name],
    )
    .await?;
    match found {
        None => Ok(None),
        Some(r) => {
            let state: Vec<u8> = r.get(2);
            Ok(Some(StreamRow {
                pk: r.get(0),
                len: r.get::<_, i64>(1) as u64,
                state: parse_state(&state)?,
            }))
        }
    }
}

/// One append's bytes: inline, or a range of a blob.
pub(super) struct ChunkRow {
    pub(super) start: u64,
    pub(super) len: u64,
    pub(super) data: Option<Vec<u8>>,
    pub(super) blob: Option<String>,
    pub(super) blob_off: u64,
    pub(super) state_after: Vec<u8>,
}

/// Largest piece of a chunk read at once when comparing, hashing or sending it.
const WINDOW: u64 = 1024 * 1024;

const CHUNK_COLUMNS: &str = "start, len, data, blob, blob_off, state_after";

fn chunk_from_row(r: &Row) -> ChunkRow {
    ChunkRow {
        start: r.get::<_, i64>(0) as u64,
        len: r.get::<_, i64>(1) as u64,
        data: r.get(2),
        blob: r.get(3),
        blob_off: r.get::<_, i64>(4) as u64,
        state_after: r.get(5),
    }
}

impl ChunkRow {
    /// Bytes `[at, at + n)` of the chunk, inline or read from its blob.
    async fn range(self: &Arc<Self>, store: &Postgres, at: u64, n: u64) -> StorageResult<Vec<u8>> {
        match (&self.data, &self.blob) {
            (Some(d), _) => Ok(chunk_slice(d, at as usize, (at + n) as usize)?.to_vec()),
            (None, Some(b)) => {
                let (b, off) = (b.clone(), self.blob_off + at);
                store.with_blobs(move |blobs| blobs.read(&b, off, n)).await
            }
            (None, None) => Err(StorageError::Internal("chunk without data".into())),
        }
    }

    /// Pass the chunk's bytes `[lo, hi)` to `f` a window of at most
    /// [`WINDOW`] bytes at a time, stopping early when `f` returns false;
    /// returns false when it stopped early.
    async fn each_window(
        self: &Arc<Self>,
        store: &Postgres,
        lo: u64,
        hi: u64,
        mut f: impl FnMut(&[u8]) -> bool,
    ) -> StorageResult<bool> {
        let mut at = lo;
        while at < hi {
            let n = (hi - at).min(WINDOW);
            let window = self.range(store, at, n).await?;
            if !f(&window) {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
    }
}

/// Chunks overlapping `[from, to)`, in order.
pub(super) async fn chunks_between(
    c: &impl GenericClient,
    stream_pk: i64,
    from: u64,
    to: u64,
) -> StorageResult<Vec<Arc<ChunkRow>>> {
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM chunks
         WHERE stream_pk = $1
           AND start >= (SELECT COALESCE(MAX(start), 0) FROM chunks WHERE stream_pk = $1 AND start <= $2)
           AND start < $3
         ORDER BY start"
    );
    let found = rows(c, &sql, &[&stream_pk, &(from as i64), &(to as i64)]).await?;
    Ok(found.iter().map(|r| Arc::new(chunk_from_row(r))).collect())
}

/// True when the stored bytes of a stream from `from` on equal `data`
/// (which must lie within the stream), compared a window at a time.
pub(super) async fn stored_equals(
    c: &impl GenericClient,
    store: &Postgres,
    stream_pk: i64,
    from: u64,
    data: &[u8],
) -> StorageResult<bool> {
    let to = from + data.len() as u64;
    let mut at = from;
    for chunk in chunks_between(c, stream_pk, from, to).await? {
        let end = chunk.start + chunk.len;
        if end <= at {
            continue;
        }
        let (lo, hi) = (at - chunk.start, to.min(end) - chunk.start);
        let mut rest = &data[(at - from) as usize..];
        let same = chunk
            .each_window(store, lo, hi, |window| {
                let (want, next) = rest.split_at(window.len().min(rest.len()));
                rest = next;
                window == want
            })
            .await?;
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
pub(super) async fn prefix_state(
    c: &impl GenericClient,
    store: &Postgres,
    stream_pk: i64,
    offset: u64,
) -> StorageResult<RunningSha256> {
    if offset == 0 {
        return Ok(RunningSha256::new());
    }
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM chunks WHERE stream_pk = $1 AND start < $2
         ORDER BY start DESC LIMIT 2"
    );
    let found: Vec<Arc<ChunkRow>> = rows(c, &sql, &[&stream_pk, &(offset as i64)])
        .await?
        .iter()
        .map(|r| Arc::new(chunk_from_row(r)))
        .collect();
    let Some(last) = found.first() else {
        return Err(StorageError::Internal("stream has no chunks".into()));
    };
    if last.start + last.len == offset {
        return parse_state(&last.state_after);
    }
    let mut state = match found.get(1) {
        Some(prev) => parse_state(&prev.state_after)?,
        None => RunningSha256::new(),
    };
    last.each_window(store, 0, offset - last.start, |window| {
        state.update(window);
        true
    })
    .await?;
    Ok(state)
}

/// The offsets (and hashes of the prefixes ending there) a fork can cut
/// stream `name` of session `id` at: 0 and the end of every append.
pub(super) async fn checkpoints(
    store: &Postgres,
    user: i64,
    id: String,
    stream: String,
) -> StorageResult<Vec<Checkpoint>> {
    let client = store.client().await?;
    let session = session_row(&client, user, &id, false).await?;
    let mut out = vec![Checkpoint {
        offset: 0,
        sha256: RunningSha256::new().hex(),
    }];
    let Some(s) = stream_row(&client, session.pk, &stream).await? else {
        return Ok(out);
    };
    for r in rows(
        &client,
        "SELECT start + len, state_after FROM chunks WHERE stream_pk = $1 ORDER BY start",
        &[&s.pk],
    )
    .await?
    {
        let state: Vec<u8> = r.get(1);
        out.push(Checkpoint {
            offset: r.get::<_, i64>(0) as u64,
            sha256: parse_state(&state)?.hex(),
        });
    }
    Ok(out)
}

/// Stream `stream` of session `id` from byte `from`, chunk by chunk, a
/// window of a large blob at a time.
pub(super) async fn read_stream(
    store: &Postgres,
    user: i64,
    id: String,
    stream: String,
    from: u64,
) -> StorageResult<StoredBytes> {
    let client = store.client().await?;
    let session = session_row(&client, user, &id, false).await?;
    let Some(s) = stream_row(&client, session.pk, &stream).await? else {
        return Err(StorageError::NotFound);
    };
    if from > s.len {
        return Err(StorageError::OffsetAhead { len: s.len });
    }
    let chunks = chunks_between(&client, s.pk, from, s.len).await?;
    drop(client);
    let pieces = chunks
        .into_iter()
        .filter(move |c| c.start + c.len > from)
        .flat_map(move |c| {
            let lo = from.saturating_sub(c.start);
            let len = c.len;
            (lo..len)
                .step_by(WINDOW as usize)
                .map(move |at| (c.clone(), at, (len - at).min(WINDOW)))
        });
    let store = store.clone();
    let body = futures::stream::iter(pieces).then(move |(c, at, n)| {
        let store = store.clone();
        async move { Ok(Bytes::from(c.range(&store, at, n).await?)) }
    });
    Ok(StoredBytes {
        len: s.len,
        sha256: s.state.hex(),
        body: body.boxed(),
    })
}
