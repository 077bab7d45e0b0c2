//! Catalog benchmark on a synthetic corpus templated from the fixtures.
//!
//! `cargo bench -p baton-store --bench catalog -- [--sessions N] [--bytes SIZE] [--corpus DIR]`
//! (defaults: 2000 sessions, 100M; the targets are stated for
//! `-- --sessions 20000 --bytes 1G`). Prints, in one run: cold index MB/s,
//! no-change re-index time, incremental index after appending to 1% of the
//! files, `list` first page p50 and `search` p50 both as catalog queries and
//! end to end as `baton list` / `baton search` run them (open the catalog,
//! no-op refresh, query), and `rg -l -i` over the same files as a baseline.
//! `--corpus DIR` reuses (or creates) a corpus there.
//!
//! With `--baton PATH` (a release `baton` binary) it also runs the commands
//! as a user does, one process each, and prints p50/p99 of `baton list` and
//! `baton search` next to `rg -l -i -F` over the same files and a process
//! that does nothing (`baton --version`), in a table with a `watcher`
//! column (`off`: every command refreshes by walking the corpus; `on`: a
//! `baton watch` keeps the catalog current, so commands walk nothing).
//! `--tool-heavy SIZE` then writes one tool-output-heavy Codex session of
//! SIZE (1 MB tool outputs) and reports its cold `baton index` MB/s (beside
//! a plain read of the file), the catalog's size over the bytes indexed, and
//! the peak resident memory of `index`, `show`, `export` (md, jsonl,
//! envelope), `fork` (whole and at its middle prompt) and `push` (to a
//! `baton serve` on loopback) on it (beside the file's size).

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

#[path = "../examples/corpus/mod.rs"]
mod corpus;

