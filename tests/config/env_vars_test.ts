import assert from "node:assert/strict";
import { substituteEnv } from "../../config/env_vars.ts";

Deno.test("${VAR} is replaced by the variable's value", () => {
  assert.deepEqual(substituteEnv("redis://${HOST}:${PORT}", { HOST: "cache", PORT: "6380" }), {
    ok: true,
    value: "redis://cache:6380",
    changed: true,
  });
});

Deno.test("${VAR:-default} uses the default when the variable is unset or empty", () => {
  const text = "${URL:-redis://127.0.0.1:6379}";
  assert.equal(get(substituteEnv(text, {})), "redis://127.0.0.1:6379");
  assert.equal(get(substituteEnv(text, { URL: "" })), "redis://127.0.0.1:6379");
  assert.equal(get(substituteEnv(text, { URL: "redis://x" })), "redis://x");
  assert.equal(get(substituteEnv("${EMPTY:-}", {})), "");
});

Deno.test("$${ is a literal ${ and is not looked up", () => {
  assert.equal(get(substituteEnv("cost: $${PRICE} and ${A}", { A: "a" })), "cost: ${PRICE} and a");
  assert.equal(get(substituteEnv("$${NOPE}", {})), "${NOPE}");
});

Deno.test("text with no reference is returned unchanged", () => {
  assert.deepEqual(substituteEnv("plain $HOME {x}", {}), {
    ok: true,
    value: "plain $HOME {x}",
    changed: false,
  });
});

Deno.test("an unset variable is reported with its name and where its ${ starts", () => {
  assert.deepEqual(substituteEnv("https://${HOST}/x", {}), {
    ok: false,
    index: 8,
    variable: "HOST",
    message: "environment variable HOST is not set",
  });
});

Deno.test("a reference that is not closed or has a bad name is refused with the escape to use", () => {
  const open = substituteEnv("a ${HOST", {});
  assert.equal(open.ok, false);
  assert.equal(!open.ok && open.index, 2);
  assert.equal(
    !open.ok && open.message,
    'unclosed "${" in "a ${HOST"; write ${NAME}, or $${ for a literal ${',
  );
  const bad = substituteEnv("${1X}", {});
  assert.equal(
    !bad.ok && bad.message,
    '"${1X}" is not a variable reference; write ${NAME} or ${NAME:-default}, or $${ for a literal ${',
  );
});

function get(result: ReturnType<typeof substituteEnv>): string {
  assert.ok(result.ok, "expected the substitution to succeed");
  return result.value;
}
