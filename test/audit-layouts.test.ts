// The audit on layouts real users bring, none of them the demo's: label tables that name images by relative
// path, by stem, from a parent folder, per patient folder, in Excel's and Europe's CSV dialects; deep trees with
// three or more classes and mixed formats; file names full of counters and letters that are not classes; and
// sites that are confounded with the diagnosis. Every layout is written as real image files (BMP, PNG, JPEG,
// TIFF) and audited from disk; each expectation comes from the layout the test wrote.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import type { AuditReport } from '../src/core/audit/audit.js';
import type { Finding, FindingCode } from '../src/core/audit/findings.js';
import { scanAndAudit } from '../src/core/audit/runAudit.js';
import { randomStainTint, renderCell, type DemoLabel } from '../src/core/demo/generate.js';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { createRng } from '../src/core/random.js';
import { labelsAreStructural, resolveLabels } from '../src/core/train/labelChoice.js';
import { assertSpecConsistent, consistencyChecksRun } from './helpers/auditConsistency.js';

const SIZE = 24;
const tempDirs: string[] = [];
/** One line per layout, printed at the end: the table for the issue note. */
const verdicts: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  console.log(`# layout verdicts:\n${verdicts.map((v) => `#   ${v}`).join('\n')}`);
  console.log(`# spec/findings consistency checked on ${consistencyChecksRun()} layouts`);
});

/**
 * The structural-labels finding is about the top-level folders; with the labels in a table or the file names,
 * `--labels auto` trains on those (not structural, no refusal) while folder:1 stays structural.
 */
function assertAutoTakes(report: AuditReport, kind: 'csv' | 'filename'): void {
  const resolved = resolveLabels('auto', report, []);
  assert.equal(resolved.sources[0]?.kind, kind);
  assert.deepEqual(resolved, { sources: report.spec.labelSources, structural: false });
  assert.equal(labelsAreStructural('auto', report), false, 'the extension does not ask before training on auto');
  assert.equal(labelsAreStructural('folder:1', report), true, 'the top-level folders stay structural');
}

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-layouts-'));
  tempDirs.push(dir);
  return dir;
}

