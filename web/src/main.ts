// baton web UI: one page, routed by URL (history API): `/` the session
// list (filters in the query string), `/s/<id>` a session (`#m<N>` a
// message), `/search?q=` results, `/stats`, `/share/<token>` a shared
// session (no sign-in). Talks to /api/v1 with the token in localStorage.
import "./style.css";
import "highlight.js/styles/github.css";
import type { MessageList } from "../types/MessageList";
import type { SearchResults } from "../types/SearchResults";
import type { SessionFacets } from "../types/SessionFacets";
import type { SessionInfo } from "../types/SessionInfo";
import type { SessionList } from "../types/SessionList";
import type { Share } from "../types/Share";
import type { ShareList } from "../types/ShareList";
import type { Stats } from "../types/Stats";
import type { StatRow } from "../types/StatRow";
import type { WhoAmI } from "../types/WhoAmI";
import { ApiError, api, query, setToken, token } from "./api";
import { append, copyButton, h, snippet } from "./render";
import { renderMessages, type TranscriptActions } from "./transcript";

/** A session listing, with `archived` once the server sends it. */
type Listed = SessionInfo & { archived?: boolean };

const main = document.getElementById("main") as HTMLElement;
const searchBox = document.getElementById("q") as HTMLInputElement;
/** Messages per transcript page. */
const PAGE = 200;
/** Bumped on every navigation, so a slow answer for an earlier view is dropped. */
let generation = 0;

function when(ts: string | null | undefined): string {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d.getTime()) ? ts : d.toLocaleString();
}

function shortId(id: string): string {
  return id.length > 13 ? id.slice(0, 8) + "…" + id.slice(-4) : id;
}

function title(s: SessionInfo): string {
  return s.title || s.first_prompt || (s.encrypted ? "(encrypted session)" : "(no prompt yet)");
}

/** Go to `url` inside the app (pushing history unless `replace`). */
function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  void route();
}

/** A link handled by the app's router. */
function link(href: string, ...children: (Node | string)[]): HTMLAnchorElement {
  const a = h("a", { href }, ...children);
  a.addEventListener("click", (e) => {
    const me = e as MouseEvent;
    if (me.metaKey || me.ctrlKey || me.shiftKey || me.button !== 0) return;
    e.preventDefault();
    navigate(href);
  });
  return a;
}

function badges(s: Listed): HTMLElement {
  return h("span", { class: "badges" },
    h("span", { class: "badge " + s.agent }, s.agent),
    s.encrypted ? h("span", { class: "badge enc" }, "encrypted") : null,
    s.archived ? h("span", { class: "badge archived" }, "archived") : null,
    s.forked_from ? h("span", { class: "badge" }, "fork") : null,
    s.diverged_from ? h("span", { class: "badge" }, "diverged copy") : null);
}

function show(...nodes: (Node | string)[]): void {
  main.replaceChildren();
  append(main, nodes);
}

function errorBox(e: unknown): HTMLElement {
  const message = e instanceof Error ? e.message : String(e);
  return h("div", { class: "notice error", role: "alert" }, "Error: " + message);
}

