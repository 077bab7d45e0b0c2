//! `baton pick`: an interactive picker that searches sessions as you type,
//! previews the selected one and resumes, forks or copies it.

use crate::args::absolute_dir;
use crate::catalog;
use crate::context::Context;
use crate::output::{UsageError, one_line, terminal_safe};
use anyhow::{Context as _, Result};
use baton_native::fork::Cut;
use baton_native::{Agent, Message, MessageKind};
use baton_store::{Catalog, PickEntry as Entry};
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
    /// Only sessions of this agent (`codex` or `claude`; Tab cycles it).
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
    /// The query or a filter changed since the results were read.
    pub stale: bool,
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

    /// Take new results, keeping the selected session selected when it is
    /// among them.
    pub fn set_entries(&mut self, entries: Vec<Entry>) {
        let keep = self.current().map(|e| (e.id.clone(), e.agent));
        self.selected = keep
            .and_then(|(id, agent)| entries.iter().position(|e| e.id == id && e.agent == agent))
            .unwrap_or(0);
        self.entries = entries;
        self.stale = false;
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
            KeyCode::Char('f') if ctrl => {
                if let Some(entry) = self.current() {
                    let cut = self.fork_prompt.map_or(Cut::DropLast(0), Cut::BeforePrompt);
                    return Step::Done(Outcome::Fork(entry.clone(), cut));
                }
            }
            KeyCode::Char('y') if ctrl => {
                if let Some(entry) = self.current() {
                    return Step::Copy(entry.id.clone());
                }
            }
            KeyCode::Char('u') if ctrl => {
                self.query.clear();
                self.stale = true;
            }
            KeyCode::Tab => {
                self.agent = match self.agent {
                    None => Some(Agent::Codex),
                    Some(Agent::Codex) => Some(Agent::Claude),
                    Some(Agent::Claude) => None,
                };
                self.stale = true;
            }
            KeyCode::Up => self.select(self.selected.saturating_sub(1)),
            KeyCode::Down => self.select(self.selected + 1),
            KeyCode::Char('p') if ctrl => self.select(self.selected.saturating_sub(1)),
            KeyCode::Char('n') if ctrl => self.select(self.selected + 1),
            KeyCode::PageUp => self.select(self.selected.saturating_sub(10)),
            KeyCode::PageDown => self.select(self.selected + 10),
            KeyCode::Right => {
                let next = self.fork_prompt.map_or(1, |k| k + 1);
                if next <= self.prompts_in_preview {
                    self.fork_prompt = Some(next);
                }
            }
            KeyCode::Left => {
                self.fork_prompt = self
                    .fork_prompt
                    .and_then(|k| k.checked_sub(1))
                    .filter(|&k| k > 0);
            }
            KeyCode::Backspace => self.stale |= self.query.pop().is_some(),
            KeyCode::Char(c) if !ctrl && !c.is_control() => {
                self.query.push(c);
                self.stale = true;
            }
            _ => {}
        }
        Step::Continue
    }
}

/// The first messages of `entry`'s transcript, read one at a time (never
/// the whole of a huge session).
pub fn preview(cat: &Catalog, entry: &Entry) -> Result<Vec<Message>> {
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
    let cat = catalog::open_fresh(ctx)?;
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let mut copied = Vec::new();
    let outcome = event_loop(&mut terminal, &cat, &mut picker, &mut copied);
    ratatui::try_restore().context("cannot restore the terminal")?;
    drop(cat);
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

/// Read keys and redraw until the picker closes. Keys typed faster than a
/// frame are applied together before one query.
fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    cat: &Catalog,
    picker: &mut Picker,
    copied: &mut Vec<String>,
) -> Result<Outcome> {
    let mut shown: Option<(Entry, Vec<Message>)> = None;
    let mut error: Option<String> = None;
    loop {
        if picker.stale {
            match cat.pick(
                &picker.query,
                picker.agent,
                picker.cwd.as_deref(),
                RESULT_LIMIT,
            ) {
                Ok(entries) => {
                    picker.set_entries(entries);
                    error = None;
                }
                Err(e) => {
                    picker.stale = false;
                    error = Some(format!("{e:#}"));
                }
            }
        }
        let current = picker.current().cloned();
        if current.as_ref() != shown.as_ref().map(|(e, _)| e) {
            shown = match current {
                Some(entry) => {
                    let messages = preview(cat, &entry).unwrap_or_else(|e| {
                        error = Some(format!("cannot read {}: {e:#}", entry.id));
                        Vec::new()
                    });
                    Some((entry, messages))
                }
                None => None,
            };
            picker.prompts_in_preview = shown.as_ref().map_or(0, |(_, m)| {
                m.iter().filter(|m| m.kind == MessageKind::Prompt).count()
            });
        }
        let messages = shown.as_ref().map_or(&[][..], |(_, m)| m.as_slice());
        terminal.draw(|frame| draw(frame, picker, messages, error.as_deref()))?;
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

/// Draw the query line, the results, the preview and the key help.
fn draw(frame: &mut ratatui::Frame, picker: &Picker, messages: &[Message], error: Option<&str>) {
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
    let count = format!("{} session(s)", picker.entries.len());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("> ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(terminal_safe(&picker.query).into_owned()),
            Span::styled("▏", Style::default().add_modifier(Modifier::SLOW_BLINK)),
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
        Paragraph::new("↑/↓ select  Enter resume  Ctrl-F fork  ←/→ fork prompt  Ctrl-Y copy id  Tab agent  Ctrl-U clear  Esc quit")
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
        p.set_entries(vec![entry("a"), entry("b"), entry("c")]);
        assert!(!p.stale);
        assert_eq!(p.handle(key(KeyCode::Char('x'))), Step::Continue);
        assert_eq!(p.query, "x");
        assert!(p.stale);
        p.set_entries(vec![entry("a"), entry("b"), entry("c")]);
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
        p.set_entries(vec![entry("z"), entry("b")]);
        assert_eq!(p.current().unwrap().id, "b");
        p.set_entries(vec![entry("z")]);
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
        p.set_entries(vec![entry("a"), entry("b")]);
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
        p.set_entries(vec![entry("a"), entry("b")]);
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
    fn tab_cycles_the_agent_filter() {
        let mut p = Picker::new(String::new(), None, None);
        p.stale = false;
        p.handle(key(KeyCode::Tab));
        assert_eq!(p.agent, Some(Agent::Codex));
        assert!(p.stale);
        p.handle(key(KeyCode::Tab));
        assert_eq!(p.agent, Some(Agent::Claude));
        p.handle(key(KeyCode::Tab));
        assert_eq!(p.agent, None);
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
