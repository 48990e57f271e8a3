import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
} from "yaml";
import type { Locate } from "./check_flow.ts";
import { formatPath, type Problem } from "../engine/flow_error.ts";
import { escapeRegExp } from "../engine/escape_regexp.ts";
import { type PathProblem, show } from "./zod_issues.ts";
import { substituteEnv } from "./env_vars.ts";
import { readAliases } from "./yaml_aliases.ts";

/** A flow file read as data, with a way back from any field to where it is written. */
export type FlowDocument =
  | { ok: true; value: unknown; locate: Locate; problems: PathProblem[]; filled: Filled[] }
  | { ok: false; problems: Problem[] };

/** A value filled from the environment: as written (`${OPENAI_API_KEY}`) and as filled. */
export interface Filled {
  written: string;
  value: string;
}

/**
 * `message` with every value filled from the environment named by its
 * variables instead (`the value of ${OPENAI_API_KEY}, 27 characters`): a
 * secret put in the wrong field (a key as `baseUrl`, a password as the
 * Redis URL) was printed whole in the error about that field. Values under
 * 4 characters are left: they hide nothing and would match everywhere.
 */
export function hideFilled(message: string, filled: readonly Filled[]): string {
  // Every form each value is shown in, replaced in one pass: a second pass over the first's
  // "(the value of ${X:-true}, …)" replaced its "true" again.
  const named = new Map<string, string>();
  for (const { written, value } of filled) {
    if (value.length < 4) continue;
    const name = `(the value of ${written}, ${value.length} characters)`;
    // As errors show a value: quoted ("got \"…\""), or cut to its first 57 characters when
    // long (they were printed, the cut form matching no whole value).
    for (const form of [JSON.stringify(value), show(value)]) named.set(form, name);
    // Unquoted `${VAR}` is read as YAML reads it: a number is shown bare. Not a boolean, nor a
    // short number, which hide nothing and are words of other messages ("expected true or …").
    const typed = retype(value);
    if (typeof typed === "number" && String(typed).length >= 6) named.set(String(typed), name);
  }
  if (named.size === 0) return message;
  const forms = [...named.keys()].sort((a, b) => b.length - a.length)
    .map((f) =>
      /^[\d.eE+-]+$/.test(f) ? `(?<![\\w.])${escapeRegExp(f)}(?![\\w.])` : escapeRegExp(f)
    );
  return message.replace(new RegExp(forms.join("|"), "g"), (found) => named.get(found) ?? found);
}

/** Defaults worth offering when a well-known field's variable is unset. */
const EXAMPLE_DEFAULTS: Record<string, string> = { redis: "redis://127.0.0.1:6379" };

/**
 * Parses YAML text, fills `${VAR}` in string values from `env`, and keeps
 * the parsed nodes so every path can be mapped to a line and column. Syntax
 * errors end it here; unset variables are returned as problems so they are
 * reported together with the rest of the flow's problems.
 */
export function readFlowDocument(
  text: string,
  env: Record<string, string | undefined>,
): FlowDocument {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const pos = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    return { ok: false, problems: syntaxProblems(doc, text, pos) };
  }
  // A key that is a map or list: refused before anything writes it as text, which yaml does
  // anew at each level of keys nested in keys (40 levels, 161 bytes, ran out of memory).
  const odd = keyNotText(doc.contents, []);
  if (odd) {
    const message = "a key here is a map or a list, not a name; write `name: value`";
    return { ok: false, problems: [{ ...pos(odd.offset), path: formatPath(odd.path), message }] };
  }
  const aliases = readAliases(doc);
  const problems: PathProblem[] = aliases.uses.filter((u) => !u.target).map((u) => ({
    path: u.path,
    at: "value",
    message: `unknown alias *${u.alias.source}; define &${u.alias.source} before using it`,
    pos: pos(u.alias.range?.[0] ?? 0),
  }));
  const placed = () =>
    problems.map((p) => ({ ...p.pos, path: formatPath(p.path), message: p.message }));
  if (aliases.bomb) {
    const { use, message } = aliases.bomb;
    problems.push({ path: use.path, at: "value", message, pos: pos(use.alias.range?.[0] ?? 0) });
    return { ok: false, problems: placed() };
  }
  // An env problem points at the `${` itself, not just at the value.
  const filled: Filled[] = [];
  fillEnv(
    doc.contents,
    [],
    env,
    text,
    (p, offset) => problems.push({ ...p, pos: pos(offset) }),
    filled,
  );
  let value: unknown;
  try {
    // readAliases has bounded what the aliases stand for, and names the alias when they are too
    // many; yaml's own count (maxAliasCount) would refuse with no place.
    value = doc.toJS({ maxAliasCount: -1 });
  } catch (e) {
    // An unknown alias (reported above): the data cannot be built.
    return {
      ok: false,
      problems: problems.length > 0 ? placed() : [{ path: "", message: String(e) }],
    };
  }
  return { ok: true, value, locate: locateIn(doc, text, aliases.targets, pos), problems, filled };
}