function setNav(view: string): void {
  for (const a of Array.from(document.querySelectorAll<HTMLAnchorElement>("[data-nav]"))) {
    if (a.dataset.nav === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// ---- sign in ---------------------------------------------------------------

function loginView(message = ""): void {
  setNav("");
  (document.getElementById("logout") as HTMLElement).hidden = true;
  (document.getElementById("who") as HTMLElement).textContent = "";
  const input = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false" });
  const form = h("form", { class: "login" },
    h("label", { for: "token" }, "Token"), input, h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    void route();
  });
  show(h("section", { class: "card" },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste a token. On the server machine, ", h("code", {}, "baton serve token"), " prints the local account's token; ",
      h("code", {}, "baton serve user add NAME"), " creates another account and prints its token."),
    form,
    message ? h("p", { class: "error", role: "alert" }, message) : null));
  input.focus();
}

// ---- session list ------------------------------------------------------------

const FILTERS = ["agent", "cwd", "from", "to", "has_forks", "q"] as const;

function filterParams(): Record<string, string> {
  const p = new URLSearchParams(location.search);
  const out: Record<string, string> = {};
  for (const k of FILTERS) {
    const v = p.get(k);
    if (v) out[k] = v;
  }
  return out;
}

function row(s: Listed): HTMLElement {
  const prompt = s.first_prompt && s.first_prompt !== s.title ? s.first_prompt : "";
  return h("li", { class: "row" },
    link("/s/" + encodeURIComponent(s.id),
      h("span", { class: "row-head" }, badges(s), h("span", { class: "title" }, title(s))),
      prompt ? h("span", { class: "prompt" }, prompt.slice(0, 200)) : "",
      h("span", { class: "meta" },
        [s.cwd ?? "", `${s.user_turns} turns`, `${s.message_count} messages`, when(s.updated_at ?? s.started_at), shortId(s.id)].filter(Boolean).join(" · "))));
}

function filterBar(f: Record<string, string>, facets: SessionFacets | null): HTMLElement {
  const set = (key: string, value: string) => {
    const next = { ...f, [key]: value };
    if (!value) delete next[key];
    navigate("/" + query(next));
  };
  const agent = h("select", { id: "f-agent" }, h("option", { value: "" }, `All agents${facets ? "" : ""}`));
  for (const a of facets?.agents ?? []) agent.append(h("option", { value: a.value }, `${a.value} (${a.count})`));
  agent.value = f.agent ?? "";
  agent.addEventListener("change", () => set("agent", agent.value));
  const cwd = h("select", { id: "f-cwd" }, h("option", { value: "" }, "All projects"));
  for (const p of facets?.projects ?? []) cwd.append(h("option", { value: p.value }, `${p.value || "(no folder)"} (${p.count})`));
  if (f.cwd && !facets?.projects.some((p) => p.value === f.cwd)) cwd.append(h("option", { value: f.cwd }, f.cwd));
  cwd.value = f.cwd ?? "";
  cwd.addEventListener("change", () => set("cwd", cwd.value));
  const from = h("input", { id: "f-from", type: "date", value: f.from ?? "" });
  from.addEventListener("change", () => set("from", from.value));
  const to = h("input", { id: "f-to", type: "date", value: f.to ?? "" });
  to.addEventListener("change", () => set("to", to.value));
  const forks = h("input", { id: "f-forks", type: "checkbox", checked: f.has_forks === "true" });
  forks.addEventListener("change", () => set("has_forks", forks.checked ? "true" : ""));
  return h("form", { class: "filters", "aria-label": "Filters" },
    h("label", { for: "f-agent" }, "Agent"), agent,
    h("label", { for: "f-cwd" }, "Project"), cwd,
    h("label", { for: "f-from" }, "Updated from"), from,
    h("label", { for: "f-to" }, "before"), to,
    h("label", { class: "check" }, forks, ` Has forks${facets ? ` (${facets.with_forks})` : ""}`),
    Object.keys(f).length ? link("/", "Clear filters") : null,
    h("span", { class: "count", "aria-live": "polite" }, facets ? `${facets.total} sessions` : ""));
}

async function listView(gen: number): Promise<void> {
  setNav("list");
  const f = filterParams();
  const list = h("ul", { class: "sessions", id: "sessions" });
  const sentinel = h("div", { class: "sentinel" });
  const bar = h("div", {});
  show(h("h1", {}, "Sessions"), bar, list, sentinel);
  bar.replaceChildren(filterBar(f, null));
  void api<SessionFacets>("/facets" + query(f)).then((facets) => {
    if (gen === generation) bar.replaceChildren(filterBar(f, facets));
  }).catch(() => undefined);
  let cursor: string | null = null;
  let loading = false;
  const more = async (): Promise<void> => {
    if (loading) return;
    loading = true;
    try {
      const page: SessionList = await api<SessionList>("/sessions" + query({ ...f, limit: 50, cursor }));
      if (gen !== generation) return;
      for (const s of page.sessions) list.append(row(s));
      if (!list.children.length) list.append(emptyState(Object.keys(f).length > 0));
      cursor = page.next_cursor;
      sentinel.replaceChildren(cursor ? h("button", { type: "button", onclick: () => void more() }, "More sessions") : "");
    } finally {
      loading = false;
    }
  };
  await more();
  const io = new IntersectionObserver((entries) => {
    if (gen !== generation) return io.disconnect();
    if (entries.some((e) => e.isIntersecting) && cursor) void more();
  });
  io.observe(sentinel);
}

function emptyState(filtered: boolean): HTMLElement {
  if (filtered) return h("li", { class: "empty" }, "No session matches these filters. ", link("/", "Show all sessions"), ".");
  return h("li", { class: "empty" },
    h("p", {}, "No sessions yet."),
    h("p", {}, "baton serve lists the Codex and Claude Code sessions of this machine (from ", h("code", {}, "~/.codex"), " and ", h("code", {}, "~/.claude"),
      ", or the folders given with ", h("code", {}, "--codex-home"), " / ", h("code", {}, "--claude-dir"), "). From another machine, push its sessions with ",
      h("code", {}, "baton login URL"), " then ", h("code", {}, "baton push"), "."));
}

// ---- one session -------------------------------------------------------------

/** The lineage graph: ancestors above, this session, forks and copies below, each a link. */
async function lineage(s: SessionInfo, shared: boolean): Promise<HTMLElement> {
  const box = h("nav", { class: "lineage", "aria-label": "Lineage" });
  if (shared) return box;
  const chain: SessionInfo[] = [];
  let parent = s.forked_from ?? s.diverged_from;
  while (parent && chain.length < 8) {
    const id: string = parent;
    try {
      const p: SessionInfo = await api<SessionInfo>("/sessions/" + encodeURIComponent(id));
      chain.unshift(p);
      parent = p.forked_from ?? p.diverged_from;
    } catch {
      chain.unshift({ ...s, id, title: "(not on this server)", forked_from: null, diverged_from: null });
      break;
    }
  }
  const children: SessionList = await api<SessionList>("/sessions" + query({ parent: s.id, limit: 50 })).catch(() => ({ sessions: [], next_cursor: null }));
  if (!chain.length && !children.sessions.length) return box;
  const node = (x: SessionInfo, current: boolean, rel: string) =>
    h("li", { class: current ? "node current" : "node" },
      current ? h("span", { "aria-current": "page" }, title(x).slice(0, 80)) : link("/s/" + encodeURIComponent(x.id), title(x).slice(0, 80)),
      rel ? h("span", { class: "rel" }, rel) : null);
  const tree = h("ol", { class: "graph" });
  chain.forEach((p, i) => tree.append(node(p, false, i === 0 ? "root" : "parent")));
  tree.append(node(s, true, s.diverged_from && !s.forked_from ? "diverged copy" : s.forked_from ? "fork" : ""));
  const kids = h("ul", { class: "children" });
  for (const c of children.sessions) kids.append(node(c, false, c.diverged_from === s.id && c.forked_from !== s.id ? "diverged copy" : "fork"));
  if (children.sessions.length) tree.append(h("li", { class: "node" }, kids));
  box.append(h("h2", {}, "Lineage"), tree);
  return box;
}

async function sharePanel(s: SessionInfo): Promise<HTMLElement> {
  const box = h("section", { class: "share", "aria-label": "Share" });
  const listBox = h("ul", {});
  const hours = h("select", { id: "share-hours" },
    h("option", { value: "1" }, "1 hour"), h("option", { value: "24" }, "1 day"), h("option", { value: "168" }, "1 week"), h("option", { value: "720" }, "30 days"));
  hours.value = "24";
  const created = h("div", { class: "created", "aria-live": "polite" });
  const refresh = async () => {
    const shares: ShareList = await api<ShareList>(`/sessions/${encodeURIComponent(s.id)}/shares`);
    listBox.replaceChildren(...shares.shares.map((sh) => h("li", {},
      `Link ${sh.id} · expires ${when(sh.expires_at)} `,
      h("button", { type: "button", class: "revoke", onclick: async () => {
        await api(`/sessions/${encodeURIComponent(s.id)}/shares/${sh.id}`, { method: "DELETE" });
        created.replaceChildren("Link revoked.");
        await refresh();
      } }, "Revoke"))));
  };
  const create = h("button", { type: "button", id: "share-create" }, "Create share link");
  create.addEventListener("click", async () => {
    const sh: Share = await api<Share>(`/sessions/${encodeURIComponent(s.id)}/shares`, { method: "POST", body: JSON.stringify({ expires_in_hours: Number(hours.value) }) });
    const url = `${location.origin}/share/${sh.token ?? ""}`;
    created.replaceChildren("Read-only link (shown once): ", h("input", { class: "share-url", readonly: true, value: url, "aria-label": "Share link" }), copyButton(() => url, "Copy share link"));
    await refresh();
  });
  box.append(h("h2", {}, "Share"), h("p", { class: "meta" }, "Anyone with the link can read this session only, until it expires or you revoke it."),
    h("label", { for: "share-hours" }, "Expires after "), hours, " ", create, created, listBox);
  await refresh().catch(() => undefined);
  return box;
}

async function sessionView(gen: number, id: string, shareToken?: string): Promise<void> {
  setNav("");
  const shared = shareToken !== undefined;
  const base = shared ? `/shared/${encodeURIComponent(shareToken)}/messages` : `/sessions/${encodeURIComponent(id)}/messages`;
  const target = /^#m(\d+)$/.exec(location.hash);
  const want = target ? Number(target[1]) : 0;
  const start = Math.max(0, want - 20);
  show(h("p", { class: "meta" }, "Loading…"));
  const res: MessageList = await api<MessageList>(base + query({ offset: start || null, limit: PAGE }), {}, shared);
  if (gen !== generation) return;
  const s = res.session as Listed;
  document.title = title(s).slice(0, 60) + " · baton";
  const actions: TranscriptActions = shared ? {} : {
    fork: async (n: number) => {
      try {
        const fork: SessionInfo = await api<SessionInfo>(`/sessions/${encodeURIComponent(s.id)}/fork-at`, { method: "POST", body: JSON.stringify({ message: n }) });
        navigate("/s/" + encodeURIComponent(fork.id));
      } catch (e) {
        main.prepend(errorBox(e));
      }
    },
  };
  const resume = `baton resume ${s.id}`;
  const head = h("header", { class: "session-head" },
    shared ? h("p", { class: "meta" }, "Shared read-only session") : h("p", {}, link("/", "← All sessions")),
    h("h1", {}, badges(s), " ", title(s)),
    h("div", { class: "meta" }, [s.cwd ?? "", `${s.user_turns} turns`, `${s.message_count} messages`, `started ${when(s.started_at)}`, `updated ${when(s.updated_at)}`].filter(Boolean).join(" · ")),
    shared ? null : h("div", { class: "resume" }, h("code", { id: "resume-cmd" }, resume), copyButton(() => resume, "Copy resume command")));
  const list = h("div", { class: "transcript", id: "transcript" });
  const earlier = h("div", {});
  const later = h("div", { class: "sentinel" });
  const tools = h("div", { class: "jump" });
  show(head);
  if (res.encrypted) {
    main.append(h("div", { class: "notice" }, "This session is end-to-end encrypted: the server stores and syncs its bytes but cannot read, search or show them. Pull it with ",
      h("code", {}, "baton pull"), " on a machine that holds the key."));
    return;
  }
  main.append(tools, earlier, list, later);
  if (!res.messages.length) list.append(h("p", { class: "meta" }, "No messages yet (the server may still be indexing)."));
  let first = start;
  let next = res.next_offset ?? null;
  renderMessages(list, res.messages, start, actions);
  const total = s.message_count;
  const loadEarlier = () => {
    earlier.replaceChildren();
    if (first <= 0) return;
    earlier.append(h("button", { type: "button", onclick: async () => {
      const from = Math.max(0, first - PAGE);
      const page: MessageList = await api<MessageList>(base + query({ offset: from || null, limit: first - from }), {}, shared);
      renderMessages(list, page.messages, from, actions, list.firstChild);
      first = from;
      loadEarlier();
    } }, "Earlier messages"));
  };
  let loading = false;
  const loadLater = async () => {
    if (next === null || loading) return;
    loading = true;
    try {
      const page: MessageList = await api<MessageList>(base + query({ offset: next, limit: PAGE }), {}, shared);
      renderMessages(list, page.messages, next, actions);
      next = page.next_offset ?? null;
      later.replaceChildren(next !== null ? h("button", { type: "button", onclick: () => void loadLater() }, "More messages") : "");
    } finally {
      loading = false;
    }
  };
  loadEarlier();
  later.replaceChildren(next !== null ? h("button", { type: "button", onclick: () => void loadLater() }, "More messages") : "");
  const io = new IntersectionObserver((entries) => {
    if (gen !== generation) return io.disconnect();
    if (entries.some((e) => e.isIntersecting)) void loadLater();
  }, { rootMargin: "800px" });
  io.observe(later);
  tools.append(h("button", { type: "button", id: "jump-latest", onclick: async () => {
    const from = Math.max(0, total - PAGE);
    if (next !== null && from > (next ?? 0)) {
      const page: MessageList = await api<MessageList>(base + query({ offset: from, limit: PAGE }), {}, shared);
      list.replaceChildren();
      renderMessages(list, page.messages, from, actions);
      first = from;
      next = page.next_offset ?? null;
      loadEarlier();
      later.replaceChildren();
    }
    list.lastElementChild?.scrollIntoView({ block: "end" });
    (list.lastElementChild as HTMLElement | null)?.focus({ preventScroll: true });
  } }, "Jump to latest"), h("span", { class: "meta" }, " j / k: next / previous prompt"));
  if (target) {
    const el = document.getElementById("m" + want)?.closest("article");
    if (el) {
      el.classList.add("target");
      // A matching tool call or output is shown open.
      const details = el.querySelector("details");
      if (details) details.open = true;
      el.scrollIntoView({ block: "start" });
      el.focus({ preventScroll: true });
    }
  }
  if (!shared) {
    const side = h("div", { class: "side" });
    head.append(side);
    void lineage(s, shared).then((g) => gen === generation && side.append(g)).then(() => sharePanel(s)).then((p) => gen === generation && side.append(p)).catch(() => undefined);
  }
}

// ---- search --------------------------------------------------------------------

async function searchView(gen: number): Promise<void> {
  setNav("");
  const q = new URLSearchParams(location.search).get("q") ?? "";
  if (document.activeElement !== searchBox) searchBox.value = q;
  const out = h("ol", { class: "results", id: "results" });
  show(h("h1", {}, q ? `Search: ${q}` : "Search"), out);
  if (!q.trim()) {
    out.append(h("li", { class: "empty" }, "Type in the search field: every word must match; end a word with * to match its beginning."));
    return;
  }
  const res: SearchResults = await api<SearchResults>("/search" + query({ q, limit: 50 }));
  if (gen !== generation) return;
  for (const hit of res.hits) {
    const href = "/s/" + encodeURIComponent(hit.session.id) + (hit.message !== null ? "#m" + hit.message : "");
    out.append(h("li", { class: "row" }, link(href,
      h("span", { class: "row-head" }, badges(hit.session), h("span", { class: "title" }, title(hit.session)),
        h("span", { class: "hits" }, `${hit.hit_count} ${hit.hit_count === 1 ? "match" : "matches"}`)),
      snippet(hit.snippet),
      h("span", { class: "meta" }, [hit.session.cwd ?? "", when(hit.session.updated_at)].filter(Boolean).join(" · ")))));
  }
  if (!res.hits.length) out.append(h("li", { class: "empty" }, "No matches. Encrypted sessions cannot be searched."));
}

// ---- stats -----------------------------------------------------------------------

/** A horizontal bar chart of `rows` by `metric`, as SVG built from elements (no inline styles). */
function bars(caption: string, rows: StatRow[], metric: "sessions" | "turns" | "messages"): HTMLElement {
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(1, ...rows.map((r) => r[metric]));
  const rowH = 22;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 600 ${rows.length * rowH + 4}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", caption);
  rows.forEach((r, i) => {
    const y = i * rowH + 2;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "0");
    label.setAttribute("y", String(y + 15));
    label.textContent = (r.key || "(none)").slice(-34);
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", "250");
    rect.setAttribute("y", String(y + 3));
    rect.setAttribute("height", "16");
    rect.setAttribute("width", String(Math.max(1, (r[metric] / max) * 300)));
    const value = document.createElementNS(ns, "text");
    value.setAttribute("x", String(256 + (r[metric] / max) * 300));
    value.setAttribute("y", String(y + 15));
    value.textContent = String(r[metric]);
    svg.append(label, rect, value);
  });
  return h("figure", { class: "chart" }, h("figcaption", {}, caption), svg);
}

