//! Sync wire protocol types and HTTP client.

pub mod client;
pub mod crypto;
pub mod protocol;
pub mod state;
