//! Self-hosted sync server: axum routes, auth, storage trait with the embedded SQLite + blob-file backend, web UI.
