//! Recorder library: append-only session writer, state snapshots, resume,
//! fork, session directory and capture proxy.
//!
//! * [`Recorder`] writes one session as a Codex-compatible rollout under
//!   `<codex_home>/sessions/`, through a background writer thread with a
//!   chosen [`Durability`]; the real `codex` CLI can resume it.
//! * [`load`] reads a rollout back (meta, items, latest [`StateSnapshot`],
//!   other lines), tolerating a torn last line.
//! * [`ConversationManager`] creates, resumes (same file, same id), forks
//!   ([`fork_history`]) and lists sessions.
//! * [`SessionDir`] collects a session's transcript link, `session.log`,
//!   `raw_api.jsonl` and `meta.jsonl` under `<data>/sessions/<id>/`.

pub mod capture;
mod error;
mod load;
mod lock;
mod manager;
mod recorder;
mod session_dir;
mod types;
mod writer;

pub use error::{RecordError, Result};
pub use load::{LineIssue, LoadedSession, OtherLine, load, parse};
pub use lock::{LOCK_DIR, SessionLock, baton_lock_path, codex_lock_path};
pub use manager::{
    Conversation, ConversationManager, ConversationSummary, InitialHistory, NewConversation,
    ResumeTarget, find_rollout, fork_history,
};
pub use recorder::{Recorder, RecorderConfig, SESSIONS_SUBDIR, id_from_path, rollout_path};
pub use session_dir::{
    META_FILE, MetaKind, MetaRecord, RAW_API_FILE, RawApiRecord, SESSION_LOG_FILE, SessionDir,
    SessionLogLayer, SessionLogRouter, TRANSCRIPT_FILE, resolve_debug_log,
};
pub use types::{
    BaseInstructions, ContentItem, KIND_RESPONSE_ITEM, KIND_SESSION_META, KIND_STATE, ResponseItem,
    SessionMeta, StateSnapshot, now_timestamp,
};
pub use writer::{AppendLog, DEFAULT_CHANNEL_CAPACITY, Durability};
