//! `baton secrets scan/allow` and redaction on export: a fixture Codex
//! session gets a tool output holding a token; scan lists it masked, every
//! export format carries a placeholder instead, `--no-redact` warns and
//! keeps it, an envelope imported where the key is restores the exact
//! bytes (elsewhere the placeholder stays), and an allow-listed value is
//! left alone.

#![allow(clippy::disallowed_methods)] // tests build their own scratch files

mod common;

use common::FixtureHomes;
use std::path::{Path, PathBuf};

/// A GitHub token put together at run time (this file holds none).
fn token() -> String {
    format!("ghp_{}", "Zq7Xw2Lk9Pm4".repeat(3))
}

/// The first Codex rollout of the fixture homes.
fn rollout(homes: &FixtureHomes) -> PathBuf {
    let mut stack = vec![homes.path("codex/sessions")];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                files.push(p);
            }
        }
    }
    files.sort();
    files.into_iter().next().expect("a fixture rollout")
}

fn session_id(path: &Path) -> String {
    baton_testkit::codex_id_of(path).expect("rollout id")
}

#[test]
fn scan_export_import_and_allow() {
    let homes = FixtureHomes::new();
    let file = rollout(&homes);
    let id = session_id(&file);
    let line = serde_json::json!({
        "timestamp": "2026-11-21T19:21:00.000Z",
        "type": "response_item",
        "payload": {"type": "function_call_output", "call_id": "call_env", "output": format!("GITHUB_TOKEN={}\n", token())},
    });
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend(serde_json::to_vec(&line).unwrap());
    bytes.push(b'\n');
    std::fs::write(&file, &bytes).unwrap();
    homes.json(&["index", "--json"]);

    // Scan: one finding, masked.
    let scan = homes.json(&["secrets", "scan", "--all", "--json"]);
    let findings = scan["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{scan}");
    assert_eq!(findings[0]["session"], id.as_str());
    assert_eq!(findings[0]["rule"], "github-token");
    assert!(!scan.to_string().contains(&token()[8..]), "{scan}");
    let allow = findings[0]["allow"].as_str().unwrap().to_owned();

    // Every format is redacted; lines stay JSON.
    for format in ["md", "html", "jsonl"] {
        let out = homes.stdout(&["export", &id, "--format", format]);
        assert!(!out.contains(&token()), "{format} leaks the token");
        assert!(out.contains("‹secret:github-token:"), "{format}: {out}");
    }
    let jsonl = homes.stdout(&["export", &id, "--format", "jsonl"]);
    for l in jsonl.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("still JSON");
    }
    let raw = homes
        .cmd(&["export", &id, "--format", "jsonl", "--no-redact"])
        .assert()
        .success();
    let raw = raw.get_output();
    assert!(String::from_utf8_lossy(&raw.stdout).contains(&token()));
    assert!(String::from_utf8_lossy(&raw.stderr).contains("--no-redact: 1 secret(s)"));

    // An envelope imported where the key is gets the exact bytes back.
    let envelope = homes.path("s.baton");
    let out = envelope.to_str().unwrap();
    homes
        .cmd(&["export", &id, "--format", "envelope", "-o", out])
        .assert()
        .success();
    let packed = std::fs::read(&envelope).unwrap();
    let unpacked = zstd::stream::decode_all(packed.as_slice()).unwrap_or(packed);
    assert!(!String::from_utf8_lossy(&unpacked).contains(&token()));
    let import_into = |home: &Path| {
        let mut cmd = assert_cmd::Command::cargo_bin("baton").unwrap();
        cmd.env("BATON_HOME", home)
            .arg("import")
            .arg(&envelope)
            .arg("--json");
        let json = common::assert_json(&mut cmd);
        let own = json["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id.as_str())
            .unwrap_or_else(|| panic!("the session's own file: {json}"));
        std::fs::read(own["path"].as_str().unwrap()).unwrap()
    };
    let keyed = homes.path("keyed");
    std::fs::create_dir_all(&keyed).unwrap();
    std::fs::copy(
        homes.path("baton-home/secrets.key"),
        keyed.join("secrets.key"),
    )
    .unwrap();
    assert_eq!(import_into(&keyed), bytes);
    let elsewhere = import_into(&homes.path("keyless"));
    let text = String::from_utf8_lossy(&elsewhere);
    assert!(!text.contains(&token()) && text.contains("‹secret:github-token:"));

    // Allowed, the value is no finding and stays in exports.
    let out = homes.stdout(&["secrets", "allow", &allow]);
    assert!(out.contains("allowed"), "{out}");
    let config = std::fs::read_to_string(homes.path("baton-home/config.toml")).unwrap();
    assert!(config.contains(&allow), "{config}");
    let scan = homes.json(&["secrets", "scan", "--all", "--json"]);
    assert_eq!(scan["findings"], serde_json::json!([]));
    let jsonl = homes.stdout(&["export", &id, "--format", "jsonl"]);
    assert!(jsonl.contains(&token()));
    homes
        .cmd(&["secrets", "allow", "no-such-rule:0123456789ab"])
        .assert()
        .failure();
}
