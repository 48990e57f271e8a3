/**
 * The "near" section: bytes per item of near-duplicate state, in process and
 * in Redis (bench/near_state.ts), run as a child process of its own because
 * it measures the heap after forced collections (--expose-gc).
 */
export async function printNearSection(items: number): Promise<void> {
  console.log("\n## near-duplicate state (bench/near_state.ts)");
  const script = new URL("./near_state.ts", import.meta.url).pathname;
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", script, String(items)],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) console.log(`near: bench/near_state.ts exited ${code}`);
}