use baton_store::{Catalog, ListQuery, ProgressPhase, Roots, SearchQuery};
use baton_testkit::bench::{ms, p50_p99};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    measure_if_asked();
    let corpus::BenchArgs {
        sessions,
        bytes,
        corpus: corpus_dir,
        baton,
        tool_heavy,
        ..
    } = corpus::BenchArgs::from_env();
    let tmp = tempfile::tempdir().expect("temp dir");
    let corpus_root = corpus_dir.unwrap_or_else(|| tmp.path().join("corpus"));
    let stats_line = if corpus_root.join("codex").exists() || corpus_root.join("claude").exists() {
        format!("reusing corpus at {}", corpus_root.display())
    } else {
        let t = Instant::now();
        let s = corpus::generate(
            &baton_testkit::fixtures_dir(),
            &corpus_root,
            sessions,
            bytes,
            42,
        )
        .expect("generate corpus");
        format!(
            "generated {} sessions, {} files, {:.1} MiB in {:.1}s",
            s.sessions,
            s.files,
            s.bytes as f64 / 1048576.0,
            t.elapsed().as_secs_f64()
        )
    };
    println!("corpus: {stats_line}");
    let roots = Roots {
        codex_homes: vec![corpus_root.join("codex")],
        claude_dirs: vec![corpus_root.join("claude")],
        library: Vec::new(),
    };
    let home = tmp.path().join("baton-home");
    let mut cat = Catalog::open(&home).expect("open catalog");

    // Cold index, with the time spent in each phase.
    let t = Instant::now();
    let marks = std::cell::RefCell::new(Vec::<(ProgressPhase, Duration)>::new());
    let cold = cat
        .refresh(&roots, &|p| {
            let mut m = marks.borrow_mut();
            if m.last().is_none_or(|(ph, _)| *ph != p.phase) {
                m.push((p.phase, t.elapsed()));
            }
        })
        .expect("cold refresh");
    let cold_t = t.elapsed();
    let marks = marks.into_inner();
    let mb = cold.bytes_read as f64 / 1e6;
    println!(
        "cold index:            {:>10.1} MB/s  ({:.1} MB, {} files, {} sessions, {} messages in {:.2}s; {} issues)",
        mb / cold_t.as_secs_f64(),
        mb,
        cold.files_seen,
        cat.count_sessions().expect("count sessions"),
        cold.messages_added,
        cold_t.as_secs_f64(),
        cold.issues.len()
    );
    let at = |ph: ProgressPhase| marks.iter().find(|(p, _)| *p == ph).map_or(cold_t, |m| m.1);
    println!(
        "  phases: scan {}, parse+write {}, sessions {}",
        ms(at(ProgressPhase::Scan)),
        ms(at(ProgressPhase::Sessions) - at(ProgressPhase::Scan)),
        ms(cold_t - at(ProgressPhase::Sessions))
    );
    for i in cold.issues.iter().take(3) {
        println!("  issue: {i}");
    }
    let db_size: u64 = ["catalog.sqlite", "catalog.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(home.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!("catalog size:          {:>10.1} MB", db_size as f64 / 1e6);

    // No-change re-index (best of 3 after one warm-up, p50 reported).
    let runs: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let r = cat.refresh(&roots, &|_| {}).expect("no-op refresh");
            assert_eq!(r.bytes_read, 0, "no-change refresh read bytes");
            t.elapsed()
        })
        .collect();
    println!(
        "no-change re-index:    {:>10}  (p50 of 3, {} files stat'ed)",
        ms(p50(runs)),
        cold.files_seen
    );

    // Incremental: append one line to 1% of the files.
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for (root, codex) in [
        (corpus_root.join("codex"), true),
        (corpus_root.join("claude"), false),
    ] {
        for e in walkdir::WalkDir::new(&root)
            .into_iter()
            .filter_map(Result::ok)
        {
            if e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "jsonl") {
                files.push((e.into_path(), codex));
            }
        }
    }
    files.sort();
    let mut appended = 0u64;
    for (i, (path, codex)) in files.iter().enumerate().filter(|(i, _)| i % 100 == 0) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open for append");
        f.write_all(corpus::appended_line(*codex, i as u64).as_bytes())
            .expect("append");
        appended += 1;
    }
    let t = Instant::now();
    let inc = cat.refresh(&roots, &|_| {}).expect("incremental refresh");
    println!(
        "incremental (1%):      {:>10}  ({} files appended, {} bytes read, {} sessions updated)",
        ms(t.elapsed()),
        inc.files_appended,
        inc.bytes_read,
        inc.sessions_updated
    );
    assert_eq!(inc.files_appended, appended);

    // list first page.
    let list_runs: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let page = cat.list(&ListQuery::default()).expect("list");
            assert!(!page.sessions.is_empty());
            t.elapsed()
        })
        .collect();
    let cwd_runs: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            cat.list(&ListQuery {
                cwd: Some("/home/dev/src".into()),
                agent: Some(baton_native::Agent::Claude),
                ..Default::default()
            })
            .expect("list");
            t.elapsed()
        })
        .collect();
    println!(
        "list first page p50:   {:>10}  (query only; with --agent --cwd: {})",
        ms(p50(list_runs)),
        ms(p50(cwd_runs))
    );
    // What `baton list` does: open the catalog, no-op refresh, first page.
    let e2e_list: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            let mut c = Catalog::open(&home).expect("open catalog");
            c.refresh(&roots, &|_| {}).expect("no-op refresh");
            let page = c.list(&ListQuery::default()).expect("list");
            assert!(!page.sessions.is_empty());
            t.elapsed()
        })
        .collect();
    println!(
        "list end-to-end p50:   {:>10}  (open + no-op refresh + first page, as `baton list`)",
        ms(p50(e2e_list))
    );

    // search p50 over a few terms of different frequency, then rg on the same terms.
    let terms = ["flamegraph", "reducer", "terraform", "checksum", "cipher"];
    let mut search_runs = Vec::new();
    let mut hits_total = 0;
    for term in terms {
        for _ in 0..10 {
            let t = Instant::now();
            let hits = cat
                .search(&SearchQuery {
                    query: term.into(),
                    ..Default::default()
                })
                .expect("search");
            search_runs.push(t.elapsed());
            hits_total += hits.len();
        }
    }
    let search_p50 = p50(search_runs);
    println!(
        "search p50:            {:>10}  (query only; {} terms x 10, {} hits per run on average)",
        ms(search_p50),
        terms.len(),
        hits_total / (terms.len() * 10)
    );
    // What `baton search` does: open the catalog, no-op refresh, search.
    let e2e_search: Vec<Duration> = terms
        .iter()
        .flat_map(|term| std::iter::repeat_n(*term, 2))
        .map(|term| {
            let t = Instant::now();
            let mut c = Catalog::open(&home).expect("open catalog");
            c.refresh(&roots, &|_| {}).expect("no-op refresh");
            c.search(&SearchQuery {
                query: term.into(),
                ..Default::default()
            })
            .expect("search");
            t.elapsed()
        })
        .collect();
    let e2e_search_p50 = p50(e2e_search);
    println!(
        "search end-to-end p50: {:>10}  (open + no-op refresh + search, as `baton search`)",
        ms(e2e_search_p50)
    );
    rg_baseline(&corpus_root, &terms, e2e_search_p50);
    if let Some(baton) = &baton {
        processes(baton, &home, &corpus_root, &terms);
        if let Some(size) = tool_heavy {
            tool_heavy_session(baton, tmp.path(), size);
        }
    }
}

