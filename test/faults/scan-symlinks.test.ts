// Fault battery: symbolic links in a dataset cannot multiply it or lead the audit out of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditDataset } from '../../src/core/audit/runAudit.js';
import { encodeBmp24 } from '../../src/core/image/bmpEncode.js';
import { scanDataset } from '../../src/core/audit/scan.js';

const bmp = (seed: number) =>
  encodeBmp24({ width: 8, height: 8, channels: 3, data: Uint8Array.from({ length: 192 }, (_, i) => (i * seed) % 256) });

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-fault-links-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('two links per folder to the next, 12 levels deep, do not multiply the tree', async (t) => {
  const root = await tempDir(t);
  const depth = 12;
  for (let level = 0; level <= depth; level++) {
    const folder = path.join(root, `level${level}`);
    await mkdir(folder);
    await writeFile(path.join(folder, `cell_${level}.bmp`), bmp(level + 1));
    if (level < depth) {
      await symlink(`../level${level + 1}`, path.join(folder, 'a'));
      await symlink(`../level${level + 1}`, path.join(folder, 'b'));
    }
  }
  const start = performance.now();
  const scan = await scanDataset(root);
  const ms = performance.now() - start;
  const twice = scan.unreadable.filter((u) => u.reason === 'linked-twice');
  assert.equal(scan.images.length, depth + 1);
  assert.equal(twice.length, 2 * depth);
  t.diagnostic(
    `FAULT symlink-fan-out: ${depth + 1} files behind 2 links per folder, ${depth} levels (2^${depth} paths): ` +
      `${scan.images.length} images listed once each, ${twice.length} links reported as "linked-twice", ${ms.toFixed(0)} ms`,
  );
});

test('links leading outside the dataset folder are not followed unless asked', async (t) => {
  const root = path.join(await tempDir(t), 'dataset');
  const elsewhere = path.join(path.dirname(root), 'elsewhere');
  await mkdir(path.join(root, 'all'), { recursive: true });
  await mkdir(elsewhere);
  await writeFile(path.join(root, 'all', 'inside.bmp'), bmp(1));
  await writeFile(path.join(elsewhere, 'outside.bmp'), bmp(2));
  await symlink(elsewhere, path.join(root, 'all', 'linked-folder'));
  await symlink(path.join(elsewhere, 'outside.bmp'), path.join(root, 'all', 'linked-file.bmp'));
  await symlink('/etc', path.join(root, 'etc'));
  const scan = await scanDataset(root);
  assert.deepEqual(
    scan.images.map((i) => i.path),
    ['all/inside.bmp'],
  );
  const outside = scan.unreadable.filter((u) => u.reason === 'outside-root').map((u) => u.path);
  assert.deepEqual(outside, ['all/linked-file.bmp', 'all/linked-folder', 'etc']);
  const allowed = await scanDataset(root, { followLinksOutsideRoot: true, maxFiles: 100_000 });
  assert.ok(allowed.images.some((i) => i.path === 'all/linked-folder/outside.bmp'));
  t.diagnostic(
    `FAULT symlink-outside-root: links to a folder, a file and /etc outside the dataset: not followed, reported ` +
      `as "outside-root" (${scan.unreadable.find((u) => u.path === 'etc')!.detail}); followed with ` +
      'followLinksOutsideRoot',
  );
});

test('a labels.csv link to a table outside the dataset is not read', async (t) => {
  const root = path.join(await tempDir(t), 'dataset');
  const elsewhere = path.join(path.dirname(root), 'elsewhere');
  await mkdir(path.join(root, 'images'), { recursive: true });
  await mkdir(elsewhere);
  const rows = ['file,label'];
  for (let i = 0; i < 12; i++) {
    await writeFile(path.join(root, 'images', `img_${i}.bmp`), bmp(i + 1));
    rows.push(`img_${i}.bmp,${i % 2 ? 'all' : 'hem'}`);
  }
  await writeFile(path.join(elsewhere, 'secret.csv'), rows.join('\n') + '\n');
  await symlink(path.join(elsewhere, 'secret.csv'), path.join(root, 'labels.csv'));
  const linked = await auditDataset(root, { cacheDir: false, checkPixels: false });
  assert.ok(!linked.spec.labelSources.some((s) => s.kind === 'csv'), JSON.stringify(linked.spec.labelSources));
  // The same table as a real file inside is read: the link, not the table, was refused.
  await rm(path.join(root, 'labels.csv'));
  await writeFile(path.join(root, 'labels.csv'), rows.join('\n') + '\n');
  const inside = await auditDataset(root, { cacheDir: false, checkPixels: false });
  assert.ok(
    inside.spec.labelSources.some((s) => s.kind === 'csv'),
    JSON.stringify(inside.spec.labelSources),
  );
  t.diagnostic(
    'FAULT labels-symlink-outside: labels.csv linked to a table outside the dataset was not read ' +
      `(label sources: ${JSON.stringify(linked.spec.labelSources.map((s) => s.kind))}); the same table as a ` +
      `file inside was (${JSON.stringify(inside.spec.labelSources.map((s) => s.kind))})`,
  );
});
