import { resolve } from 'node:path';
import { CROPS, type CropMode } from '../../core/train/settings.js';
import { describePhaseProgress } from '../../core/train/progress.js';
import { ClassMapError, parseClassMap } from '../../core/evaluate/classMap.js';
import { evaluateModel } from '../../core/evaluate/evaluate.js';
import { LabelChoiceError, parseLabelChoice } from '../../core/train/labelChoice.js';

import { describeCheckpoint } from '../../core/weights/checkpoint.js';
import { formatEvaluation, formatMetrics } from '../report.js';
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

const HELP = `Usage: leukemia-audit evaluate <dataset> --weights FILE|RUN [options]

Evaluates a ResNet-18 checkpoint on the dataset's true labels (the audit's recommendation, not the folders a
notebook may have trained on) and writes an evaluation run folder: run.json (kind "evaluation"), metrics,
confusion matrix, per-image predictions, per-subject accuracy, Grad-CAM gallery and report.html. When the
model's outputs are not the dataset's classes (a model trained on fold_0/1/2), says whether they carry any
information about the labels: contingency table, Cramér's V, mutual information and p-value.

  --weights FILE|RUN     .pth/.pt (state dict, training checkpoint or whole model; never executed),
                         .safetensors, or a run folder
  --labels auto|folder:N|filename|csv:FILE   the true labels (default auto: the audit's recommendation)
  --class-map out=class,…   which output is which class, when the names differ (e.g. 0=all,1=hem)
  --image-size S         network input side (default: what the checkpoint records, else 224)
  --crop none|center|cell   (default: what the checkpoint records, else none)
  --out RUN              evaluation run folder (default <dataset>/../leukemia-audit-runs/run-<time>)
  --subject-pattern RE   subject id pattern (default ^UID_(H?\\d+)_)
${ENGINE_HELP}
                         The predictions run on that engine; the Grad-CAM gallery on the embedded one.
  --no-explain           skip the Grad-CAM gallery
  --json                 print only the run.json on stdout`;

export async function evaluateCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    argv,
    {
      weights: { type: 'string' },
      labels: { type: 'string' },
      'class-map': { type: 'string' },
      'image-size': { type: 'string' },
      crop: { type: 'string' },
      out: { type: 'string' },
      'subject-pattern': { type: 'string' },
      ...ENGINE_OPTIONS,
      'no-explain': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('evaluate takes exactly one dataset folder');
  if (values.weights === undefined) throw new UsageError('evaluate needs --weights FILE|RUN');
  let labels;
  let classMap;
  try {
    labels = parseLabelChoice(values.labels ?? 'auto');
    classMap = values['class-map'] === undefined ? undefined : parseClassMap(values['class-map']);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const progress = stderrProgress();
  const controller = abortOnInterrupt();
  let result;
  try {
    result = await evaluateModel({
      dataset: positionals[0],
      weights: resolve(values.weights),
      labels,
      classMap,
      imageSize:
        values['image-size'] === undefined ? undefined : integerOption(values['image-size'], 'image-size', 0, 32),
      crop: values.crop === undefined ? undefined : oneOf<CropMode>(values.crop, 'crop', CROPS, 'none'),
      out: values.out,
      subjectPattern: values['subject-pattern'],
      ...engineFlags(values),
      explain: !values['no-explain'],
      signal: controller.signal,
      onProgress: (phase, done, total, eta) => progress(describePhaseProgress(phase, done, total, eta)),
      onLog: logToStderr,
    });
  } catch (error) {
    endProgress();
    if (controller.signal.aborted) {
      process.stderr.write('leukemia-audit: evaluation cancelled\n');
      return 130;
    }
    if (error instanceof LabelChoiceError || error instanceof ClassMapError) {
      process.stderr.write(`leukemia-audit: ${error.message}\n`);
      return 3;
    }
    throw error;
  }
  endProgress();
  const { run, runDir, report } = result;
  process.stderr.write(`${describeCheckpoint(run.evaluation!.checkpoint)}\n`);
  process.stderr.write(`Evaluation run ${runDir}${report ? `, report ${report}` : ''}\n`);
  if (values.json) process.stdout.write(JSON.stringify(run, null, 2) + '\n');
  else process.stdout.write(`${formatEvaluation(run)}\n${run.metrics.test ? `${formatMetrics(run)}\n` : ''}`);
  return 0;
}
