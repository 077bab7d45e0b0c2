//! Free user text as a search query.

use crate::tokens;

/// One whitespace-separated term of a query: a phrase of tokens, the last
/// one a prefix when the term ends in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    /// The term as typed, without its trailing `*`s.
    pub(crate) body: String,
    /// Folded tokens of `body`.
    pub(crate) tokens: Vec<String>,
    /// The last token matches any token it starts.
    pub(crate) prefix: bool,
}

impl Term {
    /// The punctuation `body` has before its first token and after its
    /// last (none after a prefix term's last token, which may go on).
    pub(crate) fn edges(&self) -> (&str, &str) {
        let mut spans = tokens::Tokens::new(&self.body);
        let Some(first) = spans.next() else {
            return ("", "");
        };
        let last = spans.last().unwrap_or(first);
        let trail = if self.prefix {
            ""
        } else {
            &self.body[last.1..]
        };
        (&self.body[..first.0], trail)
    }
}

/// A parsed search query: every term must match (in any order, anywhere in
/// the message); a term is matched as a phrase of its words, so punctuation
/// is literal text and there is no query syntax to get wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub(crate) terms: Vec<Term>,
}

impl Query {
    /// Parse free user text. Whitespace and control characters separate
    /// terms; a term without any letter or digit is dropped; a trailing `*`
    /// makes a prefix match. `None` when no term is left.
    pub fn parse(text: &str) -> Option<Query> {
        let separator = |c: char| c.is_whitespace() || c.is_control();
        let terms: Vec<Term> = text
            .split(separator)
            .filter(|t| !t.is_empty())
            .filter_map(|term| {
                let (body, prefix) = match term.strip_suffix('*') {
                    Some(b) => (b.trim_end_matches('*'), true),
                    None => (term, false),
                };
                let tokens = tokens::folded(body);
                (body.chars().any(char::is_alphanumeric) && !tokens.is_empty()).then(|| Term {
                    body: body.to_string(),
                    tokens,
                    prefix,
                })
            })
            .collect();
        (!terms.is_empty()).then_some(Query { terms })
    }

    /// The FTS5 `MATCH` expression: every term a quoted phrase (quotes
    /// doubled, so nothing in it is syntax), a prefix term followed by `*`.
    pub fn fts(&self) -> String {
        self.terms
            .iter()
            .map(|t| {
                let quoted = format!("\"{}\"", t.body.replace('"', "\"\""));
                if t.prefix { quoted + "*" } else { quoted }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// [`Query::parse`] then [`Query::fts`]: any text becomes a safe FTS5 query,
/// `None` when it has no searchable character.
pub fn fts_query(text: &str) -> Option<String> {
    Query::parse(text).map(|q| q.fts())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_quoted_phrases_and_a_trailing_star_is_a_prefix() {
        assert_eq!(
            fts_query("auth bug* \"x\" AND -").as_deref(),
            Some(r#""auth" "bug"* """x""" "AND""#)
        );
        assert_eq!(fts_query("a\0b").as_deref(), Some(r#""a" "b""#));
        assert_eq!(fts_query(" - ** :: "), None);
        let q = Query::parse("ECHO[2]*").unwrap();
        assert_eq!(q.terms[0].tokens, ["echo", "2"]);
        assert!(q.terms[0].prefix);
    }
}
