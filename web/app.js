// baton web viewer: plain JS, no build step. Talks to /api/v1 with the
// bearer token kept in localStorage.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { cursor: null, q: "" };

function token() { return localStorage.getItem("baton-token") || ""; }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(path) {
  const res = await fetch("/api/v1" + path, { headers: { Authorization: "Bearer " + token() } });
  if (res.status === 401) { showLogin("That token was not accepted."); throw new Error("unauthorized"); }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || res.statusText);
  return body;
}

function show(section) {
  for (const id of ["login", "list", "session"]) $(id).hidden = id !== section;
}

function showLogin(message) {
  show("login");
  $("login-error").textContent = message || "";
  $("logout").hidden = true;
  $("who").textContent = "";
}

function when(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d) ? ts : d.toLocaleString();
}

function shortId(id) { return id.length > 13 ? id.slice(0, 8) + "…" + id.slice(-4) : id; }

function badges(s) {
  return el("span", {},
    el("span", { class: "badge " + s.agent }, s.agent),
    s.encrypted ? el("span", { class: "badge enc" }, "encrypted") : null,
    s.archived ? el("span", { class: "badge", title: "The agent's own files are gone; baton's archive keeps this session. `baton resume` writes it back." }, "archived") : null,
    s.forked_from ? el("span", { class: "badge" }, "fork") : null,
    s.diverged_from ? el("span", { class: "badge" }, "diverged copy") : null);
}

function snippetNode(text) {
  // The server wraps matched words in « and » (brackets in code stay plain
  // text); render them as <mark> text nodes, never through innerHTML.
  const node = el("div", { class: "snippet" });
  for (const p of text.split(/(«[^«»]*»)/)) {
    if (p.startsWith("«") && p.endsWith("»")) node.append(el("mark", {}, p.slice(1, -1)));
    else if (p) node.append(p);
  }
  return node;
}

function sessionItem(s, snippet) {
  const title = s.title || s.first_prompt || (s.encrypted ? "(encrypted session)" : "(no prompt yet)");
  return el("li", { onclick: () => { location.hash = "#s/" + encodeURIComponent(s.id); } },
    el("div", {}, badges(s), el("span", { class: "title" }, title)),
    el("div", { class: "meta" },
      [s.cwd, when(s.updated_at || s.started_at), `${s.user_turns} turns`, shortId(s.id)].filter(Boolean).join(" · ")),
    snippet ? snippetNode(snippet) : null);
}

async function loadList(reset) {
  show("list");
  if (reset) { $("sessions").replaceChildren(); state.cursor = null; }
  const q = state.q.trim();
  if (q) {
    $("list-title").textContent = `Search: ${q}`;
    const res = await api("/search?q=" + encodeURIComponent(q) + "&limit=100");
    const list = $("sessions");
    list.replaceChildren(...res.hits.map((h) => sessionItem(h.session, h.snippet)));
    if (!res.hits.length) list.append(el("li", {}, "No matches. Encrypted sessions cannot be searched."));
    $("more").hidden = true;
    return;
  }
  $("list-title").textContent = "Sessions";
  const res = await api("/sessions?limit=50" + (state.cursor ? "&cursor=" + state.cursor : ""));
  for (const s of res.sessions) $("sessions").append(sessionItem(s));
  if (reset && !res.sessions.length) {
    $("sessions").append(el("li", {}, "No sessions yet. Push some with `baton push`, or run `baton serve` on a machine with Codex or Claude Code sessions."));
  }
  state.cursor = res.next_cursor || null;
  $("more").hidden = !state.cursor;
}

function messageNode(m, results) {
  const label = m.kind === "prompt" ? "you" : m.kind === "reply" ? "assistant" : m.kind.replace("_", " ");
  if (m.kind === "tool_call") {
    const out = m.call_id ? results.get(m.call_id) : undefined;
    return el("div", { class: "msg tool" },
      el("div", { class: "who" }, "tool call · " + (m.tool_name || "tool")),
      el("pre", {}, m.text),
      out ? el("details", { open: "" }, el("summary", {}, "output"), el("pre", {}, out.text))
          : el("div", { class: "meta" }, "(no output recorded)"));
  }
  const who = el("div", { class: "who" }, label + (m.timestamp ? " · " + when(m.timestamp) : ""));
  if (m.kind === "context" || m.kind === "other") {
    // Harness-injected context is long and rarely read: collapsed, first line as summary.
    const first = m.text.split("\n", 1)[0].slice(0, 120);
    return el("div", { class: "msg " + m.kind }, who,
      el("details", {}, el("summary", {}, first), el("div", { class: "text" }, m.text)));
  }
  return el("div", { class: "msg " + m.kind }, who, el("div", { class: "text" }, m.text));
}