type Report = (p: PathProblem, offset: number) => void;

/** The first map key in `node` that is a map or a list (not a scalar or an alias), and where. */
function keyNotText(
  node: unknown,
  path: PropertyKey[],
): { path: PropertyKey[]; offset: number } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      if (key !== null && !isScalar(key) && !isAlias(key)) {
        return { path, offset: key.range?.[0] ?? 0 };
      }
      const found = keyNotText(pair.value, [...path, isScalar(key) ? String(key.value) : "?"]);
      if (found) return found;
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const found = keyNotText(item, [...path, i]);
      if (found) return found;
    }
  }
  return undefined;
}

/** Substitutes env references in every string value (never in keys), in place. */
function fillEnv(
  node: unknown,
  path: PropertyKey[],
  env: Record<string, string | undefined>,
  text: string,
  report: Report,
  filled: Filled[],
): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      fillEnv(pair.value, [...path, key], env, text, report, filled);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => fillEnv(item, [...path, i], env, text, report, filled));
  } else if (isScalar(node) && typeof node.value === "string") {
    fillScalar(node as Scalar<string>, path, env, text, report, filled);
  }
}

function fillScalar(
  node: Scalar<string>,
  path: PropertyKey[],
  env: Record<string, string | undefined>,
  text: string,
  report: Report,
  filled: Filled[],
): void {
  const result = substituteEnv(node.value, env);
  if (result.ok) {
    if (!result.changed) return;
    filled.push({ written: node.value, value: result.value });
    (node as Scalar<unknown>).value = node.type === "PLAIN" ? retype(result.value) : result.value;
    return;
  }
  const start = node.range?.[0] ?? 0;
  const raw = text.slice(start, node.range?.[1] ?? start);
  const needle = result.variable ? "${" + result.variable : "${";
  const inRaw = raw.indexOf(needle);
  let message = result.message;
  if (result.variable) {
    const example = EXAMPLE_DEFAULTS[path.join(".")] ?? "default";
    message += `; set it or write \${${result.variable}:-${example}}`;
  }
  report({ path, at: "value", message }, start + Math.max(inRaw, 0));
  // Leave the value as written; check_flow.ts hides what would fail because of it.
}

/**
 * An unquoted `${PORT}` reads as YAML would read its value: a number or a
 * boolean, so `capacity: ${CAPACITY:-1024}` works. Quoted values stay strings.
 */
function retype(value: string): string | number | boolean {
  if (/^[-+]?(\d[\d_]*)?\.?\d+([eE][-+]?\d+)?$/.test(value)) {
    return Number(value.replaceAll("_", ""));
  }
  if (value === "true" || value === "false") return value === "true";
  return value;
}

/**
 * Maps a data path to the node written for it: the key for "key", the value
 * otherwise. A path that is not in the document (a missing field) falls back
 * to the nearest ancestor that is, at its key. A list item left empty (a
 * lone `-`) has neither: it is placed at its dash.
 */
function locateIn(
  doc: Document,
  text: string,
  targets: Map<Alias, Node | undefined>,
  pos: (offset: number) => { line: number; column: number },
): Locate {
  return (path, at) => {
    let node: unknown = doc.contents;
    let key: Node | undefined;
    let matched = 0;
    let dash: number | undefined;
    for (const seg of path) {
      dash = undefined;
      if (isAlias(node)) node = targets.get(node);
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        key = pair.key as Node;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
        key = undefined;
        node = node.items[seg];
        dash = hasText(node) ? undefined : dashBefore(text, (node as Node | null)?.range?.[0]);
      } else break;
      matched++;
    }
    const valueStart = hasText(node) ? (node as Node).range?.[0] : undefined;
    const keyStart = key?.range?.[0];
    const whole = matched === path.length;
    const offset = whole && dash !== undefined
      ? dash
      : whole && at === "value"
      ? valueStart ?? keyStart
      : keyStart ?? valueStart;
    return offset === undefined ? undefined : pos(offset);
  };
}

/** The offset of the `-` an empty list item's node follows (past the spaces after the dash). */
function dashBefore(text: string, offset: number | undefined): number | undefined {
  if (offset === undefined) return undefined;
  let i = offset - 1;
  while (i >= 0 && (text[i] === " " || text[i] === "\t")) i--;
  return text[i] === "-" ? i : undefined;
}

/** A node that is written in the file (an empty `key:` has a null value with no text). */
function hasText(node: unknown): boolean {
  if (!node || typeof node !== "object" || !("range" in node) || !node.range) return false;
  if (isScalar(node) && node.value === null && node.source === "") return false;
  return true;
}

/** The first `${...}` of a line that stands outside quotes: the one that broke a flow map. */
function unquotedRef(line: string): string | undefined {
  for (const m of line.matchAll(/\$\{[^}\s]*\}/g)) {
    const before = line.slice(0, m.index);
    const quoted = (q: string) => (before.split(q).length - 1) % 2 === 1;
    if (!quoted('"') && !quoted("'")) return m[0];
  }
  return undefined;
}

