/**
 * The rules README's "Architecture" section states, held: nothing in
 * engine/ imports from the folders above it (not even a type), the modules
 * import each other in no cycle, and the section names every file of
 * engine/ (and none that is gone), so it keeps matching the code.
 *
 * Imports are read from the source text: every relative one, by `from`,
 * by a bare `import` or by a dynamic `import()`, outside comments (doc
 * examples import from mod.ts, as a user would); a type-only import counts
 * too.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
/** The code a user runs: what tests, benches and the fault runner import is theirs to choose. */
const SKIPPED = new Set(["tests", "bench", "chaos", "docs", "out", "node_modules"]);
const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;

/** The project's .ts files outside `skipped`, relative to ROOT, with "/" between parts. */
function sourceFiles(dir = ROOT, skipped = SKIPPED): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.name.startsWith(".") || skipped.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...sourceFiles(path, skipped));
    else if (entry.name.endsWith(".ts")) out.push(relative(ROOT, path));
  }
  return out.sort();
}

/** The local modules `file` imports, relative to ROOT; lines of comments are left out. */
export function importsOf(file: string, text: string): string[] {
  const code = text.split("\n").filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line)).join("\n");
  return [...code.matchAll(IMPORT)].map(([, spec]) =>
    relative(ROOT, resolve(ROOT, dirname(file), spec))
  );
}

function graph(): Map<string, string[]> {
  const files = sourceFiles();
  return new Map(
    files.map((f) => [f, importsOf(f, Deno.readTextFileSync(join(ROOT, f)))]),
  );
}

/** The modules of each import cycle of `g` (Tarjan's strongly connected components of two or more). */
function cycles(g: Map<string, string[]>): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop()!;; w = stack.pop()!) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1) found.push(component.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}

// The sample is in single quotes: tests/unit_selection_test.ts follows what this file imports in double ones.
Deno.test("import reading: static, type-only, re-exports and dynamic imports count; comments do not", () => {
  const text = [
    `import { a } from './a.ts';`,
    `import type { B } from '../b.ts';`,
    "import {",
    "  c,",
    `} from './c.ts';`,
    `export * from './d.ts';`,
    `const e = await import('./e.ts');`,
    `import './f.ts';`,
    ` * import { x } from '../mod.ts';`,
    `// import { y } from './y.ts';`,
    `import { z } from 'zod';`,
  ].join("\n");
  assert.deepEqual(importsOf("engine/x.ts", text), [
    "engine/a.ts",
    "b.ts",
    "engine/c.ts",
    "engine/d.ts",
    "engine/e.ts",
    "engine/f.ts",
  ]);
});

Deno.test("nothing in engine/ imports from the folders above it, not even a type", () => {
  const upward = [...graph()].flatMap(([file, deps]) =>
    file.startsWith("engine/")
      ? deps.filter((d) => !d.startsWith("engine/")).map((d) => `${file} imports ${d}`)
      : []
  );
  assert.deepEqual(upward, []);
});

Deno.test("the modules import each other in no cycle", () => {
  const g = graph();
  assert.ok(g.size > 100, `only ${g.size} modules read`);
  assert.deepEqual(cycles(g), []);
  // The check itself: a cycle made on purpose is found.
  const made = new Map(g);
  made.set("engine/item.ts", [...g.get("engine/item.ts")!, "engine/run_flow.ts"]);
  assert.ok(
    cycles(made).some((c) => c.includes("engine/item.ts") && c.includes("engine/run_flow.ts")),
  );
});

Deno.test("README's Architecture section names every file of engine/, and no file that is not there", () => {
  const readme = Deno.readTextFileSync(join(ROOT, "README.md"));
  const start = readme.indexOf("\n## Architecture");
  assert.ok(start >= 0, "README has no Architecture section");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const engine = sourceFiles().filter((f) => f.startsWith("engine/"));
  const named = new Set(
    [...section.matchAll(/`(?:[a-z_]+\/)*([a-z_]+\.ts)`/g)].map(([, name]) => name),
  );
  const unnamed = engine.filter((f) => !named.has(f.slice(f.lastIndexOf("/") + 1)));
  assert.deepEqual(unnamed, [], "add them to README's Architecture section");
  const everyFile = sourceFiles(ROOT, new Set(["out", "node_modules"]));
  const files = new Set(everyFile.map((f) => f.slice(f.lastIndexOf("/") + 1)));
  const gone = [...named].filter((name) => !files.has(name));
  assert.deepEqual(gone, [], "README's Architecture section names files that are not there");
});
