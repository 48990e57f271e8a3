/**
 * A Qdrant that lives in the test process: the REST endpoints the Qdrant
 * sink calls, over real HTTP on 127.0.0.1, with points kept in memory. It
 * checks every request against the shapes Qdrant's REST API accepts (a
 * collection's vector size and distance, UUID or integer ids, vectors of the
 * collection's length, payloads that are objects, known index types) and
 * answers a bad one with Qdrant's 400 shape, so a sink that sends what a real
 * Qdrant would refuse fails here too. Anything else is a 404 and is kept in
 * `unexpected`, so a test can assert the sink called nothing it should not.
 */
import { z } from "zod";

export type Distance = "Cosine" | "Dot" | "Euclid" | "Manhattan";

export interface FakePoint {
  vector: number[];
  payload: Record<string, unknown>;
}

export interface FakeCollection {
  size: number;
  distance: Distance;
  points: Map<string | number, FakePoint>;
  /** field name -> index type */
  indexes: Map<string, string>;
}

export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  apiKey: string | null;
  body: unknown;
}

export interface FakeQdrant {
  readonly url: string;
  readonly collections: Map<string, FakeCollection>;
  readonly requests: SeenRequest[];
  /** Requests the fake does not know (answered 404). */
  readonly unexpected: string[];
  /** Requests refused as malformed (answered 400), with why. */
  readonly refused: string[];
  /** Ms every answer waits before it is sent (a slow Qdrant); default 0. */
  delay: number;
  /** Makes a collection as if someone created it earlier. */
  addCollection(name: string, size: number, distance: Distance): FakeCollection;
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const pointIdSchema = z.union([z.int().nonnegative(), z.string().regex(UUID, "not a UUID")]);
const distanceSchema = z.enum(["Cosine", "Dot", "Euclid", "Manhattan"]);

/** PUT /collections/{name}: only the unnamed-vector form is accepted here. */
const createSchema = z.looseObject({
  vectors: z.strictObject({
    size: z.int().min(1).max(65_536),
    distance: distanceSchema,
    on_disk: z.boolean().optional(),
  }),
});

/** PUT /collections/{name}/points: the list form ({points: [...]}), as the sink sends it. */
const upsertSchema = z.strictObject({
  points: z.array(z.strictObject({
    id: pointIdSchema,
    vector: z.array(z.number()),
    payload: z.record(z.string(), z.unknown()).nullable().optional(),
  })).min(1),
  shard_key: z.unknown().optional(),
});

/** A range condition, as Qdrant's FieldCondition takes it (numbers only here). */
const rangeSchema = z.strictObject({
  lt: z.number().nullable().optional(),
  gt: z.number().nullable().optional(),
  lte: z.number().nullable().optional(),
  gte: z.number().nullable().optional(),
}).refine((r) => Object.values(r).some((v) => typeof v === "number"), "an empty range");

/** The filter shape the fake applies: `must` of field range conditions. */
const filterSchema = z.strictObject({
  must: z.array(z.strictObject({ key: z.string().min(1), range: rangeSchema })).min(1),
});

/**
 * POST /collections/{name}/points/batch, as the sink sends it for merge
 * updates: set_payload operations on points picked by id, skipped where a
 * `must_not` range condition holds; with `key`, merged into that object.
 */
const batchSchema = z.strictObject({
  operations: z.array(z.strictObject({
    set_payload: z.strictObject({
      payload: z.record(z.string(), z.unknown()),
      key: z.string().min(1).optional(),
      filter: z.strictObject({
        must: z.array(z.strictObject({ has_id: z.array(pointIdSchema).min(1) })).min(1),
        must_not: z.array(z.strictObject({ key: z.string().min(1), range: rangeSchema }))
          .optional(),
      }),
    }),
  })).min(1),
});

/** POST /collections/{name}/points: points by id, as the sink asks (payload, no vector). */
const retrieveSchema = z.strictObject({
  ids: z.array(pointIdSchema).min(1),
  /** All of it, none, or the fields named (Qdrant's include shorthand). */
  with_payload: z.union([z.boolean(), z.array(z.string().min(1)).min(1)]).optional(),
  with_vector: z.boolean().optional(),
});

const deleteSchema = z.union([
  z.strictObject({ points: z.array(pointIdSchema).min(1), shard_key: z.unknown().optional() }),
  z.strictObject({ filter: filterSchema, shard_key: z.unknown().optional() }),
]);

const countSchema = z.strictObject({
  filter: filterSchema.optional(),
  exact: z.boolean().optional(),
  shard_key: z.unknown().optional(),
});

/** What a retrieve returns of a payload: all (the default), none, or the fields named that it has. */
function payloadOf(
  payload: Record<string, unknown>,
  selector: boolean | string[] | undefined,
): Record<string, unknown> | null {
  if (selector === false) return null;
  if (!Array.isArray(selector)) return payload;
  return Object.fromEntries(selector.filter((f) => f in payload).map((f) => [f, payload[f]]));
}

/** Whether a point's payload meets every range condition (a missing or non-number field does not). */
function matches(payload: Record<string, unknown>, filter: z.output<typeof filterSchema>): boolean {
  return filter.must.every(({ key, range }) => {
    const v = payload[key];
    if (typeof v !== "number") return false;
    return (typeof range.lt !== "number" || v < range.lt) &&
      (typeof range.gt !== "number" || v > range.gt) &&
      (typeof range.lte !== "number" || v <= range.lte) &&
      (typeof range.gte !== "number" || v >= range.gte);
  });
}

const INDEX_TYPES = ["keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"];
const indexSchema = z.strictObject({
  field_name: z.string().min(1),
  field_schema: z.union([
    z.enum(INDEX_TYPES),
    z.looseObject({ type: z.enum(INDEX_TYPES) }),
  ]),
});

const QUERY_KEYS: Record<string, string[]> = {
  upsert: ["wait", "ordering", "timeout"],
  batch: ["wait", "ordering", "timeout"],
  delete: ["wait", "ordering", "timeout"],
  index: ["wait", "ordering", "timeout"],
  create: ["timeout"],
  retrieve: ["consistency", "timeout"],
  count: ["consistency", "timeout"],
  get: [],
};

function ok(result: unknown): Response {
  return Response.json({ result, status: "ok", time: 0.0001 });
}

function fail(status: number, error: string): Response {
  return Response.json({ status: { error }, time: 0.0001 }, { status });
}

const completed = () => ok({ operation_id: 1, status: "completed" });

/**
 * Starts a fake Qdrant on a free port. When `apiKey` is set, requests without
 * it get 401; with `prefix` ("/qdrant"), the API lives under that path, as
 * behind a proxy.
 */
export function startFakeQdrant(
  opts: { apiKey?: string; prefix?: string } = {},
): Promise<FakeQdrant> {
  const collections = new Map<string, FakeCollection>();
  const requests: SeenRequest[] = [];
  const unexpected: string[] = [];
  const refused: string[] = [];
  const state = { delay: 0 };

  const bad = (what: string, error: unknown): Response => {
    const why = error instanceof z.ZodError
      ? error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
      : String(error);
    refused.push(`${what}: ${why}`);
    return fail(400, `Format error in JSON body: ${why}`);
  };

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const text = req.method === "GET" ? "" : await req.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      return bad(`${req.method} ${url.pathname}`, "not JSON");
    }
    const query = Object.fromEntries(url.searchParams);
    const apiKey = req.headers.get("api-key");
    requests.push({ method: req.method, path: url.pathname, query, apiKey, body });
    if (state.delay > 0) await new Promise((r) => setTimeout(r, state.delay));
    if (opts.apiKey !== undefined && apiKey !== opts.apiKey) {
      return fail(401, "Must provide an API key or an Authorization bearer token");
    }
    if (text && !req.headers.get("content-type")?.includes("application/json")) {
      return bad(`${req.method} ${url.pathname}`, "content-type is not application/json");
    }

