/**
 * Duplicate images: identical pixels (even stored in different files or formats) and near-duplicates (copies
 * re-encoded, rescaled, brightened or given more contrast). A copy in two classes is a contradictory label; a
 * copy in two folds or splits is leakage that inflates validation.
 */
import type { ThumbnailFeatures } from '../image/hash.js';
import { nearDuplicatePairs, type NearDuplicatePair } from './nearDuplicates.js';
import { MAX_EXAMPLE_PATHS, formatCount, type Finding, type Severity } from './findings.js';

export interface ImageHashes {
  /** SHA-256 of width, height and RGB pixels. */
  pixel: string;
  /** 64-bit perceptual hash as 16 hex characters (`thumbnailHash`). */
  perceptual: string;
  /** The thumbnail's content and texture (`thumbnailFeatures`); confirms near-duplicates when present. */
  features?: ThumbnailFeatures;
}

export interface DuplicateContext {
  labelOf: (path: string) => string | undefined;
  groupOf: (path: string) => string | undefined;
  splitOf: (path: string) => string | undefined;
  /** Largest hash distance of a candidate pair (default `NEAR_DUPLICATE_CANDIDATE_BITS`). */
  nearDuplicateDistance?: number;
}

interface DuplicateSet {
  paths: string[];
  distance: number;
  crosses: ('class' | 'fold' | 'split')[];
}

/** `nearPairs`: the near-duplicate pairs when the caller already searched them (with a memo); else searched here. */
export function findDuplicateFindings(
  hashes: Map<string, ImageHashes>,
  context: DuplicateContext,
  nearPairs?: readonly NearDuplicatePair[],
): Finding[] {
  const exact = exactDuplicateSets(hashes, context);
  const near = (nearPairs ?? nearDuplicatePairs(hashes, { maxBits: context.nearDuplicateDistance }).pairs)
    .map(({ paths, distance }) => ({ paths: [...paths], distance, crosses: crossings([...paths], context) }))
    .filter((set) => set.crosses.length > 0);
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
