//! Which model provider Codex uses and where it sends requests, resolved from
//! `<CODEX_HOME>/config.toml` the way Codex does: the base file, then the
//! `--profile` layer (0.169 `<home>/<name>.config.toml`, older
//! `[profiles.<name>]`), then `-c key=value` overrides from the arguments.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Upstream of the built-in Codex `openai` provider.
pub const OPENAI_UPSTREAM: &str = "https://api.openai.com/v1";
/// Codex providers built into 0.169 whose settings cannot be overridden.
const RESERVED_PROVIDERS: [&str; 3] = ["ollama", "lmstudio", "oss"];

/// The Codex provider in use and where it sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexTarget {
    /// Custom provider id, `None` for the built-in `openai`.
    pub provider: Option<String>,
    /// Its base URL.
    pub upstream: String,
}

/// Why the provider could not be resolved; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A config file is not valid TOML.
    #[error("{}: invalid TOML; fix it so Codex can start: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: toml::de::Error,
    },
    /// `--oss` selects a built-in local provider.
    #[error(
        "`baton run codex` cannot capture `--oss` (a built-in local provider); define a custom provider in config.toml instead"
    )]
    Oss,
    /// A built-in provider that cannot be redirected.
    #[error(
        "`baton run codex` cannot redirect the built-in provider `{provider}`; define a custom provider in {} instead",
        file.display()
    )]
    Reserved {
        /// The provider id.
        provider: String,
        /// The base config file.
        file: PathBuf,
    },
    /// `model_provider` names no `[model_providers.<id>]` table.
    #[error(
        "model_provider `{provider}` has no [model_providers.{provider}] table in {}; fix the config or pass --upstream",
        file.display()
    )]
    Undefined {
        /// The provider id.
        provider: String,
        /// The base config file.
        file: PathBuf,
    },
    /// A provider id that a `-c` override cannot address.
    #[error(
        "provider id `{provider}` cannot be overridden with `-c`; rename it to letters, digits, `_` and `-`"
    )]
    BadId {
        /// The provider id.
        provider: String,
    },
    /// The provider table has no `base_url`.
    #[error(
        "[model_providers.{provider}] in {} has no base_url; add one or pass --upstream",
        file.display()
    )]
    NoBaseUrl {
        /// The provider id.
        provider: String,
        /// The base config file.
        file: PathBuf,
    },
}

/// Resolve the effective provider of a Codex run with `agent_args` under
/// `codex_home`.
pub fn resolve_target(
    codex_home: &Path,
    agent_args: &[OsString],
) -> Result<CodexTarget, ConfigError> {
    let overrides = cli_overrides(agent_args);
    let file = codex_home.join("config.toml");
    let mut config = read_toml(&file)?;
    if let Some(profile) = &overrides.profile {
        let layer = read_toml(&codex_home.join(format!("{profile}.config.toml")))?;
        merge(&mut config, layer);
        if let Some(table) = config
            .get("profiles")
            .and_then(|p| p.get(profile.as_str()))
            .cloned()
        {
            merge(&mut config, table);
        }
    }
    for (key, value) in overrides.values {
        set_dotted(&mut config, &key, value);
    }
    if overrides.oss {
        return Err(ConfigError::Oss);
    }
    let provider = config
        .get("model_provider")
        .and_then(toml::Value::as_str)
        .unwrap_or("openai")
        .to_string();
    if provider == "openai" {
        let upstream = config
            .get("openai_base_url")
            .and_then(toml::Value::as_str)
            .unwrap_or(OPENAI_UPSTREAM)
            .to_string();
        return Ok(CodexTarget {
            provider: None,
            upstream,
        });
    }
    let Some(table) = config.get("model_providers").and_then(|p| p.get(&provider)) else {
        return Err(if RESERVED_PROVIDERS.contains(&provider.as_str()) {
            ConfigError::Reserved { provider, file }
        } else {
            ConfigError::Undefined { provider, file }
        });
    };
    if !provider
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ConfigError::BadId { provider });
    }
    let Some(upstream) = table.get("base_url").and_then(toml::Value::as_str) else {
        return Err(ConfigError::NoBaseUrl { provider, file });
    };
    Ok(CodexTarget {
        upstream: upstream.to_string(),
        provider: Some(provider),
    })
}

/// Config-relevant flags found in Codex arguments.
#[derive(Debug, Default, PartialEq)]
struct CliOverrides {
    /// `-c key=value` / `--config key=value`, in order.
    values: Vec<(String, toml::Value)>,
    /// `-p NAME` / `--profile NAME`.
    profile: Option<String>,
    /// `--oss` was given.
    oss: bool,
}

