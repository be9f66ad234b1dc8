/**
 * The batch-effect probe: can the fold, site, batch or date be told from the pixels? Frozen ResNet-18
 * features of every image (features.ts) go into a multinomial logistic regression (logistic.ts),
 * cross-validated by subject (crossValidate.ts), once to predict the structural group and once the diagnosis.
 * A group predictable far above chance is a batch effect: a model trained on these images can learn the
 * group instead of the disease, and look accurate wherever the groups and the classes are entangled. The
 * finding `group-predictable` says so with the figures; the run folder (`kind: "probe"`) holds everything for
 * the results view and the HTML report.
 *
 * The CLI (`leukemia-audit probe`) and the extension (through the trainer child) are thin shells around it.
 */
import { rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Grouping } from '../audit/confounding.js';
import { sortFindings, type Finding } from '../audit/findings.js';
import { prepareImages } from '../data/cache.js';
import { selectBackend } from '../engine/backend.js';
import { chooseInferenceEngine } from '../engine/choose.js';
import type { Labeler } from '../labels.js';
import { disposeModel, FEATURE_WIDTH } from '../model/resnet18.js';
import { writeRunReport } from '../report/htmlReport.js';
import { clearRun, createRunFolder, openOutFolder } from '../run/claim.js';
import { RUN_SCHEMA, RUN_SCHEMA_VERSION, type ProbeTargetResult, type RunFile } from '../run/runFile.js';
import { writeRunFile } from '../run/runFileIo.js';
import { runFolderName } from '../run/runFolders.js';
import { torchFeatureComputer } from '../torch/inferenceJobs.js';
import { DEFAULT_SETTINGS, type BackendChoice, type CropMode, type LabelChoice } from '../train/settings.js';
import {
  crossValidateProbe,
  TooFewUnitsError,
  DEFAULT_FOLDS,
  DEFAULT_RESAMPLES,
  type CrossValidatedProbe,
} from './crossValidate.js';
import { judgedDataset } from '../evaluate/judgedDataset.js';
import { AUTO_WEIGHTS, defaultFeatureCacheDir, featureTable, loadFeatureBackbone } from './features.js';
import { resolveGrouping, type GroupChoice } from './groupChoice.js';
import { DEFAULT_PROBE_C } from './logistic.js';

/** Input side: enough for stain, brightness and texture, a quarter of 224 px's inference time. */
export const DEFAULT_PROBE_IMAGE_SIZE = 128;
/** Chance-corrected balanced accuracy from which a group is "predictable": a fifth of the way from chance to perfect. */
export const PREDICTABLE_MIN_KAPPA = 0.2;

export type ProbePhase = 'audit' | 'prepare' | 'features' | 'probe' | 'report';

export interface ProbeOptions {
  dataset: string;
  /** `auto` (default): ImageNet when available, else a random backbone; `imagenet`, `none`, a checkpoint or run. */
  weights?: string;
  group?: GroupChoice;
  /** The diagnosis; `auto` (default): the audit's recommendation. */
  labels?: LabelChoice;
  imageSize?: number;
  crop?: CropMode;
  /** Run folder (default `<dataset>/../leukemia-audit-runs/run-…`, created exclusively). */
  out?: string;
  /** Replace a run already in `out`. */
  force?: boolean;
  subjectPattern?: string;
  /** `auto` (default): see `chooseInferenceEngine` (PyTorch on a GPU, else the embedded onnxruntime engine). */
  backend?: BackendChoice;
  /** PyTorch engine: the interpreter (else `pythonFromEditor`, then python3 and python on PATH). */
  python?: string;
  pythonFromEditor?: string;
  /** PyTorch engine: `auto` (CUDA, else MPS, else CPU), `cpu`, `cuda`, `cuda:N`, `mps`. */
  device?: string;
  seed?: number;
  /** The user cache folder's `leukemia-audit` (default: the OS's); images in `images/`, features in `features/`. */
  cacheDir?: string;
  /** Write report.html (default true; needs the built webview bundle). */
  report?: boolean;
  signal?: AbortSignal;
  /** `done`/`total` within the phase; `etaSeconds` while features are computed. */
  onProgress?: (phase: ProbePhase, done: number, total: number, etaSeconds?: number) => void;
  onLog?: (level: 'info' | 'warning', message: string) => void;
}

export interface ProbeRunResult {
  runDir: string;
  run: RunFile;
  report: string | undefined;
}

