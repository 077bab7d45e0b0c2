//! Synthetic corpus of realistic Codex and Claude Code sessions, made by
//! templating the real fixture transcripts (`agents-v1`): every session gets
//! fresh ids (all UUIDs are remapped per fork family, so forks still share
//! their parent's chain uuids), a cwd, prompts, tool output words and a time.
//! Record shapes and sizes stay those of the real CLIs: Codex paginated files
//! with ~21 KB `base_instructions` first lines, legacy rollouts, paginated
//! forks whose `history_base.end_byte_offset` matches the parent's new size,
//! Claude transcripts with attachments, `prompt_snapshot`s, `api-request*`
//! lines, tool_use/tool_result pairs and `--fork-session` copies.
//!
//! Shared by `examples/gen_corpus.rs` and `benches/catalog.rs`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What was generated.
#[derive(Debug, Default, Clone)]
pub struct CorpusStats {
    /// Sessions written (forks included).
    pub sessions: u64,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// A piece of a template: literal bytes or a value chosen per session.
#[derive(Debug, Clone)]
enum Piece {
    Lit(Vec<u8>),
    Uuid(String),
    Prompt(usize),
    Tool,
    Cwd(usize),
    Slug(usize),
    TimeColon,
    TimeDash,
    EndByteOffset,
}

/// A fixture file split into pieces.
struct Template {
    pieces: Vec<Piece>,
}

/// Text of the fixture files that varies per generated session.
struct Needles {
    fixed: Vec<(Vec<u8>, Piece)>,
}

impl Needles {
    fn new() -> Needles {
        let prompts = [
            "pub first prompt alpha",
            "pub second prompt beta ünïcødé ✓",
            "pub third prompt beta",
            "pub fork prompt gamma",
            "pub legacy prompt delta",
            "pub legacy second delta",
            "pub claude prompt epsilon",
            "pub claude second zeta ünïcødé ✓",
            "pub claude fork eta",
        ];
        let mut fixed: Vec<(Vec<u8>, Piece)> = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_bytes().to_vec(), Piece::Prompt(i)))
            .collect();
        for tool in ["pub-tool-output-beta", "pub-claude-tool-zeta"] {
            fixed.push((tool.as_bytes().to_vec(), Piece::Tool));
        }
        for (i, name) in ["alpha", "beta"].iter().enumerate() {
            fixed.push((
                format!("/srv/corpus/work-pub/{name}").into_bytes(),
                Piece::Cwd(i),
            ));
            fixed.push((
                format!("-srv-corpus-work-pub-{name}").into_bytes(),
                Piece::Slug(i),
            ));
        }
        fixed.push((b"2026-11-21T19:20".to_vec(), Piece::TimeColon));
        fixed.push((b"2026-11-21T19-20".to_vec(), Piece::TimeDash));
        fixed.push((b"\"end_byte_offset\":51158".to_vec(), Piece::EndByteOffset));
        // Longest first so no needle shadows a longer one.
        fixed.sort_by_key(|f| std::cmp::Reverse(f.0.len()));
        Needles { fixed }
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// `8-4-4-4-12` lowercase hex at the start of `s`.
fn uuid_at(s: &[u8]) -> bool {
    s.len() >= 36
        && s[..36].iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => is_hex(b),
        })
}

impl Template {
    fn parse(bytes: &[u8], needles: &Needles) -> Template {
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        'outer: while i < bytes.len() {
            if uuid_at(&bytes[i..]) {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Uuid(
                    String::from_utf8_lossy(&bytes[i..i + 36]).into_owned(),
                ));
                i += 36;
                continue;
            }
            for (needle, piece) in &needles.fixed {
                if bytes[i..].starts_with(needle) {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(piece.clone());
                    i += needle.len();
                    continue 'outer;
                }
            }
            lit.push(bytes[i]);
            i += 1;
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Template { pieces }
    }
}

/// Per-family values: the same mapping is used for a parent and its fork.
struct Family {
    uuids: HashMap<String, String>,
    prompts: Vec<String>,
    tool: String,
    cwds: [String; 2],
    slugs: [String; 2],
    time_colon: String,
    time_dash: String,
    end_byte_offset: u64,
}

