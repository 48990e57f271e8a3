/** A seeded random number generator: numbers in [0, 1), and its state to resume from. */
export interface Rng {
  (): number;
  /** The 32-bit state: `mulberry32(rng.state())` repeats what `rng` draws next. */
  state(): number;
}

/**
 * A small seeded PRNG (mulberry32): 32 bits of state, fast, and good enough
 * for test data. Math.random cannot be seeded, and demo data must come out
 * the same for the same seed on every machine.
 */
export function mulberry32(seed: number): Rng {
  let a = seed | 0;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Object.assign(next, { state: () => a });
}
