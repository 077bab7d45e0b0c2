//! Recomputing the updatable session rows from the files and messages tables.

use crate::error::{Error, Result, SqlContext};
use crate::timefmt;
use baton_native::{ReaderState, SessionFacts};
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// Keys (agent, id) of the sessions whose rows must be recomputed, e.g.
/// those a written or removed file belonged to.
pub(crate) type Affected = BTreeSet<(String, String)>;

/// One main (non-sidechain) file of a session.
struct MainFile {
    id: i64,
    path: String,
    size: u64,
    mtime_ns: i64,
    compressed: bool,
    facts: SessionFacts,
    /// The file's explicit parent: its sidecar's, else its native one.
    forked_from: Option<String>,
    /// The file lies under baton's library.
    library: bool,
}

fn decode_state(path: &str, json: &str) -> Result<ReaderState> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt {
        what: format!("files.state of {path}"),
        message: e.to_string(),
    })
}

/// Main files of a session, primary (the one `show` reads) first.
fn main_files(tx: &Transaction, db: &Path, agent: &str, id: &str) -> Result<Vec<MainFile>> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT id, path, size, mtime_ns, compressed, state, forked_from, library FROM files
             WHERE agent = ?1 AND session_id = ?2 AND sidechain = 0",
        )
        .at(db)?;
    let rows = stmt
        .query_map(params![agent, id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, bool>(7)?,
            ))
        })
        .at(db)?;
    let mut files = Vec::new();
    for row in rows {
        let (id, path, size, mtime_ns, compressed, state, forked_from, library) = row.at(db)?;
        let facts = decode_state(&path, &state)?.facts;
        files.push(MainFile {
            id,
            path,
            size: size as u64,
            mtime_ns,
            compressed,
            facts,
            forked_from,
            library,
        });
    }
    // A plain file beats a compressed copy; then the longest; then by path.
    files.sort_by(|a, b| {
        a.compressed
            .cmp(&b.compressed)
            .then(b.facts.message_count.cmp(&a.facts.message_count))
            .then(a.path.cmp(&b.path))
    });
    Ok(files)
}

/// Add every session whose row depends on an affected one (forks, and Claude
/// sessions sharing a first chain uuid), transitively.
fn expand(tx: &Transaction, db: &Path, affected: Affected) -> Result<Affected> {
    let mut all = affected.clone();
    let mut work: Vec<(String, String)> = affected.into_iter().collect();
    let mut by_parent = tx
        .prepare_cached(
            "SELECT agent, session_id FROM files WHERE agent = ?1 AND forked_from = ?2 AND session_id IS NOT NULL
             UNION SELECT agent, id FROM sessions WHERE agent = ?1 AND forked_from = ?2",
        )
        .at(db)?;
    let mut uuids = tx
        .prepare_cached(
            "SELECT DISTINCT session_id FROM files
             WHERE first_uuid IN (SELECT first_uuid FROM files
                                  WHERE agent = 'claude' AND session_id = ?1 AND sidechain = 0)
               AND +agent = 'claude' AND sidechain = 0 AND +session_id IS NOT NULL",
        )
        .at(db)?;
    while let Some((agent, id)) = work.pop() {
        let mut found: Vec<(String, String)> = by_parent
            .query_map(params![agent, id], |r| Ok((r.get(0)?, r.get(1)?)))
            .at(db)?
            .collect::<Result<_, _>>()
            .at(db)?;
        if agent == "claude" {
            let ids: Vec<String> = uuids
                .query_map([&id], |r| r.get(0))
                .at(db)?
                .collect::<Result<_, _>>()
                .at(db)?;
            found.extend(ids.into_iter().map(|s| ("claude".to_string(), s)));
        }
        for key in found {
            if all.insert(key.clone()) {
                work.push(key);
            }
        }
    }
    Ok(all)
}

/// Order key for Claude fork inference: who started first (start time,
/// whether it names a source session, whether it is only a copy in baton's
/// library, id).
type StartKey = (String, bool, bool, String);

/// Order key for Claude fork inference: who started first.
fn start_key(facts: &SessionFacts, library: bool, id: &str) -> StartKey {
    (
        facts
            .started_at
            .as_deref()
            .and_then(timefmt::normalize)
            .unwrap_or_default(),
        facts.fork_hint.is_some(),
        library,
        id.to_string(),
    )
}

/// The explicit parent of a session: the first one its main files (primary
/// first) name through a sidecar or a native field.
fn explicit_parent(files: &[MainFile]) -> Option<String> {
    files.iter().find_map(|f| f.forked_from.clone())
}

