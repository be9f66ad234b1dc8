import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  generateDemoDataset,
  randomStainTint,
  renderCell,
  type DemoManifest,
  type DemoOptions,
} from '../src/core/demo/generate.js';
import { createRng } from '../src/core/random.js';

const CELL_NAME = /^UID_(h|H)?\d+_\d+_\d+_(all|hem)\.bmp$/;
const SMALL: DemoOptions = {
  imageSize: 32,
  imagesPerFold: 30,
  allSubjectsPerFold: 4,
  hemSubjectsPerFold: 3,
  validationImages: 12,
};
const DEFECTS: DemoOptions = { ...SMALL, leakSubjects: 2, duplicates: 3, corruptFiles: 3 };

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'demo-generate-'));
  tempDirs.push(dir);
  return dir;
}

async function generateFresh(options: DemoOptions): Promise<DemoManifest> {
  return generateDemoDataset(await freshDir(), options);
}

/** Generates on first use only, so tests that read the same dataset share one write. */
function shared(options: DemoOptions): () => Promise<DemoManifest> {
  let pending: Promise<DemoManifest> | undefined;
  return () => (pending ??= generateFresh(options));
}
const smallClean = shared(SMALL);
const smallWithDefects = shared(DEFECTS);

async function listFiles(root: string, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(path.join(root, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) found.push(...(await listFiles(root, relative)));
    else found.push(relative);
  }
  return found.sort();
}

async function hashTree(root: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await listFiles(root)) {
    hash.update(`${file}\0`);
    hash.update(await readFile(path.join(root, file)));
  }
  return hash.digest('hex');
}

const read = (manifest: DemoManifest, relative: string) => readFile(path.join(manifest.root, relative));

interface BmpHeader {
  magic: string;
  declaredFileSize: number;
  pixelOffset: number;
  infoHeaderSize: number;
  width: number;
  height: number;
  bitsPerPixel: number;
  compression: number;
}

function readBmpHeader(bytes: Buffer): BmpHeader {
  return {
    magic: bytes.toString('latin1', 0, 2),
    declaredFileSize: bytes.readUInt32LE(2),
    pixelOffset: bytes.readUInt32LE(10),
    infoHeaderSize: bytes.readUInt32LE(14),
    width: bytes.readInt32LE(18),
    height: bytes.readInt32LE(22),
    bitsPerPixel: bytes.readUInt16LE(28),
    compression: bytes.readUInt32LE(30),
  };
}

/** [r, g, b] at (x, y) counted from the top row, of a bottom-up 24-bit BMP. */
function bmpPixel(bytes: Buffer, x: number, y: number): [number, number, number] {
  const { pixelOffset, width, height } = readBmpHeader(bytes);
  const rowBytes = Math.ceil((width * 3) / 4) * 4;
  const at = pixelOffset + (height - 1 - y) * rowBytes + x * 3;
  return [bytes[at + 2], bytes[at + 1], bytes[at]];
}

function parseCellName(name: string): { subject: string; label: string } {
  const match = /^UID_([hH]?\d+)_\d+_\d+_(all|hem)\.bmp$/.exec(name);
  assert.ok(match, `${name} does not follow the C-NMC naming`);
  return { subject: match[1], label: match[2] };
}

function foldsBySubject(manifest: DemoManifest): Map<string, Set<string>> {
  const folds = new Map<string, Set<string>>();
  for (const image of manifest.images) {
    folds.set(image.subject, (folds.get(image.subject) ?? new Set()).add(String(image.fold)));
  }
  return folds;
}

function parseCsv(text: string): string[][] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => line.split(','));
}

test('writes the exact Kaggle C-NMC folder layout and nothing else', async () => {
  const manifest = await smallClean();
  const outDir = path.dirname(manifest.root);
  assert.deepEqual(await readdir(outDir), ['C-NMC_Leukemia']);
  assert.deepEqual((await readdir(manifest.root)).sort(), ['training_data', 'validation_data']);
  assert.deepEqual((await readdir(path.join(manifest.root, 'training_data'))).sort(), ['fold_0', 'fold_1', 'fold_2']);
  for (const fold of ['fold_0', 'fold_1', 'fold_2']) {
    assert.deepEqual((await readdir(path.join(manifest.root, 'training_data', fold))).sort(), ['all', 'hem']);
  }
  assert.deepEqual((await readdir(path.join(manifest.root, 'validation_data'))).sort(), [
    'C-NMC_test_prelim_phase_data',
    'C-NMC_test_prelim_phase_data_labels.csv',
  ]);

  const onDisk = await listFiles(manifest.root);
  const declared = [...manifest.images.map((image) => image.path), manifest.labelsCsv].sort();
  assert.deepEqual(onDisk, declared);
});

