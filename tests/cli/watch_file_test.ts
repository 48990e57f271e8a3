import assert from "node:assert/strict";
import { join } from "node:path";
import { watchFile } from "../../cli/watch_file.ts";

/** Calls of `watchFile`'s onChange on `file`, and a wait for the next one (up to 5 s). */
function watched(file: string) {
  let calls = 0;
  const watcher = watchFile(file, () => void calls++);
  return {
    async next(after: () => Promise<void> | void): Promise<number> {
      const before = calls;
      await after();
      for (let i = 0; i < 100 && calls === before; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      return calls - before;
    },
    close: () => watcher.close(),
  };
}

Deno.test("an edit of the file a symlink points to is a change of the flow file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-watch-" });
  await Deno.mkdir(join(dir, "real"));
  await Deno.mkdir(join(dir, "link"));
  await Deno.writeTextFile(join(dir, "real", "flow.yaml"), "name: a\n");
  await Deno.symlink("../real/flow.yaml", join(dir, "link", "flow.yaml"));
  const w = watched(join(dir, "link", "flow.yaml"));
  try {
    const seen = await w.next(() =>
      Deno.writeTextFile(join(dir, "real", "flow.yaml"), "name: b\n")
    );
    assert.equal(seen, 1, "the target's edit was not seen");
  } finally {
    w.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a ConfigMap's update (its ..data link swapped) is a change, every time", async () => {
  // flow.yaml -> ..data/flow.yaml, ..data -> ..v1; the kubelet writes ..v2, points a new link
  // at it and renames that link over ..data. Nothing named flow.yaml changes.
  const dir = await Deno.makeTempDir({ prefix: "millrace-watch-" });
  const version = async (v: number) => {
    await Deno.mkdir(join(dir, `..v${v}`));
    await Deno.writeTextFile(join(dir, `..v${v}`, "flow.yaml"), `name: v${v}\n`);
  };
  const swap = async (v: number) => {
    await version(v);
    await Deno.symlink(`..v${v}`, join(dir, "..data_tmp"));
    await Deno.rename(join(dir, "..data_tmp"), join(dir, "..data"));
  };
  await version(1);
  await Deno.symlink("..v1", join(dir, "..data"));
  await Deno.symlink("..data/flow.yaml", join(dir, "flow.yaml"));
  const w = watched(join(dir, "flow.yaml"));
  try {
    assert.equal(await w.next(() => swap(2)), 1, "the first swap was not seen");
    assert.equal(await w.next(() => swap(3)), 1, "the second swap was not seen");
    // And an unrelated file beside it is not the flow's change.
    assert.equal(await w.next(() => Deno.writeTextFile(join(dir, "other.txt"), "x")), 0);
  } finally {
    w.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a link further down a chain swapped, or a linked directory made again, is a change", async () => {
  // app/flow.yaml -> cfg/current.yaml -> v1.yaml; then current.yaml is pointed at v2.yaml. And
  // the directory a link leads into removed and made again, then edited: the watch of the
  // removed directory was dead, and nothing was seen again for the life of the process.
  const dir = await Deno.makeTempDir({ prefix: "millrace-watch-" });
  await Deno.mkdir(join(dir, "app"));
  await Deno.mkdir(join(dir, "cfg"));
  await Deno.writeTextFile(join(dir, "cfg", "v1.yaml"), "name: v1\n");
  await Deno.writeTextFile(join(dir, "cfg", "v2.yaml"), "name: v2\n");
  await Deno.symlink("v1.yaml", join(dir, "cfg", "current.yaml"));
  await Deno.symlink(join(dir, "cfg", "current.yaml"), join(dir, "app", "flow.yaml"));
  const w = watched(join(dir, "app", "flow.yaml"));
  try {
    const swapped = await w.next(async () => {
      await Deno.remove(join(dir, "cfg", "current.yaml"));
      await Deno.symlink("v2.yaml", join(dir, "cfg", "current.yaml"));
    });
    assert.ok(swapped >= 1, "the middle link's swap was not seen");
    await w.next(() => Deno.remove(join(dir, "cfg"), { recursive: true }));
    const remade = await w.next(async () => {
      await Deno.mkdir(join(dir, "cfg"));
      await Deno.writeTextFile(join(dir, "cfg", "v1.yaml"), "name: v3\n");
      await Deno.symlink("v1.yaml", join(dir, "cfg", "current.yaml"));
    });
    assert.ok(remade >= 1, "the directory made again was not seen");
    const edited = await w.next(() =>
      Deno.writeTextFile(join(dir, "cfg", "v1.yaml"), "name: v4\n")
    );
    assert.equal(edited, 1, "an edit after it was not seen");
  } finally {
    w.close();
    await Deno.remove(dir, { recursive: true });
  }
});
