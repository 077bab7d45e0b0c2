//! End-to-end encryption of synced streams.
//!
//! With encryption on, the server only ever sees ciphertext. A session's
//! native bytes are still pushed as append-only ranges: every push of a
//! plaintext range becomes one independently sealed **frame**, and a server
//! stream is simply the concatenation of frames. The client remembers, per
//! stream, which plaintext length corresponds to which ciphertext length (see
//! [`crate::state`]), so later pushes send only new bytes and the server's
//! prefix hashes (over ciphertext) keep working for retries and divergence.
//!
//! Frame layout (all integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `BTE1` |
//! | 1 | key kind: 0 = key file, 1 = passphrase (Argon2id) |
//! | 16 | Argon2id salt (zeros for a key file) |
//! | 8 | plaintext offset of this frame within the stream |
//! | 24 | XChaCha20-Poly1305 nonce (random) |
//! | 4 | ciphertext length `n` (tag included) |
//! | n | XChaCha20-Poly1305 ciphertext of the zstd-compressed plaintext |
//!
//! The whole header and the stream name are authenticated (AEAD associated
//! data), so frames cannot be reordered, moved to another stream or edited
//! without decryption failing. The session id is deliberately *not* bound, so
//! a diverged copy that shares its prefix with the original on the server
//! (same blobs) still decrypts.
//!
//! Each machine derives its passphrase key with its own random salt, stored
//! in `sync.json`; a frame names the salt it was sealed with, so any machine
//! knowing the passphrase can open it (one Argon2id run per distinct salt).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Length of a symmetric key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an Argon2id salt in bytes.
pub const SALT_LEN: usize = 16;
const MAGIC: &[u8; 4] = b"BTE1";
const NONCE_LEN: usize = 24;
/// Size of a frame header in bytes.
pub const FRAME_HEADER_LEN: usize = 4 + 1 + SALT_LEN + 8 + NONCE_LEN + 4;
const KIND_KEY_FILE: u8 = 0;
const KIND_PASSPHRASE: u8 = 1;
/// Refuse frames claiming more ciphertext than this (corrupt length fields).
const MAX_FRAME_CIPHERTEXT: usize = 1 << 30;

/// What can go wrong while encrypting or decrypting.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key file could not be read or written.
    #[error(
        "cannot use key file {path}: {source}; check the path, or create a new key with `baton login URL TOKEN --encrypt --key-file PATH`"
    )]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error(
        "key file {0} must hold exactly 64 hexadecimal characters (a 32-byte key); copy it unchanged from the machine that created it"
    )]
    BadKeyFile(PathBuf),
    /// Refused to overwrite an existing key file.
    #[error(
        "key file {0} already exists; baton never overwrites a key (pass it as --key-file to use it)"
    )]
    KeyFileExists(PathBuf),
    /// Argon2id failed.
    #[error("cannot derive a key from the passphrase: {0}")]
    Kdf(String),
    /// Sealing failed (should not happen with a valid key).
    #[error("cannot encrypt stream `{0}`")]
    Seal(String),
    /// The bytes are not a baton frame.
    #[error(
        "stream `{stream}` byte {offset} is not a baton encrypted frame; the server copy is damaged or was not encrypted by baton"
    )]
    NotAFrame {
        /// Stream name.
        stream: String,
        /// Ciphertext offset of the bad frame.
        offset: u64,
    },
    /// The frame was sealed with the other kind of key.
    #[error(
        "stream `{stream}` was encrypted with a {needed}, but this machine is configured with a {have}; use the same kind of key on every machine"
    )]
    KindMismatch {
        /// Stream name.
        stream: String,
        /// Key kind the frame needs.
        needed: &'static str,
        /// Key kind configured here.
        have: &'static str,
    },
    /// Authentication failed.
    #[error(
        "cannot decrypt stream `{stream}` at byte {offset}: wrong passphrase or key file, or the server copy was tampered with; set the same BATON_PASSPHRASE or --key-file as on the machine that pushed it"
    )]
    Open {
        /// Stream name.
        stream: String,
        /// Ciphertext offset of the frame.
        offset: u64,
    },
    /// A frame sits at the wrong plaintext position.
    #[error(
        "stream `{stream}` frame at byte {offset} claims plaintext offset {claimed}, expected {expected}: frames were reordered or tampered with"
    )]
    OutOfOrder {
        /// Stream name.
        stream: String,
        /// Ciphertext offset of the frame.
        offset: u64,
        /// Plaintext offset written in the frame.
        claimed: u64,
        /// Plaintext offset the reader was at.
        expected: u64,
    },
}

