import { join } from "node:path";
import type { Redis } from "ioredis";
import type { BuildEnv } from "../../engine/registry.ts";

/**
 * Language-model results already paid for, by a key the caller derives from
 * (model, prompt version, input text): values are the checked results as
 * JSON text. The same shape as the embedder's vector cache, kept apart
 * because its values are text of any length, not vectors of one.
 */
export interface ReplyCache {
  /** The result stored for each key, `undefined` for a miss; one round trip. */
  getMany(keys: readonly string[]): Promise<(string | undefined)[]>;
  /** Stores results under their keys; one round trip. */
  setMany(entries: readonly (readonly [string, string])[]): Promise<void>;
  close?(): Promise<void>;
}

/** A durable flow's cache: one Redis hash per model, shared by every process of the flow. */
export class RedisReplyCache implements ReplyCache {
  constructor(readonly redis: Redis, readonly key: string) {}

  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    if (keys.length === 0) return [];
    const got = await this.redis.hmget(this.key, ...keys);
    return got.map((v) => v ?? undefined);
  }

  async setMany(entries: readonly (readonly [string, string])[]): Promise<void> {
    if (entries.length > 0) await this.redis.hset(this.key, ...entries.flat());
  }
}

/**
 * A memory-mode flow's cache: an append-only JSON Lines file (`{"k","v"}`),
 * read whole at start, so a re-run on this machine finds what earlier runs
 * paid for. A line cut short by a crash is skipped; a key written twice
 * keeps its last value.
 */
export class FileReplyCache implements ReplyCache {
  readonly #values = new Map<string, string>();
  readonly #file: Deno.FsFile;
  #writing: Promise<void> = Promise.resolve();

  private constructor(readonly path: string, file: Deno.FsFile) {
    this.#file = file;
  }

  static async open(path: string): Promise<FileReplyCache> {
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const file = await Deno.open(path, { append: true, create: true });
    const cache = new FileReplyCache(path, file);
    // A line cut short by a crash is closed off, so the next reply is not appended onto it.
    if (text !== "" && !text.endsWith("\n")) await file.write(new Uint8Array([0x0a]));
    for (const line of text.split("\n")) {
      try {
        const { k, v } = JSON.parse(line);
        if (typeof k === "string" && typeof v === "string") cache.#values.set(k, v);
      } catch {
        // An empty or torn line.
      }
    }
    return cache;
  }

  get size(): number {
    return this.#values.size;
  }

  getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    return Promise.resolve(keys.map((key) => this.#values.get(key)));
  }

  setMany(entries: readonly (readonly [string, string])[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    for (const [k, v] of entries) this.#values.set(k, v);
    const bytes = new TextEncoder().encode(
      entries.map(([k, v]) => JSON.stringify({ k, v }) + "\n").join(""),
    );
    // One append after another, so concurrent batches never interleave lines.
    const write = this.#writing.then(async () => {
      for (let at = 0; at < bytes.length;) at += await this.#file.write(bytes.subarray(at));
    });
    this.#writing = write.catch(() => {});
    return write;
  }

  async close(): Promise<void> {
    await this.#writing;
    this.#file.close();
  }
}

/**
 * The reply cache of one model for a flow: a Redis hash when the flow is
 * durable, else `llm/<model>.jsonl` under the flow's output directory.
 */
export async function openReplyCache(env: BuildEnv, model: string): Promise<ReplyCache> {
  if (env.durable) {
    const { prefix, flow } = env.durable.keys;
    return new RedisReplyCache(env.durable.redis, `${prefix}:{${flow}}:llm:${model}`);
  }
  const dir = join(env.outDir, "llm");
  await Deno.mkdir(dir, { recursive: true });
  return await FileReplyCache.open(join(dir, `${encodeURIComponent(model)}.jsonl`));
}
