// `leukemia-audit report`: a synthetic but realistic run folder (metrics from the real metric code, Grad-CAM
// PNGs written with sharp, hostile file names) becomes one HTML file that loads nothing from outside, and
// headless Chromium draws the run from it with the same bundle the VS Code webview uses.
// Set REPORT_TEST_KEEP=1 to keep the temporary run folders and reports (their paths are printed) to look at.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import type { Finding } from '../src/core/audit/findings.js';
import { colourOf, type ColormapName } from '../src/core/explain/colormaps.js';
import { computeClassificationMetrics } from '../src/core/metrics.js';
import { createRng } from '../src/core/random.js';
import { buildHtmlReport, findPackageRoot } from '../src/core/report/htmlReport.js';
import { DEFAULT_SETTINGS } from '../src/core/train/settings.js';
import type { ConfusionCell, ExplainedSample, Prediction, RunFile } from '../src/core/run/runFile.js';
import type { ShowRunMessage } from '../src/protocol/results.js';
import { ensureBuilt } from './helpers/build.js';
import { appOf, noChromium, renderedDom } from './helpers/chromium.js';

const REPO = path.join(__dirname, '..');
const KEEP = process.env.REPORT_TEST_KEEP === '1';
const HOSTILE = 'fold_2/all/<img src=x onerror=alert(1)>.bmp';
const HOSTILE_ESCAPED = 'fold_2/all/&lt;img src=x onerror=alert(1)&gt;.bmp';
const CLASSES = ['all', 'hem'];
const IMAGE_SIZE = 48;

const tempDirs: string[] = [];
async function freshDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

after(async () => {
  if (KEEP) {
    process.stderr.write(`report test folders kept: ${tempDirs.join(' ')}\n`);
    return;
  }
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

// ---------------------------------------------------------------------------------------------------------
// A synthetic run folder

/** A 48 px blood-cell-like image: dark background, a purple disc with a darker nucleus. */
async function cellPng(seed: number): Promise<Buffer> {
  const rng = createRng(`cell/${seed}`);
  const radius = 12 + rng.int(8);
  const cx = 24 + rng.int(5) - 2;
  const cy = 24 + rng.int(5) - 2;
  const pixels = Buffer.alloc(IMAGE_SIZE * IMAGE_SIZE * 3);
  for (let y = 0; y < IMAGE_SIZE; y++) {
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const d = Math.hypot(x - cx, y - cy);
      const i = (y * IMAGE_SIZE + x) * 3;
      if (d < radius * 0.55) pixels.set([90, 40, 120], i);
      else if (d < radius) pixels.set([170, 120, 190], i);
    }
  }
  return sharp(pixels, { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 } })
    .png()
    .toBuffer();
}

/** A jet-coloured heat blob blended over the cell, as the explainer's overlays look. */
async function overlayPng(seed: number, peak: number): Promise<Buffer> {
  const base = await sharp(await cellPng(seed))
    .raw()
    .toBuffer();
  const rng = createRng(`cam/${seed}`);
  const hx = 14 + rng.int(20);
  const hy = 14 + rng.int(20);
  const out = Buffer.alloc(base.length);
  for (let y = 0; y < IMAGE_SIZE; y++) {
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const v = peak * Math.exp(-((x - hx) ** 2 + (y - hy) ** 2) / 120);
      const jet = [
        Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - 3))),
        Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - 2))),
        Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - 1))),
      ];
      const i = (y * IMAGE_SIZE + x) * 3;
      for (let c = 0; c < 3; c++) out[i + c] = Math.round(0.5 * base[i + c] + 0.5 * 255 * jet[c]);
    }
  }
  return sharp(out, { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 } })
    .png()
    .toBuffer();
}

/** The raw maps are 6×6, as at layer2 of a 48 px input; the page paints them smoothly onto 48 px canvases. */
const CAM_SIZE = 6;
const CAM_SCALE = IMAGE_SIZE / CAM_SIZE;

/**
 * A raw Grad-CAM map with two flat 2×2 blocks, `peak` (the maximum) and 0 (the minimum), far apart: in
 * the middle of a flat block bilinear upsampling gives exactly the block's value, so the canvas pixel there
 * has exactly the colour of that value. The rest is an uneven ramp between them.
 */
