import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../core/fsAtomic.js';
import { buildHtmlReport } from '../../core/report/htmlReport.js';
import { UsageError, parseCommandArgs } from '../usage.js';

const HELP = `Usage: leukemia-audit report <run> [--out report.html]

Writes the results of a run folder as one self-contained HTML file: findings, metrics, confusion matrix,
training curves, ROC and calibration, Grad-CAM gallery. Everything is inlined (images too); the file opens
offline in any browser and can be mailed or archived as it is.

  --out FILE   where to write the report (default <run>/report.html)`;

export async function reportCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(argv, { out: { type: 'string' } }, HELP);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('report takes exactly one run folder');
  const runDir = resolve(positionals[0]);
  const out = resolve(values.out ?? join(runDir, 'report.html'));
  const { html, missingImages } = await buildHtmlReport(runDir);
  if (missingImages.length > 0) {
    process.stderr.write(
      `leukemia-audit: ${missingImages.length} image${missingImages.length === 1 ? '' : 's'} named in run.json could not be read and show as "not available", e.g. ${missingImages[0]}\n`,
    );
  }
  await writeFileAtomic(out, html);
  process.stdout.write(`${out}\n`);
  return 0;
}
