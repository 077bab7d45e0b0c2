//! Write a synthetic corpus of Codex and Claude Code sessions for benchmarks.
//!
//! `cargo run --release -p baton-store --example gen_corpus -- OUT_DIR [--sessions N] [--bytes SIZE] [--seed S]`
//!
//! `OUT_DIR/codex` is a Codex home and `OUT_DIR/claude` a Claude config dir;
//! index them with `baton --codex-home OUT_DIR/codex --claude-dir OUT_DIR/claude index`.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

#[allow(dead_code)] // `appended_line` and `parse_size` serve the benchmark.
mod corpus;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out: Option<PathBuf> = None;
    let (mut sessions, mut bytes, mut seed) = (2000u64, 100u64 << 20, 42u64);
    while let Some(a) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| args.next().unwrap_or_default();
        match a.as_str() {
            "--sessions" => sessions = value(&mut args).parse().unwrap_or(sessions),
            "--bytes" => bytes = corpus::parse_size(&value(&mut args)).unwrap_or(bytes),
            "--seed" => seed = value(&mut args).parse().unwrap_or(seed),
            _ if out.is_none() && !a.starts_with('-') => out = Some(PathBuf::from(a)),
            other => {
                eprintln!(
                    "error: unexpected argument `{other}`\nusage: gen_corpus OUT_DIR [--sessions N] [--bytes SIZE] [--seed S]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(out) = out else {
        eprintln!("usage: gen_corpus OUT_DIR [--sessions N] [--bytes SIZE] [--seed S]");
        return ExitCode::from(2);
    };
    let fixtures = baton_testkit::fixtures_dir();
    match corpus::generate(&fixtures, &out, sessions, bytes, seed) {
        Ok(s) => {
            println!(
                "wrote {} sessions in {} files, {:.1} MiB, under {}",
                s.sessions,
                s.files,
                s.bytes as f64 / (1u64 << 20) as f64,
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: cannot write the corpus under {}: {e}",
                out.display()
            );
            ExitCode::from(1)
        }
    }
}
