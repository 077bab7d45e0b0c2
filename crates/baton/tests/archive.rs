//! `baton index` keeps an archive of every session's native files; sessions
//! whose files the agent deleted stay listed, searchable and exportable, and
//! `rehydrate`/`resume` write them back byte-identical.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_store::sha256_hex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;

use common::{FixtureHomes as Env, age, manifest};

/// Every session file under the fixture homes, with its SHA-256.
fn native_files(env: &Env) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for root in [
        "codex/sessions",
        "codex-legacy/sessions",
        "claude/.claude/projects",
    ] {
        collect(&env.path(root), &mut out);
    }
    out
}

fn collect(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "jsonl") {
            out.insert(p.clone(), sha256_hex(&std::fs::read(&p).unwrap()));
        }
    }
}

fn listed(env: &Env) -> BTreeMap<String, Value> {
    let page = env.json(&["list", "--json", "--limit", "100"]);
    page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

#[test]
fn deleted_sessions_stay_archived_and_come_back_byte_identical() {
    let env = Env::new();
    let first = env.json(&["index", "--json"]);
    assert_eq!(first["archive"]["files"], 7, "{first}");
    let again = env.json(&["index", "--json"]);
    assert_eq!(
        again["archive"]["bytes"], 0,
        "nothing new to archive: {again}"
    );
    let before = native_files(&env);
    assert_eq!(before.len(), 7);
    let fork_export = env
        .cmd(&["export", "01a1ff8d-9126", "--format", "jsonl"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();

    // The agents delete everything.
    for path in before.keys() {
        std::fs::remove_file(path).unwrap();
    }
    let after = env.json(&["index", "--json"]);
    assert_eq!(after["files_archived"], 7, "{after}");
    assert_eq!(after["files_removed"], 0, "{after}");

    let sessions = listed(&env);
    for m in manifest() {
        let id = m["id"].as_str().unwrap();
        let s = &sessions[id];
        assert_eq!(s["archived"], true, "{id}: {s}");
        let shown = env.json(&["show", id, "--json"]);
        assert_eq!(shown["session"]["archived"], true, "{id}");
        if let Some(out) = m["tool_output"].as_str() {
            let hits = env.json(&["search", out, "--json"]);
            assert!(
                hits["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|h| h["session_id"] == id),
                "{out}: {hits}"
            );
        }
    }
    let human = env.stdout(&["list"]);
    assert!(human.contains("archived"));
    let shown = env.stdout(&["show", "dcf5c926"]);
    assert!(shown.contains("archived:"));
    // Export reads the archive: the fork's lineage, parent prefix included.
    let archived_export = env
        .cmd(&["export", "01a1ff8d-9126", "--format", "jsonl"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(archived_export, fork_export);

    // The catalog is a cache: rebuilt from nothing, it takes the archived
    // sessions back from the archive.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.path(&format!("baton-home/catalog.sqlite{suffix}")));
    }
    let rebuilt = listed(&env);
    assert_eq!(rebuilt.len(), sessions.len());
    assert!(
        rebuilt.values().all(|s| s["archived"] == true),
        "{rebuilt:?}"
    );
    let hits = env.json(&["search", "ECHO", "--json"]);
    assert!(!hits["hits"].as_array().unwrap().is_empty(), "{hits}");

    // Rehydrating every session writes every file back where it was, byte-identical.
    for m in manifest() {
        let id = m["id"].as_str().unwrap();
        env.cmd(&["rehydrate", id, "--json"]).assert().success();
    }
    // (`rehydrate` also copies the legacy session into the first Codex home.)
    let restored = native_files(&env);
    for (path, sha) in &before {
        assert_eq!(restored.get(path), Some(sha), "{}", path.display());
    }
    for (id, s) in listed(&env) {
        assert_eq!(s["archived"], false, "{id}");
    }
}

#[test]
fn archive_is_private_and_grows_by_appended_bytes_only() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.json(&["index", "--json"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = env.path("baton-home/archive");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("index.sqlite")), 0o600);

    let (path, _) = native_files(&env).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let tail = b"{\"timestamp\":\"2031-01-01T00:00:00.000Z\",\"type\":\"x\"}\n";
    bytes.extend_from_slice(tail);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, tail).unwrap();
    let grown = env.json(&["index", "--json"]);
    assert_eq!(grown["archive"]["files"], 1, "{grown}");
    assert_eq!(grown["archive"]["bytes"], tail.len(), "{grown}");
    let archive = baton_store::Archive::open(&env.path("baton-home")).unwrap();
    assert_eq!(archive.read(&path).unwrap().unwrap(), bytes);
}

#[test]
fn no_archive_flag_and_config_switch_keep_the_old_behaviour() {
    let env = Env::new();
    let skipped = env.json(&["index", "--json", "--no-archive"]);
    assert!(skipped["archive"].is_null(), "{skipped}");
    std::fs::write(env.path("baton-home/config.toml"), "archive = false\n").unwrap();
    let off = env.json(&["index", "--json"]);
    assert!(off["archive"].is_null(), "{off}");
    assert!(!env.path("baton-home/archive").exists());
    // Without an archive a deleted file's session leaves the catalog.
    let files = native_files(&env);
    let (gone, _) = files
        .iter()
        .find(|(p, _)| p.to_string_lossy().contains("dcf5c926"))
        .unwrap();
    std::fs::remove_file(gone).unwrap();
    let after = env.json(&["index", "--json"]);
    assert_eq!(after["files_removed"], 1, "{after}");
    assert!(!listed(&env).contains_key("dcf5c926-1018-40a3-9c1e-6e73eeca4da9"));

    std::fs::write(env.path("baton-home/config.toml"), "archive = \"no\"\n").unwrap();
    env.cmd(&["index"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("must be true or false"));
}

#[test]
fn sigkill_while_indexing_and_archiving_loses_nothing() {
    let env = Env::new();
    // One big session (its own lines repeated to ~30 MB) keeps index busy.
    let files = native_files(&env);
    let (big, _) = files
        .iter()
        .find(|(p, _)| p.to_string_lossy().contains("24618527"))
        .unwrap();
    let lines = std::fs::read(big).unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(big).unwrap();
    while f.metadata().unwrap().len() < 30 << 20 {
        std::io::Write::write_all(&mut f, &lines).unwrap();
    }
    drop(f);
    let want = std::fs::read(big).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("baton");
    for delay_ms in [50, 200, 500, 900, 1400, 2000, 3000] {
        let mut child = std::process::Command::new(&bin)
            .env("BATON_HOME", env.path("baton-home"))
            .arg("index")
            .args(env.root_args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        // Whatever the archive recorded reads back as a prefix of the file.
        if let Ok(Some(archive)) = baton_store::Archive::open_existing(&env.path("baton-home"))
            && let Some(bytes) = archive.read(big).unwrap()
        {
            assert_eq!(&want[..bytes.len()], &bytes[..], "after {delay_ms} ms");
        }
    }
    env.json(&["index", "--json"]);
    let archive = baton_store::Archive::open(&env.path("baton-home")).unwrap();
    assert_eq!(archive.read(big).unwrap().unwrap(), want);
    assert!(archive.verifies(big).unwrap());
}

/// The sorted `path`s of a `prune --json` list.
fn paths_of(list: &Value) -> Vec<String> {
    let mut paths: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

#[test]
fn prune_deletes_only_verified_old_files_and_keeps_what_forks_need() {
    let env = Env::new();
    env.json(&["index", "--json"]);
    let files = native_files(&env);
    let path_of = |needle: &str| {
        files
            .keys()
            .find(|p| {
                p.to_string_lossy().contains(needle) && !p.starts_with(env.path("codex-legacy"))
            })
            .unwrap()
            .clone()
    };
    // The Codex fork 9126 is active again (so not old): its parent 8c3d must stay.
    let fork = path_of("9126");
    let recent = "{\"timestamp\":\"2099-01-01T00:00:00.000Z\",\"ordinal\":99,\"type\":\"event_msg\",\"payload\":{\"type\":\"token_count\",\"info\":null}}\n";
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&fork)
        .unwrap();
    std::io::Write::write_all(&mut f, recent.as_bytes()).unwrap();
    env.json(&["index", "--json"]);
    // A Claude session the agent wrote to after it was archived must stay.
    let grown = path_of("dcf5c926");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&grown)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"type\":\"x\"}\n").unwrap();
    let before = native_files(&env);

    let dry = env.json(&["prune", "--older-than", "7d", "--dry-run", "--json"]);
    assert_eq!(native_files(&env), before, "--dry-run changes nothing");
    assert_eq!(dry["dry_run"], true);
    let would = paths_of(&dry["deleted"]);
    let kept = &dry["kept"];
    let reason = |needle: &str| {
        kept.as_array()
            .unwrap()
            .iter()
            .find(|k| k["path"].as_str().unwrap().contains(needle))
            .map(|k| k["reason"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(reason("8c3d").contains("parent of kept fork"), "{dry}");
    assert!(reason("dcf5c926").contains("differs"), "{dry}");
    assert!(would.iter().any(|p| p.contains("8a8a")), "{dry}");
    assert!(
        !would
            .iter()
            .any(|p| p.contains("9126") || p.contains("8c3d") || p.contains("dcf5c926"))
    );

    let done = env.json(&["prune", "--older-than", "7d", "--json"]);
    assert_eq!(paths_of(&done["deleted"]), would);
    assert!(done["freed_bytes"].as_u64().unwrap() > 0);
    let after = native_files(&env);
    for (path, sha) in &before {
        if would.contains(&path.display().to_string()) {
            assert!(!path.exists(), "{}", path.display());
        } else {
            assert_eq!(after.get(path), Some(sha), "{} untouched", path.display());
        }
    }
    let sessions = listed(&env);
    assert_eq!(
        sessions["01a1ff8d-8a8a-7740-8c02-49607e66ddfa"]["archived"],
        true
    );
    assert_eq!(
        sessions["01a1ff8d-8c3d-7551-b270-db431e8a8997"]["archived"],
        false
    );

    // Deleting from the archive needs --yes.
    let archived_before = baton_store::Archive::open(&env.path("baton-home"))
        .unwrap()
        .files()
        .unwrap();
    env.cmd(&["prune", "--archive", "--older-than", "2098-01-01"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--yes"));
    let archive = baton_store::Archive::open(&env.path("baton-home")).unwrap();
    assert_eq!(archive.files().unwrap(), archived_before);
    let gone = env.json(&[
        "prune",
        "--archive",
        "--older-than",
        "2098-01-01",
        "--yes",
        "--json",
    ]);
    assert_eq!(
        paths_of(&gone["deleted"]),
        would,
        "only copies of files gone from disk"
    );
    assert!(archive.read(&path_of("8a8a")).unwrap().is_none());
    assert!(!listed(&env).contains_key("01a1ff8d-8a8a-7740-8c02-49607e66ddfa"));
}

#[test]
fn prune_never_deletes_a_file_without_an_archived_copy() {
    let env = Env::new();
    env.json(&["index", "--json", "--no-archive"]);
    let before = native_files(&env);
    let out = env.json(&["prune", "--older-than", "7d", "--json"]);
    assert_eq!(out["deleted"], serde_json::json!([]), "{out}");
    assert!(
        out["kept"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["reason"].as_str().unwrap().contains("not archived"))
    );
    assert_eq!(native_files(&env), before);
}

#[test]
fn index_warns_once_about_sessions_claude_will_delete_and_status_shows_them() {
    let env = Env::new();
    std::fs::write(
        env.path("claude/.claude/settings.json"),
        r#"{"cleanupPeriodDays": 10}"#,
    )
    .unwrap();
    let files = native_files(&env);
    let claude = |needle: &str| {
        files
            .keys()
            .find(|p| p.to_string_lossy().contains(needle))
            .unwrap()
            .clone()
    };
    age(&claude("dcf5c926"), 5); // deleted in ~5 days
    age(&claude("24618527"), 30); // overdue: gone at Claude's next start
    // f941a4bf: modified now, 10 days left: not warned.

    let first = env.json(&["index", "--json", "--no-archive"]);
    let warned = paths_of(&first["retention_warnings"]);
    assert_eq!(warned.len(), 2, "{first}");
    assert!(
        warned[0].contains("dcf5c926") && warned[1].contains("24618527"),
        "{warned:?}"
    );
    let again = env.json(&["index", "--json", "--no-archive"]);
    assert_eq!(
        again["retention_warnings"],
        serde_json::json!([]),
        "warned once"
    );

    let status = env.json(&["status", "--json"]);
    assert_eq!(status["archive"]["files_archived"], 0, "{status}");
    assert_eq!(status["archive"]["files_on_disk"], 7, "{status}");
    let risk = status["at_risk"].as_array().unwrap();
    assert!(
        risk[0]["path"].as_str().unwrap().contains("24618527"),
        "{status}"
    );
    assert!(risk[0]["days_left"].as_i64().unwrap() < 0);
    assert_eq!(risk[0]["archived"], false);
    let claude_home = status["homes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["agent"] == "claude")
        .unwrap();
    assert_eq!(claude_home["cleanup_period_days"], 10);
    assert_eq!(claude_home["sessions"], 3);
    let human = env.stdout(&["status"]);
    assert!(human.contains("NOT ARCHIVED"));

    env.json(&["index", "--json"]);
    let covered = env.json(&["status", "--json"]);
    let c = &covered["archive"];
    assert_eq!(c["files_archived"], c["files_on_disk"], "{covered}");
    assert_eq!(c["bytes_archived"], c["bytes_on_disk"], "{covered}");
    assert!(
        covered["at_risk"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["archived"] == true)
    );
}

/// The `problems` of `baton doctor --json` as (id prefix 8 chars, kind).
fn problem_kinds(out: &Value) -> Vec<(String, String)> {
    let mut kinds: Vec<(String, String)> = out["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap()[..8].to_string(),
                p["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn doctor_reports_other_providers_and_moved_directories_and_fixes_them_with_copies() {
    let env = Env::new();
    // The fixtures were recorded under provider `mock` in /srv/corpus/work/…
    // (gone here); this Codex home is configured for another provider.
    std::fs::write(
        env.path("codex/config.toml"),
        "model_provider = \"other\"\n[model_providers.other]\nname = \"other\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    let before = native_files(&env);
    let report = env.json(&["doctor", "--json"]);
    let kinds = problem_kinds(&report);
    assert!(
        kinds.contains(&("01a1ff8d".into(), "provider".into())),
        "{report}"
    );
    assert!(
        kinds.contains(&("dcf5c926".into(), "cwd_gone".into())),
        "{report}"
    );
    let why = report["problems"][0]["why"].as_str().unwrap();
    assert!(!why.is_empty());

    // --fix with the directory's new place: copies with new ids, originals untouched.
    let moved = env.path("moved");
    for p in ["alpha", "beta"] {
        std::fs::create_dir_all(moved.join(p)).unwrap();
    }
    let map = format!("/srv/corpus/work-pub={}", moved.display());
    let fixed = env.json(&["doctor", "--fix", "--map-path", &map, "--json"]);
    let problems = fixed["problems"].as_array().unwrap();
    let claude = problems
        .iter()
        .find(|p| p["id"].as_str().unwrap().starts_with("dcf5c926"))
        .unwrap();
    let copy = &claude["fixed"];
    let copy_path = PathBuf::from(copy["path"].as_str().unwrap());
    let slug =
        baton_native::layout::claude::project_slug(&moved.join("alpha").display().to_string());
    assert!(copy_path.to_string_lossy().contains(&slug), "{copy}");
    assert!(
        copy["resume"].as_str().unwrap().contains("claude --resume"),
        "{copy}"
    );
    let codex = problems
        .iter()
        .find(|p| p["id"].as_str().unwrap().starts_with("01a1ff8d-8a8a") && p["kind"] == "provider")
        .unwrap();
    let codex_copy = PathBuf::from(codex["fixed"]["path"].as_str().unwrap());
    let first_line = std::fs::read_to_string(&codex_copy).unwrap();
    let meta: Value = serde_json::from_str(first_line.lines().next().unwrap()).unwrap();
    assert_eq!(meta["payload"]["model_provider"], "other");
    assert!(
        codex["fixed"]["resume"]
            .as_str()
            .unwrap()
            .starts_with("codex resume ")
    );
    for (path, sha) in &before {
        assert_eq!(
            &sha256_hex(&std::fs::read(path).unwrap()),
            sha,
            "{} untouched",
            path.display()
        );
    }
    // The copies themselves are fine: the Claude copy lives in its new directory.
    let again = env.json(&["doctor", "--json"]);
    let copy_id = copy["id"].as_str().unwrap();
    assert!(
        !again["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == copy_id),
        "{again}"
    );
}

#[test]
fn sigkill_while_pruning_loses_nothing() {
    let bin = assert_cmd::cargo::cargo_bin("baton");
    for delay_ms in [5, 30, 80, 150, 300] {
        let env = Env::new();
        env.json(&["index", "--json"]);
        let before: Vec<(PathBuf, Vec<u8>)> = native_files(&env)
            .into_keys()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        let mut child = std::process::Command::new(&bin)
            .env("BATON_HOME", env.path("baton-home"))
            .args(["prune", "--older-than", "1d"])
            .args(env.root_args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        // Every file is still on disk as it was, or in the archive byte for byte.
        let archive = baton_store::Archive::open(&env.path("baton-home")).unwrap();
        for (path, bytes) in &before {
            match std::fs::read(path) {
                Ok(now) => assert_eq!(&now, bytes, "{}", path.display()),
                Err(_) => assert_eq!(
                    archive.read(path).unwrap().as_ref(),
                    Some(bytes),
                    "{} after {delay_ms} ms",
                    path.display()
                ),
            }
        }
    }
}

#[test]
fn a_codex_fork_whose_parent_was_deleted_gets_it_back_from_the_archive() {
    let env = Env::new();
    env.json(&["index", "--json"]);
    let files = native_files(&env);
    let parent = files
        .keys()
        .find(|p| p.to_string_lossy().contains("8c3d"))
        .unwrap()
        .clone();
    let parent_sha = files[&parent].clone();
    std::fs::remove_file(&parent).unwrap();
    let report = env.json(&["doctor", "--json"]);
    assert!(
        problem_kinds(&report).contains(&("01a1ff8d".into(), "parent_gone".into())),
        "{report}"
    );
    let fixed = env.json(&["doctor", "--fix", "--json"]);
    let problem = fixed["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "parent_gone")
        .unwrap();
    assert_eq!(
        problem["fixed"]["id"], "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b",
        "{problem}"
    );
    assert_eq!(sha256_hex(&std::fs::read(&parent).unwrap()), parent_sha);
}

/// The main file of every fixture session, by session id, with its SHA-256.
fn main_files(files: &BTreeMap<PathBuf, String>) -> BTreeMap<String, (PathBuf, String)> {
    files
        .iter()
        .filter_map(|(path, sha)| {
            let (_, id) = baton_native::layout::library::main_session_of(path)?;
            Some((id.to_owned(), (path.clone(), sha.clone())))
        })
        .collect()
}

/// The server's sessions by id.
fn server_sessions(
    rt: &tokio::runtime::Runtime,
    client: &baton_sync::http::Client,
) -> BTreeMap<String, baton_protocol::SessionInfo> {
    rt.block_on(client.all_sessions())
        .unwrap()
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect()
}

#[test]
fn sessions_only_the_archive_holds_are_pushed_byte_identical_and_marked_archived() {
    let env = Env::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = env.path("server");
    std::fs::create_dir_all(&data).unwrap();
    let mut config = baton_server::ServerConfig::new(data.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = rt.block_on(baton_server::start(config)).unwrap();
    let user = rt.block_on(baton_server::add_user(&data, "alice")).unwrap();
    let url = format!("http://{}", server.addr);
    let client = baton_sync::http::Client::new(&url, &user.token).unwrap();
    env.cmd(&["login", &url, &user.token]).assert().success();

    env.json(&["index", "--json"]);
    let before = native_files(&env);
    let mains = main_files(&before);
    assert_eq!(mains.len(), manifest().len(), "{mains:?}");
    for path in before.keys() {
        std::fs::remove_file(path).unwrap();
    }
    env.json(&["index", "--json"]);

    // Nothing of these sessions is on disk; push sends them from the archive.
    env.cmd(&["push", "--all", "--json"]).assert().success();
    let on_server = server_sessions(&rt, &client);
    for (id, (path, sha)) in &mains {
        let info = on_server
            .get(id)
            .unwrap_or_else(|| panic!("{id} not pushed"));
        assert!(info.archived, "{id}: {info:?}");
        let mut bytes = Vec::new();
        rt.block_on(client.read_stream(id, "main", baton_sync::http::Prefix::start(), &mut bytes))
            .unwrap();
        assert_eq!(&sha256_hex(&bytes), sha, "{id} ({})", path.display());
    }

    // Written back, the session is on disk again, and the next push says so.
    let (id, (path, sha)) = mains.iter().next().unwrap();
    env.cmd(&["rehydrate", id, "--json"]).assert().success();
    assert_eq!(&sha256_hex(&std::fs::read(path).unwrap()), sha);
    env.json(&["index", "--json"]);
    env.cmd(&["push", "--all", "--json"]).assert().success();
    let on_server = server_sessions(&rt, &client);
    assert!(!on_server[id].archived, "{:?}", on_server[id]);
    assert!(
        on_server
            .iter()
            .filter(|(other, _)| *other != id && mains.contains_key(*other))
            .all(|(_, s)| s.archived),
        "{on_server:?}"
    );
    server.abort();
}

#[test]
fn the_web_servers_own_copy_marks_a_session_archived_when_its_file_goes() {
    let env = Env::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = baton_server::ServerConfig::new(data.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.rescan_every = std::time::Duration::from_millis(100);
    config.local = Some(baton_server::local::LocalSources {
        codex_homes: vec![env.path("codex"), env.path("codex-legacy")],
        claude_dirs: vec![env.path("claude/.claude")],
    });
    let server = rt.block_on(baton_server::start(config)).unwrap();
    let client =
        baton_sync::http::Client::new(&format!("http://{}", server.addr), &server.local_token)
            .unwrap();
    let mains = main_files(&native_files(&env));
    let wait_for =
        |what: &str, done: &dyn Fn(&BTreeMap<String, baton_protocol::SessionInfo>) -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let sessions = server_sessions(&rt, &client);
                if done(&sessions) {
                    return sessions;
                }
                assert!(std::time::Instant::now() < deadline, "{what}: {sessions:?}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        };
    let all_there = |s: &BTreeMap<String, baton_protocol::SessionInfo>| {
        mains.keys().all(|id| s.contains_key(id))
    };
    let listed = wait_for("every session mirrored", &all_there);
    assert!(listed.values().all(|s| !s.archived), "{listed:?}");

    let (gone, (path, sha)) = mains.iter().next().unwrap();
    let bytes = std::fs::read(path).unwrap();
    std::fs::remove_file(path).unwrap();
    let listed = wait_for("the deleted session marked archived", &|s| {
        s.get(gone).is_some_and(|s| s.archived)
    });
    assert!(
        listed
            .iter()
            .filter(|(id, _)| *id != gone)
            .all(|(_, s)| !s.archived),
        "{listed:?}"
    );
    let mut kept = Vec::new();
    rt.block_on(client.read_stream(gone, "main", baton_sync::http::Prefix::start(), &mut kept))
        .unwrap();
    assert_eq!(&sha256_hex(&kept), sha, "the server keeps its copy");

    // Back on disk (as `baton resume` writes it), the mark goes.
    std::fs::write(path, &bytes).unwrap();
    wait_for("the restored session no longer archived", &|s| {
        s.get(gone).is_some_and(|s| !s.archived)
    });
    server.abort();
}
