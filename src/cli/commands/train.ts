import { resolve } from 'node:path';
import { LabelChoiceError, parseLabelChoice } from '../../core/train/labelChoice.js';
import {
  CROPS,
  DEFAULT_SETTINGS,
  OPTIMIZERS,
  SCHEDULES,
  SPLIT_CHOICES,
  STRATEGIES,
  type TrainSettings,
} from '../../core/train/settings.js';
import { describeEpoch, describeStart, formatDuration } from '../../core/train/progress.js';
import { trainRun } from '../../core/train/train.js';
import { formatMetrics } from '../report.js';
import {
  ENGINE_OPTIONS,
  UsageError,
  endProgress,
  engineFlags,
  integerOption,
  oneOf,
  parseCommandArgs,
  stderrProgress,
} from '../usage.js';

const HELP = `Usage: leukemia-audit train <dir> [options]

Audits <dir>, then trains ResNet-18 and writes a run folder (run.json, model.safetensors, checkpoint.safetensors).
Refuses labels the audit judges structural (e.g. fold folders) unless --labels says what to use.

  --out RUN                  run folder (default: a new <dir>/../leukemia-audit-runs/run-<time>[-N]);
                             refused when it holds a run, unless --resume or --force
  --labels auto|folder:N|filename|csv:FILE   where the labels are (default auto: the audit's recommendation)
  --epochs N                 (default ${DEFAULT_SETTINGS.epochs})
  --image-size S             side of the square network input (default ${DEFAULT_SETTINGS.imageSize})
  --batch-size B             (default ${DEFAULT_SETTINGS.batchSize})
  --strategy full|finetune|linear   which layers train (default ${DEFAULT_SETTINGS.strategy})
  --backend auto|torch|tensorflow|wasm|cpu   (default auto: your PyTorch if a usable interpreter is found,
                             else tensorflow if installed, else wasm)
  --python PATH              PyTorch engine: the interpreter (default: python3, then python, on PATH); needs
                             torch >= 1.13 and torchvision
  --device auto|cpu|cuda|cuda:N|mps   PyTorch engine's device (default auto: CUDA, else MPS, else CPU)
  --processes N|auto         PyTorch engine: DDP processes via torch.distributed.run (default auto: one per
                             CUDA device when there are several, else 1)
  --weights none|imagenet|PATH   initial weights (default none = random). imagenet = torchvision's ImageNet
                             ResNet-18, downloaded once to <cache>/leukemia-audit/weights (offline: put
                             resnet18-f37072fd.pth there; the error says how); PATH = a .pth or .safetensors
                             file, or a run folder (its model.safetensors). fc is re-initialised when the
                             class count differs. $LEUKEMIA_AUDIT_WEIGHTS_URL overrides the download URL.
  --optimizer adam|sgd  --lr X  --schedule cosine|step|constant  --patience N (0 = no early stopping)
  --crop none|center|cell    crop before resizing (default none)
  --split auto|subject-disjoint   auto = the audit's plan (folds, train/val/test folders, else subject-disjoint)
  --subject-pattern=RE       subject id pattern (default ^UID_(H?\\d+)_); write it with = when it starts with -
  --seed N                   (default ${DEFAULT_SETTINGS.seed})
  --workers N|auto           data-parallel ways over CPU cores (default auto: 2 on wasm at ≥ 96 px, else 1)
  --resume                   continue the run in --out from its last checkpoint
  --force                    replace the run in --out (its run.json, weights and explanations are removed)
  --json                     print only the final run.json on stdout`;