async function loadSession(id) {
  show("session");
  const root = $("session");
  root.replaceChildren(el("p", { class: "meta" }, "Loading…"));
  const res = await api("/sessions/" + encodeURIComponent(id) + "/messages");
  const s = res.session;
  const head = el("div", {},
    el("p", {}, el("a", { href: "#" }, "← all sessions")),
    el("h2", {}, badges(s), s.title || s.first_prompt || shortId(s.id)),
    el("div", { class: "meta" }, [s.id, s.cwd, when(s.started_at)].filter(Boolean).join(" · ")),
    el("div", { class: "meta" }, "streams: " + s.streams.map((st) => `${st.name} (${st.len} bytes)`).join(", ")));
  root.replaceChildren(head);
  const link = (other) => el("a", { href: "#s/" + encodeURIComponent(other) }, other);
  if (s.forked_from) root.append(el("div", { class: "lineage" }, "Forked from ", link(s.forked_from)));
  if (s.diverged_from) root.append(el("div", { class: "lineage" },
    "Diverged copy of ", link(s.diverged_from), ": the same session continued on another machine; both are kept."));
  if (res.encrypted) {
    root.append(el("div", { class: "notice" },
      "This session is end-to-end encrypted. The server stores and syncs its bytes but cannot read, index or render them. " +
      "Pull it with `baton pull` on a machine that holds the key."));
    return;
  }
  if (!res.messages.length) root.append(el("p", { class: "meta" }, "No messages yet (the server may still be indexing)."));
  const list = el("div", {});
  const footer = el("div", {});
  root.append(list, footer);
  renderPage(id, res, list, footer);
}

// Messages arrive in pages (`next_offset`); a tool result on a later page than
// its call is shown on its own.
function renderPage(id, res, list, footer) {
  const results = new Map();
  for (const m of res.messages) if (m.kind === "tool_result" && m.call_id) results.set(m.call_id, m);
  const paired = new Set();
  for (const m of res.messages) if (m.kind === "tool_call" && m.call_id && results.has(m.call_id)) paired.add(m.call_id);
  for (const m of res.messages) {
    if (m.kind === "tool_result" && m.call_id && paired.has(m.call_id)) continue;
    list.append(messageNode(m, results));
  }
  footer.replaceChildren();
  if (res.skipped_lines) footer.append(el("p", { class: "meta" }, `${res.skipped_lines} unreadable line(s) skipped so far.`));
  if (res.next_offset != null) {
    const more = el("button", {}, "More messages");
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        const next = await api("/sessions/" + encodeURIComponent(id) + "/messages?offset=" + res.next_offset);
        renderPage(id, next, list, footer);
      } catch (e) {
        more.disabled = false;
        footer.append(el("p", { class: "error" }, "Error: " + e.message));
      }
    });
    footer.append(more);
  }
}

async function route() {
  const m = location.hash.match(/^#token=(.+)$/);
  if (m) {
    localStorage.setItem("baton-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  if (!token()) return showLogin();
  try {
    const me = await api("/me");
    $("who").textContent = me.user;
    $("logout").hidden = false;
    const s = location.hash.match(/^#s\/(.+)$/);
    if (s) await loadSession(decodeURIComponent(s[1]));
    else await loadList(true);
  } catch (e) {
    if (e.message !== "unauthorized") {
      show("session");
      $("session").replaceChildren(el("p", { class: "error" }, "Error: " + e.message));
    }
  }
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem("baton-token", $("token").value.trim());
  route();
});
$("logout").addEventListener("click", () => { localStorage.removeItem("baton-token"); showLogin(); });
$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.q = $("q").value;
  if (location.hash) location.hash = ""; else loadList(true).catch(() => {});
});
$("more").addEventListener("click", () => loadList(false).catch(() => {}));
window.addEventListener("hashchange", route);
route();
