//! Read-only share links: one session each, stored by the sha256 of their
//! secret, valid until they expire or are revoked (deleted), like the
//! embedded backend's.

use super::sessions::session_row;
use super::{Postgres, exec, row, rows};
use crate::embedded::shares::{key, rfc3339};
use crate::storage::{StorageError, StorageResult};
use baton_protocol::Share;

/// Keep link `token` to session `id` of `user` until `expires_unix`.
pub(super) async fn create(
    store: &Postgres,
    user: i64,
    id: String,
    token: String,
    expires_unix: i64,
) -> StorageResult<Share> {
    let client = store.client().await?;
    let session = session_row(&client, user, &id, false).await?;
    let (hash, share_id) = key(&token);
    let created_at = jiff::Timestamp::now().to_string();
    exec(
        &client,
        "INSERT INTO shares(hash, id, session_pk, created_at, expires_unix)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &hash.as_slice(),
            &share_id,
            &session.pk,
            &created_at,
            &expires_unix,
        ],
    )
    .await?;
    Ok(Share {
        id: share_id,
        session_id: id,
        created_at,
        expires_at: rfc3339(expires_unix),
        token: None,
    })
}

/// The links to session `id` of `user` valid at `now`, newest first.
pub(super) async fn list(
    store: &Postgres,
    user: i64,
    id: String,
    now: i64,
) -> StorageResult<Vec<Share>> {
    let client = store.client().await?;
    let session = session_row(&client, user, &id, false).await?;
    let found = rows(
        &client,
        "SELECT id, created_at, expires_unix FROM shares
         WHERE session_pk = $1 AND expires_unix > $2
         ORDER BY created_at COLLATE \"C\" DESC, id COLLATE \"C\"",
        &[&session.pk, &now],
    )
    .await?;
    Ok(found
        .iter()
        .map(|r| Share {
            id: r.get(0),
            session_id: id.clone(),
            created_at: r.get(1),
            expires_at: rfc3339(r.get(2)),
            token: None,
        })
        .collect())
}

/// Delete link `share` of session `id` of `user`.
pub(super) async fn revoke(
    store: &Postgres,
    user: i64,
    id: String,
    share: String,
) -> StorageResult<()> {
    let client = store.client().await?;
    let session = session_row(&client, user, &id, false).await?;
    let gone = exec(
        &client,
        "DELETE FROM shares WHERE session_pk = $1 AND id = $2",
        &[&session.pk, &share],
    )
    .await?;
    if gone == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

/// The owner and id of the session link `token` opens at `now`.
pub(super) async fn resolve(
    store: &Postgres,
    token: String,
    now: i64,
) -> StorageResult<(i64, String)> {
    let client = store.client().await?;
    let (hash, _) = key(&token);
    row(
        &client,
        "SELECT s.user_id, s.id FROM shares sh JOIN sessions s ON s.pk = sh.session_pk
         WHERE sh.hash = $1 AND sh.expires_unix > $2",
        &[&hash.as_slice(), &now],
    )
    .await?
    .map(|r| (r.get(0), r.get(1)))
    .ok_or(StorageError::NotFound)
}
