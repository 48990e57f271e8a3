import { errorMessage } from "./errors.ts";
import type { Envelope } from "./item.ts";

/** An item a stage could not or would not pass on, with why. */
export interface DeadLetter {
  /** The stage id that gave up on it. */
  stage: string;
  /** Why: a rejection's reason and detail, or the last error of a failure. */
  reason: string;
  /** Times a stage tried the item before giving up on it. */
  attempts: number;
  /** The item as the stage received it, so a replay puts it back unchanged. */
  item: Envelope<unknown>;
}

/** The reason an item JSON cannot hold is counted under where a Redis edge stops it. */
export const UNENCODABLE = "cannot be passed on through Redis";

/**
 * A dead letter's item as JSON. An item JSON cannot hold (nested deeper than
 * JSON.stringify's stack reaches, a BigInt, a cycle: what a source or a stage
 * registered in code may make) keeps its envelope's fields, marked
 * `"unencodable": true`, and gets a payload saying why, `{"unencodable":
 * "<error>"}`, so its letter is still written and the flow goes on. `dlq
 * replay` skips such a letter: it holds no item to put back
 * (isUnencodableNote).
 */
export function letterItemJson(item: Envelope<unknown>): string {
  try {
    return JSON.stringify(item);
  } catch (error) {
    const { payload: _payload, vector: _vector, ...envelope } = item;
    const note = { ...envelope, unencodable: true, payload: { unencodable: errorMessage(error) } };
    return JSON.stringify(note);
  }
}

/**
 * Whether a letter's item is the note letterItemJson wrote in place of a
 * payload JSON cannot hold: marked `unencodable: true` on the envelope, so
 * a real item whose payload happens to say `unencodable` is not taken for one.
 */
export function isUnencodableNote(item: Envelope<unknown>): boolean {
  return (item as { unencodable?: unknown }).unencodable === true;
}

/** Where dead letters go: a JSONL file in memory mode, a Redis stream when durable. */
export interface DeadLetters {
  /** Records the entries; they are kept once the promise resolves. */
  write(entries: readonly DeadLetter[]): Promise<void>;
  /** Called once the flow no longer writes. */
  close?(): void | Promise<void>;
}

/** Keeps dead letters in an array: for tests and embedded use. */
export class MemoryDeadLetters implements DeadLetters {
  /** Every dead letter written, oldest first. */
  readonly entries: DeadLetter[] = [];
  /** Appends the entries to `entries`. */
  write(entries: readonly DeadLetter[]): Promise<void> {
    this.entries.push(...entries);
    return Promise.resolve();
  }
}

/** The file in a memory flow's output folder that its dead letters go to (the CLI's JsonlDeadLetters). */
export const DEAD_LETTERS_FILE = "dead_letters.jsonl";