/** A distinct cell image in the format its extension names. */
async function writeImage(root: string, relative: string, label: DemoLabel = 'all'): Promise<void> {
  const rng = createRng(11).fork(relative);
  const image = renderCell(rng.fork('cell'), label, SIZE, randomStainTint(rng.fork('tint')));
  const file = path.join(root, ...relative.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  const ext = path.extname(relative).toLowerCase();
  if (ext === '.bmp') return writeFile(file, encodeBmp24(image));
  const raw = sharp(Buffer.from(image.data), { raw: { width: image.width, height: image.height, channels: 3 } });
  const encoded =
    ext === '.png'
      ? raw.png()
      : ext === '.tif' || ext === '.tiff'
        ? raw.tiff()
        : ext === '.webp'
          ? raw.webp()
          : raw.jpeg();
  await writeFile(file, await encoded.toBuffer());
}

async function writeImages(root: string, files: { path: string; label?: DemoLabel }[]): Promise<void> {
  for (let i = 0; i < files.length; i += 16)
    await Promise.all(files.slice(i, i + 16).map((f) => writeImage(root, f.path, f.label)));
}

async function writeText(root: string, relative: string, text: string): Promise<void> {
  const file = path.join(root, ...relative.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

async function audit(root: string, layout: string): Promise<AuditReport> {
  const { report, scan } = await scanAndAudit(root, { checkPixels: false });
  assertSpecConsistent(report, scan);
  const sources = report.spec.labelSources
    .map((s) =>
      s.kind === 'folder' ? `folder:${s.depth}` : s.kind === 'csv' ? `csv:${s.file}[${s.labelColumn}]` : 'filename',
    )
    .join(' + ');
  const notable = report.findings.filter((f) => f.severity !== 'info').map((f) => `${f.code}(${f.severity})`);
  verdicts.push(
    `${layout} | ${report.images} images | labels ${sources || 'none'} | ${report.spec.classes.map((c) => `${c.name} ${c.count}`).join(', ')} | unlabelled ${report.spec.unlabelled} | ${notable.join(', ') || 'no warnings'}`,
  );
  return report;
}

const describeFindings = (report: AuditReport): string =>
  report.findings.map((f) => `${f.code} (${f.severity}): ${f.message}`).join('\n');
const findingsOf = (report: AuditReport, code: FindingCode): Finding[] =>
  report.findings.filter((f) => f.code === code);
function assertAbsent(report: AuditReport, ...codes: FindingCode[]): void {
  for (const code of codes)
    assert.equal(findingsOf(report, code).length, 0, `unexpected ${code}:\n${describeFindings(report)}`);
}
const csvSource = (file: string, fileColumn: string, labelColumn: string, valueToClass: Record<string, string>) => ({
  kind: 'csv' as const,
  file,
  fileColumn,
  labelColumn,
  valueToClass,
});
const classesOf = (labels: string[]) => {
  const counts = new Map<string, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([name, count]) => ({ name, count })).sort((a, b) => (a.name < b.name ? -1 : 1));
};

describe('label tables that name images in other ways', () => {
  test('relative paths with folders, from the table folder, in a ;-separated CSV with a BOM', async () => {
    const root = await freshDir();
    // Every donor has smear_1 and smear_2 with the same cell names: only the path tells them apart.
    const rows = ['\ufeffimage_path;diagnosis;stain_batch'];
    const files: { path: string; label: DemoLabel }[] = [];
    const labels: string[] = [];
    for (let d = 1; d <= 10; d++) {
      const diagnosis = d <= 6 ? 'B-ALL' : 'reactive';
      for (const smear of ['smear_1', 'smear_2'])
        for (let c = 1; c <= 3; c++) {
          const rel = `D${String(d).padStart(2, '0')}/${smear}/cell${c}.tif`;
          files.push({ path: `slides/${rel}`, label: d <= 6 ? 'all' : 'hem' });
          rows.push(`${rel};${diagnosis};${d % 2 ? 'S1' : 'S2'}`);
          labels.push(diagnosis);
        }
    }
    await writeImages(root, files);
    await writeText(root, 'slides/labels.csv', rows.join('\n') + '\n');
    const report = await audit(root, 'donor/smear/cell.tif + slides/labels.csv (;, BOM, paths from table folder)');
    assert.deepEqual(report.spec.labelSources, [
      csvSource('slides/labels.csv', 'image_path', 'diagnosis', { 'B-ALL': 'B-ALL', reactive: 'reactive' }),
    ]);
    assert.deepEqual(report.spec.classes, classesOf(labels));
    assert.equal(report.spec.unlabelled, 0);
    // smear_1/smear_2 are acquisitions, not classes; the donor folders are patients. The one folder around
    // everything is no trap when the labels come from a table.
    assertAbsent(
      report,
      'no-labels',
      'structural-labels',
      'label-mismatch',
      'label-table',
      'nested-labels',
      'confounded-groups',
    );
    // Training with --labels auto takes the table.
    assert.deepEqual(resolveLabels('auto', report, []).sources, report.spec.labelSources);
    // The donors are the subjects, so a subject-disjoint split keeps each donor's smears on one side.
    assert.equal(report.spec.subjectFolderDepth, 2);
    assert.deepEqual(report.spec.subjects, { count: 10, imagesWithSubject: 60 });
  });

  test('ids without extension, a TSV in the parent folder, three numeric classes under a differently named column', async () => {
    const root = await freshDir();
    const rows = ['id\tcell_class\tnotes'];
    const labels: string[] = [];
    const files: { path: string }[] = [];
    for (let i = 1; i <= 45; i++) {
      const id = `IMG_${String(i).padStart(4, '0')}`;
      const ext = ['png', 'jpg', 'bmp'][i % 3];
      files.push({ path: `export/run_a/pictures/${id}.${ext}` });
      rows.push(`${id}\t${i % 3}\tok`);
      labels.push(String(i % 3));
    }
    await writeImages(root, files);
    await writeText(root, 'export/groundtruth.tsv', rows.join('\n'));
    const report = await audit(
      root,
      'export/run_a/pictures/IMG_0042.{png,jpg,bmp} + export/groundtruth.tsv (ids w/o extension, 3 numeric classes)',
    );
    assert.equal(report.spec.labelSources.length, 1);
    assert.deepEqual(
      report.spec.labelSources[0],
      csvSource('export/groundtruth.tsv', 'id', 'cell_class', { '0': '0', '1': '1', '2': '2' }),
    );
    assert.deepEqual(report.spec.classes, classesOf(labels));
    assertAbsent(report, 'no-labels', 'label-table', 'label-mismatch');
  });

  test('an Excel-exported CSV: quoted fields with commas, quotes and newlines, CRLF, paths from the dataset root', async () => {
    const root = await freshDir();
    const lines = ['"File name","Comment","Final diagnosis"'];
    const labels: string[] = [];
    const files: { path: string }[] = [];
    for (let i = 0; i < 40; i++) {
      const name = `images/batch ${1 + (i % 3)}/smear, field ${i}.jpg`;
      const diagnosis = i % 4 === 0 ? 'CLL' : i % 4 === 1 ? 'AML' : 'ALL';
      files.push({ path: name });
      const comment = i % 5 === 0 ? `"checked by ""JM"",\r\nsecond line"` : `"ok, fine"`;
      lines.push(`"${name}",${comment},${diagnosis}`);
      labels.push(diagnosis);
    }
    await writeImages(root, files);
    await writeText(root, 'Book1.csv', lines.join('\r\n') + '\r\n');
    const report = await audit(
      root,
      'images/batch N/"smear, field N.jpg" + Book1.csv (Excel quoting, CRLF, 3 classes)',
    );
    assert.equal(report.spec.labelSources[0]?.kind, 'csv', describeFindings(report));
    assert.equal((report.spec.labelSources[0] as { labelColumn: string }).labelColumn, 'Final diagnosis');
    assert.deepEqual(report.spec.classes, classesOf(labels));
    assert.equal(report.spec.unlabelled, 0);
    assertAbsent(report, 'no-labels', 'label-table', 'label-mismatch', 'confounded-groups');
  });

  test('one folder per patient with a per-patient table beside it', async () => {
    const root = await freshDir();
    const rows = ['patient,leukaemia_status,hospital'];
    const labels: string[] = [];
    const files: { path: string }[] = [];
    for (let p = 1; p <= 12; p++) {
      const status = p % 3 === 0 ? 'healthy' : 'ALL';
      rows.push(`P${p},${status},${p % 2 ? 'north' : 'south'}`);
      for (let i = 0; i < 5; i++) {
        files.push({ path: `P${p}/${i}.bmp` });
        labels.push(status);
      }
    }
    await writeImages(root, files);
    await writeText(root, 'patients.csv', rows.join('\n'));
    const report = await audit(root, 'P1..P12/N.bmp + patients.csv keyed by patient folder');
    assert.deepEqual(report.spec.labelSources, [
      csvSource('patients.csv', 'patient', 'leukaemia_status', { ALL: 'ALL', healthy: 'healthy' }),
    ]);
    assert.deepEqual(report.spec.classes, classesOf(labels));
    // The patient folders are not classes: ImageFolder on them learns the patient, and the audit says so.
    const [structural] = findingsOf(report, 'structural-labels');
    assert.ok(structural, describeFindings(report));
    assert.match(structural.message, /patients\/subjects/);
    assert.match(structural.message, /leukaemia_status of patients\.csv/);
    assert.equal(report.spec.subjectFolderDepth, 1);
    assert.deepEqual(report.spec.subjects, { count: 12, imagesWithSubject: 60 });
    assertAbsent(report, 'no-labels', 'label-table');
    assertAutoTakes(report, 'csv');
  });

  test('patient ids in flat file names, labelled per patient by a UTF-16 tab-separated text file (Excel "Unicode Text")', async () => {
    const root = await freshDir();
    const rows = ['Patient\tDiagnosis'];
    const files: { path: string }[] = [];
    const labels: string[] = [];
    for (let p = 1; p <= 8; p++) {
      const diagnosis = p <= 5 ? 'leukemia' : 'control';
      rows.push(`P${String(p).padStart(2, '0')}\t${diagnosis}`);
      for (let i = 0; i < 6; i++) {
        files.push({ path: `images/P${String(p).padStart(2, '0')}_${String(i).padStart(3, '0')}.jpg` });
        labels.push(diagnosis);
      }
    }
    await writeImages(root, files);
    const text = rows.join('\r\n') + '\r\n';
    await writeFile(
      path.join(root, 'patients.txt'),
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]),
    );
    const report = await audit(
      root,
      'images/P07_003.jpg + patients.txt (UTF-16 TSV keyed by the id in the file names)',
    );
    assert.deepEqual(report.spec.labelSources, [
      csvSource('patients.txt', 'Patient', 'Diagnosis', { leukemia: 'leukemia', control: 'control' }),
    ]);
    assert.deepEqual(report.spec.classes, classesOf(labels));
    // The table's key is the patient: a subject-disjoint split keeps each patient's cells together.
    assert.deepEqual(report.spec.subjects, { count: 8, imagesWithSubject: 48 });
    assertAbsent(report, 'no-labels', 'label-table', 'label-mismatch');
  });

  test('one small table inside each patient folder, each with a single diagnosis', async () => {
    const root = await freshDir();
    const files: { path: string }[] = [];
    for (let p = 1; p <= 8; p++) {
      const diagnosis = p <= 5 ? 'ALL' : 'HEM';
      const names = Array.from({ length: 5 }, (_, i) => `cell-${i}.png`);
      for (const name of names) files.push({ path: `cohort/pt${p}/${name}` });
      await writeText(
        root,
        `cohort/pt${p}/annotation.csv`,
        'image,diagnosis\n' + names.map((n) => `${n},${diagnosis}`).join('\n'),
      );
    }
    await writeImages(root, files);
    const report = await audit(root, 'cohort/ptN/cell-i.png + cohort/ptN/annotation.csv (one table per patient)');
    assert.equal(report.spec.labelSources.length, 8);
    assert.ok(report.spec.labelSources.every((s) => s.kind === 'csv' && s.labelColumn === 'diagnosis'));
    assert.deepEqual(report.spec.classes, [
      { name: 'ALL', count: 25 },
      { name: 'HEM', count: 15 },
    ]);
    assert.equal(report.spec.unlabelled, 0);
    assert.equal(report.spec.subjects.count, 8);
    assertAbsent(report, 'no-labels', 'label-table', 'label-mismatch');
  });

  test('rows that fit two images are reported, not guessed; absolute Windows paths match by their tail', async () => {
    const root = await freshDir();
    const rows = ['file,label'];
    const files: { path: string }[] = [];
    for (const patient of ['patient_A', 'patient_B'])
      for (let i = 0; i < 15; i++) files.push({ path: `${patient}/img${i}.png` });
    await writeImages(root, files);
    // img0..img4: bare names shared by both patients. The rest: absolute paths from the author's machine.
    for (let i = 0; i < 5; i++) rows.push(`img${i}.png,ALL`);
    for (const patient of ['patient_A', 'patient_B'])
      for (let i = 5; i < 15; i++)
        rows.push(`C:\\Users\\lab\\Desktop\\study\\${patient}\\img${i}.png,${patient === 'patient_A' ? 'ALL' : 'HEM'}`);
    await writeText(root, 'labels.csv', rows.join('\n'));
    const report = await audit(
      root,
      'patient_A|patient_B/imgN.png + labels.csv (bare names shared by 2 folders, absolute Windows paths)',
    );
    assert.deepEqual(report.spec.classes, [
      { name: 'ALL', count: 10 },
      { name: 'HEM', count: 10 },
    ]);
    assert.equal(report.spec.unlabelled, 10);
    const [table] = findingsOf(report, 'label-table');
    assert.ok(table, describeFindings(report));
    assert.equal(table.evidence.ambiguousCount, 5);
    assert.deepEqual((table.evidence.ambiguousRows as { candidates: string[] }[])[0].candidates, [
      'patient_A/img0.png',
      'patient_B/img0.png',
    ]);
    assertAbsent(report, 'no-labels');
  });
});

