import { resolve } from 'node:path';
import { writeFileAtomic } from '../../core/fsAtomic.js';
import { formatComparison, comparisonRows } from '../../core/run/compare.js';
import { readRunFile } from '../../core/run/runFileIo.js';
import { buildComparisonReport } from '../../core/report/htmlReport.js';
import { UsageError, parseCommandArgs } from '../usage.js';

const HELP = `Usage: leukemia-audit compare <run> <run> [--out compare.html] [--json]

Puts two run folders (training or evaluation) side by side: kind, label source, classes, the structural
flag, the verdict of an evaluation whose outputs are not the classes, the headline metrics and each run's
confusion matrix. Rows marked * differ where it matters (labels, classes, structural flag).

  --out FILE   also write the comparison as one self-contained HTML file (the results view's renderer)
  --json       the rows as JSON on stdout`;

export async function compareCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(argv, { out: { type: 'string' }, json: { type: 'boolean' } }, HELP);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 2) throw new UsageError('compare takes exactly two run folders');
  const runs = await Promise.all(
    positionals.map(async (dir) => ({ runDir: resolve(dir), run: await readRunFile(dir) })),
  );
  if (values.out !== undefined) {
    const out = resolve(values.out);
    await writeFileAtomic(out, await buildComparisonReport(runs.map((c) => c.runDir)));
    process.stderr.write(`Comparison written: ${out}\n`);
  }
  if (values.json) process.stdout.write(`${JSON.stringify(comparisonRows(runs), null, 2)}\n`);
  else process.stdout.write(`${formatComparison(runs)}\n`);
  return 0;
}
