import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { KeyClaims } from "../../actors/_key_claims.ts";
import { hash128, hexWords, mix128 } from "../../engine/hash.ts";

/** What KeyClaims must answer: a Map in claim order (re-claiming moves a key to the back). */
class Model {
  readonly map = new Map<string, { event: string; expires: number }>();
  get(key: string, event: string) {
    const held = this.map.get(key);
    return held && { expires: held.expires, same: held.event === event };
  }
  set(key: string, event: string, expires: number) {
    this.map.delete(key);
    this.map.set(key, { event, expires });
  }
  release(key: string, event: string): boolean {
    if (this.map.get(key)?.event !== event) return false;
    return this.map.delete(key);
  }
  evict(now: number) {
    for (const [key, held] of this.map) {
      if (!(held.expires <= now)) return; // as the store did: an expiry that is NaN stays
      this.map.delete(key);
    }
  }
  dropOldest() {
    for (const key of this.map.keys()) return void this.map.delete(key);
  }
}

/** A small seeded generator, so a failure repeats. */
function random(seed: number) {
  return () =>
    ((seed = Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5 | 0) >>> 0) / 2 ** 32;
}

Deno.test("key claims answer as a Map in claim order would, through growth and eviction", () => {
  const rand = random(7);
  const claims = new KeyClaims();
  const model = new Model();
  // Few enough keys that re-claims, releases of held keys and expired keys
  // met again are common; hex keys and plain ones both.
  const keys = Array.from({ length: 6_000 }, (_, i) => i % 5 === 0 ? `url ${i}` : hash128(`k${i}`));
  const events = ["a", "b", "c", "d"];
  let now = 0, grewTo = 0;
  for (let step = 0; step < 60_000; step++) {
    now += rand() < 0.3 ? 1 : 0;
    const key = keys[Math.floor(rand() * keys.length)];
    const event = events[Math.floor(rand() * events.length)];
    const op = rand();
    if (op < 0.55) {
      claims.evict(now);
      model.evict(now);
      assert.deepEqual(claims.get(key, event), model.get(key, event), `step ${step}: get`);
      const ttl = 2_000 + Math.floor(rand() * 3); // one ttl, give or take the same ms
      claims.set(key, event, now + ttl);
      model.set(key, event, now + ttl);
    } else if (op < 0.85) {
      assert.equal(claims.release(key, event), model.release(key, event), `step ${step}: release`);
    } else if (op < 0.9) {
      claims.dropOldest();
      model.dropOldest();
    } else {
      assert.deepEqual(claims.get(key, event), model.get(key, event), `step ${step}: get`);
    }
    assert.equal(claims.size, model.map.size, `step ${step}: size`);
    grewTo = Math.max(grewTo, claims.size);
  }
  for (const key of keys) assert.deepEqual(claims.get(key, "a"), model.get(key, "a"));
  // The run held more than the ring's first 1,024 slots, so it grew (and released keys left dead slots to compact).
  assert.ok(grewTo > 1_024, `held at most ${grewTo}`);
});

Deno.test("dead slots are compacted away instead of growing the ring", () => {
  const claims = new KeyClaims();
  const model = new Model();
  // 20,000 claims, nine in ten released (near duplicates): 2,000 stay live.
  for (let i = 0; i < 20_000; i++) {
    const key = hash128(`k${i}`);
    claims.set(key, "e", 1e12);
    model.set(key, "e", 1e12);
    if (i % 10 !== 0) assert.equal(claims.release(key, "e"), model.release(key, "e"));
  }
  assert.equal(claims.size, 2_000);
  assert.ok(claims.slots <= 4_096, `${claims.slots} slots for 2,000 live claims`);
  for (let i = 0; i < 20_000; i += 7) {
    const key = hash128(`k${i}`);
    assert.deepEqual(claims.get(key, "e"), model.get(key, "e"), `key ${i}`);
  }
  // Oldest first still: the first live claim made is the first to go.
  claims.dropOldest();
  assert.equal(claims.get(hash128("k0"), "e"), undefined);
  assert.ok(claims.get(hash128("k10"), "e"));
});

Deno.test("an expiry that is no number is a live claim like any other (it hung the store once)", () => {
  const claims = new KeyClaims();
  const model = new Model();
  for (const [key, expires] of [["a", NaN], ["b", 5], ["c", 6]] as const) {
    claims.set(key, "e", expires);
    model.set(key, "e", expires);
  }
  claims.evict(10); // stops at the oldest, whose NaN expiry is not at or before 10
  model.evict(10);
  assert.equal(claims.size, model.map.size);
  claims.dropOldest();
  model.dropOldest();
  for (const key of ["a", "b", "c"]) {
    assert.deepEqual(claims.get(key, "e"), model.get(key, "e"), key);
  }
  claims.evict(10);
  model.evict(10);
  assert.equal(claims.size, 0);
});

Deno.test("a key that is no hex hash and the hash128 of it are two keys", () => {
  const claims = new KeyClaims();
  claims.set("foo", "e1", 1e12);
  assert.equal(claims.get(hash128("foo"), "e2"), undefined);
  claims.set(hash128("foo"), "e2", 1e12);
  assert.equal(claims.size, 2);
  assert.equal(claims.get("foo", "e1")?.same, true);
  assert.equal(claims.get(hash128("foo"), "e2")?.same, true);
});

Deno.test("keys alike but in their last digits start their probe runs apart", () => {
  // Hex ids a source chose, not hashes: only the last word differs.
  const words = new Uint32Array(4);
  const homes = new Set<number>();
  for (let i = 0; i < 1_000; i++) {
    hexWords("0".repeat(24) + i.toString(16).padStart(8, "0"), words, 0);
    homes.add(mix128(words[0], words[1], words[2], words[3]) & 1023);
  }
  // 1,000 keys thrown at 1,024 slots at random fill about 632; one run for all was the bug.
  assert.ok(homes.size > 550, `${homes.size} distinct starts`);
});

Deno.test("a key claim costs under 80 bytes (heap and typed arrays) at 100,000 claims", async () => {
  const module = fileURLToPath(new URL("../../actors/_key_claims.ts", import.meta.url));
  const hash = fileURLToPath(new URL("../../engine/hash.ts", import.meta.url));
  const script = `
    const { KeyClaims } = await import(${JSON.stringify(module)});
    const { hash128 } = await import(${JSON.stringify(hash)});
    const keys = Array.from({ length: 100_000 }, (_, i) => hash128("key " + i));
    const used = () => { gc(); gc(); const m = Deno.memoryUsage(); return m.heapUsed + m.external; };
    const base = used();
    const claims = new KeyClaims();
    for (let i = 0; i < keys.length; i++) claims.set(keys[i], "evt" + (i % 1000), 1e12 + i);
    console.log(JSON.stringify({ perClaim: (used() - base) / keys.length, size: claims.size }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", script],
    stdout: "piped",
  }).output();
  assert.ok(out.success);
  const { perClaim, size } = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(size, 100_000);
  assert.ok(perClaim < 80, `${perClaim.toFixed(1)} bytes a claim`);
});

Deno.test("a claim whose event is no string throws and leaves the claims as they were", () => {
  // It counted a slot it never placed; the next eviction then probed for it for ever.
  const claims = new KeyClaims();
  claims.set("a", "e", 5);
  assert.throws(() => claims.claim("b", undefined as unknown as string, 0, 5));
  assert.equal(claims.size, 1);
  assert.equal(claims.get("b", "e"), undefined);
  claims.evict(10);
  assert.equal(claims.size, 0);
  assert.equal(claims.claim("b", "e", 10, 20), "new");
});
