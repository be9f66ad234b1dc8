/**
 * Duplicate images: identical pixels (even stored in different files or formats) and near-duplicates (copies
 * re-encoded, rescaled, brightened or given more contrast). A copy in two classes is a contradictory label; a
 * copy in two folds or splits is leakage that inflates validation.
 */
import { compareThumbnails, type ThumbnailFeatures } from '../image/hash.js';
import { MAX_EXAMPLE_PATHS, formatCount, type Finding, type Severity } from './findings.js';

export interface ImageHashes {
  /** SHA-256 of width, height and RGB pixels. */
  pixel: string;
  /** 64-bit perceptual hash as 16 hex characters (`thumbnailHash`). */
  perceptual: string;
  /** The thumbnail's content and texture (`thumbnailFeatures`); confirms near-duplicates when present. */
  features?: ThumbnailFeatures;
}

/**
 * A pair of images is a near-duplicate when its perceptual hashes (of the texture inside the outline,
 * `thumbnailHash`) are within `NEAR_DUPLICATE_CANDIDATE_BITS` and its thumbnails agree both in content (outline and
 * intensities, `thumbnailSimilarity`) and in texture (`textureSimilarity`). Segmented cells on black all look alike
 * in outline and shading; the texture is what tells two cells apart. Measured on demo cells at 450 px: copies
 * brightened (×1.15 + 12), given 30 % more contrast, or JPEG-encoded at q75–85 and rescaled to 224–300 px keep
 * hashes ≤ 8 bits apart, content ≥ 0.86 and texture ≥ 0.80 (90 % ≥ 0.92); distinct cells with the very same
 * outline and shading have texture similarity −0.3 to 0.9 (median 0.3, 90 % ≤ 0.88: the ones with almost no
 * chromatin texture, which are near-identical pictures), and 0.02 % of pairs of distinct cells have hashes ≤ 8 bits
 * apart. test/near-duplicates.test.ts prints these figures for its cells.
 */
export const NEAR_DUPLICATE_CANDIDATE_BITS = 8;
export const NEAR_DUPLICATE_MIN_CONTENT_SIMILARITY = 0.85;
export const NEAR_DUPLICATE_MIN_TEXTURE_SIMILARITY = 0.85;
/** Without thumbnails the hash alone decides, so it must be closer. */
export const NEAR_DUPLICATE_HASH_ONLY_BITS = 4;

export interface DuplicateContext {
  labelOf: (path: string) => string | undefined;
  groupOf: (path: string) => string | undefined;
  splitOf: (path: string) => string | undefined;
  /** Largest hash distance of a candidate pair (default: the constants above). */
  nearDuplicateDistance?: number;
}

interface DuplicateSet {
  paths: string[];
  distance: number;
  crosses: ('class' | 'fold' | 'split')[];
}

export function findDuplicateFindings(hashes: Map<string, ImageHashes>, context: DuplicateContext): Finding[] {
  const exact = exactDuplicateSets(hashes, context);
  const near = nearDuplicatePairs(hashes, context).filter((set) => set.crosses.length > 0);
  const findings: Finding[] = [];
  if (exact.length > 0) findings.push(duplicateFinding(exact, 'exact'));
  if (near.length > 0) findings.push(duplicateFinding(near, 'near'));
  return findings;
}

function crossings(paths: string[], context: DuplicateContext): DuplicateSet['crosses'] {
  const crosses: DuplicateSet['crosses'] = [];
  const differs = (f: (p: string) => string | undefined) =>
    new Set(paths.map(f).filter((v) => v !== undefined)).size > 1;
  if (differs(context.labelOf)) crosses.push('class');
  if (differs(context.groupOf)) crosses.push('fold');
  if (differs(context.splitOf)) crosses.push('split');
  return crosses;
}

function exactDuplicateSets(hashes: Map<string, ImageHashes>, context: DuplicateContext): DuplicateSet[] {
  const byHash = new Map<string, string[]>();
  for (const [path, { pixel }] of hashes) {
    if (!byHash.has(pixel)) byHash.set(pixel, []);
    byHash.get(pixel)!.push(path);
  }
  return [...byHash.values()]
    .filter((paths) => paths.length > 1)
    .map((paths) => ({ paths: paths.sort(), distance: 0, crosses: crossings(paths, context) }));
}

/**
 * Candidate pairs by Hamming distance of their hashes, then confirmed by their thumbnails. Multi-index hashing:
 * split the 64 bits into d + 1 chunks; two hashes within d bits agree exactly on at least one chunk (pigeonhole),
 * so only images sharing a chunk value are compared, instead of all n² pairs.
 */
