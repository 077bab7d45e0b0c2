//! The one search policy of baton: the local catalog (`baton search`) and
//! the server (`GET /api/v1/search`, the session list's text filter) both
//! follow it, so the same query finds the same sessions in both.
//!
//! It owns:
//! - which text of a normalized message is searchable ([`searchable_text`],
//!   an exhaustive decision per [`baton_native::MessageKind`]);
//! - how user text becomes an FTS5 `MATCH` expression ([`Query`],
//!   [`fts_query`]) and the tokenizer of the FTS5 tables ([`TOKENIZER`]);
//! - snippets ([`Query::snippet`]): [`SNIPPET_TOKENS`] tokens around the
//!   best match, matched words wrapped in [`HIGHLIGHT`] on token boundaries,
//!   computed outside FTS5 in time linear in the message;
//! - how forks are attributed ([`copy_key`]: a record a fork copied from
//!   its parent is a hit of the parent only; [`InheritedHistory`]: which
//!   parent bytes a Codex fork's history starts with);
//! - long texts indexed as a bag of their distinct words ([`bag_text`],
//!   [`BAG_BYTES`], [`Query::fts_bag`]), checked word order and all by
//!   [`Query::matches`] when a query has phrases;
//! - matching and `bm25()` ranking outside FTS5 ([`Query::matches`],
//!   [`Query::bm25`], [`index_tokens`]) for a backend without FTS5.

// Unit tests build their own scratch files (clippy.toml bans writes elsewhere).
#![cfg_attr(test, allow(clippy::disallowed_methods))]
#![warn(missing_docs)]

mod bag;
mod lineage;
mod query;
mod rank;
mod snippet;
mod text;
mod tokens;

pub use bag::{BAG_BYTES, bag_text};
pub use lineage::{InheritedHistory, copy_key};
pub use query::{Query, fts_query};
pub use rank::{Corpus, Match, index_tokens, token_count};
pub use text::searchable_text;

/// FTS5 tokenizer of every full-text table (`tokenize = '...'`): Unicode
/// words, case and diacritics ignored.
pub const TOKENIZER: &str = "unicode61 remove_diacritics 2";

/// Tokens a snippet shows around its match.
pub const SNIPPET_TOKENS: usize = 16;

/// Markers wrapped around a matched word in a snippet.
pub const HIGHLIGHT: (char, char) = ('«', '»');

/// Stands for text a snippet leaves out before or after its window.
pub const ELLIPSIS: char = '…';
