//! Secrets never leave the machine: one rule set ([`rules`], data in
//! `rules.toml`) that finds provider keys, private keys, tokens and
//! passwords in transcript bytes, and reversible redaction ([`redact`]) that
//! replaces each with a placeholder only a machine holding the key can turn
//! back into the value. Push, export, envelopes and the server's scan all
//! use it; other exits call [`Redactor::redact`].

pub mod redact;
pub mod rules;

pub use redact::{
    AllowList, Redaction, Redactor, Sealer, SecretsError, VaultEntry, find_secrets, mask,
    value_hash, vault_path,
};
pub use rules::{Finding, RuleSet};
