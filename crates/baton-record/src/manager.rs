//! [`ConversationManager`]: create, resume, fork and list recorded sessions.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::RwLock;
use ts_rs::TS;
use uuid::Uuid;

use baton_native::layout::codex;

use crate::error::{RecordError, Result};
use crate::recorder::{Recorder, RecorderConfig, SESSIONS_SUBDIR, blocking, id_from_path};
use crate::types::{
    KIND_RESPONSE_ITEM, KIND_SESSION_META, ResponseItem, RolloutSessionMeta, StateSnapshot,
};

/// What a conversation starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialHistory {
    /// Nothing: a fresh conversation.
    New,
    /// A recorded session continued in its own file.
    Resumed {
        /// The session id (unchanged by resuming).
        id: Uuid,
        /// The recorded items, in order.
        history: Vec<ResponseItem>,
        /// The rollout being appended to.
        path: PathBuf,
    },
    /// A prefix of another conversation, copied into a new session.
    Forked(Vec<ResponseItem>),
}

/// Cut `items` for a fork: drop the last `drop_last_n` typed user prompts and
/// everything after each (so everything from the N-th prompt from the end on).
///
/// * `drop_last_n == 0` keeps every item;
/// * `drop_last_n` larger than the number of prompts drops everything;
/// * the result is [`InitialHistory::New`] when what remains holds no typed
///   prompt (nothing was ever asked), e.g. when the cut prompt is at index 0,
///   and [`InitialHistory::Forked`] otherwise.
///
/// Injected user-role context (`<environment_context>`, ...) is not a prompt.
pub fn fork_history(items: Vec<ResponseItem>, drop_last_n: usize) -> InitialHistory {
    let cut = if drop_last_n == 0 {
        items.len()
    } else {
        items
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, item)| item.is_typed_user_prompt())
            .nth(drop_last_n - 1)
            .map_or(0, |(idx, _)| idx)
    };
    let mut items = items;
    items.truncate(cut);
    if items.iter().any(ResponseItem::is_typed_user_prompt) {
        InitialHistory::Forked(items)
    } else {
        InitialHistory::New
    }
}

/// A live conversation: its recorder plus the history recorded so far.
#[derive(Debug)]
pub struct Conversation {
    recorder: Recorder,
    history: Mutex<Vec<ResponseItem>>,
    state: Mutex<Option<StateSnapshot>>,
}

impl Conversation {
    fn new(recorder: Recorder, history: Vec<ResponseItem>, state: Option<StateSnapshot>) -> Self {
        Conversation {
            recorder,
            history: Mutex::new(history),
            state: Mutex::new(state),
        }
    }

    /// The session id.
    pub fn id(&self) -> Uuid {
        self.recorder.id()
    }

    /// The rollout file.
    pub fn path(&self) -> &Path {
        self.recorder.path()
    }

    /// The underlying recorder (flush, shutdown, session directory).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Record `items` and add them to the in-memory history.
    pub async fn record_items(&self, items: &[ResponseItem]) -> Result<()> {
        self.recorder.record_items(items).await?;
        if let Ok(mut h) = self.history.lock() {
            h.extend_from_slice(items);
        }
        Ok(())
    }

    /// Record a state snapshot and keep it as the current state.
    pub async fn record_state(&self, snapshot: StateSnapshot) -> Result<()> {
        self.recorder.record_state(&snapshot).await?;
        if let Ok(mut s) = self.state.lock() {
            *s = Some(snapshot);
        }
        Ok(())
    }

