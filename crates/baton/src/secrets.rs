//! The CLI's side of keeping secrets on this machine, shared by `push`,
//! `sync`, `export`, `import`, `rehydrate` and `baton secrets`: which key
//! seals placeholders, the allow-list in `BATON_HOME/config.toml`, and
//! redacting or restoring a session as it is read.

use crate::catalog::CONFIG_FILE;
use crate::context::Context;
use anyhow::{Context as _, Result, bail};
use baton_native::jsonl::EditedLines;
use baton_native::rehydrate::{EditedSession, NativeError, SessionExtra, SessionLines};
use baton_secrets::{AllowList, Redactor, RuleSet, vault_path};
use baton_sync::crypto::{self, Keyring};
use baton_sync::state::SyncConfig;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::sync::Arc;

/// File name of the redaction key used when no sync key is configured.
pub const KEY_FILE: &str = "secrets.key";

/// The key that seals placeholders: `sync_key` when given (push, pull), else
/// the sync key file of `baton login --key-file` or `BATON_PASSPHRASE` when
/// set, else
/// `BATON_HOME/secrets.key`, created on first use.
pub fn keyring(ctx: &Context, sync_key: Option<Arc<Keyring>>) -> Result<Arc<Keyring>> {
    if let Some(k) = sync_key {
        return Ok(k);
    }
    // Never prompt here: a passphrase counts only when BATON_PASSPHRASE is set.
    if let Some(mut config) = SyncConfig::load(&ctx.baton_home)?.map(|c| SyncConfig {
        encrypt: false,
        ..c
    }) && let Some(k) = crate::remote::keyring(ctx, &mut config, &Default::default(), false)?
    {
        return Ok(Arc::new(k));
    }
    let path = ctx.baton_home.join(KEY_FILE);
    // Another run may create it at the same moment: then read theirs.
    let key = match crypto::create_key_file(&path) {
        Err(crypto::CryptoError::KeyFileExists(_)) => crypto::read_key_file(&path)?,
        created => created?,
    };
    Ok(Arc::new(Keyring::from_key(key)))
}

/// This machine's redactor: built-in rules, the allow-list, the key of
/// [`keyring`] and the vault in `BATON_HOME/secrets/`.
pub fn redactor(ctx: &Context, sync_key: Option<Arc<Keyring>>) -> Result<Redactor> {
    let key = keyring(ctx, sync_key)?;
    Ok(Redactor::new(
        Box::new(key),
        allow_list(ctx)?,
        Some(vault_path(&ctx.baton_home)),
    )?)
}

