import { basename, dirname, resolve } from "node:path";

/** How long a file must stay unchanged after an event before it is read: editors write in steps. */
const SETTLE_MS = 300;

/**
 * Calls `onChange` after `file` changed and then stayed unchanged for a
 * moment. Watches the file's directory, not the file: an editor that saves
 * by writing a new file and renaming it over the old one would end a watch
 * on the file itself after its first save.
 */
export function watchFile(file: string, onChange: () => unknown): { close(): void } {
  const path = resolve(file);
  const watcher = Deno.watchFs(dirname(path), { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    try {
      for await (const event of watcher) {
        if (!event.paths.some((p) => p === path || basename(p) === basename(path))) continue;
        clearTimeout(timer);
        timer = setTimeout(onChange, SETTLE_MS);
      }
    } catch {
      // Closed.
    }
  })();
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
