//! Local catalog: discovery, incremental ingest, SQLite index and full-text search.
