//! Incremental reading of one native file (see [`FileReader`]).

use crate::jsonl::Lines;
use crate::model::Agent;
use crate::state::{Chunk, ReaderState};

/// Resumable reader for one native file of one agent.
#[derive(Debug, Clone)]
pub struct FileReader {
    state: ReaderState,
}

impl FileReader {
    /// A reader positioned at the start of a file.
    pub fn new(agent: Agent) -> Self {
        Self {
            state: ReaderState::new(agent),
        }
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
    ///
    /// Lines that are not JSON objects are reported in [`Chunk::issues`] and
    /// skipped; unknown record types are ignored. Never panics.
    pub fn feed(&mut self, bytes: &[u8]) -> Chunk {
        let mut chunk = Chunk::default();
        let mut lines = Lines::new(bytes, self.state.consumed, self.state.lines);
        for line in lines.by_ref() {
            let state = &mut self.state;
            let result = line.readable(|line| match state.agent {
                Agent::Codex => crate::codex::read_line(state, line, &mut chunk),
                Agent::Claude => crate::claude::read_line(state, line, &mut chunk),
            });
            if let Err(issue) = result {
                chunk.issues.push(issue);
            }
        }
        self.state.consumed += lines.consumed() as u64;
        self.state.lines = lines.line_count();
        chunk
    }
}
