import * as tf from '@tensorflow/tfjs-core';
import { fusedBatchNormTraining, hasFusedBatchNorm } from '../engine/wasmBatchNorm.js';
import { randomNormals, randomSourceOf, randomUniforms, type RandomSource } from '../random.js';
import type { TrainingStrategy } from '../train/settings.js';

/**
 * ResNet-18 written with plain tfjs-core ops so that every line can be checked against torchvision's
 * `models/resnet.py` (BasicBlock, ResNet._make_layer, ResNet._forward_impl) and weights map 1:1 onto
 * its `state_dict`.
 *
 * Layout conventions: activations are NHWC (tfjs), convolution weights are stored as HWIO
 * `[kh, kw, in, out]` and the classifier weight as `[in, out]`. PyTorch uses OIHW and `[out, in]`;
 * `toTorchLayout` / `fromTorchLayout` convert at the import/export boundary and nowhere else.
 */

/** Parameters and BatchNorm buffers keyed by torchvision `state_dict` names, in `state_dict` order. */
export type ResNet18Params = ReadonlyMap<string, tf.Variable>;

/**
 * Points where a forward pass can resume from a cached activation: the network input, or the output of
 * the named torchvision module (`maxpool` ends the stem; `avgpool` is already flattened to `[N, 512]`).
 */
export type ResumePoint = 'input' | 'maxpool' | 'layer1' | 'layer2' | 'layer3' | 'layer4' | 'avgpool';

export interface ForwardOptions {
  /**
   * Training mode as in `nn.Module.train()`: BatchNorm normalises with batch statistics and updates its
   * running statistics (a side effect on `params`). Eval mode normalises with the running statistics.
   */
  training: boolean;
  /**
   * torchvision module names whose outputs to return, e.g. `layer4` or `layer4.1` for Grad-CAM.
   * Valid names are listed in `CAPTURE_NAMES`.
   */
  captureLayers?: readonly string[];
}

/**
 * Plain objects rather than a Map so that `tf.tidy(() => forward(...))` keeps the captured activations:
 * tidy only looks for tensors to keep inside plain objects and arrays.
 */
export type ForwardResult = {
  logits: tf.Tensor2D;
  /** Exactly the requested activations (NHWC, `avgpool` as `[N, 512]`), owned by the caller like `logits`. */
  activations: { [layer: string]: tf.Tensor };
};

export const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.1;
export const STEM_WIDTH = 64;
export const FEATURE_WIDTH = 512;
const INPUT_CHANNELS = 3;

interface ResidualLayerSpec {
  name: 'layer1' | 'layer2' | 'layer3' | 'layer4';
  width: number;
  firstStride: number;
}

/** ResNet-18 is `ResNet(BasicBlock, [2, 2, 2, 2])`: four layers of two blocks each. */
const RESIDUAL_LAYERS: readonly ResidualLayerSpec[] = [
  { name: 'layer1', width: 64, firstStride: 1 },
  { name: 'layer2', width: 128, firstStride: 2 },
  { name: 'layer3', width: 256, firstStride: 2 },
  { name: 'layer4', width: 512, firstStride: 2 },
];
const BLOCKS_PER_LAYER = 2;

export interface BlockSpec {
  /** Module path, e.g. `layer2.0`. */
  name: string;
  inChannels: number;
  outChannels: number;
  stride: number;
  /** torchvision adds `downsample = conv1x1 + BN` when the shortcut changes resolution or width. */
  hasDownsample: boolean;
}

function blocksOf(layer: ResidualLayerSpec): BlockSpec[] {
  const layerIndex = RESIDUAL_LAYERS.indexOf(layer);
  const layerInput = layerIndex === 0 ? STEM_WIDTH : RESIDUAL_LAYERS[layerIndex - 1].width;
  const blocks: BlockSpec[] = [];
  for (let i = 0; i < BLOCKS_PER_LAYER; i++) {
    const inChannels = i === 0 ? layerInput : layer.width;
    const stride = i === 0 ? layer.firstStride : 1;
    blocks.push({
      name: `${layer.name}.${i}`,
      inChannels,
      outChannels: layer.width,
      stride,
      hasDownsample: stride !== 1 || inChannels !== layer.width,
    });
  }
  return blocks;
}

/** ResNet-18's eight BasicBlocks in execution order, for graphs written outside tfjs (train/onnxTrainingGraph.ts). */
export const RESNET18_BLOCKS: readonly BlockSpec[] = RESIDUAL_LAYERS.flatMap(blocksOf);

