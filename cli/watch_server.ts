import { errorMessage } from "../engine/errors.ts";
import type { FlowWatch } from "./flow_watch.ts";

/** Where the server listens and who may read it. */
export interface WatchServerOptions {
  port: number;
  /** 127.0.0.1 unless the user asked for another address. */
  hostname: string;
  /** When set, every endpoint but /healthz and the dashboard's static files wants `Authorization: Bearer <token>`. */
  token?: string;
  /** Ms between two snapshots on /events (tests shorten it). Default 1000. */
  eventsEveryMs?: number;
}

/** The dashboard's files: no build step, served as they are. */
const STATIC: Record<string, [file: string, type: string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/dashboard.js": ["dashboard.js", "text/javascript; charset=utf-8"],
  "/dashboard.css": ["dashboard.css", "text/css; charset=utf-8"],
};

/** Largest body POST /api/replay reads. */
const MAX_BODY = 64 * 1024;

/**
 * The HTTP server of `run --port`: /metrics (Prometheus text), /healthz
 * (the process is alive), /readyz (the flow started and its Redis answers),
 * /events (server-sent snapshots for the dashboard), /api/* (snapshot,
 * history, replay) and the dashboard at /. The dashboard's files hold no
 * data, so they are served without the token; the page asks for it and
 * sends it as a header, since a token in a URL ends up in logs and history.
 *
 * On a loopback address it answers only requests that name it by a
 * loopback name (Host `localhost`, `127.x.x.x` or `[::1]`, any port): a web
 * page whose own name an attacker re-points at 127.0.0.1 (DNS rebinding)
 * reaches the port from the user's browser, but its requests carry the
 * page's name, and get 421. A server on another address (`--host`) was
 * meant to be reached by other names: the token guards it.
 */
export function serveWatch(watch: FlowWatch, opts: WatchServerOptions): WatchServer {
  // Open /events streams: ended on close, or shutdown would wait on them for ever.
  const streams = new Set<() => void>();
  const expected = opts.token ? new TextEncoder().encode(opts.token) : undefined;
  // The scheme's name is case-insensitive (RFC 9110, 11.1); the token is compared in constant time.
  const allowed = (req: Request) => {
    if (!expected) return true;
    const given = req.headers.get("authorization") ?? "";
    // One or more spaces after the scheme's name (RFC 9110, 11.4).
    const token = /^bearer +/i.exec(given);
    return sameBytes(
      new TextEncoder().encode(token ? given.slice(token[0].length) : ""),
      expected,
    ) && token !== null;
  };
  // Decided by the address it listens on, not by how --host spelled it: `127.1`, `2130706433`
  // or a name /etc/hosts maps to 127.0.0.1 listen on loopback too, and answered any Host.
  let loopback = true;
  const answer = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    try {
      if (path === "/healthz") return text("ok\n");
      const host = req.headers.get("host");
      if (loopback && host !== null && !isLoopbackName(hostnameOf(host))) {
        return json({
          error: `this server answers to localhost and 127.0.0.1, not to Host ${
            JSON.stringify(host.slice(0, 100))
          }; to be reached by another name, listen on another address (--host)`,
        }, 421);
      }
      const file = STATIC[path];
      if (file && req.method === "GET") {
        const body = await Deno.readFile(new URL(`./dashboard/${file[0]}`, import.meta.url));
        return new Response(body, { headers: { "content-type": file[1], ...NO_STORE } });
      }
      if (!allowed(req)) {
        return json({ error: "this server wants Authorization: Bearer <MILLRACE_TOKEN>" }, 401, {
          "www-authenticate": 'Bearer realm="millrace"',
        });
      }
      if (path === "/readyz") {
        const why = await watch.notReady();
        return why ? json({ ready: false, reason: why }, 503) : json({ ready: true });
      }
      if (path === "/metrics") {
        const { text: body, contentType } = await watch.metrics.render();
        return new Response(body, { headers: { "content-type": contentType } });
      }
      if (path === "/api/snapshot") return json(await watch.snapshot());
      if (path === "/api/history") return json(await watch.history());
      if (path === "/events") return events(watch, opts.eventsEveryMs ?? 1000, streams);
      if (path === "/api/replay") {
        if (req.method !== "POST") return json({ error: "POST only" }, 405);
        if (!opts.token) {
          return json({ error: "replay is offered only when MILLRACE_TOKEN is set" }, 403);
        }
        if (!watch.durable) return json({ error: "replay needs a durable flow" }, 400);
        const body = await cappedText(req, MAX_BODY);
        if (body === undefined) return json({ error: `body over ${MAX_BODY} bytes` }, 413);
        let ids: unknown;
        try {
          ids = (JSON.parse(body || "{}") as { ids?: unknown })?.ids;
        } catch {
          ids = undefined;
        }
        if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string")) {
          return json({ error: 'body must be {"ids": ["<dead letter id>", ...]}' }, 400);
        }
        // A dead letter's id is its stream entry's: Redis refuses any other with the whole request.
        const bad = ids.filter((id) => !/^\d+-\d+$/.test(id));
        if (bad.length > 0) {
          return json({
            error: `not a dead letter id (an entry id such as 1700000000000-0): ${
              bad.slice(0, 5).map((id) => JSON.stringify(id.slice(0, 40))).join(", ")
            }`,
          }, 400);
        }
        return json(await watch.replay(ids));
      }
      return json({ error: `no ${path} here` }, 404);
    } catch (error) {
      return json({ error: errorMessage(error) }, 500);
    }
  };
  const server = Deno.serve({
    port: opts.port,
    hostname: opts.hostname,
    onListen: () => {},
  }, async (req) => {
    const res = await answer(req);
    for (const [name, value] of Object.entries(GUARDED)) res.headers.set(name, value);
    return res;
  });
  loopback = isLoopbackAddress(server.addr.hostname);
  return {
    addr: server.addr,
    async close() {
      for (const end of streams) end();
      await server.shutdown();
    },
  };
}

