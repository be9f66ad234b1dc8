// The training data pipeline on a small generated C-NMC-like dataset: splits, preprocessing, cache, batches.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { auditScan } from '../src/core/audit/audit.js';
import { readLabelTables } from '../src/core/audit/runAudit.js';
import {
  augmentPixels,
  batchCount,
  batches,
  classWeights,
  epochOrder,
  examplesFor,
  type Batch,
  type BatchOptions,
  type Example,
} from '../src/core/data/batches.js';
import {
  cacheFilePath,
  cacheKey,
  defaultImageCacheDir,
  prepareImages,
  readPreprocessed,
  type PreparedImages,
} from '../src/core/data/cache.js';
import {
  CENTER_CROP_FRACTION,
  IMAGENET_MEAN,
  IMAGENET_STD,
  cropBox,
  normaliseInto,
  preprocessImage,
  resizeRgb,
} from '../src/core/data/preprocess.js';
import {
  assignSplits,
  findSubjectOverlap,
  subjectReader,
  summariseSplits,
  type SplitName,
} from '../src/core/data/splits.js';
import type { DatasetSpec } from '../src/core/datasetSpec.js';
import { generateDemoDataset, type DemoManifest, type DemoOptions } from '../src/core/demo/generate.js';
import { decodeImage } from '../src/core/image/decode.js';
import { combinedLabeler, type Labeler } from '../src/core/labels.js';
import { createRng } from '../src/core/random.js';
import { scanDataset } from '../src/core/audit/scan.js';
import type { RawImage } from '../src/core/types.js';
import { assertSpecConsistent } from './helpers/auditConsistency.js';

const SMALL: DemoOptions = {
  imageSize: 32,
  imagesPerFold: 24,
  allSubjectsPerFold: 4,
  hemSubjectsPerFold: 3,
  validationImages: 9,
};

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function freshDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

interface Audited {
  manifest: DemoManifest;
  spec: DatasetSpec;
  paths: string[];
  labelOf: Labeler;
  subjectOf: (path: string) => string | undefined;
}

/** Generates once per options and audits it the way the trainer will: scan, label tables, audit spec. */
function audited(options: DemoOptions): () => Promise<Audited> {
  let pending: Promise<Audited> | undefined;
  return () =>
    (pending ??= (async () => {
      const manifest = await generateDemoDataset(await freshDir('data-pipeline-'), options);
      const scan = await scanDataset(manifest.root);
      const csvTables = await readLabelTables(scan);
      const report = auditScan(scan, { csvTables });
      assertSpecConsistent(report, scan);
      const { spec } = report;
      return {
        manifest,
        spec,
        paths: scan.images.map((image) => image.path),
        labelOf: combinedLabeler(spec.labelSources, csvTables),
        subjectOf: subjectReader(spec.subjectPattern, csvTables, spec.subjectFolderDepth),
      };
    })());
}
const clean = audited(SMALL);
const withCorruptFiles = audited({ ...SMALL, corruptFiles: 3 });

function countingDecoder(): { decode: (bytes: Uint8Array) => Promise<RawImage>; count: () => number } {
  let decodes = 0;
  return {
    decode: (bytes) => {
      decodes++;
      return decodeImage(bytes);
    },
    count: () => decodes,
  };
}

async function collect(
  prepared: PreparedImages,
  examples: readonly Example[],
  options: BatchOptions,
): Promise<Batch[]> {
  const all: Batch[] = [];
  for await (const batch of batches(prepared, examples, options)) all.push(batch);
  return all;
}

function image(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  return { width, height, channels: 3, data };
}

/** Channel 0 of an RGB image, row by row: enough to read gradients and crops. */
function reds(pixels: Uint8Array, width: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < pixels.length; i += width * 3) {
    rows.push(Array.from({ length: width }, (_, x) => pixels[i + x * 3]));
  }
  return rows;
}

