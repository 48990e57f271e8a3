import assert from "node:assert/strict";
import { differences, listDifferences, placeholder } from "../../testing/expect.ts";
import { compare } from "../../testing/run_flow_test.ts";

Deno.test("placeholders match the generated values they stand for, and only those", () => {
  const ok = (p: string, v: unknown) => differences(p, v).length === 0;
  assert.ok(ok("{any}", null));
  assert.ok(ok("{string}", "x") && !ok("{string}", 1));
  assert.ok(ok("{number}", 1.5) && !ok("{number}", "1"));
  assert.ok(ok("{integer}", 3) && !ok("{integer}", 3.5));
  assert.ok(ok("{iso-date}", "2026-12-02T20:00:00Z") && !ok("{iso-date}", "yesterday"));
  assert.ok(ok("{url}", "https://example.com/") && !ok("{url}", "example"));
  assert.ok(ok("{vector:3}", [0, 1, 0.5]) && !ok("{vector:3}", [0, 1]));
  assert.ok(ok("{/^spam word/}", "spam word casino") && !ok("{/^spam/}", "no spam"));
  assert.ok(ok("{title}\n{text}", "{title}\n{text}"), "not a placeholder: compared as text");
  assert.match(placeholder("{strnig}") as string, /unknown placeholder \{strnig\}; known: \{any\}/);
  assert.match(placeholder("{vector:x}") as string, /needs the number of dimensions/);
});

Deno.test("a map expected is matched on its own fields unless exact; lists item by item", () => {
  const actual = { title: "A", keywords: ["a", "b"], domain: "example.com" };
  assert.deepEqual(differences({ title: "A" }, actual), []);
  assert.deepEqual(differences({ title: "B", lang: "en" }, actual), [
    { path: ["title"], expected: "B", actual: "A" },
    { path: ["lang"], expected: "en", note: "missing" },
  ]);
  assert.deepEqual(differences({ keywords: ["a"] }, actual).map((d) => d.note), [
    "expected 1 items, got 2",
  ]);
  assert.deepEqual(differences({ a: { x: 1 } }, { a: { x: 1, y: 2 } }, { exact: true }), [
    { path: ["a", "y"], actual: 2 },
  ]);
});

Deno.test("unordered lists pair each expected item with its match, else the closest", () => {
  const actual = [{ id: 1, t: "x" }, { id: 2, t: "y" }, { id: 3, t: "z" }];
  assert.deepEqual(listDifferences([{ id: 3 }, { id: 1 }, { id: 2 }], actual, ["out"]), []);
  assert.deepEqual(listDifferences([{ id: 2, t: "q" }, { id: 9 }], actual, ["out"]), [
    { path: ["out", 0, "t"], expected: "q", actual: "y" },
    { path: ["out", 1, "id"], expected: 9, actual: 1 },
    { path: ["out"], actual: { id: 3, t: "z" }, note: "not expected" },
  ]);
  assert.deepEqual(listDifferences([{ id: 1 }], [], ["out"]), [
    { path: ["out", 0], expected: { id: 1 }, note: "not found" },
  ]);
});

Deno.test("a loose entry before a strict one does not take the item the strict one needs", () => {
  // Before: {title: "{string}"} took Alpha, the first it matched, and Alpha's entry failed.
  const actual = [{ title: "Alpha" }, { title: "Beta" }];
  assert.deepEqual(listDifferences([{ title: "{string}" }, { title: "Alpha" }], actual, ["p"]), []);
  assert.deepEqual(
    listDifferences([{ title: "{string}" }, { title: "{string}" }, { title: "Alpha" }], actual, [
      "p",
    ]).map((d) => d.note ?? "differs"),
    ["not found"],
    "three entries for two items: one is left over, and only one",
  );
});

Deno.test('"{any}" leaves a field unchecked, whether it is there or not', () => {
  assert.deepEqual(differences({ a: 1, sources: "{any}" }, { a: 1 }), []);
  assert.deepEqual(differences({ a: 1, sources: "{any}" }, { a: 1, sources: [] }), []);
  const outcome = { published: {}, dropped: { validate: { spam: 2 } }, deadLetters: [] };
  assert.deepEqual(compare({ dropped: { validate: { spam: 2 }, dedupe: "{any}" } }, outcome), []);
  assert.deepEqual(differences({ b: "{string}" }, { a: 1 }), [
    { path: ["b"], expected: "{string}", note: "missing" },
  ]);
});

Deno.test("dropped: a count of 0 means none, as the report has it; a count it lacks still fails", () => {
  const outcome = { published: {}, dropped: { validate: { spam: 2 } }, deadLetters: [] };
  // Before: "dropped.dedupe: missing", since the report lists only what a stage dropped.
  assert.deepEqual(
    compare({ dropped: { validate: { spam: 2 }, dedupe: { duplicate: 0 } } }, outcome),
    [],
  );
  assert.equal(compare({ dropped: { validate: { spam: 2, short: 0 } } }, outcome).length, 0);
  assert.equal(compare({ dropped: { dedupe: { duplicate: 1 } } }, outcome).length, 2);
  // A 0 that was not: the expected 0 is shown beside what was dropped.
  assert.deepEqual(compare({ dropped: { validate: { spam: 0 } } }, outcome), [
    { path: ["dropped", "validate", "spam"], expected: 0, actual: 2 },
  ]);
  // No reason at all means none too (it said "dropped.dedupe: missing"); where some were, it fails.
  assert.deepEqual(compare({ dropped: { validate: { spam: 2 }, dedupe: {} } }, outcome), []);
  assert.notDeepEqual(compare({ dropped: { validate: {} } }, outcome), []);
});
