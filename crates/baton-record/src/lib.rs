//! Recorder library: append-only session writer, state snapshots, resume, fork, session directory and capture proxy.