function camOf(seed: number): { cam: number[][]; peak: number; high: [number, number]; low: [number, number] } {
  const rng = createRng(`raw-cam/${seed}`);
  const peak = 0.2 + rng.next() * 1.8;
  const high: [number, number] = [rng.int(2), 1 + rng.int(3)];
  const low: [number, number] = [4, high[1] >= 2 ? 0 : 4];
  const inBlock = (r: number, c: number, [r0, c0]: [number, number]) => r >= r0 && r < r0 + 2 && c >= c0 && c < c0 + 2;
  const cam = Array.from({ length: CAM_SIZE }, (_, r) =>
    Array.from({ length: CAM_SIZE }, (_, c) =>
      inBlock(r, c, high) ? peak : inBlock(r, c, low) ? 0 : peak * (0.1 + 0.8 * rng.next()),
    ),
  );
  return { cam, peak, high, low };
}

/** The seed a synthetic sample was made with, from its file names (`explanations/<split>/<seed>-input.png`). */
function seedOf(sample: ExplainedSample): number {
  return Number(/\/(\d+)-input\.png$/.exec(sample.original)![1]);
}

/** The canvas pixel in the middle of a 2×2 block of the raw map that starts at `[row, column]`. */
function blockCentre([row, column]: [number, number]): { x: number; y: number } {
  return { x: (column + 1) * CAM_SCALE, y: (row + 1) * CAM_SCALE };
}

function predictions(split: 'val' | 'test', n: number): Prediction[] {
  const rng = createRng(`predictions/${split}`);
  return Array.from({ length: n }, (_, i) => {
    const truth = rng.chance(0.68) ? 0 : 1;
    // A decent but imperfect model: mostly right, sometimes confidently wrong.
    const pAll = Math.min(0.99, Math.max(0.01, (truth === 0 ? 0.8 : 0.25) + rng.normal(0, 0.2)));
    const probabilities = [pAll, 1 - pAll];
    const subject = String(1 + rng.int(12));
    const file = `fold_2/${CLASSES[truth]}/UID_${subject}_${i}_1_${CLASSES[truth]}.bmp`;
    return {
      path: split === 'val' && i === 0 ? HOSTILE : file,
      split,
      subject,
      true: truth,
      predicted: pAll >= 0.5 ? 0 : 1,
      probabilities,
    };
  });
}

const CELL_OF: Record<string, ConfusionCell> = {
  '0,0': 'true-positive',
  '0,1': 'false-negative',
  '1,0': 'false-positive',
  '1,1': 'true-negative',
};

async function explainedSamples(runDir: string, all: Prediction[]): Promise<ExplainedSample[]> {
  const samples: ExplainedSample[] = [];
  const perCell = new Map<string, number>();
  let seed = 0;
  for (const p of all) {
    const key = `${p.split}|${p.true}|${p.predicted}`;
    if ((perCell.get(key) ?? 0) >= 3 && p.path !== HOSTILE) continue;
    perCell.set(key, (perCell.get(key) ?? 0) + 1);
    seed++;
    const dir = `explanations/${p.split}`;
    await mkdir(path.join(runDir, dir), { recursive: true });
    const original = `${dir}/${seed}-input.png`;
    const overlay = `${dir}/${seed}-gradcam.png`;
    const overlayShared = `${dir}/${seed}-gradcam-shared.png`;
    await writeFile(path.join(runDir, original), await cellPng(seed));
    await writeFile(path.join(runDir, overlay), await overlayPng(seed, 1));
    await writeFile(path.join(runDir, overlayShared), await overlayPng(seed, 0.6));
    samples.push({
      path: p.path,
      split: p.split,
      cell: CELL_OF[`${p.true},${p.predicted}`],
      true: p.true,
      predicted: p.predicted,
      confidence: p.probabilities[p.predicted],
      explainedClass: p.predicted,
      original,
      overlay,
      overlayShared,
      backgroundEnergy: 0.05 + (seed % 7) / 20,
      cam: camOf(seed).cam,
    });
  }
  // One overlay the explainer never finished, and one path that tries to climb out of the run folder.
  samples[1].overlay = 'explanations/val/never-written.png';
  samples[2].overlayShared = '../outside.png';
  return samples;
}

