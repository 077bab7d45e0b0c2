//! Secrets never leave the machine: a Codex session recorded with the real
//! CLI holds one secret of every rule in its prompt, tool arguments and tool
//! output. Pushed, no value reaches the server's data (database, blobs
//! decompressed, search index, log) or any API answer; B, holding the key,
//! pulls bytes sha256-equal to A's; C, without it, pulls placeholders and
//! the real CLI resumes the session with the rest of the history intact.
//! An incremental push after more appends keeps all of that and the
//! server's prefix.
//!
//! Secret values are generated here (not written in the source) so the
//! repository's own false-positive check stays clean.

use super::*;
use baton_protocol::sha256_hex;

/// Deterministic filler: `n` characters of `alphabet`.
fn filler(seed: &mut u64, n: usize, alphabet: &str) -> String {
    let alphabet = alphabet.as_bytes();
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            alphabet[(*seed % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One planted secret: its rule, the value, and the text carrying it.
struct Planted {
    rule: &'static str,
    value: String,
    text: String,
}

/// One secret per built-in rule, each inside the text that carries it.
fn planted(seed: u64) -> Vec<Planted> {
    let mut s = seed;
    let s = &mut s;
    let mut out = Vec::new();
    let mut plant = |rule: &'static str, value: String, text: String| {
        out.push(Planted { rule, value, text });
    };
    let v = format!("sk-ant-api03-{}", filler(s, 95, ALNUM));
    plant("anthropic-api-key", v.clone(), format!("anthropic {v}"));
    let v = format!("sk-proj-{}", filler(s, 60, ALNUM));
    plant("openai-api-key", v.clone(), format!("openai {v}"));
    let v = format!("AKIA{}", filler(s, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));
    plant("aws-access-key-id", v.clone(), format!("key id {v}"));
    let v = filler(s, 40, &format!("{ALNUM}/+"));
    plant(
        "aws-secret-access-key",
        v.clone(),
        format!("aws_secret_access_key = {v}"),
    );
    let v = format!("ghp_{}", filler(s, 36, ALNUM));
    plant("github-token", v.clone(), format!("github {v}"));
    let v = format!("glpat-{}", filler(s, 20, ALNUM));
    plant("gitlab-token", v.clone(), format!("gitlab {v}"));
    let v = format!(
        "xoxb-{}-{}-{}",
        filler(s, 12, "0123456789"),
        filler(s, 13, "0123456789"),
        filler(s, 24, ALNUM)
    );
    plant("slack-token", v.clone(), format!("slack {v}"));
    let v = format!("sk_live_{}", filler(s, 24, ALNUM));
    plant("stripe-key", v.clone(), format!("stripe {v}"));
    let v = format!("AIza{}", filler(s, 35, ALNUM));
    plant("google-api-key", v.clone(), format!("google {v}"));
    let body: Vec<String> = (0..3).map(|_| filler(s, 60, ALNUM)).collect();
    let v = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----",
        body.join("\n")
    );
    plant("private-key", v.clone(), v);
    let v = format!(
        "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
        filler(s, 30, ALNUM),
        filler(s, 43, ALNUM)
    );
    plant("jwt", v.clone(), format!("jwt {v}"));
    let v = filler(s, 32, ALNUM);
    plant(
        "auth-header",
        v.clone(),
        format!("Authorization: Bearer {v}"),
    );
    let v = filler(s, 18, ALNUM);
    plant(
        "url-password",
        v.clone(),
        format!("postgres://app:{v}@db.internal:5432/app"),
    );
    let v = filler(s, 18, ALNUM);
    plant("secret-assignment", v.clone(), format!("DB_PASSWORD={v}"));
    let v = filler(s, 32, ALNUM);
    plant(
        "secret-near-name",
        v.clone(),
        format!("{{\"client_secret\":\"{v}\"}}"),
    );
    out
}

/// What must never be seen outside the keyed machines: each value and each
/// of its alphanumeric runs of 10 or more characters (a search index
/// tokenizes and lowercases); compared lowercase.
fn needles(planted: &[Planted]) -> Vec<String> {
    let mut out = Vec::new();
    for p in planted {
        out.push(p.value.to_lowercase());
        for run in p.value.split(|c: char| !c.is_ascii_alphanumeric()) {
            if run.len() >= 10 {
                out.push(run.to_lowercase());
            }
        }
    }
    out
}

/// The needles `haystack` contains (compared lowercase).
fn leaks(haystack: &[u8], needles: &[String]) -> Vec<String> {
    let hay = String::from_utf8_lossy(haystack).to_lowercase();
    needles
        .iter()
        .filter(|n| hay.contains(n.as_str()))
        .cloned()
        .collect()
}

/// Every file under `dir`, and the decompressed bytes of zstd ones.
fn all_server_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("server dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).expect("server file");
            if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                let plain = zstd::stream::decode_all(bytes.as_slice()).expect("zstd blob");
                out.push((p.with_extension("decompressed"), plain));
            }
            out.push((p, bytes));
        }
    }
    out
}

