// The pure parts behind the editor's views: training progress folding, run folders, webview message checks
// and the JSON outline used for leukemia-audit.json.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { outlineJsonObject } from '../src/core/editor/jsonLocate.js';
import { describeRun } from '../src/core/editor/runDescription.js';
import { expandPathVariables, runFolderName } from '../src/core/run/runFolders.js';
import {
  applyTrainEvent,
  formatDuration,
  initialView,
  overallFraction,
  progressMessage,
  statusLine,
} from '../src/core/train/progress.js';
import { resolveInside } from '../src/core/paths.js';
import { parseResultsMessage } from '../src/protocol/results.js';
import type { RunFile } from '../src/core/run/runFile.js';

describe('training progress', () => {
  const record = (epoch: number) => ({
    epoch,
    trainLoss: 0.5,
    trainAccuracy: 0.8,
    valLoss: 0.6,
    valAccuracy: 0.7,
    valBalancedAccuracy: 0.7,
    learningRate: 1e-3,
    seconds: 10,
    imagesPerSecond: 40,
  });

  test('events fold into one view: phases, batches, epochs (deduplicated on resume), best epoch, bounded log', () => {
    let view = initialView('/d', 'folder:2', false, 5);
    assert.equal(statusLine(view), 'Starting trainer…');
    view = applyTrainEvent(view, { type: 'phase', phase: 'audit', done: 0, total: 1 });
    assert.equal(view.status, 'running');
    assert.equal(statusLine(view), 'Auditing labels');
    view = applyTrainEvent(view, { type: 'started', runDir: '/r', backend: 'wasm', labelsAreStructural: false });
    view = applyTrainEvent(view, { type: 'phase', phase: 'prepare', done: 10, total: 90 });
    assert.equal(statusLine(view), 'Preparing images 10/90');
    view = applyTrainEvent(view, {
      type: 'progress',
      epoch: 2,
      epochs: 5,
      batch: 3,
      batches: 10,
      loss: 0.4567,
      accuracy: 0.8,
      imagesPerSecond: 33.4,
      etaSeconds: 125,
    });
    assert.equal(statusLine(view), 'Epoch 2/5 · batch 3/10 · 33 img/s');
    assert.equal(progressMessage(view), 'Epoch 2/5 · batch 3/10 · 33 img/s · loss 0.457 · ETA 2m 05s');
    assert.ok(Math.abs(overallFraction(view) - 1.3 / 5) < 1e-9);
    view = applyTrainEvent(view, { type: 'epoch', record: record(1), best: true });
    view = applyTrainEvent(view, { type: 'epoch', record: record(2), best: false });
    view = applyTrainEvent(view, { type: 'epoch', record: record(1), best: false });
    assert.deepEqual(
      view.history.map((h) => h.epoch),
      [1, 2],
    );
    assert.equal(view.bestEpoch, 1);
    for (let i = 0; i < 60; i++) view = applyTrainEvent(view, { type: 'log', level: 'info', message: `line ${i}` });
    assert.equal(view.log.length, 50);
    assert.equal(view.log[49].message, 'line 59');
    assert.equal(view.runDir, '/r');
    assert.equal(view.backend, 'wasm');
  });

  test('formatDuration', () => {
    assert.equal(formatDuration(5.4), '5s');
    assert.equal(formatDuration(3725), '1h 02m');
    assert.equal(formatDuration(Infinity), '–');
  });
});

