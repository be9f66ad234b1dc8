import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { outputMappings } from '../src/core/editor/outputMappings.js';
import type { OutputAssociation } from '../src/core/evaluate/association.js';
import { evaluateModel } from '../src/core/evaluate/evaluate.js';
import { buildComparisonReport } from '../src/core/report/htmlReport.js';
import { comparisonRows, formatComparison, headlineMetrics, type ComparedRun } from '../src/core/run/compare.js';
import type { RunFile } from '../src/core/run/runFile.js';
import { DEFAULT_SETTINGS } from '../src/core/train/settings.js';
import { trainRun } from '../src/core/train/train.js';
import { ensureBuilt } from './helpers/build.js';
import { appOf, noChromium, renderedDom } from './helpers/chromium.js';
import { isTrainerCommand, parseTrainerMessage } from '../src/protocol/trainer.js';

test('outputMappings lists every one-to-one mapping, best agreement first', () => {
  const association = {
    outputs: ['a', 'b'],
    classes: ['hem', 'all'],
    table: [
      [2, 8],
      [9, 1],
    ],
    n: 20,
  } as OutputAssociation;
  const mappings = outputMappings(association);
  assert.equal(mappings.length, 2);
  assert.deepEqual(mappings[0].classMap, { a: 'all', b: 'hem' });
  assert.equal(mappings[0].agreement, 17 / 20);
  assert.equal(mappings[0].label, 'a → all, b → hem');
  assert.equal(mappings[1].agreement, 3 / 20);
  assert.equal(outputMappings({ ...association, outputs: ['x', 'y', 'z'] }).length, 0, 'counts differ: no mapping');
  const three = outputMappings({
    ...association,
    outputs: ['0', '1', '2'],
    classes: ['a', 'b', 'c'],
    table: [
      [0, 0, 5],
      [5, 0, 0],
      [0, 5, 0],
    ],
    n: 15,
  });
  assert.equal(three.length, 6);
  assert.deepEqual(three[0].classMap, { '0': 'c', '1': 'a', '2': 'b' });
  assert.equal(three[0].agreement, 1);
});

function run(kind: 'training' | 'evaluation', structural: boolean, balanced: number | null): RunFile {
  const metrics =
    balanced === null
      ? undefined
      : { accuracy: balanced, balancedAccuracy: balanced, weightedF1: balanced, rocAuc: null, sampleCount: 10 };
  return {
    kind,
    status: 'completed',
    settings: { labels: structural ? 'folder:1' : 'folder:2' },
    dataset: {
      root: '/data/training_data',
      classes: structural ? ['fold_0', 'fold_1', 'fold_2'] : ['all', 'hem'],
      labelsAreStructural: structural,
      spec: { labelSources: [{ kind: 'folder', depth: structural ? 1 : 2 }] },
    },
    metrics: kind === 'evaluation' ? { test: metrics } : { validation: metrics },
  } as unknown as RunFile;
}

test('comparisonRows puts the fold model next to the all/hem model and flags what differs', () => {
  const runs: ComparedRun[] = [
    { runDir: '/runs/run-folds', run: run('training', true, 0.9) },
    { runDir: '/runs/run-allhem', run: run('evaluation', false, 0.7) },
  ];
  const rows = new Map(comparisonRows(runs).map((r) => [r.label, r]));
  assert.deepEqual(rows.get('kind')!.values, ['training', 'evaluation']);
  assert.deepEqual(rows.get('structural labels')!.values, ['yes — folds, splits or batches', 'no']);
  assert.equal(rows.get('structural labels')!.differs, true);
  assert.equal(rows.get('label source')!.values[0], 'folder:1 → folder level 1');
  assert.deepEqual(rows.get('balanced accuracy')!.values, ['0.900', '0.700']);
  assert.deepEqual(rows.get('judged on')!.values, ['validation (10 images)', 'test (10 images)']);
  assert.equal(rows.get('kind')!.differs, false, 'kind is not a difference that is flagged');
  assert.equal(headlineMetrics(run('evaluation', false, null)), null);
  // `auto` that resolved to the same folder level as `folder:2` is the same labels: shown, not flagged.
  const auto = run('evaluation', false, 0.7);
  auto.settings.labels = 'auto';
  const same = new Map(comparisonRows([runs[1], { runDir: '/runs/eval-auto', run: auto }]).map((r) => [r.label, r]));
  assert.deepEqual(same.get('label source')!.values, ['folder:2 → folder level 2', 'auto → folder level 2']);
  assert.equal(same.get('label source')!.differs, false);
  const text = formatComparison(runs);
  assert.match(text.split('\n')[0], /run-folds\s+run-allhem/);
  assert.match(text, /\* structural labels\s+yes/);
});

