//! `baton pick`: an interactive picker that searches sessions as you type,
//! previews the selected one and resumes, forks or copies it.

use crate::args::absolute_dir;
use crate::catalog;
use crate::context::Context;
use crate::output::{UsageError, one_line, terminal_safe};
use anyhow::{Context as _, Result};
use baton_native::fork::Cut;
use baton_native::{Agent, Message, MessageKind};
use baton_store::{Catalog, PickEntry as Entry, PickScan, as_you_type};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Sessions shown at most for one query (a keystroke reads no more).
const RESULT_LIMIT: usize = 100;
/// Messages of the selected session read for its preview.
const PREVIEW_MESSAGES: usize = 200;
/// Characters of one previewed message.
const PREVIEW_CHARS: usize = 600;

/// Options of `baton pick`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start with this query typed.
    pub query: Vec<String>,
    /// Only sessions of this agent (`codex` or `claude`; Ctrl-A cycles it).
    #[arg(long, value_parser = catalog::parse_agent)]
    pub agent: Option<Agent>,
    /// Only sessions started in the current directory or below it.
    #[arg(long, conflicts_with = "cwd")]
    pub here: bool,
    /// Only sessions started in this directory or below it.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::path::PathBuf>,
}

/// What the picker does when it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing: Esc or Ctrl-C.
    Quit,
    /// Continue this session in its agent.
    Resume(Entry),
    /// Fork this session (at this cut) and continue the fork.
    Fork(Entry, Cut),
}

/// What a key asks of the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Redraw; the query or filter changed when [`Picker::stale`] says so.
    Continue,
    /// Copy this id to the clipboard.
    Copy(String),
    /// Close the picker.
    Done(Outcome),
}

/// Where printable keys go.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// Into the query (the picker starts here).
    #[default]
    Query,
    /// To the result list, where letters are commands (`f` fork, `y` copy).
    List,
}

/// The picker's state: query, filters, results and selection.
#[derive(Debug, Default)]
pub struct Picker {
    /// The text typed so far.
    pub query: String,
    /// Agent filter.
    pub agent: Option<Agent>,
    /// Directory filter (absolute).
    pub cwd: Option<String>,
    /// Results of the last query.
    pub entries: Vec<Entry>,
    /// Index of the selected entry.
    pub selected: usize,
    /// With the selected session: fork before this typed prompt (1-based);
    /// `None` forks a full copy.
    pub fork_prompt: Option<usize>,
    /// Typed prompts in the selected session's preview.
    pub prompts_in_preview: usize,
    /// The query or a filter changed since the results were asked for.
    pub stale: bool,
    /// The results shown are the exact answer, not the first one read from
    /// the newest matches only.
    pub complete: bool,
    /// Where printable keys go.
    pub focus: Focus,
}

impl Picker {
    /// A picker that has not read its results yet.
    pub fn new(query: String, agent: Option<Agent>, cwd: Option<String>) -> Self {
        Picker {
            query,
            agent,
            cwd,
            stale: true,
            ..Picker::default()
        }
    }

