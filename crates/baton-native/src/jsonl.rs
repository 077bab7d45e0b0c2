//! Splitting native bytes into JSONL lines with line numbers and offsets.
