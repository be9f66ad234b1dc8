// The label audit's rules on synthetic layouts (no files: the scan result is built in memory).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { auditScan, type AuditInputs, type AuditOptions, type AuditReport } from '../src/core/audit/audit.js';
import { detectCsvLabels, parseDelimited } from '../src/core/audit/csvLabels.js';
import type { ImageHashes } from '../src/core/audit/duplicates.js';
import type { FindingCode } from '../src/core/audit/findings.js';
import type { ImageEntry, ScanResult } from '../src/core/types.js';
import { assertSpecConsistent, consistencyChecksRun } from './helpers/auditConsistency.js';

/** The audit, with its findings checked against its spec (every layout of this suite). */
function audit(scan: ScanResult, inputs?: AuditInputs, options?: AuditOptions): AuditReport {
  const report = auditScan(scan, inputs, options);
  assertSpecConsistent(report, scan);
  return report;
}
after(() => console.log(`# spec/findings consistency checked on ${consistencyChecksRun()} layouts`));

function scanOf(paths: string[], size = (_: string) => [450, 450]): ScanResult {
  const images: ImageEntry[] = paths.map((path) => {
    const [width, height] = size(path);
    return { path, format: 'bmp', width, height, channels: 3, size: 1000 };
  });
  return { root: '/data', images, unreadable: [], otherFiles: [], ignored: 0 };
}

/** C-NMC's training_data: 3 folds × {all, hem}, subjects confined to one fold, ALL:HEM ≈ 2:1. */
function cnmcTrainingPaths(prefix = '', perSubject = 8): string[] {
  const paths: string[] = [];
  for (let fold = 0; fold < 3; fold++) {
    for (let s = 0; s < 4; s++) {
      const allSubject = fold * 10 + s + 1;
      const hemSubject = fold * 10 + s + 1;
      for (let i = 0; i < perSubject; i++) {
        paths.push(`${prefix}fold_${fold}/all/UID_${allSubject}_${i}_1_all.bmp`);
        if (i < perSubject / 2)
          paths.push(`${prefix}fold_${fold}/hem/UID_${s === 0 ? 'h' : 'H'}${hemSubject}_${i}_1_hem.bmp`);
      }
    }
  }
  return paths;
}

const codes = (report: AuditReport) => report.findings.map((f) => f.code);
const finding = (report: AuditReport, code: FindingCode) => report.findings.find((f) => f.code === code);

test('C-NMC training_data: fold folders are flagged and all/hem one level deeper is recommended', () => {
  const report = audit(scanOf(cnmcTrainingPaths()));
  const structural = finding(report, 'structural-labels');
  assert.ok(structural, `expected structural-labels, got ${codes(report)}`);
  assert.equal(structural.severity, 'error');
  assert.match(structural.message, /fold_0, fold_1 and fold_2/);
  assert.match(structural.message, /cross-validation folds/);
  assert.match(structural.message, /all 96, hem 48/);
  assert.deepEqual(structural.evidence.repeatedSubfolders, ['all', 'hem']);
  assert.equal(structural.evidence.nearEqualSizes, true);
  const independence = structural.evidence.independence as { pValue: number; cramersV: number };
  assert.ok(independence.pValue > 0.9 && independence.cramersV < 0.05, JSON.stringify(independence));

  const nested = finding(report, 'nested-labels');
  assert.ok(nested);
  assert.deepEqual(nested.evidence.recommendedLabelSource, { kind: 'folder', depth: 2 });
  assert.deepEqual(report.spec.labelSources[0], { kind: 'folder', depth: 2 });
  assert.deepEqual(report.spec.classes, [
    { name: 'all', count: 96 },
    { name: 'hem', count: 48 },
  ]);
  assert.deepEqual(
    report.spec.groups?.groups.map((g) => g.name),
    ['fold_0', 'fold_1', 'fold_2'],
  );
  assert.deepEqual(report.spec.split, { kind: 'folds', depth: 1, validationGroup: 'fold_2' });
  assert.equal(finding(report, 'filename-labels')?.severity, 'info');
  assert.equal(finding(report, 'label-mismatch'), undefined);
  assert.equal(finding(report, 'subject-leakage'), undefined);
  assert.equal(finding(report, 'class-imbalance')?.severity, 'info');
  // Lower-case h3 and upper-case H3 are the same healthy subject.
  assert.equal(report.spec.subjects.count, 24);
});