/// `baton ARGS` with its data in `home`, over the corpus at `root`.
fn baton_cmd(baton: &Path, home: &Path, root: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(baton);
    cmd.env("BATON_HOME", home)
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--codex-home")
        .arg(root.join("codex"))
        .arg("--claude-dir")
        .arg(root.join("claude"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Wall time of each of `n` runs of `make()`; each must succeed.
fn timed(n: usize, mut make: impl FnMut(usize) -> std::process::Command) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let mut cmd = make(i);
            let t = Instant::now();
            let status = cmd.status().expect("run the command");
            let took = t.elapsed();
            assert!(
                status.success() || status.code() == Some(1),
                "{cmd:?}: {status}"
            );
            took
        })
        .collect()
}

/// One row of the process table.
fn row(what: &str, watcher: &str, runs: Vec<Duration>) -> Duration {
    let (p50, p99) = p50_p99(runs);
    println!("  {what:<28} {watcher:<8} {:>10} {:>10}", ms(p50), ms(p99));
    p50
}

/// `baton list` and `baton search` as processes, beside `rg -l -i -F` and
/// a process that does nothing.
fn processes(baton: &Path, home: &Path, root: &Path, terms: &[&str]) {
    println!("processes (one per command):");
    println!(
        "  {:<28} {:<8} {:>10} {:>10}",
        "command", "watcher", "p50", "p99"
    );
    row(
        "baton --version (baseline)",
        "-",
        timed(30, |_| {
            let mut c = std::process::Command::new(baton);
            c.arg("--version").stdout(std::process::Stdio::null());
            c
        }),
    );
    let list = row(
        "baton list",
        "off",
        timed(30, |_| baton_cmd(baton, home, root, &["list"])),
    );
    let search = row(
        "baton search",
        "off",
        timed(30, |i| {
            baton_cmd(baton, home, root, &["search", terms[i % terms.len()]])
        }),
    );
    let rg = if std::process::Command::new("rg")
        .arg("--version")
        .output()
        .is_ok()
    {
        row(
            "rg -l -i -F (baseline)",
            "-",
            timed(10, |i| {
                let mut c = std::process::Command::new("rg");
                c.args(["-l", "-i", "-F", terms[i % terms.len()]])
                    .arg(root)
                    .stdout(std::process::Stdio::null());
                c
            }),
        )
    } else {
        println!("  rg not found: install ripgrep for the baseline");
        Duration::ZERO
    };
    println!(
        "  list p50 {}; search p50 {} is {:.1}x faster than rg",
        ms(list),
        ms(search),
        rg.as_secs_f64() / search.as_secs_f64().max(1e-9)
    );
    // The same commands while `baton watch` keeps the catalog current:
    // they trust it and walk nothing.
    let Some(_watch) = Watcher::start(baton, home, root) else {
        println!("  baton watch did not catch up within 10 minutes: no `on` rows");
        return;
    };
    let list = row(
        "baton list",
        "on",
        timed(30, |_| baton_cmd(baton, home, root, &["list"])),
    );
    let search = row(
        "baton search",
        "on",
        timed(30, |i| {
            baton_cmd(baton, home, root, &["search", terms[i % terms.len()]])
        }),
    );
    println!(
        "  with the watcher: list p50 {}; search p50 {} is {:.1}x faster than rg",
        ms(list),
        ms(search),
        rg.as_secs_f64() / search.as_secs_f64().max(1e-9)
    );
}

