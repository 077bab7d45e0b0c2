//! Per-session directory: `<data>/sessions/<session_id>/` holding everything
//! about one session when persistence is on.
//!
//! | file | content |
//! |---|---|
//! | `transcript.jsonl` | symlink to the Codex rollout |
//! | `session.log` | tracing output of that session ([`SessionLogRouter`]) |
//! | `raw_api.jsonl` | model request and response bodies with timing ([`RawApiRecord`]) |
//! | `meta.jsonl` | approvals, denials, cancellations, errors ([`MetaRecord`]) |
//!
//! Every file is an [`AppendLog`], so appends never wait for the disk. When the
//! directory cannot be created [`SessionDir::prepare`] logs one warning and
//! returns `None`; callers then keep their default locations.

use baton_native::write;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use ts_rs::TS;

use crate::error::{RecordError, Result};
use crate::writer::{AppendLog, Durability, create_dirs, sync_new_entry};

/// Name of the transcript symlink inside a session directory.
pub const TRANSCRIPT_FILE: &str = "transcript.jsonl";
/// Name of the per-session tracing log.
pub const SESSION_LOG_FILE: &str = "session.log";
/// Name of the raw model API log.
pub const RAW_API_FILE: &str = "raw_api.jsonl";
/// Name of the approvals/denials/cancellations/errors log.
pub const META_FILE: &str = "meta.jsonl";

/// One model API exchange, as written to `raw_api.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RawApiRecord {
    /// When the request started (UTC, ms, `Z`).
    pub timestamp: String,
    /// HTTP method.
    pub method: String,
    /// Request URL.
    pub url: String,
    /// HTTP status, when a response arrived.
    #[ts(optional)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Request body (JSON when it parsed, else a string).
    #[ts(as = "Value")]
    pub request_body: Value,
    /// Response body (JSON, SSE text as a string, or null).
    #[ts(as = "Value")]
    pub response_body: Value,
    /// Milliseconds from sending the request to the end of the response.
    #[ts(type = "number")]
    pub duration_ms: u64,
}

/// Replacement written instead of a secret header or query value.
pub const REDACTED: &str = "[REDACTED]";

/// One model request and its response, one line of `raw_api.jsonl`.
///
/// The fields of [`RawApiRecord`] come first (flattened, so any reader of
/// `RawApiRecord` reads these lines too); the proxy adds headers, session,
/// completeness and finer timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CapturedExchange {
    /// Time, method, upstream URL (secret query values redacted), status,
    /// request body, response body (SSE as the full event-stream text) and
    /// total duration.
    #[serde(flatten)]
    pub record: RawApiRecord,
    /// Unique id of this exchange (UUID v7, so ids sort by time).
    pub id: String,
    /// Session named by the request's session header; `None` when unattributed.
    pub session_id: Option<String>,
    /// Path and query as the agent sent them (secret query values redacted).
    pub path: String,
    /// Request header name (lower case) to value; repeated headers joined
    /// with `", "`; secret values [`REDACTED`].
    pub request_headers: Map<String, Value>,
    /// Response headers, redacted the same way; `None` without a response.
    pub response_headers: Option<Map<String, Value>>,
    /// True when the response body was read to its end.
    pub complete: bool,
    /// Milliseconds until the upstream response headers arrived.
    pub headers_ms: Option<f64>,
    /// Milliseconds until the first response body byte arrived.
    pub ttfb_ms: Option<f64>,
    /// Milliseconds until the response ended (or failed), sub-millisecond.
    pub total_ms: f64,
    /// Why the exchange did not complete normally (connection failure, stream
    /// cut, agent gone), if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<String>,
}

/// What a [`MetaRecord`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum MetaKind {
    /// The user approved an action.
    Approval,
    /// The user denied an action.
    Denial,
    /// A turn or action was cancelled.
    Cancellation,
    /// An error the session hit.
    Error,
}

/// One line of `meta.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct MetaRecord {
    /// When it happened (UTC, ms, `Z`).
    pub timestamp: String,
    /// Kind of event.
    pub kind: MetaKind,
    /// Free-form details (command, call id, message, ...).
    #[ts(as = "Value")]
    pub detail: Value,
}

/// An open session directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionDir {
    id: String,
    dir: PathBuf,
    log: AppendLog,
    raw_api: AppendLog,
    meta: AppendLog,
    durability: Durability,
}

impl SessionDir {
    /// Directory of session `session_id` under data directory `data_dir`.
    pub fn path_for(data_dir: &Path, session_id: &str) -> PathBuf {
        data_dir.join("sessions").join(session_id)
    }