describe('folder layouts', () => {
  test('a deep tree with three classes under site and stain folders, mixed formats', async () => {
    const root = await freshDir();
    const files: { path: string }[] = [];
    const labels: string[] = [];
    for (const site of ['center_north', 'center_south'])
      for (const stain of ['mgg', 'wright'])
        for (const cls of ['ALL', 'AML', 'normal'])
          for (let i = 0; i < 8; i++) {
            files.push({
              path: `archive/${site}/${stain}/${cls}/${cls.toLowerCase()}-${site}-${i}.${i % 2 ? 'png' : 'jpeg'}`,
            });
            labels.push(cls);
          }
    await writeImages(root, files);
    const report = await audit(root, 'archive/center_X/stain/{ALL,AML,normal}/… (depth 4, 3 classes, png+jpeg)');
    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 4 }]);
    assert.deepEqual(report.spec.classes, classesOf(labels));
    assert.ok(findingsOf(report, 'nested-labels').length === 1, describeFindings(report));
    assertAbsent(report, 'no-labels', 'label-mismatch', 'confounded-groups');
  });

  test('counters, ordinals and lone letters in file names are not classes', async () => {
    const root = await freshDir();
    const files: { path: string }[] = [];
    for (const cls of ['blast', 'lymphocyte'])
      for (let i = 1; i <= 24; i++) {
        const name = [
          `cell no ${i}.png`,
          `smear n°${i}.png`,
          `scan_site_${'ABC'[i % 3]}_${i}.png`,
          `x${i % 2 ? 40 : 100} #${i}.png`,
        ][i % 4];
        files.push({ path: `${cls}/${name}` });
      }
    await writeImages(root, files);
    const report = await audit(root, '{blast,lymphocyte}/"cell no 3", "n°3", scan_site_B_17, "x40 #3"');
    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 1 }]);
    assertAbsent(report, 'label-mismatch', 'filename-labels', 'structural-labels', 'no-labels');
    assert.deepEqual(
      report.findings.filter((f) => f.severity !== 'info').map((f) => f.code),
      [],
      describeFindings(report),
    );
  });

  test('file-name tokens independent of the folder classes are not labels', async () => {
    const root = await freshDir();
    const files: { path: string }[] = [];
    // The scanner model is in every name, shuffled across classes: a naming habit, not a diagnosis.
    for (const cls of ['ALL', 'HEM'])
      for (let i = 0; i < 30; i++) files.push({ path: `${cls}/${['olympus', 'zeiss', 'leica'][i % 3]}_${i}.png` });
    await writeImages(root, files);
    const report = await audit(root, '{ALL,HEM}/{olympus,zeiss,leica}_N.png (scanner token independent of class)');
    assert.deepEqual(report.spec.labelSources, [{ kind: 'folder', depth: 1 }]);
    assertAbsent(report, 'label-mismatch', 'filename-labels');
  });

  test('numbered patient folders at the root with the classes in the file names', async () => {
    const root = await freshDir();
    const files: { path: string; label: DemoLabel }[] = [];
    for (let p = 1; p <= 10; p++)
      for (let i = 0; i < 6; i++)
        files.push({ path: `case${p}/case${p}_${i}_${p <= 6 ? 'blast' : 'normal'}.png`, label: 'all' });
    await writeImages(root, files);
    const report = await audit(root, 'case1..case10/caseN_i_{blast,normal}.png (patients, labels in names)');
    assert.equal(report.spec.labelSources[0]?.kind, 'filename', describeFindings(report));
    assert.deepEqual(report.spec.classes, [
      { name: 'blast', count: 36 },
      { name: 'normal', count: 24 },
    ]);
    assert.match(findingsOf(report, 'structural-labels')[0]?.message ?? '', /patients\/subjects/);
    assertAbsent(report, 'no-labels', 'label-mismatch');
    assertAutoTakes(report, 'filename');
  });
});