/// A running `baton watch`, killed on drop.
struct Watcher(std::process::Child);

impl Watcher {
    /// Start `baton watch` over the corpus and wait until it reports the
    /// catalog caught up (`None` if it does not within 10 minutes).
    fn start(baton: &Path, home: &Path, root: &Path) -> Option<Watcher> {
        let watcher = Watcher(
            baton_cmd(baton, home, root, &["watch"])
                .spawn()
                .expect("start baton watch"),
        );
        let state = home.join("watcher.json");
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&state).unwrap_or_default();
            if text.contains("\"caught_up\":true") {
                return Some(watcher);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Set on a fresh copy of this bench that only measures a command.
const MEASURE_ENV: &str = "BATON_BENCH_MEASURE_PEAK_RSS";

/// When this process is such a copy: run the command in its arguments
/// (output discarded), print its exit code and peak resident set in KiB,
/// and exit.
fn measure_if_asked() {
    if std::env::var_os(MEASURE_ENV).is_none() {
        return;
    }
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut cmd = std::process::Command::new(&args[0]);
    cmd.args(&args[1..])
        .env_remove(MEASURE_ENV)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let (code, kib) = baton_testkit::run_with_peak_rss(&mut cmd);
    println!("{code} {kib}");
    std::process::exit(0);
}

/// Run `cmd` to its end (output discarded): its wall time and peak resident
/// set in MiB. Measured from a fresh copy of this bench: a child's peak as
/// `wait4` reports it starts at its parent's own (Linux carries the
/// high-water mark of the memory it was spawned in over `exec`), and this
/// process holds hundreds of MB by now.
fn peak_rss(cmd: &std::process::Command) -> (Duration, f64) {
    let mut copy = std::process::Command::new(std::env::current_exe().expect("this bench's path"));
    copy.env(MEASURE_ENV, "1")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stderr(std::process::Stdio::inherit());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => copy.env(key, value),
            None => copy.env_remove(key),
        };
    }
    let t = Instant::now();
    let out = copy.output().expect("run the measuring copy");
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let (code, kib) = text
        .trim()
        .split_once(' ')
        .and_then(|(c, k)| Some((c.parse::<i32>().ok()?, k.parse::<i64>().ok()?)))
        .unwrap_or_else(|| panic!("measuring {cmd:?}: {text}"));
    assert_eq!(code, 0, "{cmd:?} failed");
    (took, kib as f64 / 1024.0)
}

