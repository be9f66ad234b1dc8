// Times scanDataset over 15,000 small BMP files laid out like C-NMC 2019 (training_data/fold_k/{all,hem}).
// The tree is built once under the OS temp folder and reused; pass --rebuild to start over.
// Usage: node --import tsx scripts/bench-scan.ts [--runs 3] [--rebuild]
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { scanDataset } from '../src/core/audit/scan.js';

const BENCH_ROOT = path.join(os.tmpdir(), 'leukemia-audit-bench-scan');
const FILE_COUNT = 15_000;
const FOLDS = 3;
const CLASSES = ['all', 'hem'] as const;
const SIDE = 32;
/** Hidden, so the scanner ignores it; records what the cached tree holds. */
const MARKER = path.join(BENCH_ROOT, '.bench-tree.json');
const MARKER_CONTENT = JSON.stringify({ files: FILE_COUNT, side: SIDE, layout: 'fold_k/{all,hem}' });

async function treeIsCached(): Promise<boolean> {
  try {
    return (await readFile(MARKER, 'utf8')) === MARKER_CONTENT;
  } catch {
    return false;
  }
}

async function buildTree(): Promise<void> {
  await rm(BENCH_ROOT, { recursive: true, force: true });
  const base = new Uint8Array(SIDE * SIDE * 3);
  for (let i = 0; i < base.length; i++) base[i] = (i * 7) % 256;
  const folders = new Set<string>();
  const files: Array<{ file: string; index: number }> = [];
  for (let index = 0; index < FILE_COUNT; index++) {
    const fold = index % FOLDS;
    const label = CLASSES[Math.floor(index / FOLDS) % CLASSES.length];
    const folder = path.join(BENCH_ROOT, 'training_data', `fold_${fold}`, label);
    folders.add(folder);
    files.push({ file: path.join(folder, `UID_${index}_${index % 17}_${index % 5}_${label}.bmp`), index });
  }
  for (const folder of folders) await mkdir(folder, { recursive: true });
  const writers = 32;
  let next = 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < files.length) {
        const { file, index } = files[next++];
        const data = Uint8Array.from(base);
        data[0] = index & 0xff; // distinct content per file, like real cells
        data[1] = (index >>> 8) & 0xff;
        await writeFile(file, encodeBmp24({ width: SIDE, height: SIDE, channels: 3, data }));
      }
    }),
  );
  await writeFile(MARKER, MARKER_CONTENT);
}

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

async function main(): Promise<void> {
  const runs = option('--runs', 3);
  if (process.argv.includes('--rebuild') || !(await treeIsCached())) {
    const start = performance.now();
    await buildTree();
    console.log(
      `built ${FILE_COUNT.toLocaleString('en-US')} BMPs in ${BENCH_ROOT} (${((performance.now() - start) / 1000).toFixed(1)} s)`,
    );
  } else {
    console.log(`reusing ${BENCH_ROOT}`);
  }
  for (let run = 1; run <= runs; run++) {
    const start = performance.now();
    const result = await scanDataset(BENCH_ROOT);
    const ms = performance.now() - start;
    const files = result.images.length + result.unreadable.length + result.otherFiles.length;
    console.log(
      `run ${run}: ${files.toLocaleString('en-US')} files (${result.images.length.toLocaleString('en-US')} images) in ` +
        `${ms.toFixed(0)} ms = ${Math.round(files / (ms / 1000)).toLocaleString('en-US')} files/s`,
    );
  }
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
