/**
 * Convolution gradient kernels that let the tfjs wasm backend train a CNN.
 *
 * Stock tfjs-backend-wasm 4.22 has no `Conv2DBackpropFilter` at all, and its `Conv2DBackpropInput` is a
 * scalar C++ loop that is far slower than the XNNPACK-backed forward `Conv2D`. Both gradients are
 * composed here from the backend's own registered kernels (Conv2D, BatchMatMul, Transpose, Slice,
 * Concat, PadV2, AddN), so the arithmetic runs in XNNPACK:
 *
 * - filter gradient: with x laid out as [C, H, W, N] and dy as [H', W', N, Cout], dW is a plain
 *   convolution of the former by the latter, dilated by the forward stride (batch and channels swap
 *   roles, so the N·H'·W' reduction becomes the convolution's reduction);
 * - input gradient, two ways, picked per call by which one makes XNNPACK pack the smaller operand
 *   (`inputGradientMethod`):
 *   - a stride-1 convolution of dy with the spatially flipped, in/out-swapped filter. For stride s the
 *     filter is first split into its s×s sub-pixel phases, stacked as output channels, so the
 *     convolution never multiplies the zeros a "zero-inserted dy" formulation would carry; one
 *     Transpose then interleaves the phases back into the full-resolution dx;
 *   - a MatMul of the filter by dy, whose per-tap column slabs are then summed into place (col2im).
 *
 * Kernels are called directly on TensorInfos (not through the engine), so intermediates never become
 * engine tensors and nothing is recorded on a gradient tape; every intermediate is released before the
 * kernel returns, which keeps memory flat across training steps.
 */
import * as tf from '@tensorflow/tfjs-core';
// Imported for its side effect: the stock wasm kernels must be registered before ours replace one of
// them, or a later import of the package would silently re-register the slow stock kernel over ours.
import '@tensorflow/tfjs-backend-wasm';
import { BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD, registerFusedBatchNorm } from './wasmBatchNorm.js';

const BACKEND_NAME = 'wasm';

type TensorInfo = tf.TensorInfo;
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

/** Names of the kernels `registerWasmTrainingKernels` installs for the wasm backend. */
export const wasmTrainingKernelNames = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
] as const;

/**
 * Runs registered wasm kernels on TensorInfos and owns every output until `finish`, which frees all of
 * them except the result handed back to the engine.
 */
class KernelScope {
  private readonly owned: TensorInfo[] = [];

  constructor(private readonly backend: tf.KernelBackend) {}

  run(
    kernelName: string,
    inputs: TensorInfo | TensorInfo[] | Record<string, TensorInfo>,
    attrs: object = {},
  ): TensorInfo {
    const kernel = tf.getKernel(kernelName, BACKEND_NAME);
    if (kernel === undefined || kernel === null)
      throw new Error(`wasm training kernels need the wasm '${kernelName}' kernel, which is not registered`);
    const namedInputs = ('dataId' in inputs ? { x: inputs } : inputs) as tf.NamedTensorInfoMap;
    const output = kernel.kernelFunc({ inputs: namedInputs, backend: this.backend, attrs: attrs as tf.NamedAttrMap });
    if (Array.isArray(output)) throw new Error(`wasm '${kernelName}' returned several outputs where one was expected`);
    this.owned.push(output);
    return output;
  }

  /**
   * Transpose by `perm`, with runs of axes that stay adjacent merged into one axis first. After
   * dropping leading axes that stay put, the wasm kernel has loops for rank ≤ 4 only; rank 5 and up
   * fall back to per-element index arithmetic that measured 50–300× slower on filter-sized tensors.
   */
  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    const runs: number[][] = [];
    for (const axis of perm) {
      const run = runs[runs.length - 1];
      if (run && run[run.length - 1] + 1 === axis) run.push(axis);
      else runs.push([axis]);
    }
    const runsInSourceOrder = [...runs].sort((a, b) => a[0] - b[0]);
    const mergedShape = runsInSourceOrder.map((run) => run.reduce((size, axis) => size * x.shape[axis], 1));
    const mergedPerm = runs.map((run) => runsInSourceOrder.indexOf(run));
    const transposed = this.run('Transpose', reshaped(x, mergedShape), { perm: mergedPerm });
    return reshaped(
      transposed,
      perm.map((axis) => x.shape[axis]),
    );
  }

  /** Frees every intermediate; `result` (or the tensor it is a reshaped view of) passes to the caller. */
  finish(result: TensorInfo): TensorInfo {
    const resultIndex = this.owned.findIndex((info) => info.dataId === result.dataId);
    if (resultIndex < 0) throw new Error('wasm training kernel tried to return a tensor it does not own');
    this.owned.forEach((info, index) => {
      if (index !== resultIndex) this.backend.disposeData(info.dataId);
    });
    this.owned.length = 0;
    return result;
  }
}

