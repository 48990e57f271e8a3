import type { Envelope } from "./item.ts";

/** An item a stage could not or would not pass on, with why. */
export interface DeadLetter {
  /** The stage id that gave up on it. */
  stage: string;
  /** Why: a rejection's reason and detail, or the last error of a failure. */
  reason: string;
  attempts: number;
  item: Envelope<unknown>;
}

/** Where dead letters go: a JSONL file in memory mode, a Redis stream when durable. */
export interface DeadLetters {
  write(entries: readonly DeadLetter[]): Promise<void>;
  close?(): void | Promise<void>;
}

/** Keeps dead letters in an array: for tests and embedded use. */
export class MemoryDeadLetters implements DeadLetters {
  readonly entries: DeadLetter[] = [];
  write(entries: readonly DeadLetter[]): Promise<void> {
    this.entries.push(...entries);
    return Promise.resolve();
  }
}
