//! Accounts and their bearer tokens (stored as SHA-256 hashes).

use super::internal;
use super::writer::Writer;
use crate::storage::{Account, StorageError, StorageResult};
use baton_protocol::NewUser;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Digest;

/// Creation time of an account or token.
pub(crate) fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// The key a token is stored and looked up under.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Validate an account name (same alphabet as session ids, at most 64 characters).
pub fn validate_user_name(name: &str) -> StorageResult<()> {
    if name.len() > 64 {
        return Err(StorageError::Invalid(
            "user name must be at most 64 characters".into(),
        ));
    }
    baton_protocol::validate_session_id(name)
        .map_err(|_| StorageError::Invalid(format!(
            "user name `{}` may only use letters, digits, `-`, `_` and `.`, and must not start with `.`",
            name.escape_debug()
        )))
}

/// A fresh random bearer token.
pub(crate) fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Create the account `name` (already validated) with a fresh token.
pub(super) fn create_user_in(w: &mut Writer, name: String) -> StorageResult<NewUser> {
    let taken: bool = w
        .conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
            params![name],
            |r| r.get(0),
        )
        .map_err(internal)?;
    if taken {
        return Err(StorageError::Invalid(format!(
            "user `{name}` already exists"
        )));
    }
    w.conn
        .execute(
            "INSERT INTO users(name, created_at) VALUES (?1, ?2)",
            params![name, now()],
        )
        .map_err(internal)?;
    let user_id = w.conn.last_insert_rowid();
    let token = new_token();
    w.conn
        .execute(
            "INSERT INTO tokens(hash, user_id, created_at) VALUES (?1, ?2, ?3)",
            params![token_hash(&token).to_vec(), user_id, now()],
        )
        .map_err(internal)?;
    Ok(NewUser { user: name, token })
}

/// Make sure the account `name` (already validated) exists and accepts `token`.
pub(super) fn ensure_user_token_in(
    w: &mut Writer,
    name: String,
    token: &str,
) -> StorageResult<Account> {
    w.conn
        .execute(
            "INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![name, now()],
        )
        .map_err(internal)?;
    let id: i64 = w
        .conn
        .query_row("SELECT id FROM users WHERE name = ?1", params![name], |r| {
            r.get(0)
        })
        .map_err(internal)?;
    w.conn
        .execute(
            "INSERT INTO tokens(hash, user_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(hash) DO NOTHING",
            params![token_hash(token).to_vec(), id, now()],
        )
        .map_err(internal)?;
    Ok(Account { id, name })
}

/// The account a token hash belongs to, if any.
pub(super) fn account_by_token(
    conn: &Connection,
    hash: [u8; 32],
) -> StorageResult<Option<Account>> {
    conn.query_row(
        "SELECT u.id, u.name FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
        params![hash.to_vec()],
        |r| {
            Ok(Account {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        },
    )
    .optional()
    .map_err(internal)
}
