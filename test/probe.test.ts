// The batch-effect probe end to end in the core, on real image files written at test time: a site whose
// images are brighter is predictable from the pixels (group-predictable fires, by subject), the demo data's
// folds are not, and a second probe reads every feature from the cache.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateDemoDataset, randomStainTint, renderCell } from '../src/core/demo/generate.js';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { auditScan } from '../src/core/audit/audit.js';
import { crossValidateProbe } from '../src/core/probe/crossValidate.js';
import { GroupChoiceError, resolveGrouping } from '../src/core/probe/groupChoice.js';
import type { ScanResult } from '../src/core/types.js';
import { probeDataset } from '../src/core/probe/probe.js';
import { createRng } from '../src/core/random.js';
import { readRunFile } from '../src/core/run/runFileIo.js';

let work = '';
let cacheDir = '';

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'probe-test-'));
  cacheDir = path.join(work, 'cache');
});
after(async () => rm(work, { recursive: true, force: true }));

/**
 * Three sites × four subjects (two ALL, two HEM) × six cells; every subject has its own stain, and site_A's
 * scanner adds 45 % brightness to everything it images.
 */
async function writeSiteDataset(root: string, size = 40): Promise<void> {
  const rng = createRng('probe-sites');
  let subject = 0;
  for (const site of ['site_A', 'site_B', 'site_C']) {
    for (const label of ['all', 'hem', 'all', 'hem'] as const) {
      subject++;
      const tint = randomStainTint(rng.fork(`tint/${subject}`));
      await mkdir(path.join(root, site, label), { recursive: true });
      for (let image = 1; image <= 6; image++) {
        const cell = renderCell(rng.fork(`cell/${subject}/${image}`), label, size, tint);
        if (site === 'site_A') cell.data.forEach((v, i) => (cell.data[i] = Math.min(255, Math.round(v * 1.45 + 12))));
        await writeFile(path.join(root, site, label, `UID_${subject}_${image}_1_${label}.bmp`), encodeBmp24(cell));
      }
    }
  }
}

describe('probe', () => {
  test('a brighter site is predictable from the pixels by subject: group-predictable, and the cache serves the second run', async (t) => {
    const root = path.join(work, 'sites');
    await writeSiteDataset(root);
    const options = {
      dataset: root,
      weights: 'none',
      imageSize: 32,
      cacheDir,
      report: false,
    };
    const first = await probeDataset({ ...options, out: path.join(work, 'sites-run-1') });
    const probe = first.run.probe!;
    const group = probe.group!;
    t.diagnostic(`site: ${group.verdict}; diagnosis: ${probe.diagnosis?.verdict}`);
    t.diagnostic(`first run ${probe.seconds.total.toFixed(2)} s (features ${probe.seconds.features.toFixed(2)} s)`);
    assert.equal(first.run.kind, 'probe');
    assert.equal(group.source, 'folders at depth 1');
    assert.ok(!('of' in group), 'the result is data only');
    assert.deepEqual(group.classes, ['site_A', 'site_B', 'site_C']);
    assert.equal(group.unit, 'subject');
    assert.equal(group.units, 12);
    assert.equal(group.images, 72);
    assert.ok(group.predictable, group.verdict);
    assert.ok(group.interval.lower > group.chance);
    // site_A is the one told apart; B and C look alike.
    assert.ok(group.perClass[0].recall! > 0.9, `site_A recall ${group.perClass[0].recall}`);
    assert.equal(
      group.confusion.flat().reduce((a, b) => a + b, 0),
      72,
    );
    const finding = first.run.dataset.findings.find((f) => f.code === 'group-predictable');
    assert.ok(finding, 'group-predictable is among the run\u2019s findings');
    assert.equal(finding.severity, 'warning');
    assert.match(
      finding.message,
      /^The site can be predicted from the pixels at balanced accuracy 0\.\d\d \(chance 0\.33, 95% CI 0\.\d\d–[01]\.\d\d\)/,
    );
    assert.match(finding.message, /a model can learn the site instead of the disease/);
    assert.equal(probe.finding?.code, 'group-predictable');
    assert.equal(probe.backbone.pretrained, false);
    assert.ok(probe.notes.some((n) => /probe is weaker/.test(n)));
    assert.deepEqual(probe.cache, { folder: path.join(cacheDir, 'features'), fromCache: 0, computed: 72 });
    // run.json on disk is what was returned.
    assert.deepEqual((await readRunFile(first.runDir)).probe!.group!.confusion, group.confusion);

    const second = await probeDataset({ ...options, out: path.join(work, 'sites-run-2') });
    const again = second.run.probe!;
    t.diagnostic(`second run ${again.seconds.total.toFixed(2)} s (features ${again.seconds.features.toFixed(2)} s)`);
    assert.equal(again.cache.fromCache, 72);
    assert.equal(again.cache.computed, 0);
    assert.deepEqual(again.group!.confusion, group.confusion, 'cached features give the same probe');
    assert.equal(again.group!.balancedAccuracy, group.balancedAccuracy);

    // Another image size is another feature: nothing from the cache.
    const other = await probeDataset({ ...options, imageSize: 36, out: path.join(work, 'sites-run-3') });
    assert.equal(other.run.probe!.cache.fromCache, 0);
  });

  test('the demo data\u2019s folds cannot be told from the pixels: no group-predictable', async (t) => {
    await generateDemoDataset(path.join(work, 'demo'), { seed: 5, imageSize: 40, imagesPerFold: 90 });
    const { run } = await probeDataset({
      dataset: path.join(work, 'demo', 'C-NMC_Leukemia', 'training_data'),
      weights: 'none',
      imageSize: 32,
      cacheDir,
      report: false,
      out: path.join(work, 'demo-run'),
    });
    const probe = run.probe!;
    t.diagnostic(`folds: ${probe.group!.verdict}; diagnosis: ${probe.diagnosis!.verdict}`);
    assert.deepEqual(probe.group!.classes, ['fold_0', 'fold_1', 'fold_2']);
    assert.equal(probe.group!.one, 'fold');
    assert.equal(probe.group!.unit, 'subject');
    assert.equal(probe.group!.predictable, false, probe.group!.verdict);
    assert.equal(probe.finding, null);
    assert.ok(!run.dataset.findings.some((f) => f.code === 'group-predictable'));
    // The same features do tell ALL from HEM: the probe is not blind, the folds carry nothing.
    assert.ok(probe.diagnosis!.predictable, probe.diagnosis!.verdict);
  });
});

