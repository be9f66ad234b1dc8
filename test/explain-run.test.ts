// Prediction and explanations from a run folder: the preprocessing matches training's cached batches, the
// sample per confusion cell is bounded and ordered, the PNGs and checks are written, and the `predict` and
// `explain` commands print what the core computes. The run folder is assembled by hand (an untrained model,
// fabricated predictions covering every cell): training itself is tested elsewhere and takes minutes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { batches } from '../src/core/data/batches.js';
import { prepareImages, readPreprocessed } from '../src/core/data/cache.js';
import { generateDemoDataset, type DemoImage } from '../src/core/demo/generate.js';
import { selectBackend } from '../src/core/engine/backend.js';
import { sharedScale } from '../src/core/explain/colormaps.js';
import { overlayPixels } from '../src/core/explain/explainImages.js';
import { computeCams } from '../src/core/explain/gradcam.js';
import { upsampleMaps } from '../src/core/explain/overlay.js';
import { inputBatch, loadModel, predictFiles, preprocessFile } from '../src/core/explain/predict.js';
import { confusionCell, positiveClassIndex } from '../src/core/explain/cells.js';
import { explainRun, selectSamples, spreadAcrossCells } from '../src/core/explain/runExplanations.js';
import { createResNet18, disposeModel, forward } from '../src/core/model/resnet18.js';
import { exportStateDict } from '../src/core/model/stateDict.js';
import { MODEL_FILE, type Prediction, type RunFile } from '../src/core/run/runFile.js';
import { writeRunFile } from '../src/core/run/runFileIo.js';
import { writeSafetensors } from '../src/core/weights/safetensors.js';
import { UsageError } from '../src/cli/usage.js';
import { explainCommand } from '../src/cli/commands/explain.js';
import { predictCommand } from '../src/cli/commands/predict.js';

const CLASSES = ['all', 'hem'];
const SIZE = 48;
const CROP = 'cell' as const;

let work = '';
let root = '';
let runDir = '';
let weightsFile = '';
let images: DemoImage[] = [];
let predictions: Prediction[] = [];

