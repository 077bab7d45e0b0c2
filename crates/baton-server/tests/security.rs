//! Auth, account isolation, size limits and input validation.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

mod common;

use baton_protocol::{ErrorBody, ErrorCode, HEADER_OFFSET, HEADER_PREFIX_SHA256, sha256_hex};
use baton_server::api::Limits;
use common::{MAX_APPEND, MAX_JSON, codex_meta, start, start_with};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every authenticated route, with a method and a body.
fn routes(id: &str) -> Vec<(Method, String, Option<&'static str>)> {
    vec![
        (Method::GET, "/me".into(), None),
        (Method::GET, "/sessions".into(), None),
        (Method::GET, format!("/sessions/{id}"), None),
        (
            Method::PUT,
            format!("/sessions/{id}"),
            Some(r#"{"agent":"codex"}"#),
        ),
        (Method::GET, format!("/sessions/{id}/messages"), None),
        (
            Method::GET,
            format!("/sessions/{id}/checkpoints?stream=main"),
            None,
        ),
        (
            Method::POST,
            format!("/sessions/{id}/fork"),
            Some(r#"{"new_id":"zz"}"#),
        ),
        (Method::GET, format!("/sessions/{id}/streams/main"), None),
        (
            Method::POST,
            format!("/sessions/{id}/streams/main"),
            Some("x"),
        ),
        (Method::GET, "/search?q=x".into(), None),
        (Method::GET, "/changes?since=0".into(), None),
    ]
}

#[tokio::test]
async fn no_or_unknown_token_is_401_everywhere() {
    let s = start().await;
    for (m, path, body) in routes("s") {
        for auth in [
            None,
            Some("Bearer nope"),
            Some("Basic abc"),
            Some("Bearer "),
        ] {
            let mut req = s
                .http
                .request(m.clone(), s.url(&path))
                .header(HEADER_OFFSET, "0");
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            if let Some(b) = body {
                req = req.body(b);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{m} {path} with {auth:?}");
            assert_eq!(
                r.json::<ErrorBody>().await.unwrap().error,
                ErrorCode::Unauthorized
            );
        }
    }
    // The spec is public.
    let r = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn another_accounts_session_is_404_on_every_route() {
    let s = start().await;
    s.put(&s.a, "mine", codex_meta()).await;
    let data = b"{\"a\":1}\n".to_vec();
    s.push(&s.a, "mine", "main", &data, 0, &data).await;
    for (m, path, body) in routes("mine") {
        if !path.contains("mine") || m == Method::PUT {
            continue;
        }
        let mut req = s
            .http
            .request(m.clone(), s.url(&path))
            .bearer_auth(&s.b)
            .header(HEADER_OFFSET, "0");
        if let Some(b) = body {
            req = req.body(b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 404, "{m} {path}");
    }
    // Ids are per account: bob's PUT creates bob's own session and leaves alice's alone.
    assert_eq!(
        s.put(&s.b, "mine", serde_json::json!({"agent":"claude"}))
            .await
            .status(),
        200
    );
    let (_, v) = s.get_json(&s.a, "/sessions/mine").await;
    assert_eq!(v["agent"], "codex");
    assert_eq!(v["streams"][0]["len"], data.len());
    let (_, v) = s.get_json(&s.b, "/sessions/mine").await;
    assert_eq!(v["streams"].as_array().unwrap().len(), 0);
    // Bob sees none of alice's sessions in lists, changes or search.
    let (_, v) = s.get_json(&s.b, "/changes?since=0").await;
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    let (_, v) = s.get_json(&s.b, "/sessions").await;
    assert!(
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["agent"] == "claude")
    );
}

#[tokio::test]
async fn pushes_use_their_own_limit_not_the_json_one() {
    let s = start().await;
    s.put(&s.a, "big", codex_meta()).await;
    // Larger than the JSON limit and than axum's 2 MiB default, within the push limit.
    let len = 2 * 1024 * 1024 + 1024;
    assert!(len > MAX_JSON && len < MAX_APPEND);
    let data: Vec<u8> = (0..len as u32).map(|i| (i % 251) as u8).collect();
    let r = s.push(&s.a, "big", "main", &data, 0, &data).await;
    assert_eq!(r.status(), 200);
    let got = s.pull(&s.a, "big", "main", 0).await.bytes().await.unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let s = start().await;
    s.put(&s.a, "big", codex_meta()).await;
    let big = vec![b'a'; MAX_APPEND + 1];
    let r = s.push(&s.a, "big", "main", &big, 0, &big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<ErrorBody>().await.unwrap().error,
        ErrorCode::TooLarge
    );
    // A small zstd body that decodes beyond the limit.
    let bomb = zstd::bulk::compress(&vec![0u8; MAX_APPEND * 4], 19).unwrap();
    assert!(bomb.len() < MAX_APPEND);
    let r = s
        .http
        .post(s.url("/sessions/big/streams/main"))
        .bearer_auth(&s.a)
        .header(HEADER_OFFSET, "0")
        .header("Content-Encoding", "zstd")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // JSON bodies have their own (smaller) limit.
    let huge_title = "t".repeat(100 * 1024);
    let r = s
        .put(
            &s.a,
            "big",
            serde_json::json!({"agent":"codex","title":huge_title}),
        )
        .await;
    assert_eq!(r.status(), 413);
    // A zstd frame asking for a window beyond 8 MiB would make the decoder
    // allocate more than the push reserved: refused like broken zstd.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.window_log(27).unwrap();
    std::io::Write::write_all(&mut enc, b"{}\n").unwrap();
    let wide_window = enc.finish().unwrap();
    // Unsupported encodings and broken zstd are 415.
    for (enc, body) in [
        ("gzip", b"x".to_vec()),
        ("zstd", b"not zstd".to_vec()),
        ("zstd", wide_window),
    ] {
        let r = s
            .http
            .post(s.url("/sessions/big/streams/main"))
            .bearer_auth(&s.a)
            .header(HEADER_OFFSET, "0")
            .header("Content-Encoding", enc)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{enc}");
    }
    // Nothing was stored.
    let (_, v) = s.get_json(&s.a, "/sessions/big").await;
    assert_eq!(v["streams"].as_array().unwrap().len(), 0);
}

/// Send a raw request line (no client-side path normalisation) and return the status.
async fn raw_status(addr: std::net::SocketAddr, method: &str, path: &str, token: &str) -> u16 {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{HEADER_OFFSET}: 0\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn malformed_ids_traversal_and_garbage_are_400() {
    let s = start().await;
    s.put(&s.a, "ok", codex_meta()).await;
    let bad_paths = [
        "/api/v1/sessions/..",
        "/api/v1/sessions/%2e%2e",
        "/api/v1/sessions/%2E%2E/streams/main",
        "/api/v1/sessions/..%2F..%2Fetc",
        "/api/v1/sessions/a%5Cb",
        "/api/v1/sessions/a\\b",
        "/api/v1/sessions/.hidden",
        "/api/v1/sessions/has%20space",
        "/api/v1/sessions/ok/streams/../../etc/passwd",
        "/api/v1/sessions/ok/streams/%2e%2e/x",
        "/api/v1/sessions/ok/streams//etc/passwd",
        "/api/v1/sessions/ok/streams/%2Fetc%2Fpasswd",
        "/api/v1/sessions/ok/streams/a%5C..%5Cb",
        "/api/v1/sessions/ok/streams/sub/./x",
        "/api/v1/sessions/%00/messages",
    ];
    for path in bad_paths {
        for method in ["GET", "POST"] {
            let status = raw_status(s.server.addr, method, path, &s.a).await;
            assert!(
                status == 400 || (status == 405 && !path.contains("streams")),
                "{method} {path} gave {status}"
            );
        }
    }
    let long = "x".repeat(200);
    let r = s
        .http
        .get(s.url(&format!("/sessions/{long}")))
        .bearer_auth(&s.a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Garbage JSON, wrong shapes, unknown fields, bad ids inside bodies.
    for body in [
        "not json",
        "{}",
        r#"{"agent":"vim"}"#,
        r#"{"agent":"codex","extra":1}"#,
        r#"{"agent":"codex","forked_from":"../x"}"#,
        "[1,2]",
    ] {
        let r = s
            .http
            .put(s.url("/sessions/ok"))
            .bearer_auth(&s.a)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "PUT {body}");
    }
    for body in [
        "nope",
        r#"{"new_id":"../x"}"#,
        r#"{"new_id":"ok"}"#,
        r#"{"new_id":"n","streams":[{"name":"../main","len":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}"#,
        r#"{"new_id":"n","streams":[{"name":"main","len":0,"sha256":"zz"}]}"#,
    ] {
        let r = s
            .http
            .post(s.url("/sessions/ok/fork"))
            .bearer_auth(&s.a)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "fork {body}");
    }
    // Bad headers and queries.
    let cases: Vec<(&str, &str)> = vec![("abc", ""), ("-1", ""), ("5", "")];
    for (off, sha) in cases {
        let r = s
            .http
            .post(s.url("/sessions/ok/streams/main"))
            .bearer_auth(&s.a)
            .header(HEADER_OFFSET, off)
            .header(HEADER_PREFIX_SHA256, sha)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "offset {off:?} sha {sha:?}");
    }
    let r = s
        .http
        .post(s.url("/sessions/ok/streams/main"))
        .bearer_auth(&s.a)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "missing offset");
    for q in [
        "/sessions?limit=0",
        "/sessions?limit=x",
        "/sessions?cursor=-3",
        "/changes?since=abc",
        "/sessions/ok/streams/main?from=-1",
        "/search?limit=100000",
    ] {
        let r = s.http.get(s.url(q)).bearer_auth(&s.a).send().await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }
    // FTS syntax in a query is just text.
    for q in [
        "\"",
        "a OR",
        "NEAR(",
        "*",
        "a\"b",
        "-x",
        "%",
        "_",
        "\u{1b}\u{c1}s\u{5}b7\u{0}",
        "\u{0}",
        "\u{6}",
        " \u{1} ",
    ] {
        let r = s
            .http
            .get(s.url("/search"))
            .query(&[("q", q)])
            .bearer_auth(&s.a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "search {q:?}");
        let r = s
            .http
            .get(s.url("/sessions"))
            .query(&[("q", q)])
            .bearer_auth(&s.a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "list q {q:?}");
    }
    // Still healthy, and the valid session is intact.
    let data = b"{}\n";
    let r = s.push(&s.a, "ok", "main", data, 0, data).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["sha256"],
        sha256_hex(data)
    );
}

#[tokio::test]
async fn pushes_beyond_the_in_flight_byte_cap_get_503_until_memory_frees() {
    let s = start_with(Limits {
        max_append: MAX_APPEND,
        max_json: MAX_JSON,
        max_inflight: MAX_APPEND,
        inflight_wait: std::time::Duration::from_millis(300),
    })
    .await;
    s.put(&s.a, "big", codex_meta()).await;
    s.put(&s.a, "small", codex_meta()).await;
    // A push declaring the whole budget sends half its body, then stalls.
    let data = vec![b'x'; MAX_APPEND];
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/sessions/big/streams/main HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\n{HEADER_OFFSET}: 0\r\nContent-Length: {}\r\n\r\n",
        s.a,
        data.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&data[..MAX_APPEND / 2]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Meanwhile even a tiny push cannot reserve memory: 503 `busy` with Retry-After.
    let r = s.push(&s.a, "small", "main", b"hi\n", 0, b"hi\n").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.json::<ErrorBody>().await.unwrap().error, ErrorCode::Busy);
    // Once the stalled push completes, its reservation is released.
    slow.write_all(&data[MAX_APPEND / 2..]).await.unwrap();
    let mut answer = vec![0u8; 12];
    slow.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let r = s.push(&s.a, "small", "main", b"hi\n", 0, b"hi\n").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_abandoned_push_releases_its_in_flight_reservation() {
    let s = start_with(Limits {
        max_append: MAX_APPEND,
        max_json: MAX_JSON,
        max_inflight: MAX_APPEND,
        inflight_wait: std::time::Duration::from_secs(5),
    })
    .await;
    s.put(&s.a, "small", codex_meta()).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/sessions/small/streams/side HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\n{HEADER_OFFSET}: 0\r\nContent-Length: {MAX_APPEND}\r\n\r\nabc",
        s.a
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // A waiting push goes through once the stalled client hangs up.
    let waiting = {
        let (http, url, token) = (
            s.http.clone(),
            s.url("/sessions/small/streams/main"),
            s.a.clone(),
        );
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .header(HEADER_OFFSET, "0")
                .body("hi\n")
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the push must wait for memory");
    drop(slow);
    assert_eq!(waiting.await.unwrap(), 200);
}

#[tokio::test]
async fn every_error_is_a_json_error_body() {
    let s = start().await;
    s.put(&s.a, "ok", codex_meta()).await;
    let long_query = format!("/search?q={}", "x".repeat(baton_server::api::MAX_URI));
    let cases = [
        (
            reqwest::Method::GET,
            "/nope".to_string(),
            404,
            ErrorCode::NotFound,
        ),
        (
            reqwest::Method::DELETE,
            "/me".into(),
            405,
            ErrorCode::MethodNotAllowed,
        ),
        (
            reqwest::Method::POST,
            "/sessions".into(),
            405,
            ErrorCode::MethodNotAllowed,
        ),
        (reqwest::Method::GET, long_query, 414, ErrorCode::TooLarge),
    ];
    for (method, path, status, code) in cases {
        let r = s
            .http
            .request(method.clone(), s.url(&path))
            .bearer_auth(&s.a)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            status,
            "{method} {}",
            &path[..path.len().min(40)]
        );
        assert_eq!(r.json::<ErrorBody>().await.unwrap().error, code);
    }
    // Outside the API too.
    let r = s
        .http
        .post(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<ErrorBody>().await.unwrap().error,
        ErrorCode::MethodNotAllowed
    );
}

#[tokio::test]
async fn session_metadata_is_validated() {
    let s = start().await;
    // JSON routes refuse other content types.
    let r = s
        .http
        .put(s.url("/sessions/m"))
        .bearer_auth(&s.a)
        .header("Content-Type", "text/plain")
        .body(r#"{"agent":"codex"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        r.json::<ErrorBody>().await.unwrap().error,
        ErrorCode::UnsupportedMediaType
    );
    // Times must be RFC 3339.
    for bad in ["yesterday", "2026-13-01T00:00:00Z", "2026-01-01", ""] {
        for field in ["started_at", "updated_at"] {
            let r = s
                .put(&s.a, "m", serde_json::json!({"agent": "codex", field: bad}))
                .await;
            assert_eq!(r.status(), 400, "{field} = {bad:?}");
            assert_eq!(
                r.json::<ErrorBody>().await.unwrap().error,
                ErrorCode::BadRequest
            );
        }
    }
    let good = serde_json::json!({"agent": "codex", "started_at": "2026-01-01T00:00:00.123Z",
        "updated_at": "2026-01-02T03:04:05+02:00"});
    assert_eq!(s.put(&s.a, "m", good).await.status(), 200);
    // `agent` may change until the session holds bytes, never after.
    assert_eq!(
        s.put(&s.a, "m", serde_json::json!({"agent": "claude"}))
            .await
            .status(),
        200
    );
    let line = b"{\"type\":\"user\"}\n";
    assert_eq!(s.push(&s.a, "m", "main", line, 0, line).await.status(), 200);
    let r = s
        .put(&s.a, "m", serde_json::json!({"agent": "codex"}))
        .await;
    assert_eq!(r.status(), 409);
    let body = r.json::<ErrorBody>().await.unwrap();
    assert_eq!(body.error, ErrorCode::Conflict);
    assert!(body.message.contains("`agent`"), "{}", body.message);
    let (_, v) = s.get_json(&s.a, "/sessions/m").await;
    assert_eq!(v["agent"], "claude");
}

/// A line holding a Slack token (put together here: this file holds none).
fn line_with_secret() -> Vec<u8> {
    format!(
        "{{\"output\":\"SLACK=xoxb-{}-{}\"}}\n",
        "1234567890",
        "Ab3dE".repeat(4)
    )
    .into_bytes()
}

#[tokio::test]
async fn pushed_secrets_are_refused_redacted_or_accepted_as_the_admin_says() {
    use baton_server::api::SecretPolicy;
    let line = line_with_secret();
    for policy in [
        SecretPolicy::Refuse,
        SecretPolicy::Redact,
        SecretPolicy::Accept,
    ] {
        let s = common::start_configured(|cfg| cfg.secrets = policy).await;
        assert!(s.put(&s.a, "s1", codex_meta()).await.status().is_success());
        let r = s.push(&s.a, "s1", "main", &line, 0, &line).await;
        let stored = s.pull(&s.a, "s1", "main", 0).await;
        let stored = if stored.status().is_success() {
            stored.bytes().await.unwrap().to_vec()
        } else {
            Vec::new()
        };
        match policy {
            SecretPolicy::Refuse => {
                assert_eq!(r.status(), 422);
                let body: ErrorBody = r.json().await.unwrap();
                assert_eq!(body.error, ErrorCode::SecretFound);
                assert!(body.message.contains("slack-token"), "{}", body.message);
                assert!(stored.is_empty());
            }
            SecretPolicy::Redact => {
                assert!(r.status().is_success());
                let text = String::from_utf8(stored).unwrap();
                assert_eq!(text, "{\"output\":\"SLACK=‹secret:slack-token:›\"}\n");
            }
            SecretPolicy::Accept => {
                assert!(r.status().is_success());
                assert_eq!(stored, line);
            }
        }
        // An encrypted session is ciphertext: never scanned.
        let encrypted = serde_json::json!({"agent": "codex", "encrypted": true});
        assert!(s.put(&s.a, "s2", encrypted).await.status().is_success());
        let r = s.push(&s.a, "s2", "main", &line, 0, &line).await;
        assert!(r.status().is_success(), "{policy:?}");
    }
}