/** Sessions per day as vertical bars. */
function perDay(rows: StatRow[]): HTMLElement {
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(1, ...rows.map((r) => r.sessions));
  const w = Math.max(4, Math.floor(600 / Math.max(1, rows.length)));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${Math.max(600, rows.length * w)} 140`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Sessions per day");
  rows.forEach((r, i) => {
    const hgt = (r.sessions / max) * 120;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(i * w));
    rect.setAttribute("y", String(125 - hgt));
    rect.setAttribute("width", String(w - 1));
    rect.setAttribute("height", String(Math.max(1, hgt)));
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${r.key}: ${r.sessions} sessions, ${r.turns} turns, ${r.messages} messages`;
    rect.append(tip);
    svg.append(rect);
  });
  return h("figure", { class: "chart" }, h("figcaption", {}, `Sessions per day (${rows[0]?.key ?? ""} – ${rows[rows.length - 1]?.key ?? ""})`), svg);
}

async function statsView(gen: number): Promise<void> {
  setNav("stats");
  const st: Stats = await api<Stats>("/stats");
  if (gen !== generation) return;
  const total = (rows: StatRow[], k: "sessions" | "turns" | "messages") => rows.reduce((a, r) => a + r[k], 0);
  const table = h("table", { class: "stats-table" }, h("thead", {}, h("tr", {}, h("th", {}, "Project"), h("th", {}, "Sessions"), h("th", {}, "Turns"), h("th", {}, "Messages"))));
  const body = h("tbody", {});
  for (const r of st.per_project.slice(0, 15)) {
    body.append(h("tr", {}, h("td", {}, link("/" + query({ cwd: r.key }), r.key || "(no folder)")), h("td", {}, String(r.sessions)), h("td", {}, String(r.turns)), h("td", {}, String(r.messages))));
  }
  table.append(body);
  show(h("h1", {}, "Stats"),
    h("p", { class: "totals" }, `${total(st.per_agent, "sessions")} sessions · ${total(st.per_agent, "turns")} turns · ${total(st.per_agent, "messages")} messages`),
    perDay(st.per_day),
    bars("Sessions per agent", st.per_agent, "sessions"),
    bars("Turns per agent", st.per_agent, "turns"),
    bars("Sessions per project", st.per_project.slice(0, 15), "sessions"),
    h("h2", {}, "Top projects"), table);
}

