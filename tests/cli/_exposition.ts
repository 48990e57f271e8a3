/**
 * Reads Prometheus text exposition back (the subset FlowMetrics writes):
 * `# HELP`/`# TYPE` lines and samples with escaped label values, so tests
 * assert on values rather than on text.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  help: Map<string, string>;
  type: Map<string, string>;
}

export function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: [], help: new Map(), type: new Map() };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === "HELP" ? out.help : out.type).set(meta[2], meta[3]);
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2]?.slice(1, -1) ?? "";
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let l: RegExpExecArray | null;
    let at = 0;
    while ((l = re.exec(body))) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
      at = re.lastIndex;
    }
    if (at !== body.length) throw new Error(`bad labels: ${m[2]}`);
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    out.samples.push({ name: m[1], labels, value });
  }
  return out;
}

/** The one sample of `name` whose labels include `labels`; throws when there is not exactly one. */
export function sample(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = e.samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  if (found.length !== 1) {
    throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  }
  return found[0].value;
}