const WORDS: &[&str] = &[
    "refactor",
    "parser",
    "index",
    "cache",
    "thread",
    "socket",
    "buffer",
    "token",
    "schema",
    "migration",
    "handler",
    "router",
    "request",
    "response",
    "stream",
    "future",
    "channel",
    "mutex",
    "lock",
    "queue",
    "worker",
    "scheduler",
    "timeout",
    "retry",
    "backoff",
    "config",
    "logger",
    "metrics",
    "trace",
    "span",
    "vector",
    "matrix",
    "tensor",
    "kernel",
    "shader",
    "texture",
    "mesh",
    "camera",
    "sprite",
    "physics",
    "database",
    "query",
    "join",
    "cursor",
    "transaction",
    "commit",
    "rollback",
    "snapshot",
    "replica",
    "shard",
    "compile",
    "linker",
    "macro",
    "trait",
    "generic",
    "lifetime",
    "borrow",
    "closure",
    "iterator",
    "slice",
    "deploy",
    "docker",
    "cluster",
    "pod",
    "service",
    "ingress",
    "secret",
    "volume",
    "helm",
    "terraform",
    "frontend",
    "component",
    "render",
    "state",
    "props",
    "hook",
    "effect",
    "reducer",
    "selector",
    "style",
    "test",
    "fixture",
    "mock",
    "assert",
    "coverage",
    "benchmark",
    "profile",
    "flamegraph",
    "regression",
    "flaky",
    "auth",
    "session",
    "cookie",
    "jwt",
    "oauth",
    "password",
    "hash",
    "salt",
    "cipher",
    "signature",
    "upload",
    "download",
    "chunk",
    "offset",
    "checksum",
    "digest",
    "archive",
    "compress",
    "decode",
    "encode",
    "error",
    "panic",
    "unwrap",
    "result",
    "option",
    "variant",
    "enum",
    "struct",
    "field",
    "method",
    "please",
    "fix",
    "the",
    "bug",
    "in",
    "add",
    "support",
    "for",
    "why",
    "does",
    "this",
    "fail",
    "when",
    "explain",
    "how",
    "to",
    "make",
    "faster",
    "write",
    "tests",
    "rename",
    "function",
    "module",
    "crate",
];

fn words(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| {
            // Skewed choice: low indices are much more common (Zipf-like).
            let r: f64 = rng.random::<f64>();
            let i = ((r * r * r) * WORDS.len() as f64) as usize;
            WORDS[i.min(WORDS.len() - 1)]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fresh_uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    let h =
        |r: std::ops::Range<usize>| -> String { b[r].iter().map(|x| format!("{x:02x}")).collect() };
    format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
}

impl Family {
    fn new(rng: &mut StdRng, n: u64) -> Family {
        let project = format!("{}-{}", WORDS[rng.random_range(0..WORDS.len())], n % 997);
        let cwds = [
            format!("/home/dev/src/{project}/app"),
            format!("/home/dev/src/{project}/lib"),
        ];
        let slugs = cwds.clone().map(|c| {
            c.chars()
                .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
                .collect()
        });
        // Spread over a year before 2026-11-21.
        let base =
            jiff::Timestamp::from_second(1_763_700_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let t = base
            .checked_sub(jiff::SignedDuration::from_secs(
                rng.random_range(0..365 * 86_400),
            ))
            .unwrap_or(base);
        let prompts = (0..9)
            .map(|_| {
                let n = rng.random_range(4..14);
                words(rng, n)
            })
            .collect();
        Family {
            uuids: HashMap::new(),
            prompts,
            tool: format!(
                "{}-{}-{}",
                WORDS[rng.random_range(0..WORDS.len())],
                WORDS[rng.random_range(0..WORDS.len())],
                rng.random_range(0..100_000)
            ),
            cwds,
            slugs,
            time_colon: t.strftime("%Y-%m-%dT%H:%M").to_string(),
            time_dash: t.strftime("%Y-%m-%dT%H-%M").to_string(),
            end_byte_offset: 0,
        }
    }

    fn render(&mut self, t: &Template, rng: &mut StdRng) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * 1024);
        for p in &t.pieces {
            match p {
                Piece::Lit(b) => out.extend_from_slice(b),
                Piece::Uuid(u) => {
                    let new = self
                        .uuids
                        .entry(u.clone())
                        .or_insert_with(|| fresh_uuid(rng));
                    out.extend_from_slice(new.as_bytes());
                }
                Piece::Prompt(i) => out.extend_from_slice(self.prompts[*i].as_bytes()),
                Piece::Tool => out.extend_from_slice(self.tool.as_bytes()),
                Piece::Cwd(i) => out.extend_from_slice(self.cwds[*i].as_bytes()),
                Piece::Slug(i) => out.extend_from_slice(self.slugs[*i].as_bytes()),
                Piece::TimeColon => out.extend_from_slice(self.time_colon.as_bytes()),
                Piece::TimeDash => out.extend_from_slice(self.time_dash.as_bytes()),
                Piece::EndByteOffset => {
                    write!(out, "\"end_byte_offset\":{}", self.end_byte_offset)
                        .expect("write to Vec");
                }
            }
        }
        out
    }

    fn map(&mut self, uuid: &str, rng: &mut StdRng) -> String {
        self.uuids
            .entry(uuid.to_string())
            .or_insert_with(|| fresh_uuid(rng))
            .clone()
    }
}

