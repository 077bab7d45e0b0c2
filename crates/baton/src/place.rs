//! Writing sessions into agent homes for commands that create them (fork,
//! convert, import, rehydrate, resume), and the report of the files written.

use anyhow::{Context as _, Result, bail};
use baton_native::Agent;
use baton_native::convert::{Converted, Limits, Target};
use baton_native::fork::{Cut, Forked, new_session_id, plan};
use baton_native::rehydrate::{RehydratedFile, SessionLines};
use baton_native::write::{Content, WriteOutcome, place_claude_session, place_codex_session};
use std::path::{Path, PathBuf};

/// Fork `source` at `cut` into a new session with a fresh id and create its
/// file in the home `home`: Codex under the writer lock, Claude in
/// `claude_folder` (default: the project folder of the source's own file).
/// Used by `fork`, by `import --as-fork`, and by `resume`/`rehydrate` for
/// full copies (`Cut::DropLast(0)`). The fork is streamed from `source` into
/// its new file, never held whole.
pub fn write_fork(
    source: &dyn SessionLines,
    cut: Cut,
    home: &Path,
    claude_folder: Option<&str>,
) -> Result<(Forked, PathBuf)> {
    let new_id = new_session_id(source.agent());
    let plan = plan(source, cut, &new_id, jiff::Timestamp::now())?;
    let mut write =
        |out: &mut dyn std::io::Write| plan.write(source, out).map_err(std::io::Error::other);
    let forked = &plan.forked;
    let path = place_new(
        forked.agent,
        home,
        &forked.id,
        &forked.name,
        Content::Stream(&mut write),
        claude_folder,
    )?;
    Ok((plan.forked, path))
}

/// Create the file of a session baton just made (fresh id) in `home`:
/// Codex at `name` under the writer lock, Claude in `claude_folder`
/// (default: the project folder `name` carries). A file already there is an
/// error (ids are fresh, so it means a clash).
fn place_new(
    agent: Agent,
    home: &Path,
    id: &str,
    name: &str,
    content: Content<'_>,
    claude_folder: Option<&str>,
) -> Result<PathBuf> {
    let placed = match agent {
        Agent::Codex => place_codex_session(home, id, Path::new(name), content)?,
        Agent::Claude => {
            let folder = claude_folder
                .or_else(|| name.split('/').nth(1))
                .unwrap_or("-");
            place_claude_session(home, id, folder, content)?
        }
    };
    if placed.outcome != WriteOutcome::Created {
        bail!(
            "a session with the fresh id {id} already exists at {}; run the command again",
            placed.path.display()
        );
    }
    Ok(placed.path)
}

/// SHA-256 of a session's native bytes (its lineage files in order), read
/// in pieces: the key under which a conversion of these very bytes is
/// reused.
pub fn source_digest(session: &dyn SessionLines) -> Result<String> {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for file in 0..session.file_ids().len() {
        session
            .copy_file(file, &mut hash)
            .with_context(|| format!("cannot read {}", session.file_path(file).display()))?;
    }
    Ok(hex::encode(hash.finalize()))
}

/// Convert `source` into a new session of `to` with a fresh id, create its
/// file in `home` (the target's agent home or baton's library root for it)
/// and record its lineage in a conversion sidecar under `baton_home`. Every
/// conversion `convert` and `resume --in` write goes through here. The new
/// session is streamed from `source` into its file, never held whole.
pub fn write_converted(
    source: &dyn SessionLines,
    to: Agent,
    home: &Path,
    baton_home: &Path,
) -> Result<(Converted, PathBuf)> {
    let codex_provider = match to {
        Agent::Codex => baton_native::codex::config::resolve_target(home, &[])
            .ok()
            .and_then(|t| t.provider),
        Agent::Claude => None,
    };
    let target = Target {
        agent: to,
        codex_provider: codex_provider.unwrap_or_else(|| "openai".to_owned()),
        limits: Limits::for_target(to),
    };
    let new_id = new_session_id(to);
    let plan = baton_native::convert::plan(source, &target, &new_id, jiff::Timestamp::now())?;
    let mut write =
        |out: &mut dyn std::io::Write| plan.write(source, out).map_err(std::io::Error::other);
    let converted = &plan.converted;
    let path = place_new(
        to,
        home,
        &converted.id,
        &converted.name,
        Content::Stream(&mut write),
        None,
    )?;
    baton_store::record_conversion(
        baton_home,
        &baton_store::Conversion {
            agent: to,
            id: converted.id.clone(),
            converted_from: baton_store::SessionRef {
                agent: source.agent(),
                id: source.id().to_owned(),
            },
            source_sha256: source_digest(source)?,
            model: converted.model.clone(),
            git_branch: converted.git_branch.clone(),
        },
    )?;
    Ok((plan.converted, path))
}

/// The human lines about what a conversion left out (none when nothing).
pub fn describe_dropped(dropped: &[baton_native::convert::Dropped]) -> String {
    if dropped.is_empty() {
        return "  nothing was left out".to_owned();
    }
    let items: Vec<String> = dropped
        .iter()
        .map(|d| format!("{} × {}", d.count, d.what))
        .collect();
    format!("  not carried over: {}", items.join(", "))
}

/// One file in the JSON output of `rehydrate` and `import`.
#[derive(Debug, serde::Serialize)]
pub struct FileOut {
    /// Session id of the file.
    pub id: String,
    /// Where it is.
    pub path: PathBuf,
    /// `created`, `unchanged`, `continued` or (import) `updated`.
    pub outcome: &'static str,
    /// For `updated`: how many bytes were appended to baton's library copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_bytes: Option<u64>,
}

impl FileOut {
    /// The JSON view of written files.
    pub fn list(written: &[RehydratedFile]) -> Vec<FileOut> {
        written
            .iter()
            .map(|w| FileOut {
                id: w.id.clone(),
                path: w.placed.path.clone(),
                outcome: w.placed.outcome.as_str(),
                added_bytes: None,
            })
            .collect()
    }

    /// A file baton just created.
    pub fn created(id: &str, path: PathBuf) -> FileOut {
        FileOut {
            id: id.to_owned(),
            path,
            outcome: "created",
            added_bytes: None,
        }
    }
}

/// Print the result of `rehydrate`/`import`: `json` as JSON, or one
/// `outcome path` line per file followed by `summary`.
pub fn print_outcome<T: serde::Serialize>(
    as_json: bool,
    json: &T,
    files: &[FileOut],
    summary: &str,
) -> Result<()> {
    if as_json {
        return crate::output::print_json(json);
    }
    for f in files {
        let outcome = match f.added_bytes {
            Some(n) => format!("{} (+{n} bytes)", f.outcome),
            None => f.outcome.to_owned(),
        };
        println!("{outcome:<9} {}", f.path.display());
    }
    println!("{summary}");
    Ok(())
}
