//! Mirror state: what the `local` account's mirror last copied of each
//! file on this machine.

use super::internal;
use super::writer::Writer;
use crate::hash::RunningSha256;
use crate::storage::{MirrorFile, StorageResult};
use baton_native::discover::FileStat;
use rusqlite::{Connection, params};

/// Every mirrored file of `user`.
pub(super) fn files(conn: &Connection, user: i64) -> StorageResult<Vec<MirrorFile>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT path, size, mtime_ns, ino, dev, state, diverged
             FROM mirror_files WHERE user_id = ?1",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![user], |r| {
            Ok((
                r.get::<_, String>(0)?,
                FileStat {
                    size: r.get::<_, i64>(1)? as u64,
                    mtime_ns: r.get(2)?,
                    ino: r.get::<_, i64>(3)? as u64,
                    dev: r.get::<_, i64>(4)? as u64,
                },
                r.get::<_, Vec<u8>>(5)?,
                r.get::<_, i64>(6)? != 0,
            ))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        let (path, stat, state, diverged) = row.map_err(internal)?;
        // A row whose hash state does not parse is dropped: the mirror
        // then checks that file against the server copy from scratch.
        if let Some(mirrored) = RunningSha256::from_bytes(&state) {
            out.push(MirrorFile {
                path,
                stat,
                mirrored,
                diverged,
            });
        }
    }
    Ok(out)
}

/// Record `save` and forget `forget` (paths) for `user`.
pub(super) fn save_files_in(
    w: &mut Writer,
    user: i64,
    save: &[MirrorFile],
    forget: &[String],
) -> StorageResult<()> {
    let mut put = w
        .conn
        .prepare_cached(
            "INSERT OR REPLACE INTO mirror_files(user_id, path, size, mtime_ns, ino, dev, state, diverged)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(internal)?;
    for f in save {
        put.execute(params![
            user,
            f.path,
            f.stat.size as i64,
            f.stat.mtime_ns,
            f.stat.ino as i64,
            f.stat.dev as i64,
            f.mirrored.to_bytes(),
            f.diverged as i64
        ])
        .map_err(internal)?;
    }
    let mut del = w
        .conn
        .prepare_cached("DELETE FROM mirror_files WHERE user_id = ?1 AND path = ?2")
        .map_err(internal)?;
    for path in forget {
        del.execute(params![user, path]).map_err(internal)?;
    }
    Ok(())
}
