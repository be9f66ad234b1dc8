/**
 * Times the wasm convolution kernels on ResNet-18's layer shapes, then whole ResNet-18 training steps.
 *
 *   node --import tsx scripts/bench-kernels.ts            # kernels at 128 px, batch 8, then training
 *   node --import tsx scripts/bench-kernels.ts --kernels  # kernel table only
 *   node --import tsx scripts/bench-kernels.ts --profile  # also the slowest kernels of one 128 px step
 *   node --import tsx scripts/bench-kernels.ts --training --batch 16 --sizes 128,224 --profile
 *                                                         # training steps only, at these sizes and batch
 *   node --import tsx scripts/bench-kernels.ts --kernels --batch 32  # the kernel table at batch 32
 *
 * "repack" is what a forward convolution costs extra when its filter is a new tensor, as after every
 * optimiser step: XNNPACK caches its packed filter per tensor id, and an updated variable gets a new one.
 *
 * Single-threaded (tfjs wasm cannot use threads in Node), so numbers are per core. Runs take about a
 * minute; other processes on the machine skew them, so compare runs made back to back.
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
// Under Node, importing tfjs-core registers no gradients; the training benchmark needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { registerWasmTrainingKernels } from '../src/core/engine/wasmKernels.js';
import { createResNet18, disposeModel, forward, trainableVariables } from '../src/core/model/resnet18.js';

interface LayerShape {
  name: string;
  /** Spatial size of the layer's input (before padding). */
  size: number;
  inChannels: number;
  outChannels: number;
  filterSize: number;
  stride: number;
}

/** Batch of the kernel table and of the training steps unless --batch says otherwise. */
const DEFAULT_KERNEL_BATCH = 8;
const DEFAULT_TRAIN_BATCH = 16;
const NUM_CLASSES = 2;

/** ResNet-18's distinct convolutions at 128 px input (torchvision padding: ⌊k/2⌋). */
const RESNET18_LAYERS_128: LayerShape[] = [
  { name: 'conv1 7x7/2 3→64', size: 128, inChannels: 3, outChannels: 64, filterSize: 7, stride: 2 },
  { name: 'layer1 3x3 64→64', size: 32, inChannels: 64, outChannels: 64, filterSize: 3, stride: 1 },
  { name: 'layer2.0.conv1 3x3/2 64→128', size: 32, inChannels: 64, outChannels: 128, filterSize: 3, stride: 2 },
  { name: 'layer2.0.downsample 1x1/2', size: 32, inChannels: 64, outChannels: 128, filterSize: 1, stride: 2 },
  { name: 'layer2 3x3 128→128', size: 16, inChannels: 128, outChannels: 128, filterSize: 3, stride: 1 },
  { name: 'layer3.0.conv1 3x3/2 128→256', size: 16, inChannels: 128, outChannels: 256, filterSize: 3, stride: 2 },
  { name: 'layer3.0.downsample 1x1/2', size: 16, inChannels: 128, outChannels: 256, filterSize: 1, stride: 2 },
  { name: 'layer3 3x3 256→256', size: 8, inChannels: 256, outChannels: 256, filterSize: 3, stride: 1 },
  { name: 'layer4.0.conv1 3x3/2 256→512', size: 8, inChannels: 256, outChannels: 512, filterSize: 3, stride: 2 },
  { name: 'layer4.0.downsample 1x1/2', size: 8, inChannels: 256, outChannels: 512, filterSize: 1, stride: 2 },
  { name: 'layer4 3x3 512→512', size: 4, inChannels: 512, outChannels: 512, filterSize: 3, stride: 1 },
];

/**
 * Fastest of at least 5 calls (and 300 ms) after a warm-up call, in CPU milliseconds of this process
 * (single-threaded, so CPU time is the call's own cost, whatever else runs on the machine). The minimum,
 * not the mean: other processes only ever add time.
 */
function msPerCall(run: () => void, minMs = 300): number {
  run();
  let fastest = Infinity;
  let calls = 0;
  const start = performance.now();
  while (calls < 5 || performance.now() - start < minMs) {
    const callStart = process.cpuUsage();
    run();
    const used = process.cpuUsage(callStart);
    fastest = Math.min(fastest, (used.user + used.system) / 1000);
    calls++;
  }
  return fastest;
}

