/**
 * A response body read within a size cap, decoded as its Content-Encoding
 * says. The cap holds for the decoded bytes and the memory they take: a
 * 1 MB gzip body that inflates to 1 GB fails at maxBytes, having held
 * little more than maxBytes, and a 1 GB body fails without being read.
 */

import type { IncomingMessage } from "node:http";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import type { Transform } from "node:stream";

/** The encodings asked for with Accept-Encoding and decoded here. */
export const ACCEPT_ENCODING = "gzip, deflate, br";

/** Initial room for a body of unknown length; it grows (in place) as bytes arrive. */
const INITIAL_BYTES = 64 * 1024;

/** A body larger than the cap (after decoding, or on the wire). */
export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number, encoding: string[]) {
    super(
      `response is larger than the limit of ${maxBytes} bytes (maxBytes)` +
        (encoding.length ? `, decoded from ${encoding.join(", ")}` : ""),
    );
    this.name = "BodyTooLargeError";
  }
}

/**
 * Codings undone at most, one inside the other. Each is a zlib stream of
 * its own: 3,200 gzip layers over 100 KB held one core for 30 to 50 s, past
 * any timeout, the whole process frozen. Servers send one; curl stops at 5
 * (CVE-2022-32206).
 */
const MAX_CODINGS = 5;

/**
 * The codings of a Content-Encoding header, in the order they were applied;
 * `identity` left out. Throws for one this reader cannot undo.
 */
export function contentCodings(header: string | undefined): string[] {
  const codings = (header ?? "").split(",").map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity");
  if (codings.length > MAX_CODINGS) {
    throw new Error(
      `the server sent ${codings.length} content codings (${codings.slice(0, 3).join(", ")}, …); ` +
        `at most ${MAX_CODINGS} are undone`,
    );
  }
  for (const c of codings) {
    if (!DECODERS[c]) {
      throw new Error(
        `the server sent Content-Encoding ${c}, which is not one of ${ACCEPT_ENCODING}`,
      );
    }
  }
  return codings;
}

/**
 * node:zlib's streams, not DecompressionStream: measured in Deno 2.9.6,
 * DecompressionStream inflates a whole input chunk into one output chunk
 * (a 1.6 KB brotli chunk became one 1 GiB buffer), while node:zlib hands
 * out 16 KiB pieces and stops inflating while they are not read.
 */
const DECODERS: Record<string, () => Transform> = {
  gzip: () => zlib.createGunzip(),
  "x-gzip": () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * Bytes appended to one buffer that grows in place up to the cap: a
 * resizable ArrayBuffer reserves `maxBytes` of address space and commits
 * memory only as it fills, so the body is never held twice while growing,
 * and its slices are copied in, not kept (a 4 KiB slice must not pin
 * the 64 KiB buffer it was cut from).
 */
class CappedBuffer {
  #buffer: ArrayBuffer;
  #view: Uint8Array;
  size = 0;

  readonly maxBytes: number;

  constructor(maxBytes: number, expected: number) {
    // An address-space reservation, not memory; 1 TiB stands in for "no limit" (Infinity).
    this.maxBytes = Math.min(Math.floor(maxBytes), 2 ** 40);
    this.#buffer = new ArrayBuffer(Math.min(expected, this.maxBytes), {
      maxByteLength: this.maxBytes,
    });
    this.#view = new Uint8Array(this.#buffer);
  }

  /** False, appending nothing, when the bytes would pass the cap. */
  append(chunk: Uint8Array): boolean {
    const end = this.size + chunk.byteLength;
    if (end > this.maxBytes) return false;
    if (end > this.#buffer.byteLength) {
      this.#buffer.resize(Math.min(this.maxBytes, Math.max(end, this.#buffer.byteLength * 2)));
    }
    this.#view.set(chunk, this.size);
    this.size = end;
    return true;
  }

  /** The bytes, in a buffer of their exact length (V8 keeps the same memory, no copy). */
  take(): Uint8Array {
    return new Uint8Array(this.#buffer.transferToFixedLength(this.size));
  }
}

/**
 * Reads `res` whole, undoing its Content-Encoding, and fails with a
 * BodyTooLargeError as soon as the decoded bytes or the bytes on the wire
 * pass `maxBytes`; the connection is closed then, the rest never read.
 */
export async function readCappedBody(
  res: IncomingMessage,
  maxBytes: number,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const codings = contentCodings(headerOf(res, "content-encoding"));
  // Set once the cap is passed: with two decoders in the pipeline, it may
  // reject with the abort of a stage in between rather than this error.
  let over = false;
  const tooLarge = () => (over = true, new BodyTooLargeError(maxBytes, codings));
  const declared = Number(headerOf(res, "content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const expected = codings.length === 0 && Number.isFinite(declared) ? declared : INITIAL_BYTES;
  const body = new CappedBuffer(maxBytes, expected);
  let wire = 0;

  async function* countWire(source: AsyncIterable<Uint8Array>) {
    for await (const chunk of source) {
      wire += chunk.byteLength;
      if (wire > maxBytes) throw tooLarge();
      yield chunk;
    }
  }
  async function collect(source: AsyncIterable<Uint8Array>) {
    for await (const chunk of source) {
      if (!body.append(chunk)) throw tooLarge();
    }
  }

  const decoders = [...codings].reverse().map((c) => DECODERS[c]());
  try {
    // Typed for fixed arities only; the stages are a readable, generators and transforms.
    await (pipeline as (...stages: unknown[]) => Promise<void>)(
      res,
      countWire,
      ...decoders,
      collect,
      { signal },
    );
  } catch (err) {
    if (err instanceof BodyTooLargeError || signal.aborted) throw err;
    if (over) throw new BodyTooLargeError(maxBytes, codings);
    const what = codings.length ? ` (decoding ${codings.join(", ")})` : "";
    throw new Error(`the body broke off${what}: ${(err as Error).message ?? err}`, { cause: err });
  }
  if (!res.complete) throw new Error("the connection closed before the whole body arrived");
  return body.take();
}

function headerOf(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}
