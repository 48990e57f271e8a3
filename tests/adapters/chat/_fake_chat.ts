/**
 * An OpenAI-compatible chat server in the test process: POST
 * /v1/chat/completions over real HTTP on 127.0.0.1. It reads the numbered
 * inputs the llm stage sends (`Input 3 #TAG\n...`), asks the test's `answer`
 * for each one's output, and replies `{"results": [{index, output}]}` in
 * OpenAI's completion shape with `usage`. Every request is kept in `hits`,
 * and `intercept` lets a test answer a hit itself (a 429, a 400, bad JSON).
 */
import { apiError } from "../embeddings/_fake_openai.ts";

export { apiError };

export interface ChatHit {
  /** 1-based order of arrival. */
  n: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  messages: { role: string; content: string }[];
  /** The numbered inputs of the last user message that holds any (the first request's). */
  inputs: Map<number, string>;
  authorization: string | null;
  /** HTTP status the server answered. */
  status?: number;
}

export interface FakeChatOptions {
  /** The output for one input; `hit` tells which request asks (1 first, 2 a retry...). */
  answer?: (input: string, hit: ChatHit) => unknown;
  /** Answers a hit instead of the default when it returns a Response. */
  intercept?: (hit: ChatHit) => Response | undefined;
  /** Tokens per request reported in `usage`; default 100. */
  tokens?: number;
}

export interface FakeChat {
  readonly url: string;
  readonly hits: ChatHit[];
}

/** The numbered inputs of a request's first user message, each after its "Input N #TAG" line. */
export function inputsOf(messages: { role: string; content: string }[]): Map<number, string> {
  const user = messages.find((m) => m.role === "user")?.content ?? "";
  const found = new Map<number, string>();
  const tag = /^Input \d+ #(\d{8})\n/.exec(user)?.[1];
  if (tag === undefined) return found;
  const parts = user.split(new RegExp(`(?:^|\\n\\n)Input (\\d+) #${tag}\\n`));
  for (let i = 1; i + 1 < parts.length; i += 2) found.set(Number(parts[i]), parts[i + 1]);
  return found;
}

/** The inputs a retry asks for again ("... for inputs 2, 5 only."). */
export function retriedOf(messages: { role: string; content: string }[]): number[] | undefined {
  const last = messages.at(-1);
  if (messages.length < 4 || last?.role !== "user") return undefined;
  const m = /results for inputs? ([\d, ]+) only/.exec(last.content);
  return m ? m[1].split(",").map((s) => Number(s.trim())) : undefined;
}

export async function withFakeChat(
  opts: FakeChatOptions,
  fn: (server: FakeChat) => Promise<void>,
): Promise<void> {
  const hits: ChatHit[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      return apiError(404, `Unknown request URL: ${req.method} ${path}`);
    }
    const body = await req.json();
    const messages = body.messages ?? [];
    const hit: ChatHit = {
      n: hits.length + 1,
      body,
      messages,
      inputs: inputsOf(messages),
      authorization: req.headers.get("authorization"),
    };
    hits.push(hit);
    const answered = opts.intercept?.(hit) ?? reply(hit, opts);
    hit.status = answered.status;
    return answered;
  });
  try {
    await fn({ url: `http://127.0.0.1:${server.addr.port}/v1`, hits });
  } finally {
    await server.shutdown();
  }
}

function reply(hit: ChatHit, opts: FakeChatOptions): Response {
  const wanted = retriedOf(hit.messages) ?? [...hit.inputs.keys()];
  const results = wanted.map((index) => ({
    index,
    output: opts.answer?.(hit.inputs.get(index) ?? "", hit) ?? { words: 1 },
  }));
  return completion(JSON.stringify({ results }), opts.tokens ?? 100);
}

/** A chat completion in OpenAI's shape whose message is `content` ("length": cut off at max_tokens). */
export function completion(
  content: string,
  tokens = 100,
  finish: "stop" | "length" = "stop",
): Response {
  return Response.json({
    id: "chatcmpl-test",
    object: "chat.completion",
    created: 0,
    model: "fake",
    choices: [{
      index: 0,
      message: { role: "assistant", content, refusal: null },
      finish_reason: finish,
    }],
    usage: { prompt_tokens: tokens - 10, completion_tokens: 10, total_tokens: tokens },
  });
}
