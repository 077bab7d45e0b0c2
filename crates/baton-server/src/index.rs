//! Server-side indexing of plaintext sessions: pushed bytes are fed
//! incrementally to baton-native's [`FileReader`] (the same reader the local
//! catalog uses), so search and the session list learn titles, prompts,
//! counts and message text without a second parser. Encrypted sessions are
//! never read.

use crate::storage::{IndexJob, IndexUpdate, Storage, StorageError, StorageResult};
use baton_native::{Agent, Chunk, FileReader, Message, MessageKind, ReaderState};
use baton_sync::protocol::MAIN_STREAM;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
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

/// One page of a main stream's messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessagePage {
    /// Messages numbered `[offset, offset + limit)`, in file order.
    pub messages: Vec<Message>,
    /// Lines the reader skipped up to the end of the page.
    pub skipped_lines: u64,
    /// True when messages follow the page.
    pub more: bool,
}

/// Read the messages numbered `[offset, offset + limit)` from a main
/// stream's pieces. Only the page and one piece are held in memory, and
/// reading stops as soon as the page is full.
pub async fn page_messages(
    agent: Agent,
    mut body: BoxStream<'static, StorageResult<Bytes>>,
    offset: u64,
    limit: usize,
) -> Result<MessagePage, StorageError> {
    let failed = |e: String| StorageError::Internal(e);
    let mut reader = FileReader::new(agent);
    let mut pending = Vec::new();
    let mut page = MessagePage::default();
    let mut seen = 0u64;
    while let Some(piece) = body.next().await {
        pending.extend_from_slice(&piece?);
        let (r, rest, chunk) = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(AssertUnwindSafe(move || {
                let before = reader.state().consumed;
                let chunk = reader.feed(&pending);
                let used = (reader.state().consumed - before) as usize;
                pending.drain(..used.min(pending.len()));
                (reader, pending, chunk)
            }))
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|_| failed("the transcript reader failed on this session".into()))?;
        reader = r;
        pending = rest;
        page.skipped_lines += chunk.issues.len() as u64;
        for m in chunk.messages {
            if page.messages.len() == limit {
                page.more = true;
                return Ok(page);
            }
            if seen >= offset {
                page.messages.push(m);
            }
            seen += 1;
        }
    }
    Ok(page)
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

/// How long a stream that could not be read is left alone at first; doubled
/// after every further failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait before retrying a stream that cannot be read.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Sessions taken from the backlog per pass.
const BATCH: u32 = 32;

/// A stream that could not be read, and when to try it again.
#[derive(Debug, Clone, Copy)]
struct Failing {
    retry_at: Instant,
    backoff: Duration,
}

/// Indexes pending sessions, backing off from streams it cannot read so an
/// unreadable stream neither spins the CPU nor starves the rest of the backlog.
pub struct Indexer {
    storage: Arc<dyn Storage>,
    failing: HashMap<(i64, String), Failing>,
}

impl Indexer {
    /// An indexer over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            failing: HashMap::new(),
        }
    }

    /// Index everything pending once; returns how many sessions' indexes were
    /// updated (streams that failed, or wait for a retry, do not count).
    pub async fn index_pending(&mut self) -> usize {
        let now = Instant::now();
        self.failing.retain(|_, f| f.retry_at > now);
        let waiting = u32::try_from(self.failing.len()).unwrap_or(u32::MAX);
        let jobs = match self
            .storage
            .index_backlog(BATCH.saturating_add(waiting))
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!("indexer: cannot list pending sessions: {e}");
                return 0;
            }
        };
        let mut updated = 0;
        for job in jobs {
            let key = (job.user_id, job.session_id.clone());
            if self.failing.contains_key(&key) {
                continue;
            }
            match index_one(self.storage.as_ref(), job).await {
                Ok(()) => updated += 1,
                Err(e) => {
                    tracing::warn!("indexer: session {}: {e}", key.1);
                    self.back_off(key);
                }
            }
        }
        updated
    }

    fn back_off(&mut self, key: (i64, String)) {
        let backoff = match self.failing.get(&key) {
            Some(f) => (f.backoff * 2).min(MAX_BACKOFF),
            None => FIRST_BACKOFF,
        };
        self.failing.insert(
            key,
            Failing {
                retry_at: Instant::now() + backoff,
                backoff,
            },
        );
    }

    /// Run until the process ends: index whenever woken, and every few seconds.
    pub async fn run(mut self, wake: Arc<Notify>) {
        loop {
            if self.index_pending().await == 0 {
                let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
            }
        }
    }
}

/// Index the new bytes of one session's main stream.
async fn index_one(storage: &dyn Storage, job: IndexJob) -> Result<(), String> {
    let from = job.state.as_ref().map(|s| s.consumed).unwrap_or(0);
    let read = storage
        .read(job.user_id, &job.session_id, MAIN_STREAM, from)
        .await
        .map_err(|e| format!("cannot read: {e}"))?;
    let seen_len = read.len;
    let mut bytes = Vec::new();
    let mut body = read.body;
    while let Some(piece) = body.next().await {
        bytes.extend_from_slice(&piece.map_err(|e| format!("cannot read: {e}"))?);
    }
    let agent = job.agent;
    let prior = job.state.clone();
    let fed = tokio::task::spawn_blocking(move || feed(agent, prior, &bytes)).await;
    let update = match fed {
        Ok(Ok((chunk, state))) => IndexUpdate {
            user_id: job.user_id,
            session_id: job.session_id.clone(),
            from,
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
                from,
                seen_len,
                texts: Vec::new(),
                state: None,
            }
        }
    };
    storage
        .save_index(update)
        .await
        .map_err(|e| format!("cannot save the index: {e}"))
}
