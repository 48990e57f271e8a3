import assert from "node:assert/strict";

const MiB = 1024 * 1024;
const CAP_MIB = 50;
const SCRIPT = new URL("./_bomb_memory.ts", import.meta.url).pathname;
const LINUX = Deno.build.os === "linux";

interface Measured {
  rise: number;
  sent: number;
  error: string;
}

/** Runs the bomb in a process of its own, so only its memory is measured (Linux VmHWM). */
async function measure(encoding: string): Promise<Measured> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, encoding, String(CAP_MIB)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

for (
  const [encoding, wire] of [["gzip", "64 × 16 MiB of zeros, 1 MB"], [
    "br",
    "1 GiB of zeros, 1.7 KB",
  ]]
) {
  Deno.test({
    name: `a ${encoding} bomb (${wire}) fails at a 50 MiB cap, memory rising less than cap + 50 MB`,
    ignore: !LINUX,
    async fn() {
      const m = await measure(encoding);
      assert.match(
        m.error,
        new RegExp(
          `response is larger than the limit of ${
            CAP_MIB * MiB
          } bytes \\(maxBytes\\), decoded from ${encoding}$`,
        ),
      );
      assert.ok(
        m.rise < CAP_MIB * MiB + 50_000_000,
        `peak resident memory rose ${(m.rise / MiB).toFixed(1)} MiB for a ${CAP_MIB} MiB cap`,
      );
    },
  });
}
