//! A session as native bytes ([`NativeSession`]: the file plus, for Codex
//! paginated forks, every ancestor its `history_base` points into), loading
//! one from disk, rewriting its working directory ([`PathMap`]), and writing
//! it into an agent home where the real CLI looks for it ([`rehydrate`]).

use crate::layout::{claude, codex};
use crate::model::Agent;
use crate::write::{self, Placed, WriteError, WriteOutcome};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One native file of a session's lineage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageFile {
    /// Session id this file belongs to.
    pub id: String,
    /// Path relative to the agent home: `sessions/YYYY/MM/DD/rollout-<ts>-<id>.jsonl`
    /// (Codex) or `projects/<slug>/<id>.jsonl` (Claude).
    pub name: String,
    /// The file's bytes (uncompressed).
    pub bytes: Vec<u8>,
}

/// A file kept in a Claude session's own folder `projects/<slug>/<id>/`
/// (§2.1): a subagent transcript or its `.meta.json`, or a large tool output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExtra {
    /// What the file is.
    pub kind: ExtraKind,
    /// The file name inside `subagents/` or `tool-results/` (one safe path
    /// component, see [`is_safe_extra_name`]).
    pub file_name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// Which sub-folder of a Claude session folder an extra file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraKind {
    /// `subagents/agent-<agentId>.jsonl` or `subagents/agent-<agentId>.meta.json`.
    Subagent,
    /// `tool-results/<name>`.
    ToolResult,
}

impl ExtraKind {
    /// The sub-folder name (`subagents`, `tool-results`).
    pub fn folder(self) -> &'static str {
        match self {
            ExtraKind::Subagent => claude::SUBAGENTS_DIR,
            ExtraKind::ToolResult => claude::TOOL_RESULTS_DIR,
        }
    }
}

impl SessionExtra {
    /// The path relative to the session folder, e.g. `subagents/agent-a.jsonl`.
    pub fn relative_path(&self) -> String {
        format!("{}/{}", self.kind.folder(), self.file_name)
    }
}

/// Whether `name` may be used as an extra file's name: one path component of
/// ASCII letters, digits, `-`, `_` and `.`, not starting with `.`; subagent
/// files must also be `agent-*.jsonl` or `agent-*.meta.json`.
pub fn is_safe_extra_name(kind: ExtraKind, name: &str) -> bool {
    let safe = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    safe && match kind {
        ExtraKind::Subagent => {
            name.starts_with("agent-") && (name.ends_with(".jsonl") || name.ends_with(".meta.json"))
        }
        ExtraKind::ToolResult => true,
    }
}

/// A session's native bytes: its own file last, preceded by the ancestors it
/// references (oldest first). Claude sessions and non-fork Codex sessions have
/// exactly one file; a Claude session also carries the subagent transcripts
/// and tool outputs of its session folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeSession {
    /// Which agent wrote it.
    pub agent: Agent,
    /// The session id.
    pub id: String,
    /// Ancestors first, the session's own file last. Never empty.
    pub files: Vec<LineageFile>,
    /// Claude: files of `projects/<slug>/<id>/` (`subagents/`,
    /// `tool-results/`), sorted by relative path. Empty for Codex.
    pub extras: Vec<SessionExtra>,
}