/// Where the key comes from.
enum Secret {
    /// Argon2id over this passphrase, salted per frame.
    Passphrase(String),
    /// A raw 32-byte key.
    Key([u8; KEY_LEN]),
}

/// The key material of one machine: seals new frames and opens frames sealed
/// by any machine sharing the passphrase or key file.
pub struct Keyring {
    secret: Secret,
    salt: [u8; SALT_LEN],
    derived: Mutex<HashMap<[u8; SALT_LEN], [u8; KEY_LEN]>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.secret {
            Secret::Passphrase(_) => "Keyring(passphrase)",
            Secret::Key(_) => "Keyring(key file)",
        })
    }
}

/// One decrypted frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Plaintext bytes.
    pub plain: Vec<u8>,
    /// Size of the sealed frame on the server (header included).
    pub sealed_len: u64,
}

impl Keyring {
    /// A keyring deriving keys from `passphrase`; `salt` is this machine's
    /// salt for new frames (see [`new_salt`]).
    pub fn from_passphrase(passphrase: String, salt: [u8; SALT_LEN]) -> Self {
        Self {
            secret: Secret::Passphrase(passphrase),
            salt,
            derived: Mutex::new(HashMap::new()),
        }
    }

    /// A keyring using a raw key (as read by [`read_key_file`]).
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        Self {
            secret: Secret::Key(key),
            salt: [0; SALT_LEN],
            derived: Mutex::new(HashMap::new()),
        }
    }

    fn kind(&self) -> u8 {
        match self.secret {
            Secret::Passphrase(_) => KIND_PASSPHRASE,
            Secret::Key(_) => KIND_KEY_FILE,
        }
    }

    fn key_for(&self, salt: &[u8; SALT_LEN]) -> Result<[u8; KEY_LEN], CryptoError> {
        match &self.secret {
            Secret::Key(key) => Ok(*key),
            Secret::Passphrase(pass) => {
                let mut cache = self
                    .derived
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(key) = cache.get(salt) {
                    return Ok(*key);
                }
                let mut key = [0u8; KEY_LEN];
                argon2::Argon2::default()
                    .hash_password_into(pass.as_bytes(), salt, &mut key)
                    .map_err(|e| CryptoError::Kdf(e.to_string()))?;
                cache.insert(*salt, key);
                Ok(key)
            }
        }
    }

    /// Seal `plain`, which starts at plaintext offset `plain_offset` of
    /// stream `stream`, into one frame.
    pub fn seal(
        &self,
        stream: &str,
        plain_offset: u64,
        plain: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self.key_for(&self.salt)?;
        let compressed =
            zstd::bulk::compress(plain, 3).map_err(|_| CryptoError::Seal(stream.to_owned()))?;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ct_len = compressed.len() + 16;
        let ct_len_u32 = u32::try_from(ct_len).map_err(|_| CryptoError::Seal(stream.to_owned()))?;
        let mut header = Vec::with_capacity(FRAME_HEADER_LEN + ct_len);
        header.extend_from_slice(MAGIC);
        header.push(self.kind());
        header.extend_from_slice(&self.salt);
        header.extend_from_slice(&plain_offset.to_be_bytes());
        header.extend_from_slice(&nonce);
        header.extend_from_slice(&ct_len_u32.to_be_bytes());
        let aad = associated_data(&header, stream);
        let cipher = XChaCha20Poly1305::new((&key).into());
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &compressed,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Seal(stream.to_owned()))?;
        header.extend_from_slice(&ct);
        Ok(header)
    }

    /// Open every complete frame in `sealed`, which starts at ciphertext
    /// offset `sealed_offset` and plaintext offset `plain_offset` of stream
    /// `stream`. A trailing partial frame is an error: the server stores
    /// whole appends only.
    pub fn open_frames(
        &self,
        stream: &str,
        sealed: &[u8],
        sealed_offset: u64,
        plain_offset: u64,
    ) -> Result<Vec<Frame>, CryptoError> {
        let mut frames = Vec::new();
        let mut pos = 0usize;
        let mut plain_at = plain_offset;
        while pos < sealed.len() {
            let at = sealed_offset + pos as u64;
            let not_a_frame = || CryptoError::NotAFrame {
                stream: stream.to_owned(),
                offset: at,
            };
            let rest = &sealed[pos..];
            let Some(frame_len) = frame_len(rest).filter(|&n| n <= rest.len()) else {
                return Err(not_a_frame());
            };
            let ct_len = frame_len - FRAME_HEADER_LEN;
            let kind = rest[4];
            let mut salt = [0u8; SALT_LEN];
            salt.copy_from_slice(&rest[5..5 + SALT_LEN]);
            let mut off = [0u8; 8];
            off.copy_from_slice(&rest[5 + SALT_LEN..13 + SALT_LEN]);
            let claimed = u64::from_be_bytes(off);
            let nonce = &rest[13 + SALT_LEN..13 + SALT_LEN + NONCE_LEN];
            if kind != KIND_KEY_FILE && kind != KIND_PASSPHRASE {
                return Err(not_a_frame());
            }
            if kind != self.kind() {
                let name = |k| {
                    if k == KIND_KEY_FILE {
                        "key file"
                    } else {
                        "passphrase"
                    }
                };
                return Err(CryptoError::KindMismatch {
                    stream: stream.to_owned(),
                    needed: name(kind),
                    have: name(self.kind()),
                });
            }
            if claimed != plain_at {
                return Err(CryptoError::OutOfOrder {
                    stream: stream.to_owned(),
                    offset: at,
                    claimed,
                    expected: plain_at,
                });
            }
            let header = &rest[..FRAME_HEADER_LEN];
            let ct = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + ct_len];
            let key = self.key_for(&salt)?;
            let cipher = XChaCha20Poly1305::new((&key).into());
            let open_err = || CryptoError::Open {
                stream: stream.to_owned(),
                offset: at,
            };
            let compressed = cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: &associated_data(header, stream),
                    },
                )
                .map_err(|_| open_err())?;
            let plain = zstd::stream::decode_all(compressed.as_slice()).map_err(|_| open_err())?;
            let sealed_len = (FRAME_HEADER_LEN + ct_len) as u64;
            plain_at += plain.len() as u64;
            pos += FRAME_HEADER_LEN + ct_len;
            frames.push(Frame { plain, sealed_len });
        }
        Ok(frames)
    }
}