describe('run folders', () => {
  test('expandPathVariables', () => {
    const ws = path.resolve('/ws');
    assert.equal(
      expandPathVariables('${workspaceFolder}/.leukemia-audit/runs', { workspaceFolder: ws }),
      path.join(ws, '.leukemia-audit', 'runs'),
    );
    assert.equal(expandPathVariables('runs', { workspaceFolder: ws }), path.join(ws, 'runs'));
    assert.equal(expandPathVariables('~/runs', { userHome: path.resolve('/home/me') }), path.resolve('/home/me/runs'));
    assert.equal(expandPathVariables('${workspaceFolder}/runs', {}), undefined);
    assert.equal(expandPathVariables('relative', {}), undefined);
  });

  test('runFolderName sorts by time', () => {
    assert.equal(runFolderName(new Date(2025, 0, 2, 3, 4, 5)), 'run-20250102-030405');
  });

  test('describeRun warns about structural labels', () => {
    const run = {
      status: 'completed',
      updatedAt: '2025-01-01T00:00:00Z',
      createdAt: '2025-01-01T00:00:00Z',
      settings: { labels: 'folder:1' },
      history: [{}],
      dataset: { root: '/d/training_data', classes: ['fold_0', 'fold_1'], labelsAreStructural: true },
      metrics: { validation: { balancedAccuracy: 0.5, weightedF1: 0.4 }, test: null },
    } as unknown as RunFile;
    const d = describeRun(run, '/runs/run-1');
    assert.equal(d.label, '$(pass) run-1');
    assert.match(d.description, /completed · training_data · folder:1 \(fold_0\/fold_1\)/);
    assert.match(d.detail, /^\$\(warning\) trained on structural labels — balanced accuracy 50\.0%/);
  });

  test('describeRun lists a probe run by its verdict, flagged when the group is predictable', () => {
    const verdict =
      'the fold can be predicted from the pixels at balanced accuracy 0.81 (chance 0.33, 95% CI 0.74–0.87)';
    const run = {
      kind: 'probe',
      status: 'completed',
      updatedAt: '2025-01-01T00:00:00Z',
      createdAt: '2025-01-01T00:00:00Z',
      settings: { labels: 'auto' },
      history: [],
      dataset: { root: '/d/training_data', classes: ['all', 'hem'], labelsAreStructural: false },
      metrics: { validation: null, test: null },
      probe: { group: { verdict }, diagnosis: null, finding: { code: 'group-predictable' } },
    } as unknown as RunFile;
    const d = describeRun(run, '/runs/run-2');
    assert.equal(d.label, '$(pass) $(search) run-2');
    assert.match(d.description, /^probe · completed · training_data/);
    assert.ok(d.detail.startsWith(`$(warning) ${verdict} · `), d.detail);
  });
});

describe('webview messages', () => {
  test('only well-formed messages pass', () => {
    assert.deepEqual(parseResultsMessage({ type: 'ready' }), { type: 'ready' });
    assert.deepEqual(parseResultsMessage({ type: 'openImage', path: 'fold_0/all/a.bmp' }), {
      type: 'openImage',
      path: 'fold_0/all/a.bmp',
    });
    assert.equal(parseResultsMessage({ type: 'openImage', path: 3 }), undefined);
    assert.equal(parseResultsMessage({ type: 'runCommand', command: 'x' }), undefined);
    assert.equal(parseResultsMessage('ready'), undefined);
  });

  test('resolveInside keeps paths inside the allowed roots', () => {
    const root = path.resolve('/data/set');
    assert.equal(resolveInside('fold_0/all/a.bmp', root, [root]), path.join(root, 'fold_0', 'all', 'a.bmp'));
    assert.equal(resolveInside('fold_0\\all\\a.bmp', root, [root]), path.join(root, 'fold_0', 'all', 'a.bmp'));
    assert.equal(resolveInside('../../etc/passwd', root, [root]), undefined);
    assert.equal(resolveInside('/etc/passwd', root, [root]), undefined);
    assert.equal(resolveInside('C:/Windows/x', root, [root]), undefined);
    assert.equal(resolveInside('../set-other/a.bmp', root, [root]), undefined);
  });
});

test('outlineJsonObject keeps offsets, tolerates comments and trailing commas, and survives errors', () => {
  const text = '{\n  // the dataset\n  "root": "a",\n  "n": [1, {"x": null}],\n}';
  const outline = outlineJsonObject(text)!;
  assert.equal(outline.complete, true);
  assert.deepEqual(
    outline.properties.map((p) => [p.key, p.value, text.slice(p.valueStart, p.valueEnd)]),
    [
      ['root', 'a', '"a"'],
      ['n', [1, { x: null }], '[1, {"x": null}]'],
    ],
  );
  const broken = outlineJsonObject('{"root": "a", "labels": ')!;
  assert.equal(broken.complete, false);
  assert.deepEqual(
    broken.properties.map((p) => p.key),
    ['root'],
  );
  assert.equal(outlineJsonObject('[1]'), undefined);
});
