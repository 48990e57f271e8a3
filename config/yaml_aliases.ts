import { type Alias, type Document, isAlias, isMap, isScalar, isSeq, type Node } from "yaml";

/**
 * How many values the aliases of one flow file may stand for in all. A
 * hand-written flow reuses a block a few times; an alias bomb (anchors made
 * of aliases of anchors, 9 levels of 9) stands for hundreds of millions,
 * which everything after the parser would walk one by one.
 */
export const MAX_ALIAS_VALUES = 10_000;

/** One `*name` in the file, with the node it stands for. */
export interface AliasUse {
  alias: Alias;
  /** Where the alias is written in the flow's data, e.g. `["pipeline", 1, "dedupe"]`. */
  path: PropertyKey[];
  /** The last `&name` before the alias; undefined when there is none. */
  target?: Node;
}

export interface Aliases {
  /** Every alias in file order. */
  uses: AliasUse[];
  targets: Map<Alias, Node | undefined>;
  /** The first alias that makes the flow too large or refers to a node it is inside. */
  bomb?: { use: AliasUse; message: string };
}

/**
 * Finds what each alias stands for in one walk of the document (asking the
 * yaml package, node by node, walks the whole document for every alias) and
 * counts the values they stand for, so an alias bomb is refused at the alias
 * that crosses the limit, before anything expands it. Drops the anchors no
 * alias uses: yaml's toJS scans every anchor before an alias to resolve it,
 * so 60,000 unused anchors made 9,000 aliases take seconds.
 */
export function readAliases(doc: Document): Aliases {
  const uses: AliasUse[] = [];
  const loops = new Set<AliasUse>();
  const anchors = new Map<string, Node>();
  const anchored: Node[] = [];
  const inside = new Set<unknown>();
  const walk = (node: unknown, path: PropertyKey[]) => {
    if (isAlias(node)) {
      const use = { alias: node, path, target: anchors.get(node.source) };
      if (inside.has(use.target)) loops.add(use);
      uses.push(use);
      return;
    }
    // yaml resolves an alias to the last anchor of its name that starts before it.
    const anchor = (node as { anchor?: string } | null)?.anchor;
    if (anchor) {
      anchors.set(anchor, node as Node);
      anchored.push(node as Node);
    }
    inside.add(node);
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        walk(pair.key, path);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    }
    inside.delete(node);
  };
  walk(doc.contents, []);
  const targets = new Map(uses.map((u) => [u.alias, u.target]));
  const used = new Set(targets.values());
  for (const node of anchored) if (!used.has(node)) delete (node as { anchor?: string }).anchor;
  const count = valueCounter(targets);
  let total = 0;
  for (const use of uses) {
    if (loops.has(use)) {
      const message = `alias *${use.alias.source} is inside the &${use.alias.source} it ` +
        "stands for, so its value would never end; point it at an anchor outside it";
      return { uses, targets, bomb: { use, message } };
    }
    total += use.target ? count(use.target) : 0;
    if (total > MAX_ALIAS_VALUES) {
      const message = `too many aliases: with this one, the YAML aliases stand for more than ` +
        `${MAX_ALIAS_VALUES} values (an alias bomb?); a flow reuses a block a few times at most`;
      return { uses, targets, bomb: { use, message } };
    }
  }
  return { uses, targets };
}

/** The number of values (scalars, maps, lists) a node stands for with its aliases expanded. */
function valueCounter(targets: Map<Alias, Node | undefined>): (node: Node) => number {
  const counted = new Map<unknown, number>();
  const count = (node: unknown): number => {
    if (node === null || node === undefined) return 0;
    const known = counted.get(node);
    if (known !== undefined) return known;
    // A loop is refused before its value is counted; this only keeps the count finite.
    counted.set(node, Infinity);
    let n = 1;
    if (isAlias(node)) n = count(targets.get(node));
    else if (isMap(node)) {
      n += node.items.reduce((s: number, p) => s + count(p.key) + count(p.value), 0);
    } else if (isSeq(node)) n += node.items.reduce((s: number, item) => s + count(item), 0);
    counted.set(node, n);
    return n;
  };
  return count;
}
