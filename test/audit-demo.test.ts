// The audit end to end on real files: demo datasets written by the generator (with and without planted
// defects) and small hand-made layouts of PNGs written with sharp. Every expectation comes from the
// generator's manifest or from the layout the test wrote, never from the audit itself.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import type { AuditReport } from '../src/core/audit/audit.js';
import type { Finding, FindingCode } from '../src/core/audit/findings.js';
import { scanAndAudit, type AuditDatasetOptions } from '../src/core/audit/runAudit.js';
import { assertSpecConsistent, consistencyChecksRun } from './helpers/auditConsistency.js';
import {
  generateDemoDataset,
  randomStainTint,
  renderCell,
  type DemoImage,
  type DemoLabel,
  type DemoManifest,
  type DemoOptions,
} from '../src/core/demo/generate.js';
import { createRng } from '../src/core/random.js';

const SMALL: DemoOptions = { imageSize: 32, imagesPerFold: 60, seed: 1 };
const TRAINING = 'training_data';

/** The audit of a folder on disk, with its findings checked against its spec (every layout of this suite). */
async function auditDataset(root: string, options?: AuditDatasetOptions): Promise<AuditReport> {
  const { report, scan } = await scanAndAudit(root, options);
  assertSpecConsistent(report, scan);
  return report;
}
after(() => console.log(`# spec/findings consistency checked on ${consistencyChecksRun()} layouts`));

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-demo-'));
  tempDirs.push(dir);
  return dir;
}

/** Generates on first use only, so tests reading the same dataset share one write. */
function shared(options: DemoOptions): () => Promise<DemoManifest> {
  let pending: Promise<DemoManifest> | undefined;
  return () => (pending ??= freshDir().then((dir) => generateDemoDataset(dir, options)));
}

const clean = shared(SMALL);

const findingsOf = (report: AuditReport, code: FindingCode): Finding[] =>
  report.findings.filter((f) => f.code === code);
const findingOf = (report: AuditReport, code: FindingCode): Finding | undefined =>
  report.findings.find((f) => f.code === code);
const describeFindings = (report: AuditReport): string =>
  report.findings.map((f) => `${f.code} (${f.severity}): ${f.message}`).join('\n');
function assertNone(report: AuditReport, ...codes: FindingCode[]): void {
  for (const code of codes)
    assert.equal(findingOf(report, code), undefined, `unexpected ${code}:\n${describeFindings(report)}`);
}

/** A manifest path relative to `training_data`, as the audit of that folder reports it. */
function underTraining(manifestPath: string): string {
  assert.ok(manifestPath.startsWith(`${TRAINING}/`), manifestPath);
  return manifestPath.slice(TRAINING.length + 1);
}

const trainingImages = (manifest: DemoManifest): DemoImage[] =>
  manifest.images.filter((img) => img.fold !== 'validation');

function countBy<T>(items: T[], key: (item: T) => string): { name: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts].map(([name, count]) => ({ name, count })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Subject ids as the audit normalises them (C-NMC writes h10 and H10 for the same person). */
const subjectIds = (images: DemoImage[]): Set<string> => new Set(images.map((img) => img.subject.toUpperCase()));

/** The report-wide contract every audit must honour, whatever the dataset. */
function assertReportContract(report: AuditReport, root: string): void {
  assert.equal(report.root, root);
  assert.equal(report.spec.root, root);
  const order = { error: 0, warning: 1, info: 2 } as const;
  for (let i = 1; i < report.findings.length; i++) {
    assert.ok(
      order[report.findings[i - 1].severity] <= order[report.findings[i].severity],
      `findings not sorted errors first:\n${describeFindings(report)}`,
    );
  }
  for (const f of report.findings) {
    assert.ok(f.paths.length <= 20, `${f.code} lists ${f.paths.length} example paths`);
    for (const p of f.paths) {
      assert.ok(!path.isAbsolute(p) && !p.includes('\\'), `${f.code}: path ${p} is not relative with / separators`);
    }
  }
  for (const u of report.unreadable) assert.ok(!path.isAbsolute(u.path) && !u.path.includes('\\'), u.path);
}

async function writePng(file: string, label: DemoLabel, key: string, size = 32): Promise<void> {
  const rng = createRng(7).fork(key);
  const image = renderCell(rng.fork('cell'), label, size, randomStainTint(rng.fork('tint')));
  const png = await sharp(Buffer.from(image.data), {
    raw: { width: image.width, height: image.height, channels: image.channels },
  })
    .png()
    .toBuffer();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, png);
}