/// The size of the frame whose header starts `bytes` (header included);
/// `None` when `bytes` do not start with a frame header, or it claims more
/// ciphertext than any frame holds.
pub fn frame_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..FRAME_HEADER_LEN)?;
    if &header[..4] != MAGIC {
        return None;
    }
    let len: [u8; 4] = header[FRAME_HEADER_LEN - 4..].try_into().ok()?;
    let ct_len = u32::from_be_bytes(len) as usize;
    (ct_len <= MAX_FRAME_CIPHERTEXT).then_some(FRAME_HEADER_LEN + ct_len)
}

/// Stream name bound into the frames that seal secret values.
const SECRET_STREAM: &str = "baton-secret";

/// Secret values in placeholders are sealed as one frame each, with the
/// same key as synced streams: a machine holding the key restores them.
impl baton_secrets::Sealer for Keyring {
    fn seal(&self, value: &[u8]) -> Option<Vec<u8>> {
        Keyring::seal(self, SECRET_STREAM, 0, value).ok()
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let mut frames = self.open_frames(SECRET_STREAM, sealed, 0, 0).ok()?;
        (frames.len() == 1).then(|| frames.remove(0).plain)
    }
}

fn associated_data(header: &[u8], stream: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + stream.len() + 1);
    aad.extend_from_slice(header);
    aad.push(0);
    aad.extend_from_slice(stream.as_bytes());
    aad
}

