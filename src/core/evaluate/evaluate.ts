/**
 * Evaluates any ResNet-18 checkpoint on a dataset's TRUE labels and writes an evaluation run folder: the
 * same run.json as training (`kind: "evaluation"`, no history) with metrics, confusion matrix, per-image
 * predictions, per-subject accuracy, the Grad-CAM gallery and its checks, and the HTML report. The labels
 * are the audit's recommendation unless told otherwise — never the structural folders a notebook trained
 * on — so a fold model is judged on ALL vs HEM. When the model's outputs are not the dataset's classes,
 * the association of outputs with labels (association.ts) says whether they carry any information at all.
 *
 * The CLI (`leukemia-audit evaluate`) and the extension are thin shells around `evaluateModel`.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { summariseSplits, type SplitName } from '../data/splits.js';
import { runFolderName } from '../run/runFolders.js';
import { selectBackend } from '../engine/backend.js';
import { chooseInferenceEngine } from '../engine/choose.js';
import { explainRun } from '../explain/runExplanations.js';
import { loadModel, modelEngine, predictFiles, type ImagePrediction } from '../explain/predict.js';
import { describeEngine } from '../infer/engine.js';
import { computeClassificationMetrics } from '../metrics.js';
import { countParameters, disposeModel } from '../model/resnet18.js';
import { exportStateDict } from '../model/stateDict.js';
import { writeRunReport } from '../report/htmlReport.js';
import {
  MODEL_FILE,
  RUN_SCHEMA,
  RUN_SCHEMA_VERSION,
  type Prediction,
  type RunFile,
  type SubjectAccuracy,
} from '../run/runFile.js';
import { writeRunFile } from '../run/runFileIo.js';
import { DEFAULT_SETTINGS, type BackendChoice, type CropMode, type LabelChoice } from '../train/settings.js';
import { explanationLayer } from '../train/train.js';
import { predictWithTorch } from '../torch/inferenceJobs.js';
import type { UnreadableEntry } from '../types.js';
import { writeSafetensors, type HostTensor } from '../weights/safetensors.js';
import { contingencyTable, outputAssociation } from './association.js';
import { mapOutputs } from './classMap.js';
import { judgedDataset } from './judgedDataset.js';

export { REPORT_FILE } from '../report/htmlReport.js';

/** `prepare`: images decoded and resized into the image cache, for the PyTorch engine only. */
export type EvaluatePhase = 'audit' | 'prepare' | 'predict' | 'explain' | 'report';

export interface EvaluateOptions {
  /** Dataset folder. */
  dataset: string;
  /** A checkpoint file (.pth, .pt, .safetensors) or a run folder. */
  weights: string;
  /** `auto` (default): the audit's recommended labels, even when the folders are structural. */
  labels?: LabelChoice;
  /** Network input side (default: what the run or file records, else 224). */
  imageSize?: number;
  crop?: CropMode;
  /** Output name (or index) → class name; needed when the outputs are classes under other names. */
  classMap?: ReadonlyMap<string, string>;
  /** Evaluation run folder (default `<dataset>/../leukemia-audit-runs/run-…`). */
  out?: string;
  subjectPattern?: string;
  /** `auto` (default): see `chooseInferenceEngine` (PyTorch on a GPU, else the embedded onnxruntime engine). */
  backend?: BackendChoice;
  /** PyTorch engine: the interpreter (else `pythonFromEditor`, then python3 and python on PATH). */
  python?: string;
  pythonFromEditor?: string;
  /** PyTorch engine: `auto` (CUDA, else MPS, else CPU), `cpu`, `cuda`, `cuda:N`, `mps`. */
  device?: string;
  /** Grad-CAM gallery (default true); only for models whose outputs are the classes. */
  explain?: boolean;
  /** Write report.html (default true; needs the built webview bundle). */
  report?: boolean;
  batchSize?: number;
  signal?: AbortSignal;
  /** `etaSeconds` while images are predicted. */
  onProgress?: (phase: EvaluatePhase, done: number, total: number, etaSeconds?: number) => void;
  onLog?: (level: 'info' | 'warning', message: string) => void;
}

export interface EvaluationResult {
  runDir: string;
  run: RunFile;
  /** The HTML report, when written. */
  report: string | undefined;
}

