//! A session as native bytes ([`NativeSession`]: the file plus, for Codex
//! paginated forks, every ancestor its `history_base` points into), loading
//! one from disk, rewriting its working directory ([`PathMap`]), and writing
//! it into an agent home where the real CLI looks for it ([`rehydrate`]).

use crate::layout::{claude, codex};
use crate::model::Agent;
use crate::write::{self, Content, Overlap, Placed, WriteError, WriteOutcome};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

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
#[cfg(test)]
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
    let read_err = |source| NativeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let reader = crate::files::open_native_path(path, crate::files::is_compressed(path), 0)
        .map_err(read_err)?;
    crate::jsonl::read_lines(reader, read_err, |line| {
        first = line.value().ok();
        Ok(false)
    })?;
    Ok(first)
}

impl SessionOnDisk {
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

/// A session's lineage read as a stream of bytes or lines, from memory
/// ([`NativeSession`]), from disk ([`SessionOnDisk`]) or edited on the way
/// ([`PathsMapped`]): what forking and rehydrating need, so one function
/// serves them all and a session of any size is never held whole.
pub trait SessionLines {
    /// Which agent wrote it.
    fn agent(&self) -> Agent;
    /// The session id.
    fn id(&self) -> &str;
    /// The ids of the lineage files, ancestors first.
    fn file_ids(&self) -> Vec<&str>;
    /// Lineage file `file`'s path relative to the agent home (as
    /// [`LineageFile::name`]).
    fn file_name(&self, file: usize) -> &str;
    /// Where lineage file `file` is read from, for messages.
    fn file_path(&self, file: usize) -> PathBuf;
    /// The bytes of lineage file `file` (uncompressed), from its start.
    fn open(&self, file: usize) -> Result<Box<dyn Read + '_>, NativeError>;
    /// Claude: the files of the session folder (`subagents/`,
    /// `tool-results/`), sorted by relative path; none for Codex.
    fn extras(&self) -> Result<Cow<'_, [SessionExtra]>, NativeError>;

    /// Copy the bytes of lineage file `file` into `out`, streaming.
    fn copy_file(&self, file: usize, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut bytes = self.open(file).map_err(std::io::Error::other)?;
        std::io::copy(&mut bytes, out).map(drop)
    }

    /// Call `visit` with each complete line of lineage file `file` that ends
    /// within its first `limit` bytes (all when `None`), while it returns true.
    fn visit_lines(
        &self,
        file: usize,
        limit: Option<u64>,
        visit: &mut dyn FnMut(crate::jsonl::Line<'_>) -> Result<bool, NativeError>,
    ) -> Result<(), NativeError> {
        let reader = self.open(file)?.take(limit.unwrap_or(u64::MAX));
        let read_err = |source| NativeError::Read {
            path: self.file_path(file),
            source,
        };
        crate::jsonl::read_lines(reader, read_err, visit)
    }

    /// The directory the session started in (from the head of its own file).
    fn cwd(&self) -> Option<String> {
        let mut head = crate::head::HeadLines::new(self.agent());
        let own = self.file_ids().len() - 1;
        self.visit_lines(own, None, &mut |line| Ok(head.feed(&line)))
            .ok()?;
        head.head().cwd
    }

    /// The Claude project folder the session belongs in: the slug of its
    /// cwd (§2.1), or the folder its file name carries when no record has a
    /// cwd.
    fn claude_project_folder(&self) -> String {
        match self.cwd() {
            Some(cwd) => claude::project_slug(&cwd),
            None => {
                let own = self.file_ids().len() - 1;
                let name = self.file_name(own);
                name.split('/').nth(1).unwrap_or("-").to_string()
            }
        }
    }
}

/// A session read through an editor of another one ([`PathsMapped`], the
/// CLI's secret restoring): the same agent, id and files, whose bytes and
/// extras the editor gives. Implementing it makes a [`SessionLines`].
pub trait EditedSession {
    /// The session edited.
    fn source(&self) -> &dyn SessionLines;
    /// The edited bytes of lineage file `file` (see [`SessionLines::open`]).
    fn open_edited(&self, file: usize) -> Result<Box<dyn Read + '_>, NativeError>;
    /// The edited extras (see [`SessionLines::extras`]).
    fn extras_edited(&self) -> Result<Cow<'_, [SessionExtra]>, NativeError>;
}

impl<T: EditedSession> SessionLines for T {
    fn agent(&self) -> Agent {
        self.source().agent()
    }

