// Browser checks of the web UI, driven by the Rust test
// crates/baton/tests/web_ui.rs against a running `baton serve` on the
// fixture homes plus a few pushed sessions. Headless Debian chromium through
// playwright-core. Environment: BATON_URL, BATON_TOKEN, BATON_WORD (a word
// of a fixture tool output), BATON_SCREENSHOTS (directory). Exits non-zero
// naming the first failed check.
import { launchChromium } from "./browser.mjs";
import { mkdirSync } from "node:fs";
import { strict as assert } from "node:assert";

const base = process.env.BATON_URL;
const token = process.env.BATON_TOKEN;
const word = process.env.BATON_WORD;
const shots = process.env.BATON_SCREENSHOTS;
mkdirSync(shots, { recursive: true });

const browser = await launchChromium();
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** A context that logs every request leaving the server's origin and every page error. */
async function context(opts = {}) {
  const ctx = await browser.newContext({ viewport: DESKTOP, ...opts });
  ctx.outside = [];
  ctx.errors = [];
  ctx.on("request", (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith("data:")) ctx.outside.push(r.url());
  });
  ctx.on("page", (p) => {
    p.on("pageerror", (e) => ctx.errors.push(String(e)));
    p.on("dialog", (d) => { ctx.errors.push("dialog opened: " + d.message()); void d.dismiss(); });
  });
  return ctx;
}

async function api(path, init = {}) {
  const res = await fetch(base + "/api/v1" + path, { ...init, headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" } });
  return res.json();
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
    await browser.close();
    process.exit(1);
  }
}

/**
 * Poll `fn(arg)` in the page until it is truthy (10 s at most). Playwright's
 * waitForFunction evaluates strings, which the UI's CSP (rightly) forbids.
 */
async function until(page, fn, arg) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + fn.toString());
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Milliseconds until the page answers a frame: how responsive it is now. */
async function frameDelay(page) {
  return page.evaluate(() => new Promise((r) => { const t = performance.now(); requestAnimationFrame(() => r(performance.now() - t)); }));
}

const ctx = await context();
const page = await ctx.newPage();

await step("log in with a token", async () => {
  await page.goto(base + "/");
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForSelector("ul.sessions li.row");
  assert.equal(await page.locator("#who").textContent(), "local");
});