const FINDINGS: Finding[] = [
  {
    code: 'structural-labels',
    severity: 'error',
    message: 'The folders fold_0, fold_1 and fold_2 look like cross-validation folds or numbered partitions.',
    evidence: {
      depth: 1,
      nearEqualSizes: true,
      repeatedSubfolders: ['all', 'hem'],
      independence: { chiSquare: 0.41, degreesOfFreedom: 2, pValue: 0.81, cramersV: 0.02, n: 600 },
      contingency: {
        rows: ['fold_0', 'fold_1', 'fold_2'],
        columns: ['all', 'hem'],
        counts: [
          [135, 65],
          [137, 63],
          [133, 67],
        ],
      },
    },
    paths: ['fold_0/all/UID_11_10_1_all.bmp', 'fold_1/hem/UID_H3_2_1_hem.bmp'],
  },
  {
    code: 'subject-leakage',
    severity: 'error',
    message: 'Subject 7 appears in fold_1 and fold_2 <script>alert(2)</script>.',
    evidence: { subjects: [{ subject: '7', folds: ['fold_1', 'fold_2'], images: 12 }] },
    paths: [HOSTILE, 'fold_1/all/UID_7_1_1_all.bmp'],
  },
  {
    code: 'class-imbalance',
    severity: 'info',
    message: 'all has 2.1× as many images as hem.',
    evidence: {
      ratio: 2.077,
      classes: [
        { name: 'all', count: 405 },
        { name: 'hem', count: 195 },
      ],
    },
    paths: [],
  },
];

function baseRun(runDir: string): RunFile {
  const settings = {
    ...DEFAULT_SETTINGS,
    dataset: '/data/C-NMC_Leukemia/training_data',
    out: runDir,
    labels: 'folder:2' as const,
    epochs: 6,
  };
  return {
    schema: 'leukemia-audit/run',
    version: 1,
    createdAt: '2026-11-26T20:00:00.000Z',
    updatedAt: '2026-11-26T20:03:00.000Z',
    status: 'completed',
    error: null,
    settings,
    backend: { name: 'wasm', skipped: ['tensorflow: not installed'] },
    dataset: {
      root: settings.dataset,
      spec: {
        version: 1,
        root: settings.dataset,
        labelSources: [{ kind: 'folder', depth: 2 }],
        classes: [
          { name: 'all', count: 405 },
          { name: 'hem', count: 195 },
        ],
        unlabelled: 0,
        groups: null,
        splits: null,
        split: { kind: 'folds', depth: 1, validationGroup: 'fold_2' },
        subjectPattern: '^UID_(H?\\d+)_',
        subjects: { count: 30, imagesWithSubject: 600 },
      } as RunFile['dataset']['spec'],
      findings: FINDINGS,
      labelsAreStructural: false,
      classes: CLASSES,
      splits: [
        { split: 'train', images: 400, byClass: { all: 270, hem: 130 }, subjects: 20, imagesWithoutSubject: 0 },
        { split: 'val', images: 60, byClass: { all: 41, hem: 19 }, subjects: 6, imagesWithoutSubject: 0 },
        { split: 'test', images: 40, byClass: { all: 27, hem: 13 }, subjects: 4, imagesWithoutSubject: 0 },
      ],
      skipped: [],
      notes: [],
    },
    model: {
      architecture: 'resnet18',
      imageSize: IMAGE_SIZE,
      numClasses: 2,
      parameters: 11177538,
      weightsFile: 'model.safetensors',
    },
    history: Array.from({ length: 6 }, (_, i) => ({
      epoch: i + 1,
      trainLoss: 0.6 / (i + 1),
      trainAccuracy: 0.7 + i * 0.05,
      valLoss: 0.7 - i * 0.08 + (i === 5 ? 0.2 : 0),
      valAccuracy: 0.6 + i * 0.05,
      valBalancedAccuracy: 0.55 + i * 0.05,
      learningRate: 1e-3 * Math.cos((i / 6) * (Math.PI / 2)),
      seconds: 28,
      imagesPerSecond: 14,
    })),
    bestEpoch: 5,
    metrics: { validation: null, test: null },
    predictions: [],
    explanations: null,
  };
}

function metricsOf(list: Prediction[]) {
  return computeClassificationMetrics({
    classes: CLASSES,
    yTrue: list.map((p) => p.true),
    probabilities: list.map((p) => p.probabilities),
  });
}