    fn id(&self) -> &str {
        self.source().id()
    }

    fn file_ids(&self) -> Vec<&str> {
        self.source().file_ids()
    }

    fn file_name(&self, file: usize) -> &str {
        self.source().file_name(file)
    }

    fn file_path(&self, file: usize) -> PathBuf {
        self.source().file_path(file)
    }

    fn open(&self, file: usize) -> Result<Box<dyn Read + '_>, NativeError> {
        self.open_edited(file)
    }

    fn extras(&self) -> Result<Cow<'_, [SessionExtra]>, NativeError> {
        self.extras_edited()
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

    fn file_name(&self, file: usize) -> &str {
        &self.files[file].name
    }

    fn file_path(&self, file: usize) -> PathBuf {
        PathBuf::from(&self.files[file].name)
    }

    fn open(&self, file: usize) -> Result<Box<dyn Read + '_>, NativeError> {
        Ok(Box::new(self.files[file].bytes.as_slice()))
    }

    fn extras(&self) -> Result<Cow<'_, [SessionExtra]>, NativeError> {
        Ok(Cow::Borrowed(&self.extras))
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

    fn file_name(&self, file: usize) -> &str {
        &self.files[file].name
    }

    fn file_path(&self, file: usize) -> PathBuf {
        self.files[file].path.clone()
    }

    fn open(&self, file: usize) -> Result<Box<dyn Read + '_>, NativeError> {
        let path = &self.files[file].path;
        crate::files::open_native_path(path, crate::files::is_compressed(path), 0)
            .map(|r| Box::new(r) as Box<dyn Read>)
            .map_err(|source| NativeError::Read {
                path: path.clone(),
                source,
            })
    }

    /// Read from the session folder beside the session's own file.
    fn extras(&self) -> Result<Cow<'_, [SessionExtra]>, NativeError> {
        match self.agent {
            Agent::Claude => {
                let own = &self.files[self.files.len() - 1].path;
                load_claude_extras(&claude::session_folder(own, &self.id)).map(Cow::Owned)
            }
            Agent::Codex => Ok(Cow::Borrowed(&[])),
        }
    }
}

/// Every byte of lineage file `file` of `session`.
fn read_file(session: &dyn SessionLines, file: usize) -> Result<Vec<u8>, NativeError> {
    let mut bytes = Vec::new();
    session
        .open(file)?
        .read_to_end(&mut bytes)
        .map_err(|source| NativeError::Read {
            path: session.file_path(file),
            source,
        })?;
    Ok(bytes)
}

impl NativeSession {
    /// Load the session stored at `path` whole: its lineage located by
    /// [`SessionOnDisk::locate`], every file read, and for Claude the files
    /// of its session folder.
    pub fn load(agent: Agent, path: &Path, codex_roots: &[PathBuf]) -> Result<Self, NativeError> {
        Self::read(&SessionOnDisk::locate(agent, path, codex_roots)?)
    }

    /// Read every byte of `session` (lineage and extras) into memory.
    pub fn read(session: &dyn SessionLines) -> Result<Self, NativeError> {
        let files = session
            .file_ids()
            .iter()
            .enumerate()
            .map(|(i, id)| {
                Ok(LineageFile {
                    id: id.to_string(),
                    name: session.file_name(i).to_string(),
                    bytes: read_file(session, i)?,
                })
            })
            .collect::<Result<Vec<_>, NativeError>>()?;
        Ok(Self {
            agent: session.agent(),
            id: session.id().to_string(),
            files,
            extras: session.extras()?.into_owned(),
        })
    }

