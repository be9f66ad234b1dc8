/**
 * Duplicate images: identical pixels (even stored in different files or formats) and near-duplicates
 * (perceptual hash within a few bits). A copy in two classes is a contradictory label; a copy in two
 * folds or splits is leakage that inflates validation.
 */
import { thumbnailDistance } from '../image/hash.js';
import { MAX_EXAMPLE_PATHS, formatCount, type Finding, type Severity } from './findings.js';

export interface ImageHashes {
  /** SHA-256 of width, height and RGB pixels. */
  pixel: string;
  /** 64-bit perceptual hash as 16 hex characters. */
  perceptual: string;
  /** 32×32 luma thumbnail (`lumaThumbnail`); confirms near-duplicates when present. */
  thumbnail?: Uint8Array;
}

/**
 * Largest thumbnail difference (`thumbnailDistance`, 0–255) for a near-duplicate. Segmented cells on black
 * are all round blobs to a 64-bit hash, so close hashes alone flag distinct cells (measured on the demo
 * data: ≥ 5 for distinct cells with hashes ≤ 4 bits apart, 0.01 for a copy with one pixel changed).
 */
export const NEAR_DUPLICATE_MAX_THUMBNAIL_DIFFERENCE = 2.5;

export interface DuplicateContext {
  labelOf: (path: string) => string | undefined;
  groupOf: (path: string) => string | undefined;
  splitOf: (path: string) => string | undefined;
  nearDuplicateDistance: number;
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
 * Pairs within `nearDuplicateDistance` bits. Multi-index hashing: split the 64 bits into 8 bytes; two
 * hashes within d ≤ 7 bits agree exactly on at least one byte (pigeonhole), so only images sharing a
 * byte value at a position are compared, instead of all n² pairs.
 */
function nearDuplicatePairs(hashes: Map<string, ImageHashes>, context: DuplicateContext): DuplicateSet[] {
  const maxDistance = Math.min(7, Math.max(0, context.nearDuplicateDistance));
  const entries = [...hashes].map(([path, h]) => ({
    path,
    pixel: h.pixel,
    thumbnail: h.thumbnail,
    bits: hexToWords(h.perceptual),
  }));
  const pairs = new Map<string, DuplicateSet>();
  for (let position = 0; position < 8; position++) {
    const buckets = new Map<number, number[]>();
    entries.forEach((entry, i) => {
      const word = entry.bits[position >> 2];
      const byte = (word >>> ((position & 3) * 8)) & 0xff;
      if (!buckets.has(byte)) buckets.set(byte, []);
      buckets.get(byte)!.push(i);
    });
    for (const bucket of buckets.values()) {
      for (let a = 0; a < bucket.length; a++) {
        for (let b = a + 1; b < bucket.length; b++) {
          const x = entries[bucket[a]];
          const y = entries[bucket[b]];
          if (x.pixel === y.pixel) continue; // exact duplicates are reported separately
          const distance = popcount(x.bits[0] ^ y.bits[0]) + popcount(x.bits[1] ^ y.bits[1]);
          if (distance > maxDistance) continue;
          if (
            x.thumbnail &&
            y.thumbnail &&
            thumbnailDistance(x.thumbnail, y.thumbnail) > NEAR_DUPLICATE_MAX_THUMBNAIL_DIFFERENCE
          )
            continue;
          const key = x.path < y.path ? `${x.path}\u0000${y.path}` : `${y.path}\u0000${x.path}`;
          if (!pairs.has(key)) {
            const paths = [x.path, y.path].sort();
            pairs.set(key, { paths, distance, crosses: crossings(paths, context) });
          }
        }
      }
    }
  }
  return [...pairs.values()].sort((a, b) => a.distance - b.distance || (a.paths[0] < b.paths[0] ? -1 : 1));
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
