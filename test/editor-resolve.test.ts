// Which folders of a workspace are datasets, and where a path written in a notebook points on this machine.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { findDatasetFolders } from '../src/core/editor/datasetRoots.js';
import { matchTrailingComponents, resolveDatasetPath, type ResolveContext } from '../src/core/editor/pathResolve.js';

const WS = path.resolve('/ws');
const p = (...parts: string[]) => path.join(WS, ...parts);

/** The C-NMC layout, a run folder with Grad-CAM PNGs, a docs screenshot and a second dataset of class folders. */
const IMAGES = [
  ...['fold_0', 'fold_1', 'fold_2'].flatMap((fold) =>
    ['all', 'hem'].map((label) => p('data', 'C-NMC_Leukemia', 'training_data', fold, label, `UID_1_1_1_${label}.bmp`)),
  ),
  p('data', 'C-NMC_Leukemia', 'validation_data', 'C-NMC_test_prelim_phase_data', '1.bmp'),
  p('.leukemia-audit', 'runs', 'run-1', 'gradcam', 'a.png'),
  p('docs', 'screenshot.png'),
  p('other', 'cells', 'cats', 'a.png'),
  p('other', 'cells', 'dogs', 'b.png'),
];

describe('findDatasetFolders', () => {
  const found = findDatasetFolders(IMAGES, {
    workspaceFolders: [WS],
    excludedFolders: [p('.leukemia-audit', 'runs', 'run-1')],
  });

  test('dataset roots are where single-folder chains end; folders that are datasets themselves are offered too', () => {
    assert.deepEqual(
      found.candidates.map((c) => [path.relative(WS, c.folder), c.kind, c.images]),
      [
        ['data/C-NMC_Leukemia', 'root', 7],
        ['data/C-NMC_Leukemia/training_data', 'part', 6],
        ['docs', 'root', 1],
        ['other/cells', 'root', 2],
      ],
    );
  });

  test('known folders are every folder above an image, without excluded run folders', () => {
    assert.ok(found.knownFolders.includes(p('data', 'C-NMC_Leukemia', 'training_data')));
    assert.ok(found.knownFolders.includes(p('data', 'C-NMC_Leukemia', 'training_data', 'fold_0', 'all')));
    assert.ok(!found.knownFolders.some((f) => f.includes('.leukemia-audit')));
    assert.ok(!found.knownFolders.includes(WS), 'the workspace folder itself holds no image');
  });

  test('images outside every workspace folder are ignored', () => {
    assert.deepEqual(
      findDatasetFolders([path.resolve('/elsewhere/a/b.png')], { workspaceFolders: [WS] }).candidates,
      [],
    );
  });
});

describe('resolveDatasetPath', () => {
  const existing = new Set([p('data', 'C-NMC_Leukemia', 'training_data'), p('notebooks'), p('data')]);
  const known = findDatasetFolders(IMAGES, { workspaceFolders: [WS] }).knownFolders;
  const context: ResolveContext = {
    fileDir: p('notebooks'),
    workspaceFolders: [WS],
    knownFolders: known,
    isDirectory: async (f) => existing.has(f),
    home: '/home/me',
  };

  test('relative to the file first, then to the workspace folders', async () => {
    assert.deepEqual(await resolveDatasetPath('../data/C-NMC_Leukemia/training_data', context), {
      folder: p('data', 'C-NMC_Leukemia', 'training_data'),
      how: 'relative-to-file',
    });
    assert.deepEqual(await resolveDatasetPath('data/C-NMC_Leukemia/training_data', context), {
      folder: p('data', 'C-NMC_Leukemia', 'training_data'),
      how: 'relative-to-workspace',
    });
    assert.deepEqual(await resolveDatasetPath(p('data', 'C-NMC_Leukemia', 'training_data'), context), {
      folder: p('data', 'C-NMC_Leukemia', 'training_data'),
      how: 'absolute',
    });
  });

  test('a Kaggle path finds the workspace copy by its trailing folder names', async () => {
    const resolved = await resolveDatasetPath(
      '/kaggle/input/leukemia-classification/C-NMC_Leukemia/training_data/',
      context,
    );
    assert.deepEqual(resolved, {
      folder: p('data', 'C-NMC_Leukemia', 'training_data'),
      how: 'trailing-match',
      matched: 2,
      alternatives: [],
    });
  });

  test('one shared trailing name is not enough for a longer path; URLs are never local', async () => {
    assert.equal(await resolveDatasetPath('/content/drive/MyDrive/training_data', context), undefined);
    assert.equal(await resolveDatasetPath('gs://bucket/C-NMC_Leukemia/training_data', context), undefined);
    assert.equal(
      (await resolveDatasetPath('training_data', context))?.folder,
      p('data', 'C-NMC_Leukemia', 'training_data'),
    );
  });

  test('matchTrailingComponents ranks longer agreement first and stops at ..', () => {
    const folders = [p('a', 'x', 'train'), p('b', 'y', 'x', 'train')];
    assert.deepEqual(
      matchTrailingComponents('/k/y/x/train', folders).map((m) => m.matched),
      [3, 2],
    );
    assert.deepEqual(
      matchTrailingComponents('../x/train', folders).map((m) => m.matched),
      [2, 2],
    );
    assert.deepEqual(
      matchTrailingComponents('C:\\data\\x\\train', folders).map((m) => m.folder),
      [p('a', 'x', 'train'), p('b', 'y', 'x', 'train')],
    );
  });
});