test('training files follow the C-NMC name pattern and sit in the folder of their class token', async () => {
  const manifest = await smallClean();
  const training = manifest.images.filter((image) => image.fold !== 'validation');
  assert.equal(training.length, 3 * 30);
  for (const image of training) {
    const [top, foldFolder, classFolder, name] = image.path.split('/');
    assert.equal(top, 'training_data');
    assert.equal(foldFolder, `fold_${image.fold}`);
    assert.match(name, CELL_NAME);
    const parsed = parseCellName(name);
    assert.equal(parsed.label, classFolder);
    assert.equal(parsed.label, image.label);
    assert.equal(parsed.subject, image.subject);
  }
  const hemSubjects = new Set(manifest.images.filter((image) => image.label === 'hem').map((image) => image.subject));
  assert.ok(
    [...hemSubjects].some((subject) => subject.startsWith('h')),
    'some healthy ids use a lower-case h',
  );
  assert.ok(
    [...hemSubjects].some((subject) => subject.startsWith('H')),
    'most healthy ids use an upper-case H',
  );
});

test('without defects every subject lives in exactly one fold and validation subjects are unseen', async () => {
  const manifest = await smallClean();
  for (const [subject, folds] of foldsBySubject(manifest)) {
    assert.equal(folds.size, 1, `subject ${subject} appears in folds ${[...folds].join(', ')}`);
  }
  for (let fold = 0; fold < 3; fold++) {
    const subjectsOf = (label: string) =>
      new Set(manifest.images.filter((image) => image.fold === fold && image.label === label).map((i) => i.subject));
    assert.equal(subjectsOf('all').size, 4);
    assert.equal(subjectsOf('hem').size, 3);
  }
  assert.deepEqual(manifest.defects, { leakedSubjects: [], duplicates: [], corruptFiles: [] });
});

test('the prelim test set is numbered, flat, and its CSV labels agree with each Patient_ID class token', async () => {
  const manifest = await smallClean();
  const csv = parseCsv((await read(manifest, manifest.labelsCsv)).toString('utf8'));
  assert.deepEqual(csv[0], ['Patient_ID', 'new_names', 'labels']);
  const rows = csv.slice(1);
  assert.equal(rows.length, 12);

  const numberedFiles = await readdir(path.join(manifest.root, 'validation_data', 'C-NMC_test_prelim_phase_data'));
  const expectedNames = Array.from({ length: 12 }, (_, index) => `${index + 1}.bmp`);
  assert.deepEqual(numberedFiles.sort(), [...expectedNames].sort());
  assert.deepEqual(rows.map((row) => row[1]).sort(), [...expectedNames].sort());

  const trainingSubjects = new Set(
    manifest.images.filter((image) => image.fold !== 'validation').map((image) => image.subject),
  );
  const validation = new Map(
    manifest.images.filter((i) => i.fold === 'validation').map((i) => [path.posix.basename(i.path), i]),
  );
  for (const [patientId, newName, label] of rows) {
    const parsed = parseCellName(patientId);
    assert.equal(label, parsed.label === 'all' ? '1' : '0', `${patientId} labelled ${label}`);
    const image = validation.get(newName);
    assert.ok(image, `${newName} is in the manifest`);
    assert.equal(image.originalName, patientId);
    assert.equal(image.label, parsed.label);
    assert.equal(image.subject, parsed.subject);
    assert.ok(!trainingSubjects.has(parsed.subject), `validation subject ${parsed.subject} also trains`);
  }
  const labels = new Set(rows.map((row) => row[2]));
  assert.deepEqual([...labels].sort(), ['0', '1']);
  // Numbering must not leak the class: the first half should not be all one label.
  const firstHalf = new Set(rows.filter((row) => Number.parseInt(row[1], 10) <= 6).map((row) => row[2]));
  assert.equal(firstHalf.size, 2);
});