describe('crossValidateProbe', () => {
  test('without subject ids images are the unit; a class of one subject is named', async () => {
    const rng = createRng(2);
    const n = 40;
    const features = Float32Array.from({ length: n * 4 }, (_, i) =>
      rng.normal(Math.floor(i / 4) % 2 === 0 ? 1 : -1, 1),
    );
    const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
    const byImage = await crossValidateProbe({
      features,
      dimension: 4,
      labels,
      classes: ['a', 'b'],
      subjects: new Array(n).fill(undefined),
      seed: 1,
      resamples: 200,
    });
    assert.equal(byImage.unit, 'image');
    assert.equal(byImage.units, n);
    assert.ok(byImage.balancedAccuracy > 0.8);
    assert.ok(byImage.interval.lower <= byImage.balancedAccuracy && byImage.balancedAccuracy <= byImage.interval.upper);
    // Class b comes from one subject only: held out, it was never seen, so it is never predicted.
    const bySubject = await crossValidateProbe({
      features,
      dimension: 4,
      labels,
      classes: ['a', 'b'],
      subjects: Array.from({ length: n }, (_, i) => (i % 2 === 1 ? 'only' : `s${i % 10}`)),
      seed: 1,
      resamples: 200,
    });
    assert.equal(bySubject.unit, 'subject');
    assert.deepEqual(bySubject.singleUnitClasses, ['b']);
    assert.equal(bySubject.perClass[1].recall, 0);
  });
});

describe('resolveGrouping', () => {
  const scanOf = (paths: string[]): ScanResult => ({
    root: '/data',
    images: paths.map((path) => ({ path, format: 'bmp', width: 64, height: 64, channels: 3, size: 1000 })),
    unreadable: [],
    otherFiles: [],
    ignored: 0,
  });
  const layout = (top: (i: number) => string) =>
    Array.from(
      { length: 60 },
      (_, i) => `${top(i)}/${i % 2 ? 'hem' : 'all'}/UID_${i % 12}_${i}_1_${i % 2 ? 'hem' : 'all'}.bmp`,
    );
  const resolve = (paths: string[], choice: Parameters<typeof resolveGrouping>[0] = 'auto') => {
    const scan = scanOf(paths);
    const report = auditScan(scan);
    return resolveGrouping(choice, scan.images, [], report, report.spec.labelSources);
  };

  test('auto: the fold, site or date folders the audit detects; else the structural top level; never patients', () => {
    const folds = resolve(layout((i) => `fold_${i % 3}`))!;
    assert.equal(folds.one, 'fold');
    assert.equal(folds.groupOf('fold_2/all/x.bmp'), 'fold_2');
    assert.equal(resolve(layout((i) => `hospital_${'ABC'[i % 3]}`))!.one, 'hospital');
    // train/test splits are no confounding candidate, but they are the structural labels: probed as folders.
    const splits = resolve(layout((i) => (i % 3 ? 'train' : 'test')))!;
    assert.equal(splits.one, 'folder');
    assert.equal(splits.groupOf('test/all/x.bmp'), 'test');
    // Patient folders: a held-out patient is a group the probe never saw.
    assert.equal(resolve(layout((i) => `patient_${String(i % 12).padStart(2, '0')}`)), undefined);
  });

  test('folder:N and csv:COL name the grouping; a depth without folders is refused', () => {
    const paths = layout((i) => `fold_${i % 3}`);
    assert.equal(resolve(paths, 'folder:2')!.groupOf('fold_0/hem/x.bmp'), 'hem');
    assert.throws(() => resolve(paths, 'folder:5'), GroupChoiceError);
    assert.throws(() => resolve(paths, 'csv:site'), /No label table of this dataset has a group column site/);
  });
});
