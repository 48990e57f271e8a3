import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkFiles,
  fileProblem,
  readFailure,
  readFiles,
} from "../../../adapters/sources/_input_files.ts";
import { FieldError } from "../../../engine/flow_error.ts";

Deno.test("OS read errors become plain words with what to do, not `(os error 13)`", () => {
  const raw = "Permission denied (os error 13): readfile '/tmp/x/noperm.xml'";
  assert.equal(
    readFailure(new Deno.errors.PermissionDenied(raw)),
    "permission denied; make it readable (chmod +r)",
  );
  assert.equal(
    readFailure(new Deno.errors.NotCapable("Requires read access")),
    "Deno may not read it; run with --allow-read",
  );
  assert.equal(readFailure(new Deno.errors.NotFound("x")), "no such file");
  assert.equal(readFailure(new Deno.errors.IsADirectory("x")), "it is a directory, not a file");
  assert.equal(readFailure(new Error("disk on fire\nstack")), "disk on fire");
});

Deno.test("fileProblem: missing, a directory, unreadable (mode 000 unless root), readable", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "ok.xml"), "<rss/>");
  await Deno.mkdir(join(dir, "sub"));
  assert.equal(await fileProblem("ok.xml", dir), undefined);
  assert.equal(
    await fileProblem("nope.xml", dir),
    `nope.xml: no such file (${join(dir, "nope.xml")})`,
  );
  assert.equal(await fileProblem("sub", dir), `sub: not a file (${join(dir, "sub")})`);
  const noperm = join(dir, "noperm.xml");
  await Deno.writeTextFile(noperm, "<rss/>");
  await Deno.chmod(noperm, 0o000);
  // Root reads any file whatever its mode; everyone else is refused.
  if (Deno.uid() !== 0) {
    assert.equal(
      await fileProblem("noperm.xml", dir),
      `cannot read noperm.xml: permission denied; make it readable (chmod +r) (${noperm})`,
    );
  }
});

Deno.test("checkFiles throws a FieldError on path, or path[i] for one entry of a list", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "a.json"), "[]");
  await checkFiles(["a.json"], dir);
  await checkFiles(undefined, dir);
  const single = await checkFiles("gone.json", dir).catch((e) => e);
  assert.ok(single instanceof FieldError);
  assert.deepEqual(single.field, ["path"]);
  const one = await checkFiles(["a.json", "gone.json"], dir).catch((e) => e);
  assert.deepEqual(one.field, ["path", 1]);
  const two = await checkFiles(["x.json", "y.json"], dir).catch((e) => e);
  assert.deepEqual(two.field, ["path"], "several bad entries: the whole field");
  assert.match(two.message, /^x\.json: no such file \(.*\); y\.json: no such file \(.*\)$/);
});

Deno.test("readFiles reports a file it cannot read in words, and still reads the others", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "a.json"), "[1]");
  await Deno.mkdir(join(dir, "gone-dir"));
  const got: unknown[] = [];
  const reading = (async () => {
    for await (
      const batch of readFiles(
        ["gone-dir", "a.json"],
        dir,
        new AbortController().signal,
        (bytes) => [{ n: new TextDecoder().decode(bytes) }],
      )
    ) got.push(...batch);
  })();
  await assert.rejects(reading, (e: Error) => {
    assert.match(e.message, /^cannot read gone-dir: it is a directory, not a file \(.*gone-dir\)$/);
    assert.doesNotMatch(e.message, /os error/);
    return true;
  });
  assert.deepEqual(got, [{ n: "[1]" }]);
});
