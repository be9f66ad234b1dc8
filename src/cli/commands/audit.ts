import { resolve } from 'node:path';
import { auditDataset, describeAuditProgress } from '../../core/audit/runAudit.js';
import { formatAuditReport } from '../report.js';
import { UsageError, endProgress, parseCommandArgs, stderrProgress } from '../usage.js';

const HELP = `Usage: leukemia-audit audit <dir> [--json] [--subject-pattern RE] [--no-pixels] [--cache-dir DIR | --no-cache]

Finds where the real labels of an image dataset live (folder level, file-name token or label table),
flags fold/split folders that would become classes, subject leakage, duplicates and unreadable files.

  --json                 print only the JSON report on stdout (documented in the README)
  --subject-pattern RE   regular expression whose first group is the subject id (default ^UID_(H?\\d+)_)
  --no-pixels            skip decoding every image (no duplicate or truncated-pixel check; much faster)
  --cache-dir DIR        where per-file results are kept between audits (default: the OS cache folder)
  --no-cache             read and decode every file again`;

export async function auditCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    argv,
    {
      json: { type: 'boolean' },
      'subject-pattern': { type: 'string' },
      'no-pixels': { type: 'boolean' },
      'cache-dir': { type: 'string' },
      'no-cache': { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('audit takes exactly one dataset folder');
  const subjectPattern = values['subject-pattern'];
  if (subjectPattern !== undefined) {
    try {
      new RegExp(subjectPattern);
    } catch (error) {
      throw new UsageError(`--subject-pattern is not a valid regular expression: ${(error as Error).message}`);
    }
  }
  const progress = stderrProgress();
  const report = await auditDataset(resolve(positionals[0]), {
    subjectPattern,
    checkPixels: !values['no-pixels'],
    cacheDir: values['no-cache'] ? false : values['cache-dir'] ? resolve(values['cache-dir']) : undefined,
    onProgress: (phase, done, total) => progress(describeAuditProgress(phase, done, total)),
  });
  endProgress();
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatAuditReport(report) + '\n');
  return 0;
}