test('every image is a valid 24-bit BMP of the requested size with a cell on pure black', async () => {
  const manifest = await smallClean();
  for (const image of manifest.images) {
    const bytes = await read(manifest, image.path);
    const header = readBmpHeader(bytes);
    assert.equal(header.magic, 'BM');
    assert.equal(header.declaredFileSize, bytes.length);
    assert.equal(header.pixelOffset, 54);
    assert.equal(header.infoHeaderSize, 40);
    assert.equal(header.width, 32);
    assert.equal(header.height, 32);
    assert.equal(header.bitsPerPixel, 24);
    assert.equal(header.compression, 0);
    assert.equal(bytes.length, 54 + 32 * 3 * 32);
    for (const [x, y] of [
      [0, 0],
      [31, 0],
      [0, 31],
      [31, 31],
    ]) {
      assert.deepEqual(bmpPixel(bytes, x, y), [0, 0, 0], `${image.path} corner (${x}, ${y}) is not black`);
    }
    const [red, green, blue] = bmpPixel(bytes, 16, 16);
    assert.ok(red > 40 && blue > green, `${image.path} centre ${red},${green},${blue} is not stained purple`);
  }
});

test('the default demo keeps C-NMC’s 2.1 : 1 ratio with at least four subjects per class per fold', async (t) => {
  const dir = await freshDir();
  const started = performance.now();
  const manifest = await generateDemoDataset(dir);
  const elapsed = performance.now() - started;
  const files = await listFiles(manifest.root);
  let bytes = 0;
  for (const file of files) bytes += (await stat(path.join(manifest.root, file))).size;
  t.diagnostic(
    `default demo: ${files.length} files, ${(bytes / 1e6).toFixed(1)} MB, generated in ${elapsed.toFixed(0)} ms`,
  );

  const training = manifest.images.filter((image) => image.fold !== 'validation');
  assert.equal(training.length, 600);
  assert.equal(manifest.images.length - training.length, 60);
  for (let fold = 0; fold < 3; fold++) {
    const inFold = training.filter((image) => image.fold === fold);
    const all = inFold.filter((image) => image.label === 'all');
    const hem = inFold.filter((image) => image.label === 'hem');
    const ratio = all.length / hem.length;
    assert.ok(ratio > 1.95 && ratio < 2.25, `fold ${fold} ALL:HEM = ${ratio.toFixed(2)}`);
    assert.ok(new Set(all.map((image) => image.subject)).size >= 4);
    assert.ok(new Set(hem.map((image) => image.subject)).size >= 4);
  }
  const countsBySubject = new Map<string, number>();
  for (const image of training) countsBySubject.set(image.subject, (countsBySubject.get(image.subject) ?? 0) + 1);
  const counts = [...countsBySubject.values()];
  assert.ok(Math.max(...counts) > Math.min(...counts), 'subjects should contribute unequal numbers of cells');
});

test('the same seed writes identical bytes and a different seed writes a different dataset', async () => {
  const first = await smallWithDefects();
  const again = await generateFresh(DEFECTS);
  const otherSeed = await generateFresh({ ...DEFECTS, seed: 2 });
  assert.equal(await hashTree(again.root), await hashTree(first.root));
  assert.deepEqual({ ...again, root: '' }, { ...first, root: '' });
  assert.notEqual(await hashTree(otherSeed.root), await hashTree(first.root));
  assert.notDeepEqual(
    otherSeed.images.map((image) => image.path),
    first.images.map((image) => image.path),
  );
});

test('the manifest survives a JSON round trip', async () => {
  const manifest = await smallWithDefects();
  assert.deepEqual(JSON.parse(JSON.stringify(manifest)), manifest);
});

test('planted subject leakage puts each declared subject in exactly its two declared folds', async () => {
  const manifest = await smallWithDefects();
  const { leakedSubjects } = manifest.defects;
  assert.equal(leakedSubjects.length, 2);
  const folds = foldsBySubject(manifest);
  const leaked = new Set(leakedSubjects.map((leak) => leak.subject));
  for (const leak of leakedSubjects) {
    assert.notEqual(leak.homeFold, leak.leakedToFold);
    assert.deepEqual([...folds.get(leak.subject)!].sort(), [leak.homeFold, leak.leakedToFold].map(String).sort());
    assert.ok(leak.movedPaths.length >= 1);
    for (const moved of leak.movedPaths) {
      assert.ok(moved.startsWith(`training_data/fold_${leak.leakedToFold}/${leak.label}/`), moved);
      assert.equal(parseCellName(path.posix.basename(moved)).subject, leak.subject);
      await stat(path.join(manifest.root, moved));
    }
  }
  for (const [subject, subjectFolds] of folds) {
    if (!leaked.has(subject)) assert.equal(subjectFolds.size, 1, `unplanted leakage of ${subject}`);
  }
});