/** Same data, another shape: wasm kernels read a tensor through its dataId, so a reshape is free. */
function reshaped(info: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** One spatial axis of a forward convolution. */
interface ConvAxis {
  inSize: number;
  outSize: number;
  filterSize: number;
  stride: number;
  /** Zeros added before the input on this axis. */
  padBefore: number;
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: string;
  dimRoundingMode?: RoundingMode;
  dilations?: number | [number, number];
}

/** Geometry of the forward convolution that the gradient belongs to, validated against dy. */
function forwardAxes(
  kernelName: string,
  xShape: number[],
  filterShape: number[],
  dyShape: number[],
  attrs: ConvAttrs,
): [ConvAxis, ConvAxis] {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== null && attrs.dataFormat !== 'NHWC') {
    throw new Error(`wasm ${kernelName} supports dataFormat 'NHWC' only, got '${attrs.dataFormat}'`);
  }
  const dilations = attrs.dilations ?? 1;
  if (!tf.backend_util.tupleValuesAreOne(dilations)) {
    throw new Error(`wasm ${kernelName} supports dilation 1 only, got dilations ${JSON.stringify(dilations)}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  if (filterShape[2] !== info.inChannels) {
    throw new Error(`wasm ${kernelName}: filter has ${filterShape[2]} input channels but x has ${info.inChannels}`);
  }
  if (info.outShape.some((size, axis) => size !== dyShape[axis])) {
    throw new Error(`wasm ${kernelName}: dy has shape [${dyShape}] but the convolution produces [${info.outShape}]`);
  }
  return [
    {
      inSize: info.inHeight,
      outSize: info.outHeight,
      filterSize: info.filterHeight,
      stride: info.strideHeight,
      padBefore: info.padInfo.top,
    },
    {
      inSize: info.inWidth,
      outSize: info.outWidth,
      filterSize: info.filterWidth,
      stride: info.strideWidth,
      padBefore: info.padInfo.left,
    },
  ];
}

function requireFloat32(kernelName: string, ...tensors: TensorInfo[]): void {
  const other = tensors.find((t) => t.dtype !== 'float32');
  if (other) throw new Error(`wasm ${kernelName} supports float32 only, got ${other.dtype}`);
}

/** How one spatial axis of x is fed to the filter-gradient convolution. */
interface FilterGradientAxis {
  /** Leading input rows the forward conv read; later rows (skipped by its stride) are cropped. */
  usedInput: number;
  padAfter: number;
}

function filterGradientAxis(axis: ConvAxis): FilterGradientAxis {
  // The forward conv read padded positions 0 … extent−1. Feeding exactly that extent makes the
  // correlation produce exactly `filterSize` outputs; a 'valid' stride-2 conv on an even size skips the
  // last row, and leaving it in would make XNNPACK compute a whole extra filter row (16/9 the work for a
  // 3×3, 4× for a 1×1). Cropping never goes below one row, so a conv that reads only padding still works
  // (its surplus outputs are sliced off).
  const extent = (axis.outSize - 1) * axis.stride + axis.filterSize;
  const usedInput = Math.min(axis.inSize, Math.max(1, extent - axis.padBefore));
  return { usedInput, padAfter: Math.max(0, extent - axis.padBefore - usedInput) };
}

/**
 * dW[kh,kw,ci,co] = Σ_{n,i,j} x[n, i·s+kh−p, j·s+kw−p, ci] · dy[n,i,j,co], computed as one XNNPACK
 * convolution: input x as [C, H, W, N], filter dy as [H', W', N, Cout] dilated by the stride, output
 * [C, KH, KW, Cout]. Alternatives measured on ResNet-18 shapes: per-tap StridedSlice + MatMul is 4–20×
 * slower on strided layers (wasm StridedSlice is a scalar loop); im2col by a depthwise identity
 * convolution + MatMul is 10–30% faster on layer3/4 but 1.3–2× slower on layer1/2, too little overall
 * to justify a second path.
 */
function conv2DBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const kernelName = 'Conv2DBackpropFilter';
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
  requireFloat32(kernelName, x, dy);
  const [rows, cols] = forwardAxes(kernelName, x.shape, attrs.filterShape, dy.shape, attrs);
  const [filterHeight, filterWidth, inChannels, outChannels] = attrs.filterShape;
  const [batch] = x.shape;
  const rowPlan = filterGradientAxis(rows);
  const colPlan = filterGradientAxis(cols);

  const scope = new KernelScope(args.backend as tf.KernelBackend);
  const usedX =
    rowPlan.usedInput < rows.inSize || colPlan.usedInput < cols.inSize
      ? scope.run('Slice', x, { begin: [0, 0, 0, 0], size: [batch, rowPlan.usedInput, colPlan.usedInput, inChannels] })
      : x;
  const xByChannel = scope.transpose(usedX, [3, 1, 2, 0]);
  const dyAsFilter = scope.transpose(dy, [1, 2, 0, 3]);
  let gradient = scope.run(
    'Conv2D',
    { x: xByChannel, filter: dyAsFilter },
    {
      strides: 1,
      dilations: [rows.stride, cols.stride],
      pad: [
        [0, 0],
        [rows.padBefore, rowPlan.padAfter],
        [cols.padBefore, colPlan.padAfter],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  if (gradient.shape[1] !== filterHeight || gradient.shape[2] !== filterWidth) {
    gradient = scope.run('Slice', gradient, {
      begin: [0, 0, 0, 0],
      size: [inChannels, filterHeight, filterWidth, outChannels],
    });
  }
  return scope.finish(scope.transpose(gradient, [1, 2, 0, 3]));
}

/**
 * How one spatial axis of dx is produced by the sub-pixel convolution.
 *
 * With u = h + padBefore, dx[h] = Σ_m dy[⌊u/s⌋ − m] · W[u mod s + s·m]: for each phase r = u mod s a
 * stride-1 correlation of dy with the flipped sub-filter W[r], W[r+s], …, which has `taps` = ⌈k/s⌉ entries.
 */
interface SubPixelAxis {
  taps: number;
  convPadBefore: number;
  convPadAfter: number;
  /** Rows the convolution produces; the phase interleave turns each into `stride` rows of dx. */
  convOutSize: number;
  /** Leading interleaved rows that precede dx[0]. */
  cropBefore: number;
}

function subPixelAxis(axis: ConvAxis): SubPixelAxis {
  const taps = Math.ceil(axis.filterSize / axis.stride);
  const firstBlock = Math.floor(axis.padBefore / axis.stride);
  const lastBlock = Math.floor((axis.inSize - 1 + axis.padBefore) / axis.stride);
  // A full correlation pads taps−1 zeros before dy; blocks before `firstBlock` only feed the forward
  // padding, so they are skipped by padding less (never below zero: then they are cropped instead).
  const convPadBefore = Math.max(0, taps - 1 - firstBlock);
  const firstComputedBlock = taps - 1 - convPadBefore;
  const convPadAfter = Math.max(0, lastBlock + 1 - axis.outSize);
  return {
    taps,
    convPadBefore,
    convPadAfter,
    convOutSize: axis.outSize + convPadBefore + convPadAfter - taps + 1,
    cropBefore: axis.padBefore - axis.stride * firstComputedBlock,
  };
}

/** Reverses the order of the leading-axis blocks of `info` (a flip of the flattened filter taps). */
function reverseLeadingBlocks(scope: KernelScope, info: TensorInfo): TensorInfo {
  const [blocks, ...rest] = info.shape;
  if (blocks === 1) return info;
  const blockSize = rest.reduce((a, b) => a * b, 1);
  const flat = reshaped(info, [blocks, blockSize]);
  // Contiguous Slices and an axis-0 Concat are plain memory copies on wasm, whereas its Reverse,
  // GatherV2 and negative-stride StridedSlice kernels are element-wise loops, 10–100× slower here.
  const pieces: TensorInfo[] = [];
  for (let block = blocks - 1; block >= 0; block--) {
    pieces.push(scope.run('Slice', flat, { begin: [block, 0], size: [1, blockSize] }));
  }
  return reshaped(scope.run('Concat', pieces, { axis: 0 }), info.shape);
}

/**
 * dx as one stride-1 XNNPACK convolution of dy whose output channels hold the sH·sW sub-pixel phases of
 * dx, followed by a Transpose that interleaves the phases (pixel shuffle). Returns the interleaved
 * result and where dx starts in it.
 */
function inputGradientBySubPixelConv(
  scope: KernelScope,
  dy: TensorInfo,
  filter: TensorInfo,
  rows: ConvAxis,
  cols: ConvAxis,
): PaddedInputGradient {
  const [batch] = dy.shape;
  const [filterHeight, filterWidth, inChannels, outChannels] = filter.shape;
  const rowPlan = subPixelAxis(rows);
  const colPlan = subPixelAxis(cols);
  const phases = rows.stride * cols.stride;
  // Zero-extend the filter to a whole number of taps per phase, so that W[r + s·m] is a reshape.
  const extraRows = rowPlan.taps * rows.stride - filterHeight;
  const extraCols = colPlan.taps * cols.stride - filterWidth;
  const padded =
    extraRows > 0 || extraCols > 0
      ? scope.run('PadV2', filter, {
          paddings: [
            [0, extraRows],
            [0, extraCols],
            [0, 0],
            [0, 0],
          ],
          constantValue: 0,
        })
      : filter;
  // [tapRow, phaseRow, tapCol, phaseCol, in, out] → [tapRow, tapCol, out, phaseRow, phaseCol, in]: a
  // filter that reads Cout channels of dy and writes every phase's Cin channels. No single transpose of
  // rank ≤ 4 does this, so group the phases first, then swap in/out behind them.
  const taps = reshaped(padded, [rowPlan.taps, rows.stride, colPlan.taps, cols.stride, inChannels, outChannels]);
  const phasesInner =
    phases > 1
      ? scope.transpose(taps, [0, 2, 1, 3, 4, 5])
      : reshaped(taps, [rowPlan.taps, colPlan.taps, 1, 1, inChannels, outChannels]);
  const byPhase = scope.transpose(phasesInner, [0, 1, 5, 2, 3, 4]);
  const flipped = reverseLeadingBlocks(
    scope,
    reshaped(byPhase, [rowPlan.taps * colPlan.taps, outChannels * phases * inChannels]),
  );
  const phaseImages = scope.run(
    'Conv2D',
    { x: dy, filter: reshaped(flipped, [rowPlan.taps, colPlan.taps, outChannels, phases * inChannels]) },
    {
      strides: 1,
      dilations: 1,
      pad: [
        [0, 0],
        [rowPlan.convPadBefore, rowPlan.convPadAfter],
        [colPlan.convPadBefore, colPlan.convPadAfter],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  const shape = [batch, rowPlan.convOutSize * rows.stride, colPlan.convOutSize * cols.stride, inChannels];
  const origin = { row: rowPlan.cropBefore, col: colPlan.cropBefore };
  if (phases === 1) return { image: phaseImages, origin };
  // Measured faster than the wasm DepthToSpace kernel, and it also handles unequal row/column strides.
  const interleaved = scope.transpose(
    reshaped(phaseImages, [batch, rowPlan.convOutSize, colPlan.convOutSize, rows.stride, cols.stride, inChannels]),
    [0, 1, 3, 2, 4, 5],
  );
  return { image: reshaped(interleaved, shape), origin };
}

/**
 * dx by matrix product and col2im: columns[tap, ci, pixel] = Σ_co W[tap, ci, co] · dy[pixel, co], then
 * every tap's [N, H', W', Cin] slab is added at its offset (kh, kw) and stride into a zero canvas.
 * Here the filter is the streamed operand and dy the packed one, the reverse of the convolution.
 */
function inputGradientByMatMul(
  scope: KernelScope,
  dy: TensorInfo,
  filter: TensorInfo,
  rows: ConvAxis,
  cols: ConvAxis,
): PaddedInputGradient {
  const [batch] = dy.shape;
  const [filterHeight, filterWidth, inChannels, outChannels] = filter.shape;
  const taps = filterHeight * filterWidth;
  const pixels = batch * rows.outSize * cols.outSize;
  const dyByChannel = scope.transpose(reshaped(dy, [pixels, outChannels]), [1, 0]);
  const columns = scope.run(
    'BatchMatMul',
    {
      a: reshaped(filter, [1, taps * inChannels, outChannels]),
      b: reshaped(dyByChannel, [1, outChannels, pixels]),
    },
    { transposeA: false, transposeB: false },
  );
  const slabs = reshaped(scope.transpose(reshaped(columns, [taps, inChannels, pixels]), [0, 2, 1]), [
    taps,
    pixels * inChannels,
  ]);

  // The canvas covers every padded input position a tap reaches, in whole stride blocks: position
  // i·s + k becomes (block i + ⌊k/s⌋, phase k mod s), so placing a slab is a zero-pad of a
  // [N, H', 1, W', 1, Cin] view of it.
  const blocksOf = (axis: ConvAxis) =>
    Math.ceil(Math.max((axis.outSize - 1) * axis.stride + axis.filterSize, axis.padBefore + axis.inSize) / axis.stride);
  const rowBlocks = blocksOf(rows);
  const colBlocks = blocksOf(cols);
  const placement = (axis: ConvAxis, blocks: number, offset: number) => {
    const block = Math.floor(offset / axis.stride);
    const phase = offset % axis.stride;
    return [
      [block, blocks - axis.outSize - block],
      [phase, axis.stride - 1 - phase],
    ];
  };
  const placed: TensorInfo[] = [];
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      const tap = kh * filterWidth + kw;
      const slab = scope.run('Slice', slabs, { begin: [tap, 0], size: [1, pixels * inChannels] });
      placed.push(
        scope.run('PadV2', reshaped(slab, [batch, rows.outSize, 1, cols.outSize, 1, inChannels]), {
          paddings: [[0, 0], ...placement(rows, rowBlocks, kh), ...placement(cols, colBlocks, kw), [0, 0]],
          constantValue: 0,
        }),
      );
    }
  }
  const sum = placed.length > 1 ? scope.run('AddN', placed) : placed[0];
  const shape = [batch, rowBlocks * rows.stride, colBlocks * cols.stride, inChannels];
  return { image: reshaped(sum, shape), origin: { row: rows.padBefore, col: cols.padBefore } };
}

/** The gradient of a zero-padded input: dx is the part that starts at `origin`. */
interface PaddedInputGradient {
  image: TensorInfo;
  origin: { row: number; col: number };
}

export type InputGradientMethod = 'matmul' | 'subpixel-conv';

/**
 * Each method prepares one operand afresh on every call, at a cost that grows with its size: the
 * convolution flips, rearranges and has XNNPACK pack the filter (KH·KW·Cin × Cout values), the MatMul
 * transposes and packs dy (N·H'·W' × Cout values). The smaller operand wins: at 128 px, batch 8 and 16,
 * ResNet-18's layer3/layer4 (big filters, few pixels) ran 1.1–5× faster by MatMul, and layer1/layer2
 * 1.5–6× faster by convolution.
 */
export function inputGradientMethod(dyShape: readonly number[], filterShape: readonly number[]): InputGradientMethod {
  const [batch, outHeight, outWidth] = dyShape;
  const [filterHeight, filterWidth, inChannels] = filterShape;
  return batch * outHeight * outWidth < filterHeight * filterWidth * inChannels ? 'matmul' : 'subpixel-conv';
}

function conv2DBackpropInput(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const kernelName = 'Conv2DBackpropInput';
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
  requireFloat32(kernelName, dy, filter);
  const [rows, cols] = forwardAxes(kernelName, attrs.inputShape, filter.shape, dy.shape, attrs);
  const scope = new KernelScope(args.backend as tf.KernelBackend);
  const compute =
    inputGradientMethod(dy.shape, filter.shape) === 'matmul' ? inputGradientByMatMul : inputGradientBySubPixelConv;
  const { image, origin } = compute(scope, dy, filter, rows, cols);
  const [batch, inHeight, inWidth, inChannels] = attrs.inputShape;
  const exact = origin.row === 0 && origin.col === 0 && image.shape[1] === inHeight && image.shape[2] === inWidth;
  const dx = exact
    ? image
    : scope.run('Slice', image, {
        begin: [0, origin.row, origin.col, 0],
        size: [batch, inHeight, inWidth, inChannels],
      });
  return scope.finish(dx);
}

const trainingKernelConfigs: tf.KernelConfig[] = [
  { kernelName: 'Conv2DBackpropFilter', backendName: BACKEND_NAME, kernelFunc: conv2DBackpropFilter as tf.KernelFunc },
  { kernelName: 'Conv2DBackpropInput', backendName: BACKEND_NAME, kernelFunc: conv2DBackpropInput as tf.KernelFunc },
];

/**
 * Installs the convolution gradient kernels for the wasm backend, replacing the stock
 * `Conv2DBackpropInput`. Safe to call any number of times, before or after `tf.setBackend('wasm')`:
 * kernels are looked up when an op runs.
 */
export function registerWasmTrainingKernels(): void {
  for (const config of trainingKernelConfigs) {
    const current = tf.getKernel(config.kernelName, BACKEND_NAME);
    if (current?.kernelFunc === config.kernelFunc) continue;
    // Unregister first: registering over an existing kernel works but logs a warning.
    if (current) tf.unregisterKernel(config.kernelName, BACKEND_NAME);
    tf.registerKernel(config);
  }
  registerFusedBatchNorm(BACKEND_NAME);
}