    /// The session's own file.
    pub fn session_file(&self) -> &LineageFile {
        &self.files[self.files.len() - 1]
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

/// `raw` (one line with its `\n`, or a torn tail) parsed as a record and
/// changed by `edit`: the record's new line, or `None` when `edit` changed
/// nothing (or the line is not a complete JSON object), so the line keeps
/// its exact bytes.
fn edit_record(raw: &[u8], edit: impl FnOnce(&mut Value) -> bool) -> Option<Vec<u8>> {
    if !raw.ends_with(b"\n") {
        return None;
    }
    let mut value = serde_json::from_slice::<Value>(raw).ok()?;
    (value.is_object() && edit(&mut value)).then(|| to_line(&value))
}

/// `bytes` with each line passed through `edit` (see [`edit_record`]).
fn edit_bytes(bytes: &[u8], mut edit: impl FnMut(&mut Value) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let _ = crate::jsonl::read_raw_lines(
        bytes,
        |e| e,
        |_, raw| {
            match edit_record(raw, &mut edit) {
                Some(line) => out.extend(line),
                None => out.extend_from_slice(raw),
            }
            Ok::<_, std::io::Error>(true)
        },
    );
    out
}

/// A Claude record's `cwd` moved by `maps`; whether it changed.
fn map_claude_cwd(v: &mut Value, maps: &[PathMap]) -> bool {
    match v.get_mut("cwd") {
        Some(Value::String(s)) => match map_path(s, maps) {
            Some(new) => {
                *s = new;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// A session whose working-directory fields are moved by `maps` as it is
/// read, so the agent resumes at the new location. Codex: cwd-like fields
/// of every record except model-facing `response_item`s
/// (`session_meta.cwd`, `runtime_workspace_roots`, `turn_context.cwd`,
/// `thread_settings.cwd`, `world_state` environments, ...); forks'
/// `history_base.end_byte_offset` follows the rewritten parent. Claude:
/// every record's `cwd`, and its subagent transcripts' (the project folder
/// follows on [`rehydrate`]). Nothing else changes; lines without a match
/// keep their exact bytes. One line is held at a time.
pub struct PathsMapped<'a> {
    source: &'a dyn SessionLines,
    maps: &'a [PathMap],
    /// Per Codex lineage file: where the rewritten parent's line ends that
    /// its `history_base` offsets name moved to (old end → new end).
    parent_ends: RefCell<HashMap<usize, Rc<HashMap<u64, u64>>>>,
}

impl<'a> PathsMapped<'a> {
    /// `source` with its paths moved by `maps`.
    pub fn new(source: &'a dyn SessionLines, maps: &'a [PathMap]) -> Self {
        PathsMapped {
            source,
            maps,
            parent_ends: RefCell::default(),
        }
    }

    /// One raw line of lineage file `file` moved, `None` when unchanged.
    fn map_line(&self, raw: &[u8], parent_ends: Option<&HashMap<u64, u64>>) -> Option<Vec<u8>> {
        let maps = self.maps;
        edit_record(raw, |v| match self.source.agent() {
            Agent::Claude => map_claude_cwd(v, maps),
            Agent::Codex => {
                if v.get("type").and_then(Value::as_str) == Some("response_item") {
                    return false;
                }
                let mut changed = false;
                if let (Some(ends), Some(off)) = (
                    parent_ends,
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
        })
    }

    /// Codex: for lineage file `file`, where the line ends of its rewritten
    /// parent that its `history_base` offsets name moved to; `None` for the
    /// oldest file and for Claude. One pass over the file to find the
    /// offsets, one over the parent (rewritten) to follow them.
    fn parent_ends(&self, file: usize) -> Result<Option<Rc<HashMap<u64, u64>>>, NativeError> {
        if file == 0 || self.source.agent() != Agent::Codex {
            return Ok(None);
        }
        if let Some(ends) = self.parent_ends.borrow().get(&file) {
            return Ok(Some(ends.clone()));
        }
        let read_err = |file: usize| {
            move |source| NativeError::Read {
                path: self.source.file_path(file),
                source,
            }
        };
        let mut wanted = HashSet::new();
        crate::jsonl::read_raw_lines(self.source.open(file)?, read_err(file), |_, raw| {
            if memchr::memmem::find(raw, b"end_byte_offset").is_some()
                && let Ok(v) = serde_json::from_slice::<Value>(raw)
                && let Some(off) = v
                    .pointer("/payload/history_base/end_byte_offset")
                    .and_then(Value::as_u64)
            {
                wanted.insert(off);
            }
            Ok(true)
        })?;
        let grandparent = self.parent_ends(file - 1)?;
        let (mut old_end, mut new_end, mut ends) = (0u64, 0u64, HashMap::new());
        crate::jsonl::read_raw_lines(self.source.open(file - 1)?, read_err(file - 1), |_, raw| {
            old_end += raw.len() as u64;
            new_end += match self.map_line(raw, grandparent.as_deref()) {
                Some(line) => line.len(),
                None => raw.len(),
            } as u64;
            if wanted.contains(&old_end) {
                ends.insert(old_end, new_end);
            }
            Ok(true)
        })?;
        let ends = Rc::new(ends);
        self.parent_ends.borrow_mut().insert(file, ends.clone());
        Ok(Some(ends))
    }

    /// Whether the maps move anything at all (a pass over every file until
    /// the first moved line).
    pub fn moves_anything(&self) -> Result<bool, NativeError> {
        if self.maps.is_empty() {
            return Ok(false);
        }
        for file in 0..self.source.file_ids().len() {
            let parent_ends = self.parent_ends(file)?;
            let mut moved = false;
            let read_err = |source| NativeError::Read {
                path: self.source.file_path(file),
                source,
            };
            crate::jsonl::read_raw_lines(self.source.open(file)?, read_err, |_, raw| {
                moved = self.map_line(raw, parent_ends.as_deref()).is_some();
                Ok(!moved)
            })?;
            if moved {
                return Ok(true);
            }
        }
        Ok(self.extras()? != self.source.extras()?)
    }
}

impl EditedSession for PathsMapped<'_> {
    fn source(&self) -> &dyn SessionLines {
        self.source
    }

    fn open_edited(&self, file: usize) -> Result<Box<dyn Read + '_>, NativeError> {
        let source = self.source.open(file)?;
        if self.maps.is_empty() {
            return Ok(source);
        }
        let parent_ends = self.parent_ends(file)?;
        let edit = Box::new(move |raw: &[u8]| Ok(self.map_line(raw, parent_ends.as_deref())));
        Ok(Box::new(crate::jsonl::EditedLines::new(source, edit)))
    }

    /// Subagent transcripts ran in the session's directory too.
    fn extras_edited(&self) -> Result<Cow<'_, [SessionExtra]>, NativeError> {
        let extras = self.source.extras()?;
        if self.maps.is_empty() {
            return Ok(extras);
        }
        Ok(Cow::Owned(
            extras
                .iter()
                .map(|x| match x.kind {
                    ExtraKind::Subagent if x.file_name.ends_with(".jsonl") => SessionExtra {
                        bytes: edit_bytes(&x.bytes, |v| map_claude_cwd(v, self.maps)),
                        ..x.clone()
                    },
                    _ => x.clone(),
                })
                .collect(),
        ))
    }
}

impl NativeSession {
    /// A copy whose working-directory fields are moved by `maps` (see
    /// [`PathsMapped`]).
    pub fn map_paths(&self, maps: &[PathMap]) -> NativeSession {
        NativeSession::read(&PathsMapped::new(self, maps))
            .expect("reading a session in memory cannot fail")
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
            own.bytes = edit_bytes(&own.bytes, |v| {
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
            });
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
/// existing content is refused before anything is written. Each file is
/// streamed from `session` (compared with an existing file, or written
/// through a temporary file and renamed into place), never held whole. The
/// returned list has the lineage files first, then the extras.
pub fn rehydrate(
    session: &dyn SessionLines,
    home: &Path,
) -> Result<Vec<RehydratedFile>, NativeError> {
    let agent = session.agent();
    let claude_folder = match agent {
        Agent::Claude => Some(session.claude_project_folder()),
        Agent::Codex => None,
    };
    let ids = session.file_ids();
    // The bytes of lineage file `i`, streamed into what they are given.
    let stream = |i: usize| move |out: &mut dyn std::io::Write| session.copy_file(i, out);
    // Pre-flight: refuse conflicts before writing anything.
    let refuse_conflict = |path: PathBuf, content: &mut Content<'_>| -> Result<(), NativeError> {
        match write::overlap_with_file(&path, content)? {
            Overlap::Equal | Overlap::ExistingLonger(_) => Ok(()),
            Overlap::ExistingShorter | Overlap::Diverged => {
                Err(WriteError::Conflict { path }.into())
            }
        }
    };
    let mut transcript = None;
    // Codex writer locks of every lineage file still to be created, all taken
    // before the first write and held until the last, so a running codex
    // cannot leave the lineage half written.
    let mut locks = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let existing = match agent {
            Agent::Codex => codex::find_rollout(&[home.to_path_buf()], id),
            Agent::Claude => claude::find_transcripts(home, id).into_iter().next(),
        };
        transcript.clone_from(&existing);
        match existing {
            Some(path) => refuse_conflict(path, &mut Content::Stream(&mut stream(i)))?,
            None if agent == Agent::Codex => {
                locks.insert(*id, write::CodexWriterLock::acquire(home, id)?);
            }
            None => {}
        }
    }
    // Extras go beside the transcript: the existing one, or the new one.
    let extras = session.extras()?;
    let session_dir = claude_folder.as_ref().map(|folder| match &transcript {
        Some(path) => claude::session_folder(path, session.id()),
        None => claude::session_folder(
            &home.join(claude::transcript_path(folder, session.id())),
            session.id(),
        ),
    });
    if let Some(dir) = &session_dir {
        for extra in extras.iter() {
            let path = dir.join(extra.relative_path());
            if path.exists() {
                refuse_conflict(path, &mut Content::Bytes(&extra.bytes))?;
            }
        }
    }
    let mut written = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let name = Path::new(session.file_name(i));
        let mut write = stream(i);
        let content = Content::Stream(&mut write);
        let placed = match (&claude_folder, locks.get(id)) {
            (Some(folder), _) => write::place_claude_session(home, id, folder, content)?,
            (None, Some(lock)) => write::place_codex_session_locked(lock, home, name, content)?,
            (None, None) => write::place_codex_session(home, id, name, content)?,
        };
        if placed.outcome == WriteOutcome::Created {
            touch(&placed.path);
        }
        written.push(RehydratedFile {
            id: id.to_string(),
            placed,
        });
    }
    if let Some(dir) = &session_dir {
        for extra in extras.iter() {
            let path = dir.join(extra.relative_path());
            let outcome = write::write_new_file(&path, &extra.bytes)?;
            written.push(RehydratedFile {
                id: session.id().to_string(),
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
    fn edit_keeps_untouched_lines_byte_exact() {
        let bytes = b"{\"a\" : 1}\n{\"cwd\":\"/old/p\"}\ntorn";
        let maps = vec!["/old=/new".parse::<PathMap>().unwrap()];
        let out = edit_bytes(bytes, |v| map_cwd_fields(v, &maps));
        assert_eq!(out, b"{\"a\" : 1}\n{\"cwd\":\"/new/p\"}\ntorn");
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