    const prefix = opts.prefix ?? "";
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : "";
    const m =
      /^\/collections\/([^/]+)(\/points|\/points\/delete|\/points\/count|\/points\/batch|\/index)?$/
        .exec(
          path,
        );
    const op = !m ? undefined : ({
      "GET ": "get",
      "PUT ": "create",
      "PUT /points": "upsert",
      "POST /points": "retrieve",
      "POST /points/delete": "delete",
      "POST /points/count": "count",
      "POST /points/batch": "batch",
      "PUT /index": "index",
    } as Record<string, string>)[`${req.method} ${m[2] ?? ""}`];
    if (!m || !op) {
      unexpected.push(`${req.method} ${url.pathname}`);
      return fail(404, `Not found: ${req.method} ${url.pathname}`);
    }
    const what = `${req.method} ${url.pathname}`;
    const strange = Object.keys(query).filter((k) => !QUERY_KEYS[op].includes(k));
    if (strange.length) return bad(what, `unknown query parameters ${strange.join(", ")}`);
    const name = decodeURIComponent(m[1]);
    const collection = collections.get(name);

    if (op === "create") {
      if (collection) return fail(409, `Wrong input: Collection \`${name}\` already exists!`);
      const parsed = createSchema.safeParse(body);
      if (!parsed.success) return bad(what, parsed.error);
      const { size, distance } = parsed.data.vectors;
      collections.set(name, { size, distance, points: new Map(), indexes: new Map() });
      return ok(true);
    }
    if (!collection) return fail(404, `Not found: Collection \`${name}\` doesn't exist!`);

