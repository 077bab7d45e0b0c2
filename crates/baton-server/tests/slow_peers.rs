//! Slow and silent peers: header, idle and body-rate timeouts, the bound on
//! open connections, and a `Content-Length` over the limit refused unread.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

mod common;

use baton_protocol::HEADER_OFFSET;
use baton_server::listen::Timeouts;
use common::{MAX_APPEND, codex_meta, start_configured};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short timeouts, so each test takes about a second.
fn short() -> Timeouts {
    Timeouts {
        header_read: Duration::from_millis(500),
        idle: Duration::from_secs(2),
        body_grace: Duration::from_millis(500),
        body_min_rate: 1000,
    }
}

/// Read until the server closes the connection (failing after 10 s); what it sent.
async fn read_until_closed(sock: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out))
        .await
        .expect("the server kept the connection open")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_slowloris_head_and_an_idle_connection_are_closed_within_the_timeout() {
    let s = start_configured(|cfg| cfg.timeouts = short()).await;
    // Partial headers, then nothing.
    let mut slow = TcpStream::connect(s.addr()).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let t = Instant::now();
    let answer = read_until_closed(&mut slow).await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(!answer.contains("200 OK"), "{answer}");
    // A keep-alive connection with no next request is closed too.
    let mut idle = TcpStream::connect(s.addr()).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let answer = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_body_slower_than_the_minimum_rate_gets_408() {
    let s = start_configured(|cfg| cfg.timeouts = short()).await;
    s.put(&s.a, "slow", codex_meta()).await;
    let mut sock = TcpStream::connect(s.addr()).await.unwrap();
    let head = format!(
        "POST /api/v1/sessions/slow/streams/main HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {}\r\n{HEADER_OFFSET}: 0\r\nContent-Length: 100000\r\n\r\n",
        s.a
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(b"{\"a\":1}\n").await.unwrap();
    let t = Instant::now();
    let answer = read_until_closed(&mut sock).await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"timeout""#), "{answer}");
    let (_, v) = s.get_json(&s.a, "/sessions/slow").await;
    assert_eq!(v["streams"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_any_body_byte() {
    let s = start_configured(|cfg| cfg.timeouts = Timeouts::default()).await;
    s.put(&s.a, "big", codex_meta()).await;
    for (path, extra) in [
        (
            "/api/v1/sessions/big/streams/main",
            format!("{HEADER_OFFSET}: 0\r\n"),
        ),
        (
            "/api/v1/sessions/big",
            "Content-Type: application/json\r\n".to_string(),
        ),
    ] {
        let method = if path.ends_with("main") {
            "POST"
        } else {
            "PUT"
        };
        let mut sock = TcpStream::connect(s.addr()).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{extra}\
             Content-Length: 10000000000\r\n\r\n",
            s.a
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        // No body is sent: the answer comes anyway, at once (well before any timeout).
        let t = Instant::now();
        let answer = read_until_closed(&mut sock).await;
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(answer.starts_with("HTTP/1.1 413"), "{method}: {answer}");
        assert!(answer.contains(r#""error":"too_large""#), "{answer}");
    }
    // Just over the push limit is refused the same way.
    let mut sock = TcpStream::connect(s.addr()).await.unwrap();
    let head = format!(
        "POST /api/v1/sessions/big/streams/main HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         {HEADER_OFFSET}: 0\r\nContent-Length: {}\r\n\r\n",
        s.a,
        MAX_APPEND + 1
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut sock).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_until_one_closes() {
    let s = start_configured(|cfg| {
        cfg.max_connections = 2;
        cfg.timeouts = Timeouts {
            header_read: Duration::from_secs(30),
            ..short()
        };
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut sock = TcpStream::connect(s.addr()).await.unwrap();
        sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(sock);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(s.addr()).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    let waited = tokio::time::timeout(Duration::from_millis(500), third.read(&mut first)).await;
    assert!(waited.is_err(), "a third connection was served at once");
    held.clear();
    let answer = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_peer_that_stops_reading_a_pull_is_disconnected_after_the_idle_time() {
    let s = start_configured(|cfg| {
        cfg.timeouts = Timeouts {
            header_read: Duration::from_secs(30),
            idle: Duration::from_secs(1),
            ..short()
        };
    })
    .await;
    s.put(&s.a, "big", codex_meta()).await;
    // More than the loopback socket buffers hold.
    let piece: Vec<u8> = (0..MAX_APPEND as u32).map(|i| (i % 251) as u8).collect();
    let mut full = Vec::new();
    for _ in 0..6 {
        let offset = full.len();
        full.extend_from_slice(&piece);
        let r = s.push(&s.a, "big", "main", &full, offset, &piece).await;
        assert_eq!(r.status(), 200);
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut sock = socket.connect(s.server.addr).await.unwrap();
    let req = format!(
        "GET /api/v1/sessions/big/streams/main HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        s.a
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    // Stop reading; the server's writes stall and it gives up.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the stalled connection open");
    assert!(got.len() < full.len(), "got all {} bytes", got.len());
}
