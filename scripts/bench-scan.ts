// The audit at the real dataset's size: 15,000 450×450 BMPs laid out like C-NMC 2019 (see bench-scan-tree.ts),
// built under the OS temp folder. Prints, per run and as median and spread over the runs:
//   reference  sha256 of every file's bytes with Node's crypto, one file after another (`sha256sum`-style)
//   header     scanDataset without a cache (headers only)
//   full       auditDataset with pixels and duplicates, no cache
//   warm       auditDataset again with a filled cache and nothing changed
//   incr       auditDataset with the cache after 10 files were rewritten
// Figures are ratios against the reference too, since the machine's load hits both.
// Usage: node --import tsx scripts/bench-scan.ts [--runs 3] [--keep] [--rebuild] [--dir <folder>]
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditDataset } from '../src/core/audit/runAudit.js';
import { decodeBmp } from '../src/core/image/bmpDecode.js';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { scanDataset } from '../src/core/audit/scan.js';
import { buildTree, TREE_FILES, treeFilePath, treeIsBuilt } from './bench-scan-tree.js';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const CHANGED_FILES = 10;

async function time<T>(work: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const result = await work();
  return [(performance.now() - start) / 1000, result];
}

async function referenceHash(root: string): Promise<void> {
  for (let index = 0; index < TREE_FILES; index++) {
    createHash('sha256')
      .update(await readFile(treeFilePath(root, index)))
      .digest('hex');
  }
}

/** Rewrites files with one pixel changed, as an edit would: new content, new mtime. */
async function touchFiles(root: string, run: number): Promise<void> {
  for (let k = 0; k < CHANGED_FILES; k++) {
    const file = treeFilePath(root, (run * 997 + k * 1499) % TREE_FILES);
    const image = decodeBmp(await readFile(file));
    image.data[(image.width * (image.height >> 1) + (image.width >> 1)) * 3] ^= 0x40;
    await writeFile(file, encodeBmp24(image));
  }
}

function stats(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[(sorted.length - 1) >> 1];
  return `median ${median.toFixed(3)} s (min ${sorted[0].toFixed(3)}, max ${sorted.at(-1)!.toFixed(3)})`;
}

async function main(): Promise<void> {
  const runs = Number(option('--runs') ?? 3);
  const root = option('--dir') ?? path.join(os.tmpdir(), 'leukemia-audit-bench-scan450');
  const keep = process.argv.includes('--keep');
  if (process.argv.includes('--rebuild') || !(await treeIsBuilt(root))) {
    console.log(`building ${TREE_FILES.toLocaleString('en-US')} 450×450 BMPs in ${root} (a few minutes) …`);
    const [seconds] = await time(() => buildTree(root));
    console.log(`built in ${seconds.toFixed(0)} s`);
  } else {
    console.log(`reusing ${root}`);
  }
  const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-bench-cache-'));
  const figures: Record<'reference' | 'header' | 'full' | 'warm' | 'incr', number[]> = {
    reference: [],
    header: [],
    full: [],
    warm: [],
    incr: [],
  };
  await referenceHash(root); // warm the page cache, so every run reads from memory
  try {
    for (let run = 1; run <= runs; run++) {
      const step = async <T>(name: keyof typeof figures, work: () => Promise<T>): Promise<T> => {
        const [seconds, result] = await time(work);
        figures[name].push(seconds);
        const rate = name === 'reference' || name === 'full' ? `, ${(TREE_FILES / seconds).toFixed(0)} files/s` : '';
        console.log(`run ${run}: ${name.padEnd(9)} ${seconds.toFixed(3)} s${rate}`);
        return result;
      };
      await step('reference', () => referenceHash(root));
      await step('header', () => scanDataset(root));
      const report = await step('full', () => auditDataset(root, { cacheDir: false }));
      await rm(cacheDir, { recursive: true, force: true });
      await auditDataset(root, { cacheDir }); // fills the cache
      await step('warm', () => auditDataset(root, { cacheDir }));
      await touchFiles(root, run);
      const incrReport = await step('incr', () => auditDataset(root, { cacheDir }));
      const codes = (r: typeof report) => JSON.stringify(r.findings.map((f) => f.code));
      console.log(
        `run ${run}: full audit ${(figures.reference.at(-1)! / figures.full.at(-1)!).toFixed(2)}× the reference's ` +
          `speed; duplicate findings: ${report.findings.filter((f) => f.code === 'duplicate-images').length}` +
          (codes(incrReport) === codes(report) ? '' : '; FINDINGS DIFFER after the edit'),
      );
    }
    console.log(`\n${runs} runs, ${TREE_FILES.toLocaleString('en-US')} files, ${os.availableParallelism()} cores:`);
    console.log(`  reference sha256   ${stats(figures.reference)}`);
    console.log(`  header scan        ${stats(figures.header)}`);
    console.log(`  full audit         ${stats(figures.full)}`);
    const rates = figures.full.map((s) => TREE_FILES / s).sort((a, b) => a - b);
    console.log(
      `                     = ${rates[(rates.length - 1) >> 1].toFixed(0)} files/s (min ${rates[0].toFixed(0)}, max ${rates.at(-1)!.toFixed(0)})`,
    );
    console.log(`  warm re-audit      ${stats(figures.warm)}`);
    console.log(`  incremental (${CHANGED_FILES})   ${stats(figures.incr)}`);
    console.log(`  peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (main thread and workers)`);
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
    if (!keep) await rm(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
