/**
 * Item ids are made as a source emits, before any stage can dead-letter an
 * item: a field of the wrong type must neither throw there (it ended the
 * run, losing the items after it) nor give unlike items one id.
 */
import assert from "node:assert/strict";
import { itemId, type RawItem } from "../../engine/item.ts";
import { runTestFlow } from "../../testing.ts";

const FLOW = `
name: ids
sources:
  api: { kind: memory }
pipeline:
  - validate: { require: [title] }
  - dedupe: { key: [guid, title] }
  - publish: [ { collect: { name: out } } ]
`;

function nested(depth: number): unknown {
  let v: unknown = "deep";
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

Deno.test("items whose guid or title is of another type are dead-lettered and the flow goes on", async () => {
  // As a JSON source gives them: typed only by the data.
  const items = [
    { title: "First good story", guid: "a" },
    { title: "Array guid", guid: ["x"] },
    { title: { toString: 1 } },
    { title: nested(3000) },
    { title: "Last good story", guid: "b" },
  ] as unknown as RawItem[];
  const { published, deadLetters, report } = await runTestFlow(FLOW, { items });
  assert.deepEqual(
    published.get("out")!.map((i) => i.payload.title).sort(),
    ["Array guid", "First good story", "Last good story"],
  );
  assert.equal(deadLetters.length, 2);
  assert.ok(deadLetters.every((l) => l.stage === "validate"), JSON.stringify(deadLetters));
  assert.equal(report.published, 3);
});

Deno.test("numeric guids (a JSON API's ids) key each item by its own", async () => {
  const items = [101, 102, 103].map((id) => ({
    title: `Story ${id}`,
    guid: id,
  })) as unknown as RawItem[];
  assert.equal(new Set(items.map(itemId)).size, 3);
  assert.equal(itemId({ guid: 101 } as unknown as RawItem), itemId({ guid: "101" }));
  const { published } = await runTestFlow(FLOW, { items });
  assert.equal(published.get("out")!.length, 3);
});
