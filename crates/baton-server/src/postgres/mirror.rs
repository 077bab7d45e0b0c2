//! Mirror state: what the `local` account's mirror last copied of each
//! file on the machine running the server.

use super::{Postgres, db_error, exec, rows};
use crate::hash::RunningSha256;
use crate::storage::{MirrorFile, StorageResult};
use baton_native::discover::FileStat;

/// Every mirrored file of `user`.
pub(super) async fn files(store: &Postgres, user: i64) -> StorageResult<Vec<MirrorFile>> {
    let client = store.client().await?;
    let found = rows(
        &client,
        "SELECT path, size, mtime_ns, ino, dev, state, diverged FROM mirror_files WHERE user_id = $1",
        &[&user],
    )
    .await?;
    // A row whose hash state does not parse is dropped: the mirror then
    // checks that file against the server copy from scratch.
    Ok(found
        .iter()
        .filter_map(|r| {
            let state: Vec<u8> = r.get(5);
            RunningSha256::from_bytes(&state).map(|mirrored| MirrorFile {
                path: r.get(0),
                stat: FileStat {
                    size: r.get::<_, i64>(1) as u64,
                    mtime_ns: r.get(2),
                    ino: r.get::<_, i64>(3) as u64,
                    dev: r.get::<_, i64>(4) as u64,
                },
                mirrored,
                diverged: r.get(6),
            })
        })
        .collect())
}

/// Record `save` and forget `forget` (paths) for `user`, in one transaction.
pub(super) async fn save_files(
    store: &Postgres,
    user: i64,
    save: Vec<MirrorFile>,
    forget: Vec<String>,
) -> StorageResult<()> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db_error)?;
    for f in &save {
        exec(
            &tx,
            "INSERT INTO mirror_files(user_id, path, size, mtime_ns, ino, dev, state, diverged)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT(user_id, path) DO UPDATE SET size = excluded.size,
               mtime_ns = excluded.mtime_ns, ino = excluded.ino, dev = excluded.dev,
               state = excluded.state, diverged = excluded.diverged",
            &[
                &user,
                &f.path,
                &(f.stat.size as i64),
                &f.stat.mtime_ns,
                &(f.stat.ino as i64),
                &(f.stat.dev as i64),
                &f.mirrored.to_bytes(),
                &f.diverged,
            ],
        )
        .await?;
    }
    exec(
        &tx,
        "DELETE FROM mirror_files WHERE user_id = $1 AND path = ANY($2)",
        &[&user, &forget],
    )
    .await?;
    tx.commit().await.map_err(db_error)
}
