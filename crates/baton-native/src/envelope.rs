//! The baton envelope: one portable, self-describing file carrying a
//! session's native bytes (its whole lineage, and for Claude the subagent
//! transcripts and tool outputs of its session folder), its agent, some
//! metadata and content hashes.
//!
//! Layout: a single zstd frame whose decompressed content is
//!
//! ```text
//! {"format":"baton-envelope","version":1,"agent":"codex","id":"…","meta":{…},
//!  "lineage":["<oldest ancestor id>",…,"<id>"],
//!  "files":[{"role":"ancestor"|"session"|"subagent"|"tool-result","id":"…","name":"sessions/…jsonl","bytes":N,"sha256":"…"},…],
//!  "sha256":"…"}\n
//! <bytes of files[0]><bytes of files[1]>…
//! ```
//!
//! The header is one JSON line; the native files follow back to back, in
//! header order, each exactly `bytes` long. `sha256` (lowercase hex) is the
//! hash of each file's bytes, and the top-level `sha256` is the hash of all
//! file bytes concatenated in order: the envelope's content hash.
//!
//! Names are paths inside the agent home and must have the agent's layout:
//! Codex `sessions/YYYY/MM/DD/rollout-<…>-<id>.jsonl` or
//! `archived_sessions/rollout-<…>-<id>.jsonl`; Claude
//! `projects/<slug>/<id>.jsonl`, then (version 2) `subagent` entries
//! `projects/<slug>/<id>/subagents/agent-<…>.jsonl|.meta.json` and
//! `tool-result` entries `projects/<slug>/<id>/tool-results/<name>`, whose
//! `id` is the session id. Version 1 is written when there are no such
//! entries, so older readers still read those envelopes.

use crate::layout::codex::{self, RolloutName};
use crate::layout::{check_session_id, claude};
use crate::model::Agent;
use crate::rehydrate::{ExtraKind, LineageFile, NativeSession, SessionExtra, is_safe_extra_name};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Read, Write};

/// The `format` value of every envelope header.
pub const FORMAT: &str = "baton-envelope";
/// The newest envelope version this build writes and reads (it reads 1 too).
pub const VERSION: u32 = 2;
/// The largest decompressed envelope [`Envelope::read_from`] accepts (4 GiB):
/// the header's declared file sizes must add up to at most this.
pub const MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;
/// The longest header line accepted (16 MiB).
const MAX_HEADER_BYTES: u64 = 16 << 20;
/// Decompressed bytes accepted before the [`MAX_EXPANSION`] bound applies
/// (32 MiB).
pub const EXPANSION_ALLOWANCE: u64 = 32 << 20;
/// How many times its compressed size zstd data from elsewhere (an envelope,
/// a download) may expand to beyond [`EXPANSION_ALLOWANCE`]; session
/// transcripts compress about tenfold.
pub const MAX_EXPANSION: u64 = 256;

/// The most bytes `compressed` bytes of zstd from elsewhere may decompress
/// to (see [`MAX_EXPANSION`]): what has arrived bounds what is held.
pub fn max_decompressed(compressed: u64) -> u64 {
    EXPANSION_ALLOWANCE.saturating_add(compressed.saturating_mul(MAX_EXPANSION))
}
/// The largest zstd window accepted (32 MiB; `baton export` uses 4 MiB).
const MAX_WINDOW_LOG: u32 = 25;

/// Descriptive session metadata carried in the header (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
#[ts(optional_fields)]
pub struct EnvelopeMeta {
    /// Directory the session started in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Time of the newest record (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Title, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// First typed prompt, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_prompt: Option<String>,
    /// The session this one was forked from, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
}

/// Role of a file inside an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// A parent the session's history references (Codex `history_base`).
    Ancestor,
    /// The session's own file (last of the lineage files).
    Session,
    /// Claude: a subagent transcript or its `.meta.json` (version 2).
    Subagent,
    /// Claude: a large tool output from `tool-results/` (version 2).
    ToolResult,
}

impl FileRole {
    /// The extra-file kind of a `subagent`/`tool-result` entry.
    fn extra_kind(self) -> Option<ExtraKind> {
        match self {
            FileRole::Ancestor | FileRole::Session => None,
            FileRole::Subagent => Some(ExtraKind::Subagent),
            FileRole::ToolResult => Some(ExtraKind::ToolResult),
        }
    }
}