/// Why a session could not be loaded, forked or rehydrated.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a usable session of the expected agent.
    #[error("{0}")]
    Invalid(String),
    /// Writing a new session's bytes failed.
    #[error("cannot write the new session: {0}")]
    Output(std::io::Error),
    /// A Codex fork's parent rollout could not be found.
    #[error(
        "session {child} continues the history of {parent}, whose rollout is not in {searched}; \
         pass the Codex home that holds it with --codex-home (or import its envelope)"
    )]
    MissingParent {
        /// The fork.
        child: String,
        /// The missing parent thread id.
        parent: String,
        /// Where baton looked.
        searched: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Every complete line of `bytes` parsed as JSON, invalid lines and a torn tail skipped.
pub(crate) fn records(bytes: &[u8]) -> Vec<Value> {
    crate::jsonl::Lines::new(bytes, 0, 0)
        .filter_map(|l| l.value().ok())
        .collect()
}

/// The canonical relative path of a Codex rollout for `id` started at `ts`
/// (UTC); [`codex::new_rollout_path`] for a timestamp.
pub(crate) fn codex_rollout_name(id: &str, ts: &jiff::Timestamp) -> String {
    codex::new_rollout_path(id, &ts.to_zoned(jiff::tz::TimeZone::UTC))
}

/// The home-relative name of the Codex rollout at `path` holding thread
/// `id`: its own file name (a revert segment's included) filed under the
/// date the name carries, or, when the name is not a rollout name of `id`,
/// the canonical name from the `session_meta` start time (now if unknown).
fn codex_lineage_name(path: &Path, id: &str, meta: &Value) -> String {
    if let Some(name) = codex::RolloutName::of_path(path).filter(|n| n.thread_id == id) {
        let plain = codex::RolloutName {
            compressed: false,
            ..name
        };
        return plain.session_path();
    }
    let started = meta
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(jiff::Timestamp::now);
    codex_rollout_name(id, &started)
}

/// The whole of the native file at `path` (see [`crate::files::read_whole`]).
fn read_native(path: &Path) -> Result<Vec<u8>, NativeError> {
    crate::files::read_whole(path).map_err(|source| NativeError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The subagent transcripts (with their `.meta.json`) and tool outputs in a
/// Claude session folder `dir` (`projects/<slug>/<id>/`), sorted by relative
/// path. A missing folder has none; files with unexpected names are skipped.
fn load_claude_extras(dir: &Path) -> Result<Vec<SessionExtra>, NativeError> {
    let mut extras = Vec::new();
    for kind in [ExtraKind::Subagent, ExtraKind::ToolResult] {
        let sub = dir.join(kind.folder());
        let entries = match std::fs::read_dir(&sub) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(NativeError::Read { path: sub, source }),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !path.is_file() || !is_safe_extra_name(kind, &name) {
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                // Claude's retention sweep may delete it meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(NativeError::Read { path, source }),
            };
            extras.push(SessionExtra {
                kind,
                file_name: name,
                bytes,
            });
        }
    }
    extras.sort_by_key(SessionExtra::relative_path);
    Ok(extras)
}

/// One file of a session's lineage where it lies on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOnDisk {
    /// Session id this file belongs to.
    pub id: String,
    /// Path relative to the agent home (as [`LineageFile::name`]).
    pub name: String,
    /// The file (`.jsonl.zst` ones are read decompressed).
    pub path: PathBuf,
}

/// A session's lineage located on disk but not read: what [`fork`](crate::fork::fork)
/// streams from, so a session of any size is never held whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOnDisk {
    /// Which agent wrote it.
    pub agent: Agent,
    /// The session id.
    pub id: String,
    /// Ancestors first, the session's own file last. Never empty.
    pub files: Vec<FileOnDisk>,
}

/// The first line of the native file at `path` parsed as JSON, read
/// without reading the rest.
fn first_record_of(path: &Path) -> Result<Option<Value>, NativeError> {
    let mut first = None;
    visit_file(path, None, &mut |line| {
        first = line.value().ok();
        Ok(false)
    })?;
    Ok(first)
}

