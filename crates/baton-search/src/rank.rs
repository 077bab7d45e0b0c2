//! Matching and ranking outside FTS5, for a backend whose database has no
//! FTS5 (the team server on PostgreSQL): the same phrase rules as
//! [`Query::fts`] and FTS5's `bm25()` with its default parameters, so such a
//! backend finds and orders the same messages as the SQLite index.

use crate::query::Query;
use crate::snippet::Matcher;
use crate::tokens::{Tokens, fold_into};

/// FTS5's `bm25()` term-frequency saturation.
const K1: f64 = 1.2;
/// FTS5's `bm25()` length normalisation.
const B: f64 = 0.75;

/// The distinct folded tokens of a text, as the tokenizer ([`crate::TOKENIZER`])
/// indexes it: what a candidate index stores so that a message holding every
/// token of a query can be found without FTS5.
pub fn index_tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Tokens::new(text)
        .map(|(s, e)| {
            let mut t = String::new();
            fold_into(&text[s..e], &mut t);
            t
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// How many tokens a text holds (FTS5's column size, which `bm25()` uses).
pub fn token_count(text: &str) -> u64 {
    Tokens::new(text).count() as u64
}

/// How one message matches a [`Query`]: every term's number of phrase
/// occurrences, and the message's length in tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Occurrences of each term, in query order (all non-zero).
    pub hits: Vec<u64>,
    /// Tokens in the message.
    pub tokens: u64,
}

/// What `bm25()` needs to know about the whole index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corpus {
    /// Messages indexed.
    pub rows: u64,
    /// Tokens in all of them.
    pub tokens: u64,
}

impl Query {
    /// The tokens of each term, folded, and whether the term's last token
    /// is a prefix: what a candidate index must hold for a message to match.
    pub fn term_tokens(&self) -> Vec<(Vec<String>, bool)> {
        self.terms
            .iter()
            .map(|t| (t.tokens.clone(), t.prefix))
            .collect()
    }

    /// How `text` matches this query (as FTS5's `MATCH` of [`Query::fts`]
    /// would), or `None` when some term is missing. Linear in `text`.
    pub fn matches(&self, text: &str) -> Option<Match> {
        let mut matcher = Matcher::new(&self.terms);
        let mut found = Vec::new();
        let mut hits = vec![0u64; self.terms.len()];
        let mut tokens = 0;
        for span in Tokens::new(text) {
            tokens += 1;
            matcher.push(text, span, &mut found);
            for f in found.drain(..) {
                hits[f.term] += 1;
            }
        }
        hits.iter()
            .all(|&n| n > 0)
            .then_some(Match { hits, tokens })
    }

    /// FTS5's `bm25()` of a message matching this query: lower is better,
    /// as `ORDER BY bm25(...)` sorts. `docs` holds how many messages of the
    /// whole index match each term (in query order).
    pub fn bm25(&self, m: &Match, docs: &[u64], corpus: Corpus) -> f64 {
        let n = corpus.rows.max(1) as f64;
        let avg = (corpus.tokens as f64 / n).max(1.0);
        let mut score = 0.0;
        for (i, &f) in m.hits.iter().enumerate() {
            let nhit = docs.get(i).copied().unwrap_or(0) as f64;
            let mut idf = ((n - nhit + 0.5) / (nhit + 0.5)).ln();
            if idf <= 0.0 {
                idf = 1e-6;
            }
            let f = f as f64;
            score += idf * (f * (K1 + 1.0)) / (f + K1 * (1.0 - B + B * m.tokens as f64 / avg));
        }
        -score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_prefixes_and_counts() {
        let q = Query::parse("auth bug*").unwrap();
        let m = q.matches("The auth bugfix: AUTH again").unwrap();
        assert_eq!(m.hits, [2, 1]);
        assert_eq!(m.tokens, 5);
        assert_eq!(
            q.matches("bug auth-less"),
            Some(Match {
                hits: vec![1, 1],
                tokens: 3
            })
        );
        assert_eq!(q.matches("only auth here"), None);
        let phrase = Query::parse("pub-tool").unwrap();
        assert!(phrase.matches("a pub tool").is_some());
        assert!(phrase.matches("tool pub").is_none());
        assert_eq!(index_tokens("Ünï b A a"), ["a", "b", "ünï"]);
    }

    #[test]
    fn bm25_prefers_rare_terms_and_short_messages() {
        let q = Query::parse("word").unwrap();
        let corpus = Corpus {
            rows: 100,
            tokens: 1000,
        };
        let short = q.bm25(&q.matches("word here").unwrap(), &[10], corpus);
        let long = q.bm25(
            &q.matches("word and many more tokens to read").unwrap(),
            &[10],
            corpus,
        );
        let common = q.bm25(&q.matches("word here").unwrap(), &[90], corpus);
        assert!(short < long, "{short} {long}");
        assert!(short < common, "{short} {common}");
    }
}
