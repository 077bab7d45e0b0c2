// Safe rendering of transcript content: Markdown through marked and then
// DOMPurify (no script, no event handlers, no remote resources, no
// javascript: links), code highlighted by highlight.js, diffs and snippets
// built from text nodes only.
import { Marked } from "marked";
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import typescript from "highlight.js/lib/languages/typescript";
import yaml from "highlight.js/lib/languages/yaml";
import css from "highlight.js/lib/languages/css";
import xml from "highlight.js/lib/languages/xml";
import sql from "highlight.js/lib/languages/sql";

for (const [name, lang] of Object.entries({ bash, diff, go, javascript, json, python, rust, typescript, yaml, css, xml, sql })) {
  hljs.registerLanguage(name, lang);
}
hljs.registerAliases(["sh", "shell", "zsh", "console"], { languageName: "bash" });
hljs.registerAliases(["js", "jsx", "mjs"], { languageName: "javascript" });
hljs.registerAliases(["ts", "tsx"], { languageName: "typescript" });
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["rs"], { languageName: "rust" });
hljs.registerAliases(["yml"], { languageName: "yaml" });
hljs.registerAliases(["html", "svg"], { languageName: "xml" });
hljs.registerAliases(["patch"], { languageName: "diff" });

type Child = Node | string | null | undefined | false;

/** Create an element with attributes (event handlers for `on*` keys) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | ((e: Event) => void) | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = String(v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  append(node, children);
  return node;
}

/** Append children (strings as text nodes, never as HTML). */
export function append(node: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
}

const marked = new Marked({ gfm: true, breaks: false, async: false });

// Links open outside the app and never leak the page address; images may
// only be inline data (no remote loads, no tracking pixels).
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
  if (node.tagName === "IMG") {
    const src = node.getAttribute("src") ?? "";
    if (!src.startsWith("data:image/")) node.removeAttribute("src");
  }
});

const PURIFY = {
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed", "video", "audio", "source", "link", "meta", "base", "svg", "math"],
  FORBID_ATTR: ["style", "srcset", "action", "formaction", "background", "poster"],
  ALLOW_DATA_ATTR: false,
};

/** Longest text rendered as Markdown; longer text is shown as plain text. */
const MARKDOWN_MAX = 200_000;

/** Markdown `text` as a sanitized fragment, code blocks highlighted with a copy button. */
export function markdown(text: string): HTMLElement {
  const box = h("div", { class: "md" });
  if (text.length > MARKDOWN_MAX) {
    box.append(h("pre", { class: "plain" }, text));
    return box;
  }
  const html = marked.parse(text) as string;
  box.append(DOMPurify.sanitize(html, { ...PURIFY, RETURN_DOM_FRAGMENT: true }));
  for (const code of Array.from(box.querySelectorAll("pre > code"))) decorateCode(code as HTMLElement);
  return box;
}

/** Highlight a `<pre><code>` (its language from `language-X`) and add a copy button. */
function decorateCode(code: HTMLElement): void {
  const lang = /language-([\w+-]+)/.exec(code.className)?.[1];
  const text = code.textContent ?? "";
  if (lang && hljs.getLanguage(lang) && text.length < 100_000) {
    // highlight.js escapes the text it is given; its output is spans only.
    code.innerHTML = DOMPurify.sanitize(hljs.highlight(text, { language: lang }).value, { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"] });
    code.classList.add("hljs");
  }
  const pre = code.parentElement;
  if (pre) pre.before(copyButton(() => text, "Copy code"));
}

/** A button copying `text()` to the clipboard, confirming with "Copied". */
export function copyButton(text: () => string, label = "Copy"): HTMLButtonElement {
  const b = h("button", { type: "button", class: "copy", "aria-label": label }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      b.textContent = "Copied";
    } catch {
      b.textContent = "Select and copy";
    }
    setTimeout(() => (b.textContent = "Copy"), 1500);
  });
  return b;
}

/** A search snippet: the server marks matches as «…»; shown as <mark> text nodes. */
export function snippet(text: string): HTMLElement {
  const node = h("div", { class: "snippet" });
  for (const p of text.split(/(«[^«»]*»)/)) {
    if (p.startsWith("«") && p.endsWith("»")) node.append(h("mark", {}, p.slice(1, -1)));
    else if (p) node.append(p);
  }
  return node;
}

/** Lines of a unified diff or patch, coloured by their first character. */
export function diffView(lines: string[]): HTMLElement {
  const pre = h("pre", { class: "diff" });
  for (const line of lines) {
    const kind = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") || line.startsWith("***") ? "hunk" : "ctx";
    pre.append(h("span", { class: kind }, line + "\n"));
  }
  return pre;
}

/** Highlighted plain text in `lang`, or the text as is. */
export function codeBlock(text: string, lang?: string): HTMLElement {
  const code = h("code", {}, text);
  if (lang && hljs.getLanguage(lang) && text.length < 100_000) {
    code.innerHTML = DOMPurify.sanitize(hljs.highlight(text, { language: lang }).value, { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"] });
    code.classList.add("hljs");
  }
  return h("pre", {}, code);
}
