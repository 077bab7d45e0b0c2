//! The start-up sweep of blobs no chunk references (left by a crash between
//! storing a blob and committing its append, or by a rejected append).

use super::{Postgres, SWEEP_GRACE, rows};
use crate::storage::StorageResult;
use std::collections::HashSet;

/// Delete blobs stored before `before` and before [`SWEEP_GRACE`] ago (a
/// younger one may belong to another replica's append in flight) that no
/// chunk references; how many.
pub(super) async fn sweep(store: &Postgres, before: std::time::SystemTime) -> StorageResult<usize> {
    let cutoff = before.min(std::time::SystemTime::now() - SWEEP_GRACE);
    let names = store.with_blobs(move |b| b.written_before(cutoff)).await?;
    if names.is_empty() {
        return Ok(0);
    }
    let client = store.client().await?;
    let referenced: HashSet<String> = rows(
        &client,
        "SELECT DISTINCT blob FROM chunks WHERE blob = ANY($1)",
        &[&names],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let unused: Vec<String> = names
        .into_iter()
        .filter(|n| !referenced.contains(n))
        .collect();
    let count = unused.len();
    store
        .with_blobs(move |b| unused.iter().try_for_each(|n| b.delete(n)))
        .await?;
    Ok(count)
}