test('the trainer protocol carries an evaluate request and its progress, field by field', () => {
  const request = { dataset: '/d', weights: '/m.pth', out: '/r', classMap: { fold_0: 'all' } };
  assert.equal(isTrainerCommand({ type: 'evaluate', request }), true);
  assert.equal(isTrainerCommand({ type: 'evaluate', request: { ...request, out: 3 } }), false);
  assert.equal(isTrainerCommand({ type: 'evaluate', request: { ...request, classMap: { a: 1 } } }), false);
  // The engine settings training has, for evaluate and probe alike; each checked.
  const engine = {
    backend: 'torch',
    python: '/usr/bin/python3',
    pythonFromEditor: '/venv/bin/python',
    device: 'cuda:1',
  };
  assert.equal(isTrainerCommand({ type: 'evaluate', request: { ...request, ...engine } }), true);
  assert.equal(isTrainerCommand({ type: 'probe', request: { dataset: '/d', out: '/r', ...engine } }), true);
  assert.equal(isTrainerCommand({ type: 'evaluate', request: { ...request, device: 'gpu' } }), false);
  assert.equal(isTrainerCommand({ type: 'evaluate', request: { ...request, backend: 'pytorch' } }), false);
  assert.equal(isTrainerCommand({ type: 'probe', request: { dataset: '/d', out: '/r', python: 3 } }), false);
  assert.deepEqual(
    parseTrainerMessage({ type: 'evaluation-progress', phase: 'predict', done: 1, total: 2, etaSeconds: 5 }),
    { type: 'evaluation-progress', phase: 'predict', done: 1, total: 2, etaSeconds: 5 },
  );
  assert.deepEqual(parseTrainerMessage({ type: 'evaluation-progress', phase: 'prepare', done: 1, total: 2 }), {
    type: 'evaluation-progress',
    phase: 'prepare',
    done: 1,
    total: 2,
  });
  assert.equal(
    parseTrainerMessage({ type: 'evaluation-progress', phase: 'predict', done: 1, total: 2, etaSeconds: 'soon' }),
    undefined,
  );
  assert.equal(parseTrainerMessage({ type: 'evaluation-progress', phase: 'train', done: 1, total: 2 }), undefined);
  assert.equal(parseTrainerMessage({ type: 'evaluated', run: {} }), undefined, 'no runDir');
});

test(
  'an evaluation whose outputs are not the classes is compared by its output × label table, with Cramér’s V',
  { skip: noChromium },
  async () => {
    ensureBuilt(['webview.js'], ['src', 'webview']);
    const work = await mkdtemp(join(tmpdir(), 'leukemia-compare-'));
    try {
      await generateDemoDataset(work, { imageSize: 32, imagesPerFold: 24, validationImages: 4, seed: 3 });
      const dataset = join(work, 'C-NMC_Leukemia', 'training_data');
      const foldRun = join(work, 'run-folds');
      const tiny = { ...DEFAULT_SETTINGS, dataset, imageSize: 32, batchSize: 16, epochs: 1, patience: 0, workers: 1 };
      await trainRun({ ...tiny, out: foldRun, labels: 'folder:1' }, () => undefined);
      // The fold model on the true labels: three outputs, two classes, no mapping, so no confusion matrix.
      const evaluation = await evaluateModel({
        dataset,
        weights: foldRun,
        out: join(work, 'eval-folds'),
        report: false,
        explain: false,
      });
      const association = evaluation.run.evaluation!.association;
      assert.equal(evaluation.run.metrics.test, null);

      const file = join(work, 'compare.html');
      await writeFile(file, await buildComparisonReport([foldRun, evaluation.runDir]));
      const app = appOf(renderedDom(file)!);
      assert.doesNotMatch(app, /could not be shown/);
      assert.doesNotMatch(app, /No confusion matrix/, 'the unmapped evaluation is not shown as having nothing');
      const tables = app.match(/<table class="grid contingency">[\s\S]*?<\/table>/g) ?? [];
      assert.equal(tables.length, 1, 'one output × label table: the evaluation’s');
      const [table] = tables;
      assert.ok(
        table.includes(`${association.n} images · Cramér’s V ${association.cramersV.toFixed(2)}`),
        `the caption gives the images and Cramér’s V: ${table.slice(0, 300)}`,
      );
      const shownRows = [
        ...table.matchAll(/<tr><th scope="row">([^<]*)<\/th>((?:<td class="num">[^<]*<\/td>)+)<\/tr>/g),
      ].map(([, output, cells]) => [
        output,
        [...cells.matchAll(/<td class="num">([^<]*)<\/td>/g)].map(([, n]) => Number(n)),
      ]);
      assert.deepEqual(
        shownRows,
        association.outputs.map((output, i) => [output, association.table[i]]),
        'one row per model output with its counts per true label',
      );
      assert.match(app, /class="confusion"/, 'the training run next to it keeps its confusion matrix');
      assert.match(app, /output × label table \(\d+ images, Cramér's V \d\.\d\d\)/, 'the "judged on" row says so');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
);