    /// Every item of the conversation, recorded or resumed, in order.
    pub fn history(&self) -> Vec<ResponseItem> {
        self.history.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// The latest state snapshot.
    pub fn state(&self) -> Option<StateSnapshot> {
        self.state.lock().ok().and_then(|s| s.clone())
    }
}

/// A conversation the manager just started, with what it starts from.
#[derive(Debug)]
pub struct NewConversation {
    /// The live conversation (also reachable through [`ConversationManager::get`]).
    pub conversation: Arc<Conversation>,
    /// What it was started from.
    pub initial_history: InitialHistory,
}

/// Which recorded session to resume.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumeTarget {
    /// A rollout file.
    Path(PathBuf),
    /// A session id, looked up under `<codex_home>/sessions/`.
    Id(Uuid),
}

impl From<PathBuf> for ResumeTarget {
    fn from(p: PathBuf) -> Self {
        ResumeTarget::Path(p)
    }
}

impl From<Uuid> for ResumeTarget {
    fn from(id: Uuid) -> Self {
        ResumeTarget::Id(id)
    }
}

/// One recorded session, as [`ConversationManager::list`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConversationSummary {
    /// Session id.
    pub conversation_id: String,
    /// Rollout path.
    pub path: String,
    /// Creation time (UTC).
    pub timestamp: String,
    /// Working directory.
    pub cwd: String,
    /// `session_meta.source`.
    pub source: String,
    /// First typed user prompt, if any.
    #[ts(optional)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// `session_meta` field naming the session a fork was made from (Codex's name).
pub const FORKED_FROM_ID: &str = "forked_from_id";

/// Creates and tracks conversations recorded under one Codex home.
#[derive(Debug)]
pub struct ConversationManager {
    config: RecorderConfig,
    conversations: RwLock<HashMap<Uuid, Arc<Conversation>>>,
}

impl ConversationManager {
    /// A manager whose `resume` and `list` use `config.codex_home` and settings.
    pub fn new(config: RecorderConfig) -> Self {
        ConversationManager {
            config,
            conversations: RwLock::new(HashMap::new()),
        }
    }

    /// The default configuration.
    pub fn config(&self) -> &RecorderConfig {
        &self.config
    }

    async fn register(
        &self,
        recorder: Recorder,
        history: Vec<ResponseItem>,
        state: Option<StateSnapshot>,
    ) -> Arc<Conversation> {
        let conv = Arc::new(Conversation::new(recorder, history, state));
        self.conversations
            .write()
            .await
            .insert(conv.id(), conv.clone());
        conv
    }

    /// Start a new, empty session.
    pub async fn new_session(&self, config: &RecorderConfig) -> Result<NewConversation> {
        let recorder = Recorder::create(config).await?;
        Ok(NewConversation {
            conversation: self.register(recorder, Vec::new(), None).await,
            initial_history: InitialHistory::New,
        })
    }

    /// Continue a recorded session in the same file and under the same id.
    pub async fn resume(&self, target: impl Into<ResumeTarget>) -> Result<NewConversation> {
        let path = match target.into() {
            ResumeTarget::Path(p) => p,
            ResumeTarget::Id(id) => find_rollout(&self.config.codex_home, id).await?,
        };
        let (recorder, loaded) = Recorder::resume(&self.config, &path).await?;
        let initial_history = InitialHistory::Resumed {
            id: recorder.id(),
            history: loaded.items.clone(),
            path: recorder.path().to_path_buf(),
        };
        Ok(NewConversation {
            conversation: self.register(recorder, loaded.items, loaded.state).await,
            initial_history,
        })
    }

    /// Start a new session from `history` (the items of session `parent`)
    /// minus its last `drop_last_n` prompts (see [`fork_history`]). The kept
    /// prefix is copied into the new rollout, whose `session_meta` records
    /// `forked_from_id: parent` as Codex does, so catalogs show the lineage.
    pub async fn fork(
        &self,
        parent: Uuid,
        history: Vec<ResponseItem>,
        drop_last_n: usize,
        config: &RecorderConfig,
    ) -> Result<NewConversation> {
        let initial_history = fork_history(history, drop_last_n);
        let mut lineage = serde_json::Map::new();
        lineage.insert(FORKED_FROM_ID.into(), Value::String(parent.to_string()));
        let recorder = Recorder::create_with(config, lineage).await?;
        let items = match &initial_history {
            InitialHistory::Forked(items) => items.clone(),
            _ => Vec::new(),
        };
        recorder.record_items(&items).await?;
        Ok(NewConversation {
            conversation: self.register(recorder, items, None).await,
            initial_history,
        })
    }

