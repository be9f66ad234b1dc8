// The typed protocols of the child processes: their parsers reject what the other side never sends, and the
// audit child (a real fork of dist/auditChild.js on real image files) answers a request with a report,
// progress on the way, a clear error for a folder that is not there, and nothing once aborted.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { runAuditProcess } from '../src/extension/workspace/auditProcess.js';
import { parseAuditCommand, parseAuditMessage } from '../src/protocol/audit.js';
import { parseTrainerMessage } from '../src/protocol/trainer.js';
import { ensureBuilt } from './helpers/build.js';

const auditChild = join(__dirname, '..', 'dist', 'auditChild.js');
let work: string;
let dataset: string;

before(async () => {
  ensureBuilt(['auditChild.js']);
  work = await mkdtemp(join(tmpdir(), 'leukemia-protocol-'));
  await generateDemoDataset(work, { imageSize: 32, imagesPerFold: 24, validationImages: 6, seed: 11 });
  dataset = join(work, 'C-NMC_Leukemia', 'training_data');
});
after(() => rm(work, { recursive: true, force: true }));

test('the audit protocol parses what its sides send and nothing else', () => {
  const request = { root: '/d', checkPixels: true, subjectPattern: '^UID_(H?\\d+)_' };
  assert.deepEqual(parseAuditCommand({ type: 'audit', request }), { type: 'audit', request });
  assert.equal(parseAuditCommand({ type: 'audit', request: { root: 3, checkPixels: true } }), undefined);
  assert.equal(
    parseAuditCommand({ type: 'audit', request: { root: '/d', checkPixels: true, subjectPattern: 1 } }),
    undefined,
  );
  assert.equal(parseAuditCommand({ type: 'run', request }), undefined);
  assert.deepEqual(parseAuditMessage({ type: 'progress', phase: 'pixels', done: 64, total: 100 }), {
    type: 'progress',
    phase: 'pixels',
    done: 64,
    total: 100,
  });
  assert.equal(parseAuditMessage({ type: 'progress', phase: 'elsewhere', done: 1 }), undefined);
  assert.equal(parseAuditMessage({ type: 'result' }), undefined);
  assert.equal(parseAuditMessage({ type: 'error', message: 7 }), undefined);
  assert.equal(parseAuditMessage(null), undefined);
});

test('the trainer messages are checked by tag and the fields the extension reads', () => {
  assert.deepEqual(parseTrainerMessage({ type: 'ready', pid: 5 }), { type: 'ready', pid: 5 });
  assert.equal(parseTrainerMessage({ type: 'ready' }), undefined);
  assert.equal(parseTrainerMessage({ type: 'event', event: 'epoch' }), undefined);
  assert.equal(parseTrainerMessage({ type: 'result', run: null }), undefined);
  assert.deepEqual(parseTrainerMessage({ type: 'cancelled', extra: 1 }), { type: 'cancelled' });
  assert.equal(parseTrainerMessage({ type: 'shout' }), undefined);
});

test('the audit child reports progress and the full report of a real dataset', { timeout: 120_000 }, async () => {
  const phases = new Set<string>();
  const report = await runAuditProcess(
    auditChild,
    { root: dataset, checkPixels: true },
    { onProgress: (phase) => phases.add(phase) },
  );
  assert.ok(report, 'a report');
  assert.equal(report.root, dataset);
  assert.ok(report.images > 0);
  assert.ok(report.findings.some((f) => f.code === 'structural-labels'));
  assert.ok(phases.has('scan') && phases.has('pixels'), [...phases].join(','));
});

test(
  'the audit child names a folder that is not there; an aborted audit is undefined',
  { timeout: 60_000 },
  async () => {
    const missing = join(work, 'nowhere');
    await assert.rejects(runAuditProcess(auditChild, { root: missing, checkPixels: false }), (error: Error) =>
      error.message.includes('nowhere'),
    );
    const controller = new AbortController();
    const pending = runAuditProcess(auditChild, { root: dataset, checkPixels: true }, { signal: controller.signal });
    controller.abort();
    assert.equal(await pending, undefined);
  },
);
