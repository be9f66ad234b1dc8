import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Under Node, importing tfjs-core registers no gradients; training (and the tiny block here) needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import {
  inputGradientMethod,
  registerWasmTrainingKernels,
  wasmTrainingKernelNames,
  type InputGradientMethod,
} from '../src/core/engine/wasmKernels.js';
import { fusedBatchNormTraining, hasFusedBatchNorm } from '../src/core/engine/wasmBatchNorm.js';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

interface ConvCase {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  filter: [number, number];
  strides: [number, number];
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

interface KernelCase extends ConvCase {
  /** The dx method the shapes are chosen to exercise. */
  method: InputGradientMethod;
}

const TOLERANCE = 1e-5;

before(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
});

/** Max |actual − expected| relative to max |expected|. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxDiff / (maxRef || 1);
}

/** Runs `compute` on `backendName` and returns its outputs as plain arrays (inputs are re-created there). */
async function onBackend(backendName: string, compute: () => tf.Tensor[]): Promise<Float32Array[]> {
  const previous = tf.getBackend();
  await tf.setBackend(backendName);
  try {
    const outputs = tf.tidy(compute);
    const values = outputs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outputs);
    return values;
  } finally {
    await tf.setBackend(previous);
  }
}

function caseName(c: KernelCase): string {
  const pad = typeof c.pad === 'object' ? JSON.stringify(c.pad.slice(1, 3)) : String(c.pad);
  return `${c.method}: x[${c.batch},${c.height},${c.width},${c.inChannels}] w${c.filter.join('x')}→${c.outChannels} s${c.strides.join(',')} pad ${pad}${c.dimRoundingMode ? ` ${c.dimRoundingMode}` : ''}`;
}

function gradientsOf(c: ConvCase, seed: number): () => tf.Tensor[] {
  return () => {
    const x = tf.randomUniform([c.batch, c.height, c.width, c.inChannels], -1, 1, 'float32', seed);
    const filterShape: [number, number, number, number] = [...c.filter, c.inChannels, c.outChannels];
    const filter = tf.randomUniform(filterShape, -1, 1, 'float32', seed + 1);
    const y = tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, c.strides, c.pad, 'NHWC', 1, c.dimRoundingMode);
    const dy = tf.randomUniform(y.shape, -1, 1, 'float32', seed + 2);
    const common = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode };
    const run = (name: string, inputs: tf.NamedTensorMap, attrs: object) =>
      tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    return [
      run('Conv2DBackpropFilter', { x, dy }, { ...common, filterShape }),
      run('Conv2DBackpropInput', { dy, filter }, { ...common, inputShape: x.shape }),
    ];
  };
}

/**
 * Every geometry (stride × filter size × padding) twice, shaped so that dx is computed once by each
 * method: one image with many channels goes through the MatMul, three images with few channels through
 * the sub-pixel convolution. Heights are odd and widths even.
 */
function kernelCases(): KernelCase[] {
  const explicit: Pad = [
    [0, 0],
    [1, 2],
    [0, 3],
    [0, 0],
  ];
  const cases: KernelCase[] = [];
  for (const stride of [1, 2]) {
    for (const size of [3, 1, 7]) {
      for (const pad of ['valid', 'same', 2, explicit] as Pad[]) {
        const strides: [number, number] = [stride, stride];
        const filter: [number, number] = [size, size];
        const fewPixels = { 1: [3, 4, 64], 3: [5, 6, 32], 7: [9, 8, 8] }[size]!;
        const manyPixels = { 1: [13, 12, 8], 3: [13, 12, 8], 7: [21, 20, 3] }[size]!;
        cases.push(
          {
            method: 'matmul-packed-dy',
            batch: 1,
            height: fewPixels[0],
            width: fewPixels[1],
            inChannels: fewPixels[2],
            outChannels: 16,
            filter,
            strides,
            pad,
          },
          {
            method: stride === 1 ? 'subpixel-conv' : 'matmul-packed-filter',
            batch: 3,
            height: manyPixels[0],
            width: manyPixels[1],
            inChannels: manyPixels[2],
            outChannels: 8,
            filter,
            strides,
            pad,
          },
        );
      }
    }
  }
  // Geometries no ResNet has: unequal strides and filter sides, stride 3, ceil rounding, and padding
  // wider than the filter.
  const unusual: Omit<ConvCase, 'batch' | 'inChannels'>[] = [
    { height: 11, width: 7, outChannels: 6, filter: [3, 2], strides: [2, 1], pad: 'same' },
    { height: 11, width: 8, outChannels: 6, filter: [3, 3], strides: [3, 2], pad: 'valid' },
    { height: 11, width: 7, outChannels: 6, filter: [3, 3], strides: [2, 2], pad: 1, dimRoundingMode: 'ceil' },
    {
      height: 6,
      width: 6,
      outChannels: 6,
      filter: [1, 1],
      strides: [3, 3],
      pad: [
        [0, 0],
        [4, 4],
        [3, 0],
        [0, 0],
      ],
    },
  ];
  for (const geometry of unusual) {
    cases.push(
      { ...geometry, method: 'matmul-packed-dy', batch: 1, inChannels: 16 },
      { ...geometry, method: 'matmul-packed-filter', batch: 3, inChannels: 2 },
    );
  }
  return cases;
}