/** Every module name `forward` can capture, in execution order. */
export const CAPTURE_NAMES: readonly string[] = [
  'conv1',
  'bn1',
  'relu',
  'maxpool',
  ...RESIDUAL_LAYERS.flatMap((layer) => [...blocksOf(layer).map((block) => block.name), layer.name]),
  'avgpool',
  'fc',
];

// ---------------------------------------------------------------------------------------------------
// Parameter specification and initialisation

export type ParamRole =
  'convWeight' | 'bnWeight' | 'bnBias' | 'bnRunningMean' | 'bnRunningVar' | 'bnBatchCount' | 'fcWeight' | 'fcBias';

export interface ParamSpec {
  /** torchvision `state_dict` key. */
  name: string;
  /** Shape in tfjs layout (HWIO for convolutions, `[in, out]` for `fc.weight`). */
  shape: number[];
  role: ParamRole;
}

const BUFFER_ROLES: ReadonlySet<ParamRole> = new Set(['bnRunningMean', 'bnRunningVar', 'bnBatchCount']);

/** True for learnable parameters (what `model.parameters()` yields), false for BatchNorm buffers. */
export function isLearnable(spec: ParamSpec): boolean {
  return !BUFFER_ROLES.has(spec.role);
}

function convSpec(name: string, kernel: number, inChannels: number, outChannels: number): ParamSpec {
  return { name: `${name}.weight`, shape: [kernel, kernel, inChannels, outChannels], role: 'convWeight' };
}

/** BatchNorm2d registers parameters weight, bias, then buffers running_mean, running_var, num_batches_tracked. */
function batchNormSpecs(name: string, channels: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [channels], role: 'bnWeight' },
    { name: `${name}.bias`, shape: [channels], role: 'bnBias' },
    { name: `${name}.running_mean`, shape: [channels], role: 'bnRunningMean' },
    { name: `${name}.running_var`, shape: [channels], role: 'bnRunningVar' },
    { name: `${name}.num_batches_tracked`, shape: [], role: 'bnBatchCount' },
  ];
}

function blockSpecs(block: BlockSpec): ParamSpec[] {
  const specs = [
    convSpec(`${block.name}.conv1`, 3, block.inChannels, block.outChannels),
    ...batchNormSpecs(`${block.name}.bn1`, block.outChannels),
    convSpec(`${block.name}.conv2`, 3, block.outChannels, block.outChannels),
    ...batchNormSpecs(`${block.name}.bn2`, block.outChannels),
  ];
  if (block.hasDownsample) {
    specs.push(
      convSpec(`${block.name}.downsample.0`, 1, block.inChannels, block.outChannels),
      ...batchNormSpecs(`${block.name}.downsample.1`, block.outChannels),
    );
  }
  return specs;
}

/** All parameters and buffers of ResNet-18 in torchvision's `state_dict` order. */
export function resnet18ParamSpecs(numClasses: number): ParamSpec[] {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`ResNet-18 needs a positive whole number of classes, got ${numClasses}`);
  }
  return [
    convSpec('conv1', 7, INPUT_CHANNELS, STEM_WIDTH),
    ...batchNormSpecs('bn1', STEM_WIDTH),
    ...RESIDUAL_LAYERS.flatMap((layer) => blocksOf(layer).flatMap(blockSpecs)),
    { name: 'fc.weight', shape: [FEATURE_WIDTH, numClasses], role: 'fcWeight' },
    { name: 'fc.bias', shape: [numClasses], role: 'fcBias' },
  ];
}

/** The value torchvision's constructor gives this parameter (ResNet.__init__'s init loop, nn.Linear defaults). */
export function initialValue(spec: ParamSpec, random: RandomSource): tf.Tensor {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  switch (spec.role) {
    case 'convWeight': {
      // kaiming_normal_(mode='fan_out', nonlinearity='relu'): std = sqrt(2 / (out * kh * kw)).
      const [kh, kw, , out] = spec.shape;
      return tf.tensor(randomNormals(count, Math.sqrt(2 / (out * kh * kw)), random), spec.shape);
    }
    case 'bnWeight':
    case 'bnRunningVar':
      return tf.ones(spec.shape);
    case 'bnBias':
    case 'bnRunningMean':
      return tf.zeros(spec.shape);
    case 'bnBatchCount':
      return tf.scalar(0, 'int32');
    case 'fcWeight':
    case 'fcBias':
      // nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) for the weight reduces to U(±1/sqrt(fan_in)),
      // and the bias uses the same bound.
      return tf.tensor(randomUniforms(count, 1 / Math.sqrt(FEATURE_WIDTH), random), spec.shape);
  }
}

/**
 * Builds a freshly initialised ResNet-18. Learnable parameters are trainable `tf.Variable`s; BatchNorm
 * buffers are non-trainable variables (updated by training-mode forward passes, never by optimisers).
 */
