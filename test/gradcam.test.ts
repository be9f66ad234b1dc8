// Grad-CAM and Grad-CAM++ against PyTorch (hooks on torchvision's resnet18, computed at test time), plus the
// pieces around the maps: colormaps, upsampling, overlays, rank correlation and the two trust checks.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { selectBackend } from '../src/core/engine/backend.js';
import { createResNet18, disposeModel, forward, type ResNet18Params } from '../src/core/model/resnet18.js';
import { loadStateDict } from '../src/core/model/stateDict.js';
import { readSafetensors, type HostTensor } from '../src/core/weights/safetensors.js';
import {
  CAM_LAYERS,
  computeCams,
  resolveCamLayer,
  type CamLayer,
  type CamMethod,
} from '../src/core/explain/gradcam.js';
import { inputBatch } from '../src/core/explain/predict.js';
import { explainPixels, upsampledMaps } from '../src/core/explain/explainImages.js';
import {
  COLORMAPS,
  colormapTable,
  colouriseRgba,
  colourOf,
  normalisePerImage,
  normaliseShared,
  sharedScale,
} from '../src/core/explain/colormaps.js';
import { blendOverlay, upsampleMaps, writePng } from '../src/core/explain/overlay.js';
import {
  RANDOMISATION_CASCADE,
  averageRanks,
  backgroundEnergy,
  cellMask,
  mapSimilarity,
  pearson,
  randomisationSanityCheck,
  shortcutCheck,
  spearman,
} from '../src/core/explain/checks.js';
import {
  RANDOMISE_BATCHNORM_PY,
  SAFETENSORS_PY,
  referenceUnavailable,
  runPythonIfAvailable,
} from './helpers/python.js';

let workDir = '';

before(async () => {
  // selectBackend registers the gradients and the wasm convolution-gradient kernels Grad-CAM needs.
  await selectBackend('wasm');
  workDir = await mkdtemp(join(tmpdir(), 'gradcam-test-'));
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

function withModel<T>(seed: number, body: (params: ResNet18Params) => T): T {
  const params = createResNet18(2, seed);
  try {
    return body(params);
  } finally {
    disposeModel(params);
  }
}

/** Synthetic C-NMC-like RGB bytes: a textured disc on black, seeded. */
function cellImage(size: number, seed: number, centre = [0.5, 0.5], radius = 0.3): Uint8Array {
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pixels = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if ((y - centre[0] * size) ** 2 + (x - centre[1] * size) ** 2 > (radius * size) ** 2) continue;
      const at = (y * size + x) * 3;
      pixels[at] = 110 + 120 * random();
      pixels[at + 1] = 60 + 120 * random();
      pixels[at + 2] = 150 + 100 * random();
    }
  }
  return pixels;
}

const flat = (map: number[][]) => map.flat();

// ---------------------------------------------------------------------------------------------------
// Parity with PyTorch

/**
 * A seeded torchvision resnet18(num_classes=2) with perturbed BatchNorm statistics, two cell-like images
 * (uint8 values), and Grad-CAM / Grad-CAM++ at each of the layers named in argv[3] (comma-separated)
 * computed from a forward hook on the module and a tensor hook on its output, in eval mode, for the
 * predicted classes and for classes [0, 1]. Keys are `<layer>.<map>`.
 */
