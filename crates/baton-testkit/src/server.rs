//! The scripted model server: an axum app on its own thread and tokio runtime.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::request::{RecordedRequest, classify};
use crate::script;

/// Requests seen so far plus the id sequence (which `clear` does not reset).
#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    seq: u64,
}

/// Shared state of one server.
type Shared = Arc<Mutex<State>>;

/// Lock the state, recovering from a poisoned lock (a panicking test thread must not hide the
/// requests from the others).
fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scripted model server on `127.0.0.1:<random port>` that speaks the OpenAI Responses API
/// (Codex) and the Anthropic Messages API (Claude Code), records every request and answers by
/// the rules in [`crate::script`]. It runs on its own thread, so sync tests can use it; it stops
/// when dropped.
pub struct ModelServer {
    /// Bound port.
    port: u16,
    /// Recorded requests and the id sequence.
    state: Shared,
    /// Stops the server when sent (or dropped).
    stop: Option<oneshot::Sender<()>>,
    /// The server thread.
    thread: Option<JoinHandle<()>>,
}

impl ModelServer {
    /// Bind a random local port and start serving. Panics (with the reason) only when the
    /// machine cannot bind a loopback socket or start a thread.
    pub fn start() -> ModelServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("ModelServer: cannot bind 127.0.0.1:0: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("ModelServer: no local address: {e}"))
            .port();
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("ModelServer: cannot make the socket non-blocking: {e}"));
        let state = Shared::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state.clone());
        let thread = std::thread::Builder::new()
            .name(format!("model-server-{port}"))
            .spawn(move || serve(listener, app, stopped))
            .unwrap_or_else(|e| panic!("ModelServer: cannot spawn the server thread: {e}"));
        ModelServer {
            port,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received since the start (or the last [`clear`](Self::clear)), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// The received requests that carry an agent conversation
    /// ([`RecordedRequest::is_conversation_turn`]), in order.
    pub fn turn_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_conversation_turn)
            .collect()
    }

    /// Forget the recorded requests. Ids keep counting up, so they stay unique per server.
    pub fn clear(&self) {
        lock(&self.state).requests.clear();
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for ModelServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// Run the app until `stopped` fires; open connections are dropped with the runtime.
fn serve(listener: std::net::TcpListener, app: Router, stopped: oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ModelServer: cannot start a tokio runtime: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ModelServer: cannot register the socket: {e}");
                return;
            }
        };
        tokio::select! {
            res = axum::serve(listener, app) => {
                if let Err(e) = res {
                    eprintln!("ModelServer: server error: {e}");
                }
            }
            _ = stopped => {}
        }
    });
}

/// The axum app: every method and path goes to [`handle`].
fn router(state: Shared) -> Router {
    Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { handle(&state, method, uri, headers, body) }
        },
    )
}

/// Record the request, then answer it.
fn handle(state: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    let mut header_map = BTreeMap::<String, String>::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let api = match (method == Method::POST, classify(&path)) {
        (true, "responses") => "responses",
        (true, "messages") => "messages",
        _ => "other",
    };
    let req = RecordedRequest {
        api: api.to_owned(),
        method: method.as_str().to_owned(),
        path,
        headers: header_map,
        body,
    };
    let seq = {
        let mut st = lock(state);
        st.seq += 1;
        st.requests.push(req.clone());
        st.seq
    };
    answer(&req, seq)
}

/// The HTTP answer to a recorded request with sequence number `seq`.
fn answer(req: &RecordedRequest, seq: u64) -> Response {
    if req.api != "other" && !req.body.is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the request body is not a JSON object",
        );
    }
    let route = req.path.split('?').next().unwrap_or("");
    match req.api.as_str() {
        "responses" => {
            let reply = script::decide(req);
            if req.is_stream() {
                sse(script::responses_sse(req, &reply, seq))
            } else {
                let item = script::responses_item(&reply, seq);
                axum::Json(json!({
                    "id": format!("resp_{seq}"), "object": "response", "status": "completed",
                    "model": req.body.get("model").cloned().unwrap_or(Value::Null),
                    "output": [item],
                    "usage": {"input_tokens": script::INPUT_TOKENS,
                        "output_tokens": script::OUTPUT_TOKENS,
                        "total_tokens": script::INPUT_TOKENS + script::OUTPUT_TOKENS},
                }))
                .into_response()
            }
        }
        "messages" => {
            let reply = script::decide(req);
            if req.is_stream() {
                sse(script::messages_sse(req, &reply, seq))
            } else {
                axum::Json(script::messages_json(req, &reply, seq)).into_response()
            }
        }
        _ if route.ends_with("/messages/count_tokens") => {
            axum::Json(json!({"input_tokens": script::INPUT_TOKENS})).into_response()
        }
        // Claude's connectivity probe (`HEAD /api/hello`) when non-essential traffic is on.
        _ if route == "/api/hello" => StatusCode::OK.into_response(),
        _ if req.method == "GET" && route.ends_with("/models") => {
            axum::Json(json!({"object": "list", "data": [], "models": [], "has_more": false}))
                .into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("the scripted model server does not serve {route}"),
        ),
    }
}

/// A `text/event-stream` response with the given body.
fn sse(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A JSON error in the shape both APIs use.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}
