//! `baton secrets`: list the secrets in catalogued sessions (never printing
//! a value) and record false positives in the allow-list.

use crate::context::Context;
use crate::output;
use crate::remote::select_rows;
use anyhow::Result;
use baton_secrets::{RuleSet, find_secrets, mask, value_hash};
use serde::Serialize;

/// Options of `baton secrets`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SecretsCommand {
    /// List the secrets the rules find in sessions: session, file, line,
    /// rule and a masked value (values are never printed).
    #[command(group(clap::ArgGroup::new("sessions").required(true).args(["ids", "all"])))]
    Scan {
        /// Session ids or unique prefixes.
        #[arg(value_name = "ID")]
        ids: Vec<String>,
        /// Every catalogued session.
        #[arg(long)]
        all: bool,
        /// Print `{"sessions_scanned","findings":[{"session","file","line","rule","hash","allow","masked"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Record a false positive (`RULE:HASH` as `scan` prints it) in
    /// `BATON_HOME/config.toml`; that value is then never redacted.
    Allow {
        /// The finding to allow, e.g. `secret-assignment:3f9a0c12d4e5`.
        #[arg(value_name = "RULE:HASH")]
        entry: String,
    },
}

/// One secret found by `baton secrets scan`.
#[derive(Debug, Serialize)]
struct Finding {
    /// Session id.
    session: String,
    /// Native file it is in.
    file: String,
    /// 1-based line (one native record) of the file.
    line: usize,
    /// Rule id.
    rule: String,
    /// Short hash of the value.
    hash: String,
    /// The allow-list entry that would accept it (`RULE:HASH`).
    allow: String,
    /// The value masked.
    masked: String,
}

#[derive(Serialize)]
struct ScanJson<'a> {
    sessions_scanned: usize,
    findings: &'a [Finding],
}

/// Run `baton secrets`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    match args.command {
        SecretsCommand::Scan { ids, all: _, json } => scan(ctx, &ids, json),
        SecretsCommand::Allow { entry } => {
            let added = crate::secrets::allow(ctx, &entry)?;
            let verb = if added { "allowed" } else { "already allowed" };
            println!("{verb}: {entry} (in {})", crate::catalog::CONFIG_FILE);
            Ok(())
        }
    }
}

fn scan(ctx: &Context, ids: &[String], json: bool) -> Result<()> {
    let catalog = crate::catalog::open_fresh(ctx)?;
    let rows = select_rows(&catalog, ids)?;
    let allow = crate::secrets::allow_list(ctx)?;
    let rules = RuleSet::builtin();
    let mut findings = Vec::new();
    for row in &rows {
        for file in &row.paths {
            let Ok(bytes) = std::fs::read(file) else {
                continue;
            };
            let mut line = 1;
            let mut counted = 0;
            for f in find_secrets(&bytes, &allow) {
                line += newlines(&bytes[counted..f.range.start]);
                counted = f.range.start;
                let value = &bytes[f.range.clone()];
                let rule = rules.rules()[f.rule].id.clone();
                let hash = value_hash(value);
                findings.push(Finding {
                    session: row.id.clone(),
                    file: file.clone(),
                    line,
                    allow: format!("{rule}:{hash}"),
                    rule,
                    hash,
                    masked: mask(value),
                });
            }
        }
    }
    if json {
        return output::print_json(&ScanJson {
            sessions_scanned: rows.len(),
            findings: &findings,
        });
    }
    let mut text = String::new();
    for f in &findings {
        text.push_str(&format!(
            "{}  {}:{}  {}  {}\n",
            f.session,
            output::terminal_safe(&f.file),
            f.line,
            f.allow,
            output::terminal_safe(&f.masked)
        ));
    }
    text.push_str(&format!(
        "{} secret(s) in {} session(s); push, sync and export replace them with placeholders\n",
        findings.len(),
        rows.len()
    ));
    output::write_stdout(&text)
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}
