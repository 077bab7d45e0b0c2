//! baton's library under `BATON_HOME`, and sync stream names.
//!
//! The library holds sessions baton got from elsewhere (imported envelopes,
//! pulls from a sync server) in `library/codex/` (a Codex home layout) and
//! `library/claude/` (a Claude config-dir layout), so every reader and the
//! real CLIs' rehydration treat them like an agent home. A session syncs as
//! named streams: `main` for the session's own file, and for a Claude
//! session its subagent transcripts as `subagents/agent-<id>.jsonl` (any
//! other file of its session folder by its path below that folder).

use super::{claude, codex};
use crate::head::Head;
use crate::model::Agent;
use std::path::{Path, PathBuf};

/// Folder of `BATON_HOME` holding the library.
pub const LIBRARY_DIR: &str = "library";
/// The stream holding a session's own file.
pub const MAIN_STREAM: &str = "main";

/// The library root under `baton_home`.
pub fn root(baton_home: &Path) -> PathBuf {
    baton_home.join(LIBRARY_DIR)
}

/// The library's home for `agent`, laid out like that agent's home:
/// `library/codex` (a Codex home), `library/claude` (a Claude config dir).
pub fn agent_home(baton_home: &Path, agent: Agent) -> PathBuf {
    root(baton_home).join(agent.as_str())
}

/// The stream a native file of session `session_id` syncs as: [`MAIN_STREAM`]
/// for the session's own file (a Codex rollout of the thread, a revert
/// segment included; the Claude `<id>.jsonl`), else its path below the
/// session's folder (`subagents/agent-x.jsonl`), a Claude subagent
/// transcript kept elsewhere (the older layout) as
/// `subagents/<file>`, or its file name. A `.zst` suffix is dropped. The
/// caller checks the name against the protocol's rules.
pub fn stream_name(agent: Agent, session_id: &str, path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let base = file.strip_suffix(".zst").unwrap_or(file);
    let is_main = match agent {
        Agent::Codex => codex::RolloutName::parse(base).map(|n| n.thread_id) == Some(session_id),
        Agent::Claude => claude::transcript_id(base) == Some(session_id),
    };
    if is_main {
        return Some(MAIN_STREAM.to_owned());
    }
    let below_folder = path
        .ancestors()
        .find(|a| a.file_name().and_then(|n| n.to_str()) == Some(session_id))
        .and_then(|dir| path.strip_prefix(dir).ok())
        .and_then(|rel| rel.to_str())
        .map(|s| s.strip_suffix(".zst").unwrap_or(s).to_owned());
    Some(below_folder.unwrap_or_else(|| {
        if agent == Agent::Claude && claude::subagent_id(base).is_some() {
            format!("{}/{base}", claude::SUBAGENTS_DIR)
        } else {
            base.to_owned()
        }
    }))
}

/// The agent and session whose `main` stream a native file is, by its name
/// alone: a Codex rollout (not a revert segment) or a Claude transcript;
/// `None` for any other file.
pub fn main_session_of(path: &Path) -> Option<(Agent, &str)> {
    let file = path.file_name()?.to_str()?;
    if let Some(name) = codex::RolloutName::parse(file).filter(|n| n.rollout_id.is_none()) {
        return Some((Agent::Codex, name.thread_id));
    }
    let base = file.strip_suffix(".zst").unwrap_or(file);
    claude::transcript_id(base).map(|id| (Agent::Claude, id))
}

/// Where stream `stream` of session `session_id` goes in the library under
/// `baton_home`: Codex `library/codex/sessions/YYYY/MM/DD/rollout-<ts>-<id>.jsonl`
/// (dated by the start time, now when unknown; other streams beside it,
/// `/` in their name made `-`), Claude
/// `library/claude/projects/<slug of cwd>/<id>.jsonl` (project `-` when the
/// cwd is unknown; other streams below `<id>/`). `head` is what is known of
/// the session (see [`crate::head::peek`]).
pub fn placement(
    baton_home: &Path,
    agent: Agent,
    session_id: &str,
    stream: &str,
    head: &Head,
) -> PathBuf {
    let home = agent_home(baton_home, agent);
    match agent {
        Agent::Codex => {
            let started = head
                .started_at
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .unwrap_or_else(jiff::Timestamp::now)
                .to_zoned(jiff::tz::TimeZone::UTC);
            let main = home.join(codex::new_rollout_path(session_id, &started));
            if stream == MAIN_STREAM {
                main
            } else {
                main.with_file_name(stream.replace('/', "-"))
            }
        }
        Agent::Claude => {
            let slug = head
                .cwd
                .as_deref()
                .map_or_else(|| "-".to_owned(), claude::project_slug);
            let main = home.join(claude::transcript_path(&slug, session_id));
            if stream == MAIN_STREAM {
                main
            } else {
                claude::session_folder(&main, session_id).join(stream)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
    const SEG: &str = "01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b";

    #[test]
    fn stream_names() {
        let codex = |name: &str| {
            stream_name(
                Agent::Codex,
                ID,
                &PathBuf::from(format!("/h/.codex/sessions/2026/11/21/{name}")),
            )
        };
        for main in [
            format!("rollout-2026-11-21T10-00-00-{ID}.jsonl"),
            format!("rollout-2026-11-21T10-00-00-{ID}.jsonl.zst"),
            format!("rollout-2026-11-21T10-00-00-{ID}_{SEG}.jsonl"),
        ] {
            assert_eq!(codex(&main).as_deref(), Some(MAIN_STREAM), "{main}");
        }
        assert_eq!(codex("notes.jsonl").as_deref(), Some("notes.jsonl"));
        let claude = |rel: &str| {
            stream_name(
                Agent::Claude,
                ID,
                &PathBuf::from(format!("/h/.claude/projects/-p/{rel}")),
            )
        };
        assert_eq!(claude(&format!("{ID}.jsonl")).as_deref(), Some(MAIN_STREAM));
        assert_eq!(
            claude(&format!("{ID}/subagents/agent-a1.jsonl")).as_deref(),
            Some("subagents/agent-a1.jsonl")
        );
        assert_eq!(
            claude("agent-a1.jsonl").as_deref(),
            Some("subagents/agent-a1.jsonl"),
            "the older layout streams like the newer one"
        );
    }

    #[test]
    fn library_placement() {
        let home = Path::new("/b");
        let head = Head {
            session_id: None,
            cwd: Some("/w/p".into()),
            started_at: Some("2026-11-21T10:00:00.5Z".into()),
        };
        assert_eq!(
            placement(home, Agent::Codex, ID, MAIN_STREAM, &head),
            Path::new(&format!(
                "/b/library/codex/sessions/2026/11/21/rollout-2026-11-21T10-00-00-{ID}.jsonl"
            ))
        );
        assert_eq!(
            placement(home, Agent::Codex, ID, "a/b.jsonl", &head),
            Path::new("/b/library/codex/sessions/2026/11/21/a-b.jsonl")
        );
        assert_eq!(
            placement(home, Agent::Claude, ID, MAIN_STREAM, &head),
            Path::new(&format!("/b/library/claude/projects/-w-p/{ID}.jsonl"))
        );
        assert_eq!(
            placement(
                home,
                Agent::Claude,
                ID,
                "subagents/agent-a.jsonl",
                &Head::default()
            ),
            Path::new(&format!(
                "/b/library/claude/projects/-/{ID}/subagents/agent-a.jsonl"
            ))
        );
    }
}
