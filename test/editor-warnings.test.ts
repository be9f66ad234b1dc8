// What the editor says about a dataset call and a leukemia-audit.json, decided from real audits of small
// synthetic layouts (auditScan is pure: the layouts need no files).
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { auditScan, type AuditReport } from '../src/core/audit/audit.js';
import { datasetCallWarning, type CodeFix } from '../src/core/editor/callWarning.js';
import { datasetFileDiagnostics, datasetFileProblem, readDatasetFile } from '../src/core/editor/auditJsonFile.js';
import { anchorFolderFindings } from '../src/core/editor/folderFindings.js';
import { findDatasetCalls, type SourceCell } from '../src/core/editor/pythonCalls.js';
import { structuralPrompt, structuralSentence, structuralSummary } from '../src/core/editor/structural.js';
import { labelsAreStructural } from '../src/core/train/labelChoice.js';
import type { ScanResult } from '../src/core/types.js';
import { assertSpecConsistent } from './helpers/auditConsistency.js';

const ROOT = path.resolve('/data/C-NMC_Leukemia/training_data');

function audit(paths: string[], root = ROOT): AuditReport {
  const scan: ScanResult = {
    root,
    images: paths.map((p) => ({ path: p, format: 'bmp', width: 64, height: 64, channels: 3, size: 12_342 })),
    unreadable: [],
    otherFiles: [],
    ignored: 0,
  };
  const report = auditScan(scan);
  assertSpecConsistent(report, scan);
  return report;
}

/** C-NMC: three folds of all/hem, ALL about twice as common, subjects confined to a fold. */
function cnmcPaths(): string[] {
  const paths: string[] = [];
  for (let fold = 0; fold < 3; fold++) {
    for (let i = 0; i < 30; i++) paths.push(`fold_${fold}/all/UID_${fold * 10 + (i % 5)}_${i}_1_all.bmp`);
    for (let i = 0; i < 15; i++) paths.push(`fold_${fold}/hem/UID_H${fold * 10 + (i % 5)}_${i}_1_hem.bmp`);
  }
  return paths;
}

function classFolders(prefix: string[]): string[] {
  return ['all', 'hem'].flatMap((label) =>
    Array.from({ length: 25 }, (_, i) =>
      [...prefix, label, `UID_${label === 'all' ? '' : 'H'}${i % 7}_${i}_1_${label}.bmp`].join('/'),
    ),
  );
}

function apply(cells: SourceCell[], fix: CodeFix): Record<string, string> {
  const out = Object.fromEntries(cells.map((c) => [c.id, c.text]));
  for (const edit of [...fix.edits].sort((a, b) => b.start - a.start)) {
    out[edit.cell] = out[edit.cell].slice(0, edit.start) + edit.newText + out[edit.cell].slice(edit.end);
  }
  return out;
}

const cnmc = audit(cnmcPaths());

describe('structural summary and the training prompt', () => {
  test('names the folds, what they look like and where the diagnoses are', () => {
    const summary = structuralSummary(cnmc)!;
    assert.deepEqual(summary.folders, ['fold_0', 'fold_1', 'fold_2']);
    assert.equal(summary.recommendedLabels, 'folder:2');
    assert.equal(
      structuralSentence(summary),
      'fold_0/fold_1/fold_2 look like cross-validation folds; the diagnoses all/hem are one level deeper.',
    );
    const prompt = structuralPrompt(cnmc)!;
    assert.equal(prompt.recommendedButton, 'Train on all/hem (recommended)');
    assert.equal(prompt.recommendedLabels, 'folder:2');
    assert.equal(prompt.anywayButton, 'Train on the folder labels anyway');
    assert.equal(prompt.anywayLabels, 'folder:1');
    assert.match(prompt.detail, /predict the fold, not the diagnosis/);
  });

  test('a dataset whose top folders are the diagnoses has no prompt', () => {
    assert.equal(structuralPrompt(audit(classFolders([]))), undefined);
  });
});

