//! Sync wire protocol types and HTTP client.
