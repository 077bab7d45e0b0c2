//! Sync wire protocol types and HTTP client.

// Unit tests build their own scratch files (clippy.toml bans writes elsewhere).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod client;
pub mod crypto;
pub mod protocol;
pub mod state;
