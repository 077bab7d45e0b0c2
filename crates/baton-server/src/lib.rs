//! Self-hosted sync server: axum routes, auth, storage trait with the
//! embedded SQLite + blob-file backend and the team backend (PostgreSQL +
//! an S3-compatible bucket, any number of replicas), web UI.
//!
//! [`start`] opens the storage ([`Backends`]: embedded by default), makes sure the built-in `local`
//! account exists (its token is written to `<data>/local-token`, never
//! logged; [`local_token`] reads it), starts the
//! indexer and, unless disabled, the mirror of this machine's own sessions
//! into the `local` account ([`local`]), then serves [`api::router`].

// Unit tests build their own scratch files (clippy.toml bans writes elsewhere).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod api;
pub mod embedded;
pub mod file_blobs;
pub mod hash;
pub mod index;
pub mod listen;
pub mod local;
pub mod object_blobs;
pub mod postgres;
pub mod storage;
pub mod web;

use baton_protocol::NewUser;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use storage::{BlobStore, Storage, StorageError};
use tokio::sync::Notify;

pub use baton_protocol::OPENAPI_JSON;

/// Name of the built-in account that owns this machine's own sessions.
pub const LOCAL_USER: &str = "local";

/// File under the data directory holding the `local` account's token.
pub const LOCAL_TOKEN_FILE: &str = "local-token";

/// Why the server could not start or an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Storage failed or refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file or socket operation failed.
    #[error("{0}")]
    Io(String),
    /// The configuration names something unusable.
    #[error("{0}")]
    Config(String),
}

/// Where the server keeps metadata and session bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backends {
    /// `postgres://…` (the team server); `None`: the embedded SQLite in the data directory.
    pub database: Option<String>,
    /// `s3://BUCKET[/PREFIX]`; `None`: blob files in the data directory.
    pub blobs: Option<String>,
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Data directory (`$BATON_HOME/server`): the embedded backend's files
    /// and the `local` account's token.
    pub data_dir: PathBuf,
    /// Database and blob store.
    pub backends: Backends,
    /// Request body limits.
    pub limits: api::Limits,
    /// This machine's agent homes to mirror into the `local` account; `None` disables it.
    pub local: Option<local::LocalSources>,
    /// How often the local sessions are rescanned.
    pub rescan_every: Duration,
    /// Notified to rescan the local sessions now (`baton serve`'s file
    /// watcher does so when an agent writes), before `rescan_every` ends.
    pub rescan_now: Arc<Notify>,
    /// How long the server waits for a slow or silent peer.
    pub timeouts: listen::Timeouts,
    /// Most connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// What to do with a push holding a secret.
    pub secrets: api::SecretPolicy,
}

impl ServerConfig {
    /// Defaults: 127.0.0.1:7878, default limits and timeouts, no local
    /// mirror, rescan every 30 s, 512 connections.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data_dir,
            backends: Backends::default(),
            limits: api::Limits::default(),
            local: None,
            rescan_every: Duration::from_secs(30),
            rescan_now: Arc::new(Notify::new()),
            timeouts: listen::Timeouts::default(),
            max_connections: 512,
            secrets: api::SecretPolicy::default(),
        }
    }
}

/// A running server.
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// Token of the built-in `local` account.
    pub local_token: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Serve until the process is stopped (or the listener fails).
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(res) => res.map_err(|e| ServerError::Io(format!("server stopped: {e}"))),
            Err(e) => Err(ServerError::Io(format!("server task failed: {e}"))),
        }
    }

    /// Stop serving.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Read the `local` account's token from `<data_dir>/local-token`, creating
/// it (mode 0600, written atomically) on first use; the server accepts it
/// from its next start on.
pub fn local_token(data_dir: &Path) -> Result<String, ServerError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| ServerError::Io(format!("cannot create {}: {e}", data_dir.display())))?;
    let path = data_dir.join(LOCAL_TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let t = existing.trim();
        if t.len() >= 32 {
            return Ok(t.to_string());
        }
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let write =
        || baton_native::write::replace_file_mode(&path, format!("{token}\n").as_bytes(), 0o600);
    write().map_err(|e| ServerError::Io(format!("cannot write {}: {e}", path.display())))?;
    Ok(token)
}