export function createResNet18(numClasses: number, seedOrRandom: number | RandomSource = 0): ResNet18Params {
  const random = randomSourceOf(seedOrRandom);
  const params = new Map<string, tf.Variable>();
  for (const spec of resnet18ParamSpecs(numClasses)) {
    const initial = initialValue(spec, random);
    params.set(spec.name, tf.variable(initial, isLearnable(spec)));
    initial.dispose();
  }
  return params;
}

export function numClassesOf(params: ResNet18Params): number {
  return requireParam(params, 'fc.bias').shape[0];
}

function requireParam(params: ResNet18Params, name: string): tf.Variable {
  const variable = params.get(name);
  if (!variable) throw new Error(`ResNet-18 parameters have no "${name}"`);
  return variable;
}

function isBufferName(name: string): boolean {
  return /\.(running_mean|running_var|num_batches_tracked)$/.test(name);
}

/** Number of learnable scalars, as `sum(p.numel() for p in model.parameters())` counts them. */
export function countParameters(params: ResNet18Params): number {
  let total = 0;
  for (const [name, variable] of params) if (!isBufferName(name)) total += variable.size;
  return total;
}

/** countParameters of a ResNet-18 for `numClasses`, without building one: 11,176,512 before fc, 513 per class. */
export function resnet18ParameterCount(numClasses: number): number {
  return 11_176_512 + 513 * numClasses;
}

const TRAINED_PREFIXES: Record<TrainingStrategy, readonly string[]> = {
  full: [''],
  finetune: ['layer4.', 'fc.'],
  linear: ['fc.'],
};

/** The variables an optimiser should update under `strategy`, in `state_dict` order; never BatchNorm buffers. */
export function trainableVariables(params: ResNet18Params, strategy: TrainingStrategy): tf.Variable[] {
  return [...trainableByName(params, strategy).values()];
}

/** The same variables keyed by their `state_dict` name, as optimisers and gradient exchange address them. */
export function trainableByName(params: ResNet18Params, strategy: TrainingStrategy): Map<string, tf.Variable> {
  const prefixes = TRAINED_PREFIXES[strategy];
  return new Map(
    [...params].filter(([name]) => !isBufferName(name) && prefixes.some((prefix) => name.startsWith(prefix))),
  );
}

export function disposeModel(params: ResNet18Params): void {
  for (const variable of params.values()) variable.dispose();
}

// ---------------------------------------------------------------------------------------------------
// Layout conversion (only rank decides: ResNet-18's rank-4 tensors are convolutions, its rank-2 tensor is fc)

const TORCH_FROM_TFJS: Readonly<Record<number, number[]>> = { 4: [3, 2, 0, 1], 2: [1, 0] }; // HWIO→OIHW, [in,out]→[out,in]
const TFJS_FROM_TORCH: Readonly<Record<number, number[]>> = { 4: [2, 3, 1, 0], 2: [1, 0] }; // OIHW→HWIO, [out,in]→[in,out]

/** The PyTorch shape of a parameter stored with tfjs shape `tfjsShape`. */
export function torchShapeOf(tfjsShape: readonly number[]): number[] {
  const permutation = TORCH_FROM_TFJS[tfjsShape.length];
  return permutation ? permutation.map((axis) => tfjsShape[axis]) : [...tfjsShape];
}

/** HWIO → OIHW and `[in, out]` → `[out, in]`; other ranks unchanged. Always a new tensor, owned by the caller. */
export function toTorchLayout(tensor: tf.Tensor): tf.Tensor {
  const permutation = TORCH_FROM_TFJS[tensor.rank];
  return permutation ? tf.transpose(tensor, permutation) : tf.clone(tensor);
}

/** OIHW → HWIO and `[out, in]` → `[in, out]`; other ranks unchanged. Always a new tensor, owned by the caller. */
export function fromTorchLayout(tensor: tf.Tensor): tf.Tensor {
  const permutation = TFJS_FROM_TORCH[tensor.rank];
  return permutation ? tf.transpose(tensor, permutation) : tf.clone(tensor);
}

// ---------------------------------------------------------------------------------------------------
// Forward pass

/** State of one forward pass: the parameters, the mode and the activations asked for. */
class ForwardPass {
  readonly activations: ForwardResult['activations'] = {};

  constructor(
    readonly params: ResNet18Params,
    readonly training: boolean,
    private readonly wanted: ReadonlySet<string>,
  ) {}

  /** A parameter as a tensor of the rank the call site knows it has (the spec table guarantees it). */
  param<T extends tf.Tensor>(name: string): T {
    return requireParam(this.params, name) as tf.Tensor as T;
  }

