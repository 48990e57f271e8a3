/**
 * Debian's chromium for the dashboard's browser tests, driven through
 * playwright-core in a child process (tests/browser/drive.ts) with a
 * deno.json and lock file of its own: test-only packages must stay out of
 * the project's lock file, whose every package Deno downloads on the first
 * `deno task run`. Missing chromium: the tests are ignored with a printed
 * reason, except in CI (CI=true), where they fail.
 */
import { fileURLToPath } from "node:url";
import type { Command } from "../browser/command.ts";

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

/** A page of headless chromium in tests/browser/drive.ts; selectors are playwright's. */
export class Page {
  readonly #child: Deno.ChildProcess;
  readonly #input: WritableStreamDefaultWriter<Uint8Array>;
  readonly #output: ReadableStreamDefaultReader<string>;
  #buffered = "";

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#input = child.stdin.getWriter();
    this.#output = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Launches chromium with one page of `width`x`height`. */
  static async open({ width = 1280, height = 720 } = {}): Promise<Page> {
    if (!chromiumPath) throw new Error("chromium is not installed");
    const dir = new URL("../browser/", import.meta.url);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--config",
        fileURLToPath(new URL("deno.json", dir)),
        "--lock",
        fileURLToPath(new URL("deno.lock", dir)),
        // playwright-core spawns chromium, writes its profile to a temporary
        // directory, and probes /proc/sys as it loads.
        "--allow-all",
        fileURLToPath(new URL("drive.ts", dir)),
        chromiumPath,
        `${width}x${height}`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const page = new Page(child);
    try {
      await page.#line();
    } catch (error) {
      await page.close();
      throw error;
    }
    return page;
  }

  /** The next line the driver printed, parsed. */
  async #line(): Promise<{ value?: unknown; error?: string }> {
    while (!this.#buffered.includes("\n")) {
      const { value, done } = await this.#output.read();
      if (done) throw new Error("the browser driver (tests/browser/drive.ts) exited");
      this.#buffered += value;
    }
    const end = this.#buffered.indexOf("\n");
    const line = this.#buffered.slice(0, end);
    this.#buffered = this.#buffered.slice(end + 1);
    return JSON.parse(line);
  }

  async #send(command: Command): Promise<unknown> {
    await this.#input.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    const answer = await this.#line();
    if (answer.error !== undefined) throw new Error(`${command.op}: ${answer.error}`);
    return answer.value;
  }

  async goto(url: string): Promise<void> {
    await this.#send({ op: "goto", url });
  }
  /** The text of the first match, once there is one. */
  async textContent(selector: string): Promise<string | null> {
    return await this.#send({ op: "text", selector }) as string | null;
  }
  /** How many elements match now. */
  async count(selector: string): Promise<number> {
    return await this.#send({ op: "count", selector }) as number;
  }
  /** An attribute of the first match, once there is one. */
  async getAttribute(selector: string, name: string): Promise<string | null> {
    return await this.#send({ op: "attribute", selector, name }) as string | null;
  }
  /** An attribute of every element that matches now, in document order. */
  async attributes(selector: string, name: string): Promise<(string | null)[]> {
    return await this.#send({ op: "attributes", selector, name }) as (string | null)[];
  }
  /** Resolves once something matches. */
  async waitFor(selector: string): Promise<void> {
    await this.#send({ op: "waitFor", selector });
  }
  async fill(selector: string, value: string): Promise<void> {
    await this.#send({ op: "fill", selector, value });
  }
  async click(selector: string): Promise<void> {
    await this.#send({ op: "click", selector });
  }
  async screenshot(path: string, { fullPage = false } = {}): Promise<void> {
    await this.#send({ op: "screenshot", path, fullPage });
  }

  /** Closes the browser and waits for the driver to exit. */
  async close(): Promise<void> {
    await this.#input.close().catch(() => {});
    await this.#output.cancel();
    await this.#child.status;
  }
}

/** A Deno.test that needs chromium (see the module comment for when it is ignored). */
export function browserTest(name: string, fn: (page: Page) => Promise<void>): void {
  Deno.test({
    name,
    ignore: !chromiumPath && !inCI,
    fn: async () => {
      if (!chromiumPath) throw new Error("chromium is not installed, and CI=true requires it");
      const page = await Page.open();
      try {
        await fn(page);
      } finally {
        await page.close();
      }
    },
  });
}