function nearDuplicatePairs(hashes: Map<string, ImageHashes>, context: DuplicateContext): DuplicateSet[] {
  const entries = [...hashes].map(([path, h]) => ({ path, pixel: h.pixel, features: h.features }));
  const high = new Int32Array(entries.length);
  const low = new Int32Array(entries.length);
  [...hashes.values()].forEach((h, i) => {
    [high[i], low[i]] = hexToWords(h.perceptual);
  });
  const candidateBits = Math.max(0, Math.min(31, context.nearDuplicateDistance ?? NEAR_DUPLICATE_CANDIDATE_BITS));
  const hashOnlyBits = Math.min(candidateBits, NEAR_DUPLICATE_HASH_ONLY_BITS);
  const considered = new Set<number>();
  const pairs: DuplicateSet[] = [];
  forEachPairSharingAChunk(high, low, candidateBits + 1, (a, b) => {
    const distance = popcount(high[a] ^ high[b]) + popcount(low[a] ^ low[b]);
    if (distance > candidateBits) return;
    const pairKey = a * entries.length + b;
    if (considered.has(pairKey)) return; // shares more than one chunk
    considered.add(pairKey);
    const x = entries[a];
    const y = entries[b];
    if (x.pixel === y.pixel) return; // exact duplicates are reported separately
    if (x.features && y.features) {
      const { content, texture } = compareThumbnails(x.features, y.features);
      if (content < NEAR_DUPLICATE_MIN_CONTENT_SIMILARITY || texture < NEAR_DUPLICATE_MIN_TEXTURE_SIMILARITY) return;
    } else if (distance > hashOnlyBits) {
      return;
    }
    const paths = [x.path, y.path].sort();
    pairs.push({ paths, distance, crosses: crossings(paths, context) });
  });
  return pairs.sort((a, b) => a.distance - b.distance || (a.paths[0] < b.paths[0] ? -1 : 1));
}

/** Calls `visit(a, b)` (a < b) for every pair whose hashes agree on one of `chunks` bit ranges, possibly repeatedly. */
function forEachPairSharingAChunk(
  high: Int32Array,
  low: Int32Array,
  chunks: number,
  visit: (a: number, b: number) => void,
): void {
  for (let chunk = 0; chunk < chunks; chunk++) {
    const start = Math.floor((chunk * 64) / chunks);
    const length = Math.floor(((chunk + 1) * 64) / chunks) - start;
    const buckets = new Map<number, number[]>();
    for (let i = 0; i < high.length; i++) {
      const value = bitsAt(high[i], low[i], start, length);
      const bucket = buckets.get(value);
      if (bucket) bucket.push(i);
      else buckets.set(value, [i]);
    }
    for (const bucket of buckets.values()) {
      for (let a = 0; a < bucket.length; a++) for (let b = a + 1; b < bucket.length; b++) visit(bucket[a], bucket[b]);
    }
  }
}

/** Bits [start, start + length) of the 64-bit number high:low, most significant first; length ≤ 32. */
function bitsAt(high: number, low: number, start: number, length: number): number {
  const mask = length === 32 ? -1 : (1 << length) - 1;
  if (start + length <= 32) return (high >>> (32 - start - length)) & mask;
  if (start >= 32) return (low >>> (64 - start - length)) & mask;
  const lowBits = start + length - 32;
  return (((high << lowBits) | (low >>> (32 - lowBits))) & mask) >>> 0;
}

function hexToWords(hex: string): [number, number] {
  return [parseInt(hex.slice(0, 8), 16) >>> 0, parseInt(hex.slice(8, 16), 16) >>> 0];
}

function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function duplicateFinding(sets: DuplicateSet[], kind: 'exact' | 'near'): Finding {
  const acrossClasses = sets.filter((s) => s.crosses.includes('class')).length;
  const acrossPartitions = sets.filter((s) => s.crosses.includes('fold') || s.crosses.includes('split')).length;
  const severity: Severity = acrossClasses + acrossPartitions > 0 ? 'error' : 'warning';
  const images = sets.reduce((n, s) => n + s.paths.length, 0);
  const what = kind === 'exact' ? 'identical pixels' : 'near-identical content';
  const parts = [
    `${formatCount(sets.length)} ${kind === 'exact' ? 'sets' : 'pairs'} of images (${formatCount(images)} files) have ${what}`,
  ];
  if (acrossClasses > 0) parts.push(`${formatCount(acrossClasses)} of them with different labels`);
  if (acrossPartitions > 0)
    parts.push(`${formatCount(acrossPartitions)} across folds or splits, which leaks training images into validation`);
  return {
    code: 'duplicate-images',
    severity,
    message: `${parts.join('; ')} (e.g. ${sets[0].paths.slice(0, 2).join(' and ')}).`,
    evidence: {
      kind,
      sets: sets.slice(0, 200).map(({ paths, distance, crosses }) => ({ paths, distance, crosses })),
      count: sets.length,
      acrossClasses,
      acrossPartitions,
    },
    paths: sets.flatMap((s) => s.paths).slice(0, MAX_EXAMPLE_PATHS),
  };
}
