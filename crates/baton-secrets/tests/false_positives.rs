//! False-positive check: the agent fixtures and this repository's own
//! source (ordinary code, docs and scripts) hold no secret, so the built-in
//! rules must find none there. The rule file itself, whose examples are
//! secrets on purpose, is the one file left out.

use baton_secrets::{AllowList, RuleSet, find_secrets};
use std::path::{Path, PathBuf};

/// Files under `root`, without build output and installed packages (the web
/// UI's generated bundle, minified third-party code, is scanned).
fn files_under(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "node_modules" | ".git" | ".cache") {
                files_under(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn fixtures_and_repository_source_have_no_findings() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.toml");
    let mut files = Vec::new();
    files_under(&baton_testkit::fixtures_dir(), &mut files);
    let fixtures = files.len();
    for dir in ["crates", "web", "scripts", "docs"] {
        files_under(&repo.join(dir), &mut files);
    }
    for top in std::fs::read_dir(&repo).unwrap().flatten() {
        if top.path().is_file() {
            files.push(top.path());
        }
    }
    assert!(fixtures >= 5, "fixtures missing");
    assert!(files.len() > fixtures + 100, "repository source missing");
    let mut report = Vec::new();
    for path in files {
        if path.canonicalize().ok() == rules_file.canonicalize().ok() {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for f in find_secrets(&bytes, &AllowList::new()) {
            let line = bytes[..f.range.start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            report.push(format!(
                "{}:{line}: {} {:?}",
                path.display(),
                RuleSet::builtin().rules()[f.rule].id,
                String::from_utf8_lossy(&bytes[f.range.clone()])
            ));
        }
    }
    assert!(report.is_empty(), "false positives:\n{}", report.join("\n"));
}