test('planted duplicates are byte-identical or differ in one pixel, placed as declared', async () => {
  const manifest = await smallWithDefects();
  const { duplicates } = manifest.defects;
  assert.equal(duplicates.length, 3);
  const placements = new Set(duplicates.map((d) => `${d.crossFold}/${d.crossClass}`));
  assert.deepEqual([...placements].sort(), ['false/true', 'true/false', 'true/true']);
  assert.deepEqual(duplicates.map((d) => d.kind).sort(), ['exact', 'exact', 'near']);

  const manifestPaths = new Set(manifest.images.map((image) => image.path));
  for (const duplicate of duplicates) {
    assert.ok(manifestPaths.has(duplicate.copyPath) && manifestPaths.has(duplicate.originalPath));
    assert.match(path.posix.basename(duplicate.copyPath), CELL_NAME);
    const [, originalFold, originalClass] = duplicate.originalPath.split('/');
    const [, copyFold, copyClass] = duplicate.copyPath.split('/');
    assert.equal(copyFold !== originalFold, duplicate.crossFold, duplicate.copyPath);
    assert.equal(copyClass !== originalClass, duplicate.crossClass, duplicate.copyPath);

    const original = await read(manifest, duplicate.originalPath);
    const copy = await read(manifest, duplicate.copyPath);
    if (duplicate.kind === 'exact') {
      assert.ok(copy.equals(original));
    } else {
      assert.equal(copy.length, original.length);
      const differing = [...copy.keys()].filter((index) => copy[index] !== original[index]);
      assert.equal(differing.length, 1, `near duplicate differs in ${differing.length} bytes`);
      assert.ok(differing[0] >= 54, 'the change is in the pixels, not the header');
    }
  }
  const clean = await smallClean();
  assert.equal(manifest.images.length, clean.images.length + 3);
});

test('planted corrupt files carry valid-looking names and are empty, truncated or text', async () => {
  const manifest = await smallWithDefects();
  const { corruptFiles } = manifest.defects;
  assert.deepEqual(corruptFiles.map((file) => file.kind).sort(), ['empty', 'text', 'truncated']);
  const imagePaths = new Set(manifest.images.map((image) => image.path));
  const onDisk = new Set(await listFiles(manifest.root));
  for (const file of corruptFiles) {
    assert.ok(!imagePaths.has(file.path), `${file.path} must not be listed as an image`);
    assert.ok(onDisk.has(file.path));
    const [top, , classFolder, name] = file.path.split('/');
    assert.equal(top, 'training_data');
    assert.equal(parseCellName(name).label, classFolder);
    const bytes = await read(manifest, file.path);
    if (file.kind === 'empty') {
      assert.equal(bytes.length, 0);
    } else if (file.kind === 'truncated') {
      const header = readBmpHeader(bytes);
      assert.equal(header.magic, 'BM');
      assert.ok(header.declaredFileSize > bytes.length, 'the header promises more bytes than the file has');
    } else {
      assert.notEqual(bytes.toString('latin1', 0, 2), 'BM');
      assert.match(bytes.toString('utf8'), /^version https:\/\/git-lfs/);
    }
  }
  assert.equal(onDisk.size, imagePaths.size + corruptFiles.length + 1);
});

/** Foreground share of the image, and Laplacian energy inside the cell relative to its brightness. */
function areaAndTexture(bytes: Buffer): [number, number] {
  const { width: size } = readBmpHeader(bytes);
  const luminance = new Float64Array(size * size);
  const foreground = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [r, g, b] = bmpPixel(bytes, x, y);
      luminance[y * size + x] = (r + g + b) / 3;
      foreground[y * size + x] = Math.max(r, g, b) > 20 ? 1 : 0;
    }
  }
  let area = 0;
  let brightness = 0;
  let laplacian = 0;
  let interior = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const at = y * size + x;
      if (!foreground[at]) continue;
      area += 1;
      brightness += luminance[at];
      const awayFromEdge =
        x >= 2 &&
        y >= 2 &&
        x < size - 2 &&
        y < size - 2 &&
        foreground[at - 2] &&
        foreground[at + 2] &&
        foreground[at - 2 * size] &&
        foreground[at + 2 * size];
      if (!awayFromEdge) continue;
      const neighbours = luminance[at - 1] + luminance[at + 1] + luminance[at - size] + luminance[at + size];
      laplacian += Math.abs(4 * luminance[at] - neighbours) / 4;
      interior += 1;
    }
  }
  return [area / (size * size), laplacian / Math.max(1, interior) / (brightness / Math.max(1, area))];
}