const PYTORCH_GRADCAM = String.raw`
import sys
import torch, torchvision
${SAFETENSORS_PY}
${RANDOMISE_BATCHNORM_PY}
torch.set_num_threads(1)
folder, size, layers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(',')
torch.manual_seed(7)
model = randomise_batchnorm(torchvision.models.resnet18(num_classes=2))
model.eval()

ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing='ij')
images = []
for cy, cx, r in ((0.5, 0.5, 0.3), (0.4, 0.6, 0.22)):
    disc = ((ys - cy * size) ** 2 + (xs - cx * size) ** 2) <= (r * size) ** 2
    texture = torch.rand(3, size, size) * 120 + torch.tensor([110.0, 60.0, 150.0])[:, None, None]
    images.append(torch.where(disc, texture, torch.zeros(())).round().clamp(0, 255))
pixels = torch.stack(images)
mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]
std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]
x = (pixels / 255 - mean) / std

captured = {}
def keep(layer):
    def hook(module, inputs, output):
        captured[layer + '.A'] = output
        output.register_hook(lambda grad: captured.update({layer + '.G': grad}))
    return hook
for layer in layers:
    getattr(model, layer).register_forward_hook(keep(layer))
relu = torch.nn.functional.relu

def cams(targets, prefix=''):
    model.zero_grad()
    logits = model(x)
    logits[torch.arange(len(targets)), targets].sum().backward()
    out = {}
    for layer in layers:
        A, G = captured[layer + '.A'].detach(), captured[layer + '.G'].detach()
        out[f'{layer}.{prefix}gradcam'] = relu((G.mean((2, 3))[:, :, None, None] * A).sum(1))
        g2, g3 = G ** 2, G ** 3
        alpha = g2 / (2 * g2 + A.sum((2, 3), keepdim=True) * g3 + 1e-6)
        alpha = torch.where(G != 0, alpha, torch.zeros(()))
        out[f'{layer}.{prefix}gradcampp'] = relu(((alpha * relu(G)).sum((2, 3))[:, :, None, None] * A).sum(1))
    return logits.detach(), out

predicted = model(x).argmax(1)
logits, maps = cams(predicted)
_, mixed = cams(torch.tensor([0, 1]), 'mixed_')
save(folder + '/weights.safetensors', model.state_dict())
save(folder + '/reference.safetensors', dict(pixels=pixels.permute(0, 2, 3, 1).contiguous(), logits=logits,
     predicted=predicted, **maps, **mixed))
`;

/** The reference folder for `size` and `layers`, or the reason PyTorch cannot produce it. */
async function pytorchReference(size: number, layers: readonly CamLayer[]): Promise<string | { folder: string }> {
  const folder = await mkdtemp(join(workDir, `pytorch-${size}-`));
  const run = await runPythonIfAvailable(PYTORCH_GRADCAM, [folder, String(size), layers.join(',')], {
    timeoutMs: 60_000,
    purpose: 'PyTorch parity',
  });
  if ('unavailable' in run) return run.unavailable;
  return { folder };
}

function floats(tensor: HostTensor | undefined, name: string): Float32Array {
  assert.ok(tensor && tensor.data instanceof Float32Array, `${name} should be a float tensor`);
  return tensor.data;
}

/** Rows of a [N, H, W] reference as flat per-image arrays. */
function perImage(tensor: HostTensor | undefined, name: string): Float32Array[] {
  const data = floats(tensor, name);
  const [n, h, w] = tensor!.shape;
  return Array.from({ length: n }, (_, i) => data.slice(i * h * w, (i + 1) * h * w));
}

/**
 * Our Grad-CAM and Grad-CAM++ maps at each of `layers` against PyTorch's hooks, for the predicted classes and
 * for classes [0, 1]: Pearson ≥ 0.999 per map and raw values within 1e-3 of the map's maximum.
 */
