//! Snippets computed from a matched message's text, outside FTS5: FTS5's
//! `snippet()` is quadratic in the number of matches inside one message
//! (a 1 MiB message repeating the word took 93 s). Here one pass over the
//! tokens finds the best window and stops as soon as a window holds every
//! term; a second pass up to that window places the highlights. Both are
//! linear in the text and hold only a window's worth of state.

use crate::query::{Query, Term};
use crate::tokens::{Tokens, fold_into};
use crate::{ELLIPSIS, HIGHLIGHT, SNIPPET_TOKENS};
use std::collections::VecDeque;

/// A term found in the text: which term, and its first and last token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub(crate) term: usize,
    first: usize,
    last: usize,
}

/// Finds terms as the tokens of a text go by, keeping only the last few
/// tokens (as many as the longest term has).
pub(crate) struct Matcher<'q> {
    terms: &'q [Term],
    /// Folded recent tokens, by token number modulo their count.
    recent: Vec<String>,
    /// Byte ranges of the same tokens.
    spans: Vec<(usize, usize)>,
    /// Tokens seen so far.
    seen: usize,
}

impl<'q> Matcher<'q> {
    pub(crate) fn new(terms: &'q [Term]) -> Self {
        let longest = terms.iter().map(|t| t.tokens.len()).max().unwrap_or(1);
        Matcher {
            terms,
            recent: vec![String::new(); longest],
            spans: vec![(0, 0); longest],
            seen: 0,
        }
    }

    /// Take the next token (`text[span.0..span.1]`) and report every term
    /// that ends with it.
    pub(crate) fn push(&mut self, text: &str, span: (usize, usize), found: &mut Vec<Found>) {
        let ring = self.recent.len();
        let i = self.seen;
        fold_into(&text[span.0..span.1], &mut self.recent[i % ring]);
        self.spans[i % ring] = span;
        self.seen += 1;
        for (term, t) in self.terms.iter().enumerate() {
            let n = t.tokens.len();
            if n > self.seen {
                continue;
            }
            let first = self.seen - n;
            let matched = t.tokens.iter().enumerate().all(|(k, want)| {
                let have = &self.recent[(first + k) % ring];
                if t.prefix && k + 1 == n {
                    have.starts_with(want.as_str())
                } else {
                    have == want
                }
            });
            if matched {
                found.push(Found {
                    term,
                    first,
                    last: i,
                });
            }
        }
    }

    /// Byte range of token `i`, one of the last few pushed.
    fn span(&self, i: usize) -> (usize, usize) {
        self.spans[i % self.spans.len()]
    }
}

/// First token of the window to show: the earliest window of
/// [`SNIPPET_TOKENS`] tokens holding the most distinct terms, centred on
/// them. Stops reading at the first window that holds every term.
fn best_window(q: &Query, text: &str) -> usize {
    let mut matcher = Matcher::new(&q.terms);
    let mut found = Vec::new();
    let mut window: VecDeque<Found> = VecDeque::new();
    let mut counts = vec![0usize; q.terms.len()];
    let mut distinct = 0;
    // (distinct terms, first token, last token) of the best window so far.
    let mut best: Option<(usize, usize, usize)> = None;
    for span in Tokens::new(text) {
        matcher.push(text, span, &mut found);
        for f in found.drain(..) {
            window.push_back(f);
            counts[f.term] += 1;
            if counts[f.term] == 1 {
                distinct += 1;
            }
            while let Some(old) = window.front().copied() {
                if old.first + SNIPPET_TOKENS > f.last || window.len() == 1 {
                    break;
                }
                window.pop_front();
                counts[old.term] -= 1;
                if counts[old.term] == 0 {
                    distinct -= 1;
                }
            }
            if best.is_none_or(|(d, _, _)| distinct > d) {
                best = Some((
                    distinct,
                    window.front().map_or(f.first, |w| w.first),
                    f.last,
                ));
            }
        }
        if best.is_some_and(|(d, _, _)| d == q.terms.len()) {
            break;
        }
    }
    let Some((_, first, last)) = best else {
        return 0;
    };
    let spare = SNIPPET_TOKENS.saturating_sub(last - first + 1);
    first - (spare / 2).min(first)
}

/// Longest piece of text (a highlighted span, or the text between two) a
/// snippet shows whole; a longer one (a huge token, a long run of
/// punctuation) keeps its two ends around an [`ELLIPSIS`], so a snippet
/// stays small whatever the message holds.
const MAX_PIECE: usize = 1024;

/// Append `piece` to `out`, cut in the middle when longer than [`MAX_PIECE`].
fn push_capped(out: &mut String, piece: &str) {
    if piece.len() <= MAX_PIECE {
        out.push_str(piece);
        return;
    }
    let mut head = MAX_PIECE / 2;
    while !piece.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = piece.len() - MAX_PIECE / 2;
    while !piece.is_char_boundary(tail) {
        tail += 1;
    }
    out.push_str(&piece[..head]);
    out.push(ELLIPSIS);
    out.push_str(&piece[tail..]);
}