/// Words next to the planted secrets: searching them brings snippets of the
/// lines that held the values (the values themselves are never sent: the
/// server's log records every query).
const NEIGHBOURS: &[&str] = &[
    "printf",
    "anthropic",
    "openai",
    "github",
    "gitlab",
    "slack",
    "stripe",
    "google",
    "jwt",
    "postgres",
    "authorization",
    "bearer",
    "db_password",
    "client_secret",
    "private",
    "also",
];

/// Every API answer about session `id` and the account, and search answers
/// for every word of `queries`.
fn all_api_answers(serve: &Serve, id: &str, queries: &[&str]) -> Vec<(String, Vec<u8>)> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::new();
    let mut paths: Vec<String> = [
        "/me".to_owned(),
        "/sessions".to_owned(),
        "/changes".to_owned(),
        format!("/sessions/{id}"),
        format!("/sessions/{id}/messages"),
        format!("/sessions/{id}/checkpoints"),
        format!("/sessions/{id}/streams/main"),
    ]
    .into();
    paths.extend(queries.iter().map(|q| format!("/search?q={q}")));
    paths
        .into_iter()
        .map(|p| {
            let url = format!("{}/api/v1{p}", serve.url);
            let body = rt.block_on(async {
                let resp = http
                    .get(&url)
                    .bearer_auth(&serve.token)
                    .send()
                    .await
                    .expect("API answers");
                resp.bytes().await.expect("API body").to_vec()
            });
            (p, body)
        })
        .collect()
}

