/**
 * Seeded pseudo-random numbers (sfc32, "small fast counting" generator by Chris Doty-Humphrey) so that
 * demo data, splits and shuffles are reproducible from one seed on every platform — `Math.random`
 * cannot be seeded.
 */

export interface Rng {
  /** The seed path this stream was derived from, e.g. `1/plan/subjects`. */
  readonly key: string;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [min, max). */
  uniform(min: number, max: number): number;
  /** Gaussian draw (Box–Muller). */
  normal(mean?: number, sd?: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** Fisher–Yates shuffle in place; returns the same array for chaining. */
  shuffle<T>(items: T[]): T[];
  /**
   * An independent stream named `label`. It depends only on this stream's key and the label, never on
   * how many numbers were drawn here, so adding a draw in one place does not silently reshuffle an
   * unrelated split elsewhere. Forking the same label twice therefore yields the same stream.
   */
  fork(label: string): Rng;
}

/** A seed is identified by its text: `createRng(1)` and `createRng('1')` are the same stream. */
export function createRng(seed: number | string): Rng {
  if (typeof seed === 'number' && !Number.isFinite(seed)) {
    throw new RangeError(`Seed must be a finite number, got ${seed}`);
  }
  return new Sfc32(String(seed));
}

const TWO_POW_32 = 4294967296;
/** sfc32's first outputs still echo the hashed seed words; discarding a few decorrelates close keys. */
const WARM_UP_ROUNDS = 15;

class Sfc32 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly key: string) {
    [this.a, this.b, this.c, this.d] = hashKeyToWords(key);
    for (let i = 0; i < WARM_UP_ROUNDS; i++) this.nextUint32();
  }

  private nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > TWO_POW_32) {
      throw new RangeError(`int(n) needs an integer 1 ≤ n ≤ 2^32, got ${n}`);
    }
    return Math.floor(this.next() * n);
  }

  uniform(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  normal(mean = 0, sd = 1): number {
    // 1 - next() lies in (0, 1], keeping log() finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
    return mean + sd * radius * Math.cos(2 * Math.PI * this.next());
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Cannot pick from an empty list');
    return items[this.int(items.length)];
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  fork(label: string): Rng {
    return new Sfc32(`${this.key}/${label}`);
  }
}

/**
 * Spreads a string over sfc32's four state words: one multiplicative hash lane per word with distinct
 * odd multipliers, each lane also fed by its neighbour so no word depends on the string alone, then
 * a murmur3-style avalanche.
 */
function hashKeyToWords(key: string): [number, number, number, number] {
  const multipliers = [0x9e3779b1, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f];
  const lanes = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a];
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    for (let lane = 0; lane < 4; lane++) {
      lanes[lane] = Math.imul(lanes[lane] ^ code ^ (lanes[(lane + 1) % 4] >>> 13), multipliers[lane]);
    }
  }
  const words = lanes.map((lane, index) => avalanche(lane ^ Math.imul(key.length + index, 0x9e3779b1)));
  return [words[0], words[1], words[2], words[3]];
}

function avalanche(value: number): number {
  let h = value;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/* Plain uniform sources, for the model's initial weights and the Grad-CAM sanity checks' randomisation. */

/** A source of uniform numbers in [0, 1). */
export type RandomSource = () => number;

/** A seed becomes a seeded generator; a generator is used as given. */
export function randomSourceOf(seedOrRandom: number | RandomSource): RandomSource {
  return typeof seedOrRandom === 'number' ? mulberry32(seedOrRandom) : seedOrRandom;
}

/**
 * mulberry32: small, fast and seedable, so two runs with the same seed start from the same weights. Not sfc32
 * above: a seed's initial weights must stay what they were (test/initial-weights.test.ts pins them).
 */
function mulberry32(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` draws of N(0, std²), two per pair of uniforms (Box–Muller), as the weights' initialiser. */
export function randomNormals(count: number, std: number, random: RandomSource): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    // Box–Muller; 1 - u keeps the logarithm's argument in (0, 1].
    const radius = std * Math.sqrt(-2 * Math.log(1 - random()));
    const angle = 2 * Math.PI * random();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/** `count` draws of U(-bound, bound). */
export function randomUniforms(count: number, bound: number, random: RandomSource): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (2 * random() - 1) * bound;
  return out;
}