/// One file entry of the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct FileEntry {
    /// Ancestor, the session itself, or a file of the session's folder.
    pub role: FileRole,
    /// Session id of the file (the owning session for extra files).
    pub id: String,
    /// Path relative to the agent home.
    pub name: String,
    /// Length in bytes.
    #[ts(type = "number")]
    pub bytes: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// The envelope's first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct EnvelopeHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// 1, or 2 when the envelope holds `subagent`/`tool-result` files.
    pub version: u32,
    /// Which agent the native bytes belong to.
    pub agent: Agent,
    /// The session id.
    pub id: String,
    /// Descriptive metadata.
    #[serde(default)]
    pub meta: EnvelopeMeta,
    /// Session ids of the lineage files, oldest ancestor first, the session last.
    pub lineage: Vec<String>,
    /// The files, in payload order: the lineage, then the extra files.
    pub files: Vec<FileEntry>,
    /// SHA-256 of all file bytes concatenated (the content hash).
    pub sha256: String,
}

/// A session packed for transport: native bytes plus metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The native bytes (whole lineage and extra files).
    pub session: NativeSession,
    /// Descriptive metadata.
    pub meta: EnvelopeMeta,
}

/// A reader counting the bytes read through it into `count`.
struct Counted<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Decompressed bytes that fail with [`TooExpanded`] once they outgrow
/// [`max_decompressed`] of the compressed bytes `arrived` so far.
struct Expansion<R> {
    inner: R,
    arrived: std::rc::Rc<std::cell::Cell<u64>>,
    produced: u64,
}

/// The decompressed-size bound an envelope crossed.
#[derive(Debug)]
struct TooExpanded(u64);

impl std::fmt::Display for TooExpanded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompresses to more than {} bytes", self.0)
    }
}

impl std::error::Error for TooExpanded {}

impl<R: Read> Read for Expansion<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        let bound = max_decompressed(self.arrived.get());
        if self.produced > bound {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                TooExpanded(bound),
            ));
        }
        Ok(n)
    }
}

/// Why an envelope could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not zstd, not an envelope header, or truncated.
    #[error(
        "not a valid baton envelope ({0}); the file is corrupt or was not written by `baton export --format envelope`"
    )]
    Corrupt(String),
    /// Written by a newer baton.
    #[error(
        "envelope version {found} is not supported (this baton reads versions 1 to {VERSION}); upgrade baton"
    )]
    Version {
        /// The version found.
        found: u32,
    },
    /// Decompresses to more than the allowed size.
    #[error(
        "envelope decompresses to more than {limit} bytes; it is corrupt or not a session envelope (nothing was written)"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Bytes do not match the recorded hashes.
    #[error(
        "envelope content hash mismatch for {what}: expected {expected}, got {actual}; the file was modified or damaged in transit, export it again"
    )]
    HashMismatch {
        /// Which part (a file name or `content`).
        what: String,
        /// Hash in the header.
        expected: String,
        /// Hash of the bytes.
        actual: String,
    },
    /// A file changed between hashing and packing it.
    #[error("{name} changed while it was packed (other than by growing); export the session again")]
    Changed {
        /// The file's name in the envelope.
        name: String,
    },
    /// Reading or writing failed.
    #[error("envelope I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The parts of session `id`'s envelope in payload order: its lineage
/// files (`(id, name, write)`, ancestors first, the session's own last),
/// then `extras`, the files of its session folder, named below the
/// session's own file.
pub fn session_parts<'a>(
    id: &str,
    lineage: Vec<(String, String, WriteBytes<'a>)>,
    extras: &'a [SessionExtra],
) -> Vec<Part<'a>> {
    let last = lineage.len().saturating_sub(1);
    let folder = lineage
        .last()
        .map(|(_, name, _)| name.trim_end_matches(".jsonl").to_string())
        .unwrap_or_default();
    let lineage = lineage
        .into_iter()
        .enumerate()
        .map(|(i, (id, name, write))| Part {
            role: if i == last {
                FileRole::Session
            } else {
                FileRole::Ancestor
            },
            id,
            name,
            write,
        });
    let extras = extras.iter().map(|x| Part {
        role: match x.kind {
            ExtraKind::Subagent => FileRole::Subagent,
            ExtraKind::ToolResult => FileRole::ToolResult,
        },
        id: id.to_string(),
        name: format!("{folder}/{}", x.relative_path()),
        write: Box::new(|w: &mut dyn Write| w.write_all(&x.bytes)),
    });
    lineage.chain(extras).collect()
}

/// Writes one file's bytes into the writer it is given.
pub type WriteBytes<'a> = Box<dyn FnMut(&mut dyn Write) -> std::io::Result<()> + 'a>;

/// One file an envelope carries: its header facts and `write`, which
/// writes its bytes each time it is called (twice: once to hash them, once
/// to pack them), so [`write_envelope`] never holds a file whole.
pub struct Part<'a> {
    /// Ancestor, the session itself, or a file of the session's folder.
    pub role: FileRole,
    /// Session id of the file (the owning session for extra files).
    pub id: String,
    /// Path relative to the agent home.
    pub name: String,
    /// Writes the file's bytes.
    pub write: WriteBytes<'a>,
}

