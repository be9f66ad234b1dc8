// The near-duplicate candidate search against brute force, on hashes spread as real ones are (clustered, not
// uniform), and the remembered search: a re-audit with a few new contents gives exactly the full search's pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chooseChunks,
  forEachHashPairWithin,
  hammingDistance,
  type HashWords,
} from '../src/core/audit/hammingPairs.js';
import type { ImageHashes } from '../src/core/audit/duplicates.js';
import { nearDuplicatePairs } from '../src/core/audit/nearDuplicates.js';
import { createRng, type Rng } from '../src/core/random.js';

/** n hashes around a few centres, each centre's members flipped in a few random bits: crowded chunk buckets. */
function clusteredWords(rng: Rng, n: number, centres: number, flips: number): HashWords {
  const centreWords = Array.from({ length: centres }, () => [rng.int(2 ** 32) | 0, rng.int(2 ** 32) | 0]);
  const words: HashWords = { high: new Int32Array(n), low: new Int32Array(n) };
  for (let i = 0; i < n; i++) {
    let [high, low] = rng.pick(centreWords);
    for (let f = rng.int(flips + 1); f > 0; f--) {
      const bit = rng.int(64);
      if (bit < 32) high ^= 1 << bit;
      else low ^= 1 << (bit - 32);
    }
    words.high[i] = high;
    words.low[i] = low;
  }
  return words;
}

function bruteForce(words: HashWords, maxBits: number): string[] {
  const pairs: string[] = [];
  for (let a = 0; a < words.high.length; a++) {
    for (let b = a + 1; b < words.high.length; b++) {
      const d = hammingDistance(words, a, b);
      if (d <= maxBits) pairs.push(`${a}-${b}-${d}`);
    }
  }
  return pairs.sort();
}

test('every pair within d bits is found exactly once, for d from 0 to 20', () => {
  const rng = createRng('hamming-pairs');
  const words = clusteredWords(rng, 700, 12, 14);
  for (const maxBits of [0, 1, 3, 4, 5, 8, 9, 12, 16, 20]) {
    const found: string[] = [];
    forEachHashPairWithin(words, maxBits, (a, b, d) => found.push(`${a}-${b}-${d}`));
    const expected = bruteForce(words, maxBits);
    assert.ok(expected.length > 0, `the test set has pairs within ${maxBits} bits`);
    assert.deepEqual(found.sort(), expected, `pairs within ${maxBits} bits`);
  }
});

test('more hashes get fewer, wider chunks, never wider than the bucket table allows', () => {
  assert.ok(chooseChunks(15_000, 8) >= 4);
  assert.ok(chooseChunks(15_000, 0) >= 4, 'no chunk wider than 16 bits');
  assert.ok(chooseChunks(1_000_000, 8) <= chooseChunks(1_000, 8));
});

function syntheticHashes(words: HashWords, prefix: string): Map<string, ImageHashes> {
  const hashes = new Map<string, ImageHashes>();
  for (let i = 0; i < words.high.length; i++) {
    const hex = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
    // No thumbnails: the hash distance alone decides (NEAR_DUPLICATE_HASH_ONLY_BITS).
    hashes.set(`${prefix}/img${i}.bmp`, {
      pixel: `${i}`.padStart(64, '0'),
      perceptual: hex(words.high[i]) + hex(words.low[i]),
    });
  }
  return hashes;
}

test('a search remembered by content and redone after edits gives the full search’s pairs', () => {
  const rng = createRng('near-memo');
  const words = clusteredWords(rng, 2_000, 30, 6);
  const hashes = syntheticHashes(words, 'fold_0');
  const first = nearDuplicatePairs(hashes);
  assert.ok(first.pairs.length > 10, `the set has near-duplicates (${first.pairs.length})`);

  // Edit: 10 files get new content (and so new hashes), 5 vanish, one is copied under a second name.
  const edited = new Map(hashes);
  const paths = [...hashes.keys()];
  for (let k = 0; k < 10; k++) {
    const path = paths[(k * 173) % paths.length];
    const old = hashes.get(path)!;
    const flipped = (parseInt(old.perceptual.slice(15), 16) ^ 1).toString(16);
    edited.set(path, { pixel: `edited${k}`.padStart(64, 'f'), perceptual: old.perceptual.slice(0, 15) + flipped });
  }
  for (let k = 0; k < 5; k++) edited.delete(paths[1000 + k * 7]);
  const paired = first.pairs.at(-1)!.paths[0];
  edited.set('fold_1/copy.bmp', hashes.get(paired)!);

  const full = nearDuplicatePairs(edited);
  const incremental = nearDuplicatePairs(edited, { memo: first.memo });
  assert.deepEqual(incremental.pairs, full.pairs);
  assert.deepEqual(incremental.memo.contents, full.memo.contents);
  assert.ok(
    incremental.pairs.some((p) => p.paths.includes('fold_1/copy.bmp')),
    'the copied content takes part in the pairs of its original',
  );
  // A memo made with other thresholds is not used.
  const other = nearDuplicatePairs(edited, { maxBits: 2, memo: first.memo });
  assert.deepEqual(other.pairs, nearDuplicatePairs(edited, { maxBits: 2 }).pairs);
});