export async function probeDataset(options: ProbeOptions): Promise<ProbeRunResult> {
  const started = performance.now();
  const log = options.onLog ?? (() => undefined);
  const progress = options.onProgress ?? (() => undefined);
  const seconds = { audit: 0, prepare: 0, features: 0, probes: 0, total: 0 };
  const lap = (phase: keyof typeof seconds, since: number) => (seconds[phase] = (performance.now() - since) / 1000);
  const root = resolve(options.dataset);
  const seed = options.seed ?? DEFAULT_SETTINGS.seed;
  const imageSize = options.imageSize ?? DEFAULT_PROBE_IMAGE_SIZE;
  const crop = options.crop ?? 'none';
  const weights = options.weights ?? AUTO_WEIGHTS;

  let phaseStart = performance.now();
  progress('audit', 0, 1);
  const {
    report,
    scan,
    csvTables,
    imagePaths: paths,
    labelChoice,
    labels,
    labelOf,
    subjectOf,
  } = await judgedDataset(root, options);
  const grouping = resolveGrouping(options.group ?? 'auto', scan.images, csvTables, report, labels.sources);
  const used = paths.filter((p) => labelOf(p) !== undefined || grouping?.groupOf(p) !== undefined);
  if (used.length === 0)
    throw new Error(`${root}: no image has a label or a group to probe (the audit found no labels and no grouping)`);
  progress('audit', 1, 1);
  lap('audit', phaseStart);

  // Claim the run folder before the long part, so a taken --out fails at once.
  const runDir = options.out
    ? resolve(options.out)
    : await createRunFolder(join(root, '..', 'leukemia-audit-runs'), runFolderName(new Date()));
  if (options.out) {
    await openOutFolder(runDir, { resume: false, force: options.force === true });
    // Replaced: nothing of the old run (a model, its Grad-CAM) may pass for part of the probe.
    if (options.force) await clearRun(runDir);
  }

  try {
    // The features are computed on the chosen engine; the backbone is loaded by the embedded one.
    const engine = await chooseInferenceEngine(options, (event) => {
      if (event.type === 'log') log('info', event.message);
    });
    let backend = engine.kind === 'tfjs' ? engine.backend : await selectBackend('auto');
    const cacheBase = options.cacheDir;
    phaseStart = performance.now();
    const prepared = await prepareImages(root, used, {
      size: imageSize,
      crop,
      cacheDir: cacheBase ? join(cacheBase, 'images') : undefined,
      signal: options.signal,
      onProgress: (done, total) => progress('prepare', done, total),
    });
    for (const entry of prepared.skipped) log('warning', `Skipped ${entry.path}: ${entry.detail}`);
    const rows = used.filter((p) => prepared.keys.has(p));
    lap('prepare', phaseStart);

    phaseStart = performance.now();
    const backbone = await loadFeatureBackbone(weights, {
      seed,
      signal: options.signal,
      onLog: (message) => log('warning', message),
    });
    const featureCache = cacheBase ? join(cacheBase, 'features') : defaultFeatureCacheDir();
    let table;
    try {
      const computeStart = performance.now();
      const compute =
        engine.kind === 'torch'
          ? torchFeatureComputer(backbone.params, prepared, {
              interpreter: engine.interpreter,
              device: options.device ?? DEFAULT_SETTINGS.device,
              signal: options.signal,
              onLog: (message) => log('info', message),
              onEngine: (torch) => (backend = { name: 'torch', skipped: engine.skipped, torch }),
            })
          : undefined;
      table = await featureTable(prepared, rows, backbone, {
        cacheDir: featureCache,
        signal: options.signal,
        compute,
        onProgress: (done, total, computed) => {
          const elapsed = (performance.now() - computeStart) / 1000;
          const eta = computed > 0 ? (elapsed / computed) * (total - done) : undefined;
          progress('features', done, total, eta);
        },
      });
    } finally {
      disposeModel(backbone.params);
    }
    lap('features', phaseStart);
    if (table.fromCache > 0)
      log('info', `${table.fromCache} of ${rows.length} images' features came from the cache (${featureCache}).`);

    phaseStart = performance.now();
    const subjects = rows.map((p) => subjectOf(p));
    const diagnosisWords = { one: 'diagnosis', many: 'diagnoses' };
    const targets: ProbeTarget[] = [];
    if (grouping)
      targets.push({
        target: 'group',
        source: grouping.where,
        one: grouping.one,
        many: grouping.many,
        of: grouping.groupOf,
      });
    targets.push({ target: 'diagnosis', source: describeLabels(labelChoice), ...diagnosisWords, of: labelOf });
    const results = await probeTargets(targets, {
      rows,
      features: table.features,
      subjects,
      seed,
      signal: options.signal,
      progress,
      log,
    });
    lap('probes', phaseStart);

    const group = results.find((r) => r.target === 'group') ?? null;
    const diagnosis = results.find((r) => r.target === 'diagnosis') ?? null;
    const finding = group && group.predictable ? groupPredictableFinding(group, grouping!, rows) : null;
    const notes = probeNotes(backbone.pretrained, grouping, options.group ?? 'auto', results);
    for (const note of notes) log('info', note);
    const classes = diagnosis?.classes ?? [];
    const now = new Date().toISOString();
    seconds.total = (performance.now() - started) / 1000;
    const run: RunFile = {
      schema: RUN_SCHEMA,
      version: RUN_SCHEMA_VERSION,
      kind: 'probe',
      createdAt: now,
      updatedAt: now,
      status: 'completed',
      error: null,
      settings: {
        ...DEFAULT_SETTINGS,
        dataset: root,
        out: runDir,
        labels: labelChoice,
        epochs: 0,
        imageSize,
        crop,
        weights,
        seed,
        backend: options.backend ?? 'auto',
        subjectPattern: options.subjectPattern,
        python: options.python,
        device: options.device ?? DEFAULT_SETTINGS.device,
      },
      backend,
      dataset: {
        root,
        spec: { ...report.spec, labelSources: labels.sources },
        findings: sortFindings([...report.findings, ...(finding ? [finding] : [])]),
        labelsAreStructural: labels.structural,
        classes,
        // Nothing is split for training: the probe's own folds are in `probe`.
        splits: [],
        skipped: [...report.unreadable, ...prepared.skipped],
        notes,
      },
      model: { architecture: 'resnet18', imageSize, numClasses: classes.length, parameters: 0, weightsFile: '' },
      history: [],
      bestEpoch: null,
      metrics: { validation: null, test: null },
      predictions: [],
      explanations: null,
      probe: {
        backbone: {
          weights,
          description: backbone.description,
          pretrained: backbone.pretrained,
          sha256: backbone.sha256,
          checkpoint: backbone.checkpoint,
        },
        imageSize,
        crop,
        featureDimension: FEATURE_WIDTH,
        method: {
          classifier: 'multinomial logistic regression, L2 penalty, standardised features (L-BFGS)',
          C: DEFAULT_PROBE_C,
          folds: DEFAULT_FOLDS,
          resamples: DEFAULT_RESAMPLES,
          level: 0.95,
          minKappa: PREDICTABLE_MIN_KAPPA,
        },
        group,
        diagnosis,
        finding,
        notes,
        cache: { folder: featureCache, fromCache: table.fromCache, computed: table.computed },
        seconds,
      },
    };
    await writeRunFile(runDir, run);

    let reportFile: string | undefined;
    if (options.report !== false) {
      progress('report', 0, 1);
      reportFile = await writeRunReport(runDir, (message) => log('warning', message));
      progress('report', 1, 1);
    }
    return { runDir, run, report: reportFile };
  } catch (error) {
    // A probe that failed or was cancelled leaves no empty run folder behind (rmdir refuses a non-empty one).
    await rmdir(runDir).catch(() => undefined);
    throw error;
  }
}

