/**
 * Peak resident memory of processes, from /proc/<pid>/status (VmHWM: the
 * kernel's high-water mark, so a sample taken any time before a process
 * exits sees its peak so far). Deno lets only --allow-all read another
 * process's /proc files, so one `grep` reads them all (--allow-run is
 * enough). Processes gone or without /proc are left out.
 */
export async function peakRssBytes(pids: number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (pids.length === 0) return out;
  try {
    const { stdout } = await new Deno.Command("grep", {
      args: ["-sH", "^VmHWM:", ...pids.map((p) => `/proc/${p}/status`)],
      stdout: "piped",
      stderr: "null",
    }).output();
    for (const line of new TextDecoder().decode(stdout).split("\n")) {
      const m = line.match(/^\/proc\/(\d+)\/status:VmHWM:\s+(\d+)\s+kB/);
      if (m) out.set(Number(m[1]), Number(m[2]) * 1024);
    }
  } catch {
    // no grep: no figure
  }
  return out;
}
