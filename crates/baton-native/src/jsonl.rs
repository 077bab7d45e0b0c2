//! Splitting native bytes into JSONL lines with line numbers and offsets.
//!
//! Rules shared by every reader and writer in this crate:
//! - a line ends at `\n` (a preceding `\r` is dropped);
//! - a UTF-8 byte-order mark at file offset 0 is skipped;
//! - blank lines count for numbering but are otherwise ignored;
//! - a final line without `\n` is a torn tail: it is not returned and not
//!   consumed, so it is read once a later call sees it completed;
//! - a `\uD800`–`\uDFFF` escape that is not half of a surrogate pair (Node
//!   writes one for an emoji cut in half) reads as U+FFFD; the bytes stay as
//!   they are;
//! - invalid UTF-8, invalid JSON and non-object lines become [`LineIssue`]s.

use serde::{Deserialize, Serialize};

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A line that could not be used, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineIssue {
    /// 1-based line number in the file.
    pub line: u64,
    /// Byte offset of the line's start.
    pub offset: u64,
    /// What is wrong, e.g. "invalid JSON: expected value at column 1".
    pub message: String,
}

/// One complete, non-blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number in the file.
    pub number: u64,
    /// Byte offset of the line's start in the file.
    pub offset: u64,
    /// The line's bytes without the terminator (and without a leading BOM).
    pub bytes: &'a [u8],
}

/// Iterator over the complete lines of a chunk of a file.
///
/// Created with [`Lines::new`]; after iteration, [`Lines::consumed`] is the
/// number of bytes of the chunk that ended in a complete line.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
    base_offset: u64,
    line_no: u64,
}

impl<'a> Lines<'a> {
    /// Lines of `bytes`, which start at file offset `base_offset` after
    /// `lines_before` complete lines.
    pub fn new(bytes: &'a [u8], base_offset: u64, lines_before: u64) -> Self {
        Lines {
            bytes,
            pos: 0,
            base_offset,
            line_no: lines_before,
        }
    }

    /// Bytes of the chunk consumed so far (always at a line boundary).
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// Complete lines counted so far, blank ones included, plus `lines_before`.
    pub fn line_count(&self) -> u64 {
        self.line_no
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        loop {
            let rest = self.bytes.get(self.pos..)?;
            let nl = memchr::memchr(b'\n', rest)?;
            let start = self.pos;
            self.pos += nl + 1;
            self.line_no += 1;
            let offset = self.base_offset + start as u64;
            let mut line = &rest[..nl];
            if offset == 0 && line.starts_with(BOM) {
                line = &line[BOM.len()..];
            }
            if let [head @ .., b'\r'] = line {
                line = head;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Line {
                number: self.line_no,
                offset,
                bytes: line,
            });
        }
    }
}

/// Bytes [`read_lines`] asks the reader for at a time.
const READ_CHUNK: usize = 1 << 20;

