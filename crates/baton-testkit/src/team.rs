//! The team server's services for tests: a private PostgreSQL (initdb into a
//! temp dir, trust auth for user `baton`, a free loopback port) and moto's
//! S3-compatible server (installed by `scripts/install-moto` into
//! `.cache/moto-venv`, or `BATON_MOTO_VENV`), both on loopback and killed
//! with the test process.
//!
//! [`team_services`] starts one pair per test binary (the `AWS_*`
//! variables are per process, so one object store per binary). A test that
//! stops PostgreSQL or cuts the object store off (it is reached through a
//! relay that can be cut) affects every test of its binary using them, so
//! such tests live in a binary of their own and take turns.
//! Each test takes a fresh database and bucket ([`TeamServices::database`],
//! [`TeamServices::bucket`]). When a tool is missing, the helpers print why
//! and return `None` (the test skips); with `CI=true` they panic instead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Access key the tests give the object store (moto accepts any).
pub const ACCESS_KEY: &str = "baton-test";
/// Secret key the tests give the object store.
pub const SECRET_KEY: &str = "baton-test-secret";
/// Region the tests give the object store.
pub const REGION: &str = "us-east-1";

/// A child process owned by a thread that lives as long as it does, so
/// `PR_SET_PDEATHSIG` (which fires when the spawning thread ends) stops it
/// only when the test process ends.
#[derive(Debug)]
struct Child {
    pid: i32,
    exited: Mutex<mpsc::Receiver<()>>,
}

impl Child {
    /// Spawn `cmd`, which gets `on_death` when the test process ends.
    fn spawn(mut cmd: Command, on_death: i32) -> Result<Child, String> {
        let what = format!("{cmd:?}");
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl only sets this process's parent-death signal.
            unsafe {
                cmd.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, on_death);
                    Ok(())
                });
            }
            match cmd.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(child.id() as i32));
                    let _ = child.wait();
                    let _ = done_tx.send(());
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot run {what}: {e}")));
                }
            }
        });
        let pid = rx
            .recv()
            .map_err(|_| "the spawner thread stopped".to_string())??;
        Ok(Child {
            pid,
            exited: Mutex::new(done_rx),
        })
    }

    /// Send `signal` (0: none) and wait (up to 30 s) for the process to end.
    fn stop(&self, signal: i32) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.pid, signal);
        }
        let exited = self.exited.lock().unwrap_or_else(|e| e.into_inner());
        let _ = exited.recv_timeout(Duration::from_secs(30));
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