/// A writer that hashes and counts what passes through it, keeping at most
/// `cap` bytes and handing them on to `out`: what a file appended to after
/// it was hashed adds is dropped, so the envelope stays consistent.
struct Tally<'a> {
    out: Option<&'a mut dyn Write>,
    cap: u64,
    passed: u64,
    file: Sha256,
}

impl<'a> Tally<'a> {
    fn new(out: Option<&'a mut dyn Write>, cap: u64) -> Self {
        Tally {
            out,
            cap,
            passed: 0,
            file: Sha256::new(),
        }
    }
}

impl Write for Tally<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let take = buf
            .len()
            .min(usize::try_from(self.cap - self.passed).unwrap_or(usize::MAX));
        let kept = &buf[..take];
        self.file.update(kept);
        self.passed += take as u64;
        if let Some(out) = self.out.as_mut() {
            out.write_all(kept)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// The header of an envelope of `parts` (lineage files in order, then
/// extra files): every part written once into a hash.
fn header_of(
    agent: Agent,
    id: &str,
    meta: &EnvelopeMeta,
    parts: &mut [Part<'_>],
) -> std::io::Result<EnvelopeHeader> {
    let mut content = Sha256::new();
    let mut files = Vec::with_capacity(parts.len());
    for part in parts.iter_mut() {
        let mut tally = Tally::new(Some(&mut content), u64::MAX);
        (part.write)(&mut tally)?;
        let (passed, digest) = (tally.passed, tally.file.finalize());
        files.push(FileEntry {
            role: part.role,
            id: part.id.clone(),
            name: part.name.clone(),
            bytes: passed,
            sha256: hex::encode(digest),
        });
    }
    let extras = files.iter().any(|f| f.role.extra_kind().is_some());
    Ok(EnvelopeHeader {
        format: FORMAT.to_string(),
        version: if extras { VERSION } else { 1 },
        agent,
        id: id.to_string(),
        meta: meta.clone(),
        lineage: files
            .iter()
            .filter(|f| f.role.extra_kind().is_none())
            .map(|f| f.id.clone())
            .collect(),
        files,
        sha256: hex::encode(content.finalize()),
    })
}

/// Write the envelope of session `id` of `agent` holding `parts` (lineage
/// files oldest first, the session's own last, then its extra files) to
/// `w`, zstd-compressed, streaming: a first pass hashes every part for the
/// header, a second packs them. A part that changed in between (beyond
/// growing: its added bytes are left out) is an error.
pub fn write_envelope(
    agent: Agent,
    id: &str,
    meta: &EnvelopeMeta,
    parts: &mut [Part<'_>],
    w: impl Write,
) -> Result<(), EnvelopeError> {
    let header = header_of(agent, id, meta, parts)?;
    let mut enc = zstd::Encoder::new(w, 9)?;
    let mut line = serde_json::to_vec(&header)
        .map_err(|e| EnvelopeError::Corrupt(format!("cannot encode header: {e}")))?;
    line.push(b'\n');
    enc.write_all(&line)?;
    for (part, entry) in parts.iter_mut().zip(&header.files) {
        let mut tally = Tally::new(Some(&mut enc), entry.bytes);
        (part.write)(&mut tally)?;
        let (passed, actual) = (tally.passed, hex::encode(tally.file.finalize()));
        if passed != entry.bytes || actual != entry.sha256 {
            return Err(EnvelopeError::Changed {
                name: entry.name.clone(),
            });
        }
    }
    enc.finish()?.flush()?;
    Ok(())
}

/// Read and verify an envelope from `r` as a stream, handing each file
/// to `each_file` (its header entry and a reader of exactly its bytes) in
/// payload order; returns the header once every hash matched. Nothing is
/// held but the header and a chunk: `each_file` decides where the bytes
/// go, and must not trust them before this returns `Ok` (a later hash
/// may not match). Decompression stops at `limit` bytes
/// ([`EnvelopeError::TooLarge`] beyond), and is also bounded by what has
/// arrived: past the first [`EXPANSION_ALLOWANCE`] bytes, at most
/// [`MAX_EXPANSION`] times the compressed bytes read so far, so a small file
/// declaring gigabytes (a zstd bomb) is refused early.
pub fn read_envelope(
    r: impl Read,
    limit: u64,
    each_file: impl FnMut(&FileEntry, &mut dyn Read) -> std::io::Result<()>,
) -> Result<EnvelopeHeader, EnvelopeError> {
    let zstd_err = |e: std::io::Error| EnvelopeError::Corrupt(format!("zstd: {e}"));
    let arrived = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = Counted {
        inner: r,
        count: arrived.clone(),
    };
    let mut dec = zstd::stream::read::Decoder::new(counted).map_err(zstd_err)?;
    dec.window_log_max(MAX_WINDOW_LOG).map_err(zstd_err)?;
    let bounded = Expansion {
        inner: dec,
        arrived,
        produced: 0,
    };
    read_decompressed(bounded, limit, each_file)
}

/// A reader of one envelope file's bytes that hashes them (into the file's
/// and the content's hash) and counts them as they are read.
struct PartReader<'a, R> {
    inner: std::io::Take<&'a mut R>,
    file: Sha256,
    content: &'a mut Sha256,
    read: u64,
    /// Whether reading the envelope failed (rather than what the bytes were
    /// given to).
    failed: bool,
}

impl<R: Read> Read for PartReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|_| self.failed = true)?;
        self.file.update(&buf[..n]);
        self.content.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Read decompressed envelope bytes as a stream: the header first
/// (format, version, safe ids and names, declared sizes at most `limit`
/// in total), then each file exactly as long as declared, hashed while
/// `each_file` reads it, so a bad envelope is rejected before more than its
/// declared (and real) data passed; trailing bytes are an error.
fn read_decompressed(
    r: impl Read,
    limit: u64,
    mut each_file: impl FnMut(&FileEntry, &mut dyn Read) -> std::io::Result<()>,
) -> Result<EnvelopeHeader, EnvelopeError> {
    let read_err = |e: std::io::Error| match e.get_ref().and_then(|e| e.downcast_ref()) {
        Some(&TooExpanded(limit)) => EnvelopeError::TooLarge { limit },
        _ => EnvelopeError::Corrupt(format!("zstd: {e}")),
    };
    let mut r = std::io::BufReader::new(r);
    let header = Envelope::read_header(&mut r, limit)?;
    let mut content = Sha256::new();
    for entry in &header.files {
        let mut part = PartReader {
            inner: (&mut r).take(entry.bytes),
            file: Sha256::new(),
            content: &mut content,
            read: 0,
            failed: false,
        };
        if let Err(e) = each_file(entry, &mut part) {
            return Err(match part.failed {
                true => read_err(e),
                false => EnvelopeError::Io(e),
            });
        }
        // Whatever `each_file` left unread still counts for the hashes.
        std::io::copy(&mut part, &mut std::io::sink()).map_err(read_err)?;
        if part.read < entry.bytes {
            return Err(EnvelopeError::Corrupt(format!(
                "truncated: the header announces {} bytes for {} but only {} follow",
                entry.bytes, entry.name, part.read
            )));
        }
        let actual = hex::encode(part.file.finalize());
        if actual != entry.sha256 {
            return Err(EnvelopeError::HashMismatch {
                what: entry.name.clone(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
    }
    if r.read(&mut [0u8; 1]).map_err(read_err)? != 0 {
        return Err(EnvelopeError::Corrupt(
            "more data follows the files the header announces".into(),
        ));
    }
    let actual = hex::encode(content.finalize());
    if actual != header.sha256 {
        return Err(EnvelopeError::HashMismatch {
            what: "content".into(),
            expected: header.sha256,
            actual,
        });
    }
    Ok(header)
}

impl Envelope {
    /// Pack a session's native files (ancestors first, the session last,
    /// then its extra files).
    pub fn from_files(session: NativeSession, meta: EnvelopeMeta) -> Envelope {
        Envelope { session, meta }
    }

    /// Every payload part in order: lineage files, then extras.
    fn parts(&self) -> Vec<Part<'_>> {
        let s = &self.session;
        let lineage = s.files.iter().map(|f| {
            let write: WriteBytes<'_> = Box::new(|w: &mut dyn Write| w.write_all(&f.bytes));
            (f.id.clone(), f.name.clone(), write)
        });
        session_parts(&s.id, lineage.collect(), &s.extras)
    }

    /// The content hash: SHA-256 over all file bytes in order.
    pub fn sha256(&self) -> String {
        self.header().sha256
    }

    /// The header this envelope is written with.
    pub fn header(&self) -> EnvelopeHeader {
        let s = &self.session;
        header_of(s.agent, &s.id, &self.meta, &mut self.parts())
            .expect("hashing bytes in memory cannot fail")
    }

    /// Write the envelope (zstd-compressed) to `w` ([`write_envelope`]).
    pub fn write_to(&self, w: impl Write) -> Result<(), EnvelopeError> {
        let s = &self.session;
        write_envelope(s.agent, &s.id, &self.meta, &mut self.parts(), w)
    }

    /// Read and verify an envelope: format, version, names, ids and every
    /// hash; at most [`MAX_DECOMPRESSED_BYTES`] are decompressed.
    pub fn read_from(r: impl Read) -> Result<Envelope, EnvelopeError> {
        Self::read_from_limited(r, MAX_DECOMPRESSED_BYTES)
    }

    /// [`Envelope::read_from`] decompressing at most `limit` bytes
    /// ([`EnvelopeError::TooLarge`] beyond); see [`read_envelope`].
    pub fn read_from_limited(r: impl Read, limit: u64) -> Result<Envelope, EnvelopeError> {
        let (mut files, mut extras) = (Vec::new(), Vec::new());
        let header = read_envelope(r, limit, |entry, part| {
            let mut bytes = Vec::new();
            part.read_to_end(&mut bytes)?;
            match entry.role.extra_kind() {
                None => files.push(LineageFile {
                    id: entry.id.clone(),
                    name: entry.name.clone(),
                    bytes,
                }),
                Some(kind) => extras.push(SessionExtra {
                    kind,
                    file_name: entry
                        .name
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    bytes,
                }),
            }
            Ok(())
        })?;
        Ok(Envelope {
            session: NativeSession {
                agent: header.agent,
                id: header.id,
                files,
                extras,
            },
            meta: header.meta,
        })
    }

    /// Read and check the header line: format, version, safe ids and names,
    /// and declared file sizes that add up to at most `limit` bytes.
    fn read_header(r: &mut impl BufRead, limit: u64) -> Result<EnvelopeHeader, EnvelopeError> {
        let cap = limit.min(MAX_HEADER_BYTES);
        let mut line = Vec::new();
        r.take(cap.saturating_add(1))
            .read_until(b'\n', &mut line)
            .map_err(|e| EnvelopeError::Corrupt(format!("zstd: {e}")))?;
        if line.last() != Some(&b'\n') {
            return Err(if line.len() as u64 > cap {
                EnvelopeError::TooLarge { limit: cap }
            } else {
                EnvelopeError::Corrupt("no header line".into())
            });
        }
        line.pop();
        let probe: serde_json::Value = serde_json::from_slice(&line)
            .map_err(|e| EnvelopeError::Corrupt(format!("header is not JSON: {e}")))?;
        if probe.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(EnvelopeError::Corrupt(format!(
                "header format is not `{FORMAT}`"
            )));
        }
        let found = probe
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| EnvelopeError::Corrupt("header has no version".into()))?;
        if !(1..=u64::from(VERSION)).contains(&found) {
            return Err(EnvelopeError::Version {
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        let header: EnvelopeHeader = serde_json::from_value(probe)
            .map_err(|e| EnvelopeError::Corrupt(format!("bad header: {e}")))?;
        Self::check_header(&header)?;
        let total = header
            .files
            .iter()
            .try_fold(line.len() as u64, |sum, f| sum.checked_add(f.bytes));
        if total.is_none_or(|t| t > limit) {
            return Err(EnvelopeError::TooLarge { limit });
        }
        Ok(header)
    }

    fn check_header(h: &EnvelopeHeader) -> Result<(), EnvelopeError> {
        let bad = |m: String| Err(EnvelopeError::Corrupt(m));
        if check_session_id(&h.id).is_err() {
            return bad(format!("unsafe session id `{}`", h.id));
        }
        let lineage_len = h
            .files
            .iter()
            .position(|f| f.role.extra_kind().is_some())
            .unwrap_or(h.files.len());
        let (lineage, extras) = h.files.split_at(lineage_len);
        let Some((last, ancestors)) = lineage.split_last() else {
            return bad("no files".into());
        };
        if last.id != h.id
            || last.role != FileRole::Session
            || ancestors.iter().any(|f| f.role != FileRole::Ancestor)
        {
            return bad("the last lineage file is not the session's own file".into());
        }
        if h.lineage != lineage.iter().map(|f| f.id.clone()).collect::<Vec<_>>() {
            return bad("lineage does not match the files".into());
        }
        if !extras.is_empty() && (h.agent != Agent::Claude || h.version < 2) {
            return bad(
                "only a version 2 Claude envelope holds subagent or tool-result files".into(),
            );
        }
        if h.agent == Agent::Claude && lineage.len() != 1 {
            return bad("a Claude envelope holds exactly one session transcript".into());
        }
        for f in lineage {
            if check_session_id(&f.id).is_err() || !lineage_name_ok(h.agent, &f.name, &f.id) {
                return bad(format!(
                    "unsafe file entry `{}` ({}); expected {}",
                    f.name,
                    f.id,
                    match h.agent {
                        Agent::Codex =>
                            "sessions/YYYY/MM/DD/rollout-<time>-<id>[_<rollout-id>].jsonl or archived_sessions/rollout-<time>-<id>[_<rollout-id>].jsonl",
                        Agent::Claude => "projects/<project>/<id>.jsonl",
                    }
                ));
            }
        }
        let folder = last.name.trim_end_matches(".jsonl");
        for f in extras {
            let ok = f.id == h.id
                && f.role.extra_kind().is_some_and(|kind| {
                    f.name
                        .strip_prefix(folder)
                        .and_then(|rest| rest.strip_prefix('/'))
                        .and_then(|rest| rest.strip_prefix(kind.folder()))
                        .and_then(|rest| rest.strip_prefix('/'))
                        .is_some_and(|name| is_safe_extra_name(kind, name))
                });
            if !ok {
                return bad(format!(
                    "unsafe file entry `{}` ({}); expected {folder}/subagents/agent-<id>.jsonl|.meta.json or {folder}/tool-results/<name>",
                    f.name, f.id
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` is where the agent keeps the lineage file of session `id`:
/// Codex `sessions/YYYY/MM/DD/<rollout name of id>` or
/// `archived_sessions/<rollout name of id>` (see [`RolloutName`]), Claude
/// `projects/<project>/<id>.jsonl` (the project one safe component).
fn lineage_name_ok(agent: Agent, name: &str, id: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let rollout =
        |file: &str| RolloutName::parse(file).is_some_and(|n| n.thread_id == id && !n.compressed);
    match (agent, parts.as_slice()) {
        (Agent::Codex, [codex::SESSIONS_DIR, y, m, d, file]) => {
            digits(y, 4) && digits(m, 2) && digits(d, 2) && rollout(file)
        }
        (Agent::Codex, [codex::ARCHIVED_DIR, file]) => rollout(file),
        (Agent::Claude, [claude::PROJECTS_DIR, project, file]) => {
            *file == format!("{id}.jsonl")
                && !project.is_empty()
                && *project != "."
                && *project != ".."
                && project
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_part_that_grows_is_packed_as_hashed_and_one_that_changes_is_refused() {
        let env = sample();
        let own = env.session.session_file().clone();
        let writes = |changed: &'static [u8]| {
            let mut calls = 0;
            let own = own.clone();
            move |w: &mut dyn Write| {
                calls += 1;
                w.write_all(&own.bytes)?;
                // The agent appends between the passes (or rewrites).
                if calls > 1 {
                    w.write_all(changed)
                } else {
                    Ok(())
                }
            }
        };
        let part = |write: WriteBytes<'static>| Part {
            role: FileRole::Session,
            id: own.id.clone(),
            name: own.name.clone(),
            write,
        };
        let (agent, id, meta) = (env.session.agent, &env.session.id, &env.meta);
        let mut packed = Vec::new();
        let mut grown = [part(Box::new(writes(b"{\"later\":1}\n")))];
        write_envelope(agent, id, meta, &mut grown, &mut packed).unwrap();
        let read = Envelope::read_from(&packed[..]).unwrap();
        assert_eq!(read.session.session_file().bytes, own.bytes);

        let mut rewritten = [Part {
            write: Box::new({
                let mut calls = 0;
                let bytes = own.bytes.clone();
                move |w: &mut dyn Write| {
                    calls += 1;
                    let mut b = bytes.clone();
                    if calls > 1 {
                        b[0] = b' ';
                    }
                    w.write_all(&b)
                }
            }),
            ..part(Box::new(|_: &mut dyn Write| Ok(())))
        }];
        let err = write_envelope(agent, id, meta, &mut rewritten, Vec::new()).unwrap_err();
        assert!(matches!(err, EnvelopeError::Changed { .. }), "{err}");
        assert!(err.to_string().contains(&own.name), "{err}");
    }

    /// Every file's bytes in payload order.
    fn payload_of(env: &Envelope) -> Vec<u8> {
        let files = env.session.files.iter().map(|f| &f.bytes);
        files
            .chain(env.session.extras.iter().map(|x| &x.bytes))
            .flatten()
            .copied()
            .collect()
    }

    fn sample() -> Envelope {
        Envelope::from_files(
            NativeSession {
                agent: Agent::Codex,
                id: "child".into(),
                files: vec![
                    LineageFile {
                        id: "parent".into(),
                        name: "sessions/2026/01/01/rollout-2026-01-01T00-00-00-parent.jsonl".into(),
                        bytes: b"{\"p\":1}\n".to_vec(),
                    },
                    LineageFile {
                        id: "child".into(),
                        name: "sessions/2026/01/02/rollout-2026-01-02T00-00-00-child.jsonl".into(),
                        bytes: "{\"c\":\"ünï\"}\n".as_bytes().to_vec(),
                    },
                ],
                extras: Vec::new(),
            },
            EnvelopeMeta {
                cwd: Some("/w".into()),
                ..Default::default()
            },
        )
    }

    /// Read decompressed envelope bytes (compressed again) under the
    /// default limit.
    fn verify(raw: &[u8]) -> Result<Envelope, EnvelopeError> {
        Envelope::read_from(zstd::encode_all(raw, 1).unwrap().as_slice())
    }

    fn raw_of(env: &Envelope) -> Vec<u8> {
        let mut buf = Vec::new();
        env.write_to(&mut buf).unwrap();
        zstd::decode_all(buf.as_slice()).unwrap()
    }

    #[test]
    fn round_trips_and_verifies() {
        let env = sample();
        let mut buf = Vec::new();
        env.write_to(&mut buf).unwrap();
        let back = Envelope::read_from(buf.as_slice()).unwrap();
        assert_eq!(back, env);
        let header = verify(&raw_of(&env)).unwrap().header();
        assert_eq!(header.lineage, vec!["parent", "child"]);
        assert_eq!(header.files[0].role, FileRole::Ancestor);
        assert_eq!(header.sha256, env.sha256());
    }

    #[test]
    fn rejects_corruption_tampering_and_newer_versions() {
        let err = Envelope::read_from(&b"garbage"[..]).unwrap_err();
        assert!(matches!(err, EnvelopeError::Corrupt(_)), "{err}");

        let mut raw = raw_of(&sample());
        let last = raw.len() - 2;
        raw[last] ^= 1;
        let err = verify(&raw).unwrap_err();
        assert!(matches!(err, EnvelopeError::HashMismatch { .. }), "{err}");

        let raw = raw_of(&sample());
        let text = String::from_utf8(raw).unwrap();
        let newer = text.replacen("\"version\":1", "\"version\":7", 1);
        let err = verify(newer.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("upgrade baton"), "{err}");

        let evil = text.replacen("sessions/2026/01/01", "../../etc", 1);
        let err = verify(evil.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unsafe file entry"), "{err}");

        let short = &text.as_bytes()[..text.len() - 3];
        assert!(matches!(
            verify(short).unwrap_err(),
            EnvelopeError::Corrupt(_)
        ));
    }

    /// Decompressed envelope bytes for `header` (as JSON) and `payload`.
    fn raw_with(header: &serde_json::Value, payload: &[u8]) -> Vec<u8> {
        let mut raw = serde_json::to_vec(header).unwrap();
        raw.push(b'\n');
        raw.extend_from_slice(payload);
        raw
    }

    fn header_json(env: &Envelope) -> serde_json::Value {
        serde_json::to_value(env.header()).unwrap()
    }

    #[test]
    fn huge_or_overflowing_sizes_are_errors() {
        let env = sample();
        let payload: Vec<u8> = payload_of(&env);
        for sizes in [
            [u64::MAX, 1],
            [u64::MAX / 2 + 1, u64::MAX / 2 + 1],
            [1 << 40, 0],
            [0, MAX_DECOMPRESSED_BYTES],
        ] {
            let mut h = header_json(&env);
            h["files"][0]["bytes"] = sizes[0].into();
            h["files"][1]["bytes"] = sizes[1].into();
            let err = verify(&raw_with(&h, &payload)).unwrap_err();
            assert!(matches!(err, EnvelopeError::TooLarge { .. }), "{err}");
        }
        // Declared sizes under the limit but past the real data: truncated.
        let first = env.session.files[0].bytes.len() as u64;
        let mut h = header_json(&env);
        h["files"][0]["bytes"] = first.into();
        h["files"][1]["bytes"] = (3u64 << 30).into();
        let err = verify(&raw_with(&h, &payload)).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn decompression_is_capped() {
        let mut buf = Vec::new();
        sample().write_to(&mut buf).unwrap();
        let err = Envelope::read_from_limited(buf.as_slice(), 64).unwrap_err();
        assert!(
            matches!(err, EnvelopeError::TooLarge { limit: 64 }),
            "{err}"
        );
        assert!(Envelope::read_from_limited(buf.as_slice(), 1 << 20).is_ok());
    }

    #[test]
    fn names_outside_the_agent_layout_are_rejected() {
        let env = sample();
        let payload: Vec<u8> = payload_of(&env);
        let child = "rollout-2026-01-02T00-00-00-child.jsonl";
        for name in [
            format!("notes/{child}"),
            format!("sessions/2026/01/{child}"),
            format!("sessions/2026/1/02/{child}"),
            format!("projects/-w/{child}"),
            format!("archived_sessions/x/{child}"),
            "sessions/2026/01/02/child.jsonl".to_string(),
            "sessions/2026/01/02/rollout-x-other.jsonl".to_string(),
        ] {
            let mut h = header_json(&env);
            h["files"][1]["name"] = name.clone().into();
            let err = verify(&raw_with(&h, &payload)).unwrap_err();
            assert!(
                err.to_string().contains("unsafe file entry"),
                "{name}: {err}"
            );
        }
        let mut h = header_json(&env);
        h["files"][1]["name"] = format!("archived_sessions/{child}").into();
        assert!(verify(&raw_with(&h, &payload)).is_ok());
        // A revert segment of the thread is its rollout too.
        h["files"][1]["name"] =
            "sessions/2026/01/02/rollout-2026-01-02T00-00-00-child_seg1.jsonl".into();
        assert!(verify(&raw_with(&h, &payload)).is_ok());
        // Claude: only projects/<slug>/<id>.jsonl and the session folder's files.
        let claude = claude_sample();
        let payload: Vec<u8> = payload_of(&claude);
        for (i, name) in [
            (0, "sessions/2026/01/01/s1.jsonl"),
            (0, "projects/a/b/s1.jsonl"),
            (1, "projects/-w/s1/subagents/evil.sh"),
            (1, "projects/-w/other/subagents/agent-a.jsonl"),
            (2, "projects/-w/s1/tool-results/../x"),
            (2, "projects/-w/s1/x.txt"),
        ] {
            let mut h = header_json(&claude);
            h["files"][i]["name"] = name.into();
            let err = verify(&raw_with(&h, &payload)).unwrap_err();
            assert!(
                err.to_string().contains("unsafe file entry"),
                "{name}: {err}"
            );
        }
        let mut h = header_json(&claude);
        h["version"] = 1.into();
        let err = verify(&raw_with(&h, &payload)).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    fn claude_sample() -> Envelope {
        let extra = |kind, name: &str, bytes: &[u8]| SessionExtra {
            kind,
            file_name: name.into(),
            bytes: bytes.to_vec(),
        };
        Envelope::from_files(
            NativeSession {
                agent: Agent::Claude,
                id: "s1".into(),
                files: vec![LineageFile {
                    id: "s1".into(),
                    name: "projects/-w/s1.jsonl".into(),
                    bytes: b"{\"cwd\":\"/w\"}\n".to_vec(),
                }],
                extras: vec![
                    extra(
                        ExtraKind::Subagent,
                        "agent-a.jsonl",
                        b"{\"isSidechain\":true}\n",
                    ),
                    extra(ExtraKind::ToolResult, "toolu_1.txt", b"big output"),
                ],
            },
            EnvelopeMeta::default(),
        )
    }

    #[test]
    fn claude_extras_round_trip_as_version_2() {
        let env = claude_sample();
        let header = verify(&raw_of(&env)).unwrap().header();
        assert_eq!(header.version, 2);
        let roles: Vec<(FileRole, &str)> = header
            .files
            .iter()
            .map(|f| (f.role, f.name.as_str()))
            .collect();
        assert_eq!(
            roles,
            [
                (FileRole::Session, "projects/-w/s1.jsonl"),
                (FileRole::Subagent, "projects/-w/s1/subagents/agent-a.jsonl"),
                (
                    FileRole::ToolResult,
                    "projects/-w/s1/tool-results/toolu_1.txt"
                ),
            ]
        );
        let mut buf = Vec::new();
        env.write_to(&mut buf).unwrap();
        assert_eq!(Envelope::read_from(buf.as_slice()).unwrap(), env);
        // Without extras the envelope stays version 1.
        assert_eq!(sample().header().version, 1);
    }

    proptest::proptest! {
        /// Random headers, sizes and byte flips never panic `verify` or `read_from`.
        #[test]
        fn mutated_envelopes_never_panic(
            sizes in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..4),
            roles in proptest::collection::vec(0u8..4, 0..4),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..8),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let env = claude_sample();
            let mut h = header_json(&env);
            for (i, size) in sizes.iter().enumerate() {
                if let Some(f) = h["files"].get_mut(i) {
                    f["bytes"] = (*size).into();
                }
            }
            for (i, role) in roles.iter().enumerate() {
                if let Some(f) = h["files"].get_mut(i) {
                    f["role"] = ["ancestor", "session", "subagent", "tool-result"][*role as usize].into();
                }
            }
            let mut raw = raw_with(&h, &payload_of(&env));
            for (at, byte) in flips {
                let n = raw.len();
                raw[at % n] = byte;
            }
            raw.truncate(cut % (raw.len() + 1));
            let _ = verify(&raw);
            let _ = Envelope::read_from(zstd::encode_all(raw.as_slice(), 1).unwrap().as_slice());
        }
    }
}
