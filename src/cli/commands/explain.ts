import { join, resolve } from 'node:path';
import { selectBackend } from '../../core/engine/backend.js';
import { explainPixels, overlayPixels } from '../../core/explain/explainImages.js';
import { CAM_METHODS, DEFAULT_CAM_LAYER, resolveCamLayer, type CamMethod } from '../../core/explain/gradcam.js';
import { COLORMAPS, DEFAULT_COLORMAP, type ColormapName } from '../../core/explain/colormaps.js';
import { writePng } from '../../core/explain/overlay.js';
import { preprocessFile } from '../../core/explain/predict.js';
import { pngStem } from '../../core/explain/runExplanations.js';
import { disposeModel } from '../../core/model/resnet18.js';
import { UsageError, oneOf, parseCommandArgs } from '../usage.js';
import { MODEL_OPTIONS, loadModelForCommand } from './predict.js';

const HELP = `Usage: leukemia-audit explain (--run RUN | --weights FILE) [options] IMAGE...

Grad-CAM maps of a trained ResNet-18 for each image, written as overlays on the preprocessed image.

  --run RUN | --weights FILE   a run folder, or any ResNet-18 checkpoint (.pth, .pt, .safetensors)
  --layer L                    maxpool, layer1 … layer4 (default ${DEFAULT_CAM_LAYER}; layerN.1 = layerN)
  --class C                    class to explain, by name or index (default: the predicted class)
  --method gradcam|gradcam++   (default gradcam)
  --image-size S               network input side (default: the size the model was trained at; 224 when unknown)
  --crop none|center|cell      (default: the run's crop, or the file's metadata, or none)
  --colormap viridis|turbo|jet (default ${DEFAULT_COLORMAP}; viridis and turbo are perceptually ordered)
  --out DIR                    where the overlay PNGs go (default ./explanations)
  --json                       print only JSON on stdout: per image probabilities, logits, the raw map
                               (cam, layer resolution, rows top to bottom) and its background energy`;

/** A class by name, or by index when no class has that name. */
function classIndex(value: string, classes: readonly string[]): number {
  const named = classes.indexOf(value);
  if (named >= 0) return named;
  const index = Number(value);
  if (Number.isInteger(index) && index >= 0 && index < classes.length) return index;
  throw new UsageError(
    `--class must be one of ${classes.join(', ')} or an index from 0 to ${classes.length - 1}, got "${value}"`,
  );
}

export async function explainCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    argv,
    {
      ...MODEL_OPTIONS,
      run: { type: 'string' },
      layer: { type: 'string' },
      class: { type: 'string' },
      method: { type: 'string' },
      colormap: { type: 'string' },
      out: { type: 'string' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if ((values.run === undefined) === (values.weights === undefined))
    throw new UsageError('explain needs exactly one of --run RUN and --weights FILE');
  if (positionals.length === 0) throw new UsageError('explain needs at least one image');
  let layer;
  try {
    layer = resolveCamLayer(values.layer ?? DEFAULT_CAM_LAYER);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const method = oneOf<CamMethod>(values.method, 'method', CAM_METHODS, 'gradcam');
  const colormap = oneOf<ColormapName>(values.colormap, 'colormap', COLORMAPS, DEFAULT_COLORMAP);
  const out = resolve(values.out ?? 'explanations');

  const backend = await selectBackend('auto');
  const model = await loadModelForCommand((values.run ?? values.weights)!, values);
  try {
    const target = values.class === undefined ? undefined : classIndex(values.class, model.classes);
    const size = model.imageSize;
    const pixels = await Promise.all(positionals.map((file) => preprocessFile(file, { size, crop: model.crop })));
    const explanations = explainPixels(model.params, pixels, size, {
      layer,
      method,
      targets: target === undefined ? undefined : pixels.map(() => target),
    });
    const images = [];
    for (const [i, explanation] of explanations.entries()) {
      const overlay = join(out, `${String(i + 1).padStart(2, '0')}-${pngStem(positionals[i])}-${layer}-${method}.png`);
      await writePng(overlay, overlayPixels(pixels[i], explanation.upsampled, { colormap }), size, size);
      images.push({
        path: positionals[i],
        predicted: explanation.predicted,
        predictedClass: model.classes[explanation.predicted],
        explainedClass: explanation.explainedClass,
        probabilities: explanation.probabilities,
        logits: explanation.logits,
        cam: explanation.cam,
        backgroundEnergy: explanation.backgroundEnergy,
        overlay,
      });
    }
    if (values.json) {
      const output = {
        weights: model.weightsFile,
        checkpoint: model.checkpoint,
        classes: model.classes,
        imageSize: size,
        crop: model.crop,
        backend: backend.name,
        method,
        layer,
        colormap,
        images,
      };
      process.stdout.write(JSON.stringify(output, null, 2) + '\n');
    } else {
      for (const image of images) {
        process.stdout.write(
          `${image.path}: ${image.predictedClass} (${(100 * image.probabilities[image.predicted]).toFixed(1)} %), map of "${model.classes[image.explainedClass]}" ` +
            `${(100 * image.backgroundEnergy).toFixed(0)} % on the background → ${image.overlay}\n`,
        );
      }
    }
  } finally {
    disposeModel(model.params);
  }
  return 0;
}
