/**
 * One headless chromium page, driven over stdin/stdout: each line in is a
 * JSON command, each line out the JSON answer to it, `{"value": ...}` or
 * `{"error": "..."}`; the first line out is `{"ready": true}` once the page
 * is open. Closing stdin closes the browser.
 *
 * Usage: drive.ts <chromium executable> [<width>x<height>]
 *
 * It runs as a child of the browser tests and of `deno task screenshot`
 * (see tests/cli/_chromium.ts), with the deno.json beside it, which is the
 * only place playwright-core is named, and its own lock file: Deno fetches
 * every package the project's deno.lock lists on the first `deno task run`,
 * so the runtime and the image would otherwise download a test tool.
 */
import { chromium } from "playwright-core";
import type { Command } from "./command.ts";

const [executablePath, size] = Deno.args;
if (!executablePath) throw new Error("usage: drive.ts <chromium executable> [<width>x<height>]");
const [width, height] = (size ?? "1280x720").split("x").map(Number);

const browser = await chromium.launch({
  executablePath,
  // Root in a container has no user namespace for the sandbox.
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width, height } });

  const run = async (c: Command): Promise<unknown> => {
    switch (c.op) {
      case "goto":
        await page.goto(c.url);
        return null;
      case "text":
        return await page.textContent(c.selector);
      case "count":
        return await page.locator(c.selector).count();
      case "attribute":
        return await page.getAttribute(c.selector, c.name);
      case "attributes":
        return await page.locator(c.selector).evaluateAll(
          (nodes, name) => nodes.map((n) => n.getAttribute(name)),
          c.name,
        );
      case "waitFor":
        await page.locator(c.selector).first().waitFor();
        return null;
      case "fill":
        await page.fill(c.selector, c.value);
        return null;
      case "click":
        await page.click(c.selector);
        return null;
      case "screenshot":
        await page.screenshot({ path: c.path, fullPage: c.fullPage });
        return null;
      default:
        throw new Error(`unknown command ${JSON.stringify(c)}`);
    }
  };

  const out = Deno.stdout.writable.getWriter();
  const encoder = new TextEncoder();
  const answer = (line: unknown) => out.write(encoder.encode(JSON.stringify(line) + "\n"));
  await answer({ ready: true });
  let buffered = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      try {
        await answer({ value: await run(JSON.parse(line)) });
      } catch (error) {
        await answer({ error: error instanceof Error ? error.message : String(error) });
      }
    }
  }
} finally {
  await browser.close();
}
