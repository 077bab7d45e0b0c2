//! This machine's side of sync: which native file is which stream, which
//! sessions changed since they were last acknowledged, where a pulled stream
//! goes in baton's library, and the server's change feed.

use crate::error::ClientError;
use crate::http::{Client, check_session_info};
use crate::native::LocalBytes;
use crate::push::LocalSession;
use crate::state::{SyncState, Tracked};
use baton_native::Agent;
use baton_native::files::FileStat;
use baton_native::layout::library;
use baton_protocol::{MAIN_STREAM, SessionInfo, SessionMeta, validate_stream_name};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `paths` of session `id` as named streams, `main` first; `None` without
/// `main`.
fn streams_of(agent: Agent, id: &str, paths: Vec<PathBuf>) -> Option<Vec<(String, PathBuf)>> {
    let mut streams: Vec<(String, PathBuf)> = Vec::new();
    for path in paths {
        let name = library::stream_name(agent, id, &path)
            .filter(|name| validate_stream_name(name).is_ok());
        let Some(name) = name else {
            tracing::warn!("not syncing {}: no stream name for it", path.display());
            continue;
        };
        if !streams.iter().any(|(n, _)| n == &name) {
            streams.push((name, path));
        }
    }
    streams.sort_by_key(|(n, _)| n != MAIN_STREAM);
    streams
        .first()
        .is_some_and(|(n, _)| n == MAIN_STREAM)
        .then_some(streams)
}

impl LocalSession {
    /// Session `id` (metadata `meta`) as something to push, from its native
    /// `files`: its agent-home files when they hold its `main` stream, else
    /// (a session only baton holds: imported or pulled) its files under
    /// `library`, which are native bytes too. `None` without a `main` stream.
    pub fn from_files(
        id: &str,
        meta: SessionMeta,
        files: &[PathBuf],
        library: &Path,
    ) -> Option<Self> {
        let (in_library, own): (Vec<PathBuf>, Vec<PathBuf>) =
            files.iter().cloned().partition(|p| p.starts_with(library));
        let streams =
            streams_of(meta.agent, id, own).or_else(|| streams_of(meta.agent, id, in_library))?;
        Some(Self {
            id: id.to_owned(),
            meta,
            streams,
        })
    }
}

/// True when every stream of `session` is exactly as far as the server
/// acknowledged (pushed from it, or pulled into it). A file whose size, mtime
/// and inode are as recorded then is not read; any other is compared by
/// content (length and sha256), so a same-size rewrite is pushed, and a file
/// only touched gets its new stamp recorded in `state`.
pub fn unchanged(state: &mut SyncState, session: &LocalSession) -> bool {
    let remote_id = state.remote_id(&session.id).to_owned();
    let Some(remote) = state.sessions.get_mut(&remote_id) else {
        return false;
    };
    session.streams.iter().all(|(name, path)| {
        let Some(stream) = remote.streams.get_mut(name) else {
            return false;
        };
        let mut tracked: Vec<&mut Tracked> = [&mut stream.source, &mut stream.mirror]
            .into_iter()
            .flatten()
            .filter(|t| &t.path == path)
            .collect();
        let now = FileStat::of_path(path);
        if tracked.is_empty() || now.is_none() {
            return false;
        }
        if tracked.iter().any(|t| t.stamp.is_some() && t.stamp == now) {
            return true;
        }
        let compressed = baton_native::files::is_compressed(path);
        let size = now.as_ref().map(|n| n.size);
        if !compressed && tracked.iter().all(|t| Some(t.plain_len) != size) {
            return false;
        }
        let Ok(Some(bytes)) = LocalBytes::open(path) else {
            return false;
        };
        let Ok(sha) = bytes.prefix_sha256(bytes.len()) else {
            return false;
        };
        match tracked
            .iter_mut()
            .find(|t| t.plain_len == bytes.len() && t.plain_sha256 == sha)
        {
            Some(t) => {
                t.stamp = now;
                true
            }
            None => false,
        }
    })
}

/// Where pull puts stream `stream` of `info` in the library under
/// `baton_home` ([`library::placement`]); `bytes` are the stream's first
/// bytes, read for what the listing lacks (start time, cwd).
pub fn library_path(baton_home: &Path, info: &SessionInfo, stream: &str, bytes: &[u8]) -> PathBuf {
    let mut head = baton_native::head::peek(info.agent, bytes);
    head.started_at = info.started_at.clone().or(head.started_at);
    head.cwd = info.cwd.clone().or(head.cwd);
    library::placement(baton_home, info.agent, &info.id, stream, &head)
}

