/**
 * Runs a command line in a real pseudo-terminal, through script(1) from
 * util-linux, the way a person's shell would: the command is the
 * terminal's foreground process group, so a typed ^C (byte 3) reaches every
 * process of it, `deno task` and the deno it starts alike, as it does when
 * someone presses Ctrl-C.
 */
export interface Terminal {
  /** Types text into the terminal (`"\x03"` is Ctrl-C, `"y\n"` an answer). */
  type(text: string): Promise<void>;
  /** Everything the terminal showed (stdout and stderr, with `\r\n` line ends) and the exit code. */
  done: Promise<{ code: number; text: string }>;
}

/** Whether script(1) is here: tests that need a terminal are ignored, saying so, without it. */
export const haveScript: boolean = await new Deno.Command("script", { args: ["--version"] })
  .output().then((o) => o.success, () => false);
if (!haveScript) console.warn("script (util-linux) is not on PATH: terminal tests are ignored");

/**
 * Starts `command` (a shell command line, run by `exec` so no shell waits
 * in between and its exit code is the command's) in a fresh terminal.
 */
export function inTerminal(
  command: string,
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Terminal {
  const child = new Deno.Command("script", {
    // -q: no banner; -e: script's exit code is the command's; -f: flush at once.
    args: ["-qefc", `exec ${command}`, "/dev/null"],
    cwd: opts.cwd,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const text = new Response(child.stdout).text();
  const errors = new Response(child.stderr).text();
  // stdin stays open until the command ends: at its end script(1) would
  // pass an end of file to the terminal.
  const done = (async () => {
    const status = await child.status;
    await writer.close().catch(() => {});
    return { code: status.code, text: (await text) + (await errors) };
  })();
  return { type: (t) => writer.write(new TextEncoder().encode(t)), done };
}

/** Waits until `path` has bytes in it (at most `tries` × 50 ms): the run is under way. */
export async function untilWritten(path: string, tries = 600): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await Deno.stat(path).then((s) => s.size > 0, () => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path} stayed empty`);
}