    /// Create (or reopen) `<data_dir>/sessions/<session_id>/` and its log
    /// files, appended with [`Durability::Flush`].
    pub fn open(data_dir: &Path, session_id: &str) -> Result<SessionDir> {
        Self::open_with(data_dir, session_id, Durability::Flush)
    }

    /// [`SessionDir::open`] with the given durability for every log; under
    /// [`Durability::Fsync`] new directories and files are fsynced into
    /// their parents too.
    pub fn open_with(
        data_dir: &Path,
        session_id: &str,
        durability: Durability,
    ) -> Result<SessionDir> {
        let dir = Self::path_for(data_dir, session_id);
        create_dirs(&dir, durability)?;
        Ok(SessionDir {
            id: session_id.to_string(),
            log: AppendLog::open(dir.join(SESSION_LOG_FILE), durability)?,
            raw_api: AppendLog::open(dir.join(RAW_API_FILE), durability)?,
            meta: AppendLog::open(dir.join(META_FILE), durability)?,
            dir,
            durability,
        })
    }

    /// [`SessionDir::open_with`] for a persistence setting: `None`
    /// (persistence off) does nothing; a failure (permissions, full disk)
    /// logs one warning and returns `None` so the caller keeps its default
    /// locations.
    pub fn prepare(
        persistence: Option<&Path>,
        session_id: &str,
        durability: Durability,
    ) -> Option<SessionDir> {
        let data_dir = persistence?;
        match Self::open_with(data_dir, session_id, durability) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(
                    session_id,
                    "session directory disabled, using default locations: {e}"
                );
                None
            }
        }
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Point `transcript.jsonl` at `rollout` (a symlink; an existing link is
    /// replaced atomically, and under [`Durability::Fsync`] the directory is
    /// synced afterwards).
    pub fn link_transcript(&self, rollout: &Path) -> Result<()> {
        let link = self.dir.join(TRANSCRIPT_FILE);
        if std::fs::read_link(&link).ok().as_deref() == Some(rollout) {
            return Ok(());
        }
        write::replace_symlink(rollout, &link).map_err(|e| RecordError::io(&link, e))?;
        sync_new_entry(&link, self.durability)
    }

    /// Resolve a `--debug-log` style path: relative paths land inside this directory.
    pub fn resolve_debug_log(&self, path: &Path) -> PathBuf {
        resolve_debug_log(Some(self), &self.dir, path)
    }

    /// The `raw_api.jsonl` writer (for a capture proxy).
    pub fn raw_api(&self) -> &AppendLog {
        &self.raw_api
    }

    /// Append one exchange to `raw_api.jsonl`.
    pub async fn append_raw_api(&self, record: &RawApiRecord) -> Result<()> {
        self.raw_api.append_json(record).await
    }

    /// Append one event to `meta.jsonl`.
    pub async fn append_meta(&self, record: &MetaRecord) -> Result<()> {
        self.meta.append_json(record).await
    }

    /// Wait until everything appended to the three logs is as durable as
    /// their [`Durability`] promises.
    pub async fn flush(&self) -> Result<()> {
        self.log.flush().await?;
        self.raw_api.flush().await?;
        self.meta.flush().await
    }
}

/// Where a debug log goes: absolute paths as given; relative ones inside the
/// session directory when there is one, else inside `default_dir`.
pub fn resolve_debug_log(session: Option<&SessionDir>, default_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    session.map_or(default_dir, |s| s.path()).join(path)
}

/// Routes tracing events to the `session.log` of the session they belong to.
///
/// An event belongs to a session when it, or any span it is inside, has a
/// `session_id` field equal to an attached session's id. Install
/// [`SessionLogRouter::layer`] once; attach sessions as they open.
#[derive(Debug, Clone, Default)]
pub struct SessionLogRouter {
    routes: Arc<RwLock<HashMap<String, AppendLog>>>,
}

impl SessionLogRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Send events of `dir`'s session to its `session.log`.
    pub fn attach(&self, dir: &SessionDir) {
        if let Ok(mut routes) = self.routes.write() {
            routes.insert(dir.id.clone(), dir.log.clone());
        }
    }

    /// Stop routing session `session_id`.
    pub fn detach(&self, session_id: &str) {
        if let Ok(mut routes) = self.routes.write() {
            routes.remove(session_id);
        }
    }

    /// The `tracing_subscriber` layer doing the routing.
    pub fn layer(&self) -> SessionLogLayer {
        SessionLogLayer {
            routes: self.routes.clone(),
        }
    }
}

/// Layer returned by [`SessionLogRouter::layer`].
#[derive(Debug, Clone)]
pub struct SessionLogLayer {
    routes: Arc<RwLock<HashMap<String, AppendLog>>>,
}

