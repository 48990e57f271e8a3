/**
 * A tracer provider that keeps the spans it made in memory, for tests of
 * what the engine traces: what OTEL_DENO=true gives a run, without an
 * exporter. Written on `@opentelemetry/api` alone (the runtime's only
 * OpenTelemetry package) because a test-only SDK in deno.json would be
 * downloaded by every `deno task run` (see tests/lockfile_test.ts).
 *
 * No context manager: engine/trace.ts hands every span its parent context
 * explicitly, so the API's default (no active context) is what a run without
 * a registered context manager sees too.
 */
import {
  type Attributes,
  type AttributeValue,
  type Context,
  context,
  type Exception,
  type Link,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput,
  trace,
  TraceFlags,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";

/** Random lowercase hex of `bytes` bytes, never all zeros (an invalid id). */
function randomHex(bytes: number): string {
  for (;;) {
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(bytes)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    if (!/^0+$/.test(hex)) return hex;
  }
}

/** A span that records: what a test reads back once it ended. */
export class MemorySpan implements Span {
  readonly attributes: Attributes = {};
  readonly links: Link[] = [];
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  ended = false;
  readonly #context: SpanContext;

  constructor(
    public name: string,
    /** The context of the parent span, undefined for a trace's root. */
    readonly parentSpanContext: SpanContext | undefined,
    options: SpanOptions,
    private readonly onEnd: (span: MemorySpan) => void,
  ) {
    this.#context = {
      traceId: parentSpanContext?.traceId ?? randomHex(16),
      spanId: randomHex(8),
      traceFlags: TraceFlags.SAMPLED,
    };
    if (options.attributes) this.setAttributes(options.attributes);
    if (options.links) this.addLinks(options.links);
  }

  spanContext(): SpanContext {
    return this.#context;
  }
  setAttribute(key: string, value: AttributeValue): this {
    if (!this.ended) this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    for (const [key, value] of Object.entries(attributes)) {
      if (value !== undefined) this.setAttribute(key, value);
    }
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(link: Link): this {
    if (!this.ended) this.links.push(link);
    return this;
  }
  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }
  setStatus(status: SpanStatus): this {
    if (!this.ended) this.status = status;
    return this;
  }
  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }
  end(_endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(this);
  }
  isRecording(): boolean {
    return !this.ended;
  }
  recordException(_exception: Exception, _time?: TimeInput): void {}
}

/** The provider: every span its tracers start records, and lands in `finished` when it ends. */
export class MemoryTracerProvider implements TracerProvider {
  #finished: MemorySpan[] = [];

  getTracer(): Tracer {
    const start = (name: string, options: SpanOptions = {}, ctx?: Context) => {
      const parent = options.root ? undefined : trace.getSpanContext(ctx ?? context.active());
      const valid = parent && trace.isSpanContextValid(parent) ? parent : undefined;
      return new MemorySpan(name, valid, options, (span) => this.#finished.push(span));
    };
    return {
      startSpan: start,
      startActiveSpan: (name: string, ...rest: unknown[]) => {
        const fn = rest.at(-1) as (span: Span) => unknown;
        const options = rest.length > 1 ? rest[0] as SpanOptions : {};
        const parent = rest.length > 2 ? rest[1] as Context : context.active();
        const span = start(name, options, parent);
        return context.with(trace.setSpan(parent, span), () => fn(span));
      },
    } as Tracer;
  }

  /** The spans that ended, in the order they ended. */
  finished(): MemorySpan[] {
    return [...this.#finished];
  }

  /** Forgets the spans that ended so far. */
  reset(): void {
    this.#finished = [];
  }
}
