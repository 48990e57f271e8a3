import { UsageError } from "./args.ts";

/** Asks a yes/no question; true only for a yes. */
export type Confirm = (question: string) => Promise<boolean>;

/**
 * The go-ahead of a command that deletes (`reset`, `dlq purge`): `--yes`
 * gives it; on a terminal the person is asked, and only y or yes (any case)
 * goes ahead; with neither (a script, a pipe, cron) the command refuses
 * before it touches anything, saying to add --yes, rather than delete
 * unasked or wait for an answer nobody can type.
 */
export function confirmer(yes: boolean, command: string, what: string): Confirm {
  if (yes) return () => Promise.resolve(true);
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError(
      `${command} deletes ${what}, and there is no terminal to ask on (stdin is not one): ` +
        `add --yes to delete without asking`,
    );
  }
  return ask;
}

/** Prints `question [y/N]` on stderr (stdout is for results) and reads one line of stdin. */
async function ask(question: string): Promise<boolean> {
  await writeAll(Deno.stderr, new TextEncoder().encode(`${question} [y/N] `));
  const answer = await readLine(Deno.stdin);
  return /^\s*y(es)?\s*$/i.test(answer ?? "");
}

/** One line (without its end); undefined at end of input before any text. Reads at most 4 KiB. */
async function readLine(input: { read(p: Uint8Array): Promise<number | null> }) {
  const buf = new Uint8Array(4096);
  let text = "";
  for (;;) {
    const n = await input.read(buf);
    if (n === null) return text === "" ? undefined : text;
    text += new TextDecoder().decode(buf.subarray(0, n));
    const end = text.indexOf("\n");
    if (end >= 0) return text.slice(0, end);
    if (text.length >= buf.length) return text;
  }
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  for (let off = 0; off < bytes.length;) off += await w.write(bytes.subarray(off));
}