export async function evaluateModel(options: EvaluateOptions): Promise<EvaluationResult> {
  const log = options.onLog ?? (() => undefined);
  const progress = options.onProgress ?? (() => undefined);
  const root = resolve(options.dataset);
  const runDir = resolve(options.out ?? join(root, '..', 'leukemia-audit-runs', runFolderName(new Date())));

  progress('audit', 0, 1);
  const { report, imagePaths, labelChoice, labels, labelOf, subjectOf } = await judgedDataset(root, options);
  if (labels.sources.length === 0)
    throw new Error(
      `The audit found no labels in ${root}; say where they are with --labels folder:N, filename or csv:FILE`,
    );
  if (labels.structural)
    log('warning', 'Evaluating on labels the audit judged structural (folds, splits or batches), not the diagnosis.');
  const labelled = imagePaths.filter((path) => labelOf(path) !== undefined);
  const classes = [...new Set(labelled.map((path) => labelOf(path)!))].sort();
  if (classes.length < 2)
    throw new Error(`Evaluation needs at least two classes; the labels give ${classes.length} (${classes.join(', ')})`);
  progress('audit', 1, 1);

  // The predictions run on the chosen engine; the model is loaded, and Grad-CAM computed, by the embedded one.
  const engine = await chooseInferenceEngine(options, (event) => {
    if (event.type === 'log') log('info', event.message);
  });
  let backend = engine.kind === 'tfjs' ? engine.backend : await selectBackend('auto');
  const model = await loadModel(options.weights, { imageSize: options.imageSize, crop: options.crop });
  let run: RunFile;
  try {
    const outputs = model.classes;
    const mapped = mapOutputs(outputs, classes, options.classMap);
    let predictions: ImagePrediction[];
    let skipped: UnreadableEntry[];
    if (engine.kind === 'torch') {
      const torch = await predictWithTorch(model, root, labelled, {
        interpreter: engine.interpreter,
        device: options.device ?? DEFAULT_SETTINGS.device,
        batchSize: options.batchSize,
        signal: options.signal,
        onProgress: progress,
        onLog: (message) => log('info', message),
      });
      ({ predictions, skipped } = torch);
      backend = { name: 'torch', skipped: engine.skipped, torch: torch.engine };
    } else ({ predictions, skipped } = await predictAll(model, root, labelled, options, progress));
    for (const entry of skipped) log('warning', `Skipped ${entry.path}: ${entry.detail}`);
    const trueOf = predictions.map(({ path }) => classes.indexOf(labelOf(path)!));
    const outputOf = predictions.map((p) => p.predicted);
    const association = outputAssociation(
      outputs,
      classes,
      contingencyTable(outputOf, trueOf, outputs.length, classes.length),
    );

    const runPredictions: Prediction[] = [];
    if (mapped) {
      const classOfOutput = mapped.mapping;
      predictions.forEach((p, i) => {
        const probabilities = new Array<number>(classes.length).fill(0);
        p.probabilities.forEach((value, o) => (probabilities[classOfOutput[o]] = value));
        runPredictions.push({
          path: p.path,
          split: 'test',
          subject: subjectOf(p.path) ?? null,
          true: trueOf[i],
          predicted: classOfOutput[p.predicted],
          probabilities,
        });
      });
    }
    const splitOf = new Map(predictions.map((p) => [p.path, 'test' as SplitName]));
    await mkdir(runDir, { recursive: true });
    await writeSafetensors(join(runDir, MODEL_FILE), reorderedStateDict(model.params, mapped?.mapping), {
      format: 'pt',
      classes: JSON.stringify(mapped ? classes : outputs),
      imageSize: String(model.imageSize),
      crop: model.crop,
      source: model.weightsFile,
      sourceSha256: model.checkpoint.sha256,
    });
    const now = new Date().toISOString();
    run = {
      schema: RUN_SCHEMA,
      version: RUN_SCHEMA_VERSION,
      kind: 'evaluation',
      createdAt: now,
      updatedAt: now,
      status: 'running',
      error: null,
      settings: {
        ...DEFAULT_SETTINGS,
        dataset: root,
        out: runDir,
        labels: labelChoice,
        epochs: 0,
        imageSize: model.imageSize,
        crop: model.crop,
        weights: resolve(options.weights),
        backend: options.backend ?? 'auto',
        subjectPattern: options.subjectPattern,
        python: options.python,
        device: options.device ?? DEFAULT_SETTINGS.device,
      },
      backend,
      dataset: {
        root,
        spec: { ...report.spec, labelSources: labels.sources },
        findings: report.findings,
        labelsAreStructural: labels.structural,
        classes,
        splits: summariseSplits(splitOf, labelOf, subjectOf),
        skipped: [...report.unreadable, ...skipped],
        notes: mapped
          ? []
          : [
              `The model's outputs (${outputs.join(', ')}) are not the dataset's classes (${classes.join(', ')}): ` +
                'no accuracy can be computed; the association of outputs with labels says what the outputs carry. ' +
                'If they are the classes under other names, give --class-map.',
            ],
      },
      model: {
        architecture: 'resnet18',
        imageSize: model.imageSize,
        numClasses: outputs.length,
        parameters: countParameters(model.params),
        weightsFile: MODEL_FILE,
      },
      history: [],
      bestEpoch: null,
      metrics: {
        validation: null,
        test: mapped
          ? computeClassificationMetrics({
              classes,
              yTrue: runPredictions.map((p) => p.true),
              probabilities: runPredictions.map((p) => p.probabilities),
            })
          : null,
      },
      predictions: runPredictions,
      explanations: null,
      evaluation: {
        checkpoint: model.checkpoint,
        outputs: [...outputs],
        mapping: mapped?.mapping ?? null,
        mappedBy: mapped?.by ?? null,
        labels: labelChoice,
        association,
        perSubject: mapped ? perSubjectAccuracy(runPredictions, classes) : [],
        outputsPerImage: mapped
          ? []
          : predictions.map((p, i) => ({
              path: p.path,
              subject: subjectOf(p.path) ?? null,
              true: trueOf[i],
              output: p.predicted,
              probabilities: p.probabilities,
            })),
      },
    };
    await writeRunFile(runDir, run);
  } finally {
    disposeModel(model.params);
  }

  try {
    if (options.explain !== false && run.predictions.length > 0) {
      try {
        run.explanations = await explainRun(runDir, {
          layer: explanationLayer(run.model.imageSize),
          seed: run.settings.seed,
          signal: options.signal,
          onProgress: (done, total) => progress('explain', done, total),
          onLog: (message) => log('warning', message),
        });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        log('warning', `Grad-CAM explanations could not be computed: ${(error as Error).message}`);
      }
    }
    run.status = 'completed';
    await writeRunFile(runDir, run);
  } catch (error) {
    run.status = options.signal?.aborted ? 'cancelled' : 'failed';
    run.error = (error as Error).message;
    await writeRunFile(runDir, run);
    throw error;
  }

  let reportFile: string | undefined;
  if (options.report !== false) {
    progress('report', 0, 1);
    reportFile = await writeRunReport(runDir, (message) => log('warning', message));
    progress('report', 1, 1);
  }
  return { runDir, run, report: reportFile };
}

