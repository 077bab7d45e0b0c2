//! Shared helpers: a real server on 127.0.0.1:0 with two accounts.
#![allow(dead_code)]

use baton_protocol::{HEADER_OFFSET, HEADER_PREFIX_SHA256, sha256_hex};
use baton_server::api::Limits;
use baton_server::{RunningServer, ServerConfig};
use reqwest::{Client, Response};

pub struct Srv {
    pub base: String,
    pub a: String,
    pub b: String,
    pub http: Client,
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
}

/// Push limit of the test server: above axum's 2 MiB default and far above
/// [`MAX_JSON`], so a test pushing more than either proves the push route's
/// own limit is the one applied.
pub const MAX_APPEND: usize = 3 * 1024 * 1024;
/// JSON body limit of the test server.
pub const MAX_JSON: usize = 64 * 1024;

pub async fn start() -> Srv {
    start_configured(|_| {}).await
}

/// A test server with the given limits.
pub async fn start_with(limits: Limits) -> Srv {
    start_configured(|cfg| cfg.limits = limits).await
}

/// A test server with the default test limits, configured further by `f`.
pub async fn start_configured(f: impl FnOnce(&mut ServerConfig)) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::new(dir.path().join("server"));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.limits = Limits {
        max_append: MAX_APPEND,
        max_json: MAX_JSON,
        ..Limits::default()
    };
    f(&mut cfg);
    let server = baton_server::start(cfg).await.unwrap();
    let a = baton_server::add_user(&dir.path().join("server"), "alice")
        .await
        .unwrap();
    let b = baton_server::add_user(&dir.path().join("server"), "bob")
        .await
        .unwrap();
    Srv {
        base: format!("http://{}", server.addr),
        a: a.token,
        b: b.token,
        http: Client::new(),
        server,
        dir,
    }
}

impl Srv {
    /// `host:port` of the server.
    pub fn addr(&self) -> String {
        self.server.addr.to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    pub async fn put(&self, token: &str, id: &str, meta: serde_json::Value) -> Response {
        self.http
            .put(self.url(&format!("/sessions/{id}")))
            .bearer_auth(token)
            .json(&meta)
            .send()
            .await
            .unwrap()
    }

    /// Push `body` at `offset`, with the prefix hash of `full[..offset]`.
    pub async fn push(
        &self,
        token: &str,
        id: &str,
        stream: &str,
        full: &[u8],
        offset: usize,
        body: &[u8],
    ) -> Response {
        self.http
            .post(self.url(&format!("/sessions/{id}/streams/{stream}")))
            .bearer_auth(token)
            .header(HEADER_OFFSET, offset.to_string())
            .header(HEADER_PREFIX_SHA256, sha256_hex(&full[..offset]))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn pull(&self, token: &str, id: &str, stream: &str, from: u64) -> Response {
        self.http
            .get(self.url(&format!("/sessions/{id}/streams/{stream}?from={from}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Pull stream `main` of session `id` from byte `from` as account A,
    /// asking for zstd: asserts the answer is zstd and returns it decoded.
    pub async fn pull_zstd(&self, id: &str, from: u64) -> Vec<u8> {
        let r = self
            .http
            .get(self.url(&format!("/sessions/{id}/streams/main?from={from}")))
            .bearer_auth(&self.a)
            .header("Accept-Encoding", "zstd")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-encoding"], "zstd");
        let body = r.bytes().await.unwrap();
        zstd::stream::decode_all(&body[..]).unwrap()
    }

    pub async fn get_json(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

pub fn codex_meta() -> serde_json::Value {
    serde_json::json!({"agent": "codex"})
}