fn cli_overrides(args: &[OsString]) -> CliOverrides {
    let mut out = CliOverrides::default();
    let mut iter = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, rest)) if flag.starts_with("--") => {
                (flag.to_string(), Some(rest.to_string()))
            }
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--" => break,
            "--oss" => out.oss = true,
            "-c" | "--config" => {
                if let Some(kv) = inline.or_else(|| iter.next())
                    && let Some((key, value)) = kv.split_once('=')
                {
                    out.values
                        .push((key.trim().to_string(), parse_value(value.trim())));
                }
            }
            "-p" | "--profile" => {
                if let Some(name) = inline.or_else(|| iter.next()) {
                    out.profile = Some(name);
                }
            }
            _ => {}
        }
    }
    out
}

/// A `-c` value: TOML when it parses, else the raw string (as Codex does).
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// A TOML file as a table; a missing file is an empty one.
fn read_toml(path: &Path) -> Result<toml::Value, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse::<toml::Table>()
            .map(toml::Value::Table)
            .map_err(|source| ConfigError::Invalid {
                path: path.to_path_buf(),
                source,
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Ok(toml::Value::Table(toml::Table::new()))
        }
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Deep-merge `layer` into `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Value, layer: toml::Value) {
    match (base, layer) {
        (toml::Value::Table(base), toml::Value::Table(layer)) => {
            for (key, value) in layer {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, layer) => *base = layer,
    }
}

/// Set `a.b.c = value`, creating (or replacing non-table) parents.
fn set_dotted(config: &mut toml::Value, key: &str, value: toml::Value) {
    let mut node = config;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_table() {
            *node = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(table) = node else {
            return;
        };
        if i + 1 == parts.len() {
            table.insert((*part).to_string(), value);
            return;
        }
        node = table
            .entry((*part).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn custom_provider_from_config_keeps_its_path() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            "model_provider = \"mock\"\n[model_providers.mock]\nbase_url = \"http://10.0.0.1:9/v1\"\n",
        )
        .unwrap();
        let target = resolve_target(home.path(), &os(&["exec", "hi"])).unwrap();
        assert_eq!(
            target,
            CodexTarget {
                provider: Some("mock".into()),
                upstream: "http://10.0.0.1:9/v1".into()
            }
        );
    }

    #[test]
    fn cli_overrides_and_defaults_pick_the_provider() {
        let home = tempfile::tempdir().unwrap();
        // No config: built-in openai.
        let target = resolve_target(home.path(), &os(&["exec", "hi"])).unwrap();
        assert_eq!(target.provider, None);
        assert_eq!(target.upstream, OPENAI_UPSTREAM);
        // `-c model_provider=...` plus a provider table given on the command line.
        let args = os(&[
            "-c",
            "model_provider=\"alt\"",
            "--config=model_providers.alt.base_url=\"https://alt.example/api\"",
            "exec",
            "hi",
        ]);
        let target = resolve_target(home.path(), &args).unwrap();
        assert_eq!(target.provider.as_deref(), Some("alt"));
        assert_eq!(target.upstream, "https://alt.example/api");
        // Arguments after `--` belong to the prompt, not the config.
        let args = os(&["exec", "--", "-c", "model_provider=\"alt\""]);
        assert_eq!(resolve_target(home.path(), &args).unwrap().provider, None);
        // Undefined, reserved and unaddressable providers: errors that say what to do.
        let err = resolve_target(home.path(), &os(&["-c", "model_provider=nope"])).unwrap_err();
        assert!(err.to_string().contains("pass --upstream"), "{err}");
        let err = resolve_target(home.path(), &os(&["--oss", "exec"])).unwrap_err();
        assert!(err.to_string().contains("custom provider"), "{err}");
        let err = resolve_target(home.path(), &os(&["-c", "model_provider=ollama"])).unwrap_err();
        assert!(matches!(err, ConfigError::Reserved { .. }), "{err}");
        let args = os(&[
            "-c",
            "model_provider=\"a b\"",
            "-c",
            "model_providers.\"a b\".base_url=\"http://x\"",
        ]);
        assert!(resolve_target(home.path(), &args).is_err());
    }

    #[test]
    fn profile_layer_overrides_the_base_config() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            "[model_providers.a]\nbase_url = \"http://a/v1\"\n[model_providers.b]\nbase_url = \"http://b/v1\"\n[profiles.old]\nmodel_provider = \"a\"\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join("work.config.toml"),
            "model_provider = \"b\"\n",
        )
        .unwrap();
        let target = resolve_target(home.path(), &os(&["-p", "work", "exec", "x"])).unwrap();
        assert_eq!(target.upstream, "http://b/v1");
        let target = resolve_target(home.path(), &os(&["--profile=old", "exec"])).unwrap();
        assert_eq!(target.upstream, "http://a/v1");
    }

    #[test]
    fn invalid_toml_names_the_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), "model_provider = \n").unwrap();
        let err = resolve_target(home.path(), &[]).unwrap_err();
        assert!(
            err.to_string().contains("config.toml: invalid TOML"),
            "{err}"
        );
    }
}
