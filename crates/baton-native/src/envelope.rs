//! The baton envelope: one portable, self-describing file carrying a
//! session's native bytes (its whole lineage), its agent, some metadata and
//! content hashes.
//!
//! Layout (version 1): a single zstd frame whose decompressed content is
//!
//! ```text
//! {"format":"baton-envelope","version":1,"agent":"codex","id":"…","meta":{…},
//!  "lineage":["<oldest ancestor id>",…,"<id>"],
//!  "files":[{"role":"ancestor"|"session","id":"…","name":"sessions/…jsonl","bytes":N,"sha256":"…"},…],
//!  "sha256":"…"}\n
//! <bytes of files[0]><bytes of files[1]>…
//! ```
//!
//! The header is one JSON line; the native files follow back to back, in
//! header order, each exactly `bytes` long. `sha256` (lowercase hex) is the
//! hash of each file's bytes, and the top-level `sha256` is the hash of all
//! file bytes concatenated in order: the envelope's content hash.

use crate::model::Agent;
use crate::rehydrate::{LineageFile, NativeSession, is_safe_id};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// The `format` value of every envelope header.
pub const FORMAT: &str = "baton-envelope";
/// The envelope version this build writes and reads.
pub const VERSION: u32 = 1;

/// Descriptive session metadata carried in the header (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileRole {
    /// A parent the session's history references (Codex `history_base`).
    Ancestor,
    /// The session's own file (always last).
    Session,
}

/// One file entry of the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Ancestor or the session itself.
    pub role: FileRole,
    /// Session id of the file.
    pub id: String,
    /// Path relative to the agent home.
    pub name: String,
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// The envelope's first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written by this build.
    pub version: u32,
    /// Which agent the native bytes belong to.
    pub agent: Agent,
    /// The session id.
    pub id: String,
    /// Descriptive metadata.
    #[serde(default)]
    pub meta: EnvelopeMeta,
    /// Session ids of the files, oldest ancestor first, the session last.
    pub lineage: Vec<String>,
    /// The files, in payload order.
    pub files: Vec<FileEntry>,
    /// SHA-256 of all file bytes concatenated (the content hash).
    pub sha256: String,
}

