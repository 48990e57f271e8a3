import { basename, dirname, resolve } from "node:path";

/** How long a file must stay unchanged after an event before it is read: editors write in steps. */
const SETTLE_MS = 300;

/** How often the file is looked at besides the watch (see watchFile). */
const POLL_MS = 1000;

/**
 * Calls `onChange` after `file` changed and then stayed unchanged for a
 * moment. Watches the file's directory, not the file: an editor that saves
 * by writing a new file and renaming it over the old one would end a watch
 * on the file itself after its first save. And looks at the file the path
 * leads to once a second (its inode, time and size): a file reached through
 * symlinks changes where no watch of its own directory sees it, as a
 * Kubernetes ConfigMap volume updates (`flow.yaml -> ..data/flow.yaml`, a
 * new `..data` renamed over the old), as a link's target edited in another
 * directory, one further down a chain of links, or one in a directory
 * removed and made again. A stat a second costs nothing next to a flow.
 */
export function watchFile(file: string, onChange: () => unknown): { close(): void } {
  const path = resolve(file);
  const watcher = Deno.watchFs(dirname(path), { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let seen = identity(path);
  const settle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      seen = identity(path);
      onChange();
    }, SETTLE_MS);
  };
  const poll = setInterval(() => {
    if (identity(path) !== seen) settle();
  }, POLL_MS);
  (async () => {
    try {
      for await (const event of watcher) {
        if (event.paths.some((p) => p === path || basename(p) === basename(path))) settle();
      }
    } catch {
      // Closed.
    }
  })();
  return {
    close() {
      clearTimeout(timer);
      clearInterval(poll);
      watcher.close();
    },
  };
}

/** The file `path` leads to, links followed: its inode, modification time and size. */
function identity(path: string): string {
  try {
    const { ino, mtime, size } = Deno.statSync(path);
    return `${ino}:${mtime?.getTime()}:${size}`;
  } catch {
    return "missing";
  }
}