    /// The selected entry.
    pub fn current(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    /// Take new results (`complete` when they are the exact answer),
    /// keeping the selected session selected when it is among them.
    pub fn set_entries(&mut self, entries: Vec<Entry>, complete: bool) {
        let keep = self.current().map(|e| (e.id.clone(), e.agent));
        self.selected = keep
            .and_then(|(id, agent)| entries.iter().position(|e| e.id == id && e.agent == agent))
            .unwrap_or(0);
        self.entries = entries;
        self.complete = complete;
    }

    fn cycle_agent(&mut self) {
        self.agent = match self.agent {
            None => Some(Agent::Codex),
            Some(Agent::Codex) => Some(Agent::Claude),
            Some(Agent::Claude) => None,
        };
        self.stale = true;
    }

    fn fork(&self) -> Step {
        match self.current() {
            Some(entry) => {
                let cut = self.fork_prompt.map_or(Cut::DropLast(0), Cut::BeforePrompt);
                Step::Done(Outcome::Fork(entry.clone(), cut))
            }
            None => Step::Continue,
        }
    }

    fn copy(&self) -> Step {
        self.current()
            .map_or(Step::Continue, |entry| Step::Copy(entry.id.clone()))
    }

    fn move_fork_prompt(&mut self, later: bool) {
        if later {
            let next = self.fork_prompt.map_or(1, |k| k + 1);
            if next <= self.prompts_in_preview {
                self.fork_prompt = Some(next);
            }
        } else {
            self.fork_prompt = self
                .fork_prompt
                .and_then(|k| k.checked_sub(1))
                .filter(|&k| k > 0);
        }
    }

    fn select(&mut self, index: usize) {
        let index = index.min(self.entries.len().saturating_sub(1));
        if index != self.selected {
            self.selected = index;
            self.fork_prompt = None;
        }
    }

    /// Apply one key.
    pub fn handle(&mut self, key: KeyEvent) -> Step {
        if key.kind == KeyEventKind::Release {
            return Step::Continue;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => return Step::Done(Outcome::Quit),
            KeyCode::Char('c') if ctrl => return Step::Done(Outcome::Quit),
            KeyCode::Enter => {
                if let Some(entry) = self.current() {
                    return Step::Done(Outcome::Resume(entry.clone()));
                }
            }
            KeyCode::Char('f') if ctrl => return self.fork(),
            KeyCode::Char('y') if ctrl => return self.copy(),
            KeyCode::Char('a') if ctrl => self.cycle_agent(),
            KeyCode::Char('u') if ctrl => {
                self.query.clear();
                self.stale = true;
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Query => Focus::List,
                    Focus::List => Focus::Query,
                };
            }
            KeyCode::Up => self.select(self.selected.saturating_sub(1)),
            KeyCode::Down => self.select(self.selected + 1),
            KeyCode::Char('p') if ctrl => self.select(self.selected.saturating_sub(1)),
            KeyCode::Char('n') if ctrl => self.select(self.selected + 1),
            KeyCode::PageUp => self.select(self.selected.saturating_sub(10)),
            KeyCode::PageDown => self.select(self.selected + 10),
            KeyCode::Right => self.move_fork_prompt(true),
            KeyCode::Left => self.move_fork_prompt(false),
            KeyCode::Backspace if self.focus == Focus::Query => {
                self.stale |= self.query.pop().is_some();
            }
            KeyCode::Char(c) if !ctrl && !c.is_control() => match self.focus {
                Focus::Query => {
                    self.query.push(c);
                    self.stale = true;
                }
                Focus::List => match c {
                    'f' => return self.fork(),
                    'y' => return self.copy(),
                    'a' => self.cycle_agent(),
                    'q' => return Step::Done(Outcome::Quit),
                    'j' => self.select(self.selected + 1),
                    'k' => self.select(self.selected.saturating_sub(1)),
                    'l' => self.move_fork_prompt(true),
                    'h' => self.move_fork_prompt(false),
                    '/' | 'i' => self.focus = Focus::Query,
                    _ => {}
                },
            },
            _ => {}
        }
        Step::Continue
    }
}

/// The first messages of `entry`'s transcript, read one at a time (never
/// the whole of a huge session).
pub fn preview_of(cat: &Catalog, entry: &Entry) -> baton_store::Result<Vec<Message>> {
    let row = cat.resolve(&entry.id)?;
    let mut messages = Vec::new();
    for message in cat.transcript(&row)?.take(PREVIEW_MESSAGES) {
        let mut message = message?;
        if message.text.chars().count() > PREVIEW_CHARS {
            message.text = message.text.chars().take(PREVIEW_CHARS).collect::<String>() + "…";
        }
        messages.push(message);
    }
    Ok(messages)
}

/// How long ago `ts` was, in the largest whole unit (`5m`, `3h`, `2d`).
pub fn age(ts: &str, now: jiff::Timestamp) -> String {
    let Ok(then) = ts.parse::<jiff::Timestamp>() else {
        return String::new();
    };
    let secs = now.duration_since(then).as_secs().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s if s < 86_400 * 365 => format!("{}d", s / 86_400),
        s => format!("{}y", s / (86_400 * 365)),
    }
}

