//! The TypeScript types in `web/types/` match the Rust types of baton-native,
//! baton-record and baton-protocol: every type deriving `ts_rs::TS` is exported
//! into a temporary directory and compared file by file with the checked-in
//! tree. On drift this fails listing stale, missing and extra files;
//! regenerate with `BATON_UPDATE_TS=1 cargo test -p baton-record --test ts_types`.
//!
//! No type carries `#[ts(export)]`, so `cargo test` never rewrites `web/types/`
//! behind anyone's back: this test is the only writer, and only when asked.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ts_rs::TS;

/// The command that regenerates `web/types/`.
const REGENERATE: &str = "BATON_UPDATE_TS=1 cargo test -p baton-record --test ts_types";

/// Export each listed type (and what it references) into `$out`, noting
/// `(crate directory, Rust type name)` in `$listed`.
macro_rules! export {
    ($out:expr, $listed:expr, $krate:literal: $($ty:ty),+ $(,)?) => {$(
        <$ty as TS>::export_all_to($out).unwrap();
        let path = stringify!($ty);
        let name = path.rsplit("::").next().unwrap().trim().to_string();
        $listed.insert(($krate.to_string(), name));
    )+};
}

/// Every `.ts` file under `root`, relative to it.
fn ts_files(root: &Path) -> BTreeSet<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "ts"))
        .filter_map(|e| e.path().strip_prefix(root).ok().map(Path::to_path_buf))
        .collect()
}

/// What the sources of `krates` declare: `(crate directory, type name)` of
/// every `pub struct`/`pub enum` whose derive list names `TS`, and the files
/// that still carry an auto-export attribute (`#[ts(export...)]`).
fn scan_sources(workspace: &Path, krates: &[&str]) -> (BTreeSet<(String, String)>, Vec<PathBuf>) {
    let mut found = BTreeSet::new();
    let mut auto_export = Vec::new();
    for krate in krates {
        for entry in walkdir::WalkDir::new(workspace.join("crates").join(krate).join("src"))
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let mut derives_ts = false;
            for line in text.lines().map(str::trim) {
                if line.starts_with("#[ts(") && line.contains("export") {
                    auto_export.push(entry.path().to_path_buf());
                }
                if line.starts_with("#[derive(") {
                    derives_ts = line
                        .trim_start_matches("#[derive(")
                        .trim_end_matches(")]")
                        .split(',')
                        .any(|d| matches!(d.trim(), "TS" | "ts_rs::TS"));
                    continue;
                }
                let item = line
                    .strip_prefix("pub struct ")
                    .or_else(|| line.strip_prefix("pub enum "));
                if let Some(rest) = item {
                    if derives_ts {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        found.insert((krate.to_string(), name));
                    }
                    derives_ts = false;
                } else if !line.starts_with('#') && !line.starts_with("//") {
                    derives_ts = false;
                }
            }
        }
    }
    (found, auto_export)
}

#[test]
fn checked_in_typescript_types_are_current() {
    let generated = tempfile::tempdir().unwrap();
    let out = generated.path();
    let mut listed = BTreeSet::new();
    export!(out, listed, "baton-native":
        baton_native::Agent,
        baton_native::Role,
        baton_native::MessageKind,
        baton_native::Message,
        baton_native::envelope::EnvelopeHeader,
        baton_native::envelope::EnvelopeMeta,
        baton_native::envelope::FileEntry,
        baton_native::envelope::FileRole,
    );
    export!(out, listed, "baton-record":
        baton_record::RolloutSessionMeta,
        baton_record::BaseInstructions,
        baton_record::ContentItem,
        baton_record::ResponseItem,
        baton_record::StateSnapshot,
        baton_record::ConversationSummary,
        baton_record::RawApiRecord,
        baton_record::MetaKind,
        baton_record::MetaRecord,
        baton_record::CapturedExchange,
    );
    export!(out, listed, "baton-protocol":
        baton_protocol::StreamInfo,
        baton_protocol::SessionInfo,
        baton_protocol::SessionMeta,
        baton_protocol::SessionList,
        baton_protocol::AppendResult,
        baton_protocol::ErrorCode,
        baton_protocol::ErrorBody,
        baton_protocol::StreamPrefix,
        baton_protocol::ForkRequest,
        baton_protocol::Checkpoint,
        baton_protocol::CheckpointList,
        baton_protocol::MessageList,
        baton_protocol::SearchHit,
        baton_protocol::SearchResults,
        baton_protocol::Changes,
        baton_protocol::WhoAmI,
        baton_protocol::NewUser,
        baton_protocol::FacetCount,
        baton_protocol::SessionFacets,
        baton_protocol::StatRow,
        baton_protocol::Stats,
        baton_protocol::ForkAtRequest,
        baton_protocol::ShareRequest,
        baton_protocol::Share,
        baton_protocol::ShareList,
    );

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (in_sources, auto_export) = scan_sources(
        &workspace,
        &["baton-native", "baton-record", "baton-protocol"],
    );
    assert!(
        auto_export.is_empty(),
        "{auto_export:?} carry #[ts(export)], which makes `cargo test` rewrite web/types; remove it and list the type here"
    );
    let unlisted: Vec<_> = in_sources.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "types deriving TS that this test does not export: {unlisted:?}; add them to the lists above"
    );

    let web = workspace.join("web/types");
    let fresh = ts_files(out);
    let checked_in = ts_files(&web);
    let update = std::env::var_os("BATON_UPDATE_TS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    let mut missing = Vec::new();
    for rel in &fresh {
        let text = std::fs::read_to_string(out.join(rel)).unwrap();
        let target = web.join(rel);
        match std::fs::read_to_string(&target) {
            Ok(old) if old == text => continue,
            Ok(_) => stale.push(rel.display().to_string()),
            Err(_) => missing.push(rel.display().to_string()),
        }
        if update {
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(&target, text).unwrap();
        }
    }
    let extra: Vec<String> = checked_in
        .difference(&fresh)
        .map(|rel| rel.display().to_string())
        .collect();
    if update {
        for rel in &extra {
            std::fs::remove_file(web.join(rel)).unwrap();
        }
        return;
    }
    assert!(
        stale.is_empty() && missing.is_empty() && extra.is_empty(),
        "web/types is out of date: stale {stale:?}, missing {missing:?}, extra {extra:?}; run `{REGENERATE}` and commit the result"
    );
}
