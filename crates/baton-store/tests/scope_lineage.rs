//! Concurrent refreshes, roots that differ between runs, subagent
//! transcripts, fork dedupe in search and lineage (sidecars, fork of a fork).

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::MessageKind;
use baton_store::{Catalog, ProgressPhase, Roots, SearchQuery, Sidecar, sidecar_path};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

const BETA: &str = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
const ZETA: &str = "24618527-ae46-4f6d-902b-96792270f328";
const ZETA_FORK: &str = "f941a4bf-28d9-46f3-adde-1c9978a0988d";

mod common;

use common::{Env, every_session};

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
    out.sort();
    out
}

fn find(root: &Path, needle: &str) -> PathBuf {
    walk(root)
        .into_iter()
        .find(|p| p.to_string_lossy().contains(needle))
        .unwrap_or_else(|| panic!("no file containing {needle} under {}", root.display()))
}

fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Sessions with a hit for `query`, sorted, each once.
fn hit_sessions(cat: &Catalog, query: &str) -> Vec<String> {
    let mut ids = search(cat, query);
    ids.dedup();
    ids
}

/// Session id of every hit for `query`, sorted.
fn search(cat: &Catalog, query: &str) -> Vec<String> {
    let mut ids: Vec<String> = cat
        .search(&SearchQuery {
            query: query.into(),
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|h| h.session_id)
        .collect();
    ids.sort();
    ids
}

fn listed(cat: &Catalog) -> Vec<String> {
    let mut ids: Vec<String> = every_session(cat).into_iter().map(|s| s.id).collect();
    ids.sort();
    ids
}

/// A typed prompt line for file number `file` (at `path`), with a word
/// unique to `round`.
fn prompt_line(path: &Path, file: usize, round: usize) -> String {
    let text = format!("concurrent round{round} marker {file}");
    let line = if path.to_string_lossy().contains("/codex") {
        json!({"timestamp": format!("2030-01-0{}T00:00:00.000Z", round + 1), "type": "response_item",
               "payload": {"type": "message", "role": "user",
                           "content": [{"type": "input_text", "text": text}]}})
    } else {
        json!({"parentUuid": null, "isSidechain": false, "type": "user",
               "uuid": format!("00000000-0000-4000-8000-{:012}", round * 100 + file),
               "timestamp": format!("2030-01-0{}T00:00:00.000Z", round + 1),
               "message": {"role": "user", "content": text}})
    };
    format!("{line}\n")
}

/// (id, message_count, user_turns) of every listed session.
fn counts(cat: &Catalog) -> Vec<(String, u64, u64)> {
    let mut v: Vec<_> = every_session(cat)
        .into_iter()
        .map(|s| (s.id, s.message_count, s.user_turns))
        .collect();
    v.sort();
    v
}

#[test]
fn concurrent_refreshes_never_duplicate_messages() {
    let env = Env::new();
    let main_files: Vec<PathBuf> = env
        .roots
        .codex_homes
        .iter()
        .chain(&env.roots.claude_dirs)
        .flat_map(|r| walk(r))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .filter(|p| !p.to_string_lossy().contains("session_index"))
        .collect();
    for round in 0..3 {
        if round > 0 {
            for (i, path) in main_files.iter().enumerate() {
                append(path, prompt_line(path, i, round).as_bytes());
            }
        }
        // Both refreshes compare the files with the same catalog state before
        // either writes: they parse the same new bytes.
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                let (home, roots) = (env.home.clone(), env.roots.clone());
                std::thread::spawn(move || {
                    let mut cat = Catalog::open(&home).unwrap();
                    cat.refresh(&roots, &|p| {
                        if p.phase == ProgressPhase::Scan {
                            barrier.wait();
                        }
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // The same files indexed once, by a single refresh, in another catalog.
        let reference = {
            let mut cat = Catalog::open(&env.tmp.path().join(format!("ref{round}"))).unwrap();
            cat.refresh(&env.roots, &|_| {}).unwrap();
            cat
        };
        let cat = env.refreshed();
        assert_eq!(counts(&cat), counts(&reference), "round {round}");
        if round > 0 {
            let query = format!("round{round}");
            assert_eq!(search(&cat, &query), search(&reference, &query));
            assert_eq!(search(&cat, &query).len(), 7, "one hit per session");
            let (_, msgs) = cat.show(BETA).unwrap();
            let marker = format!("concurrent round{round} marker");
            assert_eq!(
                msgs.iter().filter(|m| m.text.starts_with(&marker)).count(),
                1
            );
        }
    }
}

#[test]
fn other_roots_keep_their_rows_and_are_hidden_not_purged() {
    let env = Env::new();
    let all = listed(&env.refreshed());
    assert_eq!(all.len(), 7);

    // A run over only the legacy Codex home (like `baton --codex-home X fork`).
    let only_legacy = Roots {
        codex_homes: vec![env.roots.codex_homes[1].clone()],
        claude_dirs: Vec::new(),
        library: Vec::new(),
    };
    let mut cat = env.open();
    let r = cat.refresh(&only_legacy, &|_| {}).unwrap();
    assert_eq!(r.files_removed, 0, "{r:?}");
    assert_eq!(listed(&cat), ["01a1ff8d-92a0-7a03-a86a-e8bbc574818c"]);
    assert_eq!(cat.count_sessions().unwrap(), 1);
    assert!(cat.resolve("dcf5c926").is_err(), "other roots are hidden");
    assert!(
        search(&cat, "pub")
            .iter()
            .all(|id| id.starts_with("01a1ff8d-92a0"))
    );

    // The next default run reads nothing again: nothing was purged.
    let mut cat = env.open();
    let r = cat.refresh(&env.roots, &|_| {}).unwrap();
    assert_eq!(
        (r.files_new, r.files_reread, r.bytes_read),
        (0, 0, 0),
        "{r:?}"
    );
    assert_eq!(r.files_unchanged, 7);
    assert_eq!(listed(&cat), all);

    // Scoped without a refresh, to a home whose path sorts after a sibling
    // of the same prefix (`codex-legacy/` < `codex/`): the sibling's and
    // the Claude dir's sessions are hidden; every root shows everything.
    let only_codex = Roots {
        codex_homes: vec![env.roots.codex_homes[0].clone()],
        claude_dirs: Vec::new(),
        library: Vec::new(),
    };
    cat.set_scope(&only_codex).unwrap();
    let codex = listed(&cat);
    assert_eq!(codex.len(), 3, "{codex:?}");
    assert!(
        codex
            .iter()
            .all(|id| id.starts_with("01a1ff8d") && !id.starts_with("01a1ff8d-92a0")),
        "{codex:?}"
    );
    cat.set_scope(&env.roots).unwrap();
    assert_eq!(listed(&cat), all);

    // A file deleted from a root that is read is still removed...
    std::fs::remove_file(find(&env.roots.codex_homes[1], "92a0")).unwrap();
    let r = cat.refresh(&env.roots, &|_| {}).unwrap();
    assert_eq!(r.files_removed, 1);
    // ...but a root that is missing (unmounted, moved) keeps its rows.
    let moved = env.tmp.path().join("claude-moved");
    std::fs::rename(env.tmp.path().join("claude"), &moved).unwrap();
    let r = cat.refresh(&env.roots, &|_| {}).unwrap();
    assert_eq!(r.files_removed, 0);
    assert_eq!(listed(&cat).len(), 6);
}

/// A subagent transcript of the alpha Claude session.
fn write_subagent(env: &Env) -> PathBuf {
    let parent = "dcf5c926-1018-40a3-9c1e-6e73eeca4da9";
    let dir = env.roots.claude_dirs[0]
        .join("projects/-srv-corpus-work-pub-alpha")
        .join(parent)
        .join("subagents");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent-a1b2c3.jsonl");
    let records = [
        json!({"parentUuid": null, "isSidechain": true, "agentId": "a1b2c3", "type": "user",
               "uuid": "5a000000-0000-4000-8000-000000000001", "timestamp": "2026-11-21T19:20:32.000Z",
               "sessionId": parent, "cwd": "/srv/corpus/work-pub/alpha",
               "message": {"role": "user", "content": "subagent task quokka survey"}}),
        json!({"parentUuid": "5a000000-0000-4000-8000-000000000001", "isSidechain": true,
               "agentId": "a1b2c3", "type": "assistant",
               "uuid": "5a000000-0000-4000-8000-000000000002", "timestamp": "2026-11-21T19:20:33.000Z",
               "sessionId": parent, "cwd": "/srv/corpus/work-pub/alpha",
               "message": {"role": "assistant", "model": "claude-opus-5-5",
                           "content": [{"type": "text", "text": "found seven quokkas"}]}}),
    ];
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn subagent_transcripts_belong_to_their_parent() {
    let env = Env::new();
    let before = env.refreshed().resolve("dcf5c926").unwrap();
    let sub = write_subagent(&env);
    let cat = env.refreshed();

    // Not a session of its own.
    let ids = listed(&cat);
    assert_eq!(ids.len(), 7);
    assert!(!ids.iter().any(|id| id.contains("a1b2c3")));
    assert!(cat.resolve("a1b2c3").is_err());

    // Its file is the parent's (paths/bytes), its messages are not counted
    // or shown: counts and show are the main conversation.
    let row = cat.resolve("dcf5c926").unwrap();
    assert_eq!(row.paths.len(), 2);
    assert_eq!(row.paths[1], sub.to_string_lossy());
    let sub_len = std::fs::metadata(&sub).unwrap().len();
    assert_eq!(row.bytes, before.bytes + sub_len);
    assert_eq!(row.user_turns, before.user_turns);
    assert_eq!(row.message_count, before.message_count);
    let (_, msgs) = cat.show("dcf5c926").unwrap();
    assert!(!msgs.iter().any(|m| m.text.contains("quokka")));

    // Searchable, under the parent's id.
    let hits = cat
        .search(&SearchQuery {
            query: "quokka*".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits.iter().all(|h| h.session_id == row.id));
    assert!(hits.iter().any(|h| h.kind == MessageKind::Reply));
}

/// Lines of `src` with the `session_meta` rewritten to a new id forked from
/// its session (a self-contained copy, as baton's Codex fork writes), plus
/// one new prompt.
fn codex_copy(src: &Path, new_id: &str, prompt: &str) -> String {
    let text = std::fs::read_to_string(src).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            let mut meta: Value = serde_json::from_str(line).unwrap();
            let payload = meta["payload"].as_object_mut().unwrap();
            let parent = payload["id"].clone();
            payload.insert("id".into(), json!(new_id));
            payload.insert("session_id".into(), json!(new_id));
            payload.insert("forked_from_id".into(), parent);
            payload.insert("timestamp".into(), json!("2026-11-22T08:00:00.000Z"));
            meta["timestamp"] = json!("2026-11-22T08:00:00.000Z");
            out.push_str(&meta.to_string());
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push_str(
        &json!({"timestamp": "2026-11-22T08:00:01.000Z", "type": "response_item",
                "payload": {"type": "message", "role": "user",
                            "content": [{"type": "input_text", "text": prompt}]}})
        .to_string(),
    );
    out.push('\n');
    out
}

#[test]
fn records_a_codex_fork_copied_are_hits_of_the_original_only() {
    let env = Env::new();
    let src = find(&env.roots.codex_homes[0], "8c3d");
    let fork_id = "01a1ff8d-aaaa-7000-8000-000000000001";
    let fork = src.with_file_name(format!("rollout-2026-11-22T08-00-00-{fork_id}.jsonl"));
    std::fs::write(&fork, codex_copy(&src, fork_id, "fork only wombat")).unwrap();
    let cat = env.refreshed();
    let row = cat.resolve(fork_id).unwrap();
    assert_eq!(row.forked_from.as_deref(), Some(BETA));
    // The copy holds the parent's prompts (and counts them)...
    assert!(row.user_turns > 1);
    // ...but a copied record is a hit of the parent only.
    assert_eq!(hit_sessions(&cat, "pub third prompt beta"), [BETA]);
    assert_eq!(hit_sessions(&cat, "pub-tool-output-beta"), [BETA]);
    assert_eq!(hit_sessions(&cat, "wombat"), [fork_id]);
}

/// A Claude fork of `src` as `--fork-session` and `baton fork` write it: the
/// new prompt queued at `ts`, every record of the chain (uuids and
/// timestamps kept) with `sessionId` set to `new_id` and assistant records
/// naming `src_id` as `requestSessionId`, then the new prompt.
fn claude_copy(
    src: &Path,
    src_id: &str,
    new_id: &str,
    prompt: &str,
    uuid: &str,
    ts: &str,
) -> String {
    let text = std::fs::read_to_string(src).unwrap();
    let queued = json!({"type": "queue-operation", "operation": "enqueue", "timestamp": ts,
                        "sessionId": new_id, "content": prompt});
    let mut out = format!("{queued}\n");
    let mut last_uuid = Value::Null;
    for line in text.lines() {
        let mut rec: Value = serde_json::from_str(line).unwrap();
        if rec.get("uuid").is_none() {
            continue;
        }
        last_uuid = rec["uuid"].clone();
        rec["sessionId"] = json!(new_id);
        if rec["type"] == "assistant" {
            rec["requestSessionId"] = json!(src_id);
        }
        out.push_str(&rec.to_string());
        out.push('\n');
    }
    let rec = json!({"parentUuid": last_uuid, "isSidechain": false, "type": "user",
                     "uuid": uuid, "timestamp": ts, "sessionId": new_id,
                     "cwd": "/srv/corpus/work-pub/beta",
                     "message": {"role": "user", "content": prompt}});
    out.push_str(&rec.to_string());
    out.push('\n');
    out
}

#[test]
fn a_claude_fork_of_a_fork_credits_its_direct_parent() {
    let env = Env::new();
    let fork = find(&env.roots.claude_dirs[0], ZETA_FORK);
    let grandchild = "7e000000-0000-4000-8000-000000000001";
    let path = fork.with_file_name(format!("{grandchild}.jsonl"));
    std::fs::write(
        &path,
        claude_copy(
            &fork,
            ZETA_FORK,
            grandchild,
            "grandchild prompt numbat",
            "7e000000-0000-4000-8000-0000000000ff",
            "2026-11-23T00:00:00.000Z",
        ),
    )
    .unwrap();
    let cat = env.refreshed();
    assert_eq!(
        cat.resolve(ZETA_FORK).unwrap().forked_from.as_deref(),
        Some(ZETA)
    );
    // It shares its first records with both; it holds all of the fork's.
    let row = cat.resolve(grandchild).unwrap();
    assert_eq!(row.forked_from.as_deref(), Some(ZETA_FORK));
    // Copied records stay hits of the session that first had them.
    assert_eq!(hit_sessions(&cat, "pub claude fork eta"), [ZETA_FORK]);
    assert_eq!(hit_sessions(&cat, "pub-claude-tool-zeta"), [ZETA]);
    assert_eq!(hit_sessions(&cat, "numbat"), [grandchild]);
}

#[test]
fn a_library_sidecar_gives_a_diverged_copy_its_lineage() {
    let env = Env::new();
    let library = env.tmp.path().join("baton/library");
    let lib_codex = library.join("codex");
    let roots = Roots {
        codex_homes: vec![env.roots.codex_homes[0].clone(), lib_codex.clone()],
        claude_dirs: env.roots.claude_dirs.clone(),
        library: vec![library.clone()],
    };
    // A diverged copy Y of alpha, ids rewritten to Y (same length), no lineage inside.
    let src = find(&env.roots.codex_homes[0], "8a8a");
    let x = "01a1ff8d-8a8a-7740-8c02-49607e66ddfa";
    let y = "01a1ff8d-8a8a-7740-8c02-49607e66ffff";
    let dir = lib_codex.join("sessions/2026/11/21");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(src.file_name().unwrap().to_string_lossy().replace(x, y));
    std::fs::write(&copy, std::fs::read_to_string(&src).unwrap().replace(x, y)).unwrap();

    let mut cat = env.open();
    cat.refresh(&roots, &|_| {}).unwrap();
    assert_eq!(cat.resolve(y).unwrap().forked_from, None);

    // Only the sidecar appears: the next refresh picks it up.
    let sidecar = Sidecar {
        forked_from: Some(x.into()),
        relation: Some("diverged".into()),
    };
    std::fs::write(sidecar_path(&copy), serde_json::to_vec(&sidecar).unwrap()).unwrap();
    let r = cat.refresh(&roots, &|_| {}).unwrap();
    assert_eq!(r.files_appended, 1, "{r:?}");
    assert_eq!(r.bytes_read, 0);
    let row = cat.resolve(y).unwrap();
    assert_eq!(row.forked_from.as_deref(), Some(x));
    assert_eq!(cat.show(y).unwrap().0.forked_from.as_deref(), Some(x));
    // Unchanged sidecar: nothing to do.
    let r = cat.refresh(&roots, &|_| {}).unwrap();
    assert_eq!(r.files_unchanged, r.files_seen);

    // A broken sidecar is reported, and the lineage falls back to the file's.
    std::fs::write(sidecar_path(&copy), b"{not json").unwrap();
    let r = cat.refresh(&roots, &|_| {}).unwrap();
    assert!(
        r.issues.iter().any(|i| i.path.ends_with(".baton.json")),
        "{:?}",
        r.issues
    );
    assert_eq!(cat.resolve(y).unwrap().forked_from, None);

    // Outside the library a sidecar is not read.
    let own = find(&env.roots.codex_homes[0], "8c3d");
    std::fs::write(sidecar_path(&own), serde_json::to_vec(&sidecar).unwrap()).unwrap();
    cat.refresh(&roots, &|_| {}).unwrap();
    assert_eq!(cat.resolve(BETA).unwrap().forked_from, None);
}

const EPSILON: &str = "dcf5c926-1018-40a3-9c1e-6e73eeca4da9";
const FORK_OF_BETA: &str = "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b";

/// Roots of `env` plus baton's library (`baton/library/{codex,claude}`).
fn with_library(env: &Env) -> (Roots, PathBuf) {
    let library = env.tmp.path().join("baton/library");
    let mut roots = env.roots.clone();
    roots.codex_homes.push(library.join("codex"));
    roots.claude_dirs.push(library.join("claude"));
    roots.library.push(library.clone());
    (roots, library)
}

/// Write into `root` (a Codex home or Claude config dir) the file `src` of
/// session `x` as sync's pull writes a diverged copy Y of it: every quoted
/// `"x"` rewritten to `"y"` (same length), at the same path relative to
/// `src_root` with `x` replaced by `y` in the name. With `sidecar`, also
/// the lineage file naming `x`. The copy's path.
fn diverged_copy(
    src_root: &Path,
    src: &Path,
    x: &str,
    y: &str,
    root: &Path,
    sidecar: bool,
) -> PathBuf {
    let rel = src
        .strip_prefix(src_root)
        .unwrap()
        .to_string_lossy()
        .replace(x, y);
    let copy = root.join(rel);
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let text = std::fs::read_to_string(src).unwrap();
    std::fs::write(
        &copy,
        text.replace(&format!("\"{x}\""), &format!("\"{y}\"")),
    )
    .unwrap();
    if sidecar {
        write_sidecar(&copy, x);
    }
    copy
}

fn write_sidecar(copy: &Path, parent: &str) {
    let sidecar = Sidecar {
        forked_from: Some(parent.into()),
        relation: Some("diverged".into()),
    };
    std::fs::write(sidecar_path(copy), serde_json::to_vec(&sidecar).unwrap()).unwrap();
}

fn parent_of(cat: &Catalog, id: &str) -> Option<String> {
    cat.resolve(id).unwrap().forked_from
}

/// Machine A pulled diverged copies Y of its own Claude sessions X (each Y
/// sorting before its X, sharing every chain uuid and timestamp): Y is a
/// fork of X, and X keeps its own lineage, whether or not the sidecars are
/// there yet.
#[test]
fn a_pulled_claude_copy_never_becomes_the_parent_of_its_original() {
    let env = Env::new();
    let (roots, library) = with_library(&env);
    let home = &env.roots.claude_dirs[0];
    let lib_claude = library.join("claude");
    // (X, Y, X's own parent)
    let cases = [
        (EPSILON, "0420f214-1018-40a3-9c1e-6e73eeca4da9", None),
        (ZETA, "04618527-ae46-4f6d-902b-96792270f328", None),
        (
            ZETA_FORK,
            "0941a4bf-28d9-46f3-adde-1c9978a0988d",
            Some(ZETA),
        ),
    ];
    let copies: Vec<PathBuf> = cases
        .iter()
        .map(|(x, y, _)| diverged_copy(home, &find(home, x), x, y, &lib_claude, false))
        .collect();
    let mut cat = env.open();
    let check = |cat: &Catalog, stage: &str| {
        for (x, y, parent) in &cases {
            assert_eq!(
                parent_of(cat, y).as_deref(),
                Some(*x),
                "{stage}: {y} is a fork of {x}"
            );
            assert_eq!(
                parent_of(cat, x).as_deref(),
                *parent,
                "{stage}: {x} keeps its parent"
            );
        }
    };
    // Without lineage files the copy in the agent home is the origin.
    cat.refresh(&roots, &|_| {}).unwrap();
    check(&cat, "no sidecars");
    for (copy, (x, _, _)) in copies.iter().zip(&cases) {
        write_sidecar(copy, x);
    }
    cat.refresh(&roots, &|_| {}).unwrap();
    check(&cat, "sidecars");
    // From scratch, with the sidecars already there.
    let fresh = Catalog::open(&env.tmp.path().join("baton2")).unwrap();
    let mut fresh = fresh;
    fresh.refresh(&roots, &|_| {}).unwrap();
    check(&fresh, "fresh catalog");
}

/// When both X and its diverged copy Y are library files (nothing breaks
/// the tie between them), Y's sidecar decides: X is never Y's child.
#[test]
fn a_session_a_sidecar_names_as_parent_is_never_inferred_as_the_child() {
    let env = Env::new();
    let (mut roots, library) = with_library(&env);
    let home = env.roots.claude_dirs[0].clone();
    roots.claude_dirs.retain(|d| *d != home);
    let lib_claude = library.join("claude");
    let y = "0420f214-1018-40a3-9c1e-6e73eeca4da9";
    let src = find(&home, EPSILON);
    // X itself, as pulled into the library (unchanged bytes), and Y.
    diverged_copy(&home, &src, EPSILON, EPSILON, &lib_claude, false);
    diverged_copy(&home, &src, EPSILON, y, &lib_claude, true);
    let mut cat = env.open();
    cat.refresh(&roots, &|_| {}).unwrap();
    assert_eq!(parent_of(&cat, y).as_deref(), Some(EPSILON));
    assert_eq!(parent_of(&cat, EPSILON), None);
}

/// A diverged copy Y of a Codex fork X carries X's native `forked_from_id`
/// (its parent P) in its bytes; its sidecar names X and wins.
#[test]
fn a_sidecar_beats_the_native_parent_copied_into_a_diverged_copy() {
    let env = Env::new();
    let (roots, library) = with_library(&env);
    let home = &env.roots.codex_homes[0];
    let y = "01a1ff8d-9126-7cf2-9a5c-2fcdd99affff";
    let copy = diverged_copy(
        home,
        &find(home, "9126"),
        FORK_OF_BETA,
        y,
        &library.join("codex"),
        true,
    );
    assert!(std::fs::read_to_string(&copy).unwrap().contains(BETA));
    let cat = {
        let mut cat = env.open();
        cat.refresh(&roots, &|_| {}).unwrap();
        cat
    };
    assert_eq!(parent_of(&cat, y).as_deref(), Some(FORK_OF_BETA));
    assert_eq!(parent_of(&cat, FORK_OF_BETA).as_deref(), Some(BETA));
    assert_eq!(
        cat.show(y).unwrap().0.forked_from.as_deref(),
        Some(FORK_OF_BETA)
    );
    // The copy still reads its history through BETA's bytes, as X does.
    let (x_row, y_row) = (cat.resolve(FORK_OF_BETA).unwrap(), cat.resolve(y).unwrap());
    assert_eq!(y_row.user_turns, x_row.user_turns);
    assert_eq!(y_row.message_count, x_row.message_count);
}