/// Every server session changed after `since`, oldest change first, and
/// the cursor that follows them (see [`cursor_after`] before saving it).
pub async fn changed_since(
    client: &Client,
    since: u64,
) -> Result<(Vec<SessionInfo>, u64), ClientError> {
    let mut out: BTreeMap<String, SessionInfo> = BTreeMap::new();
    let mut since = since;
    loop {
        let page = client.changes(since).await?;
        for s in page.sessions {
            out.insert(s.id.clone(), s);
        }
        if !page.more || page.next_since <= since {
            since = page.next_since.max(since);
            break;
        }
        since = page.next_since;
    }
    let mut infos: Vec<SessionInfo> = out.into_values().collect();
    infos.sort_by_key(|i| i.updated_seq);
    Ok((infos, since))
}

/// The changes cursor to save after pulling `infos`: `next`, but kept below
/// the lowest change whose pull failed (`failed` ids) so the next sync tries
/// it again; a failed session that was not itself a change (a fork's
/// parent) holds the cursor at `current`. Never moves backwards.
pub fn cursor_after(infos: &[SessionInfo], next: u64, failed: &[&str], current: u64) -> u64 {
    let mut since = next;
    for id in failed {
        let held = match infos.iter().find(|i| i.id == *id) {
            Some(info) => info.updated_seq.saturating_sub(1),
            None => current,
        };
        since = since.min(held);
    }
    since.max(current)
}

/// `infos` with the parents of forks this machine lacks (`have(agent, id)`
/// false) fetched from the server, each parent before its fork. A parent is
/// only followed from an answer whose names are safe (the pull of an unsafe
/// one fails on its own).
pub async fn with_missing_parents(
    client: &Client,
    infos: Vec<SessionInfo>,
    have: impl Fn(Agent, &str) -> bool,
) -> Result<Vec<SessionInfo>, ClientError> {
    let mut queue: Vec<SessionInfo> = Vec::new();
    let mut known: BTreeSet<String> = infos.iter().map(|i| i.id.clone()).collect();
    for info in infos {
        let mut chain = vec![info];
        while let Some(last) = chain.last().filter(|i| check_session_info(i).is_ok())
            && let Some(parent) = last.forked_from.clone()
        {
            if have(chain[0].agent, &parent) || !known.insert(parent.clone()) {
                break;
            }
            match client.session(&parent).await? {
                Some(p) => chain.push(p),
                None => break,
            }
        }
        queue.extend(chain.into_iter().rev());
    }
    Ok(queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, seq: u64) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            agent: Agent::Codex,
            cwd: None,
            title: None,
            title_truncated: false,
            first_prompt: None,
            first_prompt_truncated: false,
            started_at: None,
            updated_at: None,
            user_turns: 0,
            message_count: 0,
            forked_from: None,
            diverged_from: None,
            encrypted: false,
            archived: false,
            streams: Vec::new(),
            updated_seq: seq,
        }
    }

    #[test]
    fn the_cursor_stays_below_the_first_failed_change() {
        let infos = [info("a", 5), info("b", 8)];
        assert_eq!(cursor_after(&infos, 9, &[], 2), 9);
        assert_eq!(cursor_after(&infos, 9, &["b"], 2), 7);
        assert_eq!(cursor_after(&infos, 9, &["a", "b"], 2), 4);
        // A failed parent that was not a change holds the cursor.
        assert_eq!(cursor_after(&infos, 9, &["p"], 2), 2);
        // Never backwards.
        assert_eq!(cursor_after(&infos, 9, &["a"], 6), 6);
    }

    #[test]
    fn own_files_are_pushed_before_library_copies() {
        let id = "01a1ff8d-8c3d-7551-b270-db431e8a8997";
        let meta = SessionMeta::of_agent(Agent::Claude);
        let library = Path::new("/b/library");
        let own = PathBuf::from(format!("/h/.claude/projects/-p/{id}.jsonl"));
        let copy = library.join(format!("claude/projects/-p/{id}.jsonl"));
        let s = LocalSession::from_files(id, meta.clone(), &[copy.clone(), own.clone()], library)
            .unwrap();
        assert_eq!(s.streams, vec![("main".to_owned(), own)]);
        let s = LocalSession::from_files(id, meta, std::slice::from_ref(&copy), library).unwrap();
        assert_eq!(s.streams, vec![("main".to_owned(), copy)]);
    }
}
