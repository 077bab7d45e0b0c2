//! Accounts and their bearer tokens (stored as SHA-256 hashes).

use super::{Postgres, db_error, is_unique_violation};
use crate::embedded::accounts::{new_token, now, token_hash};
use crate::embedded::validate_user_name;
use crate::storage::{Account, StorageError, StorageResult};
use baton_protocol::NewUser;

/// Create the account `name` with a fresh token; `Invalid` when the name is taken.
pub(super) async fn create_user(store: &Postgres, name: String) -> StorageResult<NewUser> {
    validate_user_name(&name)?;
    let taken = || StorageError::Invalid(format!("user `{name}` already exists"));
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db_error)?;
    let row = tx
        .query_one(
            "INSERT INTO users(name, created_at) VALUES ($1, $2) RETURNING id",
            &[&name, &now()],
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                taken()
            } else {
                db_error(e)
            }
        })?;
    let user_id: i64 = row.get(0);
    let token = new_token();
    tx.execute(
        "INSERT INTO tokens(hash, user_id, created_at) VALUES ($1, $2, $3)",
        &[&token_hash(&token).as_slice(), &user_id, &now()],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(NewUser { user: name, token })
}

/// Make sure the account `name` exists and accepts `token`.
pub(super) async fn ensure_user_token(
    store: &Postgres,
    name: String,
    token: String,
) -> StorageResult<Account> {
    validate_user_name(&name)?;
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute(
        "INSERT INTO users(name, created_at) VALUES ($1, $2) ON CONFLICT(name) DO NOTHING",
        &[&name, &now()],
    )
    .await
    .map_err(db_error)?;
    let id: i64 = tx
        .query_one("SELECT id FROM users WHERE name = $1", &[&name])
        .await
        .map_err(db_error)?
        .get(0);
    tx.execute(
        "INSERT INTO tokens(hash, user_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT(hash) DO NOTHING",
        &[&token_hash(&token).as_slice(), &id, &now()],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(Account { id, name })
}

/// The account a token belongs to, if any.
pub(super) async fn authenticate(
    store: &Postgres,
    token: String,
) -> StorageResult<Option<Account>> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT u.id, u.name FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
        )
        .await
        .map_err(db_error)?;
    let row = client
        .query_opt(&stmt, &[&token_hash(&token).as_slice()])
        .await
        .map_err(db_error)?;
    Ok(row.map(|r| Account {
        id: r.get(0),
        name: r.get(1),
    }))
}