/// `snippet` as spans, the `«…»` matches bold.
fn snippet_spans(snippet: &str) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let text = terminal_safe(snippet).replace(['\n', '\t'], " ");
    for (i, part) in text.split(['«', '»']).enumerate() {
        if part.is_empty() {
            continue;
        }
        let style = if i % 2 == 1 {
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        };
        spans.push(Span::styled(part.to_string(), style));
    }
    spans
}

/// Base64 (standard alphabet, padded) for OSC 52.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The OSC 52 sequence that puts `text` on the terminal's clipboard.
pub fn osc52(text: &str) -> String {
    format!("\x1b]52;c;{}\x07", base64(text.as_bytes()))
}

/// Run `baton pick`.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(UsageError(
            "baton pick is interactive and needs a terminal; use `baton search QUERY` (or `baton list`) in scripts"
                .into(),
        )
        .into());
    }
    let cwd = match (args.here, &args.cwd) {
        (true, _) => Some(absolute_dir(
            &std::env::current_dir().context("cannot read the current directory")?,
        )),
        (false, Some(dir)) => Some(absolute_dir(dir)),
        (false, None) => None,
    };
    let mut picker = Picker::new(args.query.join(" "), args.agent, cwd);
    let reader = Reader::start(catalog::open_fresh(ctx)?);
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let mut copied = Vec::new();
    let outcome = event_loop(&mut terminal, &reader, &mut picker, &mut copied);
    ratatui::try_restore().context("cannot restore the terminal")?;
    // Closes the reader thread's inbox: it ends after its current query.
    drop(reader);
    for id in &copied {
        println!("copied {id}");
    }
    match outcome? {
        Outcome::Quit => Ok(()),
        Outcome::Resume(entry) => crate::cmd::resume::run(ctx, resume_args(entry.id)),
        Outcome::Fork(entry, cut) => {
            let (forked, _) = crate::cmd::fork::fork_at(ctx, &entry.id, cut)?;
            println!(
                "forked {} {} -> {} (kept {} of {} typed prompts); resuming it",
                forked.agent,
                forked.forked_from,
                forked.id,
                forked.prompts_kept,
                forked.prompts_total
            );
            crate::cmd::resume::run(ctx, resume_args(forked.id))
        }
    }
}

fn resume_args(id: String) -> crate::cmd::resume::Args {
    crate::cmd::resume::Args {
        id,
        prompt: None,
        in_agent: None,
        no_redact: false,
        print: false,
        json: false,
    }
}

/// Results the event loop asks the [`Reader`] for.
#[derive(Debug, Clone)]
struct Wanted {
    /// Counts the requests: only answers to the newest are shown.
    generation: u64,
    query: String,
    agent: Option<Agent>,
    cwd: Option<String>,
}

/// What the event loop asks of the [`Reader`].
enum Request {
    /// Results for a query and filters.
    Results(Wanted),
    /// The preview of this entry.
    Preview(Entry),
}

/// What the [`Reader`] answers.
enum Answer {
    /// Results of request `generation`: first the sessions of the newest
    /// matches, then (`complete`) the exact answer.
    Results {
        generation: u64,
        complete: bool,
        entries: std::result::Result<Vec<Entry>, String>,
    },
    /// The preview of this entry.
    Preview(Entry, std::result::Result<Vec<Message>, String>),
}

/// The catalog on its own thread, so that keys are never kept waiting by a
/// query: the newest request of each kind wins, and a query still running
/// when newer results are asked for is interrupted.
struct Reader {
    requests: std::sync::mpsc::Sender<Request>,
    answers: std::sync::mpsc::Receiver<Answer>,
    interrupt: baton_store::QueryInterrupt,
}