interface Sample {
  features: number[];
  isAll: boolean;
}

/** Balanced accuracy of "ALL if score ≥ threshold" (or the flipped rule, whichever is better). */
function bestThreshold(scores: number[], samples: Sample[]): { threshold: number; flipped: boolean; accuracy: number } {
  const positives = samples.filter((s) => s.isAll).length;
  const negatives = samples.length - positives;
  const order = scores.map((_, index) => index).sort((a, b) => scores[a] - scores[b]);
  let truePositives = positives;
  let falsePositives = negatives;
  let best = { threshold: -Infinity, flipped: false, accuracy: 0.5 };
  for (const index of order) {
    const accuracy = 0.5 * (truePositives / positives + (negatives - falsePositives) / negatives);
    if (accuracy > best.accuracy) best = { threshold: scores[index], flipped: false, accuracy };
    if (1 - accuracy > best.accuracy) best = { threshold: scores[index], flipped: true, accuracy: 1 - accuracy };
    if (samples[index].isAll) truePositives -= 1;
    else falsePositives -= 1;
  }
  return best;
}

function balancedAccuracy(predictions: boolean[], samples: Sample[]): number {
  const recall = (isAll: boolean) => {
    const of = samples.map((s, i) => [s, predictions[i]] as const).filter(([s]) => s.isAll === isAll);
    return of.filter(([, predicted]) => predicted === isAll).length / of.length;
  };
  return 0.5 * (recall(true) + recall(false));
}

async function samplesOf(manifest: DemoManifest, folds: number[]): Promise<Sample[]> {
  const chosen = manifest.images.filter((image) => typeof image.fold === 'number' && folds.includes(image.fold));
  return Promise.all(
    chosen.map(async (image) => ({
      features: areaAndTexture(await read(manifest, image.path)),
      isAll: image.label === 'all',
    })),
  );
}

for (const imageSize of [32, 64]) {
  test(`at ${imageSize} px area and texture together separate held-out subjects, neither alone perfectly`, async (t) => {
    const manifest = await generateFresh({ imageSize, imagesPerFold: 150 });
    const train = await samplesOf(manifest, [0, 1]);
    const heldOut = await samplesOf(manifest, [2]);

    const singles = [0, 1].map(
      (feature) =>
        bestThreshold(
          train.map((s) => s.features[feature]),
          train,
        ).accuracy,
    );
    t.diagnostic(
      `single-feature balanced accuracy on folds 0–1: area ${singles[0].toFixed(3)}, texture ${singles[1].toFixed(3)}`,
    );
    for (const accuracy of singles) {
      assert.ok(accuracy > 0.65, 'each feature carries class signal');
      assert.ok(accuracy < 0.98, 'no single feature gives the class away');
    }

    // A linear rule on standardised features, direction found by scanning angles on folds 0–1 only.
    const mean = [0, 1].map((f) => train.reduce((sum, s) => sum + s.features[f], 0) / train.length);
    const spread = [0, 1].map((f) =>
      Math.sqrt(train.reduce((sum, s) => sum + (s.features[f] - mean[f]) ** 2, 0) / train.length),
    );
    const score = (s: Sample, angle: number) =>
      Math.cos(angle) * ((s.features[0] - mean[0]) / spread[0]) +
      Math.sin(angle) * ((s.features[1] - mean[1]) / spread[1]);
    let best = {
      angle: 0,
      rule: bestThreshold(
        train.map((s) => score(s, 0)),
        train,
      ),
    };
    for (let step = 1; step < 180; step++) {
      const angle = (step * Math.PI) / 180;
      const rule = bestThreshold(
        train.map((s) => score(s, angle)),
        train,
      );
      if (rule.accuracy > best.rule.accuracy) best = { angle, rule };
    }
    const predictions = heldOut.map((s) => score(s, best.angle) >= best.rule.threshold !== best.rule.flipped);
    const heldOutAccuracy = balancedAccuracy(predictions, heldOut);
    t.diagnostic(`area+texture balanced accuracy on held-out fold 2: ${heldOutAccuracy.toFixed(3)}`);
    assert.ok(heldOutAccuracy >= 0.85, `held-out balanced accuracy ${heldOutAccuracy.toFixed(3)}`);
  });
}

