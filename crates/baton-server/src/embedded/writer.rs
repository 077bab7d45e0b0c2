//! The writer thread: it owns the only write connection and commits every
//! queued job of a batch in one transaction, each in its own savepoint.

use super::blobs::BlobDir;
use super::internal;
use super::schema::max_seq;
use crate::storage::{StorageError, StorageResult};
use rusqlite::{Connection, params};
use std::sync::mpsc;
use tokio::sync::oneshot;

const MAX_BATCH: usize = 512;

/// One queued write, run inside the writer's transaction.
pub(super) trait Job: Send {
    /// Run in a savepoint; `false` rolls the savepoint back.
    fn run(&mut self, w: &mut Writer) -> bool;
    /// Deliver the result once the transaction committed (or failed).
    fn finish(self: Box<Self>, commit: StorageResult<()>);
}

type WriteFn<T> = Box<dyn FnOnce(&mut Writer) -> StorageResult<T> + Send>;

/// A write job of `f`, and where its result arrives after the commit.
pub(super) fn job<T: Send + 'static>(
    f: impl FnOnce(&mut Writer) -> StorageResult<T> + Send + 'static,
) -> (Box<dyn Job>, oneshot::Receiver<StorageResult<T>>) {
    let (tx, rx) = oneshot::channel();
    let job = TypedJob {
        f: Some(Box::new(f) as WriteFn<T>),
        res: None,
        tx: Some(tx),
    };
    (Box::new(job), rx)
}

struct TypedJob<T> {
    f: Option<WriteFn<T>>,
    res: Option<StorageResult<T>>,
    tx: Option<oneshot::Sender<StorageResult<T>>>,
}

impl<T: Send> Job for TypedJob<T> {
    fn run(&mut self, w: &mut Writer) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panicking job fails alone: its savepoint is rolled back and the
        // writer thread keeps serving every other request.
        let res =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(w))).unwrap_or_else(|_| {
                Err(StorageError::Internal(
                    "a database write failed unexpectedly; see the server log".into(),
                ))
            });
        let ok = res.is_ok();
        self.res = Some(res);
        ok
    }

    fn finish(mut self: Box<Self>, commit: StorageResult<()>) {
        let res = match (commit, self.res.take()) {
            (Err(e), Some(Ok(_))) => Err(e),
            (_, Some(res)) => res,
            (Err(e), None) => Err(e),
            (Ok(()), None) => Err(StorageError::Internal("write was not run".into())),
        };
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(res);
        }
    }
}

/// State owned by the writer thread.
pub(super) struct Writer {
    /// The only write connection.
    pub(super) conn: Connection,
    /// The blob files chunks refer to.
    pub(super) blobs: BlobDir,
    seq: u64,
}

impl Writer {
    /// Start the writer thread, which owns `conn` from now on; returns the
    /// queue its jobs are sent to.
    pub(super) fn spawn(
        conn: Connection,
        blobs: BlobDir,
        seq: u64,
    ) -> StorageResult<mpsc::Sender<Box<dyn Job>>> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let writer = Writer { conn, blobs, seq };
        std::thread::Builder::new()
            .name("baton-db-writer".into())
            .spawn(move || writer.run_loop(rx))
            .map_err(internal)?;
        Ok(tx)
    }

    /// The next value of the session change counter.
    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Move a session to the end of the `changes` feed.
    pub(super) fn bump(&mut self, session_pk: i64) -> StorageResult<()> {
        let seq = self.next_seq();
        self.conn
            .prepare_cached("UPDATE sessions SET updated_seq = ?1 WHERE pk = ?2")
            .map_err(internal)?
            .execute(params![seq as i64, session_pk])
            .map_err(internal)?;
        Ok(())
    }

    fn run_loop(mut self, rx: mpsc::Receiver<Box<dyn Job>>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let commit = self.run_batch(&mut batch);
            if commit.is_err() {
                let _ = self.conn.execute_batch("ROLLBACK");
                if let Ok(seq) = max_seq(&self.conn) {
                    self.seq = self.seq.max(seq);
                }
            }
            for job in batch {
                job.finish(commit.clone());
            }
        }
    }

    fn run_batch(&mut self, batch: &mut [Box<dyn Job>]) -> StorageResult<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(internal)?;
        for job in batch.iter_mut() {
            self.conn.execute_batch("SAVEPOINT job").map_err(internal)?;
            let ok = job.run(self);
            if !ok {
                self.conn
                    .execute_batch("ROLLBACK TO job")
                    .map_err(internal)?;
            }
            self.conn.execute_batch("RELEASE job").map_err(internal)?;
        }
        self.conn.execute_batch("COMMIT").map_err(internal)
    }
}