fn wait_for_port(port: u16, what: &str, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{what} did not listen on port {port} within {within:?}"
    ))
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program` run as user `postgres` when we are root (PostgreSQL refuses
/// root); the uid changes before the parent-death signal is set, so it holds.
fn as_postgres(program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    if running_as_root()
        && let (Ok(uid), Ok(gid)) = (postgres_id("-u"), postgres_id("-g"))
    {
        cmd.uid(uid).gid(gid).current_dir("/");
    }
    cmd
}

/// A private PostgreSQL cluster.
#[derive(Debug)]
struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    server: Mutex<Option<Child>>,
}

impl Postgres {
    fn init() -> Result<Postgres, String> {
        let dir = tempfile::Builder::new()
            .prefix("baton-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let data = dir.path().join("data");
        if running_as_root() {
            std::os::unix::fs::chown(dir.path(), Some(postgres_id("-u")?), None)
                .map_err(|e| format!("cannot hand {} to postgres: {e}", dir.path().display()))?;
        }
        let out = as_postgres("initdb")
            .args(["-D"])
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "baton",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run initdb (is PostgreSQL installed?): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let pg = Postgres {
            dir,
            port: free_port(),
            server: Mutex::new(None),
        };
        pg.start()?;
        Ok(pg)
    }

    /// Start (again) on the same port and data directory.
    fn start(&self) -> Result<(), String> {
        // A shell runs the server: when the test process ends it stops the
        // server (fast shutdown) and removes the cluster's directory.
        let script = "trap 'kill -INT $pid 2>/dev/null; wait $pid; rm -rf \"$0\"' TERM; \
                      postgres \"$@\" & pid=$!; wait $pid";
        let mut cmd = as_postgres("sh");
        cmd.args(["-c", script])
            .arg(self.dir.path())
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(self.dir.path())
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = Child::spawn(cmd, libc::SIGTERM)?;
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        wait_for_port(self.port, "PostgreSQL", Duration::from_secs(30))?;
        // Accepting connections can lag listening a little (recovery).
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if psql(self.port, "SELECT 1").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("PostgreSQL did not accept connections".into())
    }

    fn stop(&self) {
        let Some(child) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        // Fast shutdown: clients see their connections closed.
        let stopped = as_postgres("pg_ctl")
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            child.stop(libc::SIGKILL);
        }
        child.stop(0);
    }
}

/// `id -u postgres` or `id -g postgres`.
fn postgres_id(which: &str) -> Result<u32, String> {
    let out = Command::new("id")
        .args([which, "postgres"])
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "there is no `postgres` user to run PostgreSQL as".to_string())
}

/// Run one statement with psql as `baton` on database `postgres`.
fn psql(port: u16, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "baton"])
        .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A loopback TCP relay to a port that can be cut off and restored, so a
/// test can take the object store away without losing its buckets.
#[derive(Debug)]
struct TcpSwitch {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl TcpSwitch {
    fn start(target: u16) -> Result<TcpSwitch, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let pair = (client.try_clone(), server.try_clone());
                let (Ok(client2), Ok(server2)) = pair else {
                    continue;
                };
                {
                    let mut open = open2.lock().unwrap_or_else(|e| e.into_inner());
                    open.retain(|s| s.peer_addr().is_ok());
                    if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                        open.push(c);
                        open.push(s);
                    }
                }
                relay(client, server2);
                relay(server, client2);
            }
        });
        Ok(TcpSwitch { port, up, open })
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Copy `from` to `to` on a thread until either side closes.
fn relay(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    });
}

/// moto's S3-compatible server (it keeps its buckets in memory).
#[derive(Debug)]
struct Moto {
    port: u16,
    _server: Child,
}

fn moto_program() -> Result<PathBuf, String> {
    let venv = std::env::var_os("BATON_MOTO_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join(".cache").join("moto-venv"));
    let program = venv.join("bin").join("moto_server");
    if program.is_file() {
        Ok(program)
    } else {
        Err(format!(
            "{} is missing: run scripts/install-moto",
            program.display()
        ))
    }
}

impl Moto {
    fn init() -> Result<Moto, String> {
        let port = free_port();
        let mut cmd = Command::new(moto_program()?);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let server = Child::spawn(cmd, libc::SIGKILL)?;
        wait_for_port(port, "moto_server", Duration::from_secs(60))?;
        Ok(Moto {
            port,
            _server: server,
        })
    }
}

/// A private PostgreSQL and object store for the team server's tests (see
/// the module docs).
#[derive(Debug)]
pub struct TeamServices {
    postgres: Postgres,
    moto: Moto,
    switch: TcpSwitch,
    /// Endpoint of the object store (`AWS_ENDPOINT_URL`).
    pub endpoint: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TeamServices {
    fn try_start() -> Result<TeamServices, String> {
        let postgres = Postgres::init()?;
        let moto = Moto::init()?;
        let switch = TcpSwitch::start(moto.port)?;
        let endpoint = format!("http://127.0.0.1:{}", switch.port);
        Ok(TeamServices {
            postgres,
            moto,
            switch,
            endpoint,
        })
    }

    /// A new empty database; its `postgres://` URL.
    pub fn database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        psql(self.postgres.port, &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        format!("postgres://baton@127.0.0.1:{}/{name}", self.postgres.port)
    }

    /// A new empty bucket; its `s3://` URL (with a prefix, as teams may use).
    pub fn bucket(&self) -> String {
        let name = format!(
            "t{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.create_bucket(&name)
            .unwrap_or_else(|e| panic!("cannot create bucket {name}: {e}"));
        format!("s3://{name}/team")
    }

    fn create_bucket(&self, name: &str) -> Result<(), String> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.moto.port))
            .map_err(|e| format!("cannot reach moto_server: {e}"))?;
        write!(
            conn,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.moto.port
        )
        .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(answer.lines().next().unwrap_or_default().to_string())
        }
    }

    /// The `AWS_*` variables pointing the server at the object store.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// Set the `AWS_*` variables of [`TeamServices::aws_env`] in this process
    /// (for an in-process server; every test of a binary sets the same values).
    pub fn set_aws_env(&self) {
        static SET: Mutex<()> = Mutex::new(());
        let _guard = SET.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in self.aws_env() {
            if std::env::var(k).ok().as_deref() != Some(v.as_str()) {
                // SAFETY: tests of one binary set identical values, under a lock.
                unsafe { std::env::set_var(k, v) };
            }
        }
    }

    /// Stop PostgreSQL (fast shutdown): clients see their connections closed
    /// and new ones refused until [`TeamServices::start_postgres`].
    pub fn stop_postgres(&self) {
        self.postgres.stop();
    }

    /// Start PostgreSQL again on the same port and data.
    pub fn start_postgres(&self) {
        self.postgres
            .start()
            .unwrap_or_else(|e| panic!("cannot restart PostgreSQL: {e}"));
    }

    /// Cut the object store off: connections to it are dropped and new
    /// ones closed at once, until [`TeamServices::restore_object_store`]
    /// (its buckets survive).
    pub fn cut_object_store(&self) {
        self.switch.cut();
    }

    /// Let the object store answer again.
    pub fn restore_object_store(&self) {
        self.switch.restore();
    }
}

fn skip<T>(why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
        panic!("team-server tests must run in CI, but their services cannot start: {why}");
    }
    eprintln!("\n!!! SKIPPING team-server test: {why}\n");
    None
}

/// The PostgreSQL and object store shared by the tests of this binary,
/// started on first use (see the module docs).
pub fn team_services() -> Option<&'static TeamServices> {
    static SHARED: OnceLock<Result<TeamServices, String>> = OnceLock::new();
    match SHARED.get_or_init(TeamServices::try_start) {
        Ok(s) => Some(s),
        Err(why) => skip(why),
    }
}
