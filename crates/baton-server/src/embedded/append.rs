//! Appends: checking offset, prefix hash and overlap against the stored
//! stream, then adding the new bytes as one chunk.

use super::blobs::BlobDir;
use super::sessions::session_row;
use super::streams::{StreamRow, insert_stream, prefix_state, stored_equals, stream_row};
use super::writer::Writer;
use super::{Embedded, INLINE_MAX, internal};
use crate::hash::RunningSha256;
use crate::storage::{StorageError, StorageResult};
use baton_protocol::AppendResult;
use bytes::Bytes;
use rusqlite::{Connection, params};

/// An append's bytes, already durable in a blob file when large.
struct Incoming {
    bytes: Bytes,
    blob: Option<String>,
}

/// What an append will do, once its session, offset, prefix and overlap are checked.
struct AppendPlan {
    session_pk: i64,
    existing: Option<StreamRow>,
    /// Bytes at the start of the body the stream already holds.
    overlap: u64,
}

impl AppendPlan {
    /// The stream's state before the append.
    fn state(&self) -> RunningSha256 {
        self.existing
            .as_ref()
            .map(|s| s.state.clone())
            .unwrap_or_default()
    }

    /// True when the append adds bytes (or creates the stream).
    fn writes(&self, body_len: usize) -> bool {
        self.existing.is_none() || (self.overlap as usize) < body_len
    }
}

/// Where an append goes: stream `name` of session `id` of account `user`,
/// at `offset`, where the stored bytes before `offset` must hash to `prefix`.
#[derive(Debug, Clone)]
struct AppendAt {
    user: i64,
    id: String,
    name: String,
    offset: u64,
    prefix: [u8; 32],
}

/// Check an append against the stored stream without changing anything
/// (used by the writer, and before a large body is written to a blob file).
fn plan_append(
    conn: &Connection,
    blobs: &BlobDir,
    at: &AppendAt,
    data: &[u8],
) -> StorageResult<AppendPlan> {
    let AppendAt {
        user,
        ref id,
        ref name,
        offset,
        prefix,
    } = *at;
    let session = session_row(conn, user, id)?;
    let existing = stream_row(conn, session.pk, name)?;
    let (len, state) = match &existing {
        Some(s) => (s.len, s.state.clone()),
        None => (0, RunningSha256::new()),
    };
    if offset > len {
        return Err(StorageError::OffsetAhead { len });
    }
    let diverged = || StorageError::Diverged {
        len,
        sha256: state.hex(),
    };
    let at_offset = match &existing {
        Some(s) if offset < len => prefix_state(conn, blobs, s.pk, offset)?,
        _ => state.clone(),
    };
    if at_offset.digest() != prefix {
        return Err(diverged());
    }
    let overlap = (len - offset).min(data.len() as u64);
    if overlap > 0 {
        let Some(s) = &existing else {
            return Err(diverged());
        };
        if !stored_equals(conn, blobs, s.pk, offset, &data[..overlap as usize])? {
            return Err(diverged());
        }
    }
    Ok(AppendPlan {
        session_pk: session.pk,
        existing,
        overlap,
    })
}

fn append_in(w: &mut Writer, at: &AppendAt, incoming: Incoming) -> StorageResult<AppendResult> {
    let data = &incoming.bytes;
    let plan = plan_append(&w.conn, &w.blobs, at, data)?;
    let name = at.name.as_str();
    let state = plan.state();
    let overlap = plan.overlap;
    let existing = plan.existing;
    let session_pk = plan.session_pk;
    let len = state.len();
    let new = &data[overlap as usize..];
    if new.is_empty() && existing.is_some() {
        return Ok(AppendResult {
            len,
            sha256: state.hex(),
        });
    }
    let stream_pk = match &existing {
        Some(s) => s.pk,
        None => insert_stream(&w.conn, session_pk, name)?,
    };
    let mut state = state;
    if !new.is_empty() {
        state.update(new);
        let state_bytes = state.to_bytes();
        let (inline, blob, blob_off) = match &incoming.blob {
            Some(b) => (None, Some(b.as_str()), overlap as i64),
            None => (Some(new), None, 0),
        };
        w.conn
            .prepare_cached(
                "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(internal)?
            .execute(params![
                stream_pk,
                len as i64,
                new.len() as i64,
                inline,
                blob,
                blob_off,
                state_bytes
            ])
            .map_err(internal)?;
        w.conn
            .prepare_cached("UPDATE streams SET len = ?1, state = ?2 WHERE pk = ?3")
            .map_err(internal)?
            .execute(params![state.len() as i64, state_bytes, stream_pk])
            .map_err(internal)?;
    }
    w.bump(session_pk)?;
    Ok(AppendResult {
        len: state.len(),
        sha256: state.hex(),
    })
}

impl Embedded {
    /// Append `bytes` at `offset` of stream `stream` of session `id`, whose
    /// prefix before `offset` must hash to `prefix_sha256`. A body larger
    /// than [`INLINE_MAX`] is checked first and then written to a blob file
    /// before the write job is queued.
    pub(super) async fn append_bytes(
        &self,
        user: i64,
        id: String,
        stream: String,
        offset: u64,
        prefix_sha256: [u8; 32],
        bytes: Bytes,
    ) -> StorageResult<AppendResult> {
        let at = AppendAt {
            user,
            id,
            name: stream,
            offset,
            prefix: prefix_sha256,
        };
        let pin = if bytes.len() > INLINE_MAX {
            // Check first, so a push that would be rejected never leaves a blob file.
            let (check, data) = (at.clone(), bytes.clone());
            let writes = self
                .read_with(move |conn, blobs| {
                    let plan = plan_append(conn, blobs, &check, &data)?;
                    Ok(plan.writes(data.len()))
                })
                .await?;
            if writes {
                let blobs = self.inner.blobs.clone();
                let data = bytes.clone();
                Some(
                    tokio::task::spawn_blocking(move || blobs.put(&data))
                        .await
                        .map_err(internal)??,
                )
            } else {
                None
            }
        } else {
            None
        };
        let incoming = Incoming {
            bytes,
            blob: pin.as_ref().map(|p| p.hex().to_string()),
        };
        let res = self.write(move |w| append_in(w, &at, incoming)).await;
        if let (Err(_), Some(pin)) = (&res, pin) {
            // Another append may have changed the stream since the check.
            self.read_with(move |conn, _| {
                pin.discard(conn);
                Ok(())
            })
            .await?;
        }
        res
    }
}
