//! Forks: a new session holding prefixes of another's streams.

use super::internal;
use super::sessions::{session_info, session_info_by_pk, session_row};
use super::streams::{chunk_slice, chunks_between, insert_stream, prefix_state, stream_row};
use super::writer::Writer;
use crate::storage::{StorageError, StorageResult};
use baton_protocol::{ForkRequest, SessionInfo};
use rusqlite::params;

/// Copy the prefixes `req.streams` of session `id` into the new session
/// `req.new_id`, sharing the source's chunks; repeating a fork that already
/// happened returns the earlier copy.
pub(super) fn fork_in(
    w: &mut Writer,
    user: i64,
    id: &str,
    req: ForkRequest,
) -> StorageResult<SessionInfo> {
    let source = session_row(&w.conn, user, id)?;
    match session_info(&w.conn, user, &req.new_id) {
        Ok(existing) if existing.diverged_from.as_deref() == Some(id) => return Ok(existing),
        Ok(_) => return Err(StorageError::Exists(req.new_id)),
        Err(StorageError::NotFound) => {}
        Err(e) => return Err(e),
    }
    // Check every prefix before writing anything.
    let mut plans = Vec::new();
    for p in &req.streams {
        let Some(stream) = stream_row(&w.conn, source.pk, &p.name)? else {
            if p.len == 0 {
                continue;
            }
            return Err(StorageError::NotFound);
        };
        if p.len > stream.len {
            return Err(StorageError::OffsetAhead { len: stream.len });
        }
        let at = prefix_state(&w.conn, &w.blobs, stream.pk, p.len)?;
        if at.hex() != p.sha256.to_ascii_lowercase() {
            return Err(StorageError::Diverged {
                len: stream.len,
                sha256: stream.state.hex(),
            });
        }
        plans.push((p.name.clone(), stream.pk, p.len, at));
    }
    let seq = w.next_seq() as i64;
    w.conn
        .execute(
            "INSERT INTO sessions(user_id, id, agent, cwd, title, first_prompt, started_at, updated_at,
               forked_from, diverged_from, encrypted, updated_seq)
             SELECT user_id, ?1, agent, cwd, title, first_prompt, started_at, updated_at,
               forked_from, id, encrypted, ?2 FROM sessions WHERE pk = ?3",
            params![req.new_id, seq, source.pk],
        )
        .map_err(internal)?;
    let new_pk = w.conn.last_insert_rowid();
    for (name, old_stream, len, state) in plans {
        let new_stream = insert_stream(&w.conn, new_pk, &name)?;
        w.conn
            .execute(
                "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
                 SELECT ?1, start, len, data, blob, blob_off, state_after FROM chunks
                 WHERE stream_pk = ?2 AND start + len <= ?3",
                params![new_stream, old_stream, len as i64],
            )
            .map_err(internal)?;
        // The chunk straddling the cut is shared in part.
        let straddling = chunks_between(&w.conn, old_stream, len.saturating_sub(1), len)?
            .into_iter()
            .find(|c| c.start < len && c.start + c.len > len);
        if let Some(c) = straddling {
            let keep = len - c.start;
            let data = match &c.data {
                Some(d) => Some(chunk_slice(d, 0, keep as usize)?.to_vec()),
                None => None,
            };
            w.conn
                .execute(
                    "INSERT INTO chunks(stream_pk, start, len, data, blob, blob_off, state_after)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        new_stream,
                        c.start as i64,
                        keep as i64,
                        data,
                        c.blob,
                        c.blob_off as i64,
                        state.to_bytes()
                    ],
                )
                .map_err(internal)?;
        }
        w.conn
            .execute(
                "UPDATE streams SET len = ?1, state = ?2 WHERE pk = ?3",
                params![len as i64, state.to_bytes(), new_stream],
            )
            .map_err(internal)?;
    }
    session_info_by_pk(&w.conn, new_pk)
}