/** Writes `count` distinct cells of `label` as PNGs under `root/folder`. */
async function writeCells(
  root: string,
  folder: string,
  label: DemoLabel,
  count: number,
  prefix = 'cell',
): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      writePng(
        path.join(root, ...folder.split('/'), `${prefix}_${String(i).padStart(3, '0')}.png`),
        label,
        `${folder}/${i}`,
      ),
    ),
  );
}

describe('audit of the generated C-NMC demo', () => {
  test('(a) clean training_data: folds are structural, all/hem one level deeper, nothing else wrong', async () => {
    const manifest = await clean();
    const root = path.join(manifest.root, TRAINING);
    const report = await auditDataset(root);
    assertReportContract(report, root);
    const training = trainingImages(manifest);

    assert.equal(report.images, training.length);
    assert.deepEqual(report.unreadable, []);

    const structural = findingOf(report, 'structural-labels');
    assert.ok(structural, `expected structural-labels:\n${describeFindings(report)}`);
    assert.equal(structural.severity, 'error');
    assert.match(structural.message, /fold_0, fold_1 and fold_2/);
    assert.deepEqual(structural.evidence.recommendedLabelSource, { kind: 'folder', depth: 2 });

    const nested = findingOf(report, 'nested-labels');
    assert.ok(nested, `expected nested-labels:\n${describeFindings(report)}`);
    assert.deepEqual(nested.evidence.recommendedLabelSource, { kind: 'folder', depth: 2 });

    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 2 }]);
    assert.deepEqual(
      report.spec.classes,
      countBy(training, (img) => img.label),
    );
    assert.deepEqual(
      report.spec.classes.map((c) => c.name),
      ['all', 'hem'],
    );
    assert.equal(report.spec.unlabelled, 0);
    assert.deepEqual(report.spec.groups, { depth: 1, groups: countBy(training, (img) => `fold_${img.fold}`) });
    assert.equal(report.spec.splits, null);
    assert.deepEqual(report.spec.split, { kind: 'folds', depth: 1, validationGroup: 'fold_2' });
    assert.deepEqual(report.spec.subjects, { count: subjectIds(training).size, imagesWithSubject: training.length });

    // The demo's folds hold ALL and HEM in the same proportion: no confounding.
    assertNone(report, 'subject-leakage', 'label-mismatch', 'unreadable-images', 'no-labels', 'confounded-groups');
    // Requirement: a dataset of distinct cells must not report duplicates, exact or near.
    const duplicates = findingsOf(report, 'duplicate-images');
    assert.deepEqual(
      duplicates.map((f) => f.evidence),
      [],
      `a clean dataset reported duplicates (false positives):\n${JSON.stringify(
        duplicates.map((f) => f.evidence),
        null,
        1,
      )}`,
    );
  });

  test('(b) the demo root: labels at depth 3, the validation CSV maps 1 → all and 0 → hem, splits at depth 1', async () => {
    const manifest = await clean();
    const report = await auditDataset(manifest.root);
    assertReportContract(report, manifest.root);

    assert.equal(report.images, manifest.images.length);
    assert.deepEqual(report.spec.labelSources, [
      { kind: 'folder', depth: 3 },
      {
        kind: 'csv',
        file: manifest.labelsCsv,
        fileColumn: 'new_names',
        labelColumn: 'labels',
        valueToClass: { '1': 'all', '0': 'hem' },
      },
    ]);
    // Every image is labelled: training images by folder, validation images by the CSV.
    assert.equal(report.spec.unlabelled, 0);
    assert.deepEqual(
      report.spec.classes,
      countBy(manifest.images, (img) => img.label),
    );
    assert.deepEqual(report.spec.splits, {
      depth: 1,
      splits: [
        { name: 'training_data', count: trainingImages(manifest).length, role: 'train' },
        { name: 'validation_data', count: manifest.images.length - trainingImages(manifest).length, role: 'val' },
      ],
    });
    assert.deepEqual(report.spec.groups, {
      depth: 2,
      groups: countBy(trainingImages(manifest), (img) => `fold_${img.fold}`),
    });
    // Validation files are numbered; their subjects come from the CSV's Patient_ID (the original name).
    assert.deepEqual(report.spec.subjects, {
      count: subjectIds(manifest.images).size,
      imagesWithSubject: manifest.images.length,
    });

    assert.equal(findingOf(report, 'structural-labels')?.severity, 'error');
    assert.deepEqual(findingOf(report, 'nested-labels')?.evidence.recommendedLabelSource, { kind: 'folder', depth: 3 });
    assert.ok(
      findingsOf(report, 'filename-labels').some((f) => f.paths.includes(manifest.labelsCsv)),
      `expected a filename-labels finding about ${manifest.labelsCsv}:\n${describeFindings(report)}`,
    );
    // The demo's folds hold ALL and HEM in the same proportion: no confounding.
    assertNone(report, 'subject-leakage', 'label-mismatch', 'unreadable-images', 'no-labels', 'confounded-groups');
  });

  test('(c) leaked subjects are named exactly, with where their images are', async () => {
    const dir = await freshDir();
    const manifest = await generateDemoDataset(dir, { ...SMALL, leakSubjects: 2 });
    assert.equal(manifest.defects.leakedSubjects.length, 2);
    const root = path.join(manifest.root, TRAINING);
    const report = await auditDataset(root);
    assertReportContract(report, root);

    const leakage = findingsOf(report, 'subject-leakage');
    assert.equal(leakage.length, 1, describeFindings(report));
    assert.equal(leakage[0].severity, 'error');
    const reported = leakage[0].evidence.subjects as {
      subject: string;
      across: string;
      where: Record<string, number>;
    }[];
    const expected = manifest.defects.leakedSubjects.map((leak) => leak.subject.toUpperCase()).sort();
    assert.deepEqual(reported.map((s) => s.subject).sort(), expected);
    assert.equal(leakage[0].evidence.count, 2);
    for (const leak of manifest.defects.leakedSubjects) {
      const entry = reported.find((s) => s.subject === leak.subject.toUpperCase())!;
      assert.equal(entry.across, 'fold');
      const ofSubject = trainingImages(manifest).filter((img) => img.subject === leak.subject);
      const where = Object.fromEntries(
        countBy(ofSubject, (img) => `fold_${img.fold}`).map(({ name, count }) => [name, count]),
      );
      assert.deepEqual(entry.where, where);
      assert.deepEqual(Object.keys(where).sort(), [`fold_${leak.homeFold}`, `fold_${leak.leakedToFold}`].sort());
      assert.equal(where[`fold_${leak.leakedToFold}`], leak.movedPaths.length);
    }
    // Folds that share subjects cannot be used as they are: the split becomes subject-disjoint.
    assert.equal(report.spec.split.kind, 'subject-disjoint');
    // Leakage moves files between folds of the same class: it is not a label problem.
    assert.equal(findingOf(report, 'label-mismatch'), undefined, describeFindings(report));
    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 2 }]);
  });

  test('(d) every planted duplicate is found, exact and near, with the folds and classes it crosses', async () => {
    const dir = await freshDir();
    const manifest = await generateDemoDataset(dir, { ...SMALL, duplicates: 4 });
    const planted = manifest.defects.duplicates;
    assert.equal(planted.length, 4);
    assert.deepEqual(planted.map((d) => d.kind).sort(), ['exact', 'exact', 'near', 'near']);
    const root = path.join(manifest.root, TRAINING);
    const report = await auditDataset(root);
    assertReportContract(report, root);
    assert.equal(report.images, trainingImages(manifest).length);

    type DuplicateSet = { paths: string[]; distance: number; crosses: string[] };
    const findings = findingsOf(report, 'duplicate-images');
    const setsOf = (kind: 'exact' | 'near'): DuplicateSet[] => {
      const matching = findings.filter((f) => f.evidence.kind === kind);
      assert.ok(matching.length <= 1, `more than one ${kind} duplicate finding`);
      return matching.length === 0 ? [] : (matching[0].evidence.sets as DuplicateSet[]);
    };
    for (const duplicate of planted) {
      const original = underTraining(duplicate.originalPath);
      const copy = underTraining(duplicate.copyPath);
      const set = setsOf(duplicate.kind).find((s) => s.paths.includes(original) && s.paths.includes(copy));
      assert.ok(
        set,
        `planted ${duplicate.kind} duplicate ${original} / ${copy} not reported:\n${describeFindings(report)}`,
      );
      assert.equal(
        set.crosses.includes('class'),
        duplicate.crossClass,
        `${original} / ${copy}: crosses ${set.crosses}`,
      );
      assert.equal(set.crosses.includes('fold'), duplicate.crossFold, `${original} / ${copy}: crosses ${set.crosses}`);
      if (duplicate.kind === 'exact') assert.equal(set.distance, 0);
    }
    // Distinct cells never share every pixel: the exact sets are exactly the planted exact copies.
    const exactPairs = planted
      .filter((d) => d.kind === 'exact')
      .map((d) => [underTraining(d.originalPath), underTraining(d.copyPath)].sort().join(' + '))
      .sort();
    assert.deepEqual(
      setsOf('exact')
        .map((s) => [...s.paths].sort().join(' + '))
        .sort(),
      exactPairs,
    );
    // Every planted copy crosses a fold or a class, so both findings are errors.
    for (const f of findings) assert.equal(f.severity, 'error', f.message);
    assert.equal(findings.length, 2, describeFindings(report));
  });

  test('(e) planted corrupt files are listed exactly, with reasons, and the rest of the audit is complete', async () => {
    const dir = await freshDir();
    const manifest = await generateDemoDataset(dir, { ...SMALL, corruptFiles: 3 });
    const planted = manifest.defects.corruptFiles;
    assert.deepEqual(planted.map((c) => c.kind).sort(), ['empty', 'text', 'truncated']);
    const root = path.join(manifest.root, TRAINING);
    const report = await auditDataset(root);
    assertReportContract(report, root);

    const reasonFor = { empty: 'empty', text: 'not-an-image', truncated: 'corrupt' } as const;
    const expected = planted
      .map((c) => ({ path: underTraining(c.path), reason: reasonFor[c.kind] }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    assert.deepEqual(
      report.unreadable.map(({ path: p, reason }) => ({ path: p, reason })).sort((a, b) => (a.path < b.path ? -1 : 1)),
      expected,
    );
    for (const entry of report.unreadable)
      assert.ok(typeof entry.detail === 'string' && entry.detail.length > 0, JSON.stringify(entry));

    const unreadable = findingOf(report, 'unreadable-images');
    assert.ok(unreadable, describeFindings(report));
    assert.equal(unreadable.severity, 'warning');
    assert.deepEqual(
      [...unreadable.paths].sort(),
      expected.map((e) => e.path),
    );
    assert.deepEqual(unreadable.evidence.byReason, { empty: 1, 'not-an-image': 1, corrupt: 1 });

    // The corrupt files are skipped; every real image is still audited.
    const training = trainingImages(manifest);
    assert.equal(report.images, training.length);
    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 2 }]);
    assert.deepEqual(
      report.spec.classes,
      countBy(training, (img) => img.label),
    );
    assert.deepEqual(
      report.spec.groups?.groups,
      countBy(training, (img) => `fold_${img.fold}`),
    );
    assert.equal(findingOf(report, 'structural-labels')?.severity, 'error');
    assert.ok(findingOf(report, 'nested-labels'), describeFindings(report));
    assert.equal(findingOf(report, 'subject-leakage'), undefined);
    assert.equal(findingOf(report, 'label-mismatch'), undefined);
  });
});