// ---- routing, keys ---------------------------------------------------------------

/** The path and query last routed: a change of the hash alone only scrolls. */
let routed = "";

async function route(): Promise<void> {
  const gen = ++generation;
  routed = location.pathname + location.search;
  const path = location.pathname;
  const share = /^\/share\/([A-Za-z0-9]+)$/.exec(path);
  try {
    if (share) {
      (document.getElementById("top") as HTMLElement).classList.add("shared");
      return await sessionView(gen, "", share[1]);
    }
    // `baton serve` suggests opening `/#token=TOKEN`: sign in with it and drop it from the address.
    const given = /^#token=(.+)$/.exec(location.hash);
    if (given) {
      setToken(decodeURIComponent(given[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    if (!token()) return loginView();
    if (!(document.getElementById("who") as HTMLElement).textContent) {
      const me: WhoAmI = await api<WhoAmI>("/me");
      (document.getElementById("who") as HTMLElement).textContent = me.user;
      (document.getElementById("logout") as HTMLElement).hidden = false;
    }
    const s = /^\/s\/([^/]+)$/.exec(path);
    if (s) return await sessionView(gen, decodeURIComponent(s[1]));
    if (path === "/search") return await searchView(gen);
    if (path === "/stats") return await statsView(gen);
    document.title = "baton";
    return await listView(gen);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && !share) {
      setToken("");
      return loginView("That token was not accepted. Check it with `baton serve token` on the server.");
    }
    if (gen === generation) show(errorBox(e));
  }
}

let typing: number | undefined;
searchBox.addEventListener("input", () => {
  clearTimeout(typing);
  typing = window.setTimeout(() => {
    const q = searchBox.value;
    navigate("/search" + query({ q }), location.pathname === "/search");
  }, 120);
});
(document.getElementById("search-form") as HTMLFormElement).addEventListener("submit", (e) => {
  e.preventDefault();
  clearTimeout(typing);
  navigate("/search" + query({ q: searchBox.value }), location.pathname === "/search");
});
(document.getElementById("logout") as HTMLElement).addEventListener("click", () => {
  setToken("");
  (document.getElementById("who") as HTMLElement).textContent = "";
  navigate("/");
});
for (const a of Array.from(document.querySelectorAll<HTMLAnchorElement>("header a[href^='/']"))) {
  a.addEventListener("click", (e) => {
    e.preventDefault();
    navigate(a.getAttribute("href") ?? "/");
  });
}

const THEME_KEY = "baton-theme";
function applyTheme(): void {
  const t = localStorage.getItem(THEME_KEY);
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}
(document.getElementById("theme") as HTMLElement).addEventListener("click", () => {
  const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  localStorage.setItem(THEME_KEY, dark ? "light" : "dark");
  applyTheme();
});
applyTheme();

/** j / k: focus the next / previous prompt of a transcript, or row of a list. */
document.addEventListener("keydown", (e) => {
  const t = e.target as HTMLElement;
  if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) return;
  if (e.key !== "j" && e.key !== "k") return;
  const items = Array.from(document.querySelectorAll<HTMLElement>("#transcript .msg.prompt, ul.sessions > li.row > a, ol.results > li.row > a"));
  if (!items.length) return;
  const current = items.findIndex((el) => el === document.activeElement || el.contains(document.activeElement));
  const next = e.key === "j" ? Math.min(items.length - 1, current + 1) : Math.max(0, current < 0 ? 0 : current - 1);
  items[next].focus();
  items[next].scrollIntoView({ block: "nearest" });
  e.preventDefault();
});
window.addEventListener("popstate", () => {
  if (location.pathname + location.search !== routed) void route();
});
void route();
