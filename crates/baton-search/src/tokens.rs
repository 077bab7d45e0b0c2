//! Words as the FTS5 tokenizer ([`crate::TOKENIZER`]) sees them, for
//! parsing queries and placing snippets: a token is a run of letters,
//! digits and combining marks; tokens compare case-folded with combining
//! marks removed.

/// A combining diacritical mark (dropped when folding, like `remove_diacritics`).
fn is_mark(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}' | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// Whether `c` belongs to a token.
fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || is_mark(c)
}

/// Byte ranges of the tokens of a text, in order.
pub(crate) struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    /// Tokens of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        Tokens { text, at: 0 }
    }
}

impl Iterator for Tokens<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let bytes = self.text.as_bytes();
        let mut start = None;
        while self.at < bytes.len() {
            let b = bytes[self.at];
            let (is_token, width) = if b.is_ascii() {
                (b.is_ascii_alphanumeric(), 1)
            } else {
                let c = self.text[self.at..]
                    .chars()
                    .next()
                    .expect("a char boundary");
                (is_token_char(c), c.len_utf8())
            };
            match (is_token, start) {
                (true, None) => start = Some(self.at),
                (false, Some(s)) => return Some((s, self.at)),
                _ => {}
            }
            self.at += width;
        }
        start.map(|s| (s, bytes.len()))
    }
}

/// Write the folded form of `token` (lower case, no combining marks) to `out`.
pub(crate) fn fold_into(token: &str, out: &mut String) {
    out.clear();
    if token.is_ascii() {
        out.extend(token.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else {
        out.extend(
            token
                .chars()
                .filter(|&c| !is_mark(c))
                .flat_map(char::to_lowercase),
        );
    }
}

/// The folded tokens of `text`.
pub(crate) fn folded(text: &str) -> Vec<String> {
    Tokens::new(text)
        .map(|(s, e)| {
            let mut out = String::new();
            fold_into(&text[s..e], &mut out);
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_runs_of_letters_and_digits() {
        let text = "ECHO[2]: pub-tool ünïcødé ✓ e\u{301}t";
        let words: Vec<&str> = Tokens::new(text).map(|(s, e)| &text[s..e]).collect();
        assert_eq!(words, ["ECHO", "2", "pub", "tool", "ünïcødé", "e\u{301}t"]);
        assert_eq!(folded(text), ["echo", "2", "pub", "tool", "ünïcødé", "et"]);
    }
}