function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor {
  return tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

function pad(text: string | number, width: number): string {
  return String(text).padStart(width);
}

/**
 * Each layer as the model runs it: input zero-padded by ⌊k/2⌋, then a 'valid' convolution, so the
 * gradients see the same shapes as in training.
 */
function benchLayers(stockBackpropInput: tf.KernelConfig, batch: number): void {
  console.log(
    `\nConvolution kernels on wasm, batch ${batch}, CPU ms per call (GFLOP/s); load average ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `${'layer'.padEnd(30)}${pad('GFLOP', 7)}${pad('forward', 16)}${pad('backprop input', 17)}${pad('backprop filter', 17)}${pad('repack', 9)}`,
  );
  const totals = { forward: 0, input: 0, filter: 0, repack: 0 };
  for (const layer of RESNET18_LAYERS_128) {
    tf.tidy(() => {
      const padding = Math.floor(layer.filterSize / 2);
      const paddedSize = layer.size + 2 * padding;
      const x = tf.randomUniform([batch, paddedSize, paddedSize, layer.inChannels]) as tf.Tensor4D;
      const filter = tf.randomUniform([
        layer.filterSize,
        layer.filterSize,
        layer.inChannels,
        layer.outChannels,
      ]) as tf.Tensor4D;
      const y = tf.conv2d(x, filter, layer.stride, 'valid');
      const dy = tf.randomUniform(y.shape);
      const attrs = { strides: layer.stride, pad: 'valid', dataFormat: 'NHWC' };
      const gflop = (2 * y.size * layer.filterSize * layer.filterSize * layer.inChannels) / 1e9;
      const forwardMs = msPerCall(() => tf.conv2d(x, filter, layer.stride, 'valid').dispose());
      // A new filter tensor per call (a copy, whose own cost is subtracted) makes XNNPACK pack it again.
      const copyMs = msPerCall(() => tf.add(filter, 0).dispose());
      const freshFilterMs = msPerCall(() =>
        tf.tidy(() => {
          tf.conv2d(x, tf.add(filter, 0) as tf.Tensor4D, layer.stride, 'valid');
        }),
      );
      const repackMs = Math.max(0, freshFilterMs - copyMs - forwardMs);
      totals.repack += repackMs;
      const inputMs = msPerCall(() =>
        runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: x.shape }).dispose(),
      );
      const filterMs = msPerCall(() =>
        runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: filter.shape }).dispose(),
      );
      totals.forward += forwardMs;
      totals.input += inputMs;
      totals.filter += filterMs;
      const cell = (ms: number) => `${ms.toFixed(1)} (${(gflop / (ms / 1000)).toFixed(1)})`.padStart(16);
      console.log(
        `${layer.name.padEnd(30)}${pad(gflop.toFixed(3), 7)}${cell(forwardMs)} ${cell(inputMs)} ${cell(filterMs)}${pad(repackMs.toFixed(1), 9)}`,
      );
    });
  }
  console.log(
    `${'sum over distinct layers'.padEnd(37)}${pad(totals.forward.toFixed(1), 16)} ${pad(totals.input.toFixed(1), 16)} ${pad(totals.filter.toFixed(1), 16)}${pad(totals.repack.toFixed(1), 9)}`,
  );

  // The stock kernel is a scalar loop, so compare on a shape small enough to finish quickly.
  tf.tidy(() => {
    const x = tf.randomUniform([2, 16, 16, 64]);
    const filter = tf.randomUniform([3, 3, 64, 64]) as tf.Tensor4D;
    const dy = tf.randomUniform([2, 16, 16, 64]);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: x.shape };
    const gflop = (2 * dy.size * 9 * 64) / 1e9;
    const backend = tf.backend();
    const stockMs = msPerCall(() => {
      const out = stockBackpropInput.kernelFunc({
        inputs: { dy, filter },
        backend,
        attrs: attrs as unknown as tf.NamedAttrMap,
      }) as tf.TensorInfo;
      backend.disposeData(out.dataId);
    });
    const oursMs = msPerCall(() => runKernel('Conv2DBackpropInput', { dy, filter }, attrs).dispose());
    console.log(
      `\nConv2DBackpropInput, dy [2,16,16,64], 3x3 64→64 same: stock wasm ${stockMs.toFixed(1)} ms ` +
        `(${(gflop / (stockMs / 1000)).toFixed(2)} GFLOP/s), replacement ${oursMs.toFixed(1)} ms ` +
        `(${(gflop / (oursMs / 1000)).toFixed(1)} GFLOP/s)`,
    );
  });
}

/** One SGD step of full ResNet-18 training (forward in training mode, backward, update). */
function trainingStep(
  params: ReturnType<typeof createResNet18>,
  optimizer: tf.Optimizer,
  images: tf.Tensor4D,
  labels: tf.Tensor2D,
): void {
  const variables = trainableVariables(params, 'full');
  const loss = optimizer.minimize(
    () => {
      const { logits } = forward(params, images, { training: true });
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    },
    true,
    variables,
  );
  loss?.dataSync();
  loss?.dispose();
}

async function benchTraining(size: number, batch: number, steps: number, profile: boolean): Promise<void> {
  const params = createResNet18(NUM_CLASSES, 1);
  const optimizer = tf.train.sgd(0.01);
  const images = tf.randomUniform([batch, size, size, 3]) as tf.Tensor4D;
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i % NUM_CLASSES),
      'int32',
    ),
    NUM_CLASSES,
  ) as tf.Tensor2D;
  trainingStep(params, optimizer, images, labels);
  const tensorsAfterWarmUp = tf.memory().numTensors;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < steps; i++) trainingStep(params, optimizer, images, labels);
  const msPerStep = (performance.now() - start) / steps;
  const cpu = process.cpuUsage(cpuStart);
  // CPU time, not wall time, is what a step costs whatever else the machine runs (single-threaded).
  const cpuMsPerStep = (cpu.user + cpu.system) / 1000 / steps;
  const leaked = tf.memory().numTensors - tensorsAfterWarmUp;
  console.log(
    `ResNet-18 training ${size} px, batch ${batch}: ${(msPerStep / 1000).toFixed(2)} s/step wall, ` +
      `${(cpuMsPerStep / 1000).toFixed(2)} s/step CPU, ${((batch * 1000) / cpuMsPerStep).toFixed(2)} images per CPU-second` +
      `${leaked ? ` (tensors grew by ${leaked} per ${steps} steps)` : ''}; load average ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
  );
  if (profile) {
    const info = await tf.profile(() => trainingStep(params, optimizer, images, labels));
    const byKernel = new Map<string, number>();
    for (const kernel of info.kernels)
      byKernel.set(kernel.name, (byKernel.get(kernel.name) ?? 0) + (kernel.kernelTimeMs as number));
    const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
    console.log(`  kernel time in one profiled step (${total.toFixed(0)} ms):`);
    for (const [name, ms] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 16)) {
      console.log(`  ${name.padEnd(24)}${pad(ms.toFixed(0), 7)} ms ${pad(((100 * ms) / total).toFixed(1), 5)}%`);
    }
  }
  tf.dispose([images, labels]);
  optimizer.dispose();
  disposeModel(params);
}

