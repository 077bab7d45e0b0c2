//! Writing sessions into agent homes for commands that create them (fork,
//! import, rehydrate, resume), and the report of the files written.

use anyhow::{Result, bail};
use baton_native::Agent;
use baton_native::fork::{Cut, Forked, fork, new_session_id};
use baton_native::rehydrate::{NativeSession, RehydratedFile};
use baton_native::write::{WriteOutcome, place_claude_session, place_codex_session};
use std::path::{Path, PathBuf};

/// Fork `source` at `cut` into a new session with a fresh id and create its
/// file in the home `home`: Codex under the writer lock, Claude in
/// `claude_folder` (default: the project folder of the source's own file).
/// Used by `fork`, by `import --as-fork`, and by `resume`/`rehydrate` for
/// full copies (`Cut::DropLast(0)`).
pub fn write_fork(
    source: &NativeSession,
    cut: Cut,
    home: &Path,
    claude_folder: Option<&str>,
) -> Result<(Forked, PathBuf)> {
    let new_id = new_session_id(source.agent);
    let forked = fork(source, cut, &new_id, jiff::Timestamp::now())?;
    let placed = match forked.agent {
        Agent::Codex => {
            place_codex_session(home, &forked.id, Path::new(&forked.name), &forked.bytes)?
        }
        Agent::Claude => {
            let folder = claude_folder
                .or_else(|| forked.name.split('/').nth(1))
                .unwrap_or("-");
            place_claude_session(home, &forked.id, folder, &forked.bytes)?
        }
    };
    if placed.outcome != WriteOutcome::Created {
        bail!(
            "a session with the fresh id {} already exists at {}; run the command again",
            forked.id,
            placed.path.display()
        );
    }
    Ok((forked, placed.path))
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
