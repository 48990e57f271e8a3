import {
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import type { StageContext } from "./actor.ts";
import { errorMessage } from "./errors.ts";
import { type Envelope, updatesIn } from "./item.ts";

/**
 * Spans through the OpenTelemetry API: one per source poll and one per
 * batch per stage. With no tracer provider registered (no OTEL_DENO=true,
 * no SDK) every call here lands on the API's no-op tracer, and nothing is
 * built beyond that: attributes, links and trace ids only when a span records.
 *
 * An item's trace is its source poll's: the poll's context rides in the
 * envelope (`trace`, a W3C traceparent) through every edge, in memory and
 * across Redis, unchanged. A batch span is the child of its first item's
 * context and links to the other contexts in the batch. A batch of one
 * poll (the common case) is then all in that poll's trace, source to
 * sink, and an item a window put with items of other polls is still
 * reached from its own trace, through the link. Items keep their poll's
 * context rather than taking the batch span's, so a batch-mate never
 * moves an item into another trace for the rest of its path.
 */
const tracer = trace.getTracer("millrace");

/** Links kept per batch span at most: the OpenTelemetry SDKs' default limit. */
const MAX_LINKS = 128;

type Item = Envelope<unknown>;

/** The counts a batch span reports (stage_runner.ts's BatchResult). */
interface BatchCounts {
  out: readonly { update?: true }[];
  letters: readonly unknown[];
  dropped?: number;
  failed?: number;
  failure?: string;
}

/**
 * Runs `run` (a batch through one stage) in a span `millrace.stage <stage>`,
 * active while it runs, so an actor's fetches and log lines belong to it.
 * Synchronous when `run` is.
 */
export function tracedBatch<R extends BatchCounts>(
  ctx: StageContext,
  items: readonly Item[],
  run: () => R | Promise<R>,
): R | Promise<R> {
  // Parented on the first item a read traced: only a recording read's items carry one, so with
  // a sampler the batch follows a sampled read rather than its first item's luck (11 of 15
  // sampled reads lost their later stages' spans). With tracing off no item carries one: the
  // look is one read of a field per item of the batch.
  const first = firstTrace(items);
  // A batch no read traced (entries written without the field, reads a sampler left out)
  // starts no trace of its own.
  if (first === undefined) return run();
  const parent = remote(first);
  const span = tracer.startSpan(`millrace.stage ${ctx.stage}`, undefined, parent);
  if (!span.isRecording()) return run();
  const updates = updatesIn(items);
  span.setAttributes({
    "millrace.flow": ctx.flow,
    "millrace.stage": ctx.stage,
    // Items, as the stage's counts have them; merge updates riding along apart.
    "millrace.batch.size": items.length - updates,
    ...(updates > 0 ? { "millrace.batch.updates": updates } : {}),
  });
  linkItems(span, items, first);
  let result: R | Promise<R>;
  try {
    result = context.with(trace.setSpan(parent, span), run);
  } catch (error) {
    throw failed(span, error);
  }
  if (result instanceof Promise) {
    return result.then((r) => ended(span, r), (error) => {
      throw failed(span, error);
    });
  }
  return ended(span, result);
}

/** The trace of the first item that carries one. */
function firstTrace(items: readonly Item[]): string | undefined {
  for (let i = 0; i < items.length; i++) {
    const trace = items[i].trace;
    if (trace !== undefined) return trace;
  }
  return undefined;
}

/** A span for one read of a source; `traceOf` it goes into the envelopes it emits. */
export function startSourceSpan(flow: string, source: string, kind: string): Span {
  const span = tracer.startSpan(`millrace.source ${source}`, { root: true });
  if (span.isRecording()) {
    span.setAttributes({
      "millrace.flow": flow,
      "millrace.source": source,
      "millrace.source.kind": kind,
    });
  }
  return span;
}

/** Runs `fn` with `span` active (a source's fetches belong to its poll), when it records. */
export function withSpan<T>(span: Span, fn: () => T): T {
  return span.isRecording() ? context.with(trace.setSpan(ROOT_CONTEXT, span), fn) : fn();
}

/** Ends a source read's span with what it emitted, and its error if it failed. */
export function endSourceSpan(span: Span, items: number, error?: string): void {
  if (span.isRecording()) {
    span.setAttribute("millrace.batch.out", items);
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  }
  span.end();
}

/** The W3C traceparent of a recording span, for envelopes; undefined when it does not record. */
export function traceOf(span: Span): string | undefined {
  if (!span.isRecording()) return undefined;
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/** The span context a traceparent names, or undefined when it is not one. */
export function parseTraceparent(value: string): SpanContext | undefined {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value);
  if (!m) return undefined;
  const ctx = { traceId: m[1], spanId: m[2], traceFlags: parseInt(m[3], 16), isRemote: true };
  return trace.isSpanContextValid(ctx) ? ctx : undefined;
}

/** A context whose parent is the span a traceparent names (the root when it names none). */
function remote(traceparent: string): Context {
  const parent = parseTraceparent(traceparent);
  return parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
}

/** Links the span to each other context among the items, once each, up to MAX_LINKS. */
function linkItems(span: Span, items: readonly Item[], first: string | undefined): void {
  const seen = new Set<string>();
  if (first !== undefined) seen.add(first);
  for (const item of items) {
    const tp = item.trace;
    if (tp === undefined || seen.has(tp)) continue;
    seen.add(tp);
    const linked = parseTraceparent(tp);
    if (linked) span.addLink({ context: linked });
    if (seen.size > MAX_LINKS) break;
  }
}

function ended<R extends BatchCounts>(span: Span, r: R): R {
  span.setAttributes({
    // Merge updates ride along with the items but are not items (engine/item.ts).
    "millrace.batch.out": r.out.length - updatesIn(r.out),
    "millrace.batch.dropped": r.dropped ?? 0,
    "millrace.batch.dead_letters": r.letters.length,
  });
  if (r.failed) {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: `${r.failed} item(s) failed: ${r.failure ?? "error"}`,
    });
  }
  span.end();
  return r;
}

function failed(span: Span, error: unknown): unknown {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
  span.end();
  return error;
}
