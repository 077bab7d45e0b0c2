//! Reversible redaction: every secret becomes a placeholder
//! `‹secret:RULE:SEALED›` that keeps its JSON string valid (only ASCII
//! letters, digits, `:` and `-` between two non-ASCII quotes), where `SEALED`
//! is the value encrypted by a [`Sealer`] (lowercase hex). A machine holding
//! the key turns placeholders back into the exact original bytes
//! ([`Redactor::restore`]); anywhere else they stay.
//!
//! The same value always gets the same placeholder: the vault (a JSON-lines
//! file of placeholders, `BATON_HOME/secrets/vault.jsonl`, holding no value in
//! the clear) remembers every placeholder made or restored. Redaction works
//! line by line, so redacting a file equals redacting its lines one append
//! at a time; incremental pushes keep their prefix hashes.

use crate::rules::{Finding, RuleSet};
use baton_native::write::{Owned, ensure_dir, open_owned};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Opening of every placeholder.
pub const PLACEHOLDER_OPEN: &str = "‹secret:";
/// Closing of every placeholder.
pub const PLACEHOLDER_CLOSE: &str = "›";

/// What can go wrong while redacting or using the vault.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The sealer refused a value.
    #[error("cannot encrypt a secret found by rule `{0}`; check the key file or passphrase")]
    Seal(String),
    /// The vault could not be read or written.
    #[error("cannot use the secrets vault {path}: {source}; check its permissions")]
    Vault {
        /// The vault file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Encrypts secret values for placeholders and decrypts them back; baton's
/// sync `Keyring` is one.
pub trait Sealer: Send + Sync {
    /// `value` encrypted, or `None` when it cannot be.
    fn seal(&self, value: &[u8]) -> Option<Vec<u8>>;
    /// The value `sealed` holds, or `None` when this key did not seal it.
    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>>;
}

impl<S: Sealer + ?Sized> Sealer for std::sync::Arc<S> {
    fn seal(&self, value: &[u8]) -> Option<Vec<u8>> {
        (**self).seal(value)
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        (**self).open(sealed)
    }
}

/// One vault line: a placeholder and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultEntry {
    /// Rule id.
    pub rule: String,
    /// The placeholder (holding the encrypted value).
    pub placeholder: String,
}

/// Result of [`Redactor::redact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// The bytes with every secret replaced.
    pub bytes: Vec<u8>,
    /// One entry per secret replaced, in order (the same placeholder may
    /// appear more than once).
    pub entries: Vec<VaultEntry>,
}

/// Allow-list entries `RULE:HASH` (see [`value_hash`]) of known false positives.
pub type AllowList = BTreeSet<String>;

/// Short hash of a value naming it in allow-list entries and scan reports
/// (12 hex digits of its SHA-256); never leaves the machine in a placeholder.
pub fn value_hash(value: &[u8]) -> String {
    hex::encode(&Sha256::digest(value)[..6])
}

/// `value` masked for display: at most its first fifth (up to 4 bytes) and
/// its length.
pub fn mask(value: &[u8]) -> String {
    let shown = (value.len() / 5).min(4);
    format!(
        "{}…({} bytes)",
        String::from_utf8_lossy(&value[..shown]),
        value.len()
    )
}

/// True when `value` contains a placeholder (already redacted).
pub fn contains_placeholder(value: &[u8]) -> bool {
    memchr::memmem::find(value, PLACEHOLDER_OPEN.as_bytes()).is_some()
}

/// Redacts and restores with one rule set, allow-list, key and vault.
pub struct Redactor {
    rules: &'static RuleSet,
    allow: AllowList,
    sealer: Box<dyn Sealer>,
    vault: Option<PathBuf>,
    known: Mutex<HashMap<Vec<u8>, VaultEntry>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor with the built-in rules and `sealer`, remembering
    /// placeholders in the vault file `vault` (loaded now; `None` keeps them
    /// in memory only).
    pub fn new(
        sealer: Box<dyn Sealer>,
        allow: AllowList,
        vault: Option<PathBuf>,
    ) -> Result<Redactor, SecretsError> {
        let mut known = HashMap::new();
        if let Some(path) = &vault {
            let text = match std::fs::read(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(source) => {
                    return Err(SecretsError::Vault {
                        path: path.clone(),
                        source,
                    });
                }
            };
            for line in text.split(|&b| b == b'\n') {
                let Ok(entry) = serde_json::from_slice::<VaultEntry>(line) else {
                    continue;
                };
                if let Some(value) = open_placeholder(&*sealer, entry.placeholder.as_bytes()) {
                    known.insert(value, entry);
                }
            }
        }
        Ok(Redactor {
            rules: RuleSet::builtin(),
            allow,
            sealer,
            vault,
            known: Mutex::new(known),
        })
    }

