// Near-duplicates on real generated 450 px cells (the demo generator's renderCell), written as files and audited:
// copies brightened, given more contrast, re-encoded as JPEG and rescaled are found across folds; distinct cells
// with the very same outline and shading but their own chromatin texture and stain are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { auditDataset } from '../src/core/audit/runAudit.js';
import { randomStainTint, renderCell, type DemoLabel } from '../src/core/demo/generate.js';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { lumaThumbnail, textureSimilarity, thumbnailSimilarity } from '../src/core/image/hash.js';
import { createRng, type Rng } from '../src/core/random.js';
import type { RawImage } from '../src/core/types.js';

const SIZE = 450;

function cell(seed: number, label: DemoLabel): RawImage {
  return renderCell(createRng(`near-dup/${seed}`), label, SIZE, randomStainTint(createRng(`near-dup/stain/${seed}`)));
}

/**
 * The same outline, size, position, brightness and shading as `cell(seed)` (every draw renderCell makes itself),
 * but the chromatin grain and speckle (its forked streams) and the stain of another cell.
 */
function sameOutlineOtherCell(seed: number, label: DemoLabel): RawImage {
  const outline = createRng(`near-dup/${seed}`);
  const texture = createRng(`near-dup/other-texture/${seed}`);
  const rng: Rng = {
    key: outline.key,
    next: () => outline.next(),
    int: (n) => outline.int(n),
    uniform: (min, max) => outline.uniform(min, max),
    normal: (mean, sd) => outline.normal(mean, sd),
    chance: (p) => outline.chance(p),
    pick: (items) => outline.pick(items),
    shuffle: (items) => outline.shuffle(items),
    fork: (name) => texture.fork(name),
  };
  return renderCell(rng, label, SIZE, randomStainTint(createRng(`near-dup/other-stain/${seed}`)));
}

function mapPixels(image: RawImage, f: (v: number) => number): RawImage {
  return { ...image, data: image.data.map((v) => Math.max(0, Math.min(255, Math.round(f(v))))) };
}

async function jpegRescaled(image: RawImage, side: number, quality: number): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(side, side)
    .jpeg({ quality })
    .toBuffer();
}

async function decodedJpeg(bytes: Buffer): Promise<RawImage> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: 3, data: new Uint8Array(data) };
}

function describe(a: RawImage, b: RawImage): string {
  const [x, y] = [lumaThumbnail(a), lumaThumbnail(b)];
  return `content ${thumbnailSimilarity(x, y).toFixed(2)}, texture ${textureSimilarity(x, y).toFixed(2)}`;
}

async function tree(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, Uint8Array>) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-near-dup-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const [file, bytes] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), bytes);
  }
  return root;
}

interface NearSet {
  paths: string[];
  crosses: string[];
}

async function nearPairs(root: string): Promise<NearSet[]> {
  const report = await auditDataset(root, { cacheDir: false, concurrency: 0 });
  const near = report.findings.find((f) => f.code === 'duplicate-images' && f.evidence.kind === 'near');
  return near ? (near.evidence.sets as NearSet[]) : [];
}

const SEEDS = [1, 2, 3, 4];

test('a brightened or contrast-stretched copy in another fold is found', async (t) => {
  const files: Record<string, Uint8Array> = {};
  const expected: string[] = [];
  for (const seed of SEEDS) {
    const label: DemoLabel = seed % 2 ? 'all' : 'hem';
    const original = cell(seed, label);
    const brighter = mapPixels(original, (v) => v * 1.15 + 12); // black turns grey too
    const stretched = mapPixels(original, (v) => (v - 100) * 1.3 + 100);
    files[`fold_0/${label}/cell_${seed}.bmp`] = encodeBmp24(original);
    files[`fold_1/${label}/bright_${seed}.bmp`] = encodeBmp24(brighter);
    files[`fold_2/${label}/contrast_${seed}.bmp`] = encodeBmp24(stretched);
    expected.push(`cell_${seed}~bright_${seed}`, `cell_${seed}~contrast_${seed}`);
    t.diagnostic(`seed ${seed}: brightened ${describe(original, brighter)}; contrast ${describe(original, stretched)}`);
  }
  // Distinct cells beside them, so a detector that flags everything fails.
  for (const seed of [11, 12, 13]) files[`fold_1/all/other_${seed}.bmp`] = encodeBmp24(cell(seed, 'all'));
  const pairs = await nearPairs(await tree(t, files));
  const found = pairs.map((p) => p.paths.map((f) => path.basename(f, '.bmp')).join('~'));
  for (const pair of expected) assert.ok(found.includes(pair), `${pair} not found; found ${found.join(', ')}`);
  assert.ok(pairs.every((p) => p.crosses.includes('fold')));
  assert.ok(!found.some((pair) => pair.includes('other_')), `distinct cells flagged: ${found.join(', ')}`);
});

test('a copy re-encoded as JPEG and rescaled is found', async (t) => {
  const files: Record<string, Uint8Array> = {};
  const expected: string[] = [];
  for (const seed of SEEDS) {
    const label: DemoLabel = seed % 2 ? 'all' : 'hem';
    const original = cell(seed, label);
    const small = await jpegRescaled(original, 300, 85);
    const smaller = await jpegRescaled(
      mapPixels(original, (v) => v * 0.9),
      224,
      75,
    );
    files[`fold_0/${label}/cell_${seed}.bmp`] = encodeBmp24(original);
    files[`fold_1/${label}/small_${seed}.jpg`] = small;
    files[`fold_2/${label}/smaller_${seed}.jpg`] = smaller;
    expected.push(`cell_${seed}~small_${seed}`, `cell_${seed}~smaller_${seed}`);
    t.diagnostic(
      `seed ${seed}: 300 px q85 ${describe(original, await decodedJpeg(small))}; ` +
        `224 px q75 dimmed ${describe(original, await decodedJpeg(smaller))}`,
    );
  }
  const pairs = await nearPairs(await tree(t, files));
  const found = pairs.map((p) => p.paths.map((f) => path.basename(f).replace(/\.\w+$/, '')).join('~'));
  for (const pair of expected) assert.ok(found.includes(pair), `${pair} not found; found ${found.join(', ')}`);
});

test('distinct cells with the same outline and a different stain are not near-duplicates', async (t) => {
  const files: Record<string, Uint8Array> = {};
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const label: DemoLabel = seed % 2 ? 'all' : 'hem';
    const a = cell(seed, label);
    const b = sameOutlineOtherCell(seed, label);
    files[`fold_0/${label}/cell_${seed}.bmp`] = encodeBmp24(a);
    files[`fold_1/${label}/twin_${seed}.bmp`] = encodeBmp24(b);
    t.diagnostic(`seed ${seed} (${label}): ${describe(a, b)}`);
  }
  const pairs = await nearPairs(await tree(t, files));
  assert.deepEqual(
    pairs.map((p) => p.paths),
    [],
    'distinct cells of the same outline were called near-identical',
  );
});