describe('more layouts users bring', () => {
  test('a binary code at the end of flat file names (ALL-IDB style Im012_1.tif)', async () => {
    const root = await freshDir();
    const files: { path: string; label: DemoLabel }[] = [];
    for (let i = 1; i <= 60; i++)
      files.push({
        path: `idb/img/Im${String(i).padStart(3, '0')}_${i <= 25 ? 1 : 0}.tif`,
        label: i <= 25 ? 'all' : 'hem',
      });
    await writeImages(root, files);
    const report = await audit(root, 'idb/img/ImNNN_{0,1}.tif (binary code in the name)');
    assert.deepEqual(report.spec.labelSources, [
      { kind: 'filename', tokenIndex: -1, valueToClass: { '0': '0', '1': '1' } },
    ]);
    assert.deepEqual(report.spec.classes, [
      { name: '0', count: 35 },
      { name: '1', count: 25 },
    ]);
    assertAbsent(report, 'no-labels', 'label-mismatch');
  });

  test('a headerless space-separated list (imgs/c1.png 0) and a spreadsheet beside it', async () => {
    const root = await freshDir();
    const files = Array.from({ length: 40 }, (_, i) => ({ path: `imgs/c${i}.bmp` }));
    await writeImages(root, files);
    await writeText(root, 'train_list.txt', files.map((f, i) => `${f.path} ${i % 4 === 0 ? 1 : 0}`).join('\n') + '\n');
    await writeText(root, 'notes.xlsx', 'PK');
    const report = await audit(root, 'imgs/cN.bmp + train_list.txt (headerless, spaces) + notes.xlsx');
    assert.deepEqual(report.spec.labelSources, [
      csvSource('train_list.txt', 'column 1', 'column 2', { '0': '0', '1': '1' }),
    ]);
    assert.deepEqual(report.spec.classes, [
      { name: '0', count: 30 },
      { name: '1', count: 10 },
    ]);
    const sheet = findingsOf(report, 'label-table').find((f) => f.paths.includes('notes.xlsx'));
    assert.equal(sheet?.severity, 'info', describeFindings(report));
  });

  test('class folders spelled ALL in one fold and all in another are one class', async () => {
    const root = await freshDir();
    const files: { path: string }[] = [];
    for (let f = 0; f < 3; f++)
      for (const cls of f === 1 ? ['all', 'hem'] : ['ALL', 'hem'])
        for (let i = 0; i < 10; i++) files.push({ path: `fold${f}/${cls}/x${i}.png` });
    await writeImages(root, files);
    const report = await audit(root, 'fold{0,1,2}/{ALL|all,hem} (case differs between folds)');
    assert.deepEqual(report.spec.labelSources, [
      { kind: 'folder', depth: 2, valueToClass: { ALL: 'ALL', all: 'ALL', hem: 'hem' } },
    ]);
    assert.deepEqual(report.spec.classes, [
      { name: 'ALL', count: 30 },
      { name: 'hem', count: 30 },
    ]);
    assertAbsent(report, 'confounded-groups', 'no-labels');
  });

  test('a train table and a test table with their own spelling of the classes', async () => {
    const root = await freshDir();
    const train = Array.from({ length: 30 }, (_, i) => ({ path: `train/t${i}.png` }));
    const testImages = Array.from({ length: 20 }, (_, i) => ({ path: `test/s${i}.jpg` }));
    await writeImages(root, [...train, ...testImages]);
    await writeText(
      root,
      'train_labels.csv',
      'file,label\n' + train.map((f, i) => `t${i}.png,${i % 2 ? 'ALL' : 'HEM'}`).join('\n'),
    );
    await writeText(
      root,
      'test/test_labels.csv',
      'image;Label\n' + testImages.map((f, i) => `s${i};${i % 2 ? 'all' : 'hem'}`).join('\n'),
    );
    const report = await audit(root, 'train/ + test/ with train_labels.csv and test/test_labels.csv (ALL vs all)');
    assert.deepEqual(report.spec.labelSources, [
      csvSource('train_labels.csv', 'file', 'label', { HEM: 'HEM', ALL: 'ALL' }),
      csvSource('test/test_labels.csv', 'image', 'Label', { hem: 'HEM', all: 'ALL' }),
    ]);
    assert.deepEqual(report.spec.classes, [
      { name: 'ALL', count: 25 },
      { name: 'HEM', count: 25 },
    ]);
    assert.equal(report.spec.split.kind, 'predefined');
    assertAbsent(report, 'no-labels', 'label-table', 'label-mismatch');
  });

  test('cell images with their masks and one table naming both by the same file name', async () => {
    const root = await freshDir();
    const files: { path: string }[] = [];
    const rows = ['name,label'];
    for (let i = 0; i < 30; i++) {
      files.push({ path: `images/cell${i}.png` }, { path: `masks/cell${i}.png` });
      rows.push(`cell${i}.png,${i % 3 === 0 ? 'HEM' : 'ALL'}`);
    }
    await writeImages(root, files);
    await writeText(root, 'labels.csv', rows.join('\n'));
    const report = await audit(root, 'images/ + masks/ with the same names + labels.csv');
    assert.deepEqual(report.spec.classes, [
      { name: 'ALL', count: 20 },
      { name: 'HEM', count: 10 },
    ]);
    // The masks are not labelled as cells, and the two folders are not taken for classes.
    assert.equal(report.spec.unlabelled, 30);
    assert.match(findingsOf(report, 'structural-labels')[0]?.message ?? '', /kinds of file/);
    assertAbsent(report, 'no-labels', 'label-table');
  });
});

