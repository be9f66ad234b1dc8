/**
 * Near-duplicate pairs: images whose perceptual hashes are close and whose thumbnails agree (see `duplicates.ts`
 * for the thresholds and why). The search runs over distinct contents (pixel hashes), not files, so a result can be
 * remembered by content: a re-audit after a few files changed compares only the new contents against the others
 * and reuses every other pair, instead of searching all 15,000 images again.
 */
import { compareThumbnails } from '../image/hash.js';
import type { ImageHashes } from './duplicates.js';
import { forEachHashPairWithin, hammingDistance, hexToWords, type HashWords } from './hammingPairs.js';

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

/**
 * New contents beyond this many comparisons (new × all) are searched from scratch: the full search costs about as
 * much as comparing a few hundred contents against 15,000.
 */
const MAX_INCREMENTAL_COMPARISONS = 4_000_000;

export interface NearDuplicatePair {
  /** The two files, sorted. */
  paths: [string, string];
  /** Hamming distance of their perceptual hashes. */
  distance: number;
}

/** One search's result by content, to be kept (in the scan cache) for the next audit of the same folder. */
export interface NearDuplicateMemo {
  /** The thresholds it was found with; a memo with another key is not used. */
  key: string;
  /** Pixel hashes of every content searched. */
  contents: string[];
  /** Confirmed pairs as indices into `contents`, with their hash distance. */
  pairs: [number, number, number][];
}

interface Content {
  pixel: string;
  hashes: ImageHashes;
  paths: string[];
}

export function nearDuplicatePairs(
  hashes: Map<string, ImageHashes>,
  options: { maxBits?: number; memo?: NearDuplicateMemo } = {},
): { pairs: NearDuplicatePair[]; memo: NearDuplicateMemo } {
  const candidateBits = Math.max(0, Math.min(31, options.maxBits ?? NEAR_DUPLICATE_CANDIDATE_BITS));
  const key = [
    candidateBits,
    NEAR_DUPLICATE_HASH_ONLY_BITS,
    NEAR_DUPLICATE_MIN_CONTENT_SIMILARITY,
    NEAR_DUPLICATE_MIN_TEXTURE_SIMILARITY,
  ].join(':');
  const contents = distinctContents(hashes);
  const words: HashWords = { high: new Int32Array(contents.length), low: new Int32Array(contents.length) };
  contents.forEach((c, i) => {
    [words.high[i], words.low[i]] = hexToWords(c.hashes.perceptual);
  });
  const confirmed: [number, number, number][] = [];
  const consider = (a: number, b: number, distance: number) => {
    if (isNearDuplicate(contents[a].hashes, contents[b].hashes, distance, candidateBits)) {
      confirmed.push(a < b ? [a, b, distance] : [b, a, distance]);
    }
  };
  const memo = options.memo?.key === key ? options.memo : undefined;
  const known = memo && reusablePairs(memo, contents);
  if (known) {
    confirmed.push(...known.pairs);
    for (const a of known.fresh) {
      for (let b = 0; b < contents.length; b++) {
        if (b === a || (known.isFresh[b] && b < a)) continue; // two new contents: compared once
        const distance = hammingDistance(words, a, b);
        if (distance <= candidateBits) consider(a, b, distance);
      }
    }
  } else {
    forEachHashPairWithin(words, candidateBits, consider);
  }
  const pairs: NearDuplicatePair[] = [];
  for (const [a, b, distance] of confirmed) {
    for (const x of contents[a].paths) {
      for (const y of contents[b].paths) pairs.push({ paths: x < y ? [x, y] : [y, x], distance });
    }
  }
  const byPath = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  pairs.sort((p, q) => p.distance - q.distance || byPath(p.paths[0], q.paths[0]) || byPath(p.paths[1], q.paths[1]));
  return { pairs, memo: { key, contents: contents.map((c) => c.pixel), pairs: confirmed } };
}

function distinctContents(hashes: Map<string, ImageHashes>): Content[] {
  const byPixel = new Map<string, Content>();
  for (const [path, h] of hashes) {
    const content = byPixel.get(h.pixel);
    if (content) content.paths.push(path);
    else byPixel.set(h.pixel, { pixel: h.pixel, hashes: h, paths: [path] });
  }
  return [...byPixel.values()];
}

/**
 * The memo's pairs among contents still present, and the contents it has not seen; undefined when so many are
 * new that searching from scratch is cheaper.
 */
function reusablePairs(
  memo: NearDuplicateMemo,
  contents: Content[],
): { pairs: [number, number, number][]; fresh: number[]; isFresh: Uint8Array } | undefined {
  const indexOf = new Map(contents.map((c, i) => [c.pixel, i]));
  const seen = new Set(memo.contents);
  const fresh = contents.flatMap((c, i) => (seen.has(c.pixel) ? [] : [i]));
  if (fresh.length * contents.length > MAX_INCREMENTAL_COMPARISONS) return undefined;
  const isFresh = new Uint8Array(contents.length);
  for (const i of fresh) isFresh[i] = 1;
  const pairs: [number, number, number][] = [];
  for (const [a, b, distance] of memo.pairs) {
    const x = indexOf.get(memo.contents[a]);
    const y = indexOf.get(memo.contents[b]);
    if (x !== undefined && y !== undefined) pairs.push(x < y ? [x, y, distance] : [y, x, distance]);
  }
  return { pairs, fresh, isFresh };
}

function isNearDuplicate(x: ImageHashes, y: ImageHashes, distance: number, candidateBits: number): boolean {
  if (x.features && y.features) {
    const { content, texture } = compareThumbnails(x.features, y.features);
    return content >= NEAR_DUPLICATE_MIN_CONTENT_SIMILARITY && texture >= NEAR_DUPLICATE_MIN_TEXTURE_SIMILARITY;
  }
  return distance <= Math.min(candidateBits, NEAR_DUPLICATE_HASH_ONLY_BITS);
}

/** A memo read back from disk, checked field by field; undefined when it is not one. */
export function parseNearDuplicateMemo(value: unknown): NearDuplicateMemo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { key, contents, pairs } = value as Record<string, unknown>;
  if (typeof key !== 'string' || !Array.isArray(contents) || !Array.isArray(pairs)) return undefined;
  if (!contents.every((c) => typeof c === 'string')) return undefined;
  const isIndex = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) < contents.length;
  const isPair = (p: unknown) =>
    Array.isArray(p) && p.length === 3 && isIndex(p[0]) && isIndex(p[1]) && Number.isSafeInteger(p[2]);
  if (!pairs.every(isPair)) return undefined;
  return { key, contents: contents as string[], pairs: pairs as [number, number, number][] };
}