/** A Host header's name without its port: `[::1]:9464` → `[::1]`, `localhost:9464` → `localhost`. */
function hostnameOf(host: string): string {
  return host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d*$/, "");
}

/** localhost, 127.0.0.0/8 or ::1, as a listen address or a Host header's name. */
function isLoopbackName(name: string): boolean {
  return /^(?:localhost\.?|127(?:\.\d{1,3}){3}|\[?::1\]?)$/i.test(name);
}

/** Whether a listening address is this machine's loopback, reachable from no other. */
export function isLoopbackAddress(hostname: string): boolean {
  return hostname === "::1" || hostname === "localhost" || /^(?:::ffff:)?127\./.test(hostname);
}

/** The running server: where it listens, and how to stop it (open event streams end first). */
export interface WatchServer {
  readonly addr: Deno.NetAddr;
  close(): Promise<void>;
}

/** A snapshot at once and then every `everyMs`; history with the first and every 10 s. */
function events(watch: FlowWatch, everyMs: number, streams: Set<() => void>): Response {
  const enc = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  let ticks = 0;
  let end: (() => void) | undefined;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = async () => {
        try {
          const data: Record<string, unknown> = await watch.snapshot();
          if (ticks++ % Math.max(1, Math.round(10_000 / everyMs)) === 0) {
            data.history = await watch.history().catch(() => []);
          }
          controller.enqueue(enc.encode(`data: ${JSON.stringify(data)}\n\n`));
        } catch {
          // A closed stream or a failed read: the next tick tries again.
        }
      };
      void send();
      timer = setInterval(send, everyMs);
      end = () => {
        clearInterval(timer);
        streams.delete(end!);
        try {
          controller.close();
        } catch { /* already closed */ }
      };
      streams.add(end);
    },
    // The reader went away (the page closed).
    cancel() {
      clearInterval(timer);
      if (end) streams.delete(end);
    },
  });
  return new Response(stream, {
    headers: { "content-type": "text/event-stream", ...NO_STORE },
  });
}

/** The request's body as text, or undefined once it passes `max` bytes (read no further). */
async function cappedText(req: Request, max: number): Promise<string | undefined> {
  if (Number(req.headers.get("content-length") ?? 0) > max) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body ?? []) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) all.set(c, at), at += c.length;
  return new TextDecoder().decode(all);
}

const NO_STORE = { "cache-control": "no-store" };

/**
 * Set on every answer (serveWatch): the page loads only its own files and is framed
 * by no other page (a framed replay button can be clicked by a page
 * laid over it), and no type is sniffed from a body.
 */
const GUARDED = {
  "content-security-policy":
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

function text(body: string, status = 200): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...NO_STORE, ...headers },
  });
}

/** Compares in time that does not depend on where the bytes differ. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}
