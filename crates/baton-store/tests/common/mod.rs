//! Shared setup of the catalog tests: copies of the fixture homes, their
//! roots and an empty `BATON_HOME`.
#![allow(dead_code)]

use baton_store::{Catalog, ListQuery, Roots, SessionRow};
use std::path::PathBuf;

/// Fresh copies of the fixture homes and an empty BATON_HOME.
pub struct Env {
    /// The temp dir holding everything.
    pub tmp: tempfile::TempDir,
    /// The empty `BATON_HOME` (`tmp/baton`).
    pub home: PathBuf,
    /// Both Codex fixture homes and the Claude fixture dir.
    pub roots: Roots,
}

impl Env {
    /// Copy the fixture homes into a new temp dir.
    pub fn new() -> Env {
        let tmp = baton_testkit::fixture_homes();
        let roots = Roots {
            codex_homes: vec![tmp.path().join("codex"), tmp.path().join("codex-legacy")],
            claude_dirs: vec![tmp.path().join("claude/.claude")],
            library: Vec::new(),
        };
        Env {
            home: tmp.path().join("baton"),
            roots,
            tmp,
        }
    }

    /// The catalog in `home`, not refreshed.
    pub fn open(&self) -> Catalog {
        Catalog::open(&self.home).unwrap()
    }

    /// The catalog in `home`, refreshed from `roots`.
    pub fn refreshed(&self) -> Catalog {
        let mut cat = self.open();
        cat.refresh(&self.roots, &|_| {}).unwrap();
        cat
    }
}

/// Every session `cat` lists (up to 1000), newest first.
pub fn every_session(cat: &Catalog) -> Vec<SessionRow> {
    cat.list(&ListQuery {
        limit: 1000,
        ..Default::default()
    })
    .unwrap()
    .sessions
}
