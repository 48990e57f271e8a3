import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Redis } from "ioredis";
import type { BuildEnv } from "../../engine/registry.ts";

/**
 * Vectors already paid for, by the hash of the exact text embedded. One
 * cache holds one vector space: the model and the dimensions are part of
 * where it lives (a Redis key, a file name), so a model change starts an
 * empty cache instead of serving vectors of another space.
 */
export interface VectorCache {
  /** The vector stored for each key, `undefined` for a miss; one round trip. */
  getMany(keys: readonly string[]): Promise<(Float32Array | undefined)[]>;
  /** Stores vectors under their keys; one round trip. */
  setMany(entries: readonly (readonly [string, Float32Array])[]): Promise<void>;
  close?(): Promise<void>;
}

/**
 * The cache key of a text: 128 bits of its SHA-256, as 32 hex chars. A
 * cryptographic hash, unlike item ids, because scraped text is chosen by
 * strangers and a forged collision would hand one item another's vector.
 */
export function textKey(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/**
 * Where a durable flow keeps the vectors of one model and dimension: a hash,
 * field = textKey, value = the vector's float32 bytes. Built from the flow's
 * prefix and hash tag, so it lives in the flow's cluster slot and is shared
 * by every process of the flow.
 */
export function redisVectorKey(
  keys: { prefix: string; flow: string },
  model: string,
  dimensions: number,
): string {
  return `${keys.prefix}:{${keys.flow}}:vectors:${model}:${dimensions}`;
}

/** A durable flow's cache: one Redis hash per model and dimension (HMGET / HSET). */
export class RedisVectorCache implements VectorCache {
  constructor(readonly redis: Redis, readonly key: string, readonly dimensions: number) {}

  async getMany(keys: readonly string[]): Promise<(Float32Array | undefined)[]> {
    if (keys.length === 0) return [];
    const got = await this.redis.hmgetBuffer(this.key, ...keys);
    return got.map((bytes) => bytes ? toVector(bytes, this.dimensions) : undefined);
  }

  async setMany(entries: readonly (readonly [string, Float32Array])[]): Promise<void> {
    if (entries.length === 0) return;
    const args: (string | Buffer)[] = [];
    for (const [key, vector] of entries) args.push(key, toBytes(vector));
    await this.redis.hset(this.key, ...args);
  }
}

const KEY_BYTES = 16;

/**
 * A memory-mode flow's cache: an append-only file of fixed-size records
 * (16 bytes of key, then the float32 vector), read whole at start. Re-runs
 * of the flow on this machine find what earlier runs paid for. A record cut
 * short by a crash is cut off at the next open; a key written twice keeps
 * its last vector.
 */
export class FileVectorCache implements VectorCache {
  readonly #vectors = new Map<string, Float32Array>();
  readonly #file: Deno.FsFile;
  #writing: Promise<void> = Promise.resolve();
  /** A cut store could not be cut back: nothing more is written (what follows would be torn). */
  #broken = false;

  private constructor(readonly path: string, readonly dimensions: number, file: Deno.FsFile) {
    this.#file = file;
  }

  /** Opens (creating if missing) the cache file and loads what it holds. */
  static async open(path: string, dimensions: number): Promise<FileVectorCache> {
    let bytes = new Uint8Array(0);
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const file = await Deno.open(path, { append: true, create: true });
    const record = KEY_BYTES + dimensions * 4;
    // A record cut short by a crash is cut off before anything is appended: appended after
    // it, every later record stood at the wrong offset, and the next run served vectors made
    // of one record's tail and the next one's key.
    const whole = bytes.length - bytes.length % record;
    if (whole < bytes.length) await file.truncate(whole);
    const cache = new FileVectorCache(path, dimensions, file);
    for (let at = 0; at + record <= bytes.length; at += record) {
      const key = Buffer.from(bytes.buffer, at, KEY_BYTES).toString("hex");
      // Records start at multiples of 4 in a fresh buffer: a view, no copy.
      cache.#vectors.set(key, new Float32Array(bytes.buffer, at + KEY_BYTES, dimensions));
    }
    return cache;
  }

  /** Vectors held, for tests and logs. */
  get size(): number {
    return this.#vectors.size;
  }

  getMany(keys: readonly string[]): Promise<(Float32Array | undefined)[]> {
    return Promise.resolve(keys.map((key) => this.#vectors.get(key)));
  }

  setMany(entries: readonly (readonly [string, Float32Array])[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const record = KEY_BYTES + this.dimensions * 4;
    const out = new Uint8Array(entries.length * record);
    entries.forEach(([key, vector], i) => {
      out.set(Buffer.from(key, "hex").subarray(0, KEY_BYTES), i * record);
      out.set(toBytes(vector), i * record + KEY_BYTES);
      this.#vectors.set(key, vector);
    });
    // Appends one after another, so concurrent batches never interleave records.
    const write = this.#writing.then(() => this.#append(out));
    this.#writing = write.catch(() => {});
    return write;
  }

  /**
   * Appends whole records; one cut short (a full disk) is cut back off, as
   * a crash's is at open: the records appended after it would stand at the
   * wrong offset, read back as one record's tail and the next one's key.
   */
  async #append(out: Uint8Array): Promise<void> {
    if (this.#broken) {
      throw new Error(`vector cache ${this.path}: not written since a failed store`);
    }
    let written = 0;
    try {
      while (written < out.length) written += await this.#file.write(out.subarray(written));
    } catch (error) {
      // The file's end less what this store got in: another process's records appended
      // before stay (the file is append-only).
      const cut = async () => {
        if (written === 0) return;
        const { size } = await this.#file.stat();
        await this.#file.truncate(size - written);
      };
      await cut().catch(() => this.#broken = true);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#writing;
    this.#file.close();
  }
}

/**
 * The cache of one vector space for a flow: in Redis when the flow is
 * durable (shared by all its processes), else a file under the flow's
 * output directory, `vectors/<model>.<dimensions>.f32`.
 */
export async function openVectorCache(
  env: BuildEnv,
  model: string,
  dimensions: number,
): Promise<VectorCache> {
  if (env.durable) {
    const key = redisVectorKey(env.durable.keys, model, dimensions);
    return new RedisVectorCache(env.durable.redis, key, dimensions);
  }
  const dir = join(env.outDir, "vectors");
  await Deno.mkdir(dir, { recursive: true });
  return await FileVectorCache.open(
    join(dir, `${encodeURIComponent(model)}.${dimensions}.f32`),
    dimensions,
  );
}

function toBytes(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

/** A stored value as a vector; one of another length (a foreign writer) is a miss. */
function toVector(bytes: Uint8Array, dimensions: number): Float32Array | undefined {
  if (bytes.byteLength !== dimensions * 4) return undefined;
  // Copied: a Buffer from the driver may sit at an offset Float32Array cannot view.
  return new Float32Array(new Uint8Array(bytes).buffer);
}