impl Reader {
    fn start(cat: Catalog) -> Reader {
        let (requests, inbox) = std::sync::mpsc::channel();
        let (outbox, answers) = std::sync::mpsc::channel();
        let interrupt = cat.interrupt_handle();
        std::thread::spawn(move || serve_requests(&cat, &inbox, &outbox));
        Reader {
            requests,
            answers,
            interrupt,
        }
    }

    /// Ask for `request`, stopping a query that newer results make useless.
    fn ask(&self, request: Request) {
        if matches!(request, Request::Results(_)) {
            self.interrupt.interrupt();
        }
        // The thread ends only when this sender is dropped.
        let _ = self.requests.send(request);
    }
}

/// The newest request of each kind not yet answered.
#[derive(Default)]
struct Pending {
    results: Option<Wanted>,
    preview: Option<Entry>,
}

impl Pending {
    fn take(&mut self, request: Request) {
        match request {
            Request::Results(wanted) => self.results = Some(wanted),
            Request::Preview(entry) => self.preview = Some(entry),
        }
    }
}

/// The reader thread: answer the newest request of each kind, results
/// first, until the picker closes. A query stopped by an interrupt is run
/// again unless a newer request replaced it.
fn serve_requests(
    cat: &Catalog,
    inbox: &std::sync::mpsc::Receiver<Request>,
    outbox: &std::sync::mpsc::Sender<Answer>,
) {
    let mut pending = Pending::default();
    while let Ok(request) = inbox.recv() {
        pending.take(request);
        loop {
            while let Ok(request) = inbox.try_recv() {
                pending.take(request);
            }
            if let Some(wanted) = pending.results.take() {
                let first = as_you_type(&wanted.query).map(|_| PickScan::FIRST);
                for scan in first.into_iter().chain([PickScan::All]) {
                    while let Ok(request) = inbox.try_recv() {
                        pending.take(request);
                    }
                    if pending.results.is_some() {
                        break; // replaced by newer results
                    }
                    let entries = match cat.pick(
                        &wanted.query,
                        wanted.agent,
                        wanted.cwd.as_deref(),
                        RESULT_LIMIT,
                        scan,
                    ) {
                        Err(e) if e.is_interrupted() => {
                            pending.results.get_or_insert(wanted.clone());
                            break;
                        }
                        other => other.map_err(|e| format!("{e:#}")),
                    };
                    let answer = Answer::Results {
                        generation: wanted.generation,
                        complete: scan == PickScan::All,
                        entries,
                    };
                    if outbox.send(answer).is_err() {
                        return;
                    }
                }
            } else if let Some(entry) = pending.preview.take() {
                let messages = match preview_of(cat, &entry) {
                    Err(e) if e.is_interrupted() => {
                        pending.preview.get_or_insert(entry);
                        continue;
                    }
                    other => other.map_err(|e| format!("{e:#}")),
                };
                if outbox.send(Answer::Preview(entry, messages)).is_err() {
                    return;
                }
            } else {
                break;
            }
        }
    }
}