  variable(name: string): tf.Variable {
    return requireParam(this.params, name);
  }

  capture<T extends tf.Tensor>(name: string, activation: T): T {
    if (this.wanted.has(name)) this.activations[name] = activation;
    return activation;
  }
}

/**
 * nn.Conv2d(bias=False) with symmetric zero padding, given to the convolution as explicit padding: it
 * matches PyTorch exactly (tfjs 'same' would pad only bottom/right at stride 2 and shift every output by
 * a pixel), and the kernels pad as they go, where a separate Pad op would copy the activation forward
 * and slice its gradient backward (measured 4 % of a 128 px training step on wasm).
 */
function conv2d(x: tf.Tensor4D, weight: tf.Tensor4D, stride: number, padding: number): tf.Tensor4D {
  // A number pads every side by it; the output size is ⌊(in + 2·padding − k) / stride⌋ + 1, as in PyTorch.
  return tf.conv2d(x, weight, stride, padding);
}

/**
 * nn.MaxPool2d(kernel_size=3, stride=2, padding=1). PyTorch treats the padding as -inf, so a padded cell
 * never wins; so does tfjs's own pool padding (its kernels skip positions outside the input), which
 * saves a padded copy of the activation and the Slice of its gradient.
 */
function maxPool3x3Stride2(x: tf.Tensor4D): tf.Tensor4D {
  return tf.maxPool(x, 3, 2, 1);
}

/**
 * nn.BatchNorm2d(eps=1e-5, momentum=0.1) over the channel axis of NHWC input.
 *
 * Training mode normalises with the batch mean and the *biased* batch variance (divide by n), then
 * updates running_mean/running_var as `running = 0.9 * running + 0.1 * batch` — but with the *unbiased*
 * variance (divide by n − 1) for running_var. That asymmetry is what PyTorch does and a classic porting
 * trap: using the biased variance for the running estimate drifts eval-mode outputs away from PyTorch's.
 */
function batchNorm(pass: ForwardPass, x: tf.Tensor4D, name: string): tf.Tensor4D {
  const weight = pass.param<tf.Tensor1D>(`${name}.weight`);
  const bias = pass.param<tf.Tensor1D>(`${name}.bias`);
  if (pass.training && hasFusedBatchNorm()) {
    // One kernel forward and one backward (wasmBatchNorm.ts), the same arithmetic as the ops below.
    const fused = fusedBatchNormTraining(x, weight, bias, BN_EPSILON);
    updateRunningStatistics(pass.params, name, fused.mean, fused.variance, x.size / x.shape[3]);
    return fused.y;
  }
  let mean: tf.Tensor1D;
  let variance: tf.Tensor1D;
  if (pass.training) {
    ({ mean, variance } = tf.moments(x, [0, 1, 2]) as { mean: tf.Tensor1D; variance: tf.Tensor1D });
    updateRunningStatistics(pass.params, name, mean, variance, x.size / x.shape[3]);
  } else {
    mean = pass.param(`${name}.running_mean`);
    variance = pass.param(`${name}.running_var`);
  }
  // (x - mean) / sqrt(var + eps) * weight + bias, folded into one per-channel scale and shift.
  const scale = tf.mul(weight, tf.rsqrt(tf.add(variance, BN_EPSILON)));
  const shift = tf.sub(bias, tf.mul(mean, scale));
  return tf.add(tf.mul(x, scale), shift);
}

/**
 * PyTorch's running-statistics update of BatchNorm `name` from one training batch's mean and biased variance
 * over `valuesPerChannel` values: also used by the onnxruntime training step (train/onnxStep.ts), whose graph
 * outputs the batch statistics.
 */
export function updateRunningStatistics(
  params: ResNet18Params,
  name: string,
  batchMean: tf.Tensor1D,
  biasedBatchVariance: tf.Tensor1D,
  valuesPerChannel: number,
): void {
  if (valuesPerChannel < 2) {
    // PyTorch refuses too: the unbiased variance of a single value is undefined.
    throw new Error(`BatchNorm "${name}" needs more than one value per channel in training mode`);
  }
  const runningMean = requireParam(params, `${name}.running_mean`);
  const runningVar = requireParam(params, `${name}.running_var`);
  const batchesTracked = requireParam(params, `${name}.num_batches_tracked`);
  tf.tidy(() => {
    const unbiasedVariance = tf.mul(biasedBatchVariance, valuesPerChannel / (valuesPerChannel - 1));
    runningMean.assign(tf.add(tf.mul(runningMean, 1 - BN_MOMENTUM), tf.mul(batchMean, BN_MOMENTUM)));
    runningVar.assign(tf.add(tf.mul(runningVar, 1 - BN_MOMENTUM), tf.mul(unbiasedVariance, BN_MOMENTUM)));
    batchesTracked.assign(tf.add(batchesTracked, tf.scalar(1, 'int32')));
  });
}