/// Span extension: the session a span belongs to.
struct SessionTag(String);

#[derive(Default)]
struct FieldText {
    session_id: Option<String>,
    message: String,
    fields: String,
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "session_id" {
            self.session_id = Some(value.to_string());
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "session_id" => self.session_id = Some(format!("{value:?}")),
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
}

impl<S> Layer<S> for SessionLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = FieldText::default();
        attrs.record(&mut v);
        if let (Some(sid), Some(span)) = (v.session_id, ctx.span(id)) {
            span.extensions_mut().insert(SessionTag(sid));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut v = FieldText::default();
        values.record(&mut v);
        if let (Some(sid), Some(span)) = (v.session_id, ctx.span(id)) {
            span.extensions_mut().replace(SessionTag(sid));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut v = FieldText::default();
        event.record(&mut v);
        let sid = v.session_id.clone().or_else(|| {
            ctx.event_scope(event)?
                .find_map(|span| span.extensions().get::<SessionTag>().map(|t| t.0.clone()))
        });
        let Some(sid) = sid else { return };
        let Some(log) = self.routes.read().ok().and_then(|r| r.get(&sid).cloned()) else {
            return;
        };
        let meta = event.metadata();
        let line = format!(
            "{} {} {}: {}{}",
            crate::types::now_timestamp(),
            meta.level(),
            meta.target(),
            v.message,
            v.fields
        );
        log.try_append_line(line.into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[tokio::test]
    async fn files_and_tracing_land_in_the_session_dir() {
        let data = tempfile::tempdir().unwrap();
        let dir = SessionDir::open(data.path(), "s1").unwrap();
        let other = SessionDir::open(data.path(), "s2").unwrap();
        let router = SessionLogRouter::new();
        router.attach(&dir);
        router.attach(&other);
        let subscriber = tracing_subscriber::registry().with(router.layer());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("turn", session_id = "s1");
            let _g = span.enter();
            tracing::info!(call = 3, "approved exec");
            tracing::info!(session_id = "s2", "explicit other session");
        });
        tracing::info!("outside any session");

        dir.append_raw_api(&RawApiRecord {
            timestamp: "t".into(),
            method: "POST".into(),
            url: "http://x/v1/responses".into(),
            status: Some(200),
            request_body: serde_json::json!({"input": []}),
            response_body: Value::Null,
            duration_ms: 12,
        })
        .await
        .unwrap();
        dir.append_meta(&MetaRecord {
            timestamp: "t".into(),
            kind: MetaKind::Denial,
            detail: serde_json::json!({"command": "rm -rf /"}),
        })
        .await
        .unwrap();
        dir.flush().await.unwrap();
        other.flush().await.unwrap();

        let p = dir.path();
        let log = std::fs::read_to_string(p.join(SESSION_LOG_FILE)).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.contains("INFO") && log.contains("approved exec call=3"),
            "{log}"
        );
        let log2 = std::fs::read_to_string(other.path().join(SESSION_LOG_FILE)).unwrap();
        assert!(log2.contains("explicit other session"), "{log2}");
        let raw = std::fs::read_to_string(p.join(RAW_API_FILE)).unwrap();
        let rec: RawApiRecord = serde_json::from_str(raw.trim()).unwrap();
        assert_eq!(rec.duration_ms, 12);
        let meta = std::fs::read_to_string(p.join(META_FILE)).unwrap();
        assert!(meta.contains("\"kind\":\"denial\""), "{meta}");

        let rollout = data.path().join("rollout.jsonl");
        std::fs::write(&rollout, b"{}\n").unwrap();
        dir.link_transcript(&rollout).unwrap();
        dir.link_transcript(&rollout).unwrap();
        assert_eq!(std::fs::read(p.join(TRANSCRIPT_FILE)).unwrap(), b"{}\n");

        assert_eq!(
            dir.resolve_debug_log(Path::new("debug.log")),
            p.join("debug.log")
        );
        assert_eq!(
            resolve_debug_log(None, Path::new("/default"), Path::new("d.log")),
            Path::new("/default/d.log")
        );
        assert_eq!(
            dir.resolve_debug_log(Path::new("/abs/d.log")),
            Path::new("/abs/d.log")
        );
    }

    #[test]
    fn unusable_data_dir_falls_back_with_none() {
        // A file where the `sessions` folder should be fails for every user, root included.
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("sessions"), b"").unwrap();
        assert!(SessionDir::prepare(Some(data.path()), "s", Durability::Fsync).is_none());
        assert!(SessionDir::prepare(None, "s", Durability::Flush).is_none());
    }
}
