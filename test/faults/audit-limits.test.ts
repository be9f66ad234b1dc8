// Fault battery: an audit pointed at a huge tree stops at its limits with a message, and honours its abort signal
// while it reads label tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditDataset } from '../../src/core/audit/runAudit.js';
import { encodeBmp24 } from '../../src/core/image/bmpEncode.js';

const bmp = (seed: number) =>
  encodeBmp24({
    width: 16,
    height: 16,
    channels: 3,
    data: Uint8Array.from({ length: 768 }, (_, i) => (i * seed) % 256),
  });

async function dataset(t: { after: (fn: () => Promise<void>) => void }, images: number, tables = 0): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-fault-limits-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const label of ['all', 'hem']) await mkdir(path.join(root, label));
  for (let i = 0; i < images; i++) await writeFile(path.join(root, i % 2 ? 'hem' : 'all', `img_${i}.bmp`), bmp(i + 1));
  const rows = ['file,label', ...Array.from({ length: images }, (_, i) => `img_${i}.bmp,${i % 2 ? 'hem' : 'all'}`)];
  for (let k = 0; k < tables; k++) await writeFile(path.join(root, `labels_${k}.csv`), rows.join('\n'));
  return root;
}

test('more files than maxFiles: the audit stops with a message naming the folder and the limit', async (t) => {
  const root = await dataset(t, 40);
  await assert.rejects(auditDataset(root, { cacheDir: false, maxFiles: 25 }), (error: Error) => {
    assert.equal(error.name, 'AuditLimitError');
    assert.match(error.message, new RegExp(`Stopped scanning ${root}: it holds more than 25 files and folders`));
    t.diagnostic(`FAULT audit-max-files: 42 entries, maxFiles 25: stopped, "${error.message}"`);
    return true;
  });
  assert.equal((await auditDataset(root, { cacheDir: false, maxFiles: 100 })).images, 40);
});

test('more bytes than maxBytes: the audit stops before reading pixels', async (t) => {
  const root = await dataset(t, 10);
  let pixelsStarted = false;
  await assert.rejects(
    auditDataset(root, {
      cacheDir: false,
      maxBytes: 4_000,
      onProgress: (phase, done) => (pixelsStarted ||= phase === 'pixels' && done > 0),
    }),
    (error: Error) => {
      assert.equal(error.name, 'AuditLimitError');
      assert.match(
        error.message,
        /before reading the images under .* that would make 8,220 bytes, over its limit of 4,000 bytes \(maxBytes\)/,
      );
      t.diagnostic(`FAULT audit-max-bytes: 10 images of ${bmp(1).length} bytes, maxBytes 4,000: "${error.message}"`);
      return true;
    },
  );
  assert.equal(pixelsStarted, false);
});

test('aborting while label tables are read stops the audit there', async (t) => {
  const root = await dataset(t, 20, 30);
  const controller = new AbortController();
  const phases: string[] = [];
  const started = performance.now();
  await assert.rejects(
    auditDataset(root, {
      cacheDir: false,
      signal: controller.signal,
      onProgress: (phase) => {
        phases.push(phase);
        if (phase === 'labels') controller.abort();
      },
    }),
    { name: 'AbortError' },
  );
  assert.ok(!phases.includes('pixels'), phases.join(','));
  t.diagnostic(
    `FAULT audit-abort-labels: aborted as 30 label tables were about to be read: rejected with AbortError after ` +
      `${(performance.now() - started).toFixed(0)} ms, no pixels read`,
  );
});