/** A finished run with validation and test metrics, Grad-CAM samples and both checks. */
async function writeFullRun(): Promise<{ runDir: string; run: RunFile }> {
  const parent = await freshDir('report-test-');
  const runDir = path.join(parent, 'run');
  await mkdir(runDir);
  // A file right outside the run folder, that `../outside.png` in run.json must not pull in.
  await writeFile(path.join(parent, 'outside.png'), await cellPng(999));
  const val = predictions('val', 60);
  const test = predictions('test', 40);
  const run = baseRun(runDir);
  run.metrics = { validation: metricsOf(val), test: metricsOf(test) };
  run.predictions = [...val, ...test];
  const samples = await explainedSamples(runDir, run.predictions);
  run.explanations = {
    method: 'gradcam',
    layer: 'layer2',
    colormap: 'jet',
    sharedScale: Math.max(...samples.map((s) => Math.max(...s.cam!.flat()))),
    samples,
    sanity: {
      steps: [
        ['fc', 0.81],
        ['layer4', 0.32],
        ['layer3', 0.12],
        ['layer2', 0.05],
        ['layer1', 0.03],
        ['conv1', -0.02],
      ].map(([randomisedUpTo, spearman]) => ({
        randomisedUpTo: randomisedUpTo as string,
        spearman: spearman as number,
      })),
      passed: true,
      message: 'The maps change as the weights are randomised: they depend on what the model learned.',
    },
    shortcut: {
      perClass: { all: 0.12, hem: 0.31 },
      threshold: 0.25,
      flagged: true,
      message: "For hem, 31 % of the attention falls on the background: the model may use the cell's surroundings.",
    },
  };
  await writeFile(path.join(runDir, 'run.json'), JSON.stringify(run, null, 2));
  return { runDir, run };
}

/**
 * The same run as a version before run.json kept the raw maps wrote it: no `cam`, no `sharedScale`. Its
 * gallery shows the overlay PNGs, and the colour map select is disabled on the colour map they were made with.
 */
async function writeRunWithoutMaps(full: { runDir: string; run: RunFile }): Promise<{ runDir: string; run: RunFile }> {
  const parent = await freshDir('report-test-old-');
  const runDir = path.join(parent, 'run');
  await cp(full.runDir, runDir, { recursive: true });
  const run = structuredClone(full.run);
  delete run.explanations!.sharedScale;
  for (const sample of run.explanations!.samples) delete sample.cam;
  await writeFile(path.join(runDir, 'run.json'), JSON.stringify(run, null, 2));
  return { runDir, run };
}

/** A run still in its first epoch, trained on labels the audit called structural: almost nothing to show. */
async function writeEarlyRun(): Promise<string> {
  const runDir = await freshDir('report-test-early-');
  const run = baseRun(runDir);
  run.status = 'running';
  run.history = [];
  run.bestEpoch = null;
  run.dataset.labelsAreStructural = true;
  run.dataset.classes = ['fold_0', 'fold_1'];
  run.dataset.splits = [
    { split: 'train', images: 200, byClass: { fold_0: 200, fold_1: 0 }, subjects: 10, imagesWithoutSubject: 0 },
    { split: 'val', images: 200, byClass: { fold_0: 0, fold_1: 200 }, subjects: 10, imagesWithoutSubject: 0 },
  ];
  delete run.explanations;
  await writeFile(path.join(runDir, 'run.json'), JSON.stringify(run, null, 2));
  return runDir;
}

// ---------------------------------------------------------------------------------------------------------

/** Everything outside the embedded run data, which holds hostile strings on purpose (JSON-escaped). */
function withoutRunData(html: string): string {
  return html.replace(/<script type="application\/json" id="run-data">[\s\S]*?<\/script>/, '');
}