/// The tool-output-heavy session: cold index MB/s, catalog ratio and peak
/// resident memory of the commands that read it whole.
fn tool_heavy_session(baton: &Path, tmp: &Path, size: u64) {
    let root = tmp.join("tool-heavy");
    let home = tmp.join("tool-heavy-home");
    let t = Instant::now();
    let (path, id) = baton_testkit::write_big_session(
        baton_native::Agent::Codex,
        &root.join("codex"),
        1,
        size,
        (size >> 20).max(1),
    )
    .expect("write the tool-heavy session");
    let bytes = std::fs::metadata(&path).expect("stat").len();
    let mb = bytes as f64 / 1e6;
    println!(
        "tool-heavy session: {mb:.1} MB in one file, written in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut file = std::fs::File::open(&path).expect("open");
    std::io::copy(&mut file, &mut std::io::sink()).expect("read");
    let read = t.elapsed();
    // Only the catalog is measured: archiving (zstd copies) is its own step.
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(home.join("config.toml"), "archive = false\n").expect("config");
    let index = |home: &Path| peak_rss(&baton_cmd(baton, home, &root, &["index"]));
    let (took, rss) = index(&home);
    println!(
        "  cold index             {:>8.1} MB/s  (plain read of the file: {:.1} MB/s)",
        mb / took.as_secs_f64(),
        mb / read.as_secs_f64()
    );
    let catalog: u64 = ["catalog.sqlite", "catalog.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(home.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "  catalog size           {:>8.3}x    ({:.1} MB for {mb:.1} MB indexed; target <= 0.3x)",
        catalog as f64 / bytes as f64,
        catalog as f64 / 1e6
    );
    println!(
        "  peak RSS (the file is {:.0} MiB; target < 256 MiB):",
        bytes as f64 / 1048576.0
    );
    println!("    {:<24} {rss:>8.1} MiB  ({})", "index", ms(took));
    let out = tmp.join("tool-heavy-out");
    let out_arg = out.display().to_string();
    let middle = ((size >> 20) / 2 + 1).to_string();
    for (what, args) in [
        ("show", vec!["show", id.as_str()]),
        ("show --json", vec!["show", id.as_str(), "--json"]),
        (
            "export --format md",
            vec![
                "export",
                id.as_str(),
                "--format",
                "md",
                "-o",
                out_arg.as_str(),
            ],
        ),
        (
            "export --format jsonl",
            vec![
                "export",
                id.as_str(),
                "--format",
                "jsonl",
                "-o",
                out_arg.as_str(),
            ],
        ),
        (
            "export --format envelope",
            vec![
                "export",
                id.as_str(),
                "--format",
                "envelope",
                "-o",
                out_arg.as_str(),
            ],
        ),
        ("fork", vec!["fork", id.as_str()]),
        (
            "fork --before-prompt",
            vec!["fork", id.as_str(), "--before-prompt", middle.as_str()],
        ),
    ] {
        let (took, rss) = peak_rss(&baton_cmd(baton, &home, &root, &args));
        println!("    {what:<24} {rss:>8.1} MiB  ({})", ms(took));
        let _ = std::fs::remove_file(&out);
        // A fork is a new file: the next command would index it first.
        remove_all_but(&root, &path);
    }
    let mut serve = Serve::start(baton, &tmp.join("tool-heavy-server"));
    let login = ["login", serve.url.as_str(), serve.token.as_str()];
    assert!(
        baton_cmd(baton, &home, &root, &login)
            .status()
            .expect("login")
            .success()
    );
    let (took, rss) = peak_rss(&baton_cmd(baton, &home, &root, &["push", id.as_str()]));
    println!("    {:<24} {rss:>8.1} MiB  ({})", "push", ms(took));
    serve.stop();
    let _ = std::fs::remove_dir_all(&root);
}

/// Remove every file under `dir` but `keep`.
fn remove_all_but(dir: &Path, keep: &Path) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_file() && entry.path() != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A `baton serve` on a free loopback port with an account whose token
/// `push` logs in with.
struct Serve {
    child: std::process::Child,
    url: String,
    token: String,
}

impl Serve {
    fn start(baton: &Path, home: &Path) -> Serve {
        let command = || {
            let mut cmd = std::process::Command::new(baton);
            cmd.env("BATON_HOME", home).env("NO_COLOR", "1");
            cmd
        };
        let user = command()
            .args(["serve", "user", "add", "bench", "--json"])
            .output()
            .expect("serve user add");
        let user: serde_json::Value = serde_json::from_slice(&user.stdout).expect("user JSON");
        let token = user["token"].as_str().expect("token").to_owned();
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let child = command()
            .args(["serve", "--no-catalog", "--listen", &addr.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("baton serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "baton serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve {
            child,
            url: format!("http://{addr}"),
            token,
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rg_baseline(root: &Path, terms: &[&str], search_p50: Duration) {
    let probe = std::process::Command::new("rg").arg("--version").output();
    if probe.is_err() {
        println!("rg not found: install ripgrep for the baseline (e.g. `apt-get install ripgrep`)");
        return;
    }
    let mut runs = Vec::new();
    for term in terms {
        let t = Instant::now();
        let out = std::process::Command::new("rg")
            .args(["-l", "-i", term])
            .arg(root)
            .output()
            .expect("run rg");
        runs.push(t.elapsed());
        let _ = out;
    }
    let rg = p50(runs);
    println!(
        "rg -l -i p50:          {:>10}  (end-to-end search is {:.1}x faster)",
        ms(rg),
        rg.as_secs_f64() / search_p50.as_secs_f64().max(1e-9)
    );
}
