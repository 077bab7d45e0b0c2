//! Sync client: the transport-only HTTP client of `baton serve` ([`http`])
//! and the engine that pushes and pulls sessions ([`push`], [`pull`]) around
//! a pure comparison of local files with server streams ([`reconcile`]).
//! Wire types are in `baton-protocol`.

// Unit tests build their own scratch files (clippy.toml bans writes elsewhere).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod crypto;
pub mod engine;
pub mod error;
pub mod http;
pub mod local;
pub mod native;
pub mod pull;
pub mod push;
pub mod reconcile;
pub mod state;