test('Conv2DBackpropFilter and Conv2DBackpropInput on wasm match the cpu backend', async (t) => {
  let worst = { filter: 0, input: 0 };
  for (const [i, c] of kernelCases().entries()) {
    await t.test(caseName(c), async () => {
      const filterShape: [number, number, number, number] = [...c.filter, c.inChannels, c.outChannels];
      const { outShape } = tf.backend_util.computeConv2DInfo(
        [c.batch, c.height, c.width, c.inChannels],
        filterShape,
        c.strides,
        1,
        c.pad,
        c.dimRoundingMode,
      );
      assert.equal(
        inputGradientMethod(outShape, filterShape, c.strides),
        c.method,
        'the shapes no longer exercise the intended dx method',
      );
      const [cpuFilter, cpuInput] = await onBackend('cpu', gradientsOf(c, 10 * i));
      const [wasmFilter, wasmInput] = await onBackend('wasm', gradientsOf(c, 10 * i));
      const filterError = relativeError(wasmFilter, cpuFilter);
      const inputError = relativeError(wasmInput, cpuInput);
      worst = { filter: Math.max(worst.filter, filterError), input: Math.max(worst.input, inputError) };
      assert.ok(filterError <= TOLERANCE, `filter gradient relative error ${filterError}`);
      assert.ok(inputError <= TOLERANCE, `input gradient relative error ${inputError}`);
    });
  }
  t.diagnostic(`max relative error: filter ${worst.filter.toExponential(2)}, input ${worst.input.toExponential(2)}`);
});

test('the replacement kernels are installed once and keep wasm memory flat', async () => {
  registerWasmTrainingKernels();
  const installed = wasmTrainingKernelNames.map((name) => tf.getKernel(name, 'wasm').kernelFunc);
  registerWasmTrainingKernels();
  assert.deepEqual(
    wasmTrainingKernelNames.map((name) => tf.getKernel(name, 'wasm').kernelFunc),
    installed,
  );

  // One geometry per dx method.
  const cases: ConvCase[] = [
    { batch: 2, height: 10, width: 10, inChannels: 4, outChannels: 8, filter: [3, 3], strides: [2, 2], pad: 'same' },
    { batch: 1, height: 6, width: 6, inChannels: 16, outChannels: 8, filter: [3, 3], strides: [2, 2], pad: 'same' },
  ];
  const backend = tf.backend();
  const step = () => cases.forEach((c) => tf.dispose(tf.tidy(gradientsOf(c, 1))));
  step();
  const tensorsBefore = tf.memory().numTensors;
  const buffersBefore = backend.numDataIds();
  for (let i = 0; i < 3; i++) step();
  assert.equal(tf.memory().numTensors, tensorsBefore);
  assert.equal(backend.numDataIds(), buffersBefore);
});

test('unsupported convolutions fail with a message naming the problem', () => {
  const x = tf.zeros([1, 8, 8, 2]);
  const dy = tf.zeros([1, 8, 8, 3]);
  const filter = tf.zeros([3, 3, 2, 3]);
  const common = { strides: 1, pad: 'same', dimRoundingMode: undefined };
  const run = (name: string, inputs: tf.NamedTensorMap, attrs: object) => () =>
    tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap);
  assert.throws(
    run('Conv2DBackpropFilter', { x, dy }, { ...common, dataFormat: 'NHWC', dilations: 2, filterShape: filter.shape }),
    /dilation 1 only/,
  );
  assert.throws(
    run(
      'Conv2DBackpropInput',
      { dy, filter },
      { ...common, dataFormat: 'NHWC', dilations: [1, 2], inputShape: x.shape },
    ),
    /dilation 1 only/,
  );
  assert.throws(
    run('Conv2DBackpropInput', { dy, filter }, { ...common, dataFormat: 'NCHW', inputShape: x.shape }),
    /'NHWC' only/,
  );
  const smallDy = tf.zeros([1, 4, 4, 3]);
  assert.throws(
    run('Conv2DBackpropFilter', { x, dy: smallDy }, { ...common, dataFormat: 'NHWC', filterShape: filter.shape }),
    /dy has shape/,
  );
  assert.throws(
    run('Conv2DBackpropInput', { dy, filter }, { ...common, dataFormat: 'NHWC', inputShape: [1, 8, 8, 5] }),
    /input channels/,
  );
  tf.dispose([x, dy, filter, smallDy]);
});

/**
 * A miniature of ResNet-18's training graph: padded stride-2 stem conv, BatchNorm from batch moments,
 * ReLU, 3×3/2 max-pool with explicit padding, a residual 3×3 conv, global mean pool, linear classifier
 * and softmax cross-entropy. The input is a variable too, so the stem's input gradient (and Pad's) runs.
 */
