// The PyTorch trainer's preprocessing against ours, on the same files: decoding, crop (none, center, cell),
// resize, augmentation and normalisation. Both resample with area averaging when shrinking and bilinear
// interpolation (half-pixel centres, edges repeated) when enlarging, in float64 rounded once; they may
// differ by one level (1/255) where a sum lands within rounding error of .5, never more.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { augmentPixels, DEFAULT_AUGMENTATION } from '../src/core/data/batches.js';
import { IMAGENET_MEAN, IMAGENET_STD, normaliseInto, preprocessImage } from '../src/core/data/preprocess.js';
import type { CropMode } from '../src/core/train/settings.js';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { readImageFile } from '../src/core/image/decode.js';
import type { Rng } from '../src/core/random.js';
import { CROP_PARAMETERS } from '../src/core/torch/plan.js';
import { torchTrainerPath } from '../src/core/torch/runTrainer.js';
import { runPython } from './helpers/python.js';
import { torchForTests } from './helpers/torch.js';

let work: string;
let files: string[];
let skip: string | undefined;

before(async () => {
  const torch = await torchForTests();
  if ('skip' in torch) skip = torch.skip;
  work = await mkdtemp(join(tmpdir(), 'leukemia-torch-pre-'));
  const manifest = await generateDemoDataset(work, { imagesPerFold: 16, folds: 1, validationImages: 0, seed: 9 });
  const root = join(work, 'C-NMC_Leukemia');
  files = manifest.images.slice(0, 3).map((image) => join(root, image.path));
  // Formats and shapes the demo has not: non-square, grey, transparent, smaller than the network input.
  const cell = (width: number, height: number, channels: 1 | 3 | 4) => {
    const data = Buffer.alloc(width * height * channels);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const inside = (x - width * 0.55) ** 2 + (y - height * 0.45) ** 2 < (Math.min(width, height) * 0.3) ** 2;
        for (let c = 0; c < channels; c++)
          data[(y * width + x) * channels + c] =
            c === 3 ? (inside ? 255 : (x * 7) % 256) : inside ? (x * 3 + y * 5 + c * 40) % 256 : 0;
      }
    return sharp(data, { raw: { width, height, channels } });
  };
  const extra = {
    'wide.png': cell(300, 180, 3),
    'grey.png': cell(120, 120, 1),
    'alpha.png': cell(90, 110, 4),
    'small.png': cell(20, 20, 3),
  };
  for (const [name, image] of Object.entries(extra)) {
    await image.png().toFile(join(work, name));
    files.push(join(work, name));
  }
});
after(() => rm(work, { recursive: true, force: true }));

/** Runs the trainer module's own functions (imported, not copied) and returns what they wrote. */
async function python(body: string, args: string[]): Promise<void> {
  await runPython(
    `import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("trainer", ${JSON.stringify(torchTrainerPath())})
trainer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trainer)
${body}`,
    args,
    { timeoutMs: 120_000 },
  );
}

function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

test('crop and resize give the same bytes as ours, within one level', { timeout: 180_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const cases: { file: string; size: number; crop: CropMode; out: string }[] = [];
  for (const file of files)
    for (const size of [32, 48, 224])
      for (const crop of ['none', 'center', 'cell'] as const)
        cases.push({ file, size, crop, out: join(work, `py-${cases.length}.bin`) });
  await python(
    `cases = json.loads(sys.argv[1]); p = json.loads(sys.argv[2])
for c in cases:
    open(c["out"], "wb").write(trainer.preprocess(c["file"], c["size"], c["crop"], p).tobytes())`,
    [JSON.stringify(cases), JSON.stringify(CROP_PARAMETERS)],
  );
  let worst = 0;
  let differing = 0;
  let total = 0;
  for (const c of cases) {
    const ours = preprocessImage(await readImageFile(c.file), { size: c.size, crop: c.crop });
    const theirs = await readFile(c.out);
    const difference = largestDifference(ours, theirs);
    assert.ok(difference <= 1, `${c.file} at ${c.size} px, crop ${c.crop}: bytes differ by ${difference}`);
    worst = Math.max(worst, difference);
    for (let i = 0; i < ours.length; i++) differing += ours[i] !== theirs[i] ? 1 : 0;
    total += ours.length;
  }
  process.stdout.write(
    `# ${cases.length} cases: largest byte difference ${worst} (1/255), ${differing} of ${total} bytes differ\n`,
  );
});

test('augmentation with the same draws, and normalisation, match ours', { timeout: 120_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const size = 40;
  const pixels = preprocessImage(await readImageFile(files[0]), { size, crop: 'cell' });
  await writeFile(join(work, 'pixels.bin'), pixels);
  // The five draws augmentPixels makes, in order: flip H, flip V, quarter turns, brightness, contrast.
  const draws = [
    [true, false, 1, 0.3, 0.9],
    [false, true, 2, 0.95, 0.05],
    [true, true, 3, 0.5, 0.5],
    [false, false, 0, 0.0, 0.99],
  ] as const;
  const expected = draws.map(([flipH, flipV, turns, b, c]) => {
    const answers = [flipH ? 0.1 : 0.9, flipV ? 0.1 : 0.9];
    const uniforms = [b, c];
    const rng = {
      chance: (p: number) => answers.shift()! < p,
      int: () => turns,
      uniform: (min: number, max: number) => min + (max - min) * uniforms.shift()!,
    } as unknown as Rng;
    return augmentPixels(pixels, size, rng, DEFAULT_AUGMENTATION);
  });
  await python(
    `pixels = np.frombuffer(open(sys.argv[1], "rb").read(), dtype=np.uint8).reshape(${size}, ${size}, 3)
o = json.loads(sys.argv[3])
for i, (h, v, turns, b, c) in enumerate(json.loads(sys.argv[2])):
    out = trainer.augment(pixels, h, v, turns, 1 + o["brightness"] * (2 * b - 1), 1 + o["contrast"] * (2 * c - 1))
    open(sys.argv[1] + f".{i}", "wb").write(out.tobytes())
tensor = trainer.to_normalised_tensor(pixels, ${JSON.stringify(IMAGENET_MEAN)}, ${JSON.stringify(IMAGENET_STD)})
open(sys.argv[1] + ".normalised", "wb").write(tensor.permute(1, 2, 0).contiguous().numpy().astype("<f4").tobytes())`,
    [join(work, 'pixels.bin'), JSON.stringify(draws), JSON.stringify(DEFAULT_AUGMENTATION)],
  );
  for (let i = 0; i < draws.length; i++) {
    const theirs = await readFile(join(work, `pixels.bin.${i}`));
    const difference = largestDifference(expected[i], theirs);
    assert.ok(difference <= 1, `draws ${JSON.stringify(draws[i])}: bytes differ by ${difference}`);
  }
  const ours = new Float32Array(pixels.length);
  normaliseInto(pixels, ours);
  const buffer = await readFile(join(work, 'pixels.bin.normalised'));
  const theirs = new Float32Array(buffer.buffer, buffer.byteOffset, buffer.length / 4);
  const difference = largestDifference(ours, theirs);
  process.stdout.write(
    `# normalised tensors (HWC vs CHW, compared element by element): largest difference ${difference.toExponential(2)}\n`,
  );
  assert.ok(difference < 1e-5, `normalised values differ by ${difference}`);
});