/// Call `visit` with each complete line of the native file at `path` that
/// ends within its first `limit` bytes (all when `None`), while it returns
/// true; read in pieces ([`crate::jsonl::read_lines`]).
fn visit_file(
    path: &Path,
    limit: Option<u64>,
    visit: &mut dyn FnMut(crate::jsonl::Line<'_>) -> Result<bool, NativeError>,
) -> Result<(), NativeError> {
    let read_err = |source| NativeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let reader = crate::files::open_native_path(path, crate::files::is_compressed(path), 0)
        .map_err(read_err)?;
    let reader = std::io::Read::take(reader, limit.unwrap_or(u64::MAX));
    crate::jsonl::read_lines(reader, read_err, visit)
}

impl SessionOnDisk {
    /// Claude: the subagent transcripts (with their `.meta.json`) and tool
    /// outputs of the session's folder, read, sorted by relative path; none
    /// for Codex.
    pub fn extras(&self) -> Result<Vec<SessionExtra>, NativeError> {
        match self.agent {
            Agent::Claude => {
                let own = &self.files[self.files.len() - 1].path;
                load_claude_extras(&claude::session_folder(own, &self.id))
            }
            Agent::Codex => Ok(Vec::new()),
        }
    }

    /// Locate the session stored at `path`: for a Codex paginated fork,
    /// every ancestor named by `history_base` is looked up in `codex_roots`
    /// (Codex home layouts, e.g. the agent homes and baton's library). Only
    /// each file's first line is read.
    pub fn locate(agent: Agent, path: &Path, codex_roots: &[PathBuf]) -> Result<Self, NativeError> {
        match agent {
            Agent::Codex => Self::locate_codex(path, codex_roots),
            Agent::Claude => Self::locate_claude(path),
        }
    }

    fn locate_claude(path: &Path) -> Result<Self, NativeError> {
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .filter(|id| crate::layout::check_session_id(id).is_ok())
            .ok_or_else(|| {
                NativeError::Invalid(format!(
                    "{} is not a Claude transcript (expected projects/<project>/<session-id>.jsonl)",
                    path.display()
                ))
            })?
            .to_string();
        let folder = claude::project_folder(path).unwrap_or("-");
        Ok(Self {
            agent: Agent::Claude,
            id: id.clone(),
            files: vec![FileOnDisk {
                name: claude::transcript_path(folder, &id),
                id,
                path: path.to_path_buf(),
            }],
        })
    }

    fn locate_codex(path: &Path, roots: &[PathBuf]) -> Result<Self, NativeError> {
        let mut files: Vec<FileOnDisk> = Vec::new();
        let mut current = path.to_path_buf();
        loop {
            let meta = first_record_of(&current)?
                .filter(|r| r.get("type").and_then(Value::as_str) == Some("session_meta"))
                .and_then(|mut r| r.get_mut("payload").map(Value::take))
                .ok_or_else(|| {
                    NativeError::Invalid(format!(
                        "{} is not a Codex rollout: its first line is not a session_meta record",
                        current.display()
                    ))
                })?;
            let id = meta
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| crate::layout::check_session_id(id).is_ok())
                .ok_or_else(|| {
                    NativeError::Invalid(format!(
                        "{}: session_meta has no usable id",
                        current.display()
                    ))
                })?
                .to_string();
            if files.iter().any(|f| f.id == id) {
                return Err(NativeError::Invalid(format!(
                    "{}: history_base forms a cycle through {id}",
                    current.display()
                )));
            }
            let name = codex_lineage_name(&current, &id, &meta);
            let parent = history_base_parent(&meta);
            files.push(FileOnDisk {
                id,
                name,
                path: current.clone(),
            });
            let Some(parent) = parent else { break };
            let child = &files[files.len() - 1].id;
            current =
                codex::find_rollout(roots, &parent).ok_or_else(|| NativeError::MissingParent {
                    child: child.clone(),
                    parent: parent.clone(),
                    searched: roots
                        .iter()
                        .map(|r| r.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
        }
        files.reverse();
        let id = files[files.len() - 1].id.clone();
        Ok(Self {
            agent: Agent::Codex,
            id,
            files,
        })
    }
}

/// A session's lineage read line by line, from memory ([`NativeSession`])
/// or from disk ([`SessionOnDisk`]): what forking needs, so one function
/// serves both.
pub trait SessionLines {
    /// Which agent wrote it.
    fn agent(&self) -> Agent;
    /// The session id.
    fn id(&self) -> &str;
    /// The ids of the lineage files, ancestors first.
    fn file_ids(&self) -> Vec<&str>;
    /// Call `visit` with each complete line of lineage file `file` that ends
    /// within its first `limit` bytes (all when `None`), while it returns true.
    fn visit_lines(
        &self,
        file: usize,
        limit: Option<u64>,
        visit: &mut dyn FnMut(crate::jsonl::Line<'_>) -> Result<bool, NativeError>,
    ) -> Result<(), NativeError>;
    /// The Claude project folder the session belongs in: the slug of its
    /// cwd (§2.1), or the folder its file name carries when no record has a
    /// cwd.
    fn claude_project_folder(&self) -> String;
}

/// The project folder for a Claude session whose own file is at `name`
/// (relative to the home) and whose head says `cwd`.
fn project_folder_for(cwd: Option<String>, name: &str) -> String {
    match cwd {
        Some(cwd) => claude::project_slug(&cwd),
        None => name.split('/').nth(1).unwrap_or("-").to_string(),
    }
}

impl SessionLines for NativeSession {
    fn agent(&self) -> Agent {
        self.agent
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn file_ids(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.id.as_str()).collect()
    }

    fn visit_lines(
        &self,
        file: usize,
        limit: Option<u64>,
        visit: &mut dyn FnMut(crate::jsonl::Line<'_>) -> Result<bool, NativeError>,
    ) -> Result<(), NativeError> {
        let bytes = &self.files[file].bytes;
        let end = limit.map_or(bytes.len(), |l| (l as usize).min(bytes.len()));
        for line in crate::jsonl::Lines::new(&bytes[..end], 0, 0) {
            if !visit(line)? {
                break;
            }
        }
        Ok(())
    }

    fn claude_project_folder(&self) -> String {
        project_folder_for(self.cwd(), &self.session_file().name)
    }
}

impl SessionLines for SessionOnDisk {
    fn agent(&self) -> Agent {
        self.agent
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn file_ids(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.id.as_str()).collect()
    }

    fn visit_lines(
        &self,
        file: usize,
        limit: Option<u64>,
        visit: &mut dyn FnMut(crate::jsonl::Line<'_>) -> Result<bool, NativeError>,
    ) -> Result<(), NativeError> {
        visit_file(&self.files[file].path, limit, visit)
    }

    fn claude_project_folder(&self) -> String {
        let own = &self.files[self.files.len() - 1];
        let cwd = crate::head::peek_file(self.agent, &own.path)
            .ok()
            .and_then(|h| h.cwd);
        project_folder_for(cwd, &own.name)
    }
}

impl NativeSession {
    /// Load the session stored at `path` whole: its lineage located by
    /// [`SessionOnDisk::locate`], every file read, and for Claude the files
    /// of its session folder.
    pub fn load(agent: Agent, path: &Path, codex_roots: &[PathBuf]) -> Result<Self, NativeError> {
        let located = SessionOnDisk::locate(agent, path, codex_roots)?;
        let files = located
            .files
            .iter()
            .map(|f| {
                Ok(LineageFile {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    bytes: read_native(&f.path)?,
                })
            })
            .collect::<Result<Vec<_>, NativeError>>()?;
        let extras = located.extras()?;
        Ok(Self {
            agent,
            id: located.id,
            files,
            extras,
        })
    }

    /// The session's own file.
    pub fn session_file(&self) -> &LineageFile {
        &self.files[self.files.len() - 1]
    }

    /// The directory the session started in.
    pub fn cwd(&self) -> Option<String> {
        crate::head::peek(self.agent, &self.session_file().bytes).cwd
    }
}

/// The parent thread id a Codex `session_meta` payload's `history_base` names.
pub(crate) fn history_base_parent(meta: &Value) -> Option<String> {
    meta.get("history_base")?
        .get("thread_id")?
        .as_str()
        .map(str::to_string)
}

/// One `--map-path OLD=NEW` rule: a path equal to `from`, or below it, moves
/// to the same place below `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap {
    /// Old absolute path prefix.
    pub from: String,
    /// New absolute path prefix.
    pub to: String,
}

impl std::str::FromStr for PathMap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (from, to) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not OLD=NEW (e.g. /old/project=/new/project)"))?;
        let trim = |p: &str| {
            if p.len() > 1 {
                p.trim_end_matches('/').to_string()
            } else {
                p.to_string()
            }
        };
        if from.is_empty() || to.is_empty() {
            return Err(format!("`{s}`: both OLD and NEW must be non-empty paths"));
        }
        Ok(PathMap {
            from: trim(from),
            to: trim(to),
        })
    }
}

/// Apply the first matching rule to a path (also in `file://` URL form).
pub fn map_path(path: &str, maps: &[PathMap]) -> Option<String> {
    if let Some(rest) = path.strip_prefix("file://") {
        return map_path(rest, maps).map(|p| format!("file://{p}"));
    }
    maps.iter().find_map(|m| {
        let rest = path.strip_prefix(m.from.as_str())?;
        (rest.is_empty() || rest.starts_with('/') || m.from == "/")
            .then(|| format!("{}{rest}", m.to))
    })
}

/// Rewrite cwd-like fields below `value`: string values of keys named `cwd`,
/// and strings or string arrays under keys ending in `roots`
/// (`runtime_workspace_roots`, `writable_roots`, ...). Returns whether
/// anything changed.
fn map_cwd_fields(value: &mut Value, maps: &[PathMap]) -> bool {
    let mut changed = false;
    match value {
        Value::Object(obj) => {
            for (key, v) in obj.iter_mut() {
                let is_path_key = key == "cwd" || key.ends_with("roots");
                match v {
                    Value::String(s) if is_path_key => {
                        if let Some(new) = map_path(s, maps) {
                            *s = new;
                            changed = true;
                        }
                    }
                    Value::Array(items) if is_path_key => {
                        for item in items.iter_mut() {
                            if let Value::String(s) = item {
                                if let Some(new) = map_path(s, maps) {
                                    *s = new;
                                    changed = true;
                                }
                            } else {
                                changed |= map_cwd_fields(item, maps);
                            }
                        }
                    }
                    _ => changed |= map_cwd_fields(v, maps),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= map_cwd_fields(item, maps);
            }
        }
        _ => {}
    }
    changed
}

/// Serialize one record as a compact JSONL line (with `\n`).
pub(crate) fn to_line(value: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(value).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Rewrite one file line by line with `edit`; untouched lines keep their
/// exact bytes. Returns the new bytes and, for every line boundary, the old
/// end offset mapped to the new one.
fn rewrite_lines(
    bytes: &[u8],
    mut edit: impl FnMut(&mut Value) -> bool,
) -> (Vec<u8>, HashMap<u64, u64>) {
    let mut out = Vec::with_capacity(bytes.len());
    let mut ends = HashMap::new();
    let mut old_end = 0u64;
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        old_end += raw.len() as u64;
        let complete = raw.ends_with(b"\n");
        let parsed = complete
            .then(|| serde_json::from_slice::<Value>(raw).ok())
            .flatten();
        match parsed {
            Some(mut v) if v.is_object() => {
                if edit(&mut v) {
                    out.extend(to_line(&v));
                } else {
                    out.extend_from_slice(raw);
                }
            }
            _ => out.extend_from_slice(raw),
        }
        ends.insert(old_end, out.len() as u64);
    }
    (out, ends)
}

impl NativeSession {
    /// A copy whose working-directory fields are moved by `maps` so the agent
    /// resumes at the new location. Codex: cwd-like fields of every record
    /// except model-facing `response_item`s (`session_meta.cwd`,
    /// `runtime_workspace_roots`, `turn_context.cwd`, `thread_settings.cwd`,
    /// `world_state` environments, ...); forks' `history_base.end_byte_offset`
    /// follows the rewritten parent. Claude: every record's `cwd` (the project
    /// folder follows on [`rehydrate`]). Nothing else changes; lines without a
    /// match keep their exact bytes.
    pub fn map_paths(&self, maps: &[PathMap]) -> NativeSession {
        if maps.is_empty() {
            return self.clone();
        }
        let claude_cwd = |v: &mut Value| match v.get_mut("cwd") {
            Some(Value::String(s)) => match map_path(s, maps) {
                Some(new) => {
                    *s = new;
                    true
                }
                None => false,
            },
            _ => false,
        };
        let mut files = Vec::with_capacity(self.files.len());
        let mut parent_ends: Option<HashMap<u64, u64>> = None;
        for file in &self.files {
            let agent = self.agent;
            let (bytes, ends) = rewrite_lines(&file.bytes, |v| match agent {
                Agent::Claude => claude_cwd(v),
                Agent::Codex => {
                    if v.get("type").and_then(Value::as_str) == Some("response_item") {
                        return false;
                    }
                    let mut changed = false;
                    if let (Some(ends), Some(off)) = (
                        parent_ends.as_ref(),
                        v.pointer_mut("/payload/history_base/end_byte_offset"),
                    ) && let Some(new) = off.as_u64().and_then(|o| ends.get(&o))
                        && off.as_u64() != Some(*new)
                    {
                        *off = Value::from(*new);
                        changed = true;
                    }
                    if let Some(payload) = v.get_mut("payload") {
                        changed |= map_cwd_fields(payload, maps);
                    }
                    changed
                }
            });
            parent_ends = Some(ends);
            files.push(LineageFile {
                id: file.id.clone(),
                name: file.name.clone(),
                bytes,
            });
        }
        // Subagent transcripts ran in the session's directory too.
        let extras = self
            .extras
            .iter()
            .map(|x| match x.kind {
                ExtraKind::Subagent if x.file_name.ends_with(".jsonl") => SessionExtra {
                    bytes: rewrite_lines(&x.bytes, claude_cwd).0,
                    ..x.clone()
                },
                _ => x.clone(),
            })
            .collect();
        NativeSession {
            agent: self.agent,
            id: self.id.clone(),
            files,
            extras,
        }
    }
}

impl NativeSession {
    /// A copy of a Codex session recorded under another `model_provider`,
    /// with the `session_meta` records of its own file naming `provider`
    /// (Codex lists only the current provider's sessions). Ancestors keep
    /// their bytes (a fork's byte offsets point into them); a Claude session
    /// is returned unchanged.
    pub fn with_codex_provider(&self, provider: &str) -> NativeSession {
        let mut copy = self.clone();
        if self.agent != Agent::Codex {
            return copy;
        }
        if let Some(own) = copy.files.last_mut() {
            own.bytes = rewrite_lines(&own.bytes, |v| {
                if v.get("type").and_then(Value::as_str) != Some("session_meta") {
                    return false;
                }
                match v.pointer_mut("/payload/model_provider") {
                    Some(p) if p.as_str() != Some(provider) => {
                        *p = Value::from(provider);
                        true
                    }
                    _ => false,
                }
            })
            .0;
        }
        copy
    }
}

/// One file written (or found already in place) by [`rehydrate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RehydratedFile {
    /// Session id of the file.
    pub id: String,
    /// Where it is and what happened.
    pub placed: Placed,
}

/// Write `session` (whole lineage) into the agent home `home` where the
/// real CLI looks for it: Codex `sessions/YYYY/MM/DD/rollout-<ts>-<id>.jsonl`
/// (under the writer locks of the whole lineage, all taken before the first
/// write, so a lineage is never left half written), Claude `projects/<slug of cwd>/<id>.jsonl` (every
/// project folder is checked for the id first) with its subagent transcripts
/// and tool outputs in the `<id>/` folder beside the transcript. Files already
/// holding the same bytes (a Codex `.jsonl.zst` counts, decompressed), or
/// those bytes plus what the agent appended, are left alone; any other
/// existing content is refused before anything is written. The returned list
/// has the lineage files first, then the extras.
pub fn rehydrate(session: &NativeSession, home: &Path) -> Result<Vec<RehydratedFile>, NativeError> {
    let claude_folder = match session.agent {
        Agent::Claude => Some(session.claude_project_folder()),
        Agent::Codex => None,
    };
    // Pre-flight: refuse conflicts before writing anything.
    let refuse_conflict = |path: PathBuf, ours: &[u8]| -> Result<(), NativeError> {
        if read_native(&path)?.starts_with(ours) {
            Ok(())
        } else {
            Err(WriteError::Conflict { path }.into())
        }
    };
    let mut transcript = None;
    // Codex writer locks of every lineage file still to be created, all taken
    // before the first write and held until the last, so a running codex
    // cannot leave the lineage half written.
    let mut locks = HashMap::new();
    for file in &session.files {
        let existing = match session.agent {
            Agent::Codex => codex::find_rollout(&[home.to_path_buf()], &file.id),
            Agent::Claude => claude::find_transcripts(home, &file.id).into_iter().next(),
        };
        transcript.clone_from(&existing);
        match existing {
            Some(path) => refuse_conflict(path, &file.bytes)?,
            None if session.agent == Agent::Codex => {
                locks.insert(
                    file.id.as_str(),
                    write::CodexWriterLock::acquire(home, &file.id)?,
                );
            }
            None => {}
        }
    }
    // Extras go beside the transcript: the existing one, or the new one.
    let session_dir = claude_folder.as_ref().map(|folder| match &transcript {
        Some(path) => claude::session_folder(path, &session.id),
        None => claude::session_folder(
            &home.join(claude::transcript_path(folder, &session.id)),
            &session.id,
        ),
    });
    if let Some(dir) = &session_dir {
        for extra in &session.extras {
            let path = dir.join(extra.relative_path());
            if path.exists() {
                refuse_conflict(path, &extra.bytes)?;
            }
        }
    }
    let mut written = Vec::new();
    for file in &session.files {
        let name = Path::new(&file.name);
        let placed = match (&claude_folder, locks.get(file.id.as_str())) {
            (Some(folder), _) => write::place_claude_session(home, &file.id, folder, &file.bytes)?,
            (None, Some(lock)) => write::place_codex_session_locked(lock, home, name, &file.bytes)?,
            (None, None) => write::place_codex_session(home, &file.id, name, &file.bytes)?,
        };
        if placed.outcome == WriteOutcome::Created {
            touch(&placed.path);
        }
        written.push(RehydratedFile {
            id: file.id.clone(),
            placed,
        });
    }
    if let Some(dir) = &session_dir {
        for extra in &session.extras {
            let path = dir.join(extra.relative_path());
            let outcome = write::write_new_file(&path, &extra.bytes)?;
            written.push(RehydratedFile {
                id: session.id.clone(),
                placed: Placed { path, outcome },
            });
        }
    }
    Ok(written)
}

/// Set a file's mtime to now (Claude's retention sweep deletes by mtime).
fn touch(path: &Path) {
    if let Ok(f) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_maps_match_whole_components() {
        let maps = vec!["/old/proj=/new/place".parse::<PathMap>().unwrap()];
        assert_eq!(map_path("/old/proj", &maps).as_deref(), Some("/new/place"));
        assert_eq!(
            map_path("/old/proj/sub", &maps).as_deref(),
            Some("/new/place/sub")
        );
        assert_eq!(
            map_path("file:///old/proj", &maps).as_deref(),
            Some("file:///new/place")
        );
        assert_eq!(map_path("/old/project", &maps), None);
        assert!("nothing".parse::<PathMap>().is_err());
        assert!("=/x".parse::<PathMap>().is_err());
    }

    #[test]
    fn codex_names_come_from_the_file_name_or_the_start_time() {
        let meta = serde_json::json!({"timestamp": "2026-01-02T03:04:05.678Z"});
        let at = |name: &str| codex_lineage_name(Path::new(name), "abc", &meta);
        assert_eq!(
            at("/h/sessions/x/rollout-2026-11-21T19-20-28-abc.jsonl.zst"),
            "sessions/2026/11/21/rollout-2026-11-21T19-20-28-abc.jsonl"
        );
        assert_eq!(
            at("/h/archived_sessions/rollout-2026-11-21T19-20-28-abc_d1.jsonl"),
            "sessions/2026/11/21/rollout-2026-11-21T19-20-28-abc_d1.jsonl"
        );
        for other in ["/h/x.jsonl", "/h/rollout-2026-11-21T19-20-28-abd.jsonl"] {
            assert_eq!(
                at(other),
                "sessions/2026/01/02/rollout-2026-01-02T03-04-05-abc.jsonl"
            );
        }
    }

    #[test]
    fn rewrite_keeps_untouched_lines_byte_exact() {
        let bytes = b"{\"a\" : 1}\n{\"cwd\":\"/old/p\"}\ntorn";
        let maps = vec!["/old=/new".parse::<PathMap>().unwrap()];
        let (out, ends) = rewrite_lines(bytes, |v| map_cwd_fields(v, &maps));
        assert_eq!(out, b"{\"a\" : 1}\n{\"cwd\":\"/new/p\"}\ntorn");
        assert_eq!(ends[&10], 10);
    }

    #[test]
    fn mapped_codex_lineage_keeps_history_base_consistent_and_rehydrates() {
        let src = crate::fork::tests::codex_session("9126");
        let maps = vec![
            "/srv/corpus/work-pub=/home/me/code"
                .parse::<PathMap>()
                .unwrap(),
        ];
        let moved = src.map_paths(&maps);
        assert_eq!(moved.cwd().as_deref(), Some("/home/me/code/beta"));
        let parent = &moved.files[0];
        let meta = records(&moved.files[1].bytes)[0]["payload"].clone();
        assert_eq!(
            meta["history_base"]["end_byte_offset"].as_u64(),
            Some(parent.bytes.len() as u64),
            "offset follows the rewritten parent"
        );
        let text = String::from_utf8(parent.bytes.clone()).unwrap();
        assert!(
            !text.contains("\"cwd\":\"/srv/corpus"),
            "every cwd field moved"
        );
        assert!(
            text.contains("<cwd>/srv/corpus/work-pub/beta</cwd>"),
            "model-facing text untouched"
        );

        let home = tempfile::tempdir().unwrap();
        let written = rehydrate(&moved, home.path()).unwrap();
        assert_eq!(written.len(), 2);
        assert!(
            written
                .iter()
                .all(|w| w.placed.outcome == WriteOutcome::Created)
        );
        assert!(written[1].placed.path.ends_with(
            "sessions/2026/11/21/rollout-2026-11-21T19-20-30-01a1ff8d-9126-7cf2-9a5c-2fcdd99afd5b.jsonl"
        ));
        let again = rehydrate(&moved, home.path()).unwrap();
        assert!(
            again
                .iter()
                .all(|w| w.placed.outcome == WriteOutcome::Unchanged)
        );
        // The unmapped lineage now conflicts, and nothing is written for it.
        let err = rehydrate(&src, home.path()).unwrap_err();
        assert!(err.to_string().contains("different content"), "{err}");
    }

    #[test]
    fn a_held_codex_lock_refuses_the_whole_lineage_before_any_write() {
        let src = crate::fork::tests::codex_session("9126");
        assert_eq!(src.files.len(), 2, "a fork with its parent");
        let home = tempfile::tempdir().unwrap();
        // Another writer holds the session's own lock (the lineage's last file).
        let held = write::CodexWriterLock::acquire(home.path(), &src.id).unwrap();
        let err = rehydrate(&src, home.path()).unwrap_err();
        assert!(
            matches!(err, NativeError::Write(WriteError::Locked { .. })),
            "{err}"
        );
        assert!(
            !home.path().join("sessions").exists(),
            "nothing written, not even the ancestor"
        );
        drop(held);
        let written = rehydrate(&src, home.path()).unwrap();
        assert!(
            written
                .iter()
                .all(|w| w.placed.outcome == WriteOutcome::Created && w.placed.path.is_file())
        );
    }

    #[test]
    fn claude_rehydrate_uses_the_slug_of_the_mapped_cwd() {
        let src = crate::fork::tests::claude_session("24618527");
        let maps = vec![
            "/srv/corpus/work-pub/beta=/tmp/new place"
                .parse::<PathMap>()
                .unwrap(),
        ];
        let dir = tempfile::tempdir().unwrap();
        let written = rehydrate(&src.map_paths(&maps), dir.path()).unwrap();
        let path = &written[0].placed.path;
        assert!(
            path.ends_with("projects/-tmp-new-place/24618527-ae46-4f6d-902b-96792270f328.jsonl")
        );
        let recs = records(&std::fs::read(path).unwrap());
        assert!(
            recs.iter()
                .filter_map(|r| r["cwd"].as_str())
                .all(|c| c == "/tmp/new place")
        );
        let unmapped = rehydrate(&src, dir.path()).unwrap_err();
        assert!(
            unmapped.to_string().contains("different content"),
            "no duplicate file: {unmapped}"
        );
    }

    #[test]
    fn an_existing_compressed_rollout_is_not_shadowed() {
        let src = crate::fork::tests::codex_session("8c3d");
        let file = src.session_file();
        let home = tempfile::tempdir().unwrap();
        let zst = home.path().join(format!("{}.zst", file.name));
        std::fs::create_dir_all(zst.parent().unwrap()).unwrap();
        let put = |bytes: &[u8]| std::fs::write(&zst, zstd::encode_all(bytes, 3).unwrap()).unwrap();
        put(&file.bytes);
        let written = rehydrate(&src, home.path()).unwrap();
        assert_eq!(written[0].placed.path, zst);
        assert_eq!(written[0].placed.outcome, WriteOutcome::Unchanged);
        assert!(!home.path().join(&file.name).exists(), "no plain copy");
        let mut longer = file.bytes.clone();
        longer.extend_from_slice(b"{\"type\":\"more\"}\n");
        put(&longer);
        let written = rehydrate(&src, home.path()).unwrap();
        assert_eq!(
            written[0].placed.outcome,
            WriteOutcome::Continued { extra_bytes: 16 }
        );
        put(b"{}\n");
        let err = rehydrate(&src, home.path()).unwrap_err();
        assert!(err.to_string().contains("different content"), "{err}");
        assert!(!home.path().join(&file.name).exists(), "no plain copy");
    }

    #[test]
    fn claude_subagents_and_tool_results_travel_with_the_session() {
        let src = tempfile::tempdir().unwrap();
        let proj = src.path().join("projects/-w");
        let sid = "0b5e2d3a-0000-4000-8000-000000000001";
        let folder = proj.join(sid);
        std::fs::create_dir_all(folder.join("subagents")).unwrap();
        std::fs::create_dir_all(folder.join("tool-results")).unwrap();
        let main = format!(
            "{{\"type\":\"user\",\"uuid\":\"u\",\"parentUuid\":null,\"sessionId\":\"{sid}\",\"cwd\":\"/old/w\",\"message\":{{\"role\":\"user\",\"content\":\"hi\"}}}}\n"
        );
        std::fs::write(proj.join(format!("{sid}.jsonl")), &main).unwrap();
        let sub = format!(
            "{{\"type\":\"user\",\"uuid\":\"x\",\"isSidechain\":true,\"agentId\":\"a1\",\"sessionId\":\"{sid}\",\"cwd\":\"/old/w\"}}\n"
        );
        std::fs::write(folder.join("subagents/agent-a1.jsonl"), &sub).unwrap();
        std::fs::write(
            folder.join("subagents/agent-a1.meta.json"),
            "{\"agentType\":\"x\"}",
        )
        .unwrap();
        std::fs::write(folder.join("subagents/notes.txt"), "not a subagent file").unwrap();
        std::fs::write(folder.join("tool-results/toolu_1.txt"), "big output").unwrap();

        let loaded =
            NativeSession::load(Agent::Claude, &proj.join(format!("{sid}.jsonl")), &[]).unwrap();
        let names: Vec<String> = loaded
            .extras
            .iter()
            .map(SessionExtra::relative_path)
            .collect();
        assert_eq!(
            names,
            [
                "subagents/agent-a1.jsonl",
                "subagents/agent-a1.meta.json",
                "tool-results/toolu_1.txt"
            ]
        );
        // Through an envelope, moved to a new directory, into a fresh home.
        let mut buf = Vec::new();
        crate::envelope::Envelope::from_files(loaded, Default::default())
            .write_to(&mut buf)
            .unwrap();
        let imported = crate::envelope::Envelope::read_from(buf.as_slice())
            .unwrap()
            .session;
        let moved = imported.map_paths(&["/old/w=/new/w".parse::<PathMap>().unwrap()]);
        let home = tempfile::tempdir().unwrap();
        let written = rehydrate(&moved, home.path()).unwrap();
        assert_eq!(written.len(), 4);
        assert!(
            written
                .iter()
                .all(|w| w.placed.outcome == WriteOutcome::Created)
        );
        let dir = home.path().join("projects/-new-w").join(sid);
        assert!(
            home.path()
                .join(format!("projects/-new-w/{sid}.jsonl"))
                .is_file()
        );
        let sub_back = std::fs::read_to_string(dir.join("subagents/agent-a1.jsonl")).unwrap();
        assert!(sub_back.contains("\"cwd\":\"/new/w\""), "{sub_back}");
        assert_eq!(
            std::fs::read(dir.join("tool-results/toolu_1.txt")).unwrap(),
            b"big output"
        );
        assert!(dir.join("subagents/agent-a1.meta.json").is_file());
        assert!(!dir.join("subagents/notes.txt").exists());
        let again = rehydrate(&moved, home.path()).unwrap();
        assert!(
            again
                .iter()
                .all(|w| w.placed.outcome == WriteOutcome::Unchanged)
        );
        // A different tool output already there is refused before writing.
        std::fs::write(dir.join("tool-results/toolu_1.txt"), "other").unwrap();
        let err = rehydrate(&moved, home.path()).unwrap_err();
        assert!(err.to_string().contains("different content"), "{err}");
    }
}