/// Read keys and redraw until the picker closes. Results and previews are
/// read on the [`Reader`]'s thread: a key is drawn at once, its results
/// when they come.
fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    reader: &Reader,
    picker: &mut Picker,
    copied: &mut Vec<String>,
) -> Result<Outcome> {
    let mut generation = 0u64;
    let mut complete_generation = 0u64;
    let mut asked_preview: Option<Entry> = None;
    let mut shown: Option<(Entry, Vec<Message>)> = None;
    let mut error: Option<String> = None;
    loop {
        while let Ok(answer) = reader.answers.try_recv() {
            match answer {
                Answer::Results {
                    generation: g,
                    complete,
                    entries,
                } if g == generation => {
                    if complete {
                        complete_generation = g;
                    }
                    match entries {
                        Ok(entries) => {
                            picker.set_entries(entries, complete);
                            error = None;
                        }
                        Err(e) => error = Some(e),
                    }
                }
                Answer::Results { .. } => {}
                Answer::Preview(entry, messages) => {
                    if asked_preview.as_ref() == Some(&entry) {
                        let messages = messages.unwrap_or_else(|e| {
                            error = Some(format!("cannot read {}: {e}", entry.id));
                            Vec::new()
                        });
                        picker.prompts_in_preview = messages
                            .iter()
                            .filter(|m| m.kind == MessageKind::Prompt)
                            .count();
                        shown = Some((entry, messages));
                    }
                }
            }
        }
        if picker.stale {
            generation += 1;
            picker.stale = false;
            reader.ask(Request::Results(Wanted {
                generation,
                query: picker.query.clone(),
                agent: picker.agent,
                cwd: picker.cwd.clone(),
            }));
        }
        let current = picker.current().cloned();
        if current != asked_preview {
            asked_preview = current.clone();
            match current {
                Some(entry) => reader.ask(Request::Preview(entry)),
                None => {
                    shown = None;
                    picker.prompts_in_preview = 0;
                }
            }
        }
        let messages = match (&shown, &asked_preview) {
            (Some((entry, messages)), Some(asked)) if entry == asked => messages.as_slice(),
            _ => &[][..],
        };
        let waiting = complete_generation < generation;
        terminal.draw(|frame| draw(frame, picker, messages, waiting, error.as_deref()))?;
        // Wait for a key; while an answer is owed, look for it every few ms.
        let owed = waiting || shown.as_ref().map(|(e, _)| e) != asked_preview.as_ref();
        if owed && !event::poll(Duration::from_millis(4))? {
            continue;
        }
        loop {
            if let Event::Key(key) = event::read()? {
                match picker.handle(key) {
                    Step::Continue => {}
                    Step::Copy(id) => {
                        let mut out = std::io::stdout();
                        out.write_all(osc52(&id).as_bytes())?;
                        out.flush()?;
                        copied.push(id);
                    }
                    Step::Done(outcome) => return Ok(outcome),
                }
            }
            if !event::poll(Duration::ZERO)? {
                break;
            }
        }
    }
}

