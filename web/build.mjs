// Bundles src/main.ts (and the CSS it imports) into dist/app.js and
// dist/app.css, which the server embeds. `node build.mjs --check` builds in
// memory and fails when the committed dist/ differs from the sources.
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");
const result = await esbuild.build({
  entryPoints: [join(here, "src/main.ts")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  legalComments: "eof",
  outdir: join(here, "dist"),
  entryNames: "app",
  write: false,
  logLevel: "warning",
});
let stale = [];
for (const file of result.outputFiles) {
  if (check) {
    let committed = "";
    try { committed = readFileSync(file.path, "utf8"); } catch { /* missing counts as stale */ }
    if (committed !== file.text) stale.push(file.path);
  } else {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, file.text);
  }
}
if (stale.length) {
  console.error(`web: the committed bundle is out of date with web/src: ${stale.join(", ")}\nweb: run scripts/build-web and commit web/dist/`);
  process.exit(1);
}
console.error(check ? "web: dist/ is up to date" : "web: wrote dist/app.js and dist/app.css");
