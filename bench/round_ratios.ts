/**
 * The ratio of each round's pair of runs, taken back to back, and their
 * median. On a shared machine a burst of load can land on one side's best
 * run and not the other's, moving a ratio of bests by 2x between runs of
 * the bench; a pair run back to back shares its load, so the median of the
 * rounds' ratios moves less. Both are printed: quote the median.
 */
export function roundRatios(ratios: readonly number[]): string {
  const sorted = [...ratios].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return `per round (each pair back to back): ${
    ratios.map((r) => `${r.toFixed(2)}x`).join(", ")
  }; median ${median.toFixed(2)}x`;
}