fn read_config(ctx: &Context) -> Result<toml::Table> {
    let path = ctx.baton_home.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML; fix or remove it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The allow-list: `[secrets] allow = ["RULE:HASH", …]` in `config.toml`.
pub fn allow_list(ctx: &Context) -> Result<AllowList> {
    let config = read_config(ctx)?;
    let Some(allow) = config.get("secrets").and_then(|s| s.get("allow")) else {
        return Ok(AllowList::new());
    };
    let bad = || {
        anyhow::anyhow!(
            "{}: `secrets.allow` must be a list of \"RULE:HASH\" strings",
            ctx.baton_home.join(CONFIG_FILE).display()
        )
    };
    allow
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
        .collect()
}

/// Add `entry` (`RULE:HASH`, as `baton secrets scan` prints it) to the
/// allow-list; false when it was there already.
pub fn allow(ctx: &Context, entry: &str) -> Result<bool> {
    let Some((rule, hash)) = entry.split_once(':') else {
        bail!("`{entry}` is not RULE:HASH; copy it from `baton secrets scan`");
    };
    if !RuleSet::builtin().rules().iter().any(|r| r.id == rule) {
        bail!("no secret rule is named `{rule}`; copy RULE:HASH from `baton secrets scan`");
    }
    if hash.len() != 12 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{hash}` is not a 12-digit hash; copy RULE:HASH from `baton secrets scan`");
    }
    let mut config = read_config(ctx)?;
    let secrets = config
        .entry("secrets")
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .context("`secrets` in config.toml must be a table")?;
    let list = secrets
        .entry("allow")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .context("`secrets.allow` in config.toml must be a list")?;
    if list.iter().any(|v| v.as_str() == Some(entry)) {
        return Ok(false);
    }
    list.push(toml::Value::String(entry.to_ascii_lowercase()));
    let path = ctx.baton_home.join(CONFIG_FILE);
    baton_native::write::ensure_dir(&ctx.baton_home)?;
    baton_native::write::replace_file(&path, toml::to_string(&config)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// `session` as it leaves through an exit (`convert`, `resume --in`):
/// every secret replaced by its placeholder as it is read, or with
/// `no_redact` as it is, after the `--no-redact` warning that counts them
/// (one pass over its lines).
pub fn for_exit<'a>(
    redactor: &'a Redactor,
    session: &'a dyn SessionLines,
    no_redact: bool,
) -> Result<SecretLines<'a>> {
    if !no_redact {
        return Ok(SecretLines::new(session, redactor, SecretEdit::Redact));
    }
    let mut count = 0;
    for file in 0..session.file_ids().len() {
        let read_err = |e| NativeError::Read {
            path: session.file_path(file),
            source: e,
        };
        baton_native::jsonl::read_raw_lines(session.open(file)?, read_err, |_, line| {
            count += redactor.find(line).len();
            Ok(true)
        })?;
    }
    count += session
        .extras()?
        .iter()
        .map(|extra| redactor.find(&extra.bytes).len())
        .sum::<usize>();
    warn_unredacted(count, &format!("session {}", session.id()));
    Ok(SecretLines::new(session, redactor, SecretEdit::Keep))
}

/// What [`SecretLines`] does to the secrets of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretEdit {
    /// Placeholders this machine's key opens become their original bytes.
    Restore,
    /// Every secret becomes its placeholder.
    Redact,
    /// Nothing changes (`--no-redact`).
    Keep,
}

/// A session whose secrets are edited as it is read, a line at a time
/// (each extra file whole): restored (what `import` and `rehydrate` place,
/// the restore direction of [`RedactedLines`]) or redacted (what `convert`
/// and `resume --in` let out, see [`for_exit`]).
pub struct SecretLines<'a> {
    source: &'a dyn SessionLines,
    redactor: &'a Redactor,
    edit: SecretEdit,
}

impl<'a> SecretLines<'a> {
    fn new(source: &'a dyn SessionLines, redactor: &'a Redactor, edit: SecretEdit) -> Self {
        SecretLines {
            source,
            redactor,
            edit,
        }
    }

    /// `source` with its secrets restored by `redactor`.
    pub fn restored(source: &'a dyn SessionLines, redactor: &'a Redactor) -> Self {
        Self::new(source, redactor, SecretEdit::Restore)
    }

    /// `bytes` edited, `None` when nothing changed.
    fn edited(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>, baton_secrets::SecretsError> {
        let edited = match self.edit {
            SecretEdit::Restore => self.redactor.restore(bytes)?,
            SecretEdit::Redact => self.redactor.redact(bytes)?.bytes,
            SecretEdit::Keep => return Ok(None),
        };
        Ok((edited != bytes).then_some(edited))
    }
}

impl EditedSession for SecretLines<'_> {
    fn source(&self) -> &dyn SessionLines {
        self.source
    }

    fn open_edited(&self, file: usize) -> Result<Box<dyn Read + '_>, NativeError> {
        let source = self.source.open(file)?;
        if self.edit == SecretEdit::Keep {
            return Ok(source);
        }
        let edit = Box::new(move |line: &[u8]| self.edited(line).map_err(std::io::Error::other));
        Ok(Box::new(EditedLines::new(source, edit)))
    }

    fn extras_edited(&self) -> Result<Cow<'_, [SessionExtra]>, NativeError> {
        let extras = self.source.extras()?;
        if self.edit == SecretEdit::Keep {
            return Ok(extras);
        }
        extras
            .iter()
            .map(|x| {
                let bytes = self
                    .edited(&x.bytes)
                    .map_err(|e| NativeError::Invalid(format!("{}: {e}", x.relative_path())))?;
                Ok(SessionExtra {
                    bytes: bytes.unwrap_or_else(|| x.bytes.clone()),
                    ..x.clone()
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Cow::Owned)
    }
}

/// How many secrets `redactor` finds in `paths` (unreadable files count 0).
pub fn count_in_files<'a>(
    redactor: &Redactor,
    paths: impl IntoIterator<Item = &'a std::path::PathBuf>,
) -> usize {
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|bytes| redactor.find(&bytes).len())
        .sum()
}

/// Print the warning of `--no-redact`: how many secrets leave as they are.
pub fn warn_unredacted(count: usize, what: &str) {
    if count > 0 {
        eprintln!(
            "warning: --no-redact: {count} secret(s) in {what} leave this machine as they are (run `baton secrets scan` to list them)"
        );
    }
}

/// A writer that passes on whole lines, each with its secrets replaced
/// (what a line holds never depends on where the reads split it).
pub struct RedactedLines<'a> {
    redactor: &'a Redactor,
    out: &'a mut dyn Write,
    line: Vec<u8>,
}

impl<'a> RedactedLines<'a> {
    /// Redact the lines written into it onto `out`.
    pub fn new(redactor: &'a Redactor, out: &'a mut dyn Write) -> Self {
        RedactedLines {
            redactor,
            out,
            line: Vec::new(),
        }
    }

    /// Redact and write the unfinished last line, if any.
    pub fn finish(mut self) -> Result<()> {
        self.emit()?;
        Ok(self.out.flush()?)
    }

    fn emit(&mut self) -> std::io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        let redacted = self
            .redactor
            .redact(&self.line)
            .map_err(std::io::Error::other)?;
        self.line.clear();
        self.out.write_all(&redacted.bytes)
    }
}

impl Write for RedactedLines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..=end]);
            self.emit()?;
            rest = &rest[end + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
