//! Catalog behaviour on the real fixture transcripts and on bad input.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::{Agent, MessageKind};
use baton_store::{Catalog, Error, ListQuery, Roots, SearchQuery};
use std::io::Write;
use std::path::{Path, PathBuf};

mod common;

use common::Env;

fn manifest() -> Vec<serde_json::Value> {
    std::fs::read_to_string(baton_testkit::fixtures_dir().join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn refresh(cat: &mut Catalog, roots: &Roots) -> baton_store::RefreshReport {
    cat.refresh(roots, &|_| {}).unwrap()
}

fn find(root: &Path, needle: &str) -> PathBuf {
    walk(root)
        .into_iter()
        .find(|p| p.to_string_lossy().contains(needle))
        .unwrap_or_else(|| panic!("no file containing {needle} under {}", root.display()))
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn fixtures_are_listed_shown_and_searchable() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    let report = refresh(&mut cat, &env.roots);
    assert!(report.issues.is_empty(), "{:?}", report.issues);
    assert_eq!(report.files_new, 7);
    let page = cat
        .list(&ListQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let manifest = manifest();
    assert_eq!(page.sessions.len(), manifest.len());
    for m in &manifest {
        let id = m["id"].as_str().unwrap();
        let row = page.sessions.iter().find(|s| s.id == id).expect(id);
        assert_eq!(row.agent.as_str(), m["agent"].as_str().unwrap(), "{id}");
        assert_eq!(row.cwd.as_deref(), m["cwd"].as_str(), "{id}");
        assert_eq!(
            row.forked_from.as_deref(),
            m["forked_from"].as_str(),
            "{id}"
        );
        let prompts: Vec<&str> = m["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(row.user_turns as usize, prompts.len(), "{id}");
        assert_eq!(row.first_prompt.as_deref(), Some(prompts[0]), "{id}");
        assert!(row.started_at.ends_with('Z') && row.updated_at.ends_with('Z'));
        let (_, messages) = cat.show(id).unwrap();
        let shown: Vec<&str> = messages
            .iter()
            .filter(|m| m.kind == MessageKind::Prompt)
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(shown, prompts, "{id}");
        if let Some(out) = m["tool_output"].as_str() {
            let hits = cat
                .search(&SearchQuery {
                    query: out.to_string(),
                    ..Default::default()
                })
                .unwrap();
            assert!(hits.iter().any(|h| h.session_id == id), "{out}: {hits:?}");
            assert!(hits.iter().all(|h| h.snippet.contains('«')));
        }
    }
    // Newest first.
    let times: Vec<&str> = page
        .sessions
        .iter()
        .map(|s| s.updated_at.as_str())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
}

#[test]
fn no_change_reads_nothing_and_appends_read_only_new_bytes() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    refresh(&mut cat, &env.roots);
    let again = refresh(&mut cat, &env.roots);
    assert_eq!(again.bytes_read, 0);
    assert_eq!(again.files_unchanged, 7);

    // Append a resumed Claude turn (a typed prompt) to the alpha session.
    let path = find(&env.roots.claude_dirs[0], "dcf5c926");
    let line = serde_json::json!({
        "parentUuid": null, "isSidechain": false, "type": "user",
        "uuid": "11111111-2222-3333-4444-555555555555",
        "timestamp": "2030-01-01T00:00:00.000Z",
        "sessionId": "dcf5c926-1018-40a3-9c1e-6e73eeca4da9",
        "cwd": "/srv/corpus/work-pub/alpha",
        "message": {"role": "user", "content": "appended zanzibar prompt"}
    });
    let bytes = format!("{line}\n");
    append(&path, bytes.as_bytes());
    let inc = refresh(&mut cat, &env.roots);
    assert_eq!(inc.files_appended, 1);
    assert_eq!(inc.bytes_read, bytes.len() as u64);
    let row = cat.resolve("dcf5c926").unwrap();
    assert_eq!(row.user_turns, 2);
    assert_eq!(row.updated_at, "2030-01-01T00:00:00.000Z");
    let hits = cat
        .search(&SearchQuery {
            query: "zanzibar".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].session_id, row.id);
    // Newest first: the appended session now leads the list.
    let first = cat.list(&ListQuery::default()).unwrap().sessions[0]
        .id
        .clone();
    assert_eq!(first, row.id);
}

#[test]
fn replaced_or_shrunk_files_are_reread_and_vanished_ones_removed() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    refresh(&mut cat, &env.roots);
    let legacy = find(&env.roots.codex_homes[1], "92a0");
    let original = std::fs::read(&legacy).unwrap();
    // Keep only the first half of the lines: the file shrank.
    let lines: Vec<&[u8]> = original.split_inclusive(|&b| b == b'\n').collect();
    let half: Vec<u8> = lines[..lines.len() / 2].concat();
    std::fs::write(&legacy, &half).unwrap();
    let r = refresh(&mut cat, &env.roots);
    assert_eq!(r.files_reread, 1, "{r:?}");
    assert_eq!(cat.resolve("01a1ff8d-92a0").unwrap().user_turns, 1);

    // Same size, different content, new inode: replaced.
    let tmp = legacy.with_extension("tmp");
    std::fs::write(&tmp, &original).unwrap();
    std::fs::rename(&tmp, &legacy).unwrap();
    let r = refresh(&mut cat, &env.roots);
    assert_eq!(r.files_reread, 1);
    assert_eq!(cat.resolve("01a1ff8d-92a0").unwrap().user_turns, 2);
    // No duplicated messages after the re-read.
    let (_, msgs) = cat.show("01a1ff8d-92a0").unwrap();
    assert_eq!(
        msgs.iter()
            .filter(|m| m.kind == MessageKind::Prompt)
            .count(),
        2
    );

    std::fs::remove_file(&legacy).unwrap();
    let r = refresh(&mut cat, &env.roots);
    assert_eq!(r.files_removed, 1);
    assert!(matches!(
        cat.resolve("01a1ff8d-92a0"),
        Err(Error::UnknownSession(_))
    ));
    assert_eq!(cat.count_sessions().unwrap(), 6);
}

/// Overwrite `path` with `bytes` in place: same inode, no truncation.
fn overwrite_in_place(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// The prompts `show` lists for a session.
fn prompts(cat: &Catalog, id: &str) -> Vec<String> {
    let (_, messages) = cat.show(id).unwrap();
    messages
        .into_iter()
        .filter(|m| m.kind == MessageKind::Prompt)
        .map(|m| m.text)
        .collect()
}

#[test]
fn an_early_line_rewritten_in_place_is_reread() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    refresh(&mut cat, &env.roots);
    let path = find(&env.roots.claude_dirs[0], "dcf5c926");
    let original = std::fs::read(&path).unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    // Rewrite the first prompt (in the file's first lines), keep the last
    // line as it was, and grow the file: it looks like an append.
    let text = String::from_utf8(original.clone()).unwrap();
    let first = text.find("prompt epsilon").unwrap();
    assert!(first < 4096, "the prompt lies in the file's first block");
    let mut rewritten = text
        .replace("prompt epsilon", "prompt omicron")
        .into_bytes();
    assert_eq!(rewritten.len(), original.len());
    rewritten.extend_from_slice(b"{\"type\":\"unknown-future-line\"}\n");
    overwrite_in_place(&path, &rewritten);
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap()),
        ino
    );
    let r = refresh(&mut cat, &env.roots);
    assert_eq!((r.files_reread, r.files_appended), (1, 0), "{r:?}");
    assert_eq!(prompts(&cat, "dcf5c926"), ["pub claude prompt omicron"]);
    let stale = cat
        .search(&SearchQuery {
            query: "epsilon".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(
        stale.iter().all(|h| !h.session_id.starts_with("dcf5c926")),
        "{stale:?}"
    );
}

#[test]
fn a_file_whose_mtime_went_back_is_reread() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    refresh(&mut cat, &env.roots);
    let path = find(&env.roots.claude_dirs[0], "dcf5c926");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    // A later line (past the first block, not the last one) rewritten in
    // place, the file grown, and its mtime set back (as `cp -p` of an older
    // copy over it does): not an append.
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    let at = text.rfind("Opus 5.5").unwrap();
    assert!(at > 4096 && at < text.trim_end().rfind('\n').unwrap());
    let mut rewritten = format!("{}Opus 9.9{}", &text[..at], &text[at + 8..]).into_bytes();
    rewritten.extend_from_slice(b"{\"type\":\"unknown-future-line\"}\n");
    overwrite_in_place(&path, &rewritten);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(before - std::time::Duration::from_secs(3600))
        .unwrap();
    let r = refresh(&mut cat, &env.roots);
    assert_eq!((r.files_reread, r.files_appended), (1, 0), "{r:?}");
}

#[test]
fn bad_input_is_reported_and_isolated() {
    let env = Env::new();
    let projects = env.roots.claude_dirs[0].join("projects/-srv-bad");
    std::fs::create_dir_all(&projects).unwrap();
    let good_line = |uuid: &str, text: &str| {
        format!(
            "{}\n",
            serde_json::json!({
                "parentUuid": null, "isSidechain": false, "type": "user", "uuid": uuid,
                "timestamp": "2026-11-22T00:00:00.000Z",
                "sessionId": "aaaaaaaa-0000-4000-8000-000000000001",
                "cwd": "/srv/bad", "message": {"role": "user", "content": text}
            })
        )
    };
    // Garbage, invalid UTF-8 and a BOM around a good prompt; then a torn tail.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(good_line("u1", "bom prompt kiwi").into_bytes());
    bytes.extend(b"this is not json\n");
    bytes.extend(b"{\"type\":\"user\",\"bad\":\"\xff\xfe\"}\n");
    bytes.extend(b"\x00\x01\x02 binary garbage\n");
    let torn = good_line("u2", "torn prompt mango");
    let (head, tail) = torn.as_bytes().split_at(40);
    bytes.extend(head);
    let bad = projects.join("aaaaaaaa-0000-4000-8000-000000000001.jsonl");
    std::fs::write(&bad, &bytes).unwrap();
    // An empty file.
    std::fs::write(
        projects.join("aaaaaaaa-0000-4000-8000-000000000002.jsonl"),
        b"",
    )
    .unwrap();
    // A dangling symlink and a directory named like a transcript are not transcripts.
    std::os::unix::fs::symlink(
        "/nonexistent/baton-test",
        projects.join("aaaaaaaa-0000-4000-8000-000000000003.jsonl"),
    )
    .unwrap();
    std::fs::create_dir_all(projects.join("aaaaaaaa-0000-4000-8000-000000000004.jsonl/x")).unwrap();
    // A file where the Codex `sessions/` directory is expected.
    let broken_home = env.home.parent().unwrap().join("broken-codex");
    std::fs::create_dir_all(&broken_home).unwrap();
    std::fs::write(broken_home.join("sessions"), b"not a dir").unwrap();
    let mut roots = env.roots.clone();
    roots.codex_homes.push(broken_home);

    let mut cat = Catalog::open(&env.home).unwrap();
    let r = refresh(&mut cat, &roots);
    let text: Vec<String> = r.issues.iter().map(|i| i.to_string()).collect();
    let bad_s = bad.to_string_lossy();
    for (line, what) in [
        (2, "invalid JSON"),
        (3, "invalid UTF-8"),
        (4, "invalid JSON"),
    ] {
        assert!(
            text.iter()
                .any(|t| t.starts_with(&format!("{bad_s}:{line}: {what}"))),
            "line {line} ({what}) reported: {text:#?}"
        );
    }
    for (name, what) in [
        (
            "aaaaaaaa-0000-4000-8000-000000000003.jsonl",
            "is a symbolic link",
        ),
        (
            "aaaaaaaa-0000-4000-8000-000000000004.jsonl",
            "is a directory",
        ),
    ] {
        assert!(
            text.iter().any(|t| t.contains(name) && t.contains(what)),
            "{name} reported as not a file: {text:#?}"
        );
    }
    assert_eq!(text.len(), 5, "nothing else is reported: {text:#?}");
    // The fixture sessions and the BOM'd prompt are all there.
    assert_eq!(cat.count_sessions().unwrap(), 8, "{text:#?}");
    let row = cat.resolve("aaaaaaaa-0000-4000-8000-000000000001").unwrap();
    assert_eq!(row.first_prompt.as_deref(), Some("bom prompt kiwi"));
    assert_eq!(row.user_turns, 1);

    // Completing the torn line makes it count, once.
    append(&bad, tail);
    let r2 = refresh(&mut cat, &roots);
    assert_eq!(r2.files_appended, 1, "{:?}", r2);
    let row = cat.resolve("aaaaaaaa-0000-4000-8000-000000000001").unwrap();
    assert_eq!(row.user_turns, 2);
    assert_eq!(
        cat.search(&SearchQuery {
            query: "mango".into(),
            ..Default::default()
        })
        .unwrap()
        .len(),
        1
    );
}

#[test]
fn cursor_paging_walks_every_session_once() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    refresh(&mut cat, &env.roots);
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = cat
            .list(&ListQuery {
                limit: 2,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .unwrap();
        assert!(page.sessions.len() <= 2);
        seen.extend(page.sessions.iter().map(|s| s.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let all = cat
        .list(&ListQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<String> = all.sessions.iter().map(|s| s.id.clone()).collect();
    assert_eq!(seen, ids);
    assert!(matches!(
        cat.list(&ListQuery {
            cursor: Some("zz-not-a-cursor".into()),
            ..Default::default()
        }),
        Err(Error::InvalidCursor(_))
    ));
    // Filters.
    let claude = cat
        .list(&ListQuery {
            agent: Some(Agent::Claude),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(claude.sessions.len(), 3);
    let beta = cat
        .list(&ListQuery {
            cwd: Some("/srv/corpus/work-pub/beta/".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(beta.sessions.len(), 4);
    // Prefix match is on whole path components.
    let partial = cat
        .list(&ListQuery {
            cwd: Some("/srv/corpus/work-pub/be".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(partial.sessions.is_empty());
    let future = cat
        .list(&ListQuery {
            since: Some("2030-01-01T00:00:00.000Z".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(future.sessions.is_empty());
}

#[test]
fn prefixes_resolve_or_explain() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    refresh(&mut cat, &env.roots);
    assert_eq!(
        cat.resolve("24618527").unwrap().id,
        "24618527-ae46-4f6d-902b-96792270f328"
    );
    match cat.resolve("01a1ff8d") {
        Err(e @ Error::AmbiguousPrefix { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("codex:01a1ff8d-8a8a-7740-8c02-49607e66ddfa"),
                "{msg}"
            );
            assert!(msg.contains("type more characters"), "{msg}");
        }
        other => panic!("expected ambiguity, got {other:?}"),
    }
    // A unique fragment works when no id starts with it (UUIDv7 ids share a prefix).
    assert_eq!(
        cat.resolve("9126").unwrap().id,
        "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b"
    );
    let err = cat.resolve("ffff").unwrap_err();
    assert!(err.to_string().contains("baton list"), "{err}");
}

#[test]
fn any_query_text_is_safe() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    refresh(&mut cat, &env.roots);
    for q in [
        "\"",
        "AND",
        "OR NOT",
        "(",
        "a:b",
        "pub-tool-output-beta*",
        "NEAR(x y)",
        "* ",
        "'; DROP TABLE x",
        "ünïcødé",
        "col:umn \"quoted",
        "^start",
        "-",
    ] {
        let r = cat.search(&SearchQuery {
            query: q.into(),
            ..Default::default()
        });
        assert!(matches!(r, Ok(_) | Err(Error::EmptyQuery)), "{q}: {r:?}");
    }
    // Diacritics fold; prefix works.
    let hits = cat
        .search(&SearchQuery {
            query: "ÜNICØDE".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(!hits.is_empty());
    let hits = cat
        .search(&SearchQuery {
            query: "zeta*".into(),
            agent: Some(Agent::Claude),
            ..Default::default()
        })
        .unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.agent == Agent::Claude));
    // Records the Claude fork copied from its parent are the parent's hits only.
    assert!(
        hits.iter()
            .all(|h| h.session_id == "24618527-ae46-4f6d-902b-96792270f328"),
        "{hits:?}"
    );
    let own = cat
        .search(&SearchQuery {
            query: "fork eta".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(
        own.iter()
            .any(|h| h.session_id == "f941a4bf-28d9-46f3-adde-1c9978a0988d")
    );
    assert_eq!(
        baton_store::fts_query("a\"b c*"),
        Some("\"a\"\"b\" \"c\"*".into())
    );
    assert_eq!(baton_store::fts_query(" -- * "), None);
}

#[test]
fn pushed_chunks_share_the_ingest_path() {
    let env = Env::new();
    let mut cat = Catalog::open(&env.home).unwrap();
    let fx = find(&baton_testkit::fixtures_dir().join("codex"), "8a8a");
    let bytes = std::fs::read(fx).unwrap();
    let (a, b) = bytes.split_at(bytes.len() / 2);
    let first = cat
        .ingest_chunk("laptop/alpha", Agent::Codex, 0, a)
        .unwrap();
    assert!(first.state.consumed <= a.len() as u64);
    let rest = &bytes[first.state.consumed as usize..];
    let bad = cat.ingest_chunk("laptop/alpha", Agent::Codex, 7, rest);
    assert!(matches!(bad, Err(Error::OffsetMismatch { .. })));
    let second = cat
        .ingest_chunk("laptop/alpha", Agent::Codex, first.state.consumed, rest)
        .unwrap();
    assert_eq!(second.state.consumed, bytes.len() as u64);
    let row = cat.resolve("01a1ff8d-8a8a").unwrap();
    assert_eq!(row.first_prompt.as_deref(), Some("pub first prompt alpha"));
    // A refresh over disk roots keeps pushed rows.
    refresh(&mut cat, &Roots::default());
    assert!(cat.resolve("01a1ff8d-8a8a").is_ok());
    let _ = b;
}

#[test]
fn schema_mismatch_or_garbage_catalog_rebuilds() {
    let env = Env::new();
    std::fs::create_dir_all(&env.home).unwrap();
    std::fs::write(env.home.join("catalog.sqlite"), b"definitely not sqlite, just junk bytes here..........................................................................................").unwrap();
    let mut cat = Catalog::open(&env.home).unwrap();
    refresh(&mut cat, &env.roots);
    assert_eq!(cat.count_sessions().unwrap(), 7);
    drop(cat);
    rusqlite::Connection::open(env.home.join("catalog.sqlite"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    let mut cat = Catalog::open(&env.home).unwrap();
    assert_eq!(cat.count_sessions().unwrap(), 0);
    let r = refresh(&mut cat, &env.roots);
    assert_eq!(r.files_new, 7);
    assert_eq!(cat.count_sessions().unwrap(), 7);
}

#[test]
fn long_tool_outputs_are_searched_and_shown_from_their_native_lines_not_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let codex = tmp.path().join("codex");
    let (path, id) =
        baton_testkit::write_big_session(Agent::Codex, &codex, 1, 8 << 20, 40).unwrap();
    let roots = Roots {
        codex_homes: vec![codex],
        ..Default::default()
    };
    let home = tmp.path().join("baton");
    let mut cat = Catalog::open(&home).unwrap();
    let report = refresh(&mut cat, &roots);
    assert!(report.issues.is_empty(), "{:?}", report.issues);

    let hits = cat
        .search(&SearchQuery {
            query: "bigmarker17".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].kind, MessageKind::ToolResult);
    assert!(
        hits[0].snippet.contains("bigmarker17"),
        "{}",
        hits[0].snippet
    );

    let (_, messages) = cat.show(&id).unwrap();
    let output = messages
        .iter()
        .find(|m| m.text.starts_with("bigmarker17\n"))
        .expect("the tool output of turn 17");
    assert!(output.text.len() > 200_000, "{}", output.text.len());
    assert_eq!(messages.len(), 160);

    let corpus = std::fs::metadata(&path).unwrap().len();
    let catalog: u64 = ["catalog.sqlite", "catalog.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(home.join(f)).ok())
        .map(|m| m.len())
        .sum();
    assert!(
        catalog * 10 <= corpus * 3,
        "catalog {catalog} bytes for {corpus} bytes indexed"
    );
}

#[test]
fn pick_finds_what_search_finds_newest_first_and_can_stop_early() {
    use baton_store::PickScan;
    let env = Env::new();
    let cat = env.refreshed();
    // Nothing typed: the newest sessions, as `list` gives them.
    let listed: Vec<String> = common::every_session(&cat)
        .into_iter()
        .map(|s| s.id)
        .collect();
    let newest: Vec<String> = cat
        .pick("", None, None, 100, PickScan::All)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(newest, listed);

    // "pub" is typed as a prefix: every prompt has it, but a fork's copied
    // prompts count for its parent only; the fork's own prompt still makes
    // it a hit.
    let searched: std::collections::HashSet<(String, baton_native::Agent)> = cat
        .search(&SearchQuery {
            query: "pub*".into(),
            limit: 1000,
            per_session: 1,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|h| (h.session_id, h.agent))
        .collect();
    let all = cat.pick("pub", None, None, 100, PickScan::All).unwrap();
    let picked: std::collections::HashSet<_> =
        all.iter().map(|e| (e.id.clone(), e.agent)).collect();
    assert_eq!(picked, searched);
    assert_eq!(all.len(), listed.len());
    let times: Vec<&str> = all.iter().map(|e| e.when.as_deref().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "most recently active first");
    assert!(all.iter().all(|e| e.snippet.contains("«pub")), "{all:?}");

    // A limit, a filter, and a scan of only the newest match.
    assert_eq!(
        cat.pick("pub", None, None, 2, PickScan::All).unwrap(),
        all[..2]
    );
    let claude = cat
        .pick(
            "pub",
            Some(baton_native::Agent::Claude),
            None,
            100,
            PickScan::All,
        )
        .unwrap();
    assert_eq!(claude.len(), 3);
    assert!(
        claude
            .iter()
            .all(|e| e.agent == baton_native::Agent::Claude)
    );
    let first = cat
        .pick("pub", None, None, 100, PickScan::Newest(1))
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(all.contains(&first[0]));

    // An interrupt while nothing runs does not stop the next query.
    cat.interrupt_handle().interrupt();
    assert_eq!(
        cat.pick("pub", None, None, 100, PickScan::All).unwrap(),
        all
    );
    // A word not in any session, and a query with no word.
    assert!(
        cat.pick("zzzyx", None, None, 100, PickScan::All)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        cat.pick("  ", None, None, 100, PickScan::All)
            .unwrap()
            .len(),
        listed.len()
    );
}

#[test]
fn a_common_word_stops_reading_matches_but_counts_each_shown_session_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let codex = tmp.path().join("codex");
    // 2,500 prompts with "prompt" in one session, 3 in another: more than
    // a grouped search reads past its limit.
    baton_testkit::write_big_session(Agent::Codex, &codex, 1, 2 << 20, 2_500).unwrap();
    baton_testkit::write_big_session(Agent::Codex, &codex, 2, 1 << 10, 3).unwrap();
    let roots = Roots {
        codex_homes: vec![codex],
        claude_dirs: Vec::new(),
        library: Vec::new(),
    };
    let mut cat = Catalog::open(&tmp.path().join("baton")).unwrap();
    cat.refresh(&roots, &|_| {}).unwrap();
    // Every visible match, ungrouped: the counts to expect.
    let mut per_session = std::collections::HashMap::<String, u64>::new();
    for hit in cat
        .search(&SearchQuery {
            query: "prompt".into(),
            limit: 100_000,
            ..Default::default()
        })
        .unwrap()
    {
        *per_session.entry(hit.session_id).or_default() += 1;
    }
    assert_eq!(per_session.len(), 2);
    assert!(per_session.values().sum::<u64>() >= 2_503);

    let found = cat
        .search_grouped(&SearchQuery {
            query: "prompt".into(),
            limit: 1,
            per_session: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.hits.len(), 1);
    assert!(!found.sessions_left_out_exact, "stopped reading matches");
    assert!(found.sessions_left_out <= 1);
    let shown = &found.hits[0];
    assert_eq!(shown.more_in_session, per_session[&shown.session_id] - 1);

    // Few matches: everything is read and counted exactly.
    let found = cat
        .search_grouped(&SearchQuery {
            query: "number 2".into(),
            limit: 1,
            per_session: 1,
            ..Default::default()
        })
        .unwrap();
    assert!(found.sessions_left_out_exact);
    assert_eq!(found.sessions_left_out, 1, "{:?}", found.hits);
}

#[test]
fn long_texts_indexed_as_bags_of_words_match_exactly_as_word_by_word() {
    use baton_store::PickScan;
    let tmp = tempfile::tempdir().unwrap();
    let codex = tmp.path().join("codex");
    // 40 tool outputs of 200 KB each: longer than BAG_BYTES.
    let (_, id) = baton_testkit::write_big_session(Agent::Codex, &codex, 1, 8 << 20, 40).unwrap();
    let roots = Roots {
        codex_homes: vec![codex],
        ..Default::default()
    };
    let mut cat = Catalog::open(&tmp.path().join("baton")).unwrap();
    refresh(&mut cat, &roots);
    let (_, messages) = cat.show(&id).unwrap();
    let output = &messages
        .iter()
        .find(|m| m.text.starts_with("bigmarker17\n"))
        .unwrap()
        .text;
    assert!(output.len() > baton_search::BAG_BYTES);
    // A path as it appears in output 17, a phrase of three words.
    let path = output
        .lines()
        .find_map(|l| l.strip_prefix("src/"))
        .and_then(|l| l.split(':').next())
        .map(|p| format!("src/{p}"))
        .unwrap();
    // Each query and whether it finds something; every word of the last
    // three is in output 17, never in that order or together.
    for (typed, found_some) in [
        ("bigmarker17".to_string(), true),
        ("bigmarker1*".to_string(), true),
        (path.clone(), true),
        (format!("{path} bigmarker17"), true),
        ("bigmarker17.rs".to_string(), false),
        ("rs.bigmarker17".to_string(), false),
        ("bigmarker17 bigmarker18".to_string(), false),
    ] {
        let query = baton_search::Query::parse(&typed).unwrap();
        let expected = messages
            .iter()
            .filter_map(baton_search::searchable_text)
            .filter(|text| query.matches(text).is_some())
            .count();
        let hits = cat
            .search(&SearchQuery {
                query: typed.clone(),
                limit: 1000,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(expected > 0, found_some, "{typed}");
        assert_eq!(hits.len(), expected, "{typed}");
        assert!(
            hits.iter().all(|h| h.snippet.contains('«')),
            "{typed}: {hits:?}"
        );
        // Grouped: one shown, the rest counted.
        let found = cat
            .search_grouped(&SearchQuery {
                query: typed.clone(),
                limit: 1,
                per_session: 1,
                ..Default::default()
            })
            .unwrap();
        let counted: u64 = found.hits.iter().map(|h| 1 + h.more_in_session).sum();
        assert_eq!(counted, expected as u64, "{typed}");
        let picked = cat.pick(&typed, None, None, 10, PickScan::All).unwrap();
        assert_eq!(picked.len(), usize::from(expected > 0), "{typed}");
    }
}
