//! Incremental reading of one native file (see [`FileReader`]).

use crate::model::{Agent, Message, SessionFacts};
use serde::{Deserialize, Serialize};

/// A line that could not be used, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineIssue {
    /// 1-based line number in the file.
    pub line: u64,
    /// Byte offset of the line's start.
    pub offset: u64,
    /// What is wrong, e.g. "invalid JSON: expected value at column 1".
    pub message: String,
}

/// Everything a reader must remember between calls; serializable so a
/// catalog can persist it next to the byte offset it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderState {
    /// Which format is being read.
    pub agent: Agent,
    /// Bytes consumed so far: always the end of the last complete line.
    pub consumed: u64,
    /// Complete lines consumed so far.
    pub lines: u64,
    /// Session facts accumulated so far.
    pub facts: SessionFacts,
    /// Tool names of calls whose results have not been seen yet, by call id.
    pub pending_calls: std::collections::BTreeMap<String, String>,
}

/// What one [`FileReader::feed`] call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// New messages in file order.
    pub messages: Vec<Message>,
    /// Lines skipped, with reasons.
    pub issues: Vec<LineIssue>,
}

/// Resumable reader for one native file of one agent.
#[derive(Debug, Clone)]
pub struct FileReader {
    state: ReaderState,
}

impl FileReader {
    /// A reader positioned at the start of a file.
    pub fn new(agent: Agent) -> Self {
        let _ = agent;
        unimplemented!()
    }

    /// A reader resuming from a saved state.
    pub fn resume(state: ReaderState) -> Self {
        Self { state }
    }

    /// The current state (persist it to resume later).
    pub fn state(&self) -> &ReaderState {
        &self.state
    }

    /// Feed the bytes that follow `state().consumed`. Complete lines are
    /// parsed; a trailing partial line is left unconsumed for the next call.
    pub fn feed(&mut self, bytes: &[u8]) -> Chunk {
        let _ = bytes;
        unimplemented!()
    }
}