describe('splits', () => {
  test('folds: the held-out fold validates, other folds train, the preliminary test set is test', async () => {
    const { spec, paths, labelOf, subjectOf, manifest } = await clean();
    assert.deepEqual(spec.split, { kind: 'folds', depth: 2, validationGroup: 'fold_2' });
    const { splitOf, imagesSplitWithoutSubject } = assignSplits(spec, paths, labelOf, subjectOf);
    assert.equal(imagesSplitWithoutSubject, 0);
    assert.equal(splitOf.size, manifest.images.length);
    for (const demo of manifest.images) {
      const expected: SplitName = demo.fold === 'validation' ? 'test' : demo.fold === 2 ? 'val' : 'train';
      assert.equal(splitOf.get(demo.path), expected, demo.path);
    }
    assert.deepEqual(findSubjectOverlap(splitOf, subjectOf), []);

    const summary = summariseSplits(splitOf, labelOf, subjectOf);
    assert.deepEqual(
      summary.map((s) => s.split),
      ['train', 'val', 'test'],
    );
    const val = summary.find((s) => s.split === 'val')!;
    assert.deepEqual(val.byClass, { all: 16, hem: 8 });
    assert.equal(val.subjects, 7);
    assert.equal(summary.find((s) => s.split === 'test')!.images, 9);
    assert.equal(summary.find((s) => s.split === 'test')!.imagesWithoutSubject, 0, 'test subjects come from the CSV');
  });

  test('predefined: each split folder keeps its role; unlabelled images are left out', () => {
    const paths: string[] = [];
    for (const split of ['train', 'validation', 'test']) {
      for (let i = 0; i < 3; i++) paths.push(`${split}/all/UID_${i}_1_1_all.bmp`, `${split}/hem/UID_H${i}_1_1_hem.bmp`);
    }
    paths.push('unlabelled/cell.bmp');
    const spec: Pick<DatasetSpec, 'split' | 'groups' | 'splits'> = {
      split: { kind: 'predefined', depth: 1 },
      groups: null,
      splits: null,
    };
    const labelOf: Labeler = (p) => (p.startsWith('unlabelled/') ? undefined : p.split('/')[1]);
    const { splitOf } = assignSplits(spec, paths, labelOf, () => undefined);
    assert.equal(splitOf.size, 18);
    assert.equal(splitOf.get('train/all/UID_0_1_1_all.bmp'), 'train');
    assert.equal(splitOf.get('validation/hem/UID_H2_1_1_hem.bmp'), 'val');
    assert.equal(splitOf.get('test/all/UID_1_1_1_all.bmp'), 'test');
    assert.equal(splitOf.has('unlabelled/cell.bmp'), false);
  });

  test('subject-disjoint: whole subjects held out per class, seeded, no subject on both sides', async () => {
    const { paths, labelOf, subjectOf } = await clean();
    const spec = {
      split: { kind: 'subject-disjoint', seed: 7, validationFraction: 0.25 },
      groups: null,
      splits: null,
    } as const;
    const first = assignSplits(spec, paths, labelOf, subjectOf);
    assert.deepEqual(findSubjectOverlap(first.splitOf, subjectOf), []);
    assert.equal(first.imagesSplitWithoutSubject, 0);
    const summary = summariseSplits(first.splitOf, labelOf, subjectOf);
    const val = summary.find((s) => s.split === 'val')!;
    // 12+4 ALL and 9+3 HEM subjects (training folds + test set): a quarter of each.
    const valSubjects = new Set([...first.splitOf].filter(([, s]) => s === 'val').map(([p]) => subjectOf(p)));
    const valSubjectsOf = (label: string) =>
      [...valSubjects].filter((s) => paths.some((p) => subjectOf(p) === s && labelOf(p) === label)).length;
    assert.equal(valSubjectsOf('all'), 4);
    assert.equal(valSubjectsOf('hem'), 3);
    assert.equal(val.subjects, 7);

    assert.deepEqual(
      assignSplits(spec, [...paths].reverse(), labelOf, subjectOf).splitOf,
      sortedMap(first.splitOf, paths),
    );
    const reseeded = assignSplits({ ...spec, split: { ...spec.split, seed: 8 } }, paths, labelOf, subjectOf);
    assert.notDeepEqual([...reseeded.splitOf.values()], [...first.splitOf.values()]);
  });

  test('subject-disjoint without subjects falls back to a stratified image split and says so', async () => {
    const { paths, labelOf } = await clean();
    const spec = {
      split: { kind: 'subject-disjoint', seed: 1, validationFraction: 0.2 },
      groups: null,
      splits: null,
    } as const;
    const noSubject = subjectReader('^no-such-pattern$');
    const { splitOf, imagesSplitWithoutSubject, notes } = assignSplits(spec, paths, labelOf, noSubject);
    assert.equal(imagesSplitWithoutSubject, paths.length);
    assert.match(notes.join(' '), /split is by image/);
    for (const label of ['all', 'hem']) {
      const ofClass = paths.filter((p) => labelOf(p) === label);
      const held = ofClass.filter((p) => splitOf.get(p) === 'val').length;
      assert.equal(held, Math.round(ofClass.length * 0.2), label);
    }
  });

  test('a subject found in two splits is reported', () => {
    const splitOf = new Map<string, SplitName>([
      ['a/UID_1_1_1_all.bmp', 'train'],
      ['b/UID_1_2_1_all.bmp', 'val'],
      ['b/UID_2_1_1_all.bmp', 'val'],
    ]);
    assert.deepEqual(findSubjectOverlap(splitOf, subjectReader('^UID_(H?\\d+)_')), [
      { subject: '1', where: { train: 1, val: 1 } },
    ]);
  });
});

