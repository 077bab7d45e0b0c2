//! Server-side indexing of plaintext sessions: pushed bytes are fed
//! incrementally to baton-native's [`FileReader`] (the same reader the local
//! catalog uses), so search and the session list learn titles, prompts,
//! counts and message text without a second parser. Encrypted sessions are
//! never read.

use crate::storage::{IndexJob, IndexUpdate, MessageCheckpoint, SearchText, Storage, StorageError};
use baton_native::{Agent, Chunk, FileReader, Message, MessageKind, ReaderState, SessionFacts};
use baton_protocol::{MAIN_STREAM, SessionInfo};
use futures::StreamExt;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A transcript could not be read (the reader failed on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesError(pub String);

/// Messages between two saved reader positions of a main stream (see
/// [`MessageCheckpoint`]): a page is read from the nearest one, so reading
/// page `k` costs about one interval plus the page, whatever `k` is.
pub const CHECKPOINT_EVERY: u64 = 256;

/// Bytes fed to the reader at a time while indexing, so checkpoints land
/// close to every [`CHECKPOINT_EVERY`] messages.
const INDEX_SLICE: usize = 64 * 1024;

/// New bytes one indexing pass reads at most (it goes on to the end of the
/// line it is in), so indexing holds a bounded part of a session.
const INDEX_PASS: usize = 16 << 20;

/// One page of a main stream's messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessagePage {
    /// Messages numbered `[offset, offset + limit)`, in file order.
    pub messages: Vec<Message>,
    /// Lines the reader skipped up to the end of the page.
    pub skipped_lines: u64,
    /// True when messages follow the page.
    pub more: bool,
    /// Stream bytes read to build the page (from the checkpoint used on).
    pub bytes_read: u64,
}