await step("the list shows the fixture sessions newest first", async () => {
  const listed = await api("/sessions?limit=100");
  const times = listed.sessions.map((s) => s.updated_at ?? "");
  assert.deepEqual([...times].sort().reverse(), times, "API order is newest updated_at first");
  const hrefs = await page.locator("ul.sessions li.row > a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  assert.deepEqual(hrefs, listed.sessions.map((s) => "/s/" + encodeURIComponent(s.id)));
  assert.ok(hrefs.length >= 7, `${hrefs.length} rows`);
});

await step("keyboard: j focuses the first row, k goes back", async () => {
  await page.locator("body").press("j");
  await page.locator("body").press("j");
  const second = await page.evaluate(() => document.activeElement?.getAttribute("href"));
  await page.keyboard.press("k");
  const first = await page.evaluate(() => document.activeElement?.getAttribute("href"));
  const hrefs = await page.locator("ul.sessions li.row > a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  assert.deepEqual([first, second], hrefs.slice(0, 2));
});

await step("a filter narrows the list, with counts, and lives in the URL", async () => {
  const before = await page.locator("ul.sessions li.row").count();
  await page.waitForSelector("#f-agent option[value=claude]", { state: "attached" });
  const label = await page.locator("#f-agent option[value=claude]").textContent();
  assert.match(label, /claude \(\d+\)/);
  await page.selectOption("#f-agent", "claude");
  await page.waitForURL(/agent=claude/);
  // The new rows are in once every row is a claude session and there are fewer.
  await until(page, (n) => {
    const rows = document.querySelectorAll("ul.sessions li.row");
    return rows.length > 0 && rows.length < n && Array.from(rows).every((r) => r.querySelector(".badge.claude"));
  }, before);
  await page.goBack();
  await until(page, (n) => document.querySelectorAll("ul.sessions li.row").length === n, before);
});

let searchUrl = "";
await step(`/search?q=${word} finds a tool output and a click opens the transcript at that message`, async () => {
  await page.goto(base + "/search?q=" + encodeURIComponent(word));
  await page.waitForSelector("#results li.row");
  assert.match(await page.locator("#results li.row .snippet mark").first().textContent(), new RegExp(word, "i"));
  assert.match(await page.locator("#results .hits").first().textContent(), /\d+ match/);
  await page.locator("#results li.row > a").first().click();
  await page.waitForURL(/\/s\/[^#]+#m\d+$/);
  searchUrl = page.url();
  const n = /#m(\d+)$/.exec(searchUrl)[1];
  const target = page.locator(`article:has(#m${n}), article#m${n}`).first();
  await target.waitFor();
  assert.ok(await target.evaluate((el) => el.classList.contains("target")));
  await until(page, (w) => document.querySelector("article.target")?.textContent.toLowerCase().includes(w.toLowerCase()), word);
  const box = await target.boundingBox();
  assert.ok(box && box.y < DESKTOP.height && box.y + box.height > 0, "the message is on screen");
});

await step("search as you type puts the query in the URL", async () => {
  await page.goto(base + "/");
  await page.getByLabel("Search").fill(word.slice(0, 4) + "*");
  await page.waitForURL(/\/search\?q=/);
  await page.waitForSelector("#results li.row");
  assert.equal(await page.locator("input[type=search]#q").count(), 1);
});

await step("a tool call expands to its arguments and output", async () => {
  await page.goto(searchUrl.replace(/#.*/, ""));
  const call = page.locator("details.tool-call").first();
  await call.waitFor();
  assert.equal(await call.evaluate((d) => d.open), false, "collapsed to a summary");
  await call.locator("summary").click();
  await call.locator(".label", { hasText: "output" }).waitFor();
  assert.ok((await call.locator(".output pre").textContent()).length > 0);
});

await step("Markdown renders: a table and a highlighted code block with a copy button", async () => {
  await page.goto(base + "/s/md-session");
  await page.waitForSelector("#transcript .md table");
  assert.equal(await page.locator("#transcript .md table th").first().textContent(), "tool");
  await page.locator("#transcript .md pre code.hljs").first().waitFor();
  assert.ok(await page.locator("#transcript .md pre code .hljs-keyword").count() > 0, "highlighted");
  assert.ok(await page.locator("#transcript button.copy").count() > 0);
  assert.equal(await page.locator("#resume-cmd").textContent(), "baton resume md-session");
});

let forkId = "";
await step("fork here creates a fork that appears in the list and in the lineage graph", async () => {
  await page.goto(base + "/s/md-session");
  await page.locator("article.prompt button.fork").first().click();
  await page.waitForURL((u) => /\/s\//.test(u.pathname) && !u.pathname.endsWith("/md-session"));
  forkId = decodeURIComponent(new URL(page.url()).pathname.slice(3));
  await page.waitForSelector(".lineage a[href='/s/md-session']");
  assert.match(await page.locator("#resume-cmd").textContent(), new RegExp(forkId));
  await page.goto(base + "/");
  await page.waitForSelector(`ul.sessions li.row > a[href='/s/${forkId}']`);
  await page.goto(base + "/s/md-session");
  await page.waitForSelector(`.lineage a[href='/s/${forkId}']`);
});

let shareUrl = "";
await step("a share link opens the session without a token, shows nothing else, and stops after revocation", async () => {
  await page.goto(base + "/s/md-session");
  await page.locator("#share-create").click();
  shareUrl = await page.locator("input.share-url").inputValue();
  assert.match(shareUrl, /\/share\/[0-9a-f]+$/);
  const stranger = await context();
  const sp = await stranger.newPage();
  await sp.goto(shareUrl);
  await sp.waitForSelector("#transcript .md table");
  assert.equal(await sp.locator("#token").count(), 0, "no sign-in asked");
  assert.equal(await sp.locator("button.fork, #share-create, .lineage a, #resume-cmd").count(), 0, "nothing of the account");
  assert.equal(await sp.evaluate(() => localStorage.getItem("baton-token")), null);
  const status = await sp.evaluate(async () => (await fetch("/api/v1/sessions")).status);
  assert.equal(status, 401, "the link opens no other route");
  await page.locator("button.revoke").first().click();
  await page.locator(".share .created", { hasText: "revoked" }).waitFor();
  await sp.reload();
  await sp.locator("[role=alert]", { hasText: "revoked" }).waitFor();
  await stranger.close();
});

await step("hostile transcript content renders inert", async () => {
  await page.goto(base + "/s/xss-session");
  await page.waitForSelector("#transcript .msg.reply");
  for (const d of await page.locator("#transcript details").all()) await d.locator("summary").first().click();
  await page.locator("#transcript a", { hasText: "click me" }).first().click({ noWaitAfter: true }).catch(() => undefined);
  await page.waitForTimeout(300);
  const found = await page.evaluate(() => ({
    flag: window.__pwned ?? null,
    scripts: document.querySelectorAll("#transcript script").length,
    handlers: Array.from(document.querySelectorAll("#transcript *")).filter((el) => Array.from(el.attributes).some((a) => a.name.startsWith("on"))).length,
    jsLinks: Array.from(document.querySelectorAll("#transcript a")).filter((a) => /^\s*javascript:/i.test(a.getAttribute("href") ?? "")).length,
    frames: document.querySelectorAll("#transcript iframe, #transcript object, #transcript embed, #transcript form, #transcript style").length,
    remoteImgs: Array.from(document.querySelectorAll("#transcript img")).filter((i) => i.getAttribute("src") && !i.getAttribute("src").startsWith("data:")).length,
    text: document.querySelector("#transcript").textContent,
  }));
  assert.deepEqual({ ...found, text: undefined }, { flag: null, scripts: 0, handlers: 0, jsLinks: 0, frames: 0, remoteImgs: 0, text: undefined });
  assert.ok(found.text.includes("<script>window.__pwned=1</script>"), "a tool output shows the raw HTML as text");
  assert.deepEqual(ctx.outside, [], "no request left the server");
  assert.deepEqual(ctx.errors, [], "no dialog or page error");
});

await step("a 10 MB tool output stays responsive", async () => {
  const t0 = Date.now();
  await page.goto(base + "/s/huge-output");
  await page.waitForSelector("#transcript details.tool-call");
  const open = Date.now() - t0;
  await page.locator("#transcript details.tool-call summary").first().click();
  await page.locator("button.show-all").waitFor();
  const delay = await frameDelay(page);
  const len = await page.locator("#transcript .output pre").first().evaluate((p) => p.textContent.length);
  assert.ok(len <= 20_000, `preview is ${len} chars`);
  console.log(`     opened in ${open} ms, next frame after expanding: ${delay.toFixed(0)} ms`);
  assert.ok(open < 5000 && delay < 200, `open ${open} ms, frame ${delay} ms`);
});

await step("a 5,000-turn session stays responsive: first screen, jump to latest, j/k", async () => {
  const t0 = Date.now();
  await page.goto(base + "/s/long-session");
  await page.waitForSelector("#transcript article.prompt");
  const first = Date.now() - t0;
  const t1 = Date.now();
  await page.locator("#jump-latest").click();
  await page.waitForSelector("#transcript article#m9999");
  const jump = Date.now() - t1;
  assert.ok(await page.locator("#m9999").isVisible());
  await page.locator("body").press("k");
  const focused = await page.evaluate(() => document.activeElement?.id);
  assert.match(focused, /^m\d+$/);
  const delay = await frameDelay(page);
  console.log(`     first screen ${first} ms, jump to latest ${jump} ms, frame ${delay.toFixed(0)} ms`);
  assert.ok(first < 5000 && jump < 5000 && delay < 200);
});

await step("stats render as charts", async () => {
  await page.goto(base + "/stats");
  await page.waitForSelector("figure.chart svg rect");
  assert.ok(await page.locator("figure.chart").count() >= 3);
});

await step("screenshots of each view at desktop and phone width, light and dark", async () => {
  const views = [
    ["login", "/", false],
    ["list", "/", true],
    ["session", "/s/md-session", true],
    ["search", "/search?q=" + encodeURIComponent(word), true],
    ["stats", "/stats", true],
    ["long-session", "/s/long-session", true],
  ];
  const share = await api("/sessions/md-session/shares", { method: "POST", body: JSON.stringify({ expires_in_hours: 1 }) });
  views.push(["share", "/share/" + share.token, false]);
  const written = [];
  for (const [width, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    for (const scheme of ["light", "dark"]) {
      const c = await browser.newContext({ viewport, colorScheme: scheme });
      for (const [name, path, signedIn] of views) {
        const p = await c.newPage();
        if (signedIn) await p.addInitScript((t) => localStorage.setItem("baton-token", t), token);
        await p.goto(base + path);
        await p.waitForSelector(name === "login" ? "#token" : name === "stats" ? "figure.chart" : name === "list" ? "li.row" : name === "search" ? "#results li" : "#transcript");
        await p.waitForTimeout(150);
        const file = `${shots}/${name}-${width}-${scheme}.png`;
        await p.screenshot({ path: file });
        written.push(file);
        if (width === "phone") {
          const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(overflow <= 1, `${name} overflows the phone width by ${overflow}px`);
        }
        await p.close();
      }
      await c.close();
    }
  }
  console.log("     " + written.join("\n     "));
});

await browser.close();
console.log("ui: all checks passed");