describe('confounded groups', () => {
  async function hospitals(share: number): Promise<AuditReport> {
    const root = await freshDir();
    const files: { path: string }[] = [];
    // 40 ALL and 40 HEM; hospital_1 holds `share` of the ALL images and half the HEM images.
    const allInFirst = Math.round(40 * share);
    for (let i = 0; i < 40; i++) files.push({ path: `hospital_${i < allInFirst ? 1 : 2}/ALL/a${i}.png` });
    for (let i = 0; i < 40; i++) files.push({ path: `hospital_${i < 20 ? 1 : 2}/HEM/h${i}.png` });
    await writeImages(root, files);
    return audit(root, `hospital_{1,2}/{ALL,HEM} with ${share * 100} % of ALL in hospital_1`);
  }

  test('one hospital holding 90 % of ALL is confounded, with the table, V and p as evidence', async () => {
    const report = await hospitals(0.9);
    const [confounded] = findingsOf(report, 'confounded-groups');
    assert.ok(confounded, describeFindings(report));
    assert.equal(confounded.severity, 'warning');
    assert.match(confounded.message, /hospital_1 holds 90 % of the ALL images \(36 of 40\)/);
    const table = confounded.evidence.contingency as { rows: string[]; columns: string[]; counts: number[][] };
    const cell = (row: string, column: string) => table.counts[table.rows.indexOf(row)][table.columns.indexOf(column)];
    assert.deepEqual([cell('hospital_1', 'ALL'), cell('hospital_2', 'ALL'), cell('hospital_1', 'HEM')], [36, 4, 20]);
    // χ² on [[36, 20], [4, 20]]: 80 · (36·20 − 20·4)² / (56 · 24 · 40 · 40) = 15.238…, V = √(χ²/80).
    assert.ok(
      Math.abs((confounded.evidence.chiSquare as number) - 15.238) < 0.01,
      String(confounded.evidence.chiSquare),
    );
    assert.ok(Math.abs((confounded.evidence.cramersV as number) - Math.sqrt(15.238 / 80)) < 0.001);
    assert.ok((confounded.evidence.pValue as number) < 1e-3);
  });

  test('hospitals with the same class mix are not confounded', async () => {
    const report = await hospitals(0.5);
    assertAbsent(report, 'confounded-groups');
  });

  test('a site column of the label table confounded with the diagnosis', async () => {
    const root = await freshDir();
    const rows = ['filename,dx,site'];
    const files: { path: string }[] = [];
    for (let i = 0; i < 60; i++) {
      const dx = i < 30 ? 'ALL' : 'HEM';
      const site = dx === 'ALL' ? (i < 27 ? 'Lyon' : 'Graz') : i < 45 ? 'Lyon' : 'Graz';
      files.push({ path: `imgs/${i}.png` });
      rows.push(`${i}.png,${dx},${site}`);
    }
    await writeImages(root, files);
    await writeText(root, 'meta.csv', rows.join('\n'));
    const report = await audit(root, 'imgs/N.png + meta.csv with a site column (27 of 30 ALL from one site)');
    const [confounded] = findingsOf(report, 'confounded-groups');
    assert.ok(confounded, describeFindings(report));
    assert.deepEqual(confounded.evidence.groupSource, { kind: 'csv', file: 'meta.csv', column: 'site' });
  });
});