    switch (op) {
      case "get":
        return ok({
          status: "green",
          optimizer_status: "ok",
          indexed_vectors_count: 0,
          points_count: collection.points.size,
          segments_count: 1,
          config: {
            params: {
              vectors: { size: collection.size, distance: collection.distance },
              shard_number: 1,
              replication_factor: 1,
              write_consistency_factor: 1,
              on_disk_payload: true,
            },
          },
          payload_schema: Object.fromEntries(
            [...collection.indexes].map(([field, type]) => [field, { data_type: type, points: 0 }]),
          ),
        });
      case "upsert": {
        const parsed = upsertSchema.safeParse(body);
        if (!parsed.success) return bad(what, parsed.error);
        for (const p of parsed.data.points) {
          if (p.vector.length !== collection.size) {
            return bad(
              what,
              `Wrong input: Vector dimension error: expected dim: ${collection.size}, got ${p.vector.length}`,
            );
          }
        }
        for (const p of parsed.data.points) {
          collection.points.set(normalId(p.id), { vector: p.vector, payload: p.payload ?? {} });
        }
        return completed();
      }
      case "retrieve": {
        const parsed = retrieveSchema.safeParse(body);
        if (!parsed.success) return bad(what, parsed.error);
        return ok(parsed.data.ids.flatMap((id) => {
          const point = collection.points.get(normalId(id));
          if (!point) return [];
          return [{
            id: normalId(id),
            payload: payloadOf(point.payload, parsed.data.with_payload),
            vector: parsed.data.with_vector ? point.vector : null,
          }];
        }));
      }
      case "batch": {
        const parsed = batchSchema.safeParse(body);
        if (!parsed.success) return bad(what, parsed.error);
        for (const { set_payload: op } of parsed.data.operations) {
          for (const id of op.filter.must.flatMap((c) => c.has_id)) {
            const point = collection.points.get(normalId(id));
            if (!point) continue;
            if (op.filter.must_not?.some((c) => matches(point.payload, { must: [c] }))) continue;
            if (op.key === undefined) Object.assign(point.payload, op.payload);
            else {
              const held = point.payload[op.key];
              point.payload[op.key] = { ...(typeof held === "object" ? held : {}), ...op.payload };
            }
          }
        }
        return completed();
      }
      case "count": {
        const parsed = countSchema.safeParse(body);
        if (!parsed.success) return bad(what, parsed.error);
        const { filter } = parsed.data;
        let count = 0;
        for (const p of collection.points.values()) {
          if (!filter || matches(p.payload, filter)) count++;
        }
        return ok({ count });
      }
      case "delete": {
        const parsed = deleteSchema.safeParse(body);
        if (!parsed.success) return bad(what, parsed.error);
        if ("filter" in parsed.data) {
          const filter = parsed.data.filter;
          for (const [id, p] of collection.points) {
            if (matches(p.payload, filter)) collection.points.delete(id);
          }
          return completed();
        }
        for (const id of parsed.data.points) collection.points.delete(normalId(id));
        return completed();
      }
      case "index": {
        const parsed = indexSchema.safeParse(body);
        if (!parsed.success) return bad(what, parsed.error);
        const schema = parsed.data.field_schema;
        collection.indexes.set(
          parsed.data.field_name,
          typeof schema === "string" ? schema : schema.type,
        );
        return completed();
      }
    }
    return fail(500, "unreachable");
  };

  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: ({ port }) => {
        resolve({
          url: `http://127.0.0.1:${port}`,
          get delay() {
            return state.delay;
          },
          set delay(ms: number) {
            state.delay = ms;
          },
          collections,
          requests,
          unexpected,
          refused,
          addCollection(name, size, distance) {
            const c: FakeCollection = { size, distance, points: new Map(), indexes: new Map() };
            collections.set(name, c);
            return c;
          },
          close: () => server.shutdown(),
        });
      },
    }, handle);
  });
}

/** Qdrant treats a UUID in any case as one id. */
function normalId(id: string | number): string | number {
  return typeof id === "string" ? id.toLowerCase() : id;
}
