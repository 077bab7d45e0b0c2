//! The TypeScript types in `web/types/` match the Rust types. On drift this
//! fails; regenerate with `BATON_UPDATE_TS=1 cargo test -p baton-record --test ts_types`.

use std::path::{Path, PathBuf};

use baton_record::{
    ConversationSummary, MetaRecord, RawApiRecord, ResponseItem, SessionMeta, StateSnapshot,
};
use ts_rs::TS;

fn files(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(root).ok().map(Path::to_path_buf))
        .collect()
}

#[test]
fn checked_in_typescript_types_are_current() {
    let generated = tempfile::tempdir().unwrap();
    let out = generated.path();
    SessionMeta::export_all_to(out).unwrap();
    ResponseItem::export_all_to(out).unwrap();
    StateSnapshot::export_all_to(out).unwrap();
    ConversationSummary::export_all_to(out).unwrap();
    RawApiRecord::export_all_to(out).unwrap();
    MetaRecord::export_all_to(out).unwrap();

    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/types");
    let update = std::env::var_os("BATON_UPDATE_TS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    let names = files(out);
    for rel in &names {
        let fresh = std::fs::read_to_string(out.join(rel)).unwrap();
        let target = web.join(rel);
        if std::fs::read_to_string(&target).ok().as_deref() == Some(fresh.as_str()) {
            continue;
        }
        if update {
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(&target, fresh).unwrap();
        } else {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        names.iter().any(|n| n.ends_with("ResponseItem.ts")),
        "{names:?}"
    );
    assert!(
        stale.is_empty(),
        "web/types is out of date for {stale:?}; run `BATON_UPDATE_TS=1 cargo test -p baton-record --test ts_types` and commit the result"
    );
}
