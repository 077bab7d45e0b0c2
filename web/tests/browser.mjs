// How the browser tests and the benchmark start Chromium: Debian's
// /usr/bin/chromium (installed by scripts/install-web), headless, with no
// background traffic.
import { chromium } from "playwright-core";

/** Launch headless Chromium (BATON_CHROMIUM overrides the path). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.BATON_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
}