impl Query {
    /// An excerpt of `text` around the best match of this query: up to
    /// [`SNIPPET_TOKENS`] tokens, every matched term wrapped in
    /// [`HIGHLIGHT`] from the start of its first token to the end of its
    /// last (so `echo` in `ECHO[2]:` gives `«ECHO»[2]:`), widened by the
    /// punctuation the term starts or ends with where the text has it too
    /// (`ECHO[2]` gives `«ECHO[2]»:`, never `«ECHO[2»]:`), and [`ELLIPSIS`]
    /// where text is left out (also inside a piece longer than 1 KiB, so
    /// the excerpt stays small). Time is linear in `text`. A text where no
    /// term is found (folding differs from the tokenizer's for a rare
    /// letter) gives its first tokens, unmarked.
    pub fn snippet(&self, text: &str) -> String {
        let start = best_window(self, text);
        let end = start + SNIPPET_TOKENS;
        let mut matcher = Matcher::new(&self.terms);
        let mut found = Vec::new();
        let mut marks: Vec<(usize, usize)> = Vec::new();
        let (mut from, mut to, mut more) = (None, None, false);
        for (i, span) in Tokens::new(text).enumerate() {
            if i == end {
                more = true;
                break;
            }
            matcher.push(text, span, &mut found);
            if i == start {
                from = Some(span.0);
            }
            if i >= start {
                to = Some(span.1);
            }
            for f in found.drain(..).filter(|f| f.first >= start) {
                let (lead, trail) = self.terms[f.term].edges();
                let s = matcher.span(f.first).0;
                let s = if text[..s].ends_with(lead) {
                    s - lead.len()
                } else {
                    s
                };
                let e = if text[span.1..].starts_with(trail) {
                    span.1 + trail.len()
                } else {
                    span.1
                };
                marks.push((s, e));
            }
        }
        let (Some(from), Some(to)) = (from, to) else {
            return String::new();
        };
        let (from, to) = (
            if start == 0 { 0 } else { from },
            if more { to } else { text.len() },
        );
        // Overlapping terms share one highlight; a term's punctuation never
        // reaches outside the excerpt.
        for mark in &mut marks {
            *mark = (mark.0.max(from), mark.1.min(to));
        }
        marks.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(marks.len());
        for (s, e) in marks {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        let mut out = String::with_capacity(to - from + 8 * merged.len() + 8);
        if start > 0 {
            out.push(ELLIPSIS);
        }
        let mut at = from;
        for (s, e) in merged {
            push_capped(&mut out, &text[at..s]);
            out.push(HIGHLIGHT.0);
            push_capped(&mut out, &text[s..e]);
            out.push(HIGHLIGHT.1);
            at = e;
        }
        push_capped(&mut out, &text[at..to]);
        if more {
            out.push(ELLIPSIS);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snippet(q: &str, text: &str) -> String {
        Query::parse(q).unwrap().snippet(text)
    }

    #[test]
    fn highlights_fall_on_token_boundaries() {
        assert_eq!(snippet("echo", "ECHO[2]: hi"), "«ECHO»[2]: hi");
        assert_eq!(snippet("ECHO[2]", "ECHO[2]: hi"), "«ECHO[2]»: hi");
        assert_eq!(snippet("[2]:", "ECHO[2]: hi"), "ECHO«[2]:» hi");
        assert_eq!(snippet("ECHO[2]", "echo 2 hi"), "«echo 2» hi");
        assert_eq!(snippet("(x)", "(x"), "«(x»");
        assert_eq!(snippet("ech*", "ECHO[2]: hi"), "«ECHO»[2]: hi");
        assert_eq!(
            snippet("pub-tool-output-beta", "RUN: echo pub-tool-output-beta\n"),
            "RUN: echo «pub-tool-output-beta»\n"
        );
        assert_eq!(snippet("ÉTÉ", "un été"), "un «été»");
    }

    #[test]
    fn the_window_holds_the_most_terms_and_ellipses_mark_cuts() {
        let filler = "x ".repeat(40);
        let text = format!("alpha {filler}beta gamma alpha {filler}end");
        let s = snippet("alpha gamma", &text);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("beta «gamma» «alpha»"), "{s}");
        assert_eq!(s.matches(' ').count(), SNIPPET_TOKENS - 1, "{s}");
    }

    #[test]
    fn a_huge_token_or_gap_is_cut_in_the_middle() {
        let token = "é".repeat(100_000);
        let s = snippet("ab*", &format!("{}abc{token} next", "-".repeat(100_000)));
        assert!(s.len() < 3 * MAX_PIECE, "{} bytes", s.len());
        assert!(s.starts_with("---") && s.ends_with("é» next"), "{s}");
        assert!(
            s.contains("-…-") && s.contains("«abcé") && s.contains("é…é"),
            "{s}"
        );
    }

    #[test]
    fn no_term_found_gives_the_first_tokens() {
        assert_eq!(snippet("zzz", "one two"), "one two");
        assert_eq!(snippet("zzz", "--"), "");
    }

    #[test]
    fn a_word_repeated_through_a_large_text_is_found_without_reading_it_all() {
        let text = "word ".repeat(400_000);
        let s = snippet("word", &text);
        assert!(s.starts_with("«word» «word»") && s.ends_with('…'), "{s}");
        // The second term only at the very end: the whole text is scanned once.
        let text = format!("{text}needle");
        assert!(snippet("word needle", &text).ends_with("«word» «needle»"));
    }
}