test('renderCell works at the smallest and the original size and is seed-deterministic', () => {
  const tint = randomStainTint(createRng('tint'));
  for (const size of [16, 450]) {
    const image = renderCell(createRng(`cell-${size}`), 'all', size, tint);
    assert.equal(image.width, size);
    assert.equal(image.height, size);
    assert.equal(image.channels, 3);
    assert.equal(image.data.length, size * size * 3);
    assert.deepEqual([...image.data.subarray(0, 3)], [0, 0, 0]);
    const centre = ((size / 2) * size + size / 2) * 3;
    assert.ok(image.data[centre] > 40, 'the cell covers the centre');
  }
  const once = renderCell(createRng('same'), 'hem', 24, tint);
  const twice = renderCell(createRng('same'), 'hem', 24, tint);
  assert.deepEqual(twice.data, once.data);
  const other = renderCell(createRng('other'), 'hem', 24, tint);
  assert.notDeepEqual(other.data, once.data);
});

test('rejects out-of-range options and refuses to write into a non-empty dataset folder', async () => {
  const dir = await freshDir();
  await assert.rejects(generateDemoDataset(dir, { imageSize: 15 }), RangeError);
  await assert.rejects(generateDemoDataset(dir, { imageSize: 451 }), RangeError);
  await assert.rejects(generateDemoDataset(dir, { imagesPerFold: 5 }), /too few/);
  await assert.rejects(generateDemoDataset(dir, { folds: 1, leakSubjects: 1 }), /two folds/);

  await mkdir(path.join(dir, 'C-NMC_Leukemia'));
  await writeFile(path.join(dir, 'C-NMC_Leukemia', 'keep.txt'), 'user data');
  await assert.rejects(generateDemoDataset(dir, SMALL), /not empty/);
  assert.equal(await readFile(path.join(dir, 'C-NMC_Leukemia', 'keep.txt'), 'utf8'), 'user data');
  const manifest = await generateDemoDataset(dir, { ...SMALL, overwrite: true });
  assert.ok(!(await listFiles(manifest.root)).includes('keep.txt'));
});

test('a single fold still plants duplicates, crossing class instead of fold', async () => {
  const manifest = await generateFresh({ ...SMALL, folds: 1, duplicates: 2 });
  for (const duplicate of manifest.defects.duplicates) {
    assert.equal(duplicate.crossFold, false);
    assert.equal(duplicate.crossClass, true);
  }
});

test('the seeded generator is reproducible, forks independently of draws, and stays in range', () => {
  const first = createRng(42);
  const second = createRng(42);
  const sequence = Array.from({ length: 5 }, () => first.next());
  assert.deepEqual(
    Array.from({ length: 5 }, () => second.next()),
    sequence,
  );
  assert.notDeepEqual(
    Array.from({ length: 5 }, () => createRng(43).next()),
    sequence,
  );

  const untouched = createRng(42).fork('split').next();
  const drawnFrom = createRng(42);
  drawnFrom.next();
  assert.equal(drawnFrom.fork('split').next(), untouched);
  assert.notEqual(createRng(42).fork('other').next(), untouched);

  const rng = createRng('range');
  const ints = Array.from({ length: 2000 }, () => rng.int(7));
  assert.ok(ints.every((value) => Number.isInteger(value) && value >= 0 && value < 7));
  assert.equal(new Set(ints).size, 7);
  const normals = Array.from({ length: 4000 }, () => rng.normal(10, 2));
  const mean = normals.reduce((sum, value) => sum + value, 0) / normals.length;
  const sd = Math.sqrt(normals.reduce((sum, value) => sum + (value - mean) ** 2, 0) / normals.length);
  assert.ok(Math.abs(mean - 10) < 0.15 && Math.abs(sd - 2) < 0.15, `normal mean ${mean}, sd ${sd}`);

  const items = Array.from({ length: 20 }, (_, index) => index);
  const shuffled = rng.shuffle([...items]);
  assert.deepEqual(
    [...shuffled].sort((a, b) => a - b),
    items,
  );
  assert.notDeepEqual(shuffled, items);
  assert.throws(() => rng.int(0), RangeError);
});
