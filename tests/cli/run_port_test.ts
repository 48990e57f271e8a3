import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseExposition, sample } from "./_exposition.ts";
import { generatorFlow, until } from "./_watched_flow.ts";

const MAIN = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), "main.ts");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** `main.ts FLOW --port 0 --log-format json ...`, with the server's address read from its log. */
async function runWithPort(args: string[], env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "millrace-port-" });
  const file = join(dir, "flow.yaml");
  await Deno.writeTextFile(
    file,
    `output: ${dir}/out\n` + generatorFlow("ported", { count: 40, every: "30ms" }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, file, "--port", "0", "--log-format", "json", ...args],
    stderr: "piped",
    stdout: "null",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  const lines: string[] = [];
  let url: string | undefined;
  const reading = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        url ??= JSON.parse(line).url;
      }
    }
  })();
  await until(() => url !== undefined || lines.some((l) => /error/.test(l)));
  assert.ok(url, lines.join("\n"));
  return {
    url: url!,
    lines,
    async stop() {
      child.kill("SIGINT");
      const status = await child.status;
      await reading;
      await Deno.remove(dir, { recursive: true });
      return status.code;
    },
  };
}

Deno.test("run --port 0 serves /metrics on 127.0.0.1; its counters rise and stay within the final report", async () => {
  const run = await runWithPort([]);
  assert.match(run.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const published = async () => {
    const e = parseExposition(await (await fetch(run.url + "metrics")).text());
    // Nothing until the flow has started: the server comes up first.
    if (!e.samples.some((s) => s.name === "millrace_items_total")) return 0;
    return sample(e, "millrace_items_total", { stage: "publish", outcome: "out" });
  };
  let first = 0;
  await until(async () => (first = await published()) > 0);
  await until(async () => (await published()) > first);
  const last = await published();
  const healthz = await fetch(run.url + "healthz");
  assert.equal(await healthz.text(), "ok\n");
  assert.equal(await run.stop(), 0, run.lines.join("\n"));
  const report = JSON.parse(run.lines.at(-1)!).report;
  assert.ok(report.published >= last, `${report.published} published, /metrics said ${last}`);
});

Deno.test("run --port with MILLRACE_TOKEN wants the token and never prints it", async () => {
  const token = "tok-" + crypto.randomUUID();
  const run = await runWithPort([], { MILLRACE_TOKEN: token });
  const without = await fetch(run.url + "metrics");
  await without.body?.cancel();
  assert.equal(without.status, 401);
  const withIt = await fetch(run.url + "metrics", {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(withIt.status, 200);
  await withIt.body?.cancel();
  assert.equal((await fetch(run.url + "healthz")).status, 200);
  assert.equal(await run.stop(), 0);
  assert.ok(!run.lines.join("\n").includes(token), "the token is not in the log");
});

Deno.test("a signal as soon as the server says where it listens drains the flow: exit 0", async () => {
  // The flow is still opening here (a generator flow's first poll has not run):
  // the signal is handled, not the default action, and the flow stops once open.
  const run = await runWithPort([]);
  assert.equal(await run.stop(), 0, run.lines.join("\n"));
  assert.ok(run.lines.some((l) => l.includes("draining what was accepted")), run.lines.join("\n"));
  assert.ok(!run.lines.some((l) => l.includes("exiting now")), run.lines.join("\n"));
});

Deno.test("--host without --port, or a port that is no port, is a usage error", async () => {
  for (const args of [["--host", "0.0.0.0"], ["--port", "http"], ["--port", "70000"]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, MAIN, "flows/demo.yaml", ...args],
      stdout: "null",
      stderr: "piped",
      cwd: dirname(MAIN),
    }).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(out.stderr), /--(host|port)/);
  }
});

Deno.test("a port already in use is a usage error naming it, with no stack", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, MAIN, "flows/demo.yaml", "--port", String(port)],
      stdout: "null",
      stderr: "piped",
      cwd: dirname(MAIN),
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.match(stderr, new RegExp(`error: --port ${port}: 127\\.0\\.0\\.1:${port} is in use`));
    assert.doesNotMatch(stderr, /AddrInUse|\s{4}at /, "no stack");
  } finally {
    taken.close();
  }
});

Deno.test("a dashboard open beyond this machine without MILLRACE_TOKEN is warned about", async () => {
  const open = await runWithPort(["--host", "0.0.0.0"]);
  const code = await open.stop();
  assert.equal(code, 0, open.lines.join("\n"));
  assert.ok(
    open.lines.some((l) => /answers anyone who can reach it: set MILLRACE_TOKEN/.test(l)),
    open.lines.join("\n"),
  );
  // On loopback, the default, nothing to warn about.
  const local = await runWithPort([]);
  await local.stop();
  assert.ok(!local.lines.some((l) => /answers anyone/.test(l)), local.lines.join("\n"));
});

Deno.test("a token no request could send is refused at start, and a short one is warned about", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-token-" });
  const file = join(dir, "flow.yaml");
  await Deno.writeTextFile(file, `output: ${dir}/out\n` + generatorFlow("tok", { count: 1 }));
  for (
    const [value, said] of [
      [
        " padded-token-of-some-length ",
        /MILLRACE_TOKEN may hold only printable ASCII with no spaces/,
      ],
      ["tökén-with-accents-and-more", /MILLRACE_TOKEN may hold only printable ASCII/],
      ["", /MILLRACE_TOKEN is set but empty/],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, MAIN, file, "--port", "0"],
      env: { NO_COLOR: "1", MILLRACE_TOKEN: value },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2, JSON.stringify(value));
    assert.match(new TextDecoder().decode(out.stderr), said);
  }
  await Deno.remove(dir, { recursive: true });

  const run = await runWithPort([], { MILLRACE_TOKEN: "short" });
  await run.stop();
  assert.ok(
    run.lines.some((l) => /MILLRACE_TOKEN is 5 characters, short enough to guess/.test(l)),
    run.lines.join("\n"),
  );
});