test('a clean ALL/HEM layout produces no structural-labels', () => {
  const paths: string[] = [];
  for (let i = 0; i < 40; i++) paths.push(`ALL/cell_${i}.png`, `HEM/cell_${i}.png`);
  const report = audit(scanOf(paths));
  assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 1 }]);
  assert.ok(!codes(report).includes('structural-labels'), codes(report).join());
  assert.ok(!codes(report).includes('nested-labels'));
  assert.deepEqual(
    report.spec.classes.map((c) => c.name),
    ['ALL', 'HEM'],
  );
  assert.equal(report.spec.split.kind, 'subject-disjoint');
  assert.deepEqual(report.findings, []);
});

test('train/val/test folders become splits, not classes', () => {
  const paths: string[] = [];
  for (const split of ['train', 'val', 'test'])
    for (let i = 0; i < 30; i++) paths.push(`${split}/all/a${i}.jpg`, `${split}/hem/h${i}.jpg`);
  const report = audit(scanOf(paths));
  const structural = finding(report, 'structural-labels');
  assert.ok(structural);
  assert.match(structural.message, /train\/validation\/test splits/);
  assert.deepEqual(report.spec.labelSources[0], { kind: 'folder', depth: 2 });
  assert.deepEqual(
    report.spec.splits?.splits.map((s) => [s.name, s.role]),
    [
      ['test', 'test'],
      ['train', 'train'],
      ['val', 'val'],
    ],
  );
  assert.deepEqual(report.spec.split, { kind: 'predefined', depth: 1 });
});

test('numeric class folders are information, not an alarm', () => {
  const paths: string[] = [];
  for (let i = 0; i < 30; i++) paths.push(`0/img_${i}.png`, `1/img_${i}.png`);
  const report = audit(scanOf(paths));
  assert.deepEqual(report.spec.labelSources[0], { kind: 'folder', depth: 1 });
  assert.equal(finding(report, 'numeric-class-names')?.severity, 'info');
  assert.ok(!codes(report).includes('structural-labels'));
});

test('numeric folders that wrap the same class folders are structural', () => {
  const paths: string[] = [];
  for (const fold of ['0', '1', '2'])
    for (let i = 0; i < 20; i++) paths.push(`${fold}/ALL/x${i}.png`, `${fold}/HEM/y${i}.png`);
  const report = audit(scanOf(paths));
  assert.equal(finding(report, 'structural-labels')?.severity, 'error');
  assert.deepEqual(report.spec.labelSources[0], { kind: 'folder', depth: 2 });
});

test('structural names of every kind are recognised', () => {
  for (const names of [
    ['fold1', 'fold2'],
    ['split2', 'split3'],
    ['batch_3', 'batch_4'],
    ['part-1', 'part-2'],
    ['cv4', 'cv5'],
    ['shard00', 'shard01'],
    ['2019-04-01', '2019-05-02'],
    ['site_A', 'site_B'],
  ]) {
    const paths: string[] = [];
    for (const name of names) for (let i = 0; i < 20; i++) paths.push(`${name}/a_${i}.png`);
    const report = audit(scanOf(paths));
    const structural = finding(report, 'structural-labels');
    assert.ok(structural, `${names} not flagged`);
    assert.ok(codes(report).includes('no-labels'), `${names}: expected no-labels`);
  }
});

