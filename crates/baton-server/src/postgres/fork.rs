//! Forks: a new session holding prefixes of another's streams.

use super::sessions::{session_info, session_row};
use super::streams::{chunks_between, prefix_state, stream_row};
use super::{Postgres, db_error, exec, is_unique_violation, row, schema};
use crate::embedded::chunk_slice;
use crate::storage::{StorageError, StorageResult};
use baton_protocol::{ForkRequest, SessionInfo};

/// Copy the prefixes `req.streams` of session `id` into the new session
/// `req.new_id`, sharing the source's chunks; repeating a fork that already
/// happened (on any replica) returns the earlier copy.
pub(super) async fn fork(
    store: &Postgres,
    user: i64,
    id: String,
    req: ForkRequest,
) -> StorageResult<SessionInfo> {
    let mut client = store.client().await?;
    let earlier = |existing: SessionInfo| {
        if existing.diverged_from.as_deref() == Some(id.as_str()) {
            Ok(existing)
        } else {
            Err(StorageError::Exists(req.new_id.clone()))
        }
    };
    let tx = client.transaction().await.map_err(db_error)?;
    let source = session_row(&tx, user, &id, true).await?;
    match session_info(&tx, user, &req.new_id).await {
        Ok(existing) => return earlier(existing),
        Err(StorageError::NotFound) => {}
        Err(e) => return Err(e),
    }
    // Check every prefix before writing anything.
    let mut plans = Vec::new();
    for p in &req.streams {
        let Some(stream) = stream_row(&tx, source.pk, &p.name).await? else {
            if p.len == 0 {
                continue;
            }
            return Err(StorageError::NotFound);
        };
        if p.len > stream.len {
            return Err(StorageError::OffsetAhead { len: stream.len });
        }
        let at = prefix_state(&tx, store, stream.pk, p.len).await?;
        if at.hex() != p.sha256.to_ascii_lowercase() {
            return Err(StorageError::Diverged {
                len: stream.len,
                sha256: stream.state.hex(),
            });
        }
        plans.push((p.name.clone(), stream.pk, p.len, at));
    }
    let inserted = tx
        .query_one(
            "INSERT INTO sessions(user_id, id, agent, cwd, title, first_prompt, started_at, updated_at,
               forked_from, diverged_from, encrypted, seq_pending)
             SELECT user_id, $1, agent, cwd, title, first_prompt, started_at, updated_at,
               forked_from, id, encrypted, true FROM sessions WHERE pk = $2
             RETURNING pk",
            &[&req.new_id, &source.pk],
        )
        .await;
    let new_pk: i64 = match inserted {
        Ok(r) => r.get(0),
        Err(e) if is_unique_violation(&e) => {
            // Another replica made it meanwhile.
            drop(tx);
            let existing = session_info(&client, user, &req.new_id).await?;
            return earlier(existing);
        }
        Err(e) => return Err(db_error(e)),
    };
    for (name, old_stream, len, state) in plans {
        let new_stream: i64 = row(
            &tx,
            "INSERT INTO streams(session_pk, name, len, state) VALUES ($1, $2, $3, $4) RETURNING pk",
            &[&new_pk, &name, &(len as i64), &state.to_bytes()],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StorageError::Internal("stream insert returned nothing".into()))?;
        exec(
            &tx,
            "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
             SELECT $1, start, len, data, blob, blob_off, state_after FROM chunks
             WHERE stream_pk = $2 AND start + len <= $3",
            &[&new_stream, &old_stream, &(len as i64)],
        )
        .await?;
        // The chunk straddling the cut is shared in part.
        let straddling = chunks_between(&tx, old_stream, len.saturating_sub(1), len)
            .await?
            .into_iter()
            .find(|c| c.start < len && c.start + c.len > len);
        if let Some(c) = straddling {
            let keep = len - c.start;
            let data = match &c.data {
                Some(d) => Some(chunk_slice(d, 0, keep as usize)?.to_vec()),
                None => None,
            };
            exec(
                &tx,
                "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &new_stream,
                    &(c.start as i64),
                    &(keep as i64),
                    &data,
                    &c.blob,
                    &(c.blob_off as i64),
                    &state.to_bytes(),
                ],
            )
            .await?;
        }
    }
    tx.commit().await.map_err(db_error)?;
    schema::sequence(&client).await?;
    session_info(&client, user, &req.new_id).await
}