/// Read the messages numbered `[offset, offset + limit)` of a plaintext
/// session's main stream, resuming from the nearest saved checkpoint at or
/// before `offset`. Only the page and one piece are held in memory, and
/// reading stops as soon as the page is full.
pub async fn page_messages(
    storage: &dyn Storage,
    user: i64,
    id: &str,
    agent: Agent,
    offset: u64,
    limit: usize,
) -> Result<MessagePage, StorageError> {
    let start = storage.message_checkpoint(user, id, offset).await?;
    let from = start.as_ref().map(|c| c.state.consumed).unwrap_or(0);
    let read = match storage.read(user, id, MAIN_STREAM, from).await {
        Ok(read) => read,
        Err(StorageError::NotFound) => return Ok(MessagePage::default()),
        Err(e) => return Err(e),
    };
    let mut body = read.body;
    let mut page = MessagePage::default();
    let (mut reader, mut seen) = match start {
        Some(c) => {
            page.skipped_lines = c.skipped;
            let seen = c.state.facts.message_count;
            (FileReader::resume(c.state), seen)
        }
        None => (FileReader::new(agent), 0),
    };
    let mut pending = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = piece?;
        page.bytes_read += piece.len() as u64;
        pending.extend_from_slice(&piece);
        let chunk;
        (reader, pending, chunk) = feed_blocking(reader, pending).await?;
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

/// Feed `pending` to `reader` on the blocking pool; returns the reader, the
/// bytes it did not consume (a partial last line) and what it read.
async fn feed_blocking(
    mut reader: FileReader,
    mut pending: Vec<u8>,
) -> Result<(FileReader, Vec<u8>, Chunk), StorageError> {
    let failed = |e: String| StorageError::Internal(e);
    tokio::task::spawn_blocking(move || {
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
    .map_err(|_| failed("the transcript reader failed on this session".into()))
}

/// Read a main stream from its start until the reader has consumed `end`
/// bytes: the messages of the lines that start before `end`, and the
/// reader's facts then. `None` when the session or stream does not exist.
async fn read_prefix(
    storage: &dyn Storage,
    user: i64,
    id: &str,
    agent: Agent,
    end: u64,
) -> Result<Option<(Vec<Message>, SessionFacts)>, StorageError> {
    let mut body = match storage.read(user, id, MAIN_STREAM, 0).await {
        Ok(read) => read.body,
        Err(StorageError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut reader = FileReader::new(agent);
    let (mut pending, mut messages) = (Vec::new(), Vec::new());
    while reader.state().consumed < end
        && let Some(piece) = body.next().await
    {
        pending.extend_from_slice(&piece?);
        let chunk;
        (reader, pending, chunk) = feed_blocking(reader, pending).await?;
        messages.extend(chunk.messages.into_iter().filter(|m| m.offset < end));
    }
    Ok(Some((messages, reader.state().facts.clone())))
}

/// The history a Codex paginated fork inherits, as `baton show` shows it
/// (the walk is [`baton_search::InheritedHistory`]): each ancestor's
/// messages before the point its child forked at, oldest ancestor first.
/// Empty for every other session.
async fn inherited_history(
    storage: &dyn Storage,
    user: i64,
    session: &SessionInfo,
) -> Result<Vec<Message>, StorageError> {
    let (id, agent) = (session.id.as_str(), session.agent);
    // A paginated fork names its parent (`forked_from_id`).
    if agent != Agent::Codex || session.forked_from.is_none() {
        return Ok(Vec::new());
    }
    // The history base is in the first line (`session_meta`).
    let Some((_, own)) = read_prefix(storage, user, id, agent, 1).await? else {
        return Ok(Vec::new());
    };
    let mut walk = baton_search::InheritedHistory::new(id, own.history_base);
    let mut pieces = Vec::new();
    while let Some(base) = walk.next_parent().cloned() {
        let Some((messages, facts)) =
            read_prefix(storage, user, &base.thread_id, agent, base.end_byte_offset).await?
        else {
            break;
        };
        pieces.push(messages);
        walk.found(facts.history_base);
    }
    Ok(pieces.into_iter().rev().flatten().collect())
}

/// One page of a plaintext session's conversation, numbered as `baton show`
/// lists it: a Codex paginated fork's inherited history first, then the
/// session's own messages (see [`page_messages`]). `session`'s turns,
/// message count, first prompt and (when it has none) title become those of
/// the whole conversation, as `baton show` reports them.
pub async fn page_conversation(
    storage: &dyn Storage,
    user: i64,
    session: &mut SessionInfo,
    offset: u64,
    limit: usize,
) -> Result<MessagePage, StorageError> {
    let inherited = inherited_history(storage, user, session).await?;
    let prompts: Vec<&Message> = inherited
        .iter()
        .filter(|m| m.kind == MessageKind::Prompt)
        .collect();
    if let Some(first) = prompts.first() {
        session.first_prompt = Some(first.text.clone());
        session.title = session.title.take().or_else(|| Some(first.text.clone()));
    }
    session.user_turns += prompts.len() as u64;
    session.message_count += inherited.len() as u64;
    let shown = inherited.len() as u64;
    let mut page = MessagePage::default();
    let own_offset = offset.saturating_sub(shown);
    page.messages = inherited
        .into_iter()
        .skip(offset.min(shown) as usize)
        .take(limit)
        .collect();
    if page.messages.len() == limit {
        page.more = true;
        return Ok(page);
    }
    let own = page_messages(
        storage,
        user,
        &session.id,
        session.agent,
        own_offset,
        limit - page.messages.len(),
    )
    .await?;
    page.messages.extend(own.messages);
    page.skipped_lines = own.skipped_lines;
    page.more = own.more;
    page.bytes_read = own.bytes_read;
    Ok(page)
}

/// Where a fork kept after message `n` of a plaintext session's
/// conversation (numbered as [`page_conversation`] numbers it) cuts the
/// main stream: the start of the next native line holding a later message,
/// or the stream's end. `None` when the session's own stream has no
/// message `n` (beyond its end, or in a Codex paginated fork's inherited
/// history, which lives in another session).
pub async fn fork_cut(
    storage: &dyn Storage,
    user: i64,
    session: &SessionInfo,
    n: u64,
) -> Result<Option<u64>, StorageError> {
    let inherited = inherited_history(storage, user, session).await?.len() as u64;
    let Some(own) = n.checked_sub(inherited) else {
        return Ok(None);
    };
    let (id, agent) = (session.id.as_str(), session.agent);
    let first = page_messages(storage, user, id, agent, own, 1).await?;
    let Some(target) = first.messages.first() else {
        return Ok(None);
    };
    let mut next = own + 1;
    loop {
        let page = page_messages(storage, user, id, agent, next, 64).await?;
        if let Some(m) = page.messages.iter().find(|m| m.offset > target.offset) {
            return Ok(Some(m.offset));
        }
        if !page.more {
            let main = session.streams.iter().find(|s| s.name == MAIN_STREAM);
            return Ok(main.map(|s| s.len));
        }
        next += page.messages.len() as u64;
    }
}

/// What one indexing pass read from new bytes.
struct Fed {
    chunk: Chunk,
    state: ReaderState,
    skipped: u64,
    checkpoints: Vec<MessageCheckpoint>,
}

/// Feed new bytes to the reader a slice at a time, saving a checkpoint
/// whenever the message count passes a multiple of [`CHECKPOINT_EVERY`].
fn feed_with_checkpoints(
    agent: Agent,
    prior: Option<ReaderState>,
    skipped_before: u64,
    bytes: &[u8],
) -> Result<Fed, MessagesError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut reader = match prior {
            Some(s) => FileReader::resume(s),
            None => FileReader::new(agent),
        };
        let mut all = Chunk::default();
        let mut skipped = skipped_before;
        let mut checkpoints = Vec::new();
        let mut next =
            (reader.state().facts.message_count / CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY;
        let start = reader.state().consumed;
        let (mut at, mut end) = (0usize, 0usize);
        while at < bytes.len() && end < bytes.len() {
            // A line longer than a slice makes the next slice longer.
            end = (end.max(at) + INDEX_SLICE).min(bytes.len());
            let chunk = reader.feed(&bytes[at..end]);
            // The reader keeps no partial line: go on after its last complete one.
            at = (reader.state().consumed - start) as usize;
            skipped += chunk.issues.len() as u64;
            all.messages.extend(chunk.messages);
            all.issues.extend(chunk.issues);
            let count = reader.state().facts.message_count;
            if count >= next {
                checkpoints.push(MessageCheckpoint {
                    state: reader.state().clone(),
                    skipped,
                });
                next = (count / CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY;
            }
        }
        Fed {
            chunk: all,
            state: reader.state().clone(),
            skipped,
            checkpoints,
        }
    }))
    .map_err(|_| MessagesError("the transcript reader failed on this session".into()))
}

/// The searchable texts of a chunk's messages, under the shared search
/// policy; the chunk's first message is number `first`.
fn searchable(agent: Agent, chunk: &Chunk, first: u64) -> Vec<SearchText> {
    chunk
        .messages
        .iter()
        .zip(first..)
        .filter_map(|(m, message)| {
            baton_search::searchable_text(m).map(|text| SearchText {
                text: text.to_string(),
                message,
                copy_key: baton_search::copy_key(agent, m),
            })
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
    // A long backlog (a large session pushed faster than it is indexed) is
    // read over several passes, each ending once a line ends past
    // `INDEX_PASS`: the reader resumes at its last complete line.
    let mut bytes = Vec::new();
    let mut body = read.body;
    let mut seen_len = read.len;
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| format!("cannot read: {e}"))?;
        bytes.extend_from_slice(&piece);
        if bytes.len() >= INDEX_PASS && piece.contains(&b'\n') {
            seen_len = from + bytes.len() as u64;
            break;
        }
    }
    let agent = job.agent;
    let prior = job.state.clone();
    let first = prior.as_ref().map_or(0, |s| s.facts.message_count);
    let skipped_before = if prior.is_some() { job.skipped } else { 0 };
    let fed = tokio::task::spawn_blocking(move || {
        feed_with_checkpoints(agent, prior, skipped_before, &bytes)
    })
    .await;
    let update = match fed {
        Ok(Ok(fed)) => IndexUpdate {
            user_id: job.user_id,
            session_id: job.session_id.clone(),
            from,
            seen_len,
            texts: searchable(agent, &fed.chunk, first),
            state: Some(fed.state),
            skipped: fed.skipped,
            checkpoints: fed.checkpoints,
        },
        _ => {
            // Mark every byte seen so a transcript the reader cannot handle
            // is not retried in a loop; the next append retries it.
            tracing::warn!(
                "indexer: the transcript reader failed on session {}",
                job.session_id
            );
            IndexUpdate {
                user_id: job.user_id,
                session_id: job.session_id.clone(),
                from,
                seen_len: read.len,
                texts: Vec::new(),
                state: None,
                skipped: job.skipped,
                checkpoints: Vec::new(),
            }
        }
    };
    storage
        .save_index(update)
        .await
        .map_err(|e| format!("cannot save the index: {e}"))
}