async function checkCamParity(t: TestContext, size: number, layers: readonly CamLayer[]): Promise<void> {
  const reference = await pytorchReference(size, layers);
  if (typeof reference === 'string') return referenceUnavailable(t, reference);
  const { tensors } = await readSafetensors(join(reference.folder, 'reference.safetensors'));
  const params = createResNet18(2, 99);
  try {
    loadStateDict(params, (await readSafetensors(join(reference.folder, 'weights.safetensors'))).tensors);
    const pixelData = floats(tensors.get('pixels'), 'pixels');
    const images = [0, 1].map((i) =>
      Uint8Array.from(pixelData.subarray(i * size * size * 3, (i + 1) * size * size * 3)),
    );
    const predicted = Array.from(tensors.get('predicted')!.data as BigInt64Array, Number);
    const cases: { method: CamMethod; targets?: number[]; key: string }[] = [
      { method: 'gradcam', key: 'gradcam' },
      { method: 'gradcam++', key: 'gradcampp' },
      { method: 'gradcam', targets: [0, 1], key: 'mixed_gradcam' },
      { method: 'gradcam++', targets: [0, 1], key: 'mixed_gradcampp' },
    ];
    const x = inputBatch(images, size);
    try {
      for (const layer of layers) {
        // ResNet-18 halves the resolution from layer2 on: layer1 is size/4, layer4 size/32.
        const side = Math.ceil(size / 4 / 2 ** Math.max(0, CAM_LAYERS.indexOf(layer) - 1));
        for (const { method, targets, key } of cases) {
          const started = performance.now();
          const ours = computeCams(params, x, { method, targets, layer });
          const milliseconds = (performance.now() - started) / images.length;
          if (!targets) {
            assert.deepEqual(ours.targets, predicted, 'the same predicted classes');
            const logitDifference = Math.max(
              ...ours.logits.flat().map((value, i) => Math.abs(value - floats(tensors.get('logits'), 'logits')[i])),
            );
            assert.ok(logitDifference < 1e-3, `logits differ by ${logitDifference}`);
          }
          const name = `${layer}.${key}`;
          perImage(tensors.get(name), name).forEach((expected, i) => {
            const actual = flat(ours.maps[i]);
            assert.equal(actual.length, side * side, `${layer} is ${side}×${side} at ${size} px`);
            assert.ok(
              expected.some((value) => value > 0),
              `${name}[${i}]: the reference map is not blank`,
            );
            const r = pearson(actual, expected);
            const scale = Math.max(...expected);
            const worst = Math.max(...actual.map((value, j) => Math.abs(value - expected[j]))) / scale;
            t.diagnostic(
              `${name}[${i}] (${method}, class ${ours.targets[i]}): Pearson ${r.toFixed(7)}, max |Δ| / max = ${worst.toExponential(2)}, ${milliseconds.toFixed(0)} ms per image`,
            );
            assert.ok(r >= 0.999, `${name}[${i}]: Pearson ${r}`);
            assert.ok(worst < 1e-3, `${name}[${i}]: raw values differ by ${worst} of the maximum`);
          });
        }
      }
    } finally {
      x.dispose();
    }
  } finally {
    disposeModel(params);
  }
}

test('PyTorch parity: Grad-CAM and Grad-CAM++ at layer4, 224 px, Pearson ≥ 0.999 per map', (t) =>
  checkCamParity(t, 224, ['layer4']));

test('PyTorch parity: Grad-CAM and Grad-CAM++ at layer2 and layer3 (gradients through convolutions), 96 px', (t) =>
  checkCamParity(t, 96, ['layer2', 'layer3']));

// ---------------------------------------------------------------------------------------------------
// Grad-CAM without PyTorch

test('Grad-CAM at layer4 equals the closed form ReLU(A · fc.weight[:, c]) / (H·W)', () => {
  // Above layer4 sit only the average pool and fc, so d logit_c / dA_ijk = W_kc / (H·W) exactly; the
  // gradient's mean is that too, so Grad-CAM is Zhou et al.'s CAM divided by H·W. Any error in the
  // gradient plumbing (wrong class, wrong image, wrong layer) breaks this.
  withModel(3, (params) => {
    const size = 96;
    const images = [cellImage(size, 1), cellImage(size, 2, [0.4, 0.6], 0.2), cellImage(size, 3, [0.6, 0.4], 0.25)];
    const targets = [0, 1, 1];
    const x = inputBatch(images, size);
    try {
      const ours = computeCams(params, x, { targets });
      const expected = tf.tidy(() => {
        const activation = forward(params, x, { training: false, captureLayers: ['layer4'] }).activations.layer4;
        const [n, h, w, k] = activation.shape;
        const perClass = tf.div(tf.matMul(tf.reshape(activation, [n * h * w, k]), params.get('fc.weight')!), h * w);
        return tf.reshape(tf.relu(perClass), [n, h, w, 2]).arraySync() as number[][][][];
      });
      assert.deepEqual(ours.targets, targets);
      ours.maps.forEach((map, n) => {
        assert.equal(map.length, 3, '96 px gives a 3×3 layer4');
        map.forEach((row, i) =>
          row.forEach((value, j) =>
            assert.ok(Math.abs(value - expected[n][i][j][targets[n]]) < 1e-5, `image ${n} (${i}, ${j})`),
          ),
        );
      });
    } finally {
      x.dispose();
    }
  });
});