/** torchvision BasicBlock.forward. */
function basicBlock(pass: ForwardPass, x: tf.Tensor4D, block: BlockSpec): tf.Tensor4D {
  let out = conv2d(x, pass.param(`${block.name}.conv1.weight`), block.stride, 1);
  out = batchNorm(pass, out, `${block.name}.bn1`);
  out = tf.relu(out);
  out = conv2d(out, pass.param(`${block.name}.conv2.weight`), 1, 1);
  out = batchNorm(pass, out, `${block.name}.bn2`);
  const identity = block.hasDownsample
    ? batchNorm(
        pass,
        conv2d(x, pass.param(`${block.name}.downsample.0.weight`), block.stride, 0),
        `${block.name}.downsample.1`,
      )
    : x;
  out = tf.relu(tf.add(out, identity) as tf.Tensor4D);
  return pass.capture(block.name, out);
}

interface Stage {
  /** Name of the module whose output this stage produces. */
  output: ResumePoint | 'fc';
  run(pass: ForwardPass, x: tf.Tensor): tf.Tensor;
}

/** ResNet._forward_impl, one stage per resumable point. */
const STAGES: readonly Stage[] = [
  {
    output: 'maxpool',
    run(pass, x) {
      let out = pass.capture('conv1', conv2d(x as tf.Tensor4D, pass.param('conv1.weight'), 2, 3));
      out = pass.capture('bn1', batchNorm(pass, out, 'bn1'));
      out = pass.capture('relu', tf.relu(out));
      return pass.capture('maxpool', maxPool3x3Stride2(out));
    },
  },
  ...RESIDUAL_LAYERS.map((layer): Stage => ({
    output: layer.name,
    run(pass, x) {
      let out = x as tf.Tensor4D;
      for (const block of blocksOf(layer)) out = basicBlock(pass, out, block);
      return pass.capture(layer.name, out);
    },
  })),
  {
    // AdaptiveAvgPool2d((1, 1)) followed by torch.flatten(x, 1).
    output: 'avgpool',
    run: (pass, x) => pass.capture('avgpool', tf.mean(x, [1, 2])),
  },
  {
    output: 'fc',
    run: (pass, x) =>
      pass.capture('fc', tf.add(tf.matMul(x as tf.Tensor2D, pass.param('fc.weight')), pass.param('fc.bias'))),
  },
];

/** Runs ResNet-18 on NHWC input `x` of shape `[N, H, W, 3]`. */
export function forward(params: ResNet18Params, x: tf.Tensor4D, options: ForwardOptions): ForwardResult {
  return forwardFrom(params, x, 'input', options);
}

/**
 * Continues a forward pass from a cached activation: `activation` is the output of `startAfter`
 * (e.g. `layer3` output `[N, H, W, 256]`, or `avgpool` features `[N, 512]`), so a frozen prefix can be
 * computed once. The prefix is not re-run, so its BatchNorm buffers are not updated in training mode.
 */
export function forwardFrom(
  params: ResNet18Params,
  activation: tf.Tensor,
  startAfter: ResumePoint,
  options: ForwardOptions,
): ForwardResult {
  const expectedRank = startAfter === 'avgpool' ? 2 : 4;
  if (activation.rank !== expectedRank) {
    throw new Error(
      `Resuming after "${startAfter}" needs a rank-${expectedRank} activation, got shape [${activation.shape}]`,
    );
  }
  const firstAvailable = startAfter === 'input' ? 0 : CAPTURE_NAMES.indexOf(startAfter) + 1;
  for (const name of options.captureLayers ?? []) {
    const position = CAPTURE_NAMES.indexOf(name);
    if (position < 0) throw new Error(`Unknown layer "${name}"; capturable layers: ${CAPTURE_NAMES.join(', ')}`);
    if (position < firstAvailable)
      throw new Error(`Layer "${name}" is not computed when resuming after "${startAfter}"`);
  }
  const pass = new ForwardPass(params, options.training, new Set(options.captureLayers));
  const firstStage = startAfter === 'input' ? 0 : STAGES.findIndex((stage) => stage.output === startAfter) + 1;
  let x = activation;
  for (const stage of STAGES.slice(firstStage)) x = stage.run(pass, x);
  return { logits: x as tf.Tensor2D, activations: pass.activations };
}
