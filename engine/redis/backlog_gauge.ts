/**
 * A step input's backlog (entries undelivered plus pending, redis_info.ts
 * `backlog`), as the writers before it see it for backpressure: asked of
 * Redis at most every `everyMs`, and in between the entries this writer
 * appended since are added to the last answer, so a fast writer cannot
 * overshoot by that much of its own output. Asking before every append
 * cost a source three or four round trips per batch (XINFO GROUPS and a
 * lag check per lane), each waiting its turn on a busy event loop: with
 * the whole pipeline fused into one step, the source was what held the
 * flow back.
 */
export class BacklogGauge {
  readonly #ask: () => Promise<number>;
  readonly #everyMs: number;
  #at = -Infinity;
  /** Redis's last answer, and how many entries this writer had appended when it was asked. */
  #answer = 0;
  #appendedAtAsk = 0;
  /** Entries this writer appended since the gauge was made. */
  #appended = 0;

  /** `ask` reads the backlog from Redis (and decides what a failure does). */
  constructor(ask: () => Promise<number>, everyMs = 100) {
    this.#ask = ask;
    this.#everyMs = everyMs;
  }

  /** The backlog in entries: the last answer while it is fresh, with what was appended since. */
  async entries(): Promise<number> {
    if (performance.now() - this.#at >= this.#everyMs) {
      // Counted from when it was asked: what is appended while Redis
      // answers (another source of this process) is added to the answer,
      // which may hold some of it; the gauge then errs high, never low,
      // which only pauses a writer sooner.
      const appended = this.#appended;
      this.#answer = await this.#ask();
      this.#appendedAtAsk = appended;
      this.#at = performance.now();
    }
    return this.#answer + (this.#appended - this.#appendedAtAsk);
  }

  /** This writer appended `n` entries. */
  appended(n: number): void {
    this.#appended += n;
  }
}