export async function trainCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    argv,
    {
      out: { type: 'string' },
      labels: { type: 'string' },
      epochs: { type: 'string' },
      'image-size': { type: 'string' },
      'batch-size': { type: 'string' },
      strategy: { type: 'string' },
      ...ENGINE_OPTIONS,
      weights: { type: 'string' },
      optimizer: { type: 'string' },
      lr: { type: 'string' },
      schedule: { type: 'string' },
      patience: { type: 'string' },
      crop: { type: 'string' },
      split: { type: 'string' },
      'subject-pattern': { type: 'string' },
      seed: { type: 'string' },
      workers: { type: 'string' },
      processes: { type: 'string' },
      resume: { type: 'boolean' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('train takes exactly one dataset folder');
  if (values.resume && !values.out) throw new UsageError('--resume needs --out RUN');
  if (values.force && !values.out) throw new UsageError('--force needs --out RUN');
  if (values.force && values.resume) throw new UsageError('--force replaces the run that --resume continues: pass one');
  let labels;
  try {
    labels = parseLabelChoice(values.labels ?? 'auto');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const learningRate = values.lr === undefined ? DEFAULT_SETTINGS.learningRate : Number(values.lr);
  if (!(learningRate > 0)) throw new UsageError(`--lr must be a positive number, got "${values.lr}"`);
  const settings: TrainSettings = {
    ...DEFAULT_SETTINGS,
    dataset: resolve(positionals[0]),
    out: values.out ? resolve(values.out) : undefined,
    labels,
    epochs: integerOption(values.epochs, 'epochs', DEFAULT_SETTINGS.epochs, 1),
    imageSize: integerOption(values['image-size'], 'image-size', DEFAULT_SETTINGS.imageSize, 32),
    batchSize: integerOption(values['batch-size'], 'batch-size', DEFAULT_SETTINGS.batchSize, 2),
    strategy: oneOf(values.strategy, 'strategy', STRATEGIES, DEFAULT_SETTINGS.strategy),
    optimizer: oneOf(values.optimizer, 'optimizer', OPTIMIZERS, DEFAULT_SETTINGS.optimizer),
    schedule: oneOf(values.schedule, 'schedule', SCHEDULES, DEFAULT_SETTINGS.schedule),
    crop: oneOf(values.crop, 'crop', CROPS, DEFAULT_SETTINGS.crop),
    split: oneOf(values.split, 'split', SPLIT_CHOICES, DEFAULT_SETTINGS.split),
    learningRate,
    patience: integerOption(values.patience, 'patience', DEFAULT_SETTINGS.patience),
    seed: integerOption(values.seed, 'seed', DEFAULT_SETTINGS.seed),
    workers: values.workers === 'auto' ? 0 : integerOption(values.workers, 'workers', DEFAULT_SETTINGS.workers, 1, 64),
    subjectPattern: values['subject-pattern'],
    ...engineFlags(values),
    processes:
      values.processes === undefined || values.processes === 'auto'
        ? DEFAULT_SETTINGS.processes
        : integerOption(values.processes, 'processes', 1, 1, 64),
    resume: values.resume ?? false,
    force: values.force ?? false,
    // An absolute path keeps run.json and the trainer process independent of the working directory.
    weights:
      values.weights === undefined || values.weights === 'none' || values.weights === 'imagenet'
        ? (values.weights ?? 'none')
        : resolve(values.weights),
  };
  const progress = stderrProgress();
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  let run;
  try {
    run = await trainRun(
      settings,
      (event) => {
        switch (event.type) {
          case 'started':
            process.stderr.write(`${describeStart(event)}\n`);
            break;
          case 'log':
            endProgress();
            process.stderr.write(`${event.level === 'info' ? '' : event.level + ': '}${event.message}\n`);
            break;
          case 'phase':
            progress(
              event.phase === 'weights'
                ? `downloading ImageNet weights ${(event.done / 1e6).toFixed(1)}/${(event.total / 1e6).toFixed(1)} MB`
                : `${event.phase} ${event.done}/${event.total}`,
            );
            break;
          case 'progress':
            progress(
              `epoch ${event.epoch}/${event.epochs} ${bar(event.batch / event.batches)} ${event.batch}/${event.batches} loss ${event.loss.toFixed(4)} acc ${event.accuracy.toFixed(3)} ${event.imagesPerSecond.toFixed(1)} img/s ETA ${formatDuration(event.etaSeconds)}`,
            );
            break;
          case 'epoch':
            endProgress();
            process.stderr.write(`${describeEpoch(event.record, event.best)}\n`);
            break;
        }
      },
      controller.signal,
    );
  } catch (error) {
    endProgress();
    if (error instanceof LabelChoiceError) {
      process.stderr.write(`leukemia-audit: refusing to train. ${error.message}\n`);
      return 3;
    }
    throw error;
  }
  endProgress();
  if (values.json) process.stdout.write(JSON.stringify(run, null, 2) + '\n');
  else process.stdout.write(formatMetrics(run) + '\n');
  return 0;
}

function bar(fraction: number, width = 20): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