    /// The live conversation `id`, if this manager holds it.
    pub async fn get(&self, id: Uuid) -> Option<Arc<Conversation>> {
        self.conversations.read().await.get(&id).cloned()
    }

    /// Forget conversation `id` and return it. Its writer stops (and releases
    /// the lock) once the returned handle and every other clone are dropped,
    /// or at once with `recorder().shutdown()`.
    pub async fn remove(&self, id: Uuid) -> Option<Arc<Conversation>> {
        self.conversations.write().await.remove(&id)
    }

    /// Every rollout under `<codex_home>/sessions/`, newest first, as found
    /// on disk (records still queued in a writer are not seen; `flush()` first).
    /// Files that cannot be read are skipped.
    pub async fn list(&self) -> Result<Vec<ConversationSummary>> {
        let home = self.config.codex_home.clone();
        blocking(move || {
            let mut out: Vec<ConversationSummary> = rollout_files(&home, None)
                .iter()
                .filter_map(|p| summarize(p))
                .collect();
            out.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(b.path.cmp(&a.path)));
            out
        })
        .await
    }
}

/// The plain rollouts under `<codex_home>/sessions/` (of thread `id` only,
/// when given), sorted by path.
fn rollout_files(codex_home: &Path, id: Option<Uuid>) -> Vec<PathBuf> {
    let sessions = codex_home.join(SESSIONS_SUBDIR);
    let found = match id {
        Some(id) => codex::rollouts_of(codex_home, &id.to_string()),
        None => baton_native::discover_codex(codex_home)
            .0
            .into_iter()
            .map(|f| f.path)
            .collect(),
    };
    found
        .into_iter()
        .filter(|p| p.starts_with(&sessions) && id_from_path(p).is_some())
        .collect()
}

/// Find the rollout of session `id` under `<codex_home>/sessions/` (a
/// revert segment of the thread counts).
pub async fn find_rollout(codex_home: &Path, id: Uuid) -> Result<PathBuf> {
    let home = codex_home.to_path_buf();
    let found = blocking(move || rollout_files(&home, Some(id)).into_iter().next()).await?;
    found.ok_or_else(|| RecordError::NotFound {
        id: id.to_string(),
        home: codex_home.to_path_buf(),
    })
}

/// Lines read from the head of a file to find its first typed prompt.
const SUMMARY_HEAD_LINES: usize = 200;

fn summarize(path: &Path) -> Option<ConversationSummary> {
    let file = std::fs::File::open(path).ok()?;
    let mut lines = std::io::BufReader::new(file).lines();
    let first: Value = serde_json::from_str(&lines.next()?.ok()?).ok()?;
    if first.get("type")?.as_str()? != KIND_SESSION_META {
        return None;
    }
    let meta: RolloutSessionMeta = serde_json::from_value(first.get("payload")?.clone()).ok()?;
    let preview = lines
        .take(SUMMARY_HEAD_LINES)
        .map_while(|l| l.ok())
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|v| v.get("type").and_then(Value::as_str) == Some(KIND_RESPONSE_ITEM))
        .filter_map(|v| serde_json::from_value::<ResponseItem>(v.get("payload")?.clone()).ok())
        .find(ResponseItem::is_typed_user_prompt)
        .and_then(|item| item.message_text().map(|(_, text)| text));
    Some(ConversationSummary {
        conversation_id: meta.id,
        path: path.display().to_string(),
        timestamp: meta.timestamp,
        cwd: meta.cwd,
        source: meta.source,
        preview,
    })
}