test('layers: resolutions per layer, layer4.1 is layer4, unknown layers and bad targets are refused', () => {
  withModel(4, (params) => {
    const x = inputBatch([cellImage(64, 5)], 64);
    try {
      const sizeAt = (layer: string) => computeCams(params, x, { layer }).maps[0].length;
      assert.deepEqual(['maxpool', 'layer1', 'layer2', 'layer3', 'layer4'].map(sizeAt), [16, 16, 8, 4, 2]);
      assert.deepEqual(
        computeCams(params, x, { layer: 'layer4.1' }).maps,
        computeCams(params, x, { layer: 'layer4' }).maps,
      );
      assert.throws(() => resolveCamLayer('layer4.0'), /must be one of maxpool, layer1, layer2, layer3, layer4/);
      assert.throws(() => resolveCamLayer('fc'), /got "fc"/);
      assert.throws(() => computeCams(params, x, { targets: [2] }), /one class index in 0…1 per image/);
      assert.throws(() => computeCams(params, x, { targets: [0, 1] }), /one class index/);
      const before = tf.memory().numTensors;
      computeCams(params, x, { method: 'gradcam++', layer: 'layer2' });
      assert.equal(tf.memory().numTensors, before, 'no tensor outlives computeCams');
    } finally {
      x.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Colormaps, upsampling, overlays

test('colormaps: exact endpoints, matplotlib mid-points within 4/255', () => {
  assert.deepEqual(colourOf('viridis', 0), [68, 1, 84]);
  assert.deepEqual(colourOf('viridis', 1), [253, 231, 37]);
  assert.deepEqual(colourOf('turbo', 0), [48, 18, 59]);
  assert.deepEqual(colourOf('turbo', 1), [122, 4, 3]);
  assert.deepEqual(colourOf('jet', 0), [0, 0, 128]);
  assert.deepEqual(colourOf('jet', 1), [128, 0, 0]);
  assert.deepEqual(colourOf('viridis', -3), colourOf('viridis', 0), 'below 0 clamps');
  assert.deepEqual(colourOf('viridis', 7), colourOf('viridis', 1), 'above 1 clamps');
  // matplotlib 3.6: cm.get_cmap(name)(0.3) * 255 (its 256-entry table picks entry 76 = 0.298).
  const matplotlibAt03 = { viridis: [52.7, 94.8, 141.0], turbo: [24.9, 213.5, 204.9], jet: [0, 176.5, 255] } as const;
  for (const [name, expected] of Object.entries(matplotlibAt03)) {
    const colour = colourOf(name as keyof typeof matplotlibAt03, 76 / 255);
    colour.forEach((value, channel) =>
      assert.ok(
        Math.abs(value - expected[channel]) <= 4,
        `${name}(0.3) channel ${channel}: ${value} vs ${expected[channel]}`,
      ),
    );
  }
  // viridis rises in lightness throughout: a sum of channels is a crude but monotone proxy for it here.
  const brightness = Array.from({ length: 11 }, (_, i) => colourOf('viridis', i / 10).reduce((a, b) => a + b, 0));
  assert.ok(
    brightness.every((value, i) => i === 0 || value > brightness[i - 1]),
    `viridis brightens: ${brightness}`,
  );
});

test('colormaps.ts: the tables overlay.ts had, one lookup for the PNGs and the page, no Node imports', async () => {
  // sha256 of the 768-byte tables as overlay.ts built them before they moved to colormaps.ts.
  const before = {
    viridis: '0f2863202f0d07ce1554b8559cd36f15c25c7694a6e9345a889210fbf7b2fd1e',
    turbo: '7dd1ec6cbdec8c6e3a3c60a706142adecf1c1efa14884f2732c200535a55b952',
    jet: '289aeafcc549361d8477c0ac17f664eadd27a090cbe9a2385474a69209ec1127',
  };
  const ramp = Float32Array.from({ length: 256 }, (_, i) => i / 255);
  const black = new Uint8Array(256 * 3);
  for (const name of COLORMAPS) {
    const table = colormapTable(name);
    assert.equal(createHash('sha256').update(table).digest('hex'), before[name], `${name}: unchanged table`);
    // The page's RGBA (canvas ImageData) and the PNG blend at alpha 1 are the same table entries.
    const rgba = colouriseRgba(ramp, name);
    assert.deepEqual(Array.from(rgba.filter((_, i) => i % 4 !== 3)), Array.from(table), `${name}: colouriseRgba`);
    assert.ok(
      rgba.filter((_, i) => i % 4 === 3).every((alpha) => alpha === 255),
      `${name}: opaque`,
    );
    assert.deepEqual(Array.from(blendOverlay(black, ramp, name, 1)), Array.from(table), `${name}: blendOverlay`);
    assert.deepEqual(
      Array.from(colouriseRgba([-1, Number.NaN, 2], name)),
      [...colourOf(name, 0), 255, ...colourOf(name, 0), 255, ...colourOf(name, 1), 255],
      `${name}: clamped`,
    );
  }
  // The results view bundles this module for the browser: it must stay free of imports.
  const source = await readFile(join(__dirname, '..', 'src', 'core', 'explain', 'colormaps.ts'), 'utf8');
  assert.doesNotMatch(source, /^\s*(import|export .* from)\b|require\(/m);
});

test('upsampling: bilinear with half-pixel centres and clamped edges; maps stay non-negative', () => {
  const [up] = upsampleMaps(
    [
      [
        [0, 1],
        [2, 3],
      ],
    ],
    4,
  );
  // Source coordinates of the 4 target pixels: −0.25 → 0 (clamped), 0.25, 0.75, 1.25 → 1 (clamped).
  const axis = [0, 0.25, 0.75, 1];
  const expected = axis.flatMap((y) => axis.map((x) => 2 * y + x));
  assert.deepEqual(Array.from(up), expected);
  const [constant] = upsampleMaps(
    [
      [
        [5, 5, 5],
        [5, 5, 5],
        [5, 5, 5],
      ],
    ],
    48,
  );
  assert.equal(constant.length, 48 * 48);
  assert.ok(
    constant.every((value) => Math.abs(value - 5) < 1e-6),
    'a constant map stays constant',
  );
  const [sparse] = upsampleMaps(
    [
      [
        [0, 0],
        [0, 9],
      ],
    ],
    7,
  );
  assert.ok(
    sparse.every((value) => value >= 0 && value <= 9),
    'upsampling stays within the map range',
  );
});

test('normalisation: per image stretches to [0, 1]; the shared scale keeps ratios between images', () => {
  const weak = Float32Array.from([0, 1, 2]);
  const strong = Float32Array.from([0, 4, 8]);
  assert.deepEqual(Array.from(normalisePerImage(weak)), [0, 0.5, 1]);
  assert.deepEqual(Array.from(normalisePerImage(strong)), [0, 0.5, 1]);
  const scale = sharedScale([weak, strong]);
  assert.equal(scale, 8);
  assert.deepEqual(Array.from(normaliseShared(weak, scale)), [0, 0.125, 0.25]);
  assert.deepEqual(Array.from(normaliseShared(strong, scale)), [0, 0.5, 1]);
  assert.deepEqual(Array.from(normalisePerImage(Float32Array.from([3, 3]))), [0, 0], 'a flat map has nothing to show');
  assert.deepEqual(Array.from(normaliseShared(weak, 0)), [0, 0, 0]);
});

test('overlay: blending endpoints, and the PNG has the image size', async () => {
  const size = 20;
  const pixels = cellImage(size, 9);
  const ramp = Float32Array.from({ length: size * size }, (_, p) => (p % size) / (size - 1));
  assert.deepEqual(blendOverlay(pixels, ramp, 'viridis', 0), pixels, 'alpha 0 leaves the image');
  const colourOnly = blendOverlay(pixels, ramp, 'turbo', 1);
  assert.deepEqual(Array.from(colourOnly.subarray(0, 3)), colourOf('turbo', 0), 'alpha 1 is the colormap');
  assert.deepEqual(Array.from(colourOnly.subarray((size - 1) * 3, size * 3)), colourOf('turbo', 1));
  const half = blendOverlay(pixels, ramp);
  assert.equal(half[0], Math.round(0.5 * pixels[0] + 0.5 * 68), 'default: viridis at alpha 0.5');
  assert.throws(() => blendOverlay(pixels, ramp.subarray(1)), /pixels but/);

  const file = join(workDir, 'overlay.png');
  await writePng(file, half, size, size);
  const metadata = await sharp(file).metadata();
  assert.deepEqual([metadata.format, metadata.width, metadata.height, metadata.channels], ['png', size, size, 3]);
  const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual(new Uint8Array(data), half, 'PNG is lossless');
});

// ---------------------------------------------------------------------------------------------------
// Rank correlation

test('Spearman with ties: a hand-checked example, and the edge cases', () => {
  // a = [1, 2, 2, 3, 5] ranks to [1, 2.5, 2.5, 4, 5]; b = [2, 1, 4, 4, 6] to [2, 1, 3.5, 3.5, 5]. Both rank
  // vectors have mean 3; deviations (−2, −.5, −.5, 1, 2) and (−1, −2, .5, .5, 2) give a covariance sum of
  // 2 + 1 − .25 + .5 + 4 = 7.25 and squared sums of 9.5 each: ρ = 7.25 / 9.5 = 29/38.
  assert.deepEqual(Array.from(averageRanks([1, 2, 2, 3, 5])), [1, 2.5, 2.5, 4, 5]);
  assert.deepEqual(Array.from(averageRanks([0, 0, 0, 7, 0])), [2.5, 2.5, 2.5, 5, 2.5], 'ReLU zeros share one rank');
  const rho = spearman([1, 2, 2, 3, 5], [2, 1, 4, 4, 6]);
  assert.ok(Math.abs(rho - 29 / 38) < 1e-12, `ρ = ${rho}, expected 29/38`);
  assert.equal(spearman([1, 2, 3], [10, 100, 1000]), 1, 'monotone is 1 whatever the scale');
  assert.equal(spearman([1, 2, 3], [3, 2, 1]), -1);
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])), 'undefined for a constant side');
  assert.equal(mapSimilarity([0, 0, 0], [0, 0, 0]), 1, 'two blank maps: nothing changed');
  assert.equal(mapSimilarity([0, 0, 0], [0, 1, 0]), 0, 'blank against structured: changed');
  // numpy.corrcoef([1, 2, 3, 4], [2, 4, 6, 8.5])[0, 1] = 0.99838144
  const r = pearson([1, 2, 3, 4], [2, 4, 6, 8.5]);
  assert.ok(Math.abs(r - 0.99838144) < 1e-8, `Pearson ${r}`);
});

// ---------------------------------------------------------------------------------------------------
// Shortcut check

test('shortcut: a map all on the background scores 1 and is flagged; all on the cell scores 0', () => {
  const size = 16;
  const pixels = new Uint8Array(size * size * 3);
  const onCell = (p: number) =>
    p % size >= 4 && p % size < 12 && Math.floor(p / size) >= 4 && Math.floor(p / size) < 12;
  for (let p = 0; p < size * size; p++) if (onCell(p)) pixels.fill(200, p * 3, p * 3 + 3);
  pixels[0] = 20; // at the threshold: still background
  pixels[(size - 1) * 3 + 2] = 21; // above it in one channel: foreground
  const mask = cellMask(pixels);
  assert.equal(
    mask.reduce((a, b) => a + b, 0),
    64 + 1,
  );
  const background = Float32Array.from({ length: size * size }, (_, p) => (mask[p] ? 0 : 1));
  const cell = Float32Array.from({ length: size * size }, (_, p) => (mask[p] ? 3 : 0));
  const uniform = new Float32Array(size * size).fill(2);
  assert.equal(backgroundEnergy(background, mask), 1);
  assert.equal(backgroundEnergy(cell, mask), 0);
  assert.ok(
    Math.abs(backgroundEnergy(uniform, mask) - (256 - 65) / 256) < 1e-12,
    'uniform map: the background area share',
  );
  assert.equal(backgroundEnergy(new Float32Array(size * size), mask), 0, 'blank map');

  const flagged = shortcutCheck([
    { className: 'all', backgroundEnergy: 1, backgroundArea: 0.75 },
    { className: 'all', backgroundEnergy: 0.8, backgroundArea: 0.75 },
    { className: 'hem', backgroundEnergy: 0, backgroundArea: 0.75 },
  ]);
  assert.deepEqual(flagged.perClass, { all: 0.9, hem: 0 });
  assert.equal(flagged.threshold, 0.5);
  assert.equal(flagged.flagged, true);
  assert.match(flagged.message, /"all" put 90 %/);
  assert.doesNotMatch(flagged.message, /"hem"/);
  const clean = shortcutCheck([{ className: 'all', backgroundEnergy: 0.2, backgroundArea: 0.75 }]);
  assert.equal(clean.flagged, false);
  assert.match(clean.message, /at most 20 %/);
});

// ---------------------------------------------------------------------------------------------------
// Sanity check

test('sanity check: Grad-CAM decorrelates under cascading randomisation; an input-only "map" fails', (t) => {
  withModel(11, (params) => {
    const size = 64;
    const images = [cellImage(size, 21), cellImage(size, 22, [0.4, 0.6], 0.22), cellImage(size, 23, [0.6, 0.45], 0.26)];
    const targets = explainPixels(params, images, size).map((e) => e.predicted);
    const trainedBefore = params.get('layer4.1.conv2.weight')!.dataSync().slice();
    const result = randomisationSanityCheck(
      params,
      (weights) => upsampledMaps(weights, images, size, { layer: 'layer3', targets }),
      { seed: 5 },
    );
    assert.deepEqual(
      result.steps.map((s) => s.randomisedUpTo),
      RANDOMISATION_CASCADE.map((s) => s.name),
    );
    assert.deepEqual(
      result.steps.map((s) => s.randomisedUpTo),
      ['fc', 'layer4', 'layer3', 'layer2', 'layer1', 'conv1/bn1'],
    );
    t.diagnostic(result.steps.map((s) => `${s.randomisedUpTo}: ${s.spearman.toFixed(3)}`).join(', '));
    const layer4 = result.steps[1].spearman;
    assert.ok(layer4 < 0.9, `mean Spearman after randomising layer4: ${layer4}`);
    assert.ok(
      result.steps.every((s) => s.spearman >= -1 && s.spearman <= 1),
      `correlations: ${result.steps.map((s) => s.spearman)}`,
    );
    assert.equal(result.passed, true, result.message);
    assert.match(result.message, /^Passed/);
    assert.deepEqual(
      params.get('layer4.1.conv2.weight')!.dataSync(),
      trainedBefore,
      'the trained weights are left alone',
    );

    // A "saliency map" that is the image's brightness ignores the weights entirely: the check must fail it.
    const brightness = images.map((image) =>
      Float32Array.from({ length: size * size }, (_, p) => image[p * 3] + image[p * 3 + 1] + image[p * 3 + 2]),
    );
    const edgeDetector = randomisationSanityCheck(params, () => brightness);
    assert.ok(
      edgeDetector.steps.every((s) => s.spearman === 1),
      `correlations: ${edgeDetector.steps.map((s) => s.spearman)}`,
    );
    assert.equal(edgeDetector.passed, false);
    assert.match(edgeDetector.message, /^Failed: the maps barely change/);
  });
});