/** What one probe predicts: the group or the diagnosis, worded for the verdict, and its value per image. */
interface ProbeTarget {
  target: 'group' | 'diagnosis';
  source: string;
  one: string;
  many: string;
  of: Labeler;
}

/** Cross-validates a probe per target; a target with fewer than two values or units is skipped with a warning. */
async function probeTargets(
  targets: ProbeTarget[],
  context: {
    rows: string[];
    features: Float32Array;
    subjects: (string | undefined)[];
    seed: number;
    signal?: AbortSignal;
    progress: NonNullable<ProbeOptions['onProgress']>;
    log: NonNullable<ProbeOptions['onLog']>;
  },
): Promise<ProbeTargetResult[]> {
  const { rows, log } = context;
  const results: ProbeTargetResult[] = [];
  for (const [index, target] of targets.entries()) {
    const classes = [...new Set(rows.map(target.of).filter((v): v is string => v !== undefined))].sort();
    if (classes.length < 2) {
      log('warning', `Not probing the ${target.one}: the images have ${classes.length === 1 ? 'only one' : 'none'}.`);
      continue;
    }
    const cv = await crossValidateProbe({
      features: context.features,
      dimension: FEATURE_WIDTH,
      labels: Int32Array.from(rows, (p) => {
        const value = target.of(p);
        return value === undefined ? -1 : classes.indexOf(value);
      }),
      classes,
      subjects: context.subjects,
      seed: context.seed,
      signal: context.signal,
      onFold: (done, total) => context.progress('probe', index * total + done, targets.length * total),
    }).catch((error) => {
      if (!(error instanceof TooFewUnitsError)) throw error;
      log('warning', `Not probing the ${target.one}: ${error.message}.`);
      return undefined;
    });
    if (cv) results.push(judge(target, cv));
  }
  return results;
}

