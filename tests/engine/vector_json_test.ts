import assert from "node:assert/strict";
import { jsonWithVector } from "../../engine/vector_json.ts";

const parsed = (record: { vector?: unknown }) => JSON.parse(jsonWithVector(record));
const plain = (record: { vector?: unknown }) => JSON.parse(JSON.stringify(record));

Deno.test("jsonWithVector writes what JSON.stringify writes, the vector last", () => {
  const item = {
    id: "a1",
    vector: [0.25, -1, 0, 1e-7, NaN, Infinity],
    payload: { title: "Caf\u00e9 " + "opens".slice(0, 4), tags: ["x"], n: 3 },
    source: "news",
  };
  const text = jsonWithVector(item);
  assert.deepEqual(JSON.parse(text), plain(item));
  assert.ok(text.startsWith('{"id":"a1","payload":'), text);
  assert.ok(text.endsWith(',"vector":[0.25,-1,0,1e-7,null,null]}'), text);
});

Deno.test("jsonWithVector: a record of only a vector, and records with no array there", () => {
  assert.equal(jsonWithVector({ vector: [1, 2] }), '{"vector":[1,2]}');
  assert.equal(jsonWithVector({ vector: [] }), '{"vector":[]}');
  for (
    const record of [
      { id: "b" },
      { id: "b", vector: undefined },
      { id: "b", vector: null },
      { id: "b", vector: new Float32Array([0.5]) },
      { id: "b", vector: "not numbers" },
    ]
  ) {
    assert.equal(jsonWithVector(record), JSON.stringify(record));
    assert.deepEqual(parsed(record), plain(record));
  }
});

Deno.test("jsonWithVector leaves the record as it was", () => {
  const record = { id: "c", vector: [1], source: "s" };
  jsonWithVector(record);
  assert.deepEqual(record, { id: "c", vector: [1], source: "s" });
  assert.deepEqual(Object.keys(record), ["id", "vector", "source"]);
});

Deno.test("jsonWithVector throws as JSON.stringify does, on a value JSON cannot hold", () => {
  assert.throws(() => jsonWithVector({ id: "d", n: 1n, vector: [1] }), TypeError);
  assert.throws(() => jsonWithVector({ id: "d", vector: [1n] }), TypeError);
});