before(async () => {
  await selectBackend('wasm');
  work = await mkdtemp(join(tmpdir(), 'explain-run-test-'));
  const manifest = await generateDemoDataset(work, {
    imageSize: 64,
    imagesPerFold: 16,
    folds: 2,
    allSubjectsPerFold: 2,
    hemSubjectsPerFold: 2,
    validationImages: 4,
    seed: 4,
  });
  root = manifest.root;
  images = manifest.images.filter((image) => image.fold !== 'validation').slice(0, 20);
  runDir = join(work, 'run');
  await mkdir(runDir);
  const params = createResNet18(2, 8);
  weightsFile = join(runDir, MODEL_FILE);
  // What train.ts writes, minus the crop (a bare weights file need not record it; the commands take --crop).
  await writeSafetensors(weightsFile, exportStateDict(params), {
    format: 'pt',
    classes: JSON.stringify(CLASSES),
    imageSize: String(SIZE),
  });
  disposeModel(params);
  // Every third prediction wrong, confidences all different, so each of the four cells is populated and ordered.
  predictions = images.map((image, i) => {
    const truth = CLASSES.indexOf(image.label);
    const predicted = i % 3 === 0 ? 1 - truth : truth;
    const confidence = 0.5 + ((i * 7) % 20) / 41;
    const probabilities = predicted === 0 ? [confidence, 1 - confidence] : [1 - confidence, confidence];
    return { path: image.path, split: 'val', subject: image.subject, true: truth, predicted, probabilities };
  });
  const run = {
    schema: 'leukemia-audit/run',
    version: 1,
    createdAt: '',
    updatedAt: '',
    status: 'completed',
    error: null,
    settings: { dataset: root, imageSize: SIZE, crop: CROP, seed: 3 },
    dataset: { root, classes: CLASSES },
    model: { architecture: 'resnet18', imageSize: SIZE, numClasses: 2, parameters: 0, weightsFile: MODEL_FILE },
    metrics: { validation: { positiveClass: 'all' }, test: null },
    predictions,
  } as unknown as RunFile;
  await writeRunFile(runDir, run);
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('loadModel: a run folder and its weights file give the same model; the run supplies the crop', async () => {
  const fromRun = await loadModel(runDir);
  const fromFile = await loadModel(weightsFile);
  try {
    assert.deepEqual([fromRun.classes, fromRun.imageSize, fromRun.crop], [CLASSES, SIZE, CROP]);
    assert.deepEqual([fromFile.classes, fromFile.imageSize, fromFile.crop], [CLASSES, SIZE, 'none']);
    assert.deepEqual(
      fromRun.params.get('layer3.0.conv1.weight')!.dataSync(),
      fromFile.params.get('layer3.0.conv1.weight')!.dataSync(),
    );
    const resized = await loadModel(weightsFile, { imageSize: 64, crop: 'center' });
    assert.deepEqual([resized.imageSize, resized.trainedImageSize, resized.crop], [64, SIZE, 'center']);
    disposeModel(resized.params);
  } finally {
    disposeModel(fromRun.params);
    disposeModel(fromFile.params);
  }
  await assert.rejects(loadModel(join(work, 'missing.safetensors')), /missing\.safetensors: no such file or folder/);
});

test('predict preprocesses exactly as training: same bytes as the training cache, same logits as its batches', async () => {
  const model = await loadModel(runDir);
  try {
    const paths = images.slice(0, 5).map((image) => image.path);
    const prepared = await prepareImages(root, paths, { size: SIZE, crop: CROP, cacheDir: join(work, 'cache') });
    for (const path of paths) {
      assert.deepEqual(
        await preprocessFile(join(root, path), { size: SIZE, crop: CROP }),
        await readPreprocessed(prepared, path),
        path,
      );
    }
    // The evaluation batches training builds (sequential, no augmentation), through the same forward pass.
    const examples = paths.map((path) => ({ path, label: 0 }));
    const expected: number[][] = [];
    for await (const batch of batches(prepared, examples, {
      batchSize: 3,
      seed: 0,
      epoch: 0,
      sampling: 'sequential',
    })) {
      expected.push(
        ...tf.tidy(() =>
          forward(model.params, tf.tensor4d(batch.x, [batch.y.length, SIZE, SIZE, 3]), {
            training: false,
          }).logits.arraySync(),
        ),
      );
    }
    const ours = await predictFiles(
      model,
      paths.map((path) => join(root, path)),
      { batchSize: 2 },
    );
    assert.equal(ours.length, paths.length);
    ours.forEach((prediction, i) => {
      // The inference engine (onnxruntime or wasm workers) computes them, not this tfjs forward pass.
      const worst = Math.max(...prediction.logits.map((value, c) => Math.abs(value - expected[i][c])));
      assert.ok(worst < 1e-4, `logits of ${paths[i]} differ by ${worst}`);
      const sum = prediction.probabilities.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-12, `probabilities sum to ${sum}`);
      const softmax0 = 1 / (1 + Math.exp(prediction.logits[1] - prediction.logits[0]));
      assert.ok(Math.abs(prediction.probabilities[0] - softmax0) < 1e-12, 'softmax of the logits');
      assert.equal(prediction.predicted, prediction.logits[0] >= prediction.logits[1] ? 0 : 1);
    });
  } finally {
    disposeModel(model.params);
  }
});

test('sample selection: confusion cells with ALL positive, most confident first, bounded per cell', () => {
  assert.equal(confusionCell({ true: 0, predicted: 0 }, 0), 'true-positive');
  assert.equal(confusionCell({ true: 1, predicted: 0 }, 0), 'false-positive');
  assert.equal(confusionCell({ true: 0, predicted: 1 }, 0), 'false-negative');
  assert.equal(confusionCell({ true: 1, predicted: 1 }, 0), 'true-negative');
  assert.equal(confusionCell({ true: 2, predicted: 1 }, null), 'wrong');
  const runLike = (classes: string[], positiveClass?: string) =>
    ({
      dataset: { classes },
      metrics: { validation: positiveClass ? { positiveClass } : null, test: null },
    }) as unknown as RunFile;
  assert.equal(positiveClassIndex(runLike(['all', 'hem'], 'all')), 0);
  assert.equal(positiveClassIndex(runLike(['hem', 'ALL'])), 1, 'a class named all, whatever its case, without metrics');
  assert.equal(positiveClassIndex(runLike(['a', 'b'], 'b')), 1, 'what the metrics used');
  assert.equal(positiveClassIndex(runLike(['a', 'b', 'c'], 'a')), null, 'more than two classes: correct/wrong');
  const selected = selectSamples(predictions, 0, 3);
  const cells = ['true-positive', 'true-negative', 'false-positive', 'false-negative'] as const;
  for (const cell of cells) {
    const available = predictions.filter((p) => confusionCell(p, 0) === cell);
    const picked = selected.filter((s) => s.cell === cell);
    assert.ok(available.length > 0, `the fixture populates ${cell}`);
    assert.equal(picked.length, Math.min(3, available.length), cell);
    const best = available
      .map((p) => p.probabilities[p.predicted])
      .sort((a, b) => b - a)
      .slice(0, 3);
    assert.deepEqual(
      picked.map((s) => s.confidence),
      best,
      `${cell}: the most confident, in order`,
    );
  }
  assert.deepEqual([...new Set(selected.map((s) => s.cell))], cells, 'cells in reporting order');
  const spread = spreadAcrossCells(selected, 5);
  assert.deepEqual(
    spread.map((s) => s.cell),
    [...cells, 'true-positive'],
  );
});

test('explainRun: PNGs per sample, the preprocessed original, sanity and shortcut checks', async (t) => {
  await mkdir(join(runDir, 'explanations'), { recursive: true });
  await writeFile(join(runDir, 'explanations', 'stale.png'), 'left over from an earlier run');
  const started = performance.now();
  const progress: [number, number][] = [];
  const result = await explainRun(runDir, {
    perCell: 2,
    method: 'gradcam++',
    colormap: 'turbo',
    onProgress: (done, total) => progress.push([done, total]),
  });
  assert.deepEqual(
    progress,
    [[0, 15], [8, 15], ...[9, 10, 11, 12, 13, 14, 15].map((done) => [done, 15])],
    '8 images, then the trained maps and 6 randomisation steps',
  );
  t.diagnostic(
    `explainRun: ${result.samples.length} samples at ${SIZE} px in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  assert.deepEqual([result.method, result.layer, result.colormap], ['gradcam++', 'layer4', 'turbo']);
  assert.equal(result.samples.length, 8, '2 per cell × 4 cells');
  assert.ok(!existsSync(join(runDir, 'explanations', 'stale.png')), 'the folder is replaced');
  for (const sample of result.samples) {
    const prediction = predictions.find((p) => p.path === sample.path)!;
    assert.equal(sample.cell, confusionCell(prediction, 0));
    assert.equal(sample.explainedClass, prediction.predicted, "the map explains the run's prediction");
    assert.ok(
      sample.backgroundEnergy >= 0 && sample.backgroundEnergy <= 1,
      `background energy ${sample.backgroundEnergy}`,
    );
    for (const file of [sample.original, sample.overlay, sample.overlayShared]) {
      assert.match(
        file,
        new RegExp(`^explanations/${sample.cell}/\\d\\d-[\\w.-]+-(original|overlay|overlay-shared)\\.png$`),
      );
      const metadata = await sharp(join(runDir, file)).metadata();
      assert.deepEqual([metadata.width, metadata.height, metadata.channels], [SIZE, SIZE, 3], file);
    }
    const original = await sharp(join(runDir, sample.original)).raw().toBuffer();
    assert.deepEqual(
      new Uint8Array(original),
      await preprocessFile(join(root, sample.path), { size: SIZE, crop: CROP }),
      'original = the network input',
    );
    // The raw map at layer4 (2×2 at 48 px), and with the run's shared scale it makes exactly the shared-scale PNG.
    const cam = sample.cam!;
    assert.deepEqual(
      [cam.length, ...cam.map((row) => row.length)],
      [2, 2, 2],
      'cam is [row][column] at the layer resolution',
    );
    assert.ok(
      cam.flat().every((v) => Number.isFinite(v) && v >= 0),
      'cam is non-negative',
    );
    const shared = await sharp(join(runDir, sample.overlayShared)).raw().toBuffer();
    const [upsampled] = upsampleMaps([cam], SIZE);
    assert.deepEqual(
      new Uint8Array(shared),
      overlayPixels(new Uint8Array(original), upsampled, { colormap: 'turbo', sharedScale: result.sharedScale }),
      'overlayShared = cam + sharedScale',
    );
  }
  const cams = result.samples.map((s) => s.cam!);
  assert.equal(
    result.sharedScale,
    sharedScale(upsampleMaps(cams, SIZE)),
    'sharedScale: the largest upsampled map value',
  );
  assert.ok(result.sharedScale > 0 && result.sharedScale <= Math.max(...cams.flat(2)), 'at most the largest raw value');
  assert.deepEqual(
    result.sanity.steps.map((s) => s.randomisedUpTo),
    ['fc', 'layer4', 'layer3', 'layer2', 'layer1', 'conv1/bn1'],
  );
  assert.match(result.sanity.message, /\(4 images\)/);
  assert.equal(typeof result.sanity.passed, 'boolean');
  t.diagnostic(
    `sanity: ${result.sanity.steps.map((s) => `${s.randomisedUpTo} ${s.spearman.toFixed(2)}`).join(', ')}; shortcut: ${JSON.stringify(result.shortcut.perClass)}`,
  );
  const explainedClasses = new Set(result.samples.map((s) => CLASSES[s.explainedClass]));
  assert.deepEqual(new Set(Object.keys(result.shortcut.perClass)), explainedClasses);
  for (const name of explainedClasses) {
    const energies = result.samples.filter((s) => CLASSES[s.explainedClass] === name).map((s) => s.backgroundEnergy);
    const mean = energies.reduce((a, b) => a + b, 0) / energies.length;
    assert.ok(Math.abs(result.shortcut.perClass[name] - mean) < 1e-12, `${name}: mean background energy`);
  }
  assert.equal(
    result.shortcut.flagged,
    Object.values(result.shortcut.perClass).some((v) => v > result.shortcut.threshold),
  );
});

// ---------------------------------------------------------------------------------------------------
// Commands, in a child process as a user runs them (stdout must hold only JSON with --json)

const execFileAsync = promisify(execFile);

async function command(name: 'predict' | 'explain', args: string[]): Promise<{ stdout: string; stderr: string }> {
  const module = name === 'predict' ? './src/cli/commands/predict.ts' : './src/cli/commands/explain.ts';
  const exported = name === 'predict' ? 'predictCommand' : 'explainCommand';
  const script = `require(${JSON.stringify(module)}).${exported}(process.argv.slice(1)).then((code) => { process.exitCode = code; })`;
  return execFileAsync(process.execPath, ['--import', 'tsx', '-e', script, '--', ...args], {
    cwd: join(__dirname, '..'),
    timeout: 60_000,
  });
}

test('predict --json prints per image probabilities and logits, as predictFiles computes them', async () => {
  const files = images.slice(0, 3).map((image) => join(root, image.path));
  const { stdout } = await command('predict', ['--weights', runDir, '--json', ...files]);
  const output = JSON.parse(stdout) as {
    classes: string[];
    imageSize: number;
    crop: string;
    images: { path: string; predictedClass: string; probabilities: number[]; logits: number[] }[];
  };
  assert.deepEqual([output.classes, output.imageSize, output.crop], [CLASSES, SIZE, CROP]);
  const model = await loadModel(runDir);
  try {
    const expected = await predictFiles(model, files);
    output.images.forEach((image, i) => {
      assert.equal(image.path, files[i]);
      assert.equal(image.predictedClass, CLASSES[expected[i].predicted]);
      image.logits.forEach((logit, c) =>
        assert.ok(Math.abs(logit - expected[i].logits[c]) < 1e-5, `logit ${c} of image ${i}`),
      );
    });
  } finally {
    disposeModel(model.params);
  }
});

test('explain --json: raw layer-resolution map, background energy and an overlay per image', async () => {
  const files = images.slice(3, 5).map((image) => join(root, image.path));
  const out = join(work, 'cli-explanations');
  const { stdout } = await command('explain', [
    '--weights',
    weightsFile,
    '--crop',
    CROP,
    '--class',
    'hem',
    '--method',
    'gradcam++',
    '--layer',
    'layer3',
    '--out',
    out,
    '--json',
    ...files,
  ]);
  const output = JSON.parse(stdout) as {
    layer: string;
    images: { explainedClass: number; cam: number[][]; backgroundEnergy: number; overlay: string; logits: number[] }[];
  };
  assert.equal(output.layer, 'layer3');
  const model = await loadModel(weightsFile, { crop: CROP });
  try {
    const pixels = await Promise.all(files.map((file) => preprocessFile(file, { size: SIZE, crop: CROP })));
    const x = inputBatch(pixels, SIZE);
    const expected = computeCams(model.params, x, { layer: 'layer3', method: 'gradcam++', targets: [1, 1] });
    x.dispose();
    for (const [i, image] of output.images.entries()) {
      assert.equal(image.explainedClass, 1, '--class hem');
      assert.equal(image.cam.length, 3, 'layer3 is 3×3 at 48 px');
      image.cam
        .flat()
        .forEach((value, j) =>
          assert.ok(
            Math.abs(value - expected.maps[i].flat()[j]) <= 1e-5 * Math.max(1, value),
            `cam value ${j} of image ${i}`,
          ),
        );
      assert.ok(
        image.backgroundEnergy >= 0 && image.backgroundEnergy <= 1,
        `background energy ${image.backgroundEnergy}`,
      );
      const metadata = await sharp(image.overlay).metadata();
      assert.deepEqual([metadata.width, metadata.height], [SIZE, SIZE]);
    }
  } finally {
    disposeModel(model.params);
  }
});

test('commands refuse bad arguments as usage errors', async () => {
  await assert.rejects(
    explainCommand(['--run', runDir, '--weights', weightsFile, 'a.png']),
    (error) => error instanceof UsageError && /exactly one of --run/.test(error.message),
  );
  await assert.rejects(
    explainCommand(['--run', runDir, '--layer', 'layer4.0', 'a.png']),
    (error) => error instanceof UsageError && /layer1\.1 … layer4\.1/.test(error.message),
  );
  await assert.rejects(
    explainCommand(['--run', runDir, '--colormap', 'rainbow', 'a.png']),
    (error) => error instanceof UsageError && /viridis, turbo, jet/.test(error.message),
  );
  await assert.rejects(
    predictCommand(['a.png']),
    (error) => error instanceof UsageError && /--weights/.test(error.message),
  );
  await assert.rejects(
    predictCommand(['--weights', runDir]),
    (error) => error instanceof UsageError && /at least one image/.test(error.message),
  );
  await assert.rejects(
    explainCommand(['--run', runDir, '--class', 'blast', join(root, images[0].path)]),
    (error) => error instanceof UsageError && /--class must be one of all, hem/.test(error.message),
  );
});