function describeLabels(choice: LabelChoice): string {
  return choice === 'auto' ? 'the audit\u2019s recommended labels' : `--labels ${choice}`;
}

/** Predictable far above chance, and the sentence that says how well. */
function judge(target: ProbeTarget, cv: CrossValidatedProbe): ProbeTargetResult {
  const kappa = (cv.balancedAccuracy - cv.chance) / (1 - cv.chance);
  const predictable = cv.interval.lower > cv.chance && kappa >= PREDICTABLE_MIN_KAPPA;
  const figures = describeFigures(cv);
  const verdict = predictable
    ? `the ${target.one} can be predicted from the pixels at ${figures}`
    : `the ${target.one} cannot be predicted from the pixels much better than chance: ${figures}`;
  // Only the words: the labeler stays behind (run.json and the channel carry data, not functions).
  const { target: kind, source, one, many } = target;
  return { ...cv, target: kind, source, one, many, predictable, verdict };
}

/** "balanced accuracy 0.81 (chance 0.33, 95% CI 0.74–0.87)". */
export function describeFigures(cv: CrossValidatedProbe): string {
  const f = (x: number) => x.toFixed(2);
  return `balanced accuracy ${f(cv.balancedAccuracy)} (chance ${f(cv.chance)}, ${Math.round(cv.interval.level * 100)}% CI ${f(cv.interval.lower)}\u2013${f(cv.interval.upper)})`;
}

function groupPredictableFinding(group: ProbeTargetResult, grouping: Grouping, rows: string[]): Finding {
  const byImage = group.unit === 'subject' ? 'on subjects it never saw' : 'on images it never saw (no subject ids)';
  return {
    code: 'group-predictable',
    severity: 'warning',
    message:
      `The ${group.one} can be predicted from the pixels at ${describeFigures(group)}, ${byImage}: ` +
      `a model can learn the ${group.one} instead of the disease. The ${group.many} (${grouping.where}) differ in ` +
      `how the images look (stain, brightness, scanner, day); validate across ${group.many} (hold one out) and ` +
      `compare per-${group.one} metrics.`,
    evidence: {
      ...grouping.evidence,
      balancedAccuracy: round(group.balancedAccuracy),
      chance: round(group.chance),
      interval: { level: group.interval.level, lower: round(group.interval.lower), upper: round(group.interval.upper) },
      perClass: group.perClass,
      confusion: { classes: group.classes, counts: group.confusion },
      unit: group.unit,
      folds: group.folds,
      images: group.images,
    },
    paths: group.classes
      .map((name) => rows.find((p) => grouping.groupOf(p) === name))
      .filter((p): p is string => p !== undefined)
      .slice(0, 20),
  };
}

function round(x: number): number {
  return Number(x.toFixed(4));
}

/** What the reader must know to weigh the figures. */
function probeNotes(
  pretrained: boolean,
  grouping: Grouping | undefined,
  choice: GroupChoice,
  results: ProbeTargetResult[],
): string[] {
  const notes: string[] = [];
  if (!pretrained)
    notes.push(
      'No pretrained weights were used (no ImageNet weights available offline): the features come from a random ' +
        'ResNet-18, which sees colour, brightness and coarse texture but little shape, so the probe is weaker — a ' +
        'group it cannot predict may still be predictable by a trained model. Put the ImageNet weights in the cache ' +
        '(see --weights imagenet) for a stronger probe.',
    );
  if (!grouping)
    notes.push(
      choice === 'auto'
        ? 'The audit found no structural grouping (fold, site, batch or date folders, or a group column): only the diagnosis was probed. Name one with --group folder:N or csv:COLUMN.'
        : 'The grouping given has no values on these images: only the diagnosis was probed.',
    );
  for (const r of results) {
    if (r.unit === 'image')
      notes.push(
        `No subject ids for the ${r.one} probe: it was cross-validated by image, so a probe can recognise a patient across folds and the figures may be optimistic (give --subject-pattern).`,
      );
    if (r.singleUnitClasses.length > 0)
      notes.push(
        `${r.singleUnitClasses.join(', ')} ${r.singleUnitClasses.length === 1 ? 'has' : 'have'} a single ${r.unit}: held out, the probe never saw that ${r.one}, so its recall is 0 by construction.`,
      );
  }
  return notes;
}
