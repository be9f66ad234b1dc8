/**
 * `leukemia-audit` — the command line face of the core. With `--json`, stdout carries only JSON;
 * progress and messages always go to stderr.
 */
import { auditCommand } from './commands/audit.js';
import { compareCommand } from './commands/compare.js';
import { demoDataCommand } from './commands/demoData.js';
import { evaluateCommand } from './commands/evaluate.js';
import { explainCommand } from './commands/explain.js';
import { predictCommand } from './commands/predict.js';
import { probeCommand } from './commands/probe.js';
import { reportCommand } from './commands/report.js';
import { trainCommand } from './commands/train.js';
import { UsageError } from './usage.js';

// Injected by esbuild from package.json (scripts/build.mjs).
declare const PACKAGE_VERSION: string;

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  audit: {
    summary: 'audit <dir> [--json] [--subject-pattern RE] [--no-pixels]   check where the labels really are',
    run: auditCommand,
  },
  train: {
    summary:
      'train <dir> [--labels …] [--epochs N] [--image-size S] [--out RUN] [--resume] [--json]   train ResNet-18 and write a run folder',
    run: trainCommand,
  },
  predict: {
    summary:
      'predict --weights FILE|RUN [--image-size S] [--crop C] [--json] IMAGE...   class probabilities and logits per image',
    run: predictCommand,
  },
  explain: {
    summary:
      'explain (--run RUN | --weights FILE) [--layer L] [--class C] [--method gradcam|gradcam++] [--colormap viridis|turbo|jet] [--out DIR] [--json] IMAGE...   Grad-CAM overlays',
    run: explainCommand,
  },
  evaluate: {
    summary:
      'evaluate <dir> --weights FILE|RUN [--labels …] [--class-map out=class,…] [--image-size S] [--crop C] [--json]   any ResNet-18 checkpoint on the true labels',
    run: evaluateCommand,
  },
  probe: {
    summary:
      'probe <dir> [--weights auto|imagenet|none|FILE|RUN] [--group auto|folder:N|csv:COL] [--labels …] [--image-size S] [--out RUN] [--json]   batch effects: can the fold/site be told from the pixels?',
    run: probeCommand,
  },
  compare: {
    summary:
      'compare <run> <run> [--out compare.html] [--json]   two runs side by side: labels, structural flag, metrics',
    run: compareCommand,
  },
  report: {
    summary: 'report <run> [--out report.html]   write the run as one self-contained HTML file',
    run: reportCommand,
  },
  'demo-data': {
    summary:
      'demo-data <dir> [--seed N] [--image-size S] [--images-per-fold N] [--leak-subjects N] [--duplicates N] [--corrupt-files N] [--overwrite] [--json]   write a C-NMC-like demo dataset',
    run: demoDataCommand,
  },
};

export function usage(): string {
  return [
    'Usage: leukemia-audit <command> [options]',
    '',
    'Commands:',
    ...Object.values(COMMANDS).map((c) => `  ${c.summary}`),
    '',
    'Run `leukemia-audit <command> --help` for details.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command) {
    process.stderr.write(usage() + '\n');
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  if (command === '--version') {
    process.stdout.write(`${PACKAGE_VERSION}\n`);
    return 0;
  }
  const entry = COMMANDS[command];
  if (!entry) throw new UsageError(`unknown command "${command}"`);
  return entry.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`leukemia-audit: ${error.message}\n\n${usage()}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`leukemia-audit: ${(error as Error).message ?? String(error)}\n`);
      if (process.env.LEUKEMIA_AUDIT_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
      process.exitCode = 1;
    }
  },
);