/** The same entries in the order of `paths`, so two maps can be compared regardless of insertion order. */
function sortedMap<V>(map: Map<string, V>, paths: string[]): Map<string, V> {
  return new Map(paths.filter((p) => map.has(p)).map((p) => [p, map.get(p)!]));
}

describe('preprocessing', () => {
  test('shrinking averages areas, enlarging interpolates bilinearly', () => {
    const gradient = image(4, 4, (x) => [x * 64, 255 - x * 64, 7]);
    const small = resizeRgb(gradient, 2, 2);
    assert.deepEqual(reds(small, 2), [
      [32, 160],
      [32, 160],
    ]);
    assert.deepEqual([small[1], small[2]], [223, 7]);

    const pair = image(2, 1, (x) => [x * 255, 0, 0]);
    assert.deepEqual(reds(resizeRgb(pair, 4, 1), 4), [[0, 64, 191, 255]]);
    // A non-integer ratio: 3 → 2 gives each target 1.5 source pixels.
    assert.deepEqual(
      reds(
        resizeRgb(
          image(3, 1, (x) => [[0, 90, 180][x], 0, 0]),
          2,
          1,
        ),
        2,
      ),
      [[30, 150]],
    );
    assert.equal(preprocessImage(gradient, { size: 4 }).length, 48);
  });

  test('grey images come out as RGB', () => {
    const grey: RawImage = { width: 2, height: 2, channels: 1, data: Uint8Array.from([10, 20, 30, 40]) };
    assert.deepEqual([...preprocessImage(grey, { size: 1 })], [25, 25, 25]);
  });

  test('centre crop keeps the central square', () => {
    const source = image(8, 8, (x, y) => [y * 8 + x, 0, 0]);
    const side = Math.round(8 * CENTER_CROP_FRACTION);
    assert.deepEqual(cropBox(source, 'center'), { left: 1, top: 1, side: 6 });
    const cropped = preprocessImage(source, { size: side, crop: 'center' });
    assert.deepEqual(reds(cropped, side)[0], [9, 10, 11, 12, 13, 14]);
    assert.deepEqual(reds(cropped, side)[5], [49, 50, 51, 52, 53, 54]);
  });

  test('cell crop: the non-black bounding box plus a margin, squared, inside the image', () => {
    const cell = (left: number, top: number) =>
      image(40, 40, (x, y) => (x >= left && x < left + 6 && y >= top && y < top + 4 ? [200, 100, 150] : [3, 2, 5]));
    // 6×4 box, margin ⌈0.6⌉ = 1 each side: an 8-px square around the box's centre.
    assert.deepEqual(cropBox(cell(10, 20), 'cell'), { left: 9, top: 18, side: 8 });
    const cropped = preprocessImage(cell(10, 20), { size: 8, crop: 'cell' });
    assert.deepEqual(reds(cropped, 8)[2], [3, 200, 200, 200, 200, 200, 200, 3]);
    // Against the border the square slides inside rather than padding.
    assert.deepEqual(cropBox(cell(0, 36), 'cell'), { left: 0, top: 32, side: 8 });
    assert.equal(
      cropBox(
        image(5, 5, () => [0, 0, 0]),
        'cell',
      ),
      undefined,
      'an all-black image keeps its frame',
    );
  });

  test('normalisation uses the ImageNet mean and std per channel', () => {
    const out = new Float32Array(6);
    normaliseInto(Uint8Array.from([255, 0, 128]), out, 3);
    const expected = [
      (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0],
      -IMAGENET_MEAN[1] / IMAGENET_STD[1],
      (128 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2],
    ];
    expected.forEach((value, channel) =>
      assert.ok(Math.abs(out[3 + channel] - value) < 1e-5, `${out[3 + channel]} vs ${value}`),
    );
    assert.deepEqual([...out.subarray(0, 3)], [0, 0, 0]);
  });
});