interface Options {
  kernels: boolean;
  training: boolean;
  profile: boolean;
  /** Absent: DEFAULT_KERNEL_BATCH for the kernel table, DEFAULT_TRAIN_BATCH for training. */
  batch?: number;
  sizes: number[];
  steps: number;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { kernels: true, training: true, profile: false, sizes: [64, 128], steps: 2 };
  const value = (i: number) => {
    const text = argv[i + 1];
    if (text === undefined) throw new Error(`${argv[i]} needs a value`);
    return text;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--kernels') options.training = false;
    else if (arg === '--training') options.kernels = false;
    else if (arg === '--profile') options.profile = true;
    else if (arg === '--batch') options.batch = Number(value(i++));
    else if (arg === '--steps') options.steps = Number(value(i++));
    else if (arg === '--sizes') options.sizes = value(i++).split(',').map(Number);
    else
      throw new Error(
        `Unknown argument "${arg}"; use --kernels, --training, --profile, --batch N, --sizes a,b, --steps N`,
      );
  }
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  if (
    (options.batch !== undefined && !whole(options.batch)) ||
    !whole(options.steps) ||
    !options.sizes.every((size) => whole(size) && size >= 32)
  )
    throw new Error('--batch and --steps take whole numbers ≥ 1, --sizes whole numbers ≥ 32');
  return options;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  await tf.setBackend('wasm');
  // Keep the stock kernel before it is replaced, to compare against it.
  const stockBackpropInput = tf.getKernel('Conv2DBackpropInput', 'wasm');
  registerWasmTrainingKernels();
  if (options.kernels) benchLayers(stockBackpropInput, options.batch ?? DEFAULT_KERNEL_BATCH);
  if (!options.training) return;
  console.log('');
  // The profile is of the largest size.
  const largest = Math.max(...options.sizes);
  for (const size of options.sizes)
    await benchTraining(size, options.batch ?? DEFAULT_TRAIN_BATCH, options.steps, options.profile && size === largest);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