/// The fixture templates, by role.
struct Templates {
    codex_one: Template,
    codex_tool: Template,
    codex_fork: Template,
    codex_legacy: Template,
    claude_one: Template,
    claude_tool: Template,
    claude_fork: Template,
}

const CODEX_ONE: &str = "01a1ff8d-8a8a-7740-8c02-49607e66ddfa";
const CODEX_TOOL: &str = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
const CODEX_FORK: &str = "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b";
const CODEX_LEGACY: &str = "01a1ff8d-92a0-7a03-a86a-e8bbc574818c";
const CLAUDE_ONE: &str = "dcf5c926-1018-40a3-9c1e-6e73eeca4da9";
const CLAUDE_TOOL: &str = "24618527-ae46-4f6d-902b-96792270f328";
const CLAUDE_FORK: &str = "f941a4bf-28d9-46f3-adde-1c9978a0988d";

fn find_file(root: &Path, needle: &str) -> std::io::Result<PathBuf> {
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_file() && entry.file_name().to_string_lossy().contains(needle) {
            return Ok(entry.into_path());
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("fixture {needle} not found under {}", root.display()),
    ))
}

impl Templates {
    fn load(fixtures: &Path) -> std::io::Result<Templates> {
        let needles = Needles::new();
        let load = |sub: &str, id: &str| -> std::io::Result<Template> {
            let bytes = std::fs::read(find_file(&fixtures.join(sub), id)?)?;
            Ok(Template::parse(&bytes, &needles))
        };
        Ok(Templates {
            codex_one: load("codex", CODEX_ONE)?,
            codex_tool: load("codex", CODEX_TOOL)?,
            codex_fork: load("codex", CODEX_FORK)?,
            codex_legacy: load("codex-legacy", CODEX_LEGACY)?,
            claude_one: load("claude", CLAUDE_ONE)?,
            claude_tool: load("claude", CLAUDE_TOOL)?,
            claude_fork: load("claude", CLAUDE_FORK)?,
        })
    }
}

/// Typical sizes of the templates, used to pick a mix that hits the byte target.
const CODEX_AVG: f64 = 40_000.0;
const CLAUDE_AVG: f64 = 147_000.0;

/// Write about `sessions` sessions totalling about `bytes` bytes under `out`
/// (`out/codex` is a Codex home, `out/claude` a Claude config dir).
/// Deterministic for a given `seed`.
pub fn generate(
    fixtures: &Path,
    out: &Path,
    sessions: u64,
    bytes: u64,
    seed: u64,
) -> std::io::Result<CorpusStats> {
    let t = Templates::load(fixtures)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let avg = bytes as f64 / sessions.max(1) as f64;
    let p_claude = ((avg - CODEX_AVG) / (CLAUDE_AVG - CODEX_AVG)).clamp(0.02, 0.98);
    let codex_home = out.join("codex");
    let claude_dir = out.join("claude");
    let mut stats = CorpusStats::default();
    let write = |path: PathBuf, data: &[u8], stats: &mut CorpusStats| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, data)?;
        stats.files += 1;
        stats.bytes += data.len() as u64;
        Ok(())
    };
    let mut n = 0u64;
    while stats.sessions < sessions {
        n += 1;
        let mut fam = Family::new(&mut rng, n);
        let day = fam.time_colon[..10].replace('-', "/");
        let with_fork = rng.random_bool(0.15) && stats.sessions + 2 <= sessions;
        if rng.random_bool(p_claude) {
            let (tmpl, id) = if with_fork || rng.random_bool(0.5) {
                (&t.claude_tool, CLAUDE_TOOL)
            } else {
                (&t.claude_one, CLAUDE_ONE)
            };
            let data = fam.render(tmpl, &mut rng);
            let new_id = fam.map(id, &mut rng);
            let slug_idx = usize::from(id == CLAUDE_TOOL);
            let dir = claude_dir.join("projects").join(&fam.slugs[slug_idx]);
            write(dir.join(format!("{new_id}.jsonl")), &data, &mut stats)?;
            stats.sessions += 1;
            if with_fork {
                let data = fam.render(&t.claude_fork, &mut rng);
                let fork_id = fam.map(CLAUDE_FORK, &mut rng);
                write(dir.join(format!("{fork_id}.jsonl")), &data, &mut stats)?;
                stats.sessions += 1;
            }
        } else {
            let roll: f64 = rng.random();
            let (tmpl, id) = if with_fork || roll < 0.45 {
                (&t.codex_tool, CODEX_TOOL)
            } else if roll < 0.85 {
                (&t.codex_one, CODEX_ONE)
            } else {
                (&t.codex_legacy, CODEX_LEGACY)
            };
            let data = fam.render(tmpl, &mut rng);
            let new_id = fam.map(id, &mut rng);
            let dir = codex_home.join("sessions").join(&day);
            let name = format!("rollout-{}-{}-{new_id}.jsonl", fam.time_dash, 28 + n % 30);
            fam.end_byte_offset = data.len() as u64;
            write(dir.join(name), &data, &mut stats)?;
            stats.sessions += 1;
            if with_fork {
                let data = fam.render(&t.codex_fork, &mut rng);
                let fork_id = fam.map(CODEX_FORK, &mut rng);
                let name = format!("rollout-{}-{}-{fork_id}.jsonl", fam.time_dash, 30 + n % 29);
                write(dir.join(name), &data, &mut stats)?;
                stats.sessions += 1;
            }
        }
    }
    Ok(stats)
}