describe('datasetCallWarning', () => {
  const kaggle = `/kaggle/input/leukemia-classification/C-NMC_Leukemia/training_data`;
  const resolution = { folder: ROOT, how: 'trailing-match' as const, matched: 2, alternatives: [] };

  test('ImageFolder on training_data: a warning on the literal naming the folds, the real labels and the match', () => {
    const cells = [{ id: 'c', text: `train = datasets.ImageFolder("${kaggle}", transform=t)\n` }];
    const calls = findDatasetCalls(cells);
    const warning = datasetCallWarning(calls[0], resolution, cnmc, cells, calls)!;
    assert.equal(warning.code, 'structural-labels');
    assert.equal(warning.severity, 'warning');
    assert.equal(cells[0].text.slice(warning.range.start, warning.range.end), `"${kaggle}"`);
    assert.match(
      warning.message,
      /^ImageFolder will use fold_0, fold_1 and fold_2 — the sub-folders of training_data — as its classes\./,
    );
    assert.match(warning.message, /predict the fold, not the diagnosis/);
    assert.match(warning.message, /The diagnoses \(all and hem\) are one level deeper, e\.g\. fold_0\/all\./);
    assert.match(warning.message, /does not exist here; checked against the workspace folder/);
  });

  test('the fix for folds is a dataset over all folds, not a path into one of them', () => {
    const cells = [
      { id: 'c', text: `import torch\n\ndef load():\n    return datasets.ImageFolder("${kaggle}", transform=t)\n` },
    ];
    const calls = findDatasetCalls(cells);
    const warning = datasetCallWarning(calls[0], resolution, cnmc, cells, calls)!;
    assert.equal(warning.fixes.length, 1, 'no path rewrite: pointing at one fold would drop the others');
    const fixed = apply(cells, warning.fixes[0]).c;
    assert.match(fixed, /\n {4}class NestedLabelFolder\(Dataset\):\n/, "inserted at the call's indentation");
    assert.match(fixed, /return NestedLabelFolder\("[^"]+", transform=t, label_depth=2\)/);
    assert.match(fixed, /if g == 'fold_2'/, "the validation fold example is the audit's");
    // Inserted once: with the class already there, the fix only rewrites the call.
    const again = [
      {
        id: 'c',
        text: fixed
          .replace('return NestedLabelFolder(', 'return datasets.ImageFolder(')
          .replace(', label_depth=2)', ')'),
      },
    ];
    const againCalls = findDatasetCalls(again);
    const second = datasetCallWarning(againCalls[0], resolution, cnmc, again, againCalls)!;
    assert.equal(apply(again, second.fixes[0]).c.match(/class NestedLabelFolder/g)?.length, 1);
  });

  test('Keras gets a helper and usage, not a call rewrite', () => {
    const cells = [{ id: 'c', text: `ds = tf.keras.utils.image_dataset_from_directory("${kaggle}")\n` }];
    const calls = findDatasetCalls(cells);
    const warning = datasetCallWarning(calls[0], resolution, cnmc, cells, calls)!;
    assert.match(warning.message, /as its class_names/);
    const fixed = apply(cells, warning.fixes[0]).c;
    assert.match(fixed, /^# leukemia-audit:/);
    assert.match(fixed, /def nested_label_files\(root, label_depth=2/);
    assert.match(fixed, /ds = tf\.keras\.utils\.image_dataset_from_directory\("/, 'the call itself is unchanged');
  });

  test("a single wrapper folder: the fix points one level deeper, in the literal's own style", () => {
    const report = audit(classFolders(['images']), path.resolve('/data/cells'));
    const cells = [{ id: 'c', text: `root = r'C:\\data\\cells'\nds = ImageFolder(root)\n` }];
    const calls = findDatasetCalls(cells);
    const warning = datasetCallWarning(calls[0], { folder: report.root, how: 'absolute' }, report, cells, calls)!;
    assert.match(
      warning.message,
      /ImageFolder will use images — the sub-folders of cells — as its classes\. It looks like a single wrapper folder/,
    );
    assert.equal(warning.fixes[0].preferred, true);
    assert.equal(warning.fixes[0].title, "Point at 'C:\\data\\cells\\images' (its sub-folders are the diagnoses)");
    assert.equal(apply(cells, warning.fixes[0]).c.split('\n')[0], `root = r'C:\\data\\cells\\images'`);
  });

  test('named splits: the fix reads the training split, unless the literal is shared with another call', () => {
    const report = audit([...classFolders(['train']), ...classFolders(['val'])], path.resolve('/data/split'));
    const single = [{ id: 'c', text: `ds = ImageFolder('/data/split')\n` }];
    const singleCalls = findDatasetCalls(single);
    const warning = datasetCallWarning(
      singleCalls[0],
      { folder: report.root, how: 'absolute' },
      report,
      single,
      singleCalls,
    )!;
    assert.equal(apply(single, warning.fixes[0]).c, `ds = ImageFolder('/data/split/train')\n`);
    const shared = [{ id: 'c', text: `d = '/data/split'\na = ImageFolder(d)\nb = ImageFolder(d)\n` }];
    const sharedCalls = findDatasetCalls(shared);
    const sharedWarning = datasetCallWarning(
      sharedCalls[0],
      { folder: report.root, how: 'absolute' },
      report,
      shared,
      sharedCalls,
    )!;
    assert.ok(sharedWarning.fixes.every((f) => !f.title.startsWith('Read the training split')));
  });

  test('no warning where the top folders are the diagnoses (ImageFolder on one fold)', () => {
    const report = audit(classFolders([]), path.resolve('/data/fold_0'));
    const cells = [{ id: 'c', text: `ds = ImageFolder('/data/fold_0')\n` }];
    const calls = findDatasetCalls(cells);
    assert.equal(
      datasetCallWarning(calls[0], { folder: report.root, how: 'absolute' }, report, cells, calls),
      undefined,
    );
  });
});

describe('leukemia-audit.json', () => {
  const file = path.join(ROOT, 'leukemia-audit.json');

  test('reads root relative to the file, labels and split, with defaults for bad values', () => {
    assert.deepEqual(
      readDatasetFile('{"root": "sub", "labels": "folder:2", "split": "subject-disjoint", "seed": 3}', file),
      {
        root: path.join(ROOT, 'sub'),
        labels: 'folder:2',
        split: 'subject-disjoint',
        seed: 3,
        subjectPattern: undefined,
      },
    );
    assert.deepEqual(readDatasetFile('{"labels": "nonsense"}', file), {
      root: ROOT,
      labels: 'auto',
      split: 'auto',
      seed: undefined,
      subjectPattern: undefined,
    });
  });

  test('structural labels: an error on "labels" with a fix that writes the recommendation', () => {
    const text = '{\n  "root": ".",\n  "labels": "folder:1"\n}\n';
    const diagnostics = datasetFileDiagnostics(text, file, cnmc);
    const structural = diagnostics.find((d) => d.code === 'structural-labels')!;
    assert.equal(structural.severity, 'error');
    assert.equal(text.slice(structural.start, structural.end), '"folder:1"');
    const fixed =
      text.slice(0, structural.fixes[0].edits[0].start) +
      structural.fixes[0].edits[0].newText +
      text.slice(structural.fixes[0].edits[0].end);
    assert.equal(fixed, '{\n  "root": ".",\n  "labels": "folder:2"\n}\n');
    assert.deepEqual(
      datasetFileDiagnostics(fixed, file, cnmc)
        .map((d) => d.code)
        .filter((c) => c.endsWith('-labels') && c !== 'filename-labels'),
      [],
      'fixed labels clear both label findings',
    );
  });

  test('without "labels", the finding sits on root and the fix inserts the property', () => {
    const text = '{\n  "root": "."\n}';
    const structural = datasetFileDiagnostics(text, file, cnmc).find((d) => d.code === 'structural-labels')!;
    assert.equal(text.slice(structural.start, structural.end), '"."');
    assert.match(structural.message, /Training refuses "labels": "auto" here/);
    const edit = structural.fixes[0].edits[0];
    assert.equal(
      text.slice(0, edit.start) + edit.newText + text.slice(edit.end),
      '{\n  "labels": "folder:2",\n  "root": "."\n}',
    );
  });

  test('subject leakage: a fix that declares a subject-disjoint split; declared, it is not reported', () => {
    const leaky = audit(
      cnmcPaths().map((p) => (p.startsWith('fold_2/all/UID_20_') ? p.replace('UID_20_', 'UID_0_') : p)),
    );
    const text = '{"labels": "folder:2"}';
    const leak = datasetFileDiagnostics(text, file, leaky).find((d) => d.code === 'subject-leakage')!;
    assert.equal(leak.severity, 'error');
    const edit = leak.fixes[0].edits[0];
    const fixed = text.slice(0, edit.start) + edit.newText + text.slice(edit.end);
    assert.deepEqual(JSON.parse(fixed), { split: 'subject-disjoint', labels: 'folder:2' });
    assert.equal(
      datasetFileDiagnostics(fixed, file, leaky).some((d) => d.code === 'subject-leakage'),
      false,
    );
  });

  test('labelsAreStructural, and a problem with the file itself sits on root', () => {
    assert.equal(labelsAreStructural('auto', cnmc), true);
    assert.equal(labelsAreStructural('folder:1', cnmc), true);
    assert.equal(labelsAreStructural('folder:2', cnmc), false);
    assert.equal(labelsAreStructural('filename', cnmc), false);
    const text = '{"root": "missing"}';
    const problem = datasetFileProblem(text, 'missing does not exist')!;
    assert.equal(text.slice(problem.start, problem.end), '"missing"');
  });
});

test('folder findings are anchored on their evidence image, and example-less ones share the first', () => {
  const anchored = anchorFolderFindings(cnmc, 'training_data');
  const structural = anchored.find((a) => a.finding.code === 'structural-labels')!;
  assert.equal(structural.path, cnmc.findings.find((f) => f.code === 'structural-labels')!.paths[0]);
  assert.match(structural.message, /^training_data: The folders fold_0/);
  const imbalance = anchored.find((a) => a.finding.code === 'class-imbalance')!;
  assert.equal(imbalance.path, anchored[0].path);
});