test('file-name class tokens are used when the folders are only folds', () => {
  const paths = cnmcTrainingPaths().map((p) => p.replace(/\/(all|hem)\//, '/'));
  const report = audit(scanOf(paths));
  assert.equal(finding(report, 'structural-labels')?.severity, 'error');
  assert.equal(report.spec.labelSources[0].kind, 'filename');
  assert.equal(finding(report, 'filename-labels')?.severity, 'warning');
  assert.deepEqual(report.spec.classes, [
    { name: 'all', count: 96 },
    { name: 'hem', count: 48 },
  ]);
});

test('a file in the wrong class folder is a label mismatch', () => {
  const paths = cnmcTrainingPaths();
  paths.push('fold_1/all/UID_H99_1_1_hem.bmp');
  const report = audit(scanOf(paths));
  const mismatch = finding(report, 'label-mismatch');
  assert.ok(mismatch);
  assert.deepEqual(mismatch.paths, ['fold_1/all/UID_H99_1_1_hem.bmp']);
});

test('a subject in two folds is leakage, and the split becomes subject-disjoint', () => {
  const paths = cnmcTrainingPaths();
  paths.push('fold_2/all/UID_1_99_1_all.bmp'); // subject 1 lives in fold_0
  const report = audit(scanOf(paths));
  const leakage = finding(report, 'subject-leakage');
  assert.ok(leakage);
  assert.equal(leakage.severity, 'error');
  assert.deepEqual(leakage.evidence.subjects, [{ subject: '1', across: 'fold', where: { fold_0: 8, fold_2: 1 } }]);
  assert.equal(report.spec.split.kind, 'subject-disjoint');
});

test('a custom subject pattern is honoured', () => {
  const paths: string[] = [];
  for (const fold of ['fold_0', 'fold_1'])
    for (let i = 0; i < 20; i++)
      paths.push(`${fold}/ALL/patient${fold === 'fold_0' ? 1 : 2}-${i}.png`, `${fold}/HEM/patient3-${i}.png`);
  const report = audit(scanOf(paths), {}, { subjectPattern: '^patient(\\d+)-' });
  assert.equal(report.spec.subjects.count, 3);
  const leakage = finding(report, 'subject-leakage');
  assert.deepEqual(
    (leakage?.evidence.subjects as { subject: string }[]).map((s) => s.subject),
    ['3'],
  );
});

test('C-NMC root: splits at depth 1, folds at depth 2, labels at depth 3, validation labels from the CSV', () => {
  const paths = cnmcTrainingPaths('training_data/');
  const csvRows = ['Patient_ID,new_names,labels'];
  for (let i = 1; i <= 30; i++) {
    const isAll = i % 3 !== 0;
    paths.push(`validation_data/C-NMC_test_prelim_phase_data/${i}.bmp`);
    csvRows.push(
      `UID_${isAll ? 50 + (i % 4) : 'H' + (60 + (i % 3))}_${i}_1_${isAll ? 'all' : 'hem'}.bmp,${i}.bmp,${isAll ? 1 : 0}`,
    );
  }
  for (let i = 1; i <= 10; i++) paths.push(`testing_data/C-NMC_test_final_phase_data/${i}.bmp`);
  const scan = scanOf(paths);
  scan.otherFiles = ['validation_data/C-NMC_test_prelim_phase_data_labels.csv'];
  const table = detectCsvLabels(scan.otherFiles[0], parseDelimited(csvRows.join('\r\n') + '\r\n'), scan.images);
  assert.ok(table);
  assert.equal(table.fileColumn, 'new_names');
  assert.equal(table.labelColumn, 'labels');
  assert.equal(table.labelByPath.size, 30, 'rows match the validation folder, not the test folder with the same names');
  const report = audit(scan, { csvTables: [table] });
  assert.deepEqual(report.spec.labelSources[0], { kind: 'folder', depth: 3 });
  assert.deepEqual(report.spec.labelSources[1], {
    kind: 'csv',
    file: 'validation_data/C-NMC_test_prelim_phase_data_labels.csv',
    fileColumn: 'new_names',
    labelColumn: 'labels',
    valueToClass: { '1': 'all', '0': 'hem' },
  });
  assert.deepEqual(report.spec.classes, [
    { name: 'all', count: 96 + 20 },
    { name: 'hem', count: 48 + 10 },
  ]);
  assert.equal(report.spec.unlabelled, 10);
  assert.equal(report.spec.splits?.depth, 1);
  assert.equal(report.spec.groups?.depth, 2);
  assert.ok(finding(report, 'structural-labels'));
  assert.ok(!codes(report).includes('label-mismatch'));
  // Validation subjects come from the Patient_ID column.
  assert.equal(report.spec.subjects.count, 24 + 5);
});

test('duplicates: identical pixels across folds and classes, near-duplicates across folds', () => {
  const paths = cnmcTrainingPaths();
  const hashes = new Map<string, ImageHashes>();
  paths.forEach((p, i) =>
    hashes.set(p, {
      pixel: `p${i}`,
      perceptual: ((BigInt(i) * 0x9e3779b97f4a7c15n) % (1n << 64n)).toString(16).padStart(16, '0'),
    }),
  );
  hashes.set('fold_2/hem/UID_h21_0_1_hem.bmp', { ...hashes.get('fold_0/all/UID_1_0_1_all.bmp')! });
  const near = hashes.get('fold_0/all/UID_1_1_1_all.bmp')!;
  const flipped = (BigInt('0x' + near.perceptual) ^ 0b101n).toString(16).padStart(16, '0');
  hashes.set('fold_1/all/UID_11_1_1_all.bmp', { pixel: 'other', perceptual: flipped });
  const report = audit(scanOf(paths), { hashes });
  const duplicates = report.findings.filter((f) => f.code === 'duplicate-images');
  assert.equal(duplicates.length, 2);
  const exact = duplicates.find((f) => f.evidence.kind === 'exact')!;
  assert.equal(exact.severity, 'error');
  assert.deepEqual((exact.evidence.sets as { crosses: string[] }[])[0].crosses, ['class', 'fold']);
  const nearFinding = duplicates.find((f) => f.evidence.kind === 'near')!;
  assert.deepEqual((nearFinding.evidence.sets as { paths: string[]; distance: number }[])[0], {
    paths: ['fold_0/all/UID_1_1_1_all.bmp', 'fold_1/all/UID_11_1_1_all.bmp'],
    distance: 2,
    crosses: ['fold'],
  });
});

test('imbalance, too few images, mixed sizes and unreadable files', () => {
  const paths: string[] = [];
  for (let i = 0; i < 80; i++) paths.push(`ALL/a${i}.bmp`);
  for (let i = 0; i < 10; i++) paths.push(`HEM/h${i}.bmp`);
  const scan = scanOf(paths, (p) => (p.startsWith('HEM') ? [300, 200] : [450, 450]));
  scan.unreadable = [{ path: 'ALL/broken.bmp', reason: 'corrupt', detail: 'truncated' }];
  const report = audit(scan);
  assert.equal(finding(report, 'class-imbalance')?.severity, 'warning');
  assert.match(finding(report, 'too-few-images')!.message, /HEM \(10\)/);
  assert.equal(finding(report, 'mixed-image-sizes')?.severity, 'warning');
  assert.deepEqual(finding(report, 'unreadable-images')?.paths, ['ALL/broken.bmp']);
});

test('parseDelimited: Excel sep= line, quoted fields after spaces, pipes, a BOM; quoted delimiters do not fool the guess', () => {
  assert.deepEqual(parseDelimited('sep=;\r\nfile;label\r\na.png;1\r\n'), {
    delimiter: ';',
    header: ['file', 'label'],
    rows: [['a.png', '1']],
  });
  assert.deepEqual(parseDelimited('\ufefffile| label\n a.png | "x|y"\n').rows, [['a.png', 'x|y']]);
  const quoted = parseDelimited('"name; with semicolons",label\n"a;b.png","line one\nline two"\n');
  assert.equal(quoted.delimiter, ',');
  assert.deepEqual(quoted.rows, [['a;b.png', 'line one\nline two']]);
});

test('detectCsvLabels: paths relative to the root or the table, stems, unique suffixes; ambiguous rows kept out', () => {
  const images = scanOf([
    'site1/p07/smear2/img3.tif',
    'site1/p08/smear2/img3.tif',
    'site1/p08/smear2/img4.tif',
    'site1/pictures/IMG_0042.png',
  ]).images;
  const table = detectCsvLabels(
    'site1/labels.csv',
    parseDelimited(
      [
        'file,label',
        'p07/smear2/img3.tif,ALL', // relative to the table
        'site1/p08/smear2/img3.tif,HEM', // relative to the root
        'IMG_0042,HEM', // stem
        '/home/me/data/site1/p08/smear2/img4.tif,ALL', // absolute, matched by its unique tail
        'smear2/img3.tif,ALL', // two images end so: ambiguous
        'missing.png,ALL',
      ].join('\n'),
    ),
    images,
  );
  assert.ok(table);
  assert.deepEqual(Object.fromEntries(table.labelByPath), {
    'site1/p07/smear2/img3.tif': 'ALL',
    'site1/p08/smear2/img3.tif': 'HEM',
    'site1/pictures/IMG_0042.png': 'HEM',
    'site1/p08/smear2/img4.tif': 'ALL',
  });
  assert.equal(table.ambiguousCount, 1);
  assert.deepEqual(table.ambiguousRows[0], {
    row: 5,
    value: 'smear2/img3.tif',
    candidates: ['site1/p07/smear2/img3.tif', 'site1/p08/smear2/img3.tif'],
  });
  assert.equal(table.unmatchedRows, 1);
});
