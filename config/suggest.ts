import { distance } from "fastest-levenshtein";

/**
 * The candidate nearest to `word` by edit distance, or undefined when none is
 * close enough to be a likely typo: a wild guess misleads more than silence.
 */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const target = word.toLowerCase();
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const other = candidate.toLowerCase();
    const d = swapsTwo(target, other) ? 1 : distance(target, other);
    if (d <= limit && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * True when `a` is `b` with two neighbouring letters swapped ("quite",
 * "quiet"): one slip of the fingers, though Levenshtein counts it as two.
 */
function swapsTwo(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i + 1 < a.length && a[i] === b[i + 1] && a[i + 1] === b[i] &&
    a.slice(i + 2) === b.slice(i + 2);
}

/** `; did you mean "threshold"?`, or "" when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const best = nearest(word, candidates);
  return best === undefined ? "" : `; did you mean ${JSON.stringify(best)}?`;
}