/// Whether `ancestor` is the Claude session `id` or one of its ancestors,
/// following the parents its main files name and the parents already
/// cataloged for it. Inference must not make a session the child of its own
/// descendant (e.g. an original the child of the diverged copy pulled from
/// sync, which shares every record with it).
fn descends_from(tx: &Transaction, db: &Path, id: &str, ancestor: &str) -> Result<bool> {
    let mut parents = tx
        .prepare_cached(
            "SELECT forked_from FROM files
             WHERE agent = 'claude' AND session_id = ?1 AND sidechain = 0 AND forked_from IS NOT NULL
             UNION SELECT forked_from FROM sessions
             WHERE agent = 'claude' AND id = ?1 AND forked_from IS NOT NULL",
        )
        .at(db)?;
    let mut seen = HashSet::new();
    let mut work = vec![id.to_string()];
    while let Some(session) = work.pop() {
        if session == ancestor {
            return Ok(true);
        }
        if seen.insert(session.clone()) {
            let found: Vec<String> = parents
                .query_map([&session], |r| r.get(0))
                .at(db)?
                .collect::<Result<_, _>>()
                .at(db)?;
            work.extend(found);
        }
    }
    Ok(false)
}

/// Claude: an explicit parent (sidecar, native `forkedFrom`) decides.
/// Otherwise the parent is a session that also holds this session's first
/// chain uuid (`--fork-session` copies the chain), started earlier (on a
/// tie, a file in an agent home before a copy in baton's library) and does
/// not itself name this session as its source (`requestSessionId`) or
/// descend from it. Among several (a fork of a fork shares its first records
/// with every ancestor), the one holding the most of this session's records
/// wins, i.e. the one the deepest copied record came from; then the
/// `requestSessionId` hint; then the earliest. The hint alone is the fallback.
fn infer_claude_parent(
    tx: &Transaction,
    db: &Path,
    id: &str,
    files: &[MainFile],
) -> Result<Option<String>> {
    let Some(primary) = files.first() else {
        return Ok(None);
    };
    let facts = &primary.facts;
    if let Some(parent) = explicit_parent(files) {
        return Ok(Some(parent));
    }
    let Some(first_uuid) = &facts.first_uuid else {
        return Ok(facts.fork_hint.clone());
    };
    let mine = start_key(facts, files.iter().all(|f| f.library), id);
    let mut stmt = tx
        .prepare_cached(
            "SELECT session_id, id, path, state, library FROM files
             WHERE agent = 'claude' AND first_uuid = ?1 AND sidechain = 0 AND session_id != ?2",
        )
        .at(db)?;
    let rows: Vec<(String, i64, String, String, bool)> = stmt
        .query_map(params![first_uuid, id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .at(db)?
        .collect::<Result<_, _>>()
        .at(db)?;
    let mut shared = tx
        .prepare_cached(
            "SELECT count(*) FROM messages m WHERE m.file_id = ?1 AND m.dkey IS NOT NULL
               AND EXISTS (SELECT 1 FROM messages pm WHERE pm.dkey = m.dkey AND pm.file_id = ?2)",
        )
        .at(db)?;
    // (records shared, named by the hint, earliest start) of the best so far.
    let mut best: Option<(i64, bool, std::cmp::Reverse<StartKey>)> = None;
    for (sid, file_id, path, state, library) in rows {
        let theirs = decode_state(&path, &state)?.facts;
        let key = start_key(&theirs, library, &sid);
        // Copied records keep their times, so a fork of a fork ties with its
        // parent: then the one naming the other as its source is the child,
        // and a library copy yields to a file in an agent home.
        let older = match (&key.0, key.1).cmp(&(&mine.0, mine.1)) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => {
                facts.fork_hint.as_deref() == Some(sid.as_str())
                    || (key.2, &key.3) < (mine.2, &mine.3)
            }
        };
        if !older || theirs.fork_hint.as_deref() == Some(id) || descends_from(tx, db, &sid, id)? {
            continue;
        }
        let copied: i64 = shared
            .query_row(params![primary.id, file_id], |r| r.get(0))
            .at(db)?;
        let hinted = facts.fork_hint.as_deref() == Some(sid.as_str());
        let rank = (copied, hinted, std::cmp::Reverse(key));
        if best.as_ref().is_none_or(|b| rank > *b) {
            best = Some(rank);
        }
    }
    Ok(best
        .map(|(_, _, std::cmp::Reverse(key))| key.3)
        .or_else(|| facts.fork_hint.clone()))
}

/// Recompute the rows of `affected` sessions and of everything derived from
/// them. Sessions without any typed prompt in their lineage get no row.
/// Returns the number of rows written.
pub(crate) fn recompute(tx: &Transaction, db: &Path, affected: Affected) -> Result<u64> {
    let all = expand(tx, db, affected)?;
    let mut written = 0;
    for (agent, id) in &all {
        if write_row(tx, db, agent, id)? {
            written += 1;
        }
    }
    Ok(written)
}

fn delete_row(tx: &Transaction, db: &Path, agent: &str, id: &str) -> Result<bool> {
    tx.prepare_cached("DELETE FROM sessions WHERE agent = ?1 AND id = ?2")
        .and_then(|mut s| s.execute(params![agent, id]))
        .at(db)?;
    Ok(false)
}

fn write_row(tx: &Transaction, db: &Path, agent: &str, id: &str) -> Result<bool> {
    let files = main_files(tx, db, agent, id)?;
    let Some(primary) = files.first() else {
        return delete_row(tx, db, agent, id);
    };
    let facts = &primary.facts;

    // Codex paginated forks inherit a byte prefix of their parent, recursively.
    let mut lineage: Vec<(i64, u64)> = vec![(primary.id, u64::MAX)];
    let mut ancestors: Vec<SessionFacts> = Vec::new();
    let mut walk = baton_search::InheritedHistory::new(id, facts.history_base.clone());
    while let Some(hb) = walk.next_parent().cloned() {
        let parents = main_files(tx, db, agent, &hb.thread_id)?;
        let Some(parent) = parents.into_iter().next() else {
            break;
        };
        lineage.insert(0, (parent.id, hb.end_byte_offset));
        walk.found(parent.facts.history_base.clone());
        ancestors.push(parent.facts);
    }

    let mut counts = tx
        .prepare_cached(
            "SELECT count(*), count(*) FILTER (WHERE kind = 'prompt') FROM messages
             WHERE file_id = ?1 AND offset < ?2",
        )
        .at(db)?;
    let mut first = tx
        .prepare_cached(
            "SELECT text FROM messages WHERE file_id = ?1 AND offset < ?2 AND kind = 'prompt'
             ORDER BY offset, id LIMIT 1",
        )
        .at(db)?;
    let (mut message_count, mut user_turns) = (0i64, 0i64);
    let mut first_prompt: Option<String> = None;
    for &(file_id, end) in &lineage {
        let end = end.min(i64::MAX as u64) as i64;
        let (m, u): (i64, i64) = counts
            .query_row(params![file_id, end], |r| Ok((r.get(0)?, r.get(1)?)))
            .at(db)?;
        message_count += m;
        user_turns += u;
        if first_prompt.is_none() && u > 0 {
            first_prompt = first
                .query_row(params![file_id, end], |r| r.get(0))
                .optional()
                .at(db)?;
        }
    }
    if user_turns == 0 {
        // Ghost session: nothing typed, nothing to list.
        return delete_row(tx, db, agent, id);
    }

    let name: Option<String> = tx
        .prepare_cached("SELECT name FROM names WHERE agent = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row(params![agent, id], |r| r.get(0)).optional())
        .at(db)?;
    let title = name
        .filter(|n| !n.trim().is_empty())
        .or_else(|| facts.title.clone().filter(|t| !t.trim().is_empty()))
        .or_else(|| first_prompt.clone());
    let forked_from = if agent == "claude" {
        infer_claude_parent(tx, db, id, &files)?
    } else {
        explicit_parent(&files)
    };
    let inherited =
        |f: fn(&SessionFacts) -> Option<String>| f(facts).or_else(|| ancestors.iter().find_map(f));
    let model = inherited(|f| f.model.clone());
    let git_branch = inherited(|f| f.git_branch.clone());
    let cwd = facts.cwd.clone().or_else(|| facts.latest_cwd.clone());

    let sidechains: Vec<(String, i64, i64, String)> = tx
        .prepare_cached(
            "SELECT path, size, mtime_ns, state FROM files
             WHERE agent = ?1 AND session_id = ?2 AND sidechain = 1 ORDER BY path",
        )
        .and_then(|mut s| {
            s.query_map(params![agent, id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })
        .at(db)?;
    let mut updated_at = String::new();
    let mut paths = Vec::new();
    let mut bytes = 0u64;
    let mut consider = |facts_updated: Option<&str>, mtime_ns: i64| {
        let t = facts_updated
            .and_then(timefmt::normalize)
            .unwrap_or_else(|| timefmt::from_nanos(mtime_ns));
        if t > updated_at {
            updated_at = t;
        }
    };
    for f in &files {
        consider(f.facts.updated_at.as_deref(), f.mtime_ns);
        paths.push(f.path.clone());
        bytes += f.size;
    }
    for (path, size, mtime_ns, state) in &sidechains {
        let sf = decode_state(path, state)?.facts;
        consider(sf.updated_at.as_deref(), *mtime_ns);
        paths.push(path.clone());
        bytes += *size as u64;
    }
    let started_at = facts
        .started_at
        .as_deref()
        .and_then(timefmt::normalize)
        .unwrap_or_else(|| updated_at.clone());

    let lineage_json = serde_json::to_string(&lineage).unwrap_or_else(|_| "[]".into());
    let paths_json = serde_json::to_string(&paths).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "INSERT OR REPLACE INTO sessions (agent, id, file_id, cwd, title, first_prompt, started_at,
            updated_at, user_turns, message_count, model, git_branch, forked_from, lineage, paths, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )
    .and_then(|mut s| {
        s.execute(params![
            agent,
            id,
            primary.id,
            cwd,
            title,
            first_prompt,
            started_at,
            updated_at,
            user_turns,
            message_count,
            model,
            git_branch,
            forked_from,
            lineage_json,
            paths_json,
            bytes as i64,
        ])
    })
    .at(db)?;
    Ok(true)
}