/// A fresh random salt for this machine's passphrase-derived key.
pub fn new_salt() -> [u8; SALT_LEN] {
    rand::random()
}

/// Read a key file: 64 hex characters (surrounding whitespace ignored).
pub fn read_key_file(path: &Path) -> Result<[u8; KEY_LEN], CryptoError> {
    let text = std::fs::read_to_string(path).map_err(|source| CryptoError::KeyFileIo {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = hex::decode(text.trim()).map_err(|_| CryptoError::BadKeyFile(path.into()))?;
    bytes
        .try_into()
        .map_err(|_| CryptoError::BadKeyFile(path.into()))
}

/// Create a new key file holding a random key (hex, mode 0600). Never
/// overwrites an existing file.
pub fn create_key_file(path: &Path) -> Result<[u8; KEY_LEN], CryptoError> {
    let key: [u8; KEY_LEN] = rand::random();
    let text = format!("{}\n", hex::encode(key));
    use baton_native::write::{WriteError, WriteOutcome, write_new_file_mode};
    match write_new_file_mode(path, text.as_bytes(), 0o600) {
        Ok(WriteOutcome::Created) => Ok(key),
        Ok(_) | Err(WriteError::Conflict { .. }) => Err(CryptoError::KeyFileExists(path.into())),
        Err(WriteError::CreateDir { source, .. } | WriteError::Io { source, .. }) => {
            Err(CryptoError::KeyFileIo {
                path: path.into(),
                source,
            })
        }
        Err(e @ WriteError::Locked { .. }) => Err(CryptoError::KeyFileIo {
            path: path.into(),
            source: std::io::Error::other(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_all(ring: &Keyring, stream: &str, sealed: &[u8]) -> Vec<u8> {
        ring.open_frames(stream, sealed, 0, 0)
            .expect("open")
            .into_iter()
            .flat_map(|f| f.plain)
            .collect()
    }

    #[test]
    fn frames_concatenate_and_round_trip_across_machines() {
        let a = Keyring::from_passphrase("correct horse".into(), new_salt());
        let b = Keyring::from_passphrase("correct horse".into(), new_salt());
        let mut sealed = a.seal("main", 0, b"hello ").unwrap();
        sealed.extend(b.seal("main", 6, b"world\n").unwrap());
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(open_all(&a, "main", &sealed), b"hello world\n");
        assert_eq!(open_all(&b, "main", &sealed), b"hello world\n");
    }

    #[test]
    fn wrong_key_stream_or_order_is_refused() {
        let a = Keyring::from_key([7; KEY_LEN]);
        let sealed = a.seal("main", 0, b"secret").unwrap();
        let other = Keyring::from_key([8; KEY_LEN]);
        assert!(matches!(
            other.open_frames("main", &sealed, 0, 0),
            Err(CryptoError::Open { .. })
        ));
        assert!(matches!(
            a.open_frames("subagents/x.jsonl", &sealed, 0, 0),
            Err(CryptoError::Open { .. })
        ));
        assert!(matches!(
            a.open_frames("main", &sealed, 0, 3),
            Err(CryptoError::OutOfOrder { .. })
        ));
        let pass = Keyring::from_passphrase("p".into(), new_salt());
        assert!(matches!(
            pass.open_frames("main", &sealed, 0, 0),
            Err(CryptoError::KindMismatch { .. })
        ));
        assert!(matches!(
            a.open_frames("main", b"plain text", 0, 0),
            Err(CryptoError::NotAFrame { .. })
        ));
    }

    #[test]
    fn key_files_are_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = create_key_file(&path).unwrap();
        assert_eq!(read_key_file(&path).unwrap(), key);
        assert!(matches!(
            create_key_file(&path),
            Err(CryptoError::KeyFileExists(_))
        ));
        std::fs::write(&path, "nothex").unwrap();
        assert!(matches!(
            read_key_file(&path),
            Err(CryptoError::BadKeyFile(_))
        ));
    }
}