/** Predictions for every labelled image through the predict path; unreadable images are skipped and named. */
async function predictAll(
  model: Awaited<ReturnType<typeof loadModel>>,
  root: string,
  paths: readonly string[],
  options: EvaluateOptions,
  progress: NonNullable<EvaluateOptions['onProgress']>,
): Promise<{ predictions: ImagePrediction[]; skipped: UnreadableEntry[] }> {
  const batchSize = options.batchSize ?? 16;
  const predictions: ImagePrediction[] = [];
  const skipped: UnreadableEntry[] = [];
  const relative = (prediction: ImagePrediction, path: string) => ({ ...prediction, path });
  const started = performance.now();
  progress('predict', 0, paths.length);
  const engine = await modelEngine(model);
  options.onLog?.('info', describeEngine(engine));
  try {
    for (let start = 0; start < paths.length; start += batchSize) {
      options.signal?.throwIfAborted();
      const chunk = paths.slice(start, start + batchSize);
      try {
        const batch = await predictFiles(
          model,
          chunk.map((path) => join(root, path)),
          { batchSize, engine },
        );
        batch.forEach((prediction, i) => predictions.push(relative(prediction, chunk[i])));
      } catch {
        // One unreadable image fails its batch: retry image by image to keep the others.
        for (const path of chunk) {
          try {
            predictions.push(relative((await predictFiles(model, [join(root, path)], { engine }))[0], path));
          } catch (error) {
            skipped.push({ path, reason: 'corrupt', detail: (error as Error).message });
          }
        }
      }
      const done = Math.min(paths.length, start + batchSize);
      const seconds = (performance.now() - started) / 1000;
      progress('predict', done, paths.length, (seconds / done) * (paths.length - done));
      await new Promise((next) => setImmediate(next));
    }
  } finally {
    await engine.dispose();
  }
  return { predictions, skipped };
}

/** The model's state dict with the classifier's rows in dataset-class order, so run folders need no mapping. */
function reorderedStateDict(
  params: Parameters<typeof exportStateDict>[0],
  mapping: readonly number[] | undefined,
): Map<string, HostTensor> {
  const dict = exportStateDict(params);
  if (!mapping) return dict;
  const weight = dict.get('fc.weight')!;
  const bias = dict.get('fc.bias')!;
  const width = weight.shape[1];
  const newWeight = new Float32Array(weight.data.length);
  const newBias = new Float32Array(bias.data.length);
  mapping.forEach((c, o) => {
    newWeight.set((weight.data as Float32Array).subarray(o * width, (o + 1) * width), c * width);
    newBias[c] = (bias.data as Float32Array)[o];
  });
  dict.set('fc.weight', { shape: weight.shape, data: newWeight });
  dict.set('fc.bias', { shape: bias.shape, data: newBias });
  return dict;
}

export function perSubjectAccuracy(predictions: readonly Prediction[], classes: readonly string[]): SubjectAccuracy[] {
  const bySubject = new Map<string, SubjectAccuracy>();
  for (const p of predictions) {
    if (p.subject === null) continue;
    let entry = bySubject.get(p.subject);
    if (!entry)
      bySubject.set(p.subject, (entry = { subject: p.subject, images: 0, correct: 0, accuracy: 0, byClass: {} }));
    entry.images++;
    if (p.predicted === p.true) entry.correct++;
    entry.byClass[classes[p.true]] = (entry.byClass[classes[p.true]] ?? 0) + 1;
  }
  return [...bySubject.values()]
    .map((entry) => ({ ...entry, accuracy: entry.correct / entry.images }))
    .sort((a, b) => a.accuracy - b.accuracy || a.subject.localeCompare(b.subject, undefined, { numeric: true }));
}