/// One extra line that makes a file grow like a resumed session would: a
/// new user message (Codex `response_item`, Claude `user` record).
pub fn appended_line(codex: bool, n: u64) -> String {
    let text = format!(
        "appended follow up {n} please {}",
        WORDS[(n as usize) % WORDS.len()]
    );
    let line = if codex {
        serde_json::json!({"timestamp":"2026-11-30T10:00:00.000Z","type":"response_item",
            "payload":{"type":"message","role":"user","content":[{"type":"input_text","text": text}]}})
    } else {
        serde_json::json!({"parentUuid":null,"isSidechain":false,"type":"user",
            "uuid": format!("00000000-0000-4000-8000-{n:012}"),
            "timestamp":"2026-11-30T10:00:00.000Z","message":{"role":"user","content": text}})
    };
    format!("{line}\n")
}

/// Options of the catalog benchmarks: `--sessions N` (2000), `--bytes SIZE`
/// (100M), `--corpus DIR` (reuse or create a corpus there), `--baton PATH`
/// (a release binary, to run commands as processes), `--tool-heavy SIZE`.
/// Anything else (`--bench` from cargo) is ignored.
pub struct BenchArgs {
    /// Sessions to generate.
    pub sessions: u64,
    /// Bytes to generate.
    pub bytes: u64,
    /// Where the corpus is kept, if not in a temporary directory.
    pub corpus: Option<PathBuf>,
    /// A `baton` binary to measure as processes.
    pub baton: Option<PathBuf>,
    /// Size of the one tool-output-heavy session, if wanted.
    pub tool_heavy: Option<u64>,
}

impl BenchArgs {
    /// The options of this process's command line.
    pub fn from_env() -> BenchArgs {
        let mut out = BenchArgs {
            sessions: 2000,
            bytes: 100 << 20,
            corpus: None,
            baton: None,
            tool_heavy: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let known = [
                "--sessions",
                "--bytes",
                "--corpus",
                "--baton",
                "--tool-heavy",
            ];
            let value = if known.contains(&a.as_str()) {
                args.next()
            } else {
                continue; // `--bench` and friends from cargo
            };
            match a.as_str() {
                "--sessions" => {
                    out.sessions = value.and_then(|v| v.parse().ok()).unwrap_or(out.sessions)
                }
                "--bytes" => out.bytes = value.and_then(|v| parse_size(&v)).unwrap_or(out.bytes),
                "--corpus" => out.corpus = value.map(PathBuf::from),
                "--baton" => out.baton = value.map(PathBuf::from),
                _ => out.tool_heavy = value.and_then(|v| parse_size(&v)),
            }
        }
        out
    }
}

/// Parse `1G`, `500M`, `64K`, `1000` into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'G' | 'g') => (&s[..i], 1u64 << 30),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'K' | 'k') => (&s[..i], 1 << 10),
        _ => (s, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|v| (v * mult as f64) as u64)
}
