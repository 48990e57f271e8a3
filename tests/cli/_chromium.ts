/**
 * Debian's chromium for the dashboard's browser tests, driven through
 * playwright-core (a test-only package). Missing: the tests are ignored
 * with a printed reason, except in CI (CI=true), where they fail.
 */
import fs from "node:fs";
import type { Browser } from "playwright-core";

// playwright-core asks, as it loads, whether it runs under WSL by probing
// /proc/sys/fs/binfmt_misc/WSLInterop; Deno answers a probe of /proc/sys
// with NotCapable unless given --allow-all, which `deno task test` does not
// grant. Not being able to look means it is not there.
const existsSync = fs.existsSync;
fs.existsSync = (path: fs.PathLike) => {
  try {
    return existsSync(path);
  } catch {
    return false;
  }
};

function find(): string | undefined {
  for (const path of ["/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not here */ }
  }
  return undefined;
}

export const chromiumPath: string | undefined = Deno.env.get("CHROMIUM_PATH") ?? find();
const inCI = Deno.env.get("CI") === "true";
if (!chromiumPath && !inCI) {
  console.warn("chromium is not installed (apt-get install chromium): browser tests are ignored");
}

/** A Deno.test that needs chromium (see the module comment for when it is ignored). */
export function browserTest(name: string, fn: (browser: Browser) => Promise<void>): void {
  Deno.test({
    name,
    ignore: !chromiumPath && !inCI,
    fn: async () => {
      if (!chromiumPath) throw new Error("chromium is not installed, and CI=true requires it");
      const browser = await launch();
      try {
        await fn(browser);
      } finally {
        await browser.close();
      }
    },
  });
}

export async function launch(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return await chromium.launch({
    executablePath: chromiumPath,
    // Root in a container has no user namespace for the sandbox.
    args: ["--no-sandbox", "--disable-gpu"],
  });
}
