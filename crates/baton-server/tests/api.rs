//! Sync protocol round trips against a real server on loopback.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

mod common;

use baton_protocol::{
    AppendResult, Changes, CheckpointList, ErrorBody, ErrorCode, HEADER_LENGTH, HEADER_OFFSET,
    HEADER_PREFIX_SHA256, HEADER_SHA256, MessageList, SearchResults, SessionInfo, sha256_hex,
};
use common::{codex_meta, start};
use std::time::Duration;

fn lines(n: usize, tag: &str) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"type\":\"x\",\"n\":{i},\"tag\":\"{tag}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn push_pull_round_trip_with_hash_equality_and_zstd_both_ways() {
    let s = start().await;
    assert_eq!(s.put(&s.a, "s1", codex_meta()).await.status(), 200);
    let data = lines(300, "round");
    let (p1, p2) = (data.len() / 3, 2 * data.len() / 3);

    let r = s.push(&s.a, "s1", "main", &data, 0, &data[..p1]).await;
    assert_eq!(r.status(), 200);
    let res: AppendResult = r.json().await.unwrap();
    assert_eq!(res.len, p1 as u64);
    assert_eq!(res.sha256, sha256_hex(&data[..p1]));

    // Second piece zstd-compressed on the wire.
    let compressed = zstd::bulk::compress(&data[p1..p2], 3).unwrap();
    let r = s
        .http
        .post(s.url("/sessions/s1/streams/main"))
        .bearer_auth(&s.a)
        .header(HEADER_OFFSET, p1.to_string())
        .header(HEADER_PREFIX_SHA256, sha256_hex(&data[..p1]))
        .header("Content-Encoding", "zstd")
        .body(compressed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<AppendResult>().await.unwrap().len, p2 as u64);
    let r = s.push(&s.a, "s1", "main", &data, p2, &data[p2..]).await;
    assert_eq!(
        r.json::<AppendResult>().await.unwrap().sha256,
        sha256_hex(&data)
    );

    // Plain pull of everything, and from an offset inside a chunk.
    let r = s.pull(&s.a, "s1", "main", 0).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[HEADER_LENGTH], data.len().to_string().as_str());
    assert_eq!(r.headers()[HEADER_SHA256], sha256_hex(&data).as_str());
    assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);
    let r = s.pull(&s.a, "s1", "main", (p1 + 7) as u64).await;
    assert_eq!(&r.bytes().await.unwrap()[..], &data[p1 + 7..]);

    // zstd pull.
    assert_eq!(&s.pull_zstd("s1", 5).await[..], &data[5..]);

    // Session info agrees.
    let (status, info) = s.get_json(&s.a, "/sessions/s1").await;
    assert_eq!(status, 200);
    let info: SessionInfo = serde_json::from_value(info).unwrap();
    assert_eq!(info.streams.len(), 1);
    assert_eq!(info.streams[0].len, data.len() as u64);
    assert_eq!(info.streams[0].sha256, sha256_hex(&data));

    // Pulling beyond the end is 416 offset_ahead.
    let r = s.pull(&s.a, "s1", "main", data.len() as u64 + 1).await;
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.json::<ErrorBody>().await.unwrap().error,
        ErrorCode::OffsetAhead
    );
}

#[tokio::test]
async fn retried_push_is_idempotent_and_partial_overlap_appends_only_the_new_part() {
    let s = start().await;
    s.put(&s.a, "s2", codex_meta()).await;
    let data = lines(50, "retry");
    let cut = 400;
    for _ in 0..3 {
        let r = s.push(&s.a, "s2", "main", &data, 0, &data[..cut]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<AppendResult>().await.unwrap().len, cut as u64);
    }
    // A retry that starts inside stored bytes and runs past the end.
    let r = s.push(&s.a, "s2", "main", &data, 100, &data[100..]).await;
    assert_eq!(r.status(), 200);
    let res: AppendResult = r.json().await.unwrap();
    assert_eq!(res.len, data.len() as u64);
    assert_eq!(res.sha256, sha256_hex(&data));
    let r = s.pull(&s.a, "s2", "main", 0).await;
    assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);
}