/// No needle in any server file (decompressed too), the server's log or
/// any API answer; the server has indexed the session (search finds it).
fn assert_nothing_leaked(serve: &Serve, id: &str, needles: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = all_api_answers(serve, id, &["printf"])
            .pop()
            .is_some_and(|(_, body)| String::from_utf8_lossy(&body).contains(id));
        if found {
            break;
        }
        assert!(Instant::now() < deadline, "the server never indexed {id}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut seen = Vec::new();
    for (path, bytes) in all_server_bytes(serve.home()) {
        for leak in leaks(&bytes, needles) {
            seen.push(format!("{}: {leak}", path.display()));
        }
    }
    for (path, body) in all_api_answers(serve, id, NEIGHBOURS) {
        for leak in leaks(&body, needles) {
            seen.push(format!("GET {path}: {leak}"));
        }
    }
    assert!(
        seen.is_empty(),
        "secrets reached the server:\n{}",
        seen.join("\n")
    );
}

/// The server's bytes of stream `main` of `id`.
fn server_stream(serve: &Serve, id: &str) -> Vec<u8> {
    let client = Client::new(&serve.url, &serve.token).expect("client");
    let mut bytes = Vec::new();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(client.read_stream(id, "main", baton_sync::http::Prefix::start(), &mut bytes))
        .expect("read stream");
    bytes
}

/// The one library file `pull` wrote or already had for `id`.
fn pulled_file(m: &Machine, agents: &Agents, id: &str) -> PathBuf {
    m.json(agents, &["pull", id, "--json"]);
    let files = m.library_files_with(id);
    assert_eq!(files.len(), 1, "one library copy of {id}: {files:?}");
    files.into_iter().next().unwrap()
}

/// `text` without placeholders.
fn strip_placeholders(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(baton_secrets::redact::PLACEHOLDER_OPEN) {
        out.push_str(&rest[..at]);
        let close = rest[at..]
            .find(baton_secrets::redact::PLACEHOLDER_CLOSE)
            .expect("closed placeholder");
        rest = &rest[at + close + baton_secrets::redact::PLACEHOLDER_CLOSE.len()..];
    }
    out.push_str(rest);
    out
}

#[test]
fn secrets_stay_home_and_come_back_only_where_the_key_is() {
    let Some(agents) = agents() else {
        eprintln!(
            "SKIPPED secrets_stay_home_and_come_back_only_where_the_key_is: the pinned codex/claude CLIs are not installed"
        );
        return;
    };
    let model = ModelServer::start();
    let serve = start_serve_with(&[("BATON_LOG".into(), "debug".into())], None);
    let a = Machine::new(&model, None);
    let b = Machine::new(&model, Some(&a.project));
    let c = Machine::new(&model, Some(&a.project));
    let planted = planted(0x5eed_cafe);
    let mut needles = needles(&planted);

    // A records a session whose prompt, tool call and tool output hold
    // every secret: `RUN: printf …` makes the model call the shell with it.
    let args: Vec<String> = planted.iter().map(|p| format!("'{}'", p.text)).collect();
    let prompt = format!("RUN: printf '%s\\n' {}", args.join(" "));
    let id = record_session(Agent::Codex, &a.env, &agents, &a.project, &[&prompt]);
    let rollout = a.env.codex_rollout(&id).expect("A's rollout");
    let original = std::fs::read(&rollout).unwrap();
    let reply = String::from_utf8_lossy(&original);
    for p in &planted {
        assert!(
            reply.contains(&p.value) || p.rule == "private-key",
            "the recording holds {}",
            p.rule
        );
    }

    // A and B share a key file; C has none.
    let key = a.env.dir("keys").join("sync.key");
    let login = |m: &Machine, key: &Path| {
        let url = serve.url.as_str();
        let key = key.to_str().unwrap();
        m.json(
            &agents,
            &["login", url, &serve.token, "--key-file", key, "--json"],
        );
    };
    login(&a, &key);
    let b_key = b.env.dir("keys").join("sync.key");
    std::fs::copy(&key, &b_key).unwrap();
    login(&b, &b_key);
    c.login(&agents, &serve);

    // The scan lists one finding per rule, values masked.
    let scan = a.json(&agents, &["secrets", "scan", &id, "--json"]);
    let rules: Vec<&str> = scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for p in &planted {
        assert!(rules.contains(&p.rule), "scan finds {}: {scan}", p.rule);
    }
    assert_eq!(
        leaks(scan.to_string().as_bytes(), &needles),
        Vec::<String>::new()
    );

    // A pushes: nothing reaches the server.
    let pushed = a.json(&agents, &["push", &id, "--json"]);
    assert_eq!(pushed["pushed"][0]["status"], "pushed", "{pushed}");
    assert_nothing_leaked(&serve, &id, &needles);
    let first_push = server_stream(&serve, &id);

    // B, with the key, gets A's exact bytes back.
    let b_file = pulled_file(&b, &agents, &id);
    assert_eq!(
        sha256_hex(&std::fs::read(&b_file).unwrap()),
        sha256_hex(&original)
    );

    // C, without it, gets placeholders; the real CLI resumes the session
    // and the model receives the placeholders and the rest intact.
    let c_file = pulled_file(&c, &agents, &id);
    let c_bytes = std::fs::read(&c_file).unwrap();
    assert_eq!(leaks(&c_bytes, &needles), Vec::<String>::new());
    let req = c.resume(&agents, &model, &id, "c2 codex");
    assert_eq!(
        leaks(req.body.to_string().as_bytes(), &needles),
        Vec::<String>::new()
    );
    let texts = req.user_texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[1], "c2 codex");
    for p in &planted {
        let mark = format!("{}{}:", baton_secrets::redact::PLACEHOLDER_OPEN, p.rule);
        assert!(
            texts[0].contains(&mark),
            "{} became a placeholder: {}",
            p.rule,
            texts[0]
        );
    }
    let mut without_values = prompt.clone();
    for p in &planted {
        without_values = without_values.replace(&p.value, "");
    }
    assert_eq!(strip_placeholders(&texts[0]), without_values);
    let outputs = req.tool_outputs();
    assert!(
        outputs.iter().any(|o| o.contains("‹secret:github-token:")),
        "the tool output reaches the model redacted: {outputs:?}"
    );

    // A continues with one more secret and pushes again: the server's
    // prefix is unchanged and still nothing leaks; B catches up exactly.
    let mut seed = 0xabad_1dea;
    let more = format!("ghp_{}", filler(&mut seed, 36, ALNUM));
    needles.push(more.to_lowercase());
    a.resume(&agents, &model, &id, &format!("a2 also {more}"));
    let pushed = a.json(&agents, &["push", &id, "--json"]);
    assert_eq!(pushed["pushed"][0]["status"], "pushed", "{pushed}");
    let second_push = server_stream(&serve, &id);
    assert!(second_push.len() > first_push.len());
    assert_eq!(
        sha256_hex(&second_push[..first_push.len()]),
        sha256_hex(&first_push),
        "an incremental push keeps the server's prefix"
    );
    assert_nothing_leaked(&serve, &id, &needles);
    let again = a.json(&agents, &["push", &id, "--json"]);
    assert_eq!(again["pushed"][0]["status"], "up_to_date", "{again}");
    let b_file = pulled_file(&b, &agents, &id);
    assert_eq!(
        sha256_hex(&std::fs::read(&b_file).unwrap()),
        sha256_hex(&std::fs::read(&rollout).unwrap())
    );
}
