// Web UI speed on a 10k-session corpus, measured in headless Chromium:
// first list page rendered after navigation, search results after the last
// keystroke, and a 5,000-turn session's first screen. Each UI figure is
// printed next to its baseline from the same run: the API call alone.
// Targets (issue 10): list ≤ 300 ms, search ≤ 300 ms, session ≤ 500 ms.
// Usage: node web/bench/ui-bench.mjs BATON_BINARY [SESSIONS]  (scripts/bench-web)
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchChromium } from "../tests/browser.mjs";

const [baton, count = "10000"] = process.argv.slice(2);
const sessions = Number(count);
const home = mkdtempSync(join(tmpdir(), "baton-ui-bench-"));
const env = { ...process.env, BATON_HOME: join(home, "baton"), CODEX_HOME: join(home, "codex"), CLAUDE_CONFIG_DIR: join(home, "claude") };
const token = JSON.parse(execFileSync(baton, ["serve", "user", "add", "bench", "--json"], { env })).token;
const server = spawn(baton, ["serve", "--listen", "127.0.0.1:0", "--no-catalog"], { env, stdio: ["ignore", "ignore", "pipe"] });
const base = await new Promise((resolve, reject) => {
  let err = "";
  server.stderr.on("data", (d) => {
    err += d;
    const m = /listening on (http:\/\/\S+)/.exec(err);
    if (m) resolve(m[1]);
  });
  server.on("exit", () => reject(new Error("baton serve exited: " + err)));
});
const cleanup = () => { server.kill(); rmSync(home, { recursive: true, force: true }); };
process.on("exit", cleanup);

const auth = { Authorization: "Bearer " + token };
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const line = (i, day, payload) => JSON.stringify({ timestamp: `2026-${day}T10:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}.000Z`, type: "response_item", payload }) + "\n";
const msg = (i, day, role, text) => line(i, day, { type: "message", role, content: [{ type: role === "user" ? "input_text" : "output_text", text }] });

async function push(id, bytes, cwd) {
  const url = `${base}/api/v1/sessions/${id}`;
  let r = await fetch(url, { method: "PUT", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ agent: "codex", cwd }) });
  if (!r.ok) throw new Error(`PUT ${id}: ${r.status}`);
  r = await fetch(url + "/streams/main", { method: "POST", headers: { ...auth, "Baton-Offset": "0", "Baton-Prefix-Sha256": EMPTY }, body: bytes });
  if (!r.ok) throw new Error(`push ${id}: ${r.status}`);
}

const t0 = Date.now();
const words = ["parser", "deploy", "migration", "flaky", "cache", "refactor", "latency", "schema"];
let next = 0;
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next < sessions) {
    const i = next++;
    const day = `${String(1 + (i % 12)).padStart(2, "0")}-${String(1 + (i % 28)).padStart(2, "0")}`;
    const w = words[i % words.length];
    const bytes = msg(0, day, "user", `Fix the ${w} issue number ${i} in module m${i % 97}`) + msg(1, day, "assistant", `Looked at the ${w} code; the fix for ${i} is ready.`)
      + msg(2, day, "user", "Now add a test") + msg(3, day, "assistant", `Added a test for the ${w} fix.`);
    await push(`bench-${i}`, bytes, `/srv/project-${i % 40}`);
  }
}));
let long = "";
for (let i = 0; i < 5000; i++) long += msg(2 * i, "12-30", "user", `Turn ${i}: next step?`) + msg(2 * i + 1, "12-30", "assistant", `Step ${i} done; **next** we check item ${i}.`);
await push("bench-long", long, "/srv/long");
console.log(`corpus: ${sessions} sessions + one of 5,000 turns pushed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// Wait for the indexer: the last session is searchable and the long one counted.
for (;;) {
  const hits = await (await fetch(`${base}/api/v1/search?q=${encodeURIComponent(`"${sessions - 1}"`)}`, { headers: auth })).json();
  const longInfo = await (await fetch(`${base}/api/v1/sessions/bench-long`, { headers: auth })).json();
  if (hits.hits?.length && longInfo.message_count === 10000) break;
  await new Promise((r) => setTimeout(r, 500));
}
console.log(`indexed after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const apiTime = async (path) => {
  const t = performance.now();
  await (await fetch(base + "/api/v1" + path, { headers: auth })).json();
  return performance.now() - t;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await launchChromium();
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
await ctx.addInitScript((t) => localStorage.setItem("baton-token", t), token);
const page = await ctx.newPage();
const RUNS = 5;
const figures = { list: [], search: [], session: [], apiList: [], apiSearch: [], apiSession: [] };
for (let run = 0; run < RUNS + 1; run++) {
  const t1 = Date.now();
  await page.goto(base + "/");
  await page.waitForSelector("ul.sessions li.row");
  const list = Date.now() - t1;
  await page.locator("#q").click();
  const word = words[run % words.length];
  await page.keyboard.type(word.slice(0, -1), { delay: 30 });
  await page.keyboard.type(word.slice(-1));
  const t2 = Date.now();
  await page.waitForSelector(`#results li.row .snippet mark`);
  await page.locator(`h1`, { hasText: `Search: ${word}` }).waitFor();
  const search = Date.now() - t2;
  const t3 = Date.now();
  await page.goto(base + "/s/bench-long");
  await page.waitForSelector("#transcript article.prompt");
  const session = Date.now() - t3;
  if (run === 0) continue; // warm-up
  figures.list.push(list); figures.search.push(search); figures.session.push(session);
  figures.apiList.push(await apiTime("/sessions?limit=50"));
  figures.apiSearch.push(await apiTime(`/search?q=${word}&limit=50`));
  figures.apiSession.push(await apiTime("/sessions/bench-long/messages?limit=200"));
}
await browser.close();
const row = (name, ui, apiFig, target) => {
  const m = median(ui);
  console.log(`${name.padEnd(44)} ${String(m).padStart(5)} ms (target ≤ ${target} ms, ${m <= target ? "met" : "MISSED"})   baseline, API call alone: ${median(apiFig).toFixed(0)} ms`);
  return m <= target;
};
console.log(`median of ${RUNS} runs on ${sessions} sessions:`);
const ok = [
  row("first list page rendered after navigation", figures.list, figures.apiList, 300),
  row("search results after the last keystroke", figures.search, figures.apiSearch, 300),
  row("5,000-turn session, first screen", figures.session, figures.apiSession, 500),
].every(Boolean);
process.exitCode = ok ? 0 : 1;
