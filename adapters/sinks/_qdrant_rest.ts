import { cappedFetch } from "../http/capped_fetch.ts";
import { errorMessage, PermanentError } from "../../engine/errors.ts";
import { jsonWithVector } from "../../engine/vector_json.ts";

/**
 * The largest reply taken from Qdrant. The sink's calls answer with a status
 * and a small result (a collection's description is a few kilobytes); a
 * reply past this is broken or hostile and is refused before it fills memory.
 */
export const MAX_REPLY_BYTES = 4 * 1024 * 1024;

/** A refusal as Qdrant words it: the HTTP status and the reply's `status.error`. */
export interface QdrantHttpError extends Error {
  status: number;
  data?: { status?: { error?: string } };
  /** A 2xx answer that is not Qdrant's JSON: something else answered for it. */
  notQdrant?: boolean;
  /** The answer's headers (Retry-After). */
  headers?: Headers;
}

/** What a call answers: the reply's JSON, under `data` (as the official client puts it). */
export interface QdrantReply {
  // deno-lint-ignore no-explicit-any
  data: any;
}

/**
 * Qdrant's REST API, the eight calls the sink makes, over a fetch whose
 * replies are capped (MAX_REPLY_BYTES): @qdrant/js-client-rest reads any
 * reply whole and takes no fetch of its own. Each call carries the caller's
 * `init` (its signal), and `wait` asks Qdrant to answer once the change is
 * applied.
 */
export class QdrantRest {
  readonly #fetch = cappedFetch(MAX_REPLY_BYTES, "the Qdrant reply limit");

  /** `base` is the URL up to the API's root (a proxy's prefix included), with no trailing slash. */
  constructor(readonly base: string, readonly headers: Record<string, string>) {}

  getCollection(collection: string, init: RequestInit): Promise<QdrantReply> {
    return this.#send("GET", collection, "", undefined, init);
  }

  createCollection(collection: string, body: unknown, init: RequestInit): Promise<QdrantReply> {
    return this.#send("PUT", collection, "", body, init);
  }

  createFieldIndex(collection: string, body: unknown, init: RequestInit): Promise<QdrantReply> {
    return this.#send("PUT", collection, "/index?wait=true", body, init);
  }

  upsertPoints(
    collection: string,
    wait: boolean,
    body: { points: { vector?: unknown }[] },
    init: RequestInit,
  ) {
    return this.#send("PUT", collection, `/points?wait=${wait}`, body, init, pointsJson);
  }

  deletePoints(collection: string, wait: boolean, body: unknown, init: RequestInit) {
    return this.#send("POST", collection, `/points/delete?wait=${wait}`, body, init);
  }

  countPoints(collection: string, body: unknown, init: RequestInit): Promise<QdrantReply> {
    return this.#send("POST", collection, "/points/count", body, init);
  }

  retrievePoints(collection: string, body: unknown, init: RequestInit): Promise<QdrantReply> {
    return this.#send("POST", collection, "/points", body, init);
  }

  batchUpdate(collection: string, wait: boolean, body: unknown, init: RequestInit) {
    return this.#send("POST", collection, `/points/batch?wait=${wait}`, body, init);
  }

  async #send(
    method: string,
    collection: string,
    rest: string,
    body: unknown,
    init: RequestInit,
    // deno-lint-ignore no-explicit-any
    write: (body: any) => string = JSON.stringify,
  ): Promise<QdrantReply> {
    const url = `${this.base}/collections/${encodeURIComponent(collection)}${rest}`;
    let json: string | undefined;
    try {
      json = body === undefined ? undefined : write(body);
    } catch (error) {
      // A point's payload holding a BigInt or a cycle: sending it again cannot work.
      throw new PermanentError(`the request cannot be written as JSON: ${errorMessage(error)}`);
    }
    let response: Response;
    try {
      response = await this.#fetch(url, {
        ...init,
        method,
        headers: json === undefined
          ? this.headers
          : { ...this.headers, "content-type": "application/json" },
        ...(json === undefined ? {} : { body: json }),
      });
    } catch (error) {
      // fetch's own failures (refused, reset, no route) are TypeErrors, tried again; Qdrant is
      // away unless it had begun to answer (capped_fetch.ts's midReply): a connection dropped
      // mid-reply held each batch for 10 minutes, 120 requests in 3, as if Qdrant were gone.
      // One closed before any answer is away: a forwarder (docker-proxy, a port-forward)
      // accepts and closes while Qdrant restarts behind it.
      if (error instanceof TypeError && !init.signal?.aborted) {
        const answering = (error as { midReply?: boolean }).midReply === true;
        throw Object.assign(error, { network: true, unsent: !answering });
      }
      throw error;
    }
    const text = await response.text();
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (response.ok) {
      if ((data as { status?: unknown } | undefined)?.status === "ok") return { data };
      // Every answer of Qdrant's says `"status": "ok"`: without it, something else answered
      // (a proxy's maintenance page while Qdrant restarts), and a write taken as done was lost.
      const error = new Error(
        `answered with a body that is not Qdrant's JSON ` +
          `(${JSON.stringify(text.slice(0, 60))}): is the url Qdrant's REST port, 6333, ` +
          `and does Qdrant itself answer there?`,
      ) as QdrantHttpError;
      error.status = response.status;
      error.notQdrant = true;
      throw error;
    }
    const error = new Error(response.statusText || `HTTP ${response.status}`) as QdrantHttpError;
    error.status = response.status;
    error.data = data as QdrantHttpError["data"];
    error.headers = response.headers;
    throw error;
  }
}

/** An upsert's body as JSON.stringify writes it, each point's vector written apart (vector_json.ts). */
function pointsJson(body: { points: { vector?: unknown }[] }): string {
  return `{"points":[${body.points.map(jsonWithVector).join(",")}]}`;
}