describe('image cache', () => {
  test('second run and second epoch decode nothing; a new size decodes again', async () => {
    const { manifest, paths, labelOf } = await clean();
    const cacheDir = await freshDir('data-cache-');
    const counter = countingDecoder();
    const progress: number[] = [];
    const first = await prepareImages(manifest.root, paths, {
      size: 16,
      cacheDir,
      decode: counter.decode,
      onProgress: (done) => progress.push(done),
    });
    assert.equal(first.stats.decoded, paths.length);
    assert.equal(counter.count(), paths.length);
    assert.equal(first.skipped.length, 0);
    assert.equal(progress.at(-1), paths.length);

    const second = await prepareImages(manifest.root, paths, { size: 16, cacheDir, decode: counter.decode });
    assert.deepEqual(
      { decoded: second.stats.decoded, fromCache: second.stats.fromCache },
      { decoded: 0, fromCache: paths.length },
    );
    assert.deepEqual(second.keys, first.keys);
    const examples = examplesFor(paths, labelOf, ['all', 'hem']);
    for (const epoch of [0, 1])
      await collect(second, examples, { batchSize: 16, seed: 1, epoch, sampling: 'shuffle', augment: true });
    assert.equal(counter.count(), paths.length, 'no decode after the first build');

    const key = first.keys.get(paths[0])!;
    const onDisk = await readdir(path.dirname(cacheFilePath(cacheDir, key)));
    assert.ok(onDisk.includes(`${key}.rgb`));
    assert.notEqual(cacheKey('abc', 16, 'none'), cacheKey('abc', 24, 'none'));
    assert.notEqual(cacheKey('abc', 16, 'none'), cacheKey('abc', 16, 'cell'));
    const bigger = await prepareImages(manifest.root, paths.slice(0, 5), {
      size: 24,
      cacheDir,
      decode: counter.decode,
    });
    assert.equal(bigger.stats.decoded, 5);
    assert.notEqual(bigger.keys.get(paths[0]), key);
  });

  test('a deleted cache entry is rebuilt from the source', async () => {
    const { manifest, paths } = await clean();
    const cacheDir = await freshDir('data-cache-');
    const prepared = await prepareImages(manifest.root, paths.slice(0, 3), { size: 8, cacheDir });
    const before = await readPreprocessed(prepared, paths[0]);
    await unlink(cacheFilePath(cacheDir, prepared.keys.get(paths[0])!));
    assert.deepEqual(await readPreprocessed(prepared, paths[0]), before);
    await assert.rejects(readPreprocessed(prepared, paths[5]), /was not prepared/);
  });

  test('corrupt and vanished files are listed with the reason and do not stop the build', async () => {
    const { manifest, paths } = await withCorruptFiles();
    // The scan already rejects these by their headers; the cache must still survive them (a file can change
    // between scan and training, and a caller may pass paths without scanning).
    const corrupt = manifest.defects.corruptFiles.map((f) => f.path);
    const requested = [...paths, ...corrupt, 'training_data/fold_0/all/vanished.bmp'];
    const prepared = await prepareImages(manifest.root, requested, {
      size: 8,
      cacheDir: await freshDir('data-cache-'),
    });
    const reasons = Object.fromEntries(prepared.skipped.map((s) => [s.path, s.reason]));
    assert.deepEqual(reasons, {
      ...Object.fromEntries(
        manifest.defects.corruptFiles.map((f) => [
          f.path,
          { empty: 'empty', truncated: 'corrupt', text: 'not-an-image' }[f.kind],
        ]),
      ),
      'training_data/fold_0/all/vanished.bmp': 'io-error',
    });
    assert.match(
      prepared.skipped.find((s) => reasons[s.path] === 'corrupt')!.detail,
      /could not be decoded: BMP header says/,
    );
    assert.equal(prepared.keys.size, paths.length);
  });

  test('the default cache folder follows XDG_CACHE_HOME', () => {
    assert.equal(
      defaultImageCacheDir({ XDG_CACHE_HOME: '/x/cache' }, 'linux'),
      path.join('/x/cache', 'leukemia-audit', 'images'),
    );
    assert.equal(
      defaultImageCacheDir({}, 'darwin'),
      path.join(os.homedir(), 'Library', 'Caches', 'leukemia-audit', 'images'),
    );
  });
});