    /// A redactor whose placeholders nobody can open (`‹secret:RULE:›`):
    /// for the server, which holds no key, redacting what an old client
    /// pushed.
    pub fn one_way() -> Redactor {
        struct Forget;
        impl Sealer for Forget {
            fn seal(&self, _: &[u8]) -> Option<Vec<u8>> {
                Some(Vec::new())
            }
            fn open(&self, _: &[u8]) -> Option<Vec<u8>> {
                None
            }
        }
        Redactor {
            rules: RuleSet::builtin(),
            allow: AllowList::new(),
            sealer: Box::new(Forget),
            vault: None,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The secrets in `bytes` this redactor would replace (allow-listed
    /// values and existing placeholders excluded).
    pub fn find(&self, bytes: &[u8]) -> Vec<Finding> {
        find_secrets(bytes, &self.allow)
    }

    /// Replace every secret in `bytes` by its placeholder. This is the one
    /// redaction function of every exit (push, export, envelopes, share
    /// links, convert). New placeholders are added to the vault.
    pub fn redact(&self, bytes: &[u8]) -> Result<Redaction, SecretsError> {
        let findings = self.find(bytes);
        let mut out = Vec::with_capacity(bytes.len());
        let mut entries = Vec::with_capacity(findings.len());
        let mut fresh = Vec::new();
        let mut at = 0;
        {
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            for f in findings {
                let value = &bytes[f.range.clone()];
                let rule = &self.rules.rules()[f.rule].id;
                let entry = match known.get(value) {
                    Some(e) => e.clone(),
                    None => {
                        let sealed = self
                            .sealer
                            .seal(value)
                            .ok_or_else(|| SecretsError::Seal(rule.clone()))?;
                        let entry = VaultEntry {
                            rule: rule.clone(),
                            placeholder: format!(
                                "{PLACEHOLDER_OPEN}{rule}:{}{PLACEHOLDER_CLOSE}",
                                hex::encode(sealed)
                            ),
                        };
                        known.insert(value.to_vec(), entry.clone());
                        fresh.push(entry.clone());
                        entry
                    }
                };
                out.extend_from_slice(&bytes[at..f.range.start]);
                out.extend_from_slice(entry.placeholder.as_bytes());
                at = f.range.end;
                entries.push(entry);
            }
        }
        out.extend_from_slice(&bytes[at..]);
        self.remember(&fresh)?;
        Ok(Redaction {
            bytes: out,
            entries,
        })
    }

    /// `text` with its secrets replaced, judged as the JSON string it is in
    /// a transcript (so a key block spanning lines is one secret): for
    /// titles, prompts and rendered messages.
    pub fn redact_text(&self, text: &str) -> Result<String, SecretsError> {
        let json = serde_json::to_vec(text).expect("a string serializes");
        let red = self.redact(&json)?;
        if red.entries.is_empty() {
            return Ok(text.to_owned());
        }
        Ok(serde_json::from_slice(&red.bytes).expect("placeholders keep JSON strings valid"))
    }

    /// `bytes` with every placeholder this key can open replaced by its
    /// original value (others stay as they are); restored placeholders are
    /// remembered so this machine reuses them.
    pub fn restore(&self, bytes: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let open = PLACEHOLDER_OPEN.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut fresh = Vec::new();
        let mut at = 0;
        for start in memchr::memmem::find_iter(bytes, open) {
            if start < at {
                continue;
            }
            let Some((len, rule)) = parse_placeholder(&bytes[start..]) else {
                continue;
            };
            let placeholder = &bytes[start..start + len];
            let Some(value) = open_placeholder(&*self.sealer, placeholder) else {
                continue;
            };
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(&value);
            at = start + len;
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            known.entry(value).or_insert_with(|| {
                let entry = VaultEntry {
                    rule: rule.to_owned(),
                    placeholder: String::from_utf8_lossy(placeholder).into_owned(),
                };
                fresh.push(entry.clone());
                entry
            });
        }
        out.extend_from_slice(&bytes[at..]);
        self.remember(&fresh)?;
        Ok(out)
    }

    /// Append `entries` to the vault file.
    fn remember(&self, entries: &[VaultEntry]) -> Result<(), SecretsError> {
        let Some(path) = self.vault.as_deref().filter(|_| !entries.is_empty()) else {
            return Ok(());
        };
        let mut text = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut text, e).expect("vault entries serialize");
            text.push(b'\n');
        }
        let io = |source| SecretsError::Vault {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            ensure_dir(dir).map_err(|e| io(std::io::Error::other(e)))?;
        }
        open_owned(path, Owned::Append, 0o600)
            .and_then(|mut f| f.write_all(&text))
            .map_err(io)
    }
}

/// The secrets the built-in rules find in `bytes`, minus allow-listed ones
/// (a value allowed under one rule is allowed by every rule).
pub fn find_secrets(bytes: &[u8], allow: &AllowList) -> Vec<Finding> {
    let rules = RuleSet::builtin();
    if allow.is_empty() {
        return rules.find(bytes, &|_, _| false);
    }
    let hashes: BTreeSet<&str> = allow
        .iter()
        .filter_map(|e| e.rsplit_once(':').map(|(_, h)| h))
        .collect();
    rules.find(bytes, &|_, value| {
        hashes.contains(value_hash(value).as_str())
    })
}

/// Length and rule of the placeholder `bytes` starts with.
fn parse_placeholder(bytes: &[u8]) -> Option<(usize, &str)> {
    let rest = bytes.strip_prefix(PLACEHOLDER_OPEN.as_bytes())?;
    let rule_len = rest
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))?;
    let rule = std::str::from_utf8(&rest[..rule_len]).ok()?;
    let rest = rest[rule_len..].strip_prefix(b":")?;
    let hex_len = rest
        .iter()
        .position(|&b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))?;
    rest[hex_len..]
        .starts_with(PLACEHOLDER_CLOSE.as_bytes())
        .then_some((
            PLACEHOLDER_OPEN.len() + rule_len + 1 + hex_len + PLACEHOLDER_CLOSE.len(),
            rule,
        ))
}

