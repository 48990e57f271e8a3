import { errorMessage, FlowEndingError } from "../errors.ts";

/**
 * Redis's answers when an ACL user lacks a right: a command or key refused
 * (NOPERM), or a key refused to a script, which Redis words as an ERR.
 */
const NO_RIGHT = /\bNOPERM\b|can't access at least one of the keys|can't run this command/;

/** Whether Redis refused `error`'s call for a right its user lacks (in it or what it wraps). */
export function isNoPermission(error: unknown, depth = 0): boolean {
  if (depth > 8 || !(error instanceof Error)) return false;
  if (error instanceof RedisRefusedError || NO_RIGHT.test(error.message)) return true;
  return isNoPermission(error.cause, depth + 1);
}

/**
 * A right the flow's Redis user lacks: no wait mends it, and every item
 * would meet it alike, so the run ends (FlowEndingError) rather than pause
 * for ever behind "pausing until Redis answers" or send each item to dead
 * letters. A durable flow's items stay pending for a run with the right.
 */
export class RedisRefusedError extends FlowEndingError {
  /**
   * `what` is the call refused (`the commit`), `who` what made it, as the
   * flow's lines name it (`demo/validate`), if known.
   */
  constructor(what: string, cause: unknown, who?: string) {
    super(
      `${who ? `${who}: ` : ""}Redis refused this flow's user ${what} (${
        errorMessage(cause).split("\n")[0]
      }): no wait mends a missing right; give the user the flow's keys and the commands a ` +
        `flow runs (README, "Operating durable flows": ACL users), or use another user`,
      { cause },
    );
    this.name = "RedisRefusedError";
  }
}
