// A session's messages: prompts and replies as Markdown, tool calls
// collapsed to name + one-line summary with arguments and output on demand,
// patches and edits as diffs, context and reasoning behind toggles.
import type { Message } from "../types/Message";
import { codeBlock, diffView, h, markdown } from "./render";

/** Characters of a tool output shown before "show all". */
const OUTPUT_PREVIEW = 20_000;

/** What the transcript needs from its page: fork after a message, if allowed. */
export interface TranscriptActions {
  fork?: (message: number) => void;
}

function when(ts: string | null): string {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d.getTime()) ? ts : d.toLocaleString();
}

function parseArgs(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** One line saying what a tool call does: its command, path, pattern or first argument. */
export function toolSummary(m: Message): string {
  const args = parseArgs(m.text);
  if (args) {
    for (const key of ["command", "cmd", "file_path", "path", "pattern", "query", "url", "description", "prompt"]) {
      const v = args[key];
      if (typeof v === "string" && v) return v.split("\n")[0].slice(0, 160);
      if (Array.isArray(v) && v.length) return v.map(String).join(" ").split("\n")[0].slice(0, 160);
    }
  }
  return m.text.replace(/\s+/g, " ").trim().slice(0, 160);
}

/** The arguments of a tool call as a diff when it edits files, else as JSON or text. */
function toolArgs(m: Message): HTMLElement {
  const args = parseArgs(m.text);
  const patch = typeof args?.input === "string" ? args.input : typeof args?.patch === "string" ? args.patch : m.text;
  if (patch.includes("*** Begin Patch")) return diffView(patch.split("\n"));
  if (args && typeof args.old_string === "string" && typeof args.new_string === "string") {
    const lines = [`*** ${String(args.file_path ?? "")}`, ...args.old_string.split("\n").map((l) => "-" + l), ...args.new_string.split("\n").map((l) => "+" + l)];
    return diffView(lines);
  }
  if (args && typeof args.content === "string" && (m.tool_name === "Write" || "file_path" in args)) {
    return diffView([`*** ${String(args.file_path ?? "")} (new file)`, ...args.content.split("\n").map((l) => "+" + l)]);
  }
  return codeBlock(args ? JSON.stringify(args, null, 2) : m.text, args ? "json" : undefined);
}

/** A tool output, cut to OUTPUT_PREVIEW characters with a "show all" button. */
function toolOutput(text: string): HTMLElement {
  const box = h("div", { class: "output" });
  const pre = h("pre", {}, text.length > OUTPUT_PREVIEW ? text.slice(0, OUTPUT_PREVIEW) : text);
  box.append(pre);
  if (text.length > OUTPUT_PREVIEW) {
    const more = h("button", { type: "button", class: "show-all" }, `Show all (${(text.length / 1e6).toFixed(1)} MB)`);
    more.addEventListener("click", () => {
      pre.textContent = text;
      more.remove();
    });
    box.append(more);
  }
  return box;
}

function toolCall(m: Message, result: Message | undefined): HTMLElement {
  const details = h("details", { class: "tool-call" });
  const summary = h("summary", {}, h("span", { class: "tool-name" }, m.tool_name ?? "tool"), " ", h("span", { class: "tool-summary" }, toolSummary(m)));
  details.append(summary);
  // Arguments and output are built on first open: a 10 MB output costs nothing until asked for.
  details.addEventListener("toggle", () => {
    if (!details.open || details.dataset.filled) return;
    details.dataset.filled = "1";
    details.append(h("div", { class: "label" }, "arguments"), toolArgs(m));
    if (result) details.append(h("div", { class: "label" }, "output"), toolOutput(result.text));
    else details.append(h("div", { class: "meta" }, "(no output recorded)"));
  });
  return details;
}

const LABELS: Record<string, string> = { prompt: "you", reply: "assistant", tool_call: "tool", tool_result: "tool output", context: "context", other: "other" };

/** The element of message number `n`. */
export function messageNode(m: Message, n: number, results: Map<string, [Message, number]>, actions: TranscriptActions): HTMLElement {
  const node = h("article", { class: "msg " + m.kind, id: "m" + n, "data-n": String(n), tabindex: "-1" });
  const head = h("div", { class: "who" }, h("a", { href: "#m" + n, class: "anchor", "aria-label": `Link to message ${n}` }, LABELS[m.kind] ?? m.kind), m.timestamp ? h("time", { datetime: m.timestamp }, when(m.timestamp)) : null);
  node.append(head);
  if (m.kind === "tool_call") {
    const paired = m.call_id ? results.get(m.call_id) : undefined;
    node.append(toolCall(m, paired?.[0]));
    // The output's own number links here, where it is shown.
    if (paired) node.append(h("span", { id: "m" + paired[1], class: "alias" }));
  } else if (m.kind === "tool_result") {
    const d = h("details", { class: "tool-call" }, h("summary", {}, h("span", { class: "tool-name" }, m.tool_name ?? "output"), " ", h("span", { class: "tool-summary" }, m.text.split("\n")[0].slice(0, 160))));
    d.addEventListener("toggle", () => {
      if (d.open && !d.dataset.filled) {
        d.dataset.filled = "1";
        d.append(toolOutput(m.text));
      }
    });
    node.append(d);
  } else if (m.kind === "context" || m.kind === "other") {
    const d = h("details", {}, h("summary", {}, m.text.split("\n", 1)[0].slice(0, 140) || "(empty)"));
    d.addEventListener("toggle", () => {
      if (d.open && !d.dataset.filled) {
        d.dataset.filled = "1";
        d.append(h("pre", { class: "plain" }, m.text));
      }
    });
    node.append(d);
  } else {
    node.append(markdown(m.text));
  }
  if (m.kind === "prompt" && actions.fork) {
    const fork = actions.fork;
    head.append(h("button", { type: "button", class: "fork", onclick: () => fork(n) }, "Fork here"));
  }
  return node;
}

/**
 * Append messages `[first, first + messages.length)` to `list`; a tool
 * result whose call is on the same page is shown inside the call.
 */
export function renderMessages(list: HTMLElement, messages: Message[], first: number, actions: TranscriptActions, before?: Node | null): void {
  const results = new Map<string, [Message, number]>();
  messages.forEach((m, i) => {
    if (m.kind === "tool_result" && m.call_id) results.set(m.call_id, [m, first + i]);
  });
  const paired = new Set<string>();
  for (const m of messages) if (m.kind === "tool_call" && m.call_id && results.has(m.call_id)) paired.add(m.call_id);
  const frag = document.createDocumentFragment();
  messages.forEach((m, i) => {
    if (m.kind === "tool_result" && m.call_id && paired.has(m.call_id)) return;
    frag.append(messageNode(m, first + i, results, actions));
  });
  list.insertBefore(frag, before ?? null);
}