/// The value inside a whole placeholder, if `sealer` can open it.
fn open_placeholder(sealer: &dyn Sealer, placeholder: &[u8]) -> Option<Vec<u8>> {
    let (len, rule) = parse_placeholder(placeholder)?;
    if len != placeholder.len() {
        return None;
    }
    let hex_start = PLACEHOLDER_OPEN.len() + rule.len() + 1;
    let hex_end = placeholder.len() - PLACEHOLDER_CLOSE.len();
    sealer.open(&hex::decode(&placeholder[hex_start..hex_end]).ok()?)
}

/// The vault file inside `baton_home`.
pub fn vault_path(baton_home: &Path) -> PathBuf {
    baton_home.join("secrets").join("vault.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XOR with a byte and a check byte: enough to test placeholders.
    struct Xor(u8);
    impl Sealer for Xor {
        fn seal(&self, value: &[u8]) -> Option<Vec<u8>> {
            let mut v: Vec<u8> = value.iter().map(|b| b ^ self.0).collect();
            v.push(self.0);
            Some(v)
        }
        fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
            let (check, body) = sealed.split_last()?;
            (*check == self.0).then(|| body.iter().map(|b| b ^ self.0).collect())
        }
    }

    fn lines() -> Vec<u8> {
        let rules = RuleSet::builtin();
        let mut text = Vec::new();
        for spec in rules.rules() {
            for ex in &spec.examples {
                let line = serde_json::json!({"type": "tool", "output": ex});
                text.extend(serde_json::to_vec(&line).unwrap());
                text.push(b'\n');
            }
        }
        text
    }

    #[test]
    fn redaction_keeps_json_valid_and_restores_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault_path(dir.path());
        let r = Redactor::new(Box::new(Xor(7)), AllowList::new(), Some(vault.clone())).unwrap();
        let original = lines();
        let red = r.redact(&original).unwrap();
        assert!(red.entries.len() >= RuleSet::builtin().rules().len());
        for line in red.bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line).expect("still JSON");
        }
        assert!(find_secrets(&red.bytes, &AllowList::new()).is_empty());
        assert_eq!(r.restore(&red.bytes).unwrap(), original);
        // Another key leaves the placeholders.
        let other = Redactor::new(Box::new(Xor(9)), AllowList::new(), None).unwrap();
        assert_eq!(other.restore(&red.bytes).unwrap(), red.bytes);
        // The vault makes placeholders stable across runs.
        let again = Redactor::new(Box::new(Xor(7)), AllowList::new(), Some(vault)).unwrap();
        assert_eq!(again.redact(&original).unwrap().bytes, red.bytes);
    }

    #[test]
    fn redacting_line_by_line_equals_redacting_the_whole() {
        let r = Redactor::new(Box::new(Xor(3)), AllowList::new(), None).unwrap();
        let original = lines();
        let whole = r.redact(&original).unwrap().bytes;
        let mut pieces = Vec::new();
        for line in original.split_inclusive(|&b| b == b'\n') {
            pieces.extend(r.redact(line).unwrap().bytes);
        }
        assert_eq!(pieces, whole);
    }

    #[test]
    fn allow_listed_values_stay() {
        let spec = &RuleSet::builtin().rules()[0];
        let text = spec.examples[0].as_bytes();
        let f = &find_secrets(text, &AllowList::new())[0];
        let entry = format!("{}:{}", spec.id, value_hash(&text[f.range.clone()]));
        let r = Redactor::new(Box::new(Xor(1)), [entry].into(), None).unwrap();
        assert_eq!(r.redact(text).unwrap().bytes, text);
        assert!(mask(&text[f.range.clone()]).ends_with(&format!("({} bytes)", f.range.len())));
    }
}