function tinyBlockGradients(): tf.Tensor[] {
  const variable = (shape: number[], seed: number) => tf.variable(tf.randomNormal(shape, 0, 0.5, 'float32', seed));
  const input = variable([3, 17, 16, 3], 1);
  const stemFilter = variable([3, 3, 3, 8], 2);
  const gamma = tf.variable(tf.add(1, tf.randomNormal([8], 0, 0.1, 'float32', 3)));
  const beta = variable([8], 4);
  const blockFilter = variable([3, 3, 8, 8], 5);
  const classifier = variable([8, 4], 6);
  const labels = tf.oneHot(tf.tensor1d([1, 3, 0], 'int32'), 4);
  const loss = () => {
    const padded = tf.pad(input, [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const stem = tf.conv2d(padded as tf.Tensor4D, stemFilter as tf.Tensor4D, 2, 'valid');
    const { mean, variance } = tf.moments(stem, [0, 1, 2]);
    const normalised = tf.relu(tf.batchNorm(stem, mean, variance, beta, gamma, 1e-5)) as tf.Tensor4D;
    const pooled = tf.maxPool(normalised, 3, 2, [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const residual = tf.relu(tf.add(tf.conv2d(pooled, blockFilter as tf.Tensor4D, 1, 'same'), pooled));
    const features = tf.mean(residual, [1, 2]) as tf.Tensor2D;
    return tf.losses.softmaxCrossEntropy(labels, tf.matMul(features, classifier as tf.Tensor2D)) as tf.Scalar;
  };
  const variables = [input, stemFilter, gamma, beta, blockFilter, classifier];
  const { value, grads } = tf.variableGrads(loss, variables);
  const outputs = [value, ...variables.map((v) => grads[v.name])];
  tf.dispose(variables);
  return outputs;
}

test('gradients of a tiny ResNet-like block on wasm match the cpu backend', async (t) => {
  const names = ['loss', 'input', 'stem filter', 'bn gamma', 'bn beta', 'block filter', 'classifier'];
  const cpu = await onBackend('cpu', tinyBlockGradients);
  const wasm = await onBackend('wasm', tinyBlockGradients);
  const errors = names.map((name, i) => ({ name, error: relativeError(wasm[i], cpu[i]) }));
  t.diagnostic(errors.map((e) => `${e.name} ${e.error.toExponential(2)}`).join(', '));
  for (const { name, error } of errors) assert.ok(error <= TOLERANCE, `${name} gradient relative error ${error}`);
});

/**
 * Training-mode BatchNorm as the model composes it from tfjs ops (any backend) or through the fused
 * kernels (wasm), and its gradients for a random upstream gradient.
 */
function batchNormOutputs(shape: number[], seed: number, fused: boolean): () => tf.Tensor[] {
  return () => {
    const channels = shape[shape.length - 1];
    // An offset mean and a spread far from 1, so that centring and scaling both matter.
    const x = tf.add(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed), 3), 5);
    const weight = tf.randomUniform([channels], 0.5, 1.5, 'float32', seed + 1) as tf.Tensor1D;
    const bias = tf.randomUniform([channels], -1, 1, 'float32', seed + 2) as tf.Tensor1D;
    const upstream = tf.randomUniform(shape, -1, 1, 'float32', seed + 3);
    const normalise = (xs: tf.Tensor, w: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor[] => {
      if (fused) {
        const { y, mean, variance } = fusedBatchNormTraining(xs, w, b, 1e-5);
        return [y, mean, variance];
      }
      const { mean, variance } = tf.moments(xs, [...shape.keys()].slice(0, -1));
      const scale = tf.mul(w, tf.rsqrt(tf.add(variance, 1e-5)));
      return [tf.add(tf.mul(xs, scale), tf.sub(b, tf.mul(mean, scale))), mean, variance];
    };
    const gradients = tf.grads((xs: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(normalise(xs, w as tf.Tensor1D, b as tf.Tensor1D)[0], upstream)),
    )([x, weight, bias]);
    return [...normalise(x, weight, bias), ...gradients];
  };
}

test('the fused training-mode BatchNorm on wasm matches the composed ops on the cpu backend', async (t) => {
  const names = ['y', 'mean', 'variance', 'dx', 'dweight', 'dbias'];
  // One image, odd sizes, a 1×1 map of many channels (layer4 of a small input), few channels.
  const shapes = [
    [1, 7, 5, 3],
    [4, 8, 8, 16],
    [3, 1, 1, 512],
    [2, 9, 11, 64],
    [5, 3],
  ];
  assert.ok(hasFusedBatchNorm(), 'the wasm backend should have the fused BatchNorm kernels');
  for (const [i, shape] of shapes.entries()) {
    await t.test(`x [${shape}]`, async () => {
      const cpu = await onBackend('cpu', batchNormOutputs(shape, 100 + 10 * i, false));
      const wasm = await onBackend('wasm', batchNormOutputs(shape, 100 + 10 * i, true));
      names.forEach((name, k) => {
        const error = relativeError(wasm[k], cpu[k]);
        assert.ok(error <= TOLERANCE, `${name} relative error ${error}`);
      });
    });
  }
});
