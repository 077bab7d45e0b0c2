//! Long texts indexed by their distinct words: a 1 MB tool output holds a
//! few thousand distinct words in a hundred thousand, and FTS5's cost is
//! per word written, so such a text goes into its own FTS5 table as the
//! bag of its words ([`bag_text`]), found by every word of a query
//! ([`Query::fts_bag`]) and, for a query whose terms are phrases, checked
//! against the text itself ([`Query::bag_is_exact`], [`Query::matches`]).

use crate::query::Query;
use std::collections::HashSet;

/// Searchable texts longer than this many bytes are indexed as a bag of
/// words ([`bag_text`]) rather than word by word.
pub const BAG_BYTES: usize = 64 << 10;

/// The bag of words of `text`: each distinct run of bytes between ASCII
/// characters that are not letters or digits, once, in order of first
/// appearance, separated by spaces. The FTS5 tokenizer splits at every
/// such ASCII character, so it finds in the bag exactly the tokens it finds
/// in `text` (a run that holds several tokens, split at non-ASCII
/// punctuation, is kept whole); only their positions and counts are lost.
pub fn bag_text(text: &str) -> String {
    // Every run of the text is hashed: a fast hash, not SipHash.
    let mut seen: HashSet<&str, foldhash::fast::RandomState> = HashSet::default();
    let mut out = String::new();
    let runs = text
        .split(|c: char| c.is_ascii() && !c.is_ascii_alphanumeric())
        .filter(|run| !run.is_empty());
    for run in runs {
        if seen.insert(run) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(run);
        }
    }
    out
}

impl Query {
    /// The FTS5 `MATCH` expression over bags of words ([`bag_text`]): every
    /// token of every term, each quoted (quotes doubled), the last token of
    /// a prefix term followed by `*`. A bag holding them all is a
    /// candidate; it matches for sure when [`Query::bag_is_exact`].
    pub fn fts_bag(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        for term in &self.terms {
            let last = term.tokens.len().saturating_sub(1);
            for (i, token) in term.tokens.iter().enumerate() {
                let quoted = format!("\"{}\"", token.replace('"', "\"\""));
                out.push(if term.prefix && i == last {
                    quoted + "*"
                } else {
                    quoted
                });
            }
        }
        out.join(" ")
    }

    /// Whether a bag of words matching [`Query::fts_bag`] matches this
    /// query: every term is one token, so no word order is asked for. Else
    /// the candidate's text is checked with [`Query::matches`].
    pub fn bag_is_exact(&self) -> bool {
        self.terms.iter().all(|t| t.tokens.len() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bag_keeps_each_run_once_in_order() {
        assert_eq!(
            bag_text("fn main() {\n  main(); Main.rs ünï—x ünï—x\n}"),
            "fn main Main rs ünï—x"
        );
        assert_eq!(bag_text(" ,.; "), "");
    }

    #[test]
    fn a_bag_query_asks_for_every_token_and_phrases_need_a_check() {
        let q = Query::parse("ECHO[2] bug* \"x\"").unwrap();
        assert_eq!(q.fts_bag(), r#""echo" "2" "bug"* "x""#);
        assert!(!q.bag_is_exact());
        let q = Query::parse("main.r*").unwrap();
        assert_eq!(q.fts_bag(), r#""main" "r"*"#);
        assert!(Query::parse("auth bug*").unwrap().bag_is_exact());
    }
}