#[tokio::test]
async fn offset_ahead_tells_the_client_where_to_resume() {
    let s = start().await;
    s.put(&s.a, "s3", codex_meta()).await;
    let data = lines(20, "ahead");
    s.push(&s.a, "s3", "main", &data, 0, &data[..100]).await;
    let r = s.push(&s.a, "s3", "main", &data, 200, &data[200..]).await;
    assert_eq!(r.status(), 409);
    let e: ErrorBody = r.json().await.unwrap();
    assert_eq!(e.error, ErrorCode::OffsetAhead);
    assert_eq!(e.len, Some(100));
    let r = s.push(&s.a, "s3", "main", &data, 100, &data[100..]).await;
    assert_eq!(r.status(), 200);
    // Unknown session: 404 (PUT first).
    let r = s.push(&s.a, "nope", "main", &data, 0, &data).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn divergence_is_409_then_fork_keeps_both_with_lineage() {
    let s = start().await;
    s.put(
        &s.a,
        "d1",
        serde_json::json!({"agent":"claude","title":"shared"}),
    )
    .await;
    let common = lines(40, "common");
    let mut mine = common.clone();
    mine.extend(lines(10, "machine-one"));
    let mut theirs = common.clone();
    theirs.extend(lines(12, "machine-two"));

    // Machine one pushes in two appends (a checkpoint at the common prefix).
    s.push(&s.a, "d1", "main", &mine, 0, &mine[..common.len()])
        .await;
    let r = s
        .push(
            &s.a,
            "d1",
            "main",
            &mine,
            common.len(),
            &mine[common.len()..],
        )
        .await;
    assert_eq!(r.status(), 200);

    // Machine two believes the server has only the common part, then pushes its own tail.
    let r = s
        .push(
            &s.a,
            "d1",
            "main",
            &theirs,
            common.len(),
            &theirs[common.len()..],
        )
        .await;
    assert_eq!(r.status(), 409);
    let e: ErrorBody = r.json().await.unwrap();
    assert_eq!(e.error, ErrorCode::Diverged);
    assert_eq!(e.len, Some(mine.len() as u64));
    assert_eq!(e.sha256.as_deref(), Some(sha256_hex(&mine).as_str()));
    // A wrong prefix hash is also divergence.
    let r = s
        .push(
            &s.a,
            "d1",
            "main",
            &theirs,
            mine.len().min(theirs.len()),
            b"x",
        )
        .await;
    assert_eq!(r.status(), 409);

    // Find the longest common checkpoint, fork, push the rest.
    let (_, cps) = s
        .get_json(&s.a, "/sessions/d1/checkpoints?stream=main")
        .await;
    let cps: CheckpointList = serde_json::from_value(cps).unwrap();
    let best = cps
        .checkpoints
        .iter()
        .filter(|c| {
            (c.offset as usize) <= theirs.len()
                && sha256_hex(&theirs[..c.offset as usize]) == c.sha256
        })
        .map(|c| c.offset)
        .max()
        .unwrap();
    assert_eq!(best, common.len() as u64);
    let fork_req = serde_json::json!({"new_id":"d1-two","streams":[{"name":"main","len":best,"sha256":sha256_hex(&common)}]});
    for _ in 0..2 {
        let r = s
            .http
            .post(s.url("/sessions/d1/fork"))
            .bearer_auth(&s.a)
            .json(&fork_req)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "fork is idempotent");
        let info: SessionInfo = r.json().await.unwrap();
        assert_eq!(info.diverged_from.as_deref(), Some("d1"));
        assert_eq!(info.streams[0].len, best);
    }
    let r = s
        .push(
            &s.a,
            "d1-two",
            "main",
            &theirs,
            best as usize,
            &theirs[best as usize..],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        &s.pull(&s.a, "d1", "main", 0).await.bytes().await.unwrap()[..],
        &mine[..]
    );
    assert_eq!(
        &s.pull(&s.a, "d1-two", "main", 0)
            .await
            .bytes()
            .await
            .unwrap()[..],
        &theirs[..]
    );

    // A fork whose prefix is not the server's is refused; new_id taken by another session is `exists`.
    let bad = serde_json::json!({"new_id":"d1-three","streams":[{"name":"main","len":best,"sha256":sha256_hex(b"other")}]});
    let r = s
        .http
        .post(s.url("/sessions/d1/fork"))
        .bearer_auth(&s.a)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    s.put(&s.a, "taken", codex_meta()).await;
    let r = s
        .http
        .post(s.url("/sessions/d1/fork"))
        .bearer_auth(&s.a)
        .json(&serde_json::json!({"new_id":"taken"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<ErrorBody>().await.unwrap().error,
        ErrorCode::Exists
    );
}

#[tokio::test]
async fn large_appends_use_blob_files_and_fork_can_cut_inside_one() {
    let s = start().await;
    s.put(&s.a, "big", codex_meta()).await;
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let r = s
        .push(&s.a, "big", "main", &data, 0, &data[..500_000])
        .await;
    assert_eq!(r.status(), 200);
    let r = s
        .push(&s.a, "big", "main", &data, 500_000, &data[500_000..])
        .await;
    assert_eq!(
        r.json::<AppendResult>().await.unwrap().sha256,
        sha256_hex(&data)
    );
    let blobs = walk_count(&s.dir.path().join("server/blobs"));
    assert!(blobs >= 2, "expected blob files, found {blobs}");
    let cut = 123_457usize;
    let req = serde_json::json!({"new_id":"big2","streams":[{"name":"main","len":cut,"sha256":sha256_hex(&data[..cut])}]});
    let r = s
        .http
        .post(s.url("/sessions/big/fork"))
        .bearer_auth(&s.a)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = s.pull(&s.a, "big2", "main", 0).await.bytes().await.unwrap();
    assert_eq!(&got[..], &data[..cut]);
    // The fork continues from the cut with the right prefix hash.
    let r = s
        .push(&s.a, "big2", "main", &data, cut, &data[cut..cut + 10])
        .await;
    assert_eq!(
        r.json::<AppendResult>().await.unwrap().sha256,
        sha256_hex(&data[..cut + 10])
    );
}

fn walk_count(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().unwrap() != "tmp" {
                n += walk_count(&p);
            }
        } else {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn changes_feed_and_list_paging() {
    let s = start().await;
    for i in 0..5 {
        s.put(&s.a, &format!("c{i}"), codex_meta()).await;
    }
    let (_, v) = s.get_json(&s.a, "/changes?since=0&limit=3").await;
    let ch: Changes = serde_json::from_value(v).unwrap();
    assert_eq!(ch.sessions.len(), 3);
    assert!(ch.more);
    let ids: Vec<_> = ch.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["c0", "c1", "c2"]);
    let (_, v) = s
        .get_json(&s.a, &format!("/changes?since={}", ch.next_since))
        .await;
    let ch2: Changes = serde_json::from_value(v).unwrap();
    assert_eq!(ch2.sessions.len(), 2);
    assert!(!ch2.more);
    // Touching c0 moves it to the end of the feed.
    s.put(
        &s.a,
        "c0",
        serde_json::json!({"agent":"codex","title":"renamed"}),
    )
    .await;
    let (_, v) = s
        .get_json(&s.a, &format!("/changes?since={}", ch2.next_since))
        .await;
    let ch3: Changes = serde_json::from_value(v).unwrap();
    assert_eq!(ch3.sessions.len(), 1);
    assert_eq!(ch3.sessions[0].title.as_deref(), Some("renamed"));

    let (_, v) = s.get_json(&s.a, "/sessions?limit=2").await;
    let page: baton_protocol::SessionList = serde_json::from_value(v).unwrap();
    assert_eq!(page.sessions[0].id, "c0");
    let cursor = page.next_cursor.unwrap();
    let (_, v) = s
        .get_json(&s.a, &format!("/sessions?limit=10&cursor={cursor}"))
        .await;
    let rest: baton_protocol::SessionList = serde_json::from_value(v).unwrap();
    assert_eq!(rest.sessions.len(), 3);
    assert!(rest.next_cursor.is_none());
    // A cursor the server did not make is refused.
    let r = s
        .http
        .get(s.url(&format!("/sessions?limit=10&cursor={}", u64::MAX)))
        .bearer_auth(&s.a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, v) = s.get_json(&s.a, "/sessions?q=renamed").await;
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn listings_carry_a_bounded_first_prompt_and_title_the_session_route_the_whole() {
    use baton_protocol::{LISTING_TEXT_MAX_CHARS, SessionList, SessionMeta};
    let s = start().await;
    // Set in storage directly: a 60 MiB prompt is far over the JSON body limit.
    let storage = baton_server::open_storage(&s.dir.path().join("server")).unwrap();
    let alice = storage.authenticate(&s.a).await.unwrap().unwrap();
    let prompt = format!("{}{}", "é".repeat(600), "x".repeat(60 * 1024 * 1024));
    let mut meta: SessionMeta = serde_json::from_value(codex_meta()).unwrap();
    meta.first_prompt = Some(prompt.clone());
    meta.title = Some("short title".into());
    storage.put_session(alice.id, "huge", meta).await.unwrap();
    s.put(&s.a, "small", codex_meta()).await;

    let check = |sessions: &[SessionInfo]| {
        let huge = sessions.iter().find(|x| x.id == "huge").unwrap();
        let cut = huge.first_prompt.as_deref().unwrap();
        assert_eq!(cut.chars().count(), LISTING_TEXT_MAX_CHARS);
        assert!(prompt.starts_with(cut));
        assert!(huge.first_prompt_truncated);
        assert_eq!(huge.title.as_deref(), Some("short title"));
        assert!(!huge.title_truncated);
        let small = sessions.iter().find(|x| x.id == "small").unwrap();
        assert!(!small.first_prompt_truncated && !small.title_truncated);
    };
    for path in ["/sessions", "/changes?since=0"] {
        let r = s
            .http
            .get(s.url(path))
            .bearer_auth(&s.a)
            .send()
            .await
            .unwrap();
        let body = r.bytes().await.unwrap();
        assert!(body.len() < 16 * 1024, "{path}: {} bytes", body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let sessions: Vec<SessionInfo> = serde_json::from_value(v["sessions"].clone()).unwrap();
        check(&sessions);
    }
    let (_, v) = s.get_json(&s.a, "/sessions?q=short").await;
    let list: SessionList = serde_json::from_value(v).unwrap();
    assert!(list.sessions[0].first_prompt_truncated);
    // The session route has it whole.
    let (status, v) = s.get_json(&s.a, "/sessions/huge").await;
    assert_eq!(status, 200);
    let whole: SessionInfo = serde_json::from_value(v).unwrap();
    assert_eq!(whole.first_prompt.as_deref(), Some(prompt.as_str()));
    assert!(!whole.first_prompt_truncated);
}

#[tokio::test]
async fn search_hits_carry_a_bounded_first_prompt() {
    use baton_protocol::{LISTING_TEXT_MAX_CHARS, SearchResults};
    let s = start().await;
    let fixture = baton_testkit::fixtures_dir()
        .join("codex/sessions/2026/11/21/rollout-2026-11-21T19-20-28-01a1ff8d-8c3d-7551-b270-db431e8a8997.jsonl");
    let prompt = "RUN: echo pub-tool-output-beta";
    let long = format!("{prompt} {}", "lengthy ".repeat(2 * LISTING_TEXT_MAX_CHARS));
    let text = std::fs::read_to_string(&fixture).unwrap();
    assert!(text.contains(prompt));
    let bytes = text.replace(prompt, &long).into_bytes();
    let id = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    s.put(&s.a, id, codex_meta()).await;
    let r = s.push(&s.a, id, "main", &bytes, 0, &bytes).await;
    assert_eq!(r.status(), 200);
    // The indexer runs in the background; wait for it.
    let mut results = SearchResults { hits: vec![] };
    for _ in 0..100 {
        let (_, v) = s.get_json(&s.a, "/search?q=third").await;
        results = serde_json::from_value(v).unwrap();
        if !results.hits.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hit = results
        .hits
        .iter()
        .find(|h| h.session.id == id)
        .expect("a hit");
    let first = hit.session.first_prompt.as_deref().unwrap();
    assert_eq!(first.chars().count(), LISTING_TEXT_MAX_CHARS);
    assert!(long.starts_with(first));
    assert!(hit.session.first_prompt_truncated);
    // The session route has it whole.
    let (_, v) = s.get_json(&s.a, &format!("/sessions/{id}")).await;
    assert!(
        v["first_prompt"].as_str() == Some(long.as_str()),
        "the whole prompt"
    );
}

#[tokio::test]
async fn plaintext_sessions_are_indexed_encrypted_ones_are_not() {
    let s = start().await;
    let fixture = baton_testkit::fixtures_dir()
        .join("codex/sessions/2026/11/21/rollout-2026-11-21T19-20-28-01a1ff8d-8c3d-7551-b270-db431e8a8997.jsonl");
    let bytes = std::fs::read(&fixture).unwrap();
    let id = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    s.put(&s.a, id, codex_meta()).await;
    let r = s.push(&s.a, id, "main", &bytes, 0, &bytes).await;
    assert_eq!(r.status(), 200);

    s.put(
        &s.a,
        "secret",
        serde_json::json!({"agent":"codex","encrypted":true,"title":"opaque"}),
    )
    .await;
    s.push(&s.a, "secret", "main", &bytes, 0, &bytes).await;

    // The indexer runs in the background; wait for it.
    let mut hits = SearchResults { hits: vec![] };
    for _ in 0..100 {
        // A trailing `*` matches a prefix, as in `baton search`.
        let (_, v) = s.get_json(&s.a, "/search?q=pub-tool-output-bet*").await;
        hits = serde_json::from_value(v).unwrap();
        if !hits.hits.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hits.hits.len(), 1, "exactly the plaintext session matches");
    assert_eq!(hits.hits[0].session.id, id);
    let snippet = &hits.hits[0].snippet;
    assert!(snippet.contains("«pub-tool-output-beta»"), "{snippet}");
    let info = &hits.hits[0].session;
    assert_eq!(info.cwd.as_deref(), Some("/srv/corpus/work-pub/beta"));
    assert_eq!(info.user_turns, 3);

    let (_, v) = s.get_json(&s.a, &format!("/sessions/{id}/messages")).await;
    let list: MessageList = serde_json::from_value(v).unwrap();
    assert!(!list.encrypted);
    let prompts: Vec<_> = list
        .messages
        .iter()
        .filter(|m| m.kind == baton_native::MessageKind::Prompt)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(
        prompts,
        [
            "RUN: echo pub-tool-output-beta",
            "pub second prompt beta ünïcødé ✓",
            "pub third prompt beta"
        ]
    );
    assert!(
        list.messages
            .iter()
            .any(|m| m.kind == baton_native::MessageKind::ToolResult
                && m.text.contains("pub-tool-output-beta"))
    );

    let (_, v) = s.get_json(&s.a, "/sessions/secret/messages").await;
    let list: MessageList = serde_json::from_value(v).unwrap();
    assert!(list.encrypted);
    assert!(list.messages.is_empty());
    assert_eq!(list.session.title.as_deref(), Some("opaque"));
    let r = s
        .put(
            &s.a,
            "secret",
            serde_json::json!({"agent":"codex","encrypted":false}),
        )
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn subagent_streams_round_trip() {
    let s = start().await;
    s.put(&s.a, "p", serde_json::json!({"agent":"claude"}))
        .await;
    let data = lines(5, "sub");
    let r = s
        .push(&s.a, "p", "subagents/agent-x.jsonl", &data, 0, &data)
        .await;
    assert_eq!(r.status(), 200);
    let got = s
        .pull(&s.a, "p", "subagents/agent-x.jsonl", 0)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &data[..]);
    // Encoded slash works the same.
    let got = s.pull(&s.a, "p", "subagents%2Fagent-x.jsonl", 0).await;
    assert_eq!(got.status(), 200);
    let (_, v) = s.get_json(&s.a, "/sessions/p").await;
    assert_eq!(v["streams"][0]["name"], "subagents/agent-x.jsonl");
}

#[tokio::test]
async fn openapi_spec_describes_every_route_and_auth() {
    let s = start().await;
    let spec: serde_json::Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.0.3");
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut paths: Vec<&str> = spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/changes",
            "/facets",
            "/me",
            "/openapi.json",
            "/search",
            "/sessions",
            "/sessions/{id}",
            "/sessions/{id}/checkpoints",
            "/sessions/{id}/fork",
            "/sessions/{id}/fork-at",
            "/sessions/{id}/messages",
            "/sessions/{id}/shares",
            "/sessions/{id}/shares/{share}",
            "/sessions/{id}/streams/{name}",
            "/shared/{token}/messages",
            "/stats",
        ]
    );
    let push = &spec["paths"]["/sessions/{id}/streams/{name}"]["post"]["responses"];
    for code in ["200", "400", "401", "404", "409", "413", "415"] {
        assert!(push.get(code).is_some(), "push documents {code}");
    }
    // Every documented route answers 401 without a token, except the spec
    // itself and a share link's route (its token is the credential).
    for p in paths
        .iter()
        .filter(|p| **p != "/openapi.json" && !p.starts_with("/shared/"))
    {
        let url = s.url(&p.replace("{id}", "x").replace("{name}", "main"));
        let r = s.http.get(url).send().await.unwrap();
        assert!(
            matches!(r.status().as_u16(), 401 | 405),
            "{p}: {}",
            r.status()
        );
    }
    // The UI is served from the binary, at every path it routes, under a
    // strict Content-Security-Policy.
    for page in ["/", "/s/some-id", "/search?q=x", "/stats", "/share/abc"] {
        let res = s
            .http
            .get(format!("{}{page}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{page}");
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("img-src 'self' data:"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let html = res.text().await.unwrap();
        assert!(html.contains("/assets/app.js"), "{page}");
        assert!(!html.contains("<script>"), "no inline script: {page}");
    }
    let js = s
        .http
        .get(format!("{}/assets/app.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let remote = regex::Regex::new(r#"(src|href)=["']?(https?:)?//"#).unwrap();
    let html = s
        .http
        .get(format!("{}/", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!remote.is_match(&html), "the page loads nothing remote");
}

/// Every string schema in the spec whose pattern describes stream names.
fn stream_name_schemas(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("pattern")
                .and_then(|p| p.as_str())
                .is_some_and(|p| p.contains("{0,254}"))
            {
                out.push(v.clone());
            }
            m.values().for_each(|x| stream_name_schemas(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| stream_name_schemas(x, out)),
        _ => {}
    }
}

#[test]
fn openapi_stream_name_schemas_agree_with_the_server() {
    let spec: serde_json::Value = serde_json::from_str(baton_server::OPENAPI_JSON).unwrap();
    let mut schemas = Vec::new();
    stream_name_schemas(&spec, &mut schemas);
    assert_eq!(
        schemas.len(),
        3,
        "fork body, checkpoints query, stream path"
    );
    let long_segment = "a".repeat(255);
    let nine_segments = ["a"; 9].join("/");
    let samples = [
        "main",
        "subagents/agent-x.jsonl",
        "a/b/c/d/e/f/g/h",
        nine_segments.as_str(),
        long_segment.as_str(),
        "a/../b",
        "../x",
        ".x",
        "a//b",
        "/a",
        "a/",
        "a\\b",
        "",
    ];
    for schema in &schemas {
        let re = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let max = schema["maxLength"].as_u64().unwrap() as usize;
        for name in samples {
            let spec_ok = re.is_match(name) && name.len() <= max;
            assert_eq!(
                spec_ok,
                baton_protocol::validate_stream_name(name).is_ok(),
                "{name:?} against {schema}"
            );
        }
    }
}

#[tokio::test]
async fn messages_come_in_pages() {
    let s = start().await;
    s.put(&s.a, "m", codex_meta()).await;
    let rollout = std::fs::read(baton_testkit::fixtures_dir().join(
        "codex/sessions/2026/11/21/rollout-2026-11-21T19-20-28-01a1ff8d-8a8a-7740-8c02-49607e66ddfa.jsonl",
    ))
    .unwrap();
    // Several appends, so the reader sees lines split across pieces.
    let cuts = [0, rollout.len() / 3, rollout.len() / 2 + 7, rollout.len()];
    for w in cuts.windows(2) {
        let r = s
            .push(&s.a, "m", "main", &rollout, w[0], &rollout[w[0]..w[1]])
            .await;
        assert_eq!(r.status(), 200);
    }
    let (status, all) = s.get_json(&s.a, "/sessions/m/messages?limit=5000").await;
    assert_eq!(status, 200);
    let all = all["messages"].as_array().unwrap().clone();
    assert!(all.len() > 3, "the fixture has several messages");
    assert!(all.iter().any(|m| m["text"] == "pub first prompt alpha"));
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let (status, page) = s
            .get_json(
                &s.a,
                &format!("/sessions/m/messages?offset={offset}&limit=2"),
            )
            .await;
        assert_eq!(status, 200);
        let msgs = page["messages"].as_array().unwrap();
        assert!(msgs.len() <= 2);
        paged.extend(msgs.iter().cloned());
        match page["next_offset"].as_u64() {
            Some(next) => {
                assert_eq!(next, offset + 2);
                offset = next;
            }
            None => break,
        }
    }
    assert_eq!(paged, all);
    for bad in ["limit=0", "limit=5001", "offset=-1"] {
        let (status, _) = s
            .get_json(&s.a, &format!("/sessions/m/messages?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}");
    }
    // Beyond the end: an empty last page.
    let (_, page) = s.get_json(&s.a, "/sessions/m/messages?offset=100000").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 0);
    assert!(page.get("next_offset").is_none());

    // A zstd pull is compressed piece by piece into one frame.
    assert_eq!(s.pull_zstd("m", 5).await, &rollout[5..]);
}
