//! Lossless readers and writers for the session files of OpenAI Codex CLI and
//! Anthropic Claude Code, and the normalized view baton builds from them.
//!
//! The agent's native bytes are the source of truth: readers never modify a
//! file, keep unknown line types and fields, tolerate a torn last line (it is
//! left unconsumed and read once completed) and report invalid lines with
//! their file line number instead of failing the whole file.
//!
//! The entry point for reading is [`FileReader`]: feed it a file's bytes from
//! the offset where it last stopped and it returns the new [`Message`]s, the
//! [`LineIssue`]s it skipped, and updated [`SessionFacts`] in its serializable
//! [`ReaderState`], so a catalog can ingest append-only files incrementally.

// Unit tests build their own scratch files (clippy.toml bans writes elsewhere).
#![cfg_attr(test, allow(clippy::disallowed_methods))]
#![warn(missing_docs)]

pub mod claude;
pub mod codex;
pub mod convert;
pub mod discover;
pub mod envelope;
pub mod files;
pub mod fork;
pub mod head;
pub mod jsonl;
pub mod layout;
mod lenient;
pub mod model;
mod reader;
pub mod rehydrate;
mod state;
pub mod write;

pub use discover::{
    NativeFile, Scanned, discover_claude, discover_codex, read_native, scan_claude, scan_codex,
};
pub use jsonl::LineIssue;
pub use model::{Agent, HistoryBase, Message, MessageKind, Role, SessionFacts};
pub use reader::FileReader;
pub use state::{Chunk, ReaderState};
