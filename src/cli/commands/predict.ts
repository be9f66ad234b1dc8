import { resolve } from 'node:path';
import { CROPS } from '../../core/train/settings.js';
import { selectBackend } from '../../core/engine/backend.js';
import { loadModel, modelEngine, predictFiles, type LoadedModel } from '../../core/explain/predict.js';
import { describeEngine } from '../../core/infer/engine.js';
import { disposeModel } from '../../core/model/resnet18.js';
import { describeCheckpoint } from '../../core/weights/checkpoint.js';
import { UsageError, integerOption, oneOf, parseCommandArgs } from '../usage.js';

const HELP = `Usage: leukemia-audit predict --weights FILE|RUN [--image-size S] [--crop none|center|cell] [--json] IMAGE...

Classifies images with a trained ResNet-18, preprocessing them exactly as training did.

  --weights FILE|RUN   a run folder (its run.json names the classes, image size and crop), or any ResNet-18
                       checkpoint: .pth/.pt (state dict, training checkpoint or whole model, never executed)
                       or .safetensors; what was recognised is printed on stderr
  --image-size S       network input side (default: the size the model was trained at; 224 when unknown)
  --crop none|center|cell   (default: the run's crop, or the file's metadata, or none)
  --json               print only JSON on stdout: per image probabilities and logits`;

/** Options shared by predict and explain: which model, and how to preprocess for it. */
export const MODEL_OPTIONS = {
  weights: { type: 'string' },
  'image-size': { type: 'string' },
  crop: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Loads the model a command names and says on stderr when preprocessing departs from training. */
export async function loadModelForCommand(
  source: string,
  values: { 'image-size'?: string; crop?: string },
): Promise<LoadedModel> {
  const imageSize =
    values['image-size'] === undefined ? undefined : integerOption(values['image-size'], 'image-size', 0, 32);
  const crop = values.crop === undefined ? undefined : oneOf(values.crop, 'crop', CROPS, 'none');
  const model = await loadModel(resolve(source), { imageSize, crop });
  process.stderr.write(`${describeCheckpoint(model.checkpoint)}\n`);
  if (model.trainedImageSize !== undefined && model.imageSize !== model.trainedImageSize) {
    process.stderr.write(
      `note: the model was trained at ${model.trainedImageSize} px; predicting at ${model.imageSize} px changes its answers\n`,
    );
  } else if (model.trainedImageSize === undefined && imageSize === undefined) {
    process.stderr.write(
      `note: the checkpoint does not say its input size; using ${model.imageSize} px (torchvision's). Give --image-size if it was trained at another\n`,
    );
  }
  return model;
}

export async function predictCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(argv, MODEL_OPTIONS, HELP);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (values.weights === undefined) throw new UsageError('predict needs --weights FILE|RUN');
  if (positionals.length === 0) throw new UsageError('predict needs at least one image');
  const backend = await selectBackend('auto');
  const model = await loadModelForCommand(values.weights, values);
  try {
    const engine = await modelEngine(model);
    process.stderr.write(`${describeEngine(engine)}\n`);
    const predictions = await predictFiles(model, positionals, { engine }).finally(() => engine.dispose());
    if (values.json) {
      const output = {
        weights: model.weightsFile,
        checkpoint: model.checkpoint,
        classes: model.classes,
        imageSize: model.imageSize,
        crop: model.crop,
        backend: backend.name,
        inference: engine.kind,
        images: predictions.map((p) => ({
          path: p.path,
          predicted: p.predicted,
          predictedClass: model.classes[p.predicted],
          probabilities: p.probabilities,
          logits: p.logits,
        })),
      };
      process.stdout.write(JSON.stringify(output, null, 2) + '\n');
    } else {
      for (const p of predictions) {
        const probabilities = model.classes.map((name, c) => `${name} ${p.probabilities[c].toFixed(4)}`).join('  ');
        process.stdout.write(
          `${p.path}: ${model.classes[p.predicted]} (${probabilities}; logits ${p.logits.map((l) => l.toFixed(3)).join(', ')})\n`,
        );
      }
    }
  } finally {
    disposeModel(model.params);
  }
  return 0;
}
