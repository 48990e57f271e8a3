/**
 * Builds eld's tables and hands them to the thread that started this worker
 * (EldTables.load), moving the typed arrays instead of copying them.
 */
import { buffersOf, buildEldSnapshot } from "./_eld_tables.ts";

const self = globalThis as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

try {
  const tables = await buildEldSnapshot();
  self.postMessage({ tables }, buffersOf(tables));
} catch (error) {
  self.postMessage({ error: `eld tables: ${(error as Error).message}` });
}