/// Open the data directory's storage (the embedded backend).
pub fn open_storage(data_dir: &Path) -> Result<Arc<dyn Storage>, ServerError> {
    Ok(Arc::new(embedded::Embedded::open(data_dir)?))
}

/// Open the storage `backends` name (the embedded parts in `data_dir`),
/// checking that the database and the bucket can be reached; the error
/// says what to fix.
pub async fn open_backends(
    backends: &Backends,
    data_dir: &Path,
) -> Result<Arc<dyn Storage>, ServerError> {
    let blobs: Arc<dyn BlobStore> = match &backends.blobs {
        None => Arc::new(file_blobs::FileBlobs::new(data_dir.join("blobs"))),
        Some(url) => {
            let url = object_blobs::BucketUrl::parse(url).map_err(ServerError::Config)?;
            let bucket = object_blobs::ObjectBlobs::new(url, tokio::runtime::Handle::current())
                .map_err(ServerError::Config)?;
            bucket.check().await?;
            Arc::new(bucket)
        }
    };
    match &backends.database {
        None => Ok(Arc::new(embedded::Embedded::open_with(data_dir, blobs)?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::Postgres::open(url, blobs).await?))
        }
        Some(url) => Err(ServerError::Config(format!(
            "`{}` is not a postgres:// URL: pass --database postgres://USER@HOST[:PORT]/DATABASE (a password goes after USER and a colon), or leave it out for the embedded database",
            postgres::redact(url)
        ))),
    }
}

/// Create an account and print-ready token in the embedded storage of
/// `data_dir` (works while a server runs on the same directory).
pub async fn add_user(data_dir: &Path, name: &str) -> Result<NewUser, ServerError> {
    add_user_to(&Backends::default(), data_dir, name).await
}

/// Create an account and print-ready token in the storage `backends` name
/// (works while servers run on the same storage).
pub async fn add_user_to(
    backends: &Backends,
    data_dir: &Path,
    name: &str,
) -> Result<NewUser, ServerError> {
    let storage = open_backends(backends, data_dir).await?;
    Ok(storage.create_user(name).await?)
}

/// Have glibc hand every allocation of 1 MiB or more (push bodies) straight
/// to the kernel and back when freed. Its default raises that threshold to
/// the largest block freed so far, after which push-sized buffers come from
/// per-thread arenas that keep freed memory: the process would then hold more
/// than [`api::Limits::max_inflight`] although the pushes in flight do not.
fn return_large_buffers_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes an allocator parameter; it is safe to
    // call at any time, from any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Bind, start the background tasks and serve in a spawned task.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    return_large_buffers_to_the_os();
    let started = std::time::SystemTime::now();
    let storage = open_backends(&config.backends, &config.data_dir).await?;
    let sweeper = storage.clone();
    tokio::spawn(async move {
        match sweeper.sweep_blobs(started).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} unused blob file(s)"),
            Err(e) => tracing::warn!("{e}"),
        }
    });
    let token = local_token(&config.data_dir)?;
    let local_account = storage.ensure_user_token(LOCAL_USER, &token).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            ServerError::Io(format!(
                "cannot listen on {}: {e}; pick another address with --listen",
                config.listen
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Io(e.to_string()))?;
    let wake = Arc::new(Notify::new());
    tokio::spawn(index::Indexer::new(storage.clone()).run(wake.clone()));
    if let Some(sources) = config.local.clone() {
        let mirror = local::Mirror::new(storage.clone(), local_account.id, sources);
        tokio::spawn(mirror.run(config.rescan_every, config.rescan_now.clone(), wake.clone()));
    }
    let state = Arc::new(api::AppState {
        inflight: api::inflight_semaphore(&config.limits),
        storage,
        limits: config.limits,
        timeouts: config.timeouts,
        index_wake: wake,
        secrets: config.secrets,
    });
    let app = api::router(state).layer(tower_http::trace::TraceLayer::new_for_http());
    let task = tokio::spawn(listen::serve(
        listener,
        app,
        config.timeouts,
        config.max_connections,
    ));
    Ok(RunningServer {
        addr,
        local_token: token,
        task,
    })
}