/// Call `visit` with each complete line [`Lines`] would give for the bytes
/// of `reader` (a file read from its start), holding one chunk and the
/// current line at a time, never the whole file. `visit` returns whether to
/// go on; a read error becomes `read_err`'s. A torn tail is not visited.
pub fn read_lines<E>(
    reader: impl std::io::Read,
    read_err: impl Fn(std::io::Error) -> E,
    mut visit: impl FnMut(Line<'_>) -> Result<bool, E>,
) -> Result<(), E> {
    let mut before = 0u64;
    read_raw_lines(reader, read_err, |offset, raw| {
        if !raw.ends_with(b"\n") {
            return Ok(false);
        }
        let mut lines = Lines::new(raw, offset, before);
        let line = lines.next();
        before = lines.line_count();
        match line {
            Some(line) => visit(line),
            None => Ok(true),
        }
    })
}

/// Call `visit` with the file offset and the exact bytes of each line of
/// `reader` (a file read from its start): every line with its `\n`, then a
/// torn tail as it is, so the pieces put back together are the file. One
/// chunk and the current line are held at a time. `visit` returns whether
/// to go on; a read error becomes `read_err`'s.
pub fn read_raw_lines<E>(
    mut reader: impl std::io::Read,
    read_err: impl Fn(std::io::Error) -> E,
    mut visit: impl FnMut(u64, &[u8]) -> Result<bool, E>,
) -> Result<(), E> {
    let (mut buf, mut base) = (Vec::new(), 0u64);
    loop {
        let filled = buf.len();
        buf.resize(filled + READ_CHUNK, 0);
        let n = loop {
            match reader.read(&mut buf[filled..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => break read.map_err(&read_err)?,
            }
        };
        buf.truncate(filled + n);
        if n == 0 {
            if !buf.is_empty() {
                visit(base, &buf)?;
            }
            return Ok(());
        }
        // Only the new bytes can hold the end of the line begun before.
        let (mut start, mut search) = (0, filled);
        while let Some(nl) = memchr::memchr(b'\n', &buf[search..]) {
            let end = search + nl + 1;
            if !visit(base + start as u64, &buf[start..end])? {
                return Ok(());
            }
            (start, search) = (end, end);
        }
        base += start as u64;
        buf.drain(..start);
    }
}

/// Changes one line (its bytes with the `\n`, or a torn tail): `None`
/// keeps it as it is.
pub type EditLine<'a> = Box<dyn FnMut(&[u8]) -> std::io::Result<Option<Vec<u8>>> + 'a>;

/// A reader of `inner`'s bytes with every line passed through an
/// [`EditLine`], holding one line at a time: what a session's files become
/// on their way into an agent home (secrets restored, paths moved).
pub struct EditedLines<'a> {
    inner: std::io::BufReader<Box<dyn std::io::Read + 'a>>,
    edit: EditLine<'a>,
    line: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
}

impl<'a> EditedLines<'a> {
    /// The bytes of `inner`, each line changed by `edit`.
    pub fn new(inner: Box<dyn std::io::Read + 'a>, edit: EditLine<'a>) -> Self {
        EditedLines {
            inner: std::io::BufReader::new(inner),
            edit,
            line: Vec::new(),
            out: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for EditedLines<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        while self.pos == self.out.len() {
            self.line.clear();
            self.pos = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                self.out.clear();
                return Ok(0);
            }
            self.out = match (self.edit)(&self.line)? {
                Some(edited) => edited,
                None => std::mem::take(&mut self.line),
            };
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Line<'_> {
    /// An issue for this line with the given message.
    pub fn issue(&self, message: impl Into<String>) -> LineIssue {
        LineIssue {
            line: self.number,
            offset: self.offset,
            message: message.into(),
        }
    }

    /// The line as UTF-8 text holding one JSON object, or the issue
    /// explaining why it is not one.
    pub fn object_text(&self) -> Result<&str, LineIssue> {
        let text = std::str::from_utf8(self.bytes).map_err(|e| {
            self.issue(format!(
                "invalid UTF-8 at byte {} of the line",
                e.valid_up_to() + 1
            ))
        })?;
        match text.trim_start().as_bytes().first() {
            Some(b'{') => Ok(text),
            Some(b'[') => Err(self.issue("not a JSON object (found an array)")),
            Some(b'"') => Err(self.issue("not a JSON object (found a string)")),
            _ => match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => Err(self.issue("not a JSON object (found a scalar)")),
                Err(e) => Err(self.issue(format!("invalid JSON: {e}"))),
            },
        }
    }

    /// Parse the line into a lenient targeted struct `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, LineIssue> {
        let text = self.object_text()?;
        serde_json::from_str(text).map_err(|e| self.issue(format!("invalid JSON: {e}")))
    }

    /// Parse the line into a full [`serde_json::Value`] object (lone
    /// surrogate escapes read as U+FFFD, see [`Line::readable`]).
    pub fn value(&self) -> Result<serde_json::Value, LineIssue> {
        self.readable(|line| line.parse())
    }

    /// Run `read` on this line, or, when it holds lone surrogate escapes
    /// (which serde_json refuses), on a copy where each is `\uFFFD`.
    pub fn readable<R>(&self, read: impl FnOnce(&Line<'_>) -> R) -> R {
        match replace_lone_surrogates(self.bytes) {
            Some(fixed) => read(&Line {
                bytes: &fixed,
                ..*self
            }),
            None => read(self),
        }
    }
}

/// `bytes` with every `\uD800`–`\uDFFF` escape that is not half of a valid
/// surrogate pair replaced by `\uFFFD`, or `None` when there is none.
/// Cheap when the line has no `\ud`/`\uD` at all (the common case).
fn replace_lone_surrogates(bytes: &[u8]) -> Option<Vec<u8>> {
    if memchr::memmem::find(bytes, b"\\ud").is_none()
        && memchr::memmem::find(bytes, b"\\uD").is_none()
    {
        return None;
    }
    let escape_at = |i: usize| -> Option<u16> {
        let hex = bytes.get(i..i + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let (mut out, mut copied, mut i) = (Vec::new(), 0, 0);
    while let Some(at) = memchr::memchr(b'\\', &bytes[i..]) {
        let at = i + at;
        let next = match escape_at(at) {
            Some(0xD800..=0xDBFF) if matches!(escape_at(at + 6), Some(0xDC00..=0xDFFF)) => at + 12,
            Some(0xD800..=0xDFFF) => {
                out.extend_from_slice(&bytes[copied..at]);
                out.extend_from_slice(b"\\ufffd");
                copied = at + 6;
                copied
            }
            _ => at + 2, // any other escape, `\\` included
        };
        i = next.min(bytes.len());
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(&bytes[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_numbers_and_skips_blank_and_torn_tail() {
        let bytes = b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"c\":";
        let mut lines = Lines::new(bytes, 0, 0);
        let got: Vec<_> = lines
            .by_ref()
            .map(|l| (l.number, l.offset, l.bytes))
            .collect();
        assert_eq!(
            got,
            vec![(1, 0, &b"{\"a\":1}"[..]), (4, 13, &b"{\"b\":2}"[..])]
        );
        assert_eq!(lines.consumed(), 22);
        assert_eq!(lines.line_count(), 4);
    }

    #[test]
    fn read_lines_matches_lines_across_chunks_and_stops_when_asked() {
        let mut bytes = b"\xEF\xBB\xBF{\"a\":1}\n\n".to_vec();
        bytes.extend(format!("{{\"big\":\"{}\"}}\r\n", "x".repeat(READ_CHUNK * 2 + 7)).bytes());
        bytes.extend(b"{\"c\":3}\n{\"torn\":");
        let want: Vec<_> = Lines::new(&bytes, 0, 0)
            .map(|l| (l.number, l.offset, l.bytes.to_vec()))
            .collect();
        let mut got = Vec::new();
        read_lines(
            &bytes[..],
            |e| e,
            |l| {
                got.push((l.number, l.offset, l.bytes.to_vec()));
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(got, want);
        assert_eq!(got.len(), 3);
        let mut first = 0;
        read_lines(
            &bytes[..],
            |e| e,
            |_| {
                first += 1;
                Ok(false)
            },
        )
        .unwrap();
        assert_eq!(first, 1);
    }

    #[test]
    fn raw_lines_put_back_together_are_the_file() {
        let mut bytes = b"\xEF\xBB\xBF{\"a\":1}\n\n".to_vec();
        bytes.extend(format!("{{\"big\":\"{}\"}}\r\n", "x".repeat(READ_CHUNK + 7)).bytes());
        bytes.extend(b"{\"torn\":");
        let mut pieces = Vec::new();
        read_raw_lines(
            &bytes[..],
            |e| e,
            |offset, raw| {
                pieces.push((offset, raw.to_vec()));
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(pieces.len(), 4);
        assert_eq!(
            pieces
                .iter()
                .flat_map(|(_, raw)| raw.clone())
                .collect::<Vec<u8>>(),
            bytes
        );
        let mut at = 0;
        for (offset, raw) in &pieces {
            assert_eq!(*offset, at);
            at += raw.len() as u64;
        }
        // Edited on the way: one line changed, the others as they were.
        let edit: EditLine<'_> =
            Box::new(|line: &[u8]| Ok((line == b"\n").then(|| b"{}\n".to_vec())));
        let mut edited = Vec::new();
        std::io::Read::read_to_end(
            &mut EditedLines::new(Box::new(&bytes[..]), edit),
            &mut edited,
        )
        .unwrap();
        assert_eq!(edited.len(), bytes.len() + 2);
        assert!(edited.ends_with(b"\"}\r\n{\"torn\":"));
    }

    #[test]
    fn bom_only_at_file_start() {
        let bytes = b"\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBF{}\n";
        let lines: Vec<_> = Lines::new(bytes, 0, 0).collect();
        assert_eq!(lines[0].bytes, b"{\"a\":1}");
        assert!(lines[0].object_text().is_ok());
        assert!(lines[1].object_text().is_err());
        let later: Vec<_> = Lines::new(&bytes[..11], 5, 0).collect();
        assert_eq!(later[0].bytes.len(), 10);
    }

    #[test]
    fn issues_name_the_problem() {
        let bytes = b"[1]\n\"s\"\n3\n{bad\n{\"x\":\"\xFF\"}\n";
        let msgs: Vec<_> = Lines::new(bytes, 0, 0)
            .map(|l| {
                let e = l.parse::<serde::de::IgnoredAny>().unwrap_err();
                (e.line, e.message)
            })
            .collect();
        assert_eq!(msgs[0], (1, "not a JSON object (found an array)".into()));
        assert_eq!(msgs[1], (2, "not a JSON object (found a string)".into()));
        assert_eq!(msgs[2], (3, "not a JSON object (found a scalar)".into()));
        assert!(msgs[3].1.starts_with("invalid JSON"), "{:?}", msgs[3]);
        assert_eq!(msgs[4], (5, "invalid UTF-8 at byte 7 of the line".into()));
    }

    #[test]
    fn lone_surrogates_read_as_replacement_characters() {
        let text = |line: &[u8]| {
            let line = Lines::new(line, 0, 0).next().unwrap();
            line.value().map(|v| v["t"].as_str().unwrap().to_owned())
        };
        // A cut emoji (lone high half), a lone low half, both ends of a string.
        assert_eq!(text(b"{\"t\":\"a\\ud83d\"}\n").unwrap(), "a\u{FFFD}");
        assert_eq!(
            text(b"{\"t\":\"\\uDE00b\\ud83d\\n\"}\n").unwrap(),
            "\u{FFFD}b\u{FFFD}\n"
        );
        // Valid pairs, escaped backslashes and other escapes stay as they are.
        assert_eq!(text(b"{\"t\":\"\\ud83d\\ude00\"}\n").unwrap(), "\u{1F600}");
        assert_eq!(text(b"{\"t\":\"\\\\ud83d\\u0041\"}\n").unwrap(), "\\ud83dA");
        assert_eq!(replace_lone_surrogates(b"{\"t\":\"\\\\ud83d\"}"), None);
        // A high half before a whole pair is lone; the pair is kept.
        assert_eq!(
            text(b"{\"t\":\"\\ud83d\\ud83d\\ude00\"}\n").unwrap(),
            "\u{FFFD}\u{1F600}"
        );
        // Still invalid JSON after the repair: an issue, as before.
        assert!(text(b"{\"t\":\"\\ud83d}\n").is_err());
    }
}
