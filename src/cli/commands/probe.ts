import { CROPS, type CropMode } from '../../core/train/settings.js';
import { GroupChoiceError, parseGroupChoice } from '../../core/probe/groupChoice.js';
import { probeDataset, DEFAULT_PROBE_IMAGE_SIZE, type ProbePhase } from '../../core/probe/probe.js';
import { LabelChoiceError, parseLabelChoice } from '../../core/train/labelChoice.js';
import { describePhaseProgress } from '../../core/train/progress.js';
import { formatProbe } from '../report.js';
import {
  ENGINE_HELP,
  ENGINE_OPTIONS,
  UsageError,
  abortOnInterrupt,
  endProgress,
  engineFlags,
  logToStderr,
  integerOption,
  oneOf,
  parseCommandArgs,
  stderrProgress,
} from '../usage.js';

const HELP = `Usage: leukemia-audit probe <dataset> [options]

The batch-effect probe: can the fold, site, batch or date be told from the pixels? Extracts frozen
average-pooled ResNet-18 features (512 per image) and fits a multinomial logistic regression (L2,
standardised features), cross-validated by subject, to predict (a) the structural group and (b) the
diagnosis. Reports balanced accuracy against chance with a 95% subject-bootstrap interval, per-class recall
and the confusion matrix; a group predictable far above chance is the finding group-predictable. Writes a
run folder (run.json kind "probe", report.html). Features are cached under the user cache folder.

  --weights auto|imagenet|none|FILE|RUN   backbone (default auto: ImageNet when a copy is available,
                         else a random ResNet-18, a weaker probe)
  --group auto|folder:N|csv:COL   what to predict besides the diagnosis (default auto: the structural
                         grouping the audit detects — fold, site, batch or date folders, group columns)
  --labels auto|folder:N|filename|csv:FILE   the diagnosis (default auto: the audit's recommendation)
  --image-size S         network input side (default ${DEFAULT_PROBE_IMAGE_SIZE})
  --crop none|center|cell   (default none)
  --out RUN              run folder (default <dataset>/../leukemia-audit-runs/run-<time>)
  --force                replace a run already in --out
  --subject-pattern RE   subject id pattern (default ^UID_(H?\\d+)_)
  --seed N               folds, bootstrap and a random backbone derive from it (default 1)
${ENGINE_HELP}
                         The features run on that engine (cached: either engine's serve the next probe).
  --json                 print only the run.json on stdout`;

const PHASE_WORDS: Record<ProbePhase, string> = {
  audit: 'auditing',
  prepare: 'preparing images',
  features: 'features',
  probe: 'fitting probes',
  report: 'report',
};

export async function probeCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    argv,
    {
      weights: { type: 'string' },
      group: { type: 'string' },
      labels: { type: 'string' },
      'image-size': { type: 'string' },
      crop: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      'subject-pattern': { type: 'string' },
      seed: { type: 'string' },
      ...ENGINE_OPTIONS,
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('probe takes exactly one dataset folder');
  let labels;
  let group;
  try {
    labels = parseLabelChoice(values.labels ?? 'auto');
    group = parseGroupChoice(values.group ?? 'auto');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const progress = stderrProgress();
  const controller = abortOnInterrupt();
  let result;
  try {
    result = await probeDataset({
      dataset: positionals[0],
      weights: values.weights,
      group,
      labels,
      imageSize: integerOption(values['image-size'], 'image-size', DEFAULT_PROBE_IMAGE_SIZE, 32),
      crop: values.crop === undefined ? undefined : oneOf<CropMode>(values.crop, 'crop', CROPS, 'none'),
      out: values.out,
      force: values.force,
      subjectPattern: values['subject-pattern'],
      seed: integerOption(values.seed, 'seed', 1),
      ...engineFlags(values),
      signal: controller.signal,
      onProgress: (phase, done, total, eta) => progress(describePhaseProgress(PHASE_WORDS[phase], done, total, eta)),
      onLog: logToStderr,
    });
  } catch (error) {
    endProgress();
    if (controller.signal.aborted) {
      process.stderr.write('leukemia-audit: probe cancelled\n');
      return 130;
    }
    if (error instanceof LabelChoiceError || error instanceof GroupChoiceError) {
      process.stderr.write(`leukemia-audit: ${error.message}\n`);
      return 3;
    }
    throw error;
  }
  endProgress();
  const { run, runDir, report } = result;
  process.stderr.write(`Probe run ${runDir}${report ? `, report ${report}` : ''}\n`);
  if (values.json) process.stdout.write(JSON.stringify(run, null, 2) + '\n');
  else process.stdout.write(`${formatProbe(run)}\n`);
  return 0;
}
