/**
 * Training kernels that let the tfjs wasm backend train a CNN at XNNPACK speed.
 *
 * Stock tfjs-backend-wasm 4.22 has no `Conv2DBackpropFilter` at all, its `Conv2DBackpropInput` is a
 * scalar C++ loop, and its `Identity` copies. The convolution gradients here put the
 * arithmetic in XNNPACK (the backend's BatchMatMul and Conv2D kernels) and do the data movement around
 * it in JS loops straight on the wasm heap, where tfjs's own Slice/Pad/StridedSlice kernels would copy
 * whole tensors per call:
 *
 * - filter gradient: im2col + matrix products. Patch rows [taps·Cin, N·H'·W'] are written from x (stride
 *   and padding folded in) and multiplied by dy as [N·H'·W', Cout], one tap (or, for few input channels,
 *   a group of taps) per product; dy is the same tensor in every product, so XNNPACK packs it once;
 * - input gradient, picked per call by which operand XNNPACK must pack (`inputGradientMethod`):
 *   - stride 1: a convolution of dy with the spatially flipped, in/out-swapped filter (XNNPACK's
 *     convolution is its fastest kernel). The sub-pixel formulation behind it also handles strides;
 *   - a matrix product of dy and the filter, oriented to pack the smaller of the two, whose columns a
 *     JS col2im loop adds into dx;
 * - training-mode BatchNorm with its gradient (wasmBatchNorm.ts) as JS loops on the heap; Identity
 *   shares its input's buffer.
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
import { requireFloat32, type HeapBackend } from './wasmHeap.js';

const BACKEND_NAME = 'wasm';

type TensorInfo = tf.TensorInfo;
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

/** Names of the kernels `registerWasmTrainingKernels` installs for the wasm backend. */
export const wasmTrainingKernelNames = [
  'Identity',
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

  /** The backend, for kernels that read and write its heap. */
  get heapBackend(): HeapBackend {
    return this.backend as HeapBackend;
  }

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

  /** A new float32 tensor to be filled in place, owned like the kernels' outputs. */
  make(shape: number[]): TensorInfo {
    const info = (this.backend as HeapBackend).makeOutput(shape, 'float32');
    this.owned.push(info);
    return info;
  }

  /** Frees an intermediate before `finish`, to keep the peak memory of a kernel low. */
  release(info: TensorInfo): void {
    const index = this.owned.findIndex((owned) => owned.dataId === info.dataId);
    if (index < 0) throw new Error('wasm training kernel tried to release a tensor it does not own');
    this.backend.disposeData(info.dataId);
    this.owned.splice(index, 1);
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

/** Which input positions one filter tap reads along one axis, for output positions 0 … outSize−1. */
interface TapReach {
  /** Input position of output 0 (may be negative: padding). */
  first: number;
  /** Output positions [begin, end) read inside the input; the others read padding (zero). */
  begin: number;
  end: number;
}

function tapReach(axis: ConvAxis, tap: number): TapReach {
  const first = tap - axis.padBefore;
  const begin = Math.min(axis.outSize, Math.max(0, Math.ceil(-first / axis.stride)));
  const end = Math.max(begin, Math.min(axis.outSize, Math.floor((axis.inSize - 1 - first) / axis.stride) + 1));
  return { first, begin, end };
}

/**
 * Writes the patch rows of `taps` into `patches` (from `offset`): for each tap and input channel one row
 * of N·H'·W' values, x[n, i·s + kh − p, j·s + kw − p, c] or zero in the padding. `planes` is x as
 * [C, N, H, W], so each row is read from one contiguous plane per image.
 */
function writePatchRows(
  planes: Float32Array,
  patches: Float32Array,
  offset: number,
  taps: readonly [number, number][],
  rows: ConvAxis,
  cols: ConvAxis,
  channels: number,
  batch: number,
): void {
  const planeSize = rows.inSize * cols.inSize;
  let out = offset;
  for (const [kh, kw] of taps) {
    const r = tapReach(rows, kh);
    const c = tapReach(cols, kw);
    for (let plane = 0; plane < channels * batch; plane++) {
      const planeStart = plane * planeSize;
      for (let i = 0; i < rows.outSize; i++) {
        if (i < r.begin || i >= r.end) {
          patches.fill(0, out, out + cols.outSize);
          out += cols.outSize;
          continue;
        }
        const rowStart = planeStart + (r.first + i * rows.stride) * cols.inSize + c.first;
        for (let j = 0; j < c.begin; j++) patches[out++] = 0;
        for (let j = c.begin; j < c.end; j++) patches[out++] = planes[rowStart + j * cols.stride];
        for (let j = c.end; j < cols.outSize; j++) patches[out++] = 0;
      }
    }
  }
}

/**
 * Patch rows per matrix product: enough taps that the product has at least this many rows (a stem with 3
 * input channels takes every tap at once), one tap when the channels alone are that many. Then the
 * patch buffer is one tap's worth, reused for every tap.
 */
const MIN_PRODUCT_ROWS = 64;

/**
 * dW[kh,kw,ci,co] = Σ_{n,i,j} x[n, i·s+kh−p, j·s+kw−p, ci] · dy[n,i,j,co] as im2col + matrix products: the
 * patches of a group of taps as rows [taps·Cin, N·H'·W'], times dy as [N·H'·W', Cout] in XNNPACK. dy is
 * the same tensor in every product, so XNNPACK packs it once (its operator cache is keyed by tensor),
 * and the patches, the streamed operand, are written by a JS loop straight from x as [C, N, H, W]
 * (stride and padding folded in, no Pad or StridedSlice). Measured against the previous "x convolved by
 * dy" formulation at 128 px, batch 16: see README (Speed and memory).
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
  const pixels = batch * rows.outSize * cols.outSize;
  const backend = args.backend as HeapBackend;
  const scope = new KernelScope(backend);

  const taps: [number, number][] = [];
  for (let kh = 0; kh < filterHeight; kh++) for (let kw = 0; kw < filterWidth; kw++) taps.push([kh, kw]);
  const tapsPerProduct = Math.min(taps.length, Math.ceil(MIN_PRODUCT_ROWS / inChannels));
  const planes = scope.transpose(x, [3, 0, 1, 2]);
  const dyMatrix = reshaped(dy, [1, pixels, outChannels]);
  const products: TensorInfo[] = [];
  for (let first = 0; first < taps.length; first += tapsPerProduct) {
    const group = taps.slice(first, first + tapsPerProduct);
    const patches = scope.make([1, group.length * inChannels, pixels]);
    writePatchRows(
      backend.typedArrayFromHeap(planes),
      backend.typedArrayFromHeap(patches),
      0,
      group,
      rows,
      cols,
      inChannels,
      batch,
    );
    products.push(scope.run('BatchMatMul', { a: patches, b: dyMatrix }, { transposeA: false, transposeB: false }));
    scope.release(patches);
  }
  const gradient = products.length > 1 ? scope.run('Concat', products, { axis: 1 }) : products[0];
  return scope.finish(reshaped(gradient, attrs.filterShape));
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

/** The gradient of a zero-padded input: dx is the part that starts at `origin`. */
interface PaddedInputGradient {
  image: TensorInfo;
  origin: { row: number; col: number };
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
 * dx by one matrix product and col2im: columns[pixel, tap, ci] = Σ_co dy[pixel, co] · W[tap, ci, co], then
 * a JS loop adds every column into dx at its input position (stride and padding folded in). Which
 * operand XNNPACK packs (copies into its own layout, at a few ns a value, on every call: both change
 * each step) decides the orientation: `packed` = 'dy' streams the filter as [taps·Cin, Cout] against dy
 * transposed to [Cout, N·H'·W'], for layers with few pixels; 'filter' streams dy as it is, [N·H'·W', Cout],
 * against the filter transposed to [Cout, taps·Cin].
 */
function inputGradientByMatMul(
  scope: KernelScope,
  dy: TensorInfo,
  filter: TensorInfo,
  rows: ConvAxis,
  cols: ConvAxis,
  inputShape: number[],
  packed: 'dy' | 'filter',
): TensorInfo {
  const backend = scope.heapBackend;
  const [batch] = dy.shape;
  const [filterHeight, filterWidth, inChannels, outChannels] = filter.shape;
  const taps = filterHeight * filterWidth;
  const pixels = batch * rows.outSize * cols.outSize;
  const matMul = (a: TensorInfo, b: TensorInfo) =>
    scope.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
  const columns =
    packed === 'dy'
      ? matMul(
          reshaped(filter, [1, taps * inChannels, outChannels]),
          reshaped(scope.transpose(reshaped(dy, [pixels, outChannels]), [1, 0]), [1, outChannels, pixels]),
        )
      : matMul(
          reshaped(dy, [1, pixels, outChannels]),
          reshaped(scope.transpose(reshaped(filter, [taps * inChannels, outChannels]), [1, 0]), [
            1,
            outChannels,
            taps * inChannels,
          ]),
        );
  const dx = scope.make(inputShape);
  const dxs = backend.typedArrayFromHeap(dx);
  dxs.fill(0);
  const layout = packed === 'dy' ? tapMajorColumns(pixels, inChannels) : pixelMajorColumns(taps, inChannels);
  addColumns(backend.typedArrayFromHeap(columns), dxs, layout, filterWidth, rows, cols, inChannels, batch);
  return dx;
}

/** Where column (tap, pixel, channel 0) starts, and the step between channels. */
interface ColumnLayout {
  start(tap: number, pixel: number): number;
  channelStep: number;
}

/** Columns as [taps, Cin, pixels] (the filter was streamed). */
function tapMajorColumns(pixels: number, channels: number): ColumnLayout {
  return { start: (tap, pixel) => tap * channels * pixels + pixel, channelStep: pixels };
}

/** Columns as [pixels, taps, Cin] (dy was streamed). */
function pixelMajorColumns(taps: number, channels: number): ColumnLayout {
  return { start: (tap, pixel) => (pixel * taps + tap) * channels, channelStep: 1 };
}

/** col2im: dx[n, i·s + kh − p, j·s + kw − p, :] += columns[tap (kh, kw), pixel (n, i, j), :], padding skipped. */
function addColumns(
  columns: Float32Array,
  dx: Float32Array,
  layout: ColumnLayout,
  filterWidth: number,
  rows: ConvAxis,
  cols: ConvAxis,
  channels: number,
  batch: number,
): void {
  const { channelStep } = layout;
  for (let tap = 0; tap < rows.filterSize * filterWidth; tap++) {
    const r = tapReach(rows, Math.floor(tap / filterWidth));
    const c = tapReach(cols, tap % filterWidth);
    for (let n = 0; n < batch; n++) {
      for (let i = r.begin; i < r.end; i++) {
        const inputRow = (n * rows.inSize + r.first + i * rows.stride) * cols.inSize;
        const pixelRow = (n * rows.outSize + i) * cols.outSize;
        for (let j = c.begin; j < c.end; j++) {
          const target = (inputRow + c.first + j * cols.stride) * channels;
          let source = layout.start(tap, pixelRow + j);
          for (let ci = 0; ci < channels; ci++, source += channelStep) dx[target + ci] += columns[source];
        }
      }
    }
  }
}

export type InputGradientMethod = 'matmul-packed-dy' | 'matmul-packed-filter' | 'subpixel-conv';

/**
 * Every method has XNNPACK pack one operand afresh on every call, at a cost that grows with its size:
 * dy (N·H'·W' × Cout values) or the filter (KH·KW·Cin × Cout). With fewer pixels than filter rows
 * (layer3/layer4 at 128 px) dy is packed; otherwise the filter, by a plain stride-1 convolution of dy with
 * the flipped filter when the stride is 1 (XNNPACK's convolution, its fastest kernel), and by the
 * matrix product otherwise: a strided sub-pixel convolution wastes ⌈k/s⌉²·s²/k² of its work on zero taps.
 */
export function inputGradientMethod(
  dyShape: readonly number[],
  filterShape: readonly number[],
  strides: readonly [number, number],
): InputGradientMethod {
  const [batch, outHeight, outWidth] = dyShape;
  const [filterHeight, filterWidth, inChannels] = filterShape;
  if (batch * outHeight * outWidth < filterHeight * filterWidth * inChannels) return 'matmul-packed-dy';
  return strides[0] === 1 && strides[1] === 1 ? 'subpixel-conv' : 'matmul-packed-filter';
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
  const method = inputGradientMethod(dy.shape, filter.shape, [rows.stride, cols.stride]);
  if (method !== 'subpixel-conv') {
    const packed = method === 'matmul-packed-dy' ? 'dy' : 'filter';
    return scope.finish(inputGradientByMatMul(scope, dy, filter, rows, cols, attrs.inputShape, packed));
  }
  const { image, origin } = inputGradientBySubPixelConv(scope, dy, filter, rows, cols);
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

/**
 * Identity sharing its input's buffer, as the cpu backend's does. The stock wasm Identity copies it, and
 * tfjs clones (Identity) every tensor it saves for the backward pass: at 128 px that copied every
 * activation of a training step once more (2 % of the step, and the memory of a second copy). Sharing
 * is safe because tfjs never writes into a tensor's buffer once made (`Variable.assign` swaps buffers).
 */
function sharedIdentity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  (args.backend as tf.KernelBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const trainingKernelConfigs: tf.KernelConfig[] = [
  { kernelName: 'Identity', backendName: BACKEND_NAME, kernelFunc: sharedIdentity as tf.KernelFunc },
  { kernelName: 'Conv2DBackpropFilter', backendName: BACKEND_NAME, kernelFunc: conv2DBackpropFilter as tf.KernelFunc },
  { kernelName: 'Conv2DBackpropInput', backendName: BACKEND_NAME, kernelFunc: conv2DBackpropInput as tf.KernelFunc },
];

/**
 * Installs the training kernels for the wasm backend (`wasmTrainingKernelNames`), replacing the stock
 * `Conv2DBackpropInput` and `Identity`. Safe to call any number of times, before or after
 * `tf.setBackend('wasm')`: kernels are looked up when an op runs.
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
