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
//! * `capture` (cargo feature `capture`, off by default) is the loopback
//!   proxy that tees an agent's model traffic into the session directory.
//! * [`SessionDir`] collects a session's transcript link, `session.log`,
//!   `raw_api.jsonl` and `meta.jsonl` under `<data>/sessions/<id>/`.
//!
//! ```no_run
//! use baton_record::{ConversationManager, Durability, Recorder, RecorderConfig, ResponseItem, load};
//!
//! async fn record() -> baton_record::Result<()> {
//!     let mut config = RecorderConfig::new("/home/me/.codex", "/work/project");
//!     config.durability = Durability::Fsync;
//!     config.persistence = Some("/home/me/.baton".into()); // optional session directory
//!
//!     let rec = Recorder::create(&config).await?; // writes session_meta
//!     rec.record_items(&[ResponseItem::user_text("fix the tests")]).await?;
//!     rec.record_items(&[ResponseItem::assistant_text("done")]).await?;
//!     rec.flush().await?; // durable as `Fsync` promises
//!     let loaded = load(rec.path())?; // meta, items, latest state
//!     assert_eq!(loaded.items.len(), 2);
//!     rec.shutdown().await?; // closes the file, releases the lock
//!
//!     let manager = ConversationManager::new(config.clone());
//!     let resumed = manager.resume(rec.id()).await?; // same file, same id
//!     let history = resumed.conversation.history();
//!     let _fork = manager.fork(rec.id(), history, 1, &config).await?; // minus the last prompt
//!     Ok(())
//! }
//! ```

// Unit tests build their own scratch files (clippy.toml bans writes elsewhere).
#![cfg_attr(test, allow(clippy::disallowed_methods))]
#![warn(missing_docs)]

#[cfg(feature = "capture")]
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
pub use load::{LoadedSession, OtherLine, load, parse};
pub use lock::{LOCK_DIR, SessionLock, baton_lock_path, codex_lock_path};
pub use manager::{
    Conversation, ConversationManager, ConversationSummary, FORKED_FROM_ID, InitialHistory,
    NewConversation, ResumeTarget, find_rollout, fork_history,
};
pub use recorder::{Recorder, RecorderConfig, SESSIONS_SUBDIR, id_from_path, rollout_path};
pub use session_dir::{
    CapturedExchange, META_FILE, MetaKind, MetaRecord, RAW_API_FILE, REDACTED, RawApiRecord,
    SESSION_LOG_FILE, SessionDir, SessionLogLayer, SessionLogRouter, TRANSCRIPT_FILE,
    resolve_debug_log,
};
pub use types::{
    BaseInstructions, ContentItem, KIND_RESPONSE_ITEM, KIND_SESSION_META, KIND_STATE, ResponseItem,
    RolloutSessionMeta, StateSnapshot, now_timestamp,
};
pub use writer::{AppendLog, DEFAULT_CHANNEL_CAPACITY, Durability};
