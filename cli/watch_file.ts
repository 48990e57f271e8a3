import { basename, dirname, resolve } from "node:path";

/** How long a file must stay unchanged after an event before it is read: editors write in steps. */
const SETTLE_MS = 300;

/**
 * Calls `onChange` after `file` changed and then stayed unchanged for a
 * moment. Watches the file's directory, not the file: an editor that saves
 * by writing a new file and renaming it over the old one would end a watch
 * on the file itself after its first save. A file reached through a
 * symlink is watched where the link points too, and a link swapped in its
 * own directory counts as a change: a Kubernetes ConfigMap mounts
 * `flow.yaml -> ..data/flow.yaml` and updates it by renaming a new
 * `..data` link over the old one, which a watch of `flow.yaml`'s name
 * alone never saw, nor an edit of a symlink's target elsewhere.
 */
export function watchFile(file: string, onChange: () => unknown): { close(): void } {
  const path = resolve(file);
  const watchers = new Map<string, Deno.FsWatcher>();
  let names = namesOf(path);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const changed = () => {
    // A swapped link may point into another directory now: watch it too.
    names = namesOf(path);
    arm();
    onChange();
  };
  const arm = () => {
    for (const dir of names.keys()) {
      if (watchers.has(dir)) continue;
      let watcher: Deno.FsWatcher;
      try {
        watcher = Deno.watchFs(dir, { recursive: false });
      } catch {
        continue; // gone: a later change re-arms
      }
      watchers.set(dir, watcher);
      (async () => {
        try {
          for await (const event of watcher) {
            if (!event.paths.some((p) => names.get(dirname(p))?.has(basename(p)))) continue;
            clearTimeout(timer);
            timer = setTimeout(changed, SETTLE_MS);
          }
        } catch {
          // Closed.
        }
      })();
    }
  };
  arm();
  return {
    close() {
      clearTimeout(timer);
      for (const watcher of watchers.values()) watcher.close();
    },
  };
}

/**
 * The names whose change is the file's, by directory: its own; where it is
 * a symlink, the first step of the link's target beside it (`..data`); and
 * the file the links lead to, in its own directory.
 */
function namesOf(path: string): Map<string, Set<string>> {
  const names = new Map<string, Set<string>>();
  const add = (p: string) => {
    const dir = dirname(p);
    names.set(dir, (names.get(dir) ?? new Set()).add(basename(p)));
  };
  add(path);
  try {
    const target = Deno.readLinkSync(path);
    const first = target.split("/")[0];
    if (!target.startsWith("/") && first !== "" && first !== "." && first !== "..") {
      add(resolve(dirname(path), first));
    }
  } catch {
    // not a link
  }
  try {
    const real = Deno.realPathSync(path);
    if (real !== path) add(real);
  } catch {
    // missing for now (an editor's save in steps)
  }
  return names;
}