/// A session packed for transport: native bytes plus metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The native bytes (whole lineage).
    pub session: NativeSession,
    /// Descriptive metadata.
    pub meta: EnvelopeMeta,
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
        "envelope version {found} is not supported (this baton reads version {VERSION}); upgrade baton"
    )]
    Version {
        /// The version found.
        found: u32,
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
    /// Reading or writing failed.
    #[error("envelope I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

impl Envelope {
    /// Pack a session's native files (ancestors first, the session last).
    pub fn from_files(session: NativeSession, meta: EnvelopeMeta) -> Envelope {
        Envelope { session, meta }
    }

    /// The content hash: SHA-256 over all file bytes in order.
    pub fn sha256(&self) -> String {
        let parts: Vec<&[u8]> = self
            .session
            .files
            .iter()
            .map(|f| f.bytes.as_slice())
            .collect();
        sha256_hex(&parts)
    }

    /// The header this envelope is written with.
    pub fn header(&self) -> EnvelopeHeader {
        let last = self.session.files.len().saturating_sub(1);
        EnvelopeHeader {
            format: FORMAT.to_string(),
            version: VERSION,
            agent: self.session.agent,
            id: self.session.id.clone(),
            meta: self.meta.clone(),
            lineage: self.session.files.iter().map(|f| f.id.clone()).collect(),
            files: self
                .session
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| FileEntry {
                    role: if i == last {
                        FileRole::Session
                    } else {
                        FileRole::Ancestor
                    },
                    id: f.id.clone(),
                    name: f.name.clone(),
                    bytes: f.bytes.len() as u64,
                    sha256: sha256_hex(&[&f.bytes]),
                })
                .collect(),
            sha256: self.sha256(),
        }
    }

    /// Write the envelope (zstd-compressed) to `w`.
    pub fn write_to(&self, w: impl Write) -> Result<(), EnvelopeError> {
        let mut enc = zstd::Encoder::new(w, 9)?;
        let mut header = serde_json::to_vec(&self.header())
            .map_err(|e| EnvelopeError::Corrupt(format!("cannot encode header: {e}")))?;
        header.push(b'\n');
        enc.write_all(&header)?;
        for f in &self.session.files {
            enc.write_all(&f.bytes)?;
        }
        enc.finish()?.flush()?;
        Ok(())
    }

    /// Read and verify an envelope: format, version, names, ids and every hash.
    pub fn read_from(mut r: impl Read) -> Result<Envelope, EnvelopeError> {
        let mut compressed = Vec::new();
        r.read_to_end(&mut compressed)?;
        let raw = zstd::decode_all(compressed.as_slice())
            .map_err(|e| EnvelopeError::Corrupt(format!("zstd: {e}")))?;
        let (header, payload) = Self::verify(&raw)?;
        let mut files = Vec::with_capacity(header.files.len());
        let mut pos = 0usize;
        for entry in &header.files {
            let end = pos + entry.bytes as usize;
            files.push(LineageFile {
                id: entry.id.clone(),
                name: entry.name.clone(),
                bytes: payload[pos..end].to_vec(),
            });
            pos = end;
        }
        Ok(Envelope {
            session: NativeSession {
                agent: header.agent,
                id: header.id,
                files,
            },
            meta: header.meta,
        })
    }

    /// Check decompressed envelope bytes without copying the payload: header
    /// format and version, safe ids and names, sizes and every hash. Returns
    /// the header and the payload slice.
    pub fn verify(raw: &[u8]) -> Result<(EnvelopeHeader, &[u8]), EnvelopeError> {
        let nl = memchr::memchr(b'\n', raw)
            .ok_or_else(|| EnvelopeError::Corrupt("no header line".into()))?;
        let probe: serde_json::Value = serde_json::from_slice(&raw[..nl])
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
        if found != u64::from(VERSION) {
            return Err(EnvelopeError::Version {
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        let header: EnvelopeHeader = serde_json::from_value(probe)
            .map_err(|e| EnvelopeError::Corrupt(format!("bad header: {e}")))?;
        let payload = &raw[nl + 1..];
        Self::check_header(&header)?;
        let total: u64 = header.files.iter().map(|f| f.bytes).sum();
        if total != payload.len() as u64 {
            return Err(EnvelopeError::Corrupt(format!(
                "header announces {total} bytes of session data but {} follow",
                payload.len()
            )));
        }
        let mut pos = 0usize;
        for entry in &header.files {
            let end = pos + entry.bytes as usize;
            let actual = sha256_hex(&[&payload[pos..end]]);
            if actual != entry.sha256 {
                return Err(EnvelopeError::HashMismatch {
                    what: entry.name.clone(),
                    expected: entry.sha256.clone(),
                    actual,
                });
            }
            pos = end;
        }
        let actual = sha256_hex(&[payload]);
        if actual != header.sha256 {
            return Err(EnvelopeError::HashMismatch {
                what: "content".into(),
                expected: header.sha256.clone(),
                actual,
            });
        }
        Ok((header, payload))
    }

    fn check_header(h: &EnvelopeHeader) -> Result<(), EnvelopeError> {
        let bad = |m: String| Err(EnvelopeError::Corrupt(m));
        if !is_safe_id(&h.id) {
            return bad(format!("unsafe session id `{}`", h.id));
        }
        let Some(last) = h.files.last() else {
            return bad("no files".into());
        };
        if last.id != h.id || last.role != FileRole::Session {
            return bad("the last file is not the session's own file".into());
        }
        if h.lineage != h.files.iter().map(|f| f.id.clone()).collect::<Vec<_>>() {
            return bad("lineage does not match the files".into());
        }
        if h.agent == Agent::Claude && h.files.len() != 1 {
            return bad("a Claude envelope holds exactly one file".into());
        }
        for f in &h.files {
            let safe_name = !f.name.starts_with('/')
                && !f.name.contains('\\')
                && f.name
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != "..")
                && f.name.ends_with(&format!("{}.jsonl", f.id));
            if !is_safe_id(&f.id) || !safe_name {
                return bad(format!("unsafe file entry `{}` ({})", f.name, f.id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            },
            EnvelopeMeta {
                cwd: Some("/w".into()),
                ..Default::default()
            },
        )
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
        let (header, _) = Envelope::verify(&raw_of(&env)).unwrap();
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
        let err = Envelope::verify(&raw).unwrap_err();
        assert!(matches!(err, EnvelopeError::HashMismatch { .. }), "{err}");

        let raw = raw_of(&sample());
        let text = String::from_utf8(raw).unwrap();
        let newer = text.replacen("\"version\":1", "\"version\":7", 1);
        let err = Envelope::verify(newer.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("upgrade baton"), "{err}");

        let evil = text.replacen("sessions/2026/01/01", "../../etc", 1);
        let err = Envelope::verify(evil.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unsafe file entry"), "{err}");

        let short = &text.as_bytes()[..text.len() - 3];
        assert!(matches!(
            Envelope::verify(short).unwrap_err(),
            EnvelopeError::Corrupt(_)
        ));
    }
}
