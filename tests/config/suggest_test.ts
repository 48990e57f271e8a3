import assert from "node:assert/strict";
import { didYouMean, nearest } from "../../config/suggest.ts";

Deno.test("a one-letter typo finds the intended word", () => {
  assert.equal(nearest("treshold", ["key", "ttl", "threshold"]), "threshold");
  assert.equal(nearest("embedd", ["validate", "embed", "enrich"]), "embed");
  assert.equal(nearest("Priority", ["kind", "priority"]), "priority");
});

Deno.test("nothing is suggested when no word is close", () => {
  assert.equal(nearest("colour", ["steps", "concurrency"]), undefined);
  assert.equal(didYouMean("translate", ["validate", "dedupe"]), "");
});

Deno.test("the closest of several near words wins", () => {
  assert.equal(nearest("retrys", ["retry", "retries"]), "retry");
  assert.equal(didYouMean("ttll", ["ttl", "url"]), '; did you mean "ttl"?');
});

Deno.test("two swapped neighbouring letters count as one typo", () => {
  assert.equal(nearest("quite", ["quiet", "json", "grace"]), "quiet");
  assert.equal(nearest("stgae", ["stage", "limit"]), "stage");
  // Two letters swapped far apart are two edits, too many for a short word.
  assert.equal(nearest("etags", ["stage"]), undefined);
});
