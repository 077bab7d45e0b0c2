//! Claude Code transcripts: chain records, bookkeeping records, project slugs.
