/**
 * All pairs of 64-bit hashes within `maxBits` of each other (Hamming distance), without comparing all n² pairs.
 *
 * Multi-index hashing: cut the 64 bits into m chunks. Two hashes within d bits differ in at most ⌊d/m⌋ bits of at
 * least one chunk (pigeonhole), so it is enough to look, for every hash and chunk, at the hashes whose chunk lies
 * within ⌊d/m⌋ bits of its own. Few wide chunks mean many neighbouring chunk values to look up; many narrow chunks
 * mean crowded buckets of chance matches (segmented cells on black give similar hashes, so crowding is the real
 * cost: with 9 chunks of 7 bits, 15,000 cells gave 21 million candidate pairs). `chooseChunks` picks m by the
 * expected count of both.
 */

/** Chunks wider than this would need a bucket table of more than 2^20 slots. */
const MAX_CHUNK_BITS = 20;

export interface HashWords {
  /** Bits 63..32 of each hash. */
  high: Int32Array;
  /** Bits 31..0 of each hash. */
  low: Int32Array;
}

export function hexToWords(hex: string): [number, number] {
  return [parseInt(hex.slice(0, 8), 16) | 0, parseInt(hex.slice(8, 16), 16) | 0];
}

export function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function hammingDistance(words: HashWords, a: number, b: number): number {
  return popcount(words.high[a] ^ words.high[b]) + popcount(words.low[a] ^ words.low[b]);
}

/** Calls `visit(a, b, distance)` once for every pair a < b within `maxBits` (0–63) of each other. */
export function forEachHashPairWithin(
  words: HashWords,
  maxBits: number,
  visit: (a: number, b: number, distance: number) => void,
): void {
  const n = words.high.length;
  if (n < 2) return;
  const chunks = chunkLayout(chooseChunks(n, maxBits));
  const radius = Math.floor(maxBits / chunks.length);
  const values = chunks.map(({ start, width }) => chunkValues(words, start, width));
  chunks.forEach(({ width }, c) => {
    const { order, first } = buckets(values[c], width);
    const own = values[c];
    for (let a = 0; a < n; a++) {
      forEachValueWithin(own[a], width, radius, (value) => {
        for (let slot = first[value]; slot < first[value + 1]; slot++) {
          const b = order[slot];
          if (b <= a) continue;
          // Visit the pair from the first chunk that finds it only.
          if (foundByEarlierChunk(values, c, radius, a, b)) continue;
          const distance = hammingDistance(words, a, b);
          if (distance <= maxBits) visit(a, b, distance);
        }
      });
    }
  });
}

/** The chunk count with the fewest expected lookups plus chance candidates for n uniformly spread hashes. */
export function chooseChunks(n: number, maxBits: number): number {
  const fewest = Math.ceil(64 / MAX_CHUNK_BITS);
  let best = fewest;
  let bestCost = Infinity;
  for (let m = fewest; m <= Math.max(fewest, Math.min(64, maxBits + 1)); m++) {
    const width = 64 / m;
    const neighbours = ballSize(Math.floor(width), Math.floor(maxBits / m));
    const cost = n * m * neighbours * (1 + n / 2 ** width / 2);
    if (cost < bestCost) [best, bestCost] = [m, cost];
  }
  return best;
}

function chunkLayout(m: number): { start: number; width: number }[] {
  return Array.from({ length: m }, (_, c) => {
    const start = Math.floor((c * 64) / m);
    return { start, width: Math.floor(((c + 1) * 64) / m) - start };
  });
}

/** How many values lie within `radius` bits of one value of `width` bits. */
function ballSize(width: number, radius: number): number {
  let total = 0;
  let binomial = 1;
  for (let k = 0; k <= radius && k <= width; k++) {
    total += binomial;
    binomial = (binomial * (width - k)) / (k + 1);
  }
  return total;
}

/** Bits [start, start + width) of every hash, most significant first, as unsigned numbers; width ≤ 32. */
function chunkValues({ high, low }: HashWords, start: number, width: number): Uint32Array {
  const out = new Uint32Array(high.length);
  const mask = width === 32 ? 0xffffffff : 2 ** width - 1;
  for (let i = 0; i < high.length; i++) {
    const shift = 64 - start - width; // bits to drop on the right
    const value =
      shift >= 32 ? high[i] >>> (shift - 32) : shift === 0 ? low[i] : (low[i] >>> shift) | (high[i] << (32 - shift));
    out[i] = (value >>> 0) & mask;
  }
  return out;
}

/** Indices sorted by chunk value (counting sort); bucket v is order[first[v] .. first[v + 1]). */
function buckets(values: Uint32Array, width: number): { order: Int32Array; first: Int32Array } {
  const first = new Int32Array(2 ** width + 1);
  for (const v of values) first[v + 1]++;
  for (let v = 1; v < first.length; v++) first[v] += first[v - 1];
  const next = first.slice(0, -1);
  const order = new Int32Array(values.length);
  values.forEach((v, i) => {
    order[next[v]++] = i;
  });
  return { order, first };
}

/** Calls `visit` for `value` and every value that differs from it in 1 to `radius` of its `width` bits. */
function forEachValueWithin(value: number, width: number, radius: number, visit: (value: number) => void): void {
  const flip = (current: number, fromBit: number, left: number): void => {
    visit(current);
    if (left === 0) return;
    for (let bit = fromBit; bit < width; bit++) flip((current ^ (1 << bit)) >>> 0, bit + 1, left - 1);
  };
  flip(value, 0, Math.min(radius, width));
}

function foundByEarlierChunk(values: Uint32Array[], chunk: number, radius: number, a: number, b: number): boolean {
  for (let c = 0; c < chunk; c++) if (popcount(values[c][a] ^ values[c][b]) <= radius) return true;
  return false;
}
