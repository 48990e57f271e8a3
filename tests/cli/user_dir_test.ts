import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { typedCommand } from "../../cli/user_dir.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

Deno.test("a suggested command is typed as from the person's directory: `deno task run` in the repository or below it", () => {
  const flow = join(ROOT, "flows", "demo-durable.yaml");
  assert.equal(typedCommand("status", flow, ROOT), "deno task run status flows/demo-durable.yaml");
  assert.equal(
    typedCommand("dlq list", flow, join(ROOT, "flows")),
    "deno task run dlq list demo-durable.yaml",
  );
  assert.equal(typedCommand("", flow, ROOT), "deno task run flows/demo-durable.yaml");
  assert.equal(typedCommand("help", undefined, ROOT), "deno task run help");
});

Deno.test("from outside the repository, a suggested command names it with --cwd, and the flow from where the person is", () => {
  const elsewhere = "/srv/flows";
  assert.equal(
    typedCommand("reset", "/srv/flows/big.yaml", elsewhere),
    `deno task --cwd ${ROOT} run reset big.yaml`,
  );
  assert.equal(
    typedCommand("status", "/srv/other/x.yaml", elsewhere),
    `deno task --cwd ${ROOT} run status /srv/other/x.yaml`,
  );
  // A path a shell would split or read is quoted.
  assert.equal(
    typedCommand("status", "/srv/flows/my flow's.yaml", elsewhere),
    `deno task --cwd ${ROOT} run status 'my flow'\\''s.yaml'`,
  );
});
