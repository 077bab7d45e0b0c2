//! Server-side indexing of plaintext sessions: pushed bytes are fed
//! incrementally to baton-native's [`FileReader`] (the same reader the local
//! catalog uses), so search and the session list learn titles, prompts,
//! counts and message text without a second parser. Encrypted sessions are
//! never read.

use crate::storage::{IndexUpdate, Storage};
use baton_native::{Agent, Chunk, FileReader, MessageKind, ReaderState};
use baton_sync::protocol::MAIN_STREAM;
use futures::StreamExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A transcript could not be read (the reader failed on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesError(pub String);

/// Feed `bytes` to a reader (new, or resumed from `state`), never panicking.
pub fn feed(
    agent: Agent,
    state: Option<ReaderState>,
    bytes: &[u8],
) -> Result<(Chunk, ReaderState), MessagesError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut reader = match state {
            Some(s) => FileReader::resume(s),
            None => FileReader::new(agent),
        };
        let chunk = reader.feed(bytes);
        (chunk, reader.state().clone())
    }))
    .map_err(|_| MessagesError("the transcript reader failed on this session".into()))
}

/// All messages of a whole main stream.
pub fn read_all(agent: Agent, bytes: &[u8]) -> Result<Chunk, MessagesError> {
    feed(agent, None, bytes).map(|(chunk, _)| chunk)
}

/// Text worth searching for in a chunk's messages (prompts, replies, tool I/O).
fn searchable(chunk: &Chunk) -> Vec<String> {
    chunk
        .messages
        .iter()
        .filter(|m| !matches!(m.kind, MessageKind::Context) && !m.text.trim().is_empty())
        .map(|m| match &m.tool_name {
            Some(tool) if m.kind == MessageKind::ToolCall => format!("{tool} {}", m.text),
            _ => m.text.clone(),
        })
        .collect()
}

/// Index everything pending once; returns how many sessions were processed.
pub async fn index_pending(storage: &dyn Storage) -> usize {
    let jobs = match storage.index_backlog(32).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!("indexer: cannot list pending sessions: {e}");
            return 0;
        }
    };
    let n = jobs.len();
    for job in jobs {
        let from = job.state.as_ref().map(|s| s.consumed).unwrap_or(0);
        let read = match storage
            .read(job.user_id, &job.session_id, MAIN_STREAM, from)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("indexer: cannot read session {}: {e}", job.session_id);
                continue;
            }
        };
        let seen_len = read.len;
        let mut bytes = Vec::new();
        let mut body = read.body;
        let mut failed = false;
        while let Some(piece) = body.next().await {
            match piece {
                Ok(p) => bytes.extend_from_slice(&p),
                Err(e) => {
                    tracing::warn!("indexer: cannot read session {}: {e}", job.session_id);
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            continue;
        }
        let agent = job.agent;
        let prior = job.state.clone();
        let fed = tokio::task::spawn_blocking(move || feed(agent, prior, &bytes)).await;
        let update = match fed {
            Ok(Ok((chunk, state))) => IndexUpdate {
                user_id: job.user_id,
                session_id: job.session_id.clone(),
                seen_len,
                texts: searchable(&chunk),
                state: Some(state),
            },
            _ => {
                // Mark the bytes seen so a transcript the reader cannot handle
                // is not retried in a loop; the next append retries it.
                tracing::warn!(
                    "indexer: the transcript reader failed on session {}",
                    job.session_id
                );
                IndexUpdate {
                    user_id: job.user_id,
                    session_id: job.session_id.clone(),
                    seen_len,
                    texts: Vec::new(),
                    state: None,
                }
            }
        };
        if let Err(e) = storage.save_index(update).await {
            tracing::warn!("indexer: cannot save index of {}: {e}", job.session_id);
        }
    }
    n
}

/// Run the indexer until the process ends: index whenever woken, and every few seconds.
pub async fn run(storage: Arc<dyn Storage>, wake: Arc<Notify>) {
    loop {
        if index_pending(storage.as_ref()).await == 0 {
            let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
        }
    }
}
