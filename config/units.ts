import { z } from "zod";
import { checkContext } from "./check_context.ts";

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const DURATION_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const BYTES = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?$/i;
const BYTES_MUL = {
  b: 1,
  kb: 1_000,
  mb: 1_000_000,
  gb: 1_000_000_000,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
} as const;

/** "250ms", "2s", "5m", "24h", "7d" or a number of milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = DURATION.exec(value.trim());
  return m ? Number(m[1]) * DURATION_MS[m[2] as keyof typeof DURATION_MS] : undefined;
}

/** "512kb", "4MiB", or a number of bytes. */
export function parseBytes(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = BYTES.exec(value.trim());
  if (!m) return undefined;
  return Math.floor(
    Number(m[1]) * BYTES_MUL[(m[2] ?? "b").toLowerCase() as keyof typeof BYTES_MUL],
  );
}

/** The zod type `duration()` and `bytes()` return: a string or a number in, a number out. */
export type NumberField = z.ZodPipe<
  z.ZodUnion<readonly [z.ZodString, z.ZodNumber]>,
  z.ZodTransform<number, string | number>
>;

/**
 * The longest wait one timer holds (setTimeout's 2^31 - 1 ms, about 24.8
 * days): a longer one fires at once, with only a warning.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A zod field for durations; parses to milliseconds. A flow file must give
 * a unit (`every: 5` would be 5 ms, which nobody means): a bare number there
 * is refused. Code (defineFlow, a schema parsed directly) may pass a number
 * of milliseconds. `positive` refuses zero where it makes no sense (a poll
 * interval of 0 polls in a tight loop, a timeout of 0 always fails).
 * Durations are timers' (a timeout, a wait) unless `long` says the field is
 * an age compared with clocks (a ttl, a retention) or waited for in parts:
 * a timer's above MAX_TIMER_MS is refused, as `timeout: 25d` made every
 * fetch fail at once.
 */
export const duration = (opts: { positive?: boolean; long?: boolean } = {}): NumberField =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    // Zero is zero in any unit; a negative number is refused below as it is.
    if (typeof v === "number" && v > 0 && checkContext()?.fromFile) {
      ctx.addIssue({ code: "custom", message: `give a unit, e.g. ${v}s or ${v}ms` });
      return z.NEVER;
    }
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `expected a duration such as 500ms, 2s, 5m or 24h, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    if (opts.positive && ms === 0) {
      ctx.addIssue({
        code: "custom",
        message: `expected a duration above zero such as 500ms, 2s or 5m, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    if (!opts.long && ms > MAX_TIMER_MS) {
      ctx.addIssue({
        code: "custom",
        message: `expected at most 24d (the longest a timer waits), got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return ms;
  });

/** A zod field for sizes in flow files; parses to bytes. */
export const bytes = (): NumberField =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const n = parseBytes(v);
    if (n === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `expected a size such as 4096, 512kb or 4MiB, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return n;
  });