function syntaxProblems(
  doc: Document,
  text: string,
  pos: (offset: number) => { line: number; column: number },
): Problem[] {
  const lineText = text.split(/\r?\n/);
  const seen = new Set<number>();
  const out: Problem[] = [];
  for (const error of doc.errors) {
    // An unclosed quote is found at the end of the file, where the scalar it opened ends: a
    // 7-line file's error was at line 8. Said where the quote opened.
    const opened = error.code === "MISSING_CHAR" && /quote/i.test(error.message)
      ? unclosedQuote(text)
      : undefined;
    // A key written twice right after a key with no value is reported at that empty value,
    // the line before: said at the key itself.
    const offset = error.code === "DUPLICATE_KEY"
      ? error.pos[0] + /^\s*/.exec(text.slice(error.pos[0]))![0].length
      : error.pos[0];
    const at = pos(opened ?? offset);
    // Later errors on the same line are almost always echoes of the first.
    if (seen.has(at.line)) continue;
    seen.add(at.line);
    let message = error.message.split("\n")[0].replace(/ at line \d+, column \d+:?\s*$/, "");
    message = message.charAt(0).toLowerCase() + message.slice(1);
    if (error.code === "DUPLICATE_KEY") {
      const key = /^[^:#\n]*/.exec(text.slice(offset))![0].trim().replace(/^["']|["']$/g, "");
      const first = firstKeyLine(lineText, at.line, at.column, key);
      message = `the key "${key}" is written twice in one map${
        first ? ` (first at line ${first})` : ""
      }: a map holds each key once, so rename or remove one`;
    } else if (/multiple documents/.test(message)) {
      // The yaml library's words ("please use YAML.parseAllDocuments()") are for programmers.
      message = `a flow file holds one YAML document: remove the "---" at line ${at.line} and ` +
        "what follows it (one flow per file)";
    }
    const ref = unquotedRef(lineText[at.line - 1] ?? "");
    if (ref) {
      message += `; inside { } or [ ] quote a value that holds \${...} ("${ref}"), which makes ` +
        "it a string, or write the map in block style (one field a line) for a number or a boolean";
    }
    const kind = error.code === "DUPLICATE_KEY" ? "YAML error" : "YAML syntax error";
    out.push({ ...at, path: "", message: `${kind}: ${message}` });
  }
  return out;
}

/**
 * Where the quoted scalar that never closes opens: a `"` or `'` where a
 * value may start (after `:`, `-`, `[`, `{`, `,` or at a line's start),
 * followed to its closing quote (`\"` escapes in double quotes, `''` in
 * single ones), comments skipped; undefined when every quote closes.
 */
function unclosedQuote(text: string): number | undefined {
  let open: number | undefined, quote = "";
  // Where a quoted value may start: at a line's start, after [ { , or after ": " and "- ".
  let spaced = false, last = "\n";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (open !== undefined) {
      if (quote === '"' && c === "\\") i++;
      else if (c === quote) {
        if (quote === "'" && text[i + 1] === "'") i++;
        else open = undefined, last = c, spaced = false;
      }
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      spaced = true;
      continue;
    }
    if (c === "#" && (spaced || last === "\n")) {
      while (i < text.length && text[i] !== "\n") i++;
      i--;
      continue;
    }
    const canStart = last === "\n" || "[{,".includes(last) || (":-".includes(last) && spaced);
    if ((c === "&" || c === "!") && canStart) {
      // An anchor or a tag before the value (`path: &p "items.jsonl`): the value starts after it.
      while (i + 1 < text.length && !/\s/.test(text[i + 1])) i++;
      continue;
    }
    if ((c === '"' || c === "'") && canStart) open = i, quote = c;
    last = c;
    spaced = false;
  }
  return open;
}

/**
 * The line (1-based) where the map holding the key at `line`:`column`
 * first writes `key`: looking up from it, within the lines of that map (the
 * map ends above at a line less indented, such as another source's name).
 */
function firstKeyLine(
  lines: string[],
  line: number,
  column: number,
  key: string,
): number | undefined {
  let first: number | undefined;
  for (let i = line - 2; i >= 0; i--) {
    const text = lines[i];
    const indent = text.search(/\S/);
    if (indent < 0 || text[indent] === "#") continue;
    // A list item's first key stands after its "- ", and its line is where its map begins.
    const item = text.startsWith("- ", indent);
    const keyAt = item ? indent + 2 + text.slice(indent + 2).search(/\S/) : indent;
    if (keyAt + 1 > column) continue; // a line of a map nested deeper
    if (keyAt + 1 < column) break; // above the map
    if (text.startsWith(key, keyAt) && /^["']?\s*:/.test(text.slice(keyAt + key.length))) {
      first = i + 1;
    }
    if (item) break;
  }
  return first;
}