/// Draw the query line, the results, the preview and the key help;
/// `waiting` while the exact results are still being read.
fn draw(
    frame: &mut ratatui::Frame,
    picker: &Picker,
    messages: &[Message],
    waiting: bool,
    error: Option<&str>,
) {
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let mut filters = vec![format!(
        "agent: {}",
        picker.agent.map_or("any", Agent::as_str)
    )];
    if let Some(cwd) = &picker.cwd {
        filters.push(format!("cwd: {}", terminal_safe(cwd)));
    }
    let count = format!(
        "{} session(s){}",
        picker.entries.len(),
        if waiting { " …" } else { "" }
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("> ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(terminal_safe(&picker.query).into_owned()),
            Span::styled(
                if picker.focus == Focus::Query {
                    "▏"
                } else {
                    " "
                },
                Style::default().add_modifier(Modifier::SLOW_BLINK),
            ),
            Span::styled(
                format!("   {count}  [{}]", filters.join(", ")),
                Style::default().add_modifier(Modifier::DIM),
            ),
        ])),
        top,
    );
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    let now = jiff::Timestamp::now();
    let width = usize::from(left.width.saturating_sub(2));
    let items: Vec<ListItem> = picker
        .entries
        .iter()
        .map(|e| {
            let title = one_line(
                &terminal_safe(e.title.as_deref().unwrap_or("(untitled)")),
                width,
            );
            let head = Line::from(vec![
                Span::styled(
                    format!(
                        "{:<6} {:>4} ",
                        e.agent.as_str(),
                        e.when.as_deref().map(|t| age(t, now)).unwrap_or_default()
                    ),
                    Style::default().add_modifier(Modifier::DIM),
                ),
                Span::styled(title, Style::default().add_modifier(Modifier::BOLD)),
            ]);
            let cwd =
                terminal_safe(e.cwd.as_deref().unwrap_or_default()).replace(['\n', '\t'], " ");
            let mut detail = vec![Span::styled(
                format!("  {cwd}  "),
                Style::default().add_modifier(Modifier::ITALIC),
            )];
            detail.extend(snippet_spans(&e.snippet));
            ListItem::new(vec![head, Line::from(detail)])
        })
        .collect();
    let title = match error {
        Some(e) => format!(" {} ", terminal_safe(e)),
        None => " sessions ".to_string(),
    };
    let list = List::new(items)
        .block(Block::default().borders(Borders::ALL).title(title))
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶");
    let mut state = ListState::default().with_selected(picker.current().map(|_| picker.selected));
    frame.render_stateful_widget(list, left, &mut state);
    let mut lines = Vec::new();
    let mut prompt_number = 0;
    for m in messages {
        let label = if m.kind == MessageKind::Prompt {
            prompt_number += 1;
            let marker = if picker.fork_prompt == Some(prompt_number) {
                "✂ "
            } else {
                ""
            };
            format!("{marker}#{prompt_number} prompt")
        } else {
            m.kind.as_str().to_string()
        };
        lines.push(Line::styled(
            label,
            Style::default().add_modifier(Modifier::BOLD),
        ));
        for text_line in terminal_safe(&m.text).lines().take(12) {
            lines.push(Line::raw(text_line.replace('\t', "  ")));
        }
    }
    let preview_title = match (picker.current(), picker.fork_prompt) {
        (Some(e), Some(k)) => format!(" {} — fork before prompt #{k} ", terminal_safe(&e.id)),
        (Some(e), None) => format!(" {} ", terminal_safe(&e.id)),
        (None, _) => " preview ".to_string(),
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(preview_title)),
        right,
    );
    frame.render_widget(
        Paragraph::new(match picker.focus {
            Focus::Query => "↑/↓ select  Enter resume  Tab to the list (f fork, y copy)  Ctrl-F fork  Ctrl-Y copy id  ←/→ fork prompt  Ctrl-A agent  Ctrl-U clear  Esc quit",
            Focus::List => "j/k select  Enter resume  f fork  y copy id  h/l fork prompt  a agent  Tab or / search  q or Esc quit",
        })
            .style(Style::default().add_modifier(Modifier::DIM)),
        bottom,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            agent: Agent::Codex,
            cwd: None,
            title: None,
            when: None,
            snippet: String::new(),
        }
    }

    #[test]
    fn typing_marks_the_results_stale_and_moving_does_not() {
        let mut p = Picker::new(String::new(), None, None);
        assert!(p.stale, "nothing asked yet");
        p.stale = false; // the event loop asked for results
        p.set_entries(vec![entry("a"), entry("b"), entry("c")], true);
        assert_eq!(p.handle(key(KeyCode::Char('x'))), Step::Continue);
        assert_eq!(p.query, "x");
        assert!(p.stale);
        p.stale = false;
        p.set_entries(vec![entry("a"), entry("b"), entry("c")], true);
        p.handle(key(KeyCode::Down));
        p.handle(key(KeyCode::Down));
        p.handle(key(KeyCode::Down));
        assert_eq!(p.selected, 2, "stops at the last entry");
        assert!(!p.stale);
        p.handle(ctrl('p'));
        assert_eq!(p.current().unwrap().id, "b");
        p.handle(key(KeyCode::Backspace));
        p.handle(key(KeyCode::Backspace));
        assert_eq!(p.query, "");
        // The selected session stays selected when the new results hold it.
        p.set_entries(vec![entry("z"), entry("b")], true);
        assert_eq!(p.current().unwrap().id, "b");
        p.set_entries(vec![entry("z")], true);
        assert_eq!(p.selected, 0);
    }

    #[test]
    fn keys_close_with_the_right_outcome() {
        let mut p = Picker::new("q".into(), None, None);
        assert_eq!(
            p.handle(key(KeyCode::Enter)),
            Step::Continue,
            "nothing to resume"
        );
        p.set_entries(vec![entry("a"), entry("b")], true);
        p.handle(key(KeyCode::Down));
        assert_eq!(p.handle(ctrl('y')), Step::Copy("b".into()));
        assert_eq!(
            p.handle(key(KeyCode::Enter)),
            Step::Done(Outcome::Resume(entry("b")))
        );
        assert_eq!(
            p.handle(ctrl('f')),
            Step::Done(Outcome::Fork(entry("b"), Cut::DropLast(0)))
        );
        assert_eq!(p.handle(key(KeyCode::Esc)), Step::Done(Outcome::Quit));
        assert_eq!(p.handle(ctrl('c')), Step::Done(Outcome::Quit));
        assert_eq!(p.query, "q", "control keys are not typed");
    }

    #[test]
    fn fork_prompt_moves_within_the_preview_and_resets_on_a_new_selection() {
        let mut p = Picker::new(String::new(), None, None);
        p.set_entries(vec![entry("a"), entry("b")], true);
        p.prompts_in_preview = 2;
        for _ in 0..3 {
            p.handle(key(KeyCode::Right));
        }
        assert_eq!(p.fork_prompt, Some(2));
        assert_eq!(
            p.handle(ctrl('f')),
            Step::Done(Outcome::Fork(entry("a"), Cut::BeforePrompt(2)))
        );
        p.handle(key(KeyCode::Left));
        p.handle(key(KeyCode::Left));
        assert_eq!(p.fork_prompt, None);
        p.handle(key(KeyCode::Right));
        p.handle(key(KeyCode::Down));
        assert_eq!(p.fork_prompt, None);
    }

    #[test]
    fn ctrl_a_cycles_the_agent_filter() {
        let mut p = Picker::new(String::new(), None, None);
        p.stale = false;
        p.handle(ctrl('a'));
        assert_eq!(p.agent, Some(Agent::Codex));
        assert!(p.stale);
        p.handle(ctrl('a'));
        assert_eq!(p.agent, Some(Agent::Claude));
        p.handle(ctrl('a'));
        assert_eq!(p.agent, None);
        assert_eq!(p.query, "", "control keys are not typed");
    }

    #[test]
    fn in_the_list_letters_are_commands() {
        let mut p = Picker::new(String::new(), None, None);
        p.set_entries(vec![entry("a"), entry("b")], true);
        p.prompts_in_preview = 3;
        p.handle(key(KeyCode::Char('f')));
        assert_eq!(p.query, "f", "typed into the query at first");
        p.handle(key(KeyCode::Tab));
        assert_eq!(p.focus, Focus::List);
        p.stale = false;
        p.handle(key(KeyCode::Char('j')));
        assert_eq!(p.current().unwrap().id, "b");
        p.handle(key(KeyCode::Char('k')));
        p.handle(key(KeyCode::Char('l')));
        p.handle(key(KeyCode::Char('l')));
        p.handle(key(KeyCode::Char('h')));
        assert_eq!(p.fork_prompt, Some(1));
        assert_eq!(
            p.handle(key(KeyCode::Char('f'))),
            Step::Done(Outcome::Fork(entry("a"), Cut::BeforePrompt(1)))
        );
        assert_eq!(p.handle(key(KeyCode::Char('y'))), Step::Copy("a".into()));
        p.handle(key(KeyCode::Char('a')));
        assert_eq!(p.agent, Some(Agent::Codex));
        p.handle(key(KeyCode::Char('x')));
        p.handle(key(KeyCode::Backspace));
        assert_eq!(p.query, "f", "nothing typed while the list has the keys");
        assert_eq!(p.handle(key(KeyCode::Char('q'))), Step::Done(Outcome::Quit));
        p.handle(key(KeyCode::Char('/')));
        assert_eq!(p.focus, Focus::Query);
        p.handle(key(KeyCode::Char('y')));
        assert_eq!(p.query, "fy");
    }

    #[test]
    fn osc52_encodes_base64() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(osc52("id-1"), "\x1b]52;c;aWQtMQ==\x07");
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        let now: jiff::Timestamp = "2026-12-05T12:00:00Z".parse().unwrap();
        assert_eq!(age("2026-12-05T11:59:30Z", now), "30s");
        assert_eq!(age("2026-12-05T11:00:00Z", now), "1h");
        assert_eq!(age("2026-12-02T12:00:00Z", now), "3d");
        assert_eq!(age("garbage", now), "");
    }
}