describe('audit of hand-made layouts (PNGs written with sharp)', () => {
  test('(f) a flat ALL/ HEM/ folder is a clean two-class dataset', async () => {
    const root = await freshDir();
    await writeCells(root, 'ALL', 'all', 24);
    await writeCells(root, 'HEM', 'hem', 24);
    const report = await auditDataset(root);
    assertReportContract(report, root);

    assert.equal(report.images, 48);
    assert.deepEqual(report.unreadable, []);
    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 1 }]);
    assert.deepEqual(report.spec.classes, [
      { name: 'ALL', count: 24 },
      { name: 'HEM', count: 24 },
    ]);
    assert.equal(report.spec.groups, null);
    assert.equal(report.spec.splits, null);
    assert.equal(report.spec.split.kind, 'subject-disjoint');
    for (const code of [
      'structural-labels',
      'nested-labels',
      'no-labels',
      'unreadable-images',
      'label-mismatch',
    ] as const) {
      assert.equal(findingOf(report, code), undefined, `unexpected ${code}:\n${describeFindings(report)}`);
    }
  });

  test('(g) numeric 0/ 1/ class folders are information only', async () => {
    const root = await freshDir();
    await writeCells(root, '0', 'hem', 24, 'img');
    await writeCells(root, '1', 'all', 24, 'img');
    const report = await auditDataset(root);
    assertReportContract(report, root);

    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 1 }]);
    assert.deepEqual(report.spec.classes, [
      { name: '0', count: 24 },
      { name: '1', count: 24 },
    ]);
    const numeric = findingOf(report, 'numeric-class-names');
    assert.ok(numeric, describeFindings(report));
    assert.equal(numeric.severity, 'info');
    assert.deepEqual(
      report.findings.filter((f) => f.severity !== 'info').map((f) => f.code),
      [],
      `numeric class folders should raise nothing above info:\n${describeFindings(report)}`,
    );
  });

  test('(h) train/val/test × all/hem: the splits are predefined, the labels one level deeper', async () => {
    const root = await freshDir();
    const perClass = { train: 20, val: 6, test: 6 } as const;
    for (const [split, n] of Object.entries(perClass)) {
      await writeCells(root, `${split}/all`, 'all', n);
      await writeCells(root, `${split}/hem`, 'hem', n);
    }
    const report = await auditDataset(root);
    assertReportContract(report, root);

    assert.equal(report.images, 64);
    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 2 }]);
    assert.deepEqual(report.spec.classes, [
      { name: 'all', count: 32 },
      { name: 'hem', count: 32 },
    ]);
    assert.deepEqual(report.spec.splits, {
      depth: 1,
      splits: [
        { name: 'test', count: 12, role: 'test' },
        { name: 'train', count: 40, role: 'train' },
        { name: 'val', count: 12, role: 'val' },
      ],
    });
    assert.equal(report.spec.groups, null);
    assert.deepEqual(report.spec.split, { kind: 'predefined', depth: 1 });
    assert.match(findingOf(report, 'structural-labels')?.message ?? '', /train\/validation\/test splits/);
    assert.deepEqual(findingOf(report, 'nested-labels')?.evidence.recommendedLabelSource, { kind: 'folder', depth: 2 });
  });
});
