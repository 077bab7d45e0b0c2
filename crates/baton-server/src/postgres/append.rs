//! Appends: one transaction locks the session row, checks offset, prefix
//! hash and overlap against the stored stream, and adds the new bytes as
//! one chunk, so replicas appending to one session at once are serialized
//! by the database.

use super::sessions::{mark_changed, session_row};
use super::streams::{StreamRow, prefix_state, stored_equals, stream_row};
use super::{INLINE_MAX, Postgres, db_error, exec, row};
use crate::hash::RunningSha256;
use crate::storage::{StorageError, StorageResult};
use baton_protocol::AppendResult;
use bytes::Bytes;
use deadpool_postgres::GenericClient;
use sha2::Digest;

/// Where an append goes: stream `name` of session `id` of account `user`,
/// at `offset`, where the stored bytes before `offset` must hash to `prefix`.
#[derive(Debug, Clone)]
pub(super) struct AppendAt {
    pub(super) user: i64,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) offset: u64,
    pub(super) prefix: [u8; 32],
}

/// What an append will do, once its session, offset, prefix and overlap are checked.
struct AppendPlan {
    session_pk: i64,
    existing: Option<StreamRow>,
    /// Bytes at the start of the body the stream already holds.
    overlap: u64,
}

impl AppendPlan {
    /// True when the append adds bytes (or creates the stream).
    fn writes(&self, body_len: usize) -> bool {
        self.existing.is_none() || (self.overlap as usize) < body_len
    }
}

/// Check an append against the stored stream; `lock` holds the session row
/// until the transaction ends.
async fn plan_append(
    c: &impl GenericClient,
    store: &Postgres,
    at: &AppendAt,
    data: &[u8],
    lock: bool,
) -> StorageResult<AppendPlan> {
    let session = session_row(c, at.user, &at.id, lock).await?;
    let existing = stream_row(c, session.pk, &at.name).await?;
    let (len, state) = match &existing {
        Some(s) => (s.len, s.state.clone()),
        None => (0, RunningSha256::new()),
    };
    if at.offset > len {
        return Err(StorageError::OffsetAhead { len });
    }
    let diverged = || StorageError::Diverged {
        len,
        sha256: state.hex(),
    };
    let at_offset = match &existing {
        Some(s) if at.offset < len => prefix_state(c, store, s.pk, at.offset).await?,
        _ => state.clone(),
    };
    if at_offset.digest() != at.prefix {
        return Err(diverged());
    }
    let overlap = (len - at.offset).min(data.len() as u64);
    if overlap > 0 {
        let Some(s) = &existing else {
            return Err(diverged());
        };
        if !stored_equals(c, store, s.pk, at.offset, &data[..overlap as usize]).await? {
            return Err(diverged());
        }
    }
    Ok(AppendPlan {
        session_pk: session.pk,
        existing,
        overlap,
    })
}

/// Store a large body as a blob named by its sha256, before any metadata
/// references it; returns the name.
async fn put_blob(store: &Postgres, bytes: &Bytes) -> StorageResult<String> {
    let data = bytes.clone();
    store
        .with_blobs(move |blobs| {
            let name = hex::encode(sha2::Sha256::digest(&data));
            blobs.put(&name, &data)?;
            Ok(name)
        })
        .await
}

/// Append `bytes` at `at`. A body larger than [`INLINE_MAX`] is checked
/// first and then stored as a blob before the transaction that references
/// it; a blob of an append rejected after all is left to the sweep (another
/// replica's append of the same bytes may rely on it).
pub(super) async fn append(
    store: &Postgres,
    at: AppendAt,
    bytes: Bytes,
) -> StorageResult<AppendResult> {
    let mut client = store.client().await?;
    let mut blob = None;
    if bytes.len() > INLINE_MAX {
        // Check first, so a push that would be rejected never stores a blob.
        let plan = plan_append(&client, store, &at, &bytes, false).await?;
        if plan.writes(bytes.len()) {
            blob = Some(put_blob(store, &bytes).await?);
        }
    }
    let tx = client.transaction().await.map_err(db_error)?;
    let plan = plan_append(&tx, store, &at, &bytes, true).await?;
    let state = plan
        .existing
        .as_ref()
        .map(|s| s.state.clone())
        .unwrap_or_default();
    let len = state.len();
    let new = &bytes[plan.overlap as usize..];
    if new.is_empty() && plan.existing.is_some() {
        return Ok(AppendResult {
            len,
            sha256: state.hex(),
        });
    }
    let stream_pk: i64 = match &plan.existing {
        Some(s) => s.pk,
        None => row(
            &tx,
            "INSERT INTO streams(session_pk, name, len, state) VALUES ($1, $2, 0, $3) RETURNING pk",
            &[&plan.session_pk, &at.name, &RunningSha256::new().to_bytes()],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StorageError::Internal("stream insert returned nothing".into()))?,
    };
    let mut state = state;
    if !new.is_empty() {
        if bytes.len() > INLINE_MAX && blob.is_none() {
            // The stream changed between the check and the lock.
            blob = Some(put_blob(store, &bytes).await?);
        }
        state.update(new);
        let state_bytes = state.to_bytes();
        let (inline, blob_off) = match &blob {
            Some(_) => (None, plan.overlap as i64),
            None => (Some(new), 0),
        };
        exec(
            &tx,
            "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &stream_pk,
                &(len as i64),
                &(new.len() as i64),
                &inline,
                &blob,
                &blob_off,
                &state_bytes,
            ],
        )
        .await?;
        exec(
            &tx,
            "UPDATE streams SET len = $1, state = $2 WHERE pk = $3",
            &[&(state.len() as i64), &state_bytes, &stream_pk],
        )
        .await?;
    }
    mark_changed(&tx, plan.session_pk).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(AppendResult {
        len: state.len(),
        sha256: state.hex(),
    })
}