describe('batches', () => {
  let shared: Promise<{ prepared: PreparedImages; examples: Example[] }> | undefined;
  const prepared12 = () =>
    (shared ??= (async () => {
      const { manifest, paths, labelOf } = await clean();
      const examples = examplesFor(paths.slice(0, 12), labelOf, ['all', 'hem']);
      const prepared = await prepareImages(manifest.root, paths, { size: 8, cacheDir: await freshDir('data-cache-') });
      return { prepared, examples };
    })());

  test('shapes, labels and normalised values', async () => {
    const { prepared, examples } = await prepared12();
    const all = await collect(prepared, examples, { batchSize: 5, seed: 1, epoch: 0 });
    assert.deepEqual(
      all.map((b) => b.y.length),
      [5, 5, 2],
    );
    assert.equal(all[0].x.length, 5 * 8 * 8 * 3);
    assert.deepEqual(
      all.flatMap((b) => b.paths),
      examples.map((e) => e.path),
      'sequential keeps the order',
    );
    assert.deepEqual(
      [...all[0].y],
      examples.slice(0, 5).map((e) => e.label),
    );
    const pixels = await readPreprocessed(prepared, examples[0].path);
    const expected = new Float32Array(pixels.length);
    normaliseInto(pixels, expected);
    assert.deepEqual(all[0].x.subarray(0, pixels.length), expected);
    assert.equal((await collect(prepared, examples, { batchSize: 5, seed: 1, epoch: 0, dropLast: true })).length, 2);
    assert.equal(batchCount(12, { batchSize: 5, dropLast: true }), 2);
  });

  test('same seed and epoch: same order and augmentation; another epoch: another order', async () => {
    const { prepared, examples } = await prepared12();
    const options: BatchOptions = { batchSize: 4, seed: 3, epoch: 0, sampling: 'shuffle', augment: true };
    const a = await collect(prepared, examples, options);
    const b = await collect(prepared, examples, options);
    assert.deepEqual(
      a.map((x) => x.paths),
      b.map((x) => x.paths),
    );
    assert.deepEqual(
      a.map((x) => [...x.x]),
      b.map((x) => [...x.x]),
    );
    const next = await collect(prepared, examples, { ...options, epoch: 1 });
    assert.notDeepEqual(
      next.flatMap((x) => x.paths),
      a.flatMap((x) => x.paths),
    );
    assert.deepEqual(
      next.flatMap((x) => x.paths).sort(),
      examples.map((e) => e.path).sort(),
      'a shuffle is a permutation',
    );
  });

  test('flips and rotations move pixels without changing them', () => {
    const size = 5;
    const pixels = Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256);
    const triples = (p: Uint8Array) =>
      Array.from({ length: size * size }, (_, i) => [...p.subarray(i * 3, i * 3 + 3)].join()).sort();
    const geometric = { flipHorizontal: true, flipVertical: true, rotate90: true, brightness: 0, contrast: 0 };
    let changed = 0;
    for (let draw = 0; draw < 8; draw++) {
      const out = augmentPixels(pixels, size, createRng(draw), geometric);
      assert.deepEqual(triples(out), triples(pixels));
      if (!out.every((v, i) => v === pixels[i])) changed++;
    }
    assert.ok(changed > 0);

    // a b / c d turned clockwise k times: exactly the four rotations, never a mirror image.
    const square = Uint8Array.from([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    const rotations = new Set(['1,2,3,4', '3,1,4,2', '4,3,2,1', '2,4,1,3']);
    const onlyRotate = { ...geometric, flipHorizontal: false, flipVertical: false };
    for (let draw = 0; draw < 8; draw++) {
      const out = augmentPixels(square, 2, createRng(draw), onlyRotate);
      assert.ok(rotations.has([0, 3, 6, 9].map((i) => out[i]).join()), [...out].join());
    }
  });

  test('brightness and contrast jitter stay within ±10 %', () => {
    const pixels = new Uint8Array(16 * 3).fill(100);
    const photometric = { flipHorizontal: false, flipVertical: false, rotate90: false, brightness: 0.1, contrast: 0.1 };
    for (let draw = 0; draw < 10; draw++) {
      for (const value of augmentPixels(pixels, 4, createRng(draw), photometric))
        assert.ok(value >= 90 && value <= 110, String(value));
    }
  });

  test('balanced sampling draws each class equally often', () => {
    const examples: Example[] = Array.from({ length: 30 }, (_, i) => ({ path: `p${i}`, label: i < 24 ? 0 : 1 }));
    const order = epochOrder(examples, 'balanced', createRng(5));
    assert.equal(order.length, 30);
    assert.equal(order.filter((i) => examples[i].label === 1).length, 15);
    assert.equal(new Set(order.filter((i) => examples[i].label === 1)).size, 6, 'every rare example is used');
  });

  test('class weights are inverse frequencies with mean 1', () => {
    assert.deepEqual(classWeights([30, 10]), [0.5, 1.5]);
    assert.deepEqual(classWeights([10, 0, 10]), [1, 0, 1]);
  });
});
