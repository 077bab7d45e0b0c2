//! Read-only share links: one session each, stored by the sha256 of their
//! secret, valid until they expire or are revoked (deleted).

use super::internal;
use super::sessions::session_row;
use super::writer::Writer;
use crate::storage::{StorageError, StorageResult};
use baton_protocol::Share;
use rusqlite::{Connection, params};
use sha2::Digest;

/// The stored key of a share token, and the public id derived from it.
pub(crate) fn key(token: &str) -> ([u8; 32], String) {
    let hash: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
    (hash, hex::encode(&hash[..8]))
}

/// RFC 3339 UTC of Unix seconds `t` (clamped to the representable range).
pub(crate) fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .unwrap_or(jiff::Timestamp::MAX)
        .to_string()
}

/// Keep link `token` to session `id` of `user` until `expires_unix`.
pub(super) fn create_in(
    w: &mut Writer,
    user: i64,
    id: &str,
    token: &str,
    expires_unix: i64,
) -> StorageResult<Share> {
    let session = session_row(&w.conn, user, id)?;
    let (hash, share_id) = key(token);
    let created_at = jiff::Timestamp::now().to_string();
    w.conn
        .execute(
            "INSERT INTO shares(hash, id, session_pk, created_at, expires_unix) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash, share_id, session.pk, created_at, expires_unix],
        )
        .map_err(internal)?;
    Ok(Share {
        id: share_id,
        session_id: id.to_string(),
        created_at,
        expires_at: rfc3339(expires_unix),
        token: None,
    })
}

/// The links to session `id` of `user` valid at `now`, newest first.
pub(super) fn list(conn: &Connection, user: i64, id: &str, now: i64) -> StorageResult<Vec<Share>> {
    let session = session_row(conn, user, id)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, created_at, expires_unix FROM shares
             WHERE session_pk = ?1 AND expires_unix > ?2 ORDER BY created_at DESC, id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![session.pk, now], |r| {
            Ok(Share {
                id: r.get(0)?,
                session_id: id.to_string(),
                created_at: r.get(1)?,
                expires_at: rfc3339(r.get(2)?),
                token: None,
            })
        })
        .map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

/// Delete link `share` of session `id` of `user`.
pub(super) fn revoke_in(w: &mut Writer, user: i64, id: &str, share: &str) -> StorageResult<()> {
    let session = session_row(&w.conn, user, id)?;
    let gone = w
        .conn
        .execute(
            "DELETE FROM shares WHERE session_pk = ?1 AND id = ?2",
            params![session.pk, share],
        )
        .map_err(internal)?;
    if gone == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

/// The owner and id of the session link `token` opens at `now`.
pub(super) fn resolve(conn: &Connection, token: &str, now: i64) -> StorageResult<(i64, String)> {
    let (hash, _) = key(token);
    conn.prepare_cached(
        "SELECT s.user_id, s.id FROM shares sh JOIN sessions s ON s.pk = sh.session_pk
         WHERE sh.hash = ?1 AND sh.expires_unix > ?2",
    )
    .map_err(internal)?
    .query_row(params![hash, now], |r| Ok((r.get(0)?, r.get(1)?)))
    .map_err(|e| match e {
        rusqlite::Error::QueryReturnedNoRows => StorageError::NotFound,
        other => internal(other),
    })
}
