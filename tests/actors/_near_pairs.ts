import type { RawItem } from "../../engine/item.ts";
import { mulberry32 } from "../../adapters/sources/_mulberry32.ts";

/**
 * `n` texts of 200 made-up words, each followed by its copy with the last
 * 28% of its words replaced: 3-word shingles then put each pair at a
 * Jaccard similarity of about 0.55. Originals are titled `a<i>`, copies
 * `b<i>`; the same seed gives the same items.
 */
export function nearPairs(n: number, seed = 7): RawItem[] {
  const rng = mulberry32(seed);
  const word = () =>
    Array.from({ length: 6 }, () => "abcdefghijklmnopqrstuvwxyz"[Math.floor(rng() * 26)]).join("");
  const items: RawItem[] = [];
  for (let p = 0; p < n; p++) {
    const words = Array.from({ length: 200 }, word), copy = words.slice();
    for (let i = 144; i < 200; i++) copy[i] = word();
    items.push({ title: `a${p}`, url: `https://a.example/${p}`, text: words.join(" ") });
    items.push({ title: `b${p}`, url: `https://b.example/${p}`, text: copy.join(" ") });
  }
  return items;
}
