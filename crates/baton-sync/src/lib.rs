//! Sync client: the HTTP client of `baton serve` and the engine that pushes
//! and pulls sessions (wire types are in `baton-protocol`).

pub mod client;
pub mod crypto;
pub mod state;