describe('report', () => {
  let full: { runDir: string; run: RunFile };
  let html = '';
  let missing: string[] = [];

  before(async () => {
    // The report inlines dist/webview.js, and the CLI test below runs dist/cli.js.
    ensureBuilt(['webview.js', 'cli.js'], ['src', 'webview']);
    full = await writeFullRun();
    ({ html, missingImages: missing } = await buildHtmlReport(full.runDir));
  });

  test('finds its assets from the source tree', () => {
    const root = findPackageRoot();
    assert.equal(root, REPO);
  });

  test('is one file that refers to nothing outside itself', () => {
    const outside = withoutRunData(html);
    for (const match of outside.matchAll(/\b(?:src|href|action|poster|srcset)\s*=\s*["']?([^"'\s>]*)/gi)) {
      assert.match(match[1], /^(data:|#)/, `external reference ${match[0]}`);
    }
    assert.doesNotMatch(html, /<link\b/i);
    assert.doesNotMatch(html, /@import|url\((?!\s*["']?data:)/i);
    assert.doesNotMatch(html, /sourceMappingURL/);
    assert.doesNotMatch(html, /file:\/\//i);
    // The SVG namespace is an identifier, never fetched; nothing else may name a web address.
    const addresses = [...html.matchAll(/https?:\/\/[^\s"'<>)]*/g)].map((m) => m[0]);
    assert.deepEqual([...new Set(addresses)], ['http://www.w3.org/2000/svg']);
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:;/);
  });

  test('embeds the run, with every readable image as a data: URI and nothing from outside the run folder', () => {
    const json = /<script type="application\/json" id="run-data">([\s\S]*?)<\/script>/.exec(html)?.[1];
    assert.ok(json, 'run data element');
    const data = JSON.parse(json) as ShowRunMessage;
    assert.equal(data.type, 'showRun');
    assert.deepEqual(data.run.dataset.findings, FINDINGS);
    assert.deepEqual(
      data.run.metrics.validation!.confusionMatrix.counts,
      full.run.metrics.validation!.confusionMatrix.counts,
    );
    const samples = full.run.explanations!.samples;
    assert.equal(data.imageUris[samples[0].original].slice(0, 22), 'data:image/png;base64,');
    assert.equal(Object.keys(data.imageUris).length, samples.length * 3 - 2);
    assert.deepEqual(missing, ['../outside.png', 'explanations/val/never-written.png']);
    assert.equal(data.imageUris['../outside.png'], undefined);
  });

  test('never lets a file name or message become markup', () => {
    assert.doesNotMatch(html, /<img src=x/i);
    assert.doesNotMatch(html, /<script>alert/i);
    assert.equal(html.match(/<\/script>/g)?.length, 2, 'only the two script elements end');
  });

  test('the CLI command writes <run>/report.html by default, or --out, and prints the path', async () => {
    const script = `require(${JSON.stringify(path.join(REPO, 'src', 'cli', 'commands', 'report.ts'))}).reportCommand(process.argv.slice(1)).then((c) => { process.exitCode = c; })`;
    const runCommand = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', '-e', script, ...args], {
        cwd: REPO,
        encoding: 'utf8',
        timeout: 60_000,
      });
    const byDefault = runCommand([full.runDir]);
    assert.equal(byDefault.status, 0, byDefault.stderr);
    assert.equal(byDefault.stdout, `${path.join(full.runDir, 'report.html')}\n`);
    assert.match(byDefault.stderr, /2 images named in run.json could not be read/);
    assert.equal(await readFile(path.join(full.runDir, 'report.html'), 'utf8'), html);
    const elsewhere = path.join(path.dirname(full.runDir), 'elsewhere.html');
    const withOut = runCommand([full.runDir, '--out', elsewhere]);
    assert.equal(withOut.status, 0, withOut.stderr);
    assert.equal(withOut.stdout, `${elsewhere}\n`);
    const notARun = runCommand([path.dirname(full.runDir)]);
    assert.equal(notARun.status, 1);
    assert.match(notARun.stderr, /run\.json is not a readable run file/);
  });

  test('leukemia-audit report runs from the built CLI, finding its assets from dist/', () => {
    const bin = path.join(REPO, 'bin', 'leukemia-audit.js');
    const out = path.join(path.dirname(full.runDir), 'from-bin.html');
    const result = spawnSync(process.execPath, [bin, 'report', full.runDir, '--out', out], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, `${out}\n`);
  });

  test(
    'Chromium draws findings, metrics, confusion matrices, charts and the Grad-CAM gallery',
    { skip: noChromium },
    async () => {
      const file = path.join(path.dirname(full.runDir), 'full.html');
      await writeFile(file, html);
      const dom = appOf(renderedDom(file)!);
      assert.doesNotMatch(dom, /could not be shown/, 'a part of the page failed to render');
      for (const split of ['val', 'test'])
        assert.match(dom, new RegExp(`<table class="confusion" id="confusion-${split}"`));
      const { counts } = full.run.metrics.validation!.confusionMatrix;
      const images = (n: number) => `${n} image${n === 1 ? '' : 's'}`;
      assert.ok(dom.includes(`true all, predicted hem: ${images(counts[0][1])}`), 'false-negative count');
      assert.ok(dom.includes(`true hem, predicted hem: ${images(counts[1][1])}`), 'true-negative count');
      assert.ok(dom.includes(FINDINGS[0].message), 'finding message');
      assert.match(dom, /structural-labels/);
      assert.ok(
        dom.includes(`<td class="num">${full.run.metrics.test!.weightedF1.toFixed(3)}</td>`),
        'test weighted F1',
      );
      assert.equal(dom.match(/<svg [^>]*class="chart"/g)?.length, 4, 'loss, accuracy, ROC and reliability charts');
      // The hostile name is text in the page: escaped in the serialised DOM, never an element.
      assert.ok(dom.includes(HOSTILE_ESCAPED), 'hostile path shown as text');
      assert.ok(dom.includes('&lt;script&gt;alert(2)&lt;/script&gt;'), 'hostile message shown as text');
      assert.doesNotMatch(dom, /<img src="x"|<img src=x/i);
      // Per sample: the input, and the input under the map painted from the raw map on a canvas (the PNG
      // overlays, one of them never written, are not needed).
      const samples = full.run.explanations!.samples;
      const shown = dom.match(/<img src="data:image\/png;base64,/g)?.length ?? 0;
      assert.equal(shown, samples.length * 2);
      assert.doesNotMatch(dom, /<img [^>]*class="overlay"/);
      assert.doesNotMatch(dom, /image not available/);
      // Drawn: paintCam marks a canvas with the colour map once it has painted it (viridis by default).
      const canvases = [...dom.matchAll(/<canvas [^>]*>/g)]
        .map((m) => m[0])
        .filter((tag) => /class="overlay"/.test(tag));
      assert.equal(canvases.length, samples.length, 'one painted map per sample');
      for (const tag of canvases) {
        assert.match(
          tag,
          new RegExp(`width="${IMAGE_SIZE}" height="${IMAGE_SIZE}"`),
          'the canvas has the input image size',
        );
        assert.match(tag, /data-colormap="viridis"/, `painted: ${tag}`);
        assert.match(tag, /role="img" aria-label="Grad-CAM: /);
      }
      const select = /<select id="overlay-colormap"[^>]*>([\s\S]*?)<\/select>/.exec(dom);
      assert.ok(select, 'the colour map select');
      assert.doesNotMatch(select[0], /disabled/);
      assert.deepEqual(
        [...select[1].matchAll(/<option value="([^"]+)">/g)].map((m) => m[1]),
        ['viridis', 'turbo', 'jet'],
      );
      assert.match(dom, /<label for="overlay-colormap">Colour map<\/label>/);
      assert.match(dom, /low<canvas class="colormap" aria-hidden="true" width="256" height="1"><\/canvas>high/);
      assert.doesNotMatch(dom, /overlay-colormap-note/, 'no note when every sample has its map');
      assert.match(dom, /Sanity check <vscode-badge class="badge badge-pass"[^>]*>passed<\/vscode-badge>/);
      assert.match(dom, /Shortcut check <vscode-badge class="badge badge-fail"[^>]*>flagged<\/vscode-badge>/);
    },
  );

  test(
    'in a webview the same bundle answers ready, draws showRun, filters by cell, and posts saveState and openImage',
    { skip: noChromium },
    async () => {
      const { html: report } = await buildHtmlReport(full.runDir);
      const data = JSON.parse(
        /<script type="application\/json" id="run-data">([\s\S]*?)<\/script>/.exec(report)![1],
      ) as ShowRunMessage;
      const wrong = full.run.explanations!.samples.find((s) => s.split === 'val' && s.true !== s.predicted)!;
      const cell = full.run
        .explanations!.samples.filter(
          (s) => s.split === 'val' && s.true === wrong.true && s.predicted === wrong.predicted,
        )
        .sort((a, b) => b.confidence - a.confidence);
      const cellLabel = `true ${CLASSES[wrong.true]}, predicted ${CLASSES[wrong.predicted]}:`;
      // Per sample of the cell, in the gallery's order: the canvas pixels in the middle of its high and low blocks.
      const maps = cell.map((s) => camOf(seedOf(s)));
      const cellCentres = maps.map((m) => [blockCentre(m.high), blockCentre(m.low)]);
      const bundle = (await readFile(path.join(REPO, 'dist', 'webview.js'), 'utf8')).replace(
        /\/\/# sourceMappingURL=.*$/m,
        '',
      );
      // A stand-in for VS Code: the API the webview acquires, then what the user does, in one module so it runs in order.
      const script = `
      const sent = [];
      let stored;
      globalThis.acquireVsCodeApi = () => ({ postMessage: (m) => sent.push(m), getState: () => undefined, setState: (s) => { stored = s; } });
      ${bundle}
      window.dispatchEvent(new MessageEvent('message', { data: ${JSON.stringify({ ...data, runDir: full.runDir }).replace(/</g, '\\u003c')} }));
      [...document.querySelectorAll('#confusion-val button')].find((b) => b.getAttribute('aria-label').startsWith(${JSON.stringify(cellLabel)})).click();
      // The canvases are the page's own (painted from run.json, never from an image), so their pixels are readable.
      const pixels = (at) => [...document.querySelectorAll('#gallery canvas.overlay')].map((canvas, i) => (at[i] ?? []).map(({ x, y }) => Array.from(canvas.getContext('2d').getImageData(x, y, 1, 1).data)));
      const painted = { before: pixels(${JSON.stringify(cellCentres)}) };
      const scale = document.getElementById('overlay-scale');
      scale.value = 'shared';
      scale.dispatchEvent(new Event('change'));
      painted.shared = pixels(${JSON.stringify(cellCentres)});
      const firstCanvas = document.querySelector('#gallery canvas.overlay');
      const colormap = document.getElementById('overlay-colormap');
      colormap.value = 'jet';
      colormap.dispatchEvent(new Event('change'));
      painted.jet = pixels(${JSON.stringify(cellCentres)});
      painted.sameCanvas = document.querySelector('#gallery canvas.overlay') === firstCanvas;
      painted.marked = document.querySelector('#gallery canvas.overlay').dataset.colormap;
      document.querySelector('.sample button.path').click();
      const slider = document.getElementById('overlay-opacity');
      slider.value = '20';
      slider.dispatchEvent(new Event('input'));
      slider.dispatchEvent(new Event('change'));
      const out = document.createElement('pre');
      out.id = 'sent';
      out.textContent = JSON.stringify({ sent, stored, painted });
      document.body.append(out);`;
      const file = path.join(path.dirname(full.runDir), 'webview.html');
      await writeFile(
        file,
        `<!doctype html><html><head><meta charset="utf-8"></head><body><main id="app"></main><script type="module">${script}</script></body></html>`,
      );
      const dom = renderedDom(file)!;
      const sentText = /<pre id="sent">([\s\S]*?)<\/pre>/.exec(dom)?.[1];
      assert.ok(sentText, `the interaction script ran to its end:\n${appOf(dom).slice(0, 2000)}`);
      const { sent, stored, painted } = JSON.parse(
        sentText.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'),
      );
      const filter = { split: 'val', true: wrong.true, predicted: wrong.predicted };
      assert.deepEqual(sent, [
        { type: 'ready' },
        {
          type: 'saveState',
          state: { filter, opacity: 0.6, scale: 'image', colormap: 'viridis', sort: 'confidence-desc' },
        },
        {
          type: 'saveState',
          state: { filter, opacity: 0.6, scale: 'shared', colormap: 'viridis', sort: 'confidence-desc' },
        },
        {
          type: 'saveState',
          state: { filter, opacity: 0.6, scale: 'shared', colormap: 'jet', sort: 'confidence-desc' },
        },
        { type: 'openImage', path: cell[0].path },
        {
          type: 'saveState',
          state: { filter, opacity: 0.2, scale: 'shared', colormap: 'jet', sort: 'confidence-desc' },
        },
      ]);
      // The page's own VS Code state names the run, for the panel serializer after a window reload.
      assert.deepEqual(stored, {
        filter,
        opacity: 0.2,
        scale: 'shared',
        colormap: 'jet',
        sort: 'confidence-desc',
        runDir: full.runDir,
      });
      // The painted colours are the colour map's, at the raw map's values: its own range per image (high block
      // 1, low block 0), then the run-wide scale, then the same in jet. Opaque; the opacity is the canvas's CSS.
      const sharedScale = full.run.explanations!.sharedScale!;
      const expected = (name: ColormapName, high: (peak: number) => number) =>
        maps.map((m) => [
          [...colourOf(name, high(m.peak)), 255],
          [...colourOf(name, 0), 255],
        ]);
      const near = (actual: number[][][], wanted: number[][][], what: string) => {
        assert.equal(actual.length, wanted.length, `${what}: one canvas per sample of the cell`);
        actual.forEach((points, i) =>
          points.forEach((rgba, j) =>
            rgba.forEach((value, c) =>
              assert.ok(
                Math.abs(value - wanted[i][j][c]) <= 2,
                `${what}, sample ${i}, ${j === 0 ? 'high' : 'low'} block: ${rgba} vs ${wanted[i][j]}`,
              ),
            ),
          ),
        );
      };
      near(
        painted.before,
        expected('viridis', () => 1),
        'viridis, each image its own maximum',
      );
      near(
        painted.shared,
        expected('viridis', (peak) => peak / sharedScale),
        'viridis, run-wide scale',
      );
      near(
        painted.jet,
        expected('jet', (peak) => peak / sharedScale),
        'jet, run-wide scale',
      );
      assert.ok(
        maps.some((m) => m.peak / sharedScale < 0.9),
        'the fixture has maps weaker than the run maximum',
      );
      assert.equal(painted.sameCanvas, true, 'a colour map change repaints the canvases in place');
      assert.equal(painted.marked, 'jet');
      const app = appOf(dom);
      assert.equal(app.match(/class="gallery-group"/g)?.length, 1, 'only the chosen cell');
      assert.match(app, /aria-pressed="true"/);
      assert.match(app, /<div class="gallery" id="gallery" style="--overlay-opacity: 0.2;">/);
      assert.match(app, /<output for="overlay-opacity">20(&nbsp;|\u00a0)%<\/output>/);
      assert.equal(
        app.match(/<canvas class="overlay"/g)?.length,
        cell.length,
        'one painted map per sample of the cell',
      );
    },
  );

  test(
    'a run without raw maps shows the overlay PNGs, with the colour map select disabled and a note',
    { skip: noChromium },
    async () => {
      const old = await writeRunWithoutMaps(full);
      const file = path.join(old.runDir, 'report.html');
      const { html: report, missingImages } = await buildHtmlReport(old.runDir);
      assert.deepEqual(missingImages, ['../outside.png', 'explanations/val/never-written.png']);
      await writeFile(file, report);
      const dom = appOf(renderedDom(file)!);
      assert.doesNotMatch(dom, /could not be shown/);
      // Per sample: the input, the input under the map, and the map, except the one map that was never written.
      const samples = old.run.explanations!.samples;
      assert.equal(dom.match(/<img src="data:image\/png;base64,/g)?.length ?? 0, samples.length * 3 - 1);
      assert.equal(dom.match(/<img [^>]*class="overlay"/g)?.length, samples.length - 1);
      assert.match(dom, /image not available/);
      assert.doesNotMatch(dom, /<canvas class="overlay"/);
      const select = /<select id="overlay-colormap"([^>]*)>([\s\S]*?)<\/select>/.exec(dom);
      assert.ok(select, 'the colour map select');
      assert.match(select[1], /disabled=""/);
      assert.match(select[1], /aria-describedby="overlay-colormap-note"/);
      assert.deepEqual(
        [...select[2].matchAll(/<option value="([^"]+)">/g)].map((m) => m[1]),
        ['viridis', 'turbo', 'jet'],
      );
      assert.match(
        dom,
        /<p class="hint colormap-note" id="overlay-colormap-note">Colour map fixed \(jet\): [^<]*Explain the run again/,
      );
      assert.match(dom, /colour map jet\./, 'the lead names the colour map baked into the PNGs');
    },
  );

  test(
    'Chromium shows notes for what a run does not have yet, and the structural-labels banner',
    { skip: noChromium },
    async () => {
      const runDir = await writeEarlyRun();
      const file = path.join(runDir, 'report.html');
      await writeFile(file, (await buildHtmlReport(runDir)).html);
      const dom = appOf(renderedDom(file)!);
      assert.doesNotMatch(dom, /could not be shown/);
      assert.match(dom, /These labels are folders, not diagnoses/);
      assert.match(dom, /No metrics yet/);
      assert.match(dom, /No finished epoch yet/);
      assert.match(dom, /No Grad-CAM explanations in this run yet/);
      assert.doesNotMatch(dom, /class="confusion"/);
    },
  );

  test(
    'Chromium shows an evaluation run without what only training has: epochs, training settings, curves',
    { skip: noChromium },
    async () => {
      const runDir = await freshDir('report-test-evaluation-');
      const run = JSON.parse(await readFile(path.join(full.runDir, 'run.json'), 'utf8')) as RunFile;
      run.kind = 'evaluation';
      run.history = [];
      run.bestEpoch = null;
      await writeFile(path.join(runDir, 'run.json'), JSON.stringify(run));
      const file = path.join(runDir, 'report.html');
      await writeFile(file, (await buildHtmlReport(runDir)).html);
      const dom = appOf(renderedDom(file)!);
      assert.doesNotMatch(dom, /could not be shown/);
      assert.match(dom, /<h1>Evaluation /);
      assert.match(dom, /<dt>Evaluated<\/dt>/);
      assert.match(dom, /<dt>Model<\/dt>/, 'the evaluated model is named');
      for (const trainingOnly of ['<dt>Best epoch</dt>', '<dt>Training</dt>', 'Training curves', 'No finished epoch'])
        assert.ok(!dom.includes(trainingOnly), `no ${trainingOnly}`);
    },
  );
});
