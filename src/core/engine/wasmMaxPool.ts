/**
 * MaxPoolGrad for the wasm backend as a JS loop on the heap. The stock wasm kernel is a scalar loop over
 * every input position and every window that could contain it (measured 4–5 % of a 128 px training
 * step, for ResNet-18's single 3×3/2 pool); this one visits each window once, channels innermost
 * (NHWC, contiguous), and adds dy to the window's first maximum, as the cpu backend and PyTorch do
 * (padding never wins: it is outside the input, and windows are clipped to it).
 */
import * as tf from '@tensorflow/tfjs-core';
import { requireFloat32, type HeapBackend } from './wasmHeap.js';

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function maxPoolGrad(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as PoolAttrs;
  requireFloat32('MaxPoolGrad', dy, input);
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const backend = args.backend as HeapBackend;
  const dx = backend.makeOutput(input.shape, 'float32');
  const dxs = backend.typedArrayFromHeap(dx);
  const xs = backend.typedArrayFromHeap(input);
  const dys = backend.typedArrayFromHeap(dy);
  dxs.fill(0);
  const { inChannels: channels, inHeight, inWidth, outHeight, outWidth } = info;
  const best = new Float32Array(channels);
  const where = new Int32Array(channels);
  let out = 0;
  for (let n = 0; n < info.batchSize; n++) {
    for (let i = 0; i < outHeight; i++) {
      const top = i * info.strideHeight - info.padInfo.top;
      const rowBegin = Math.max(0, top);
      const rowEnd = Math.min(inHeight, top + info.filterHeight);
      for (let j = 0; j < outWidth; j++, out += channels) {
        const left = j * info.strideWidth - info.padInfo.left;
        const colBegin = Math.max(0, left);
        const colEnd = Math.min(inWidth, left + info.filterWidth);
        best.fill(-Infinity);
        where.fill(-1);
        // Row-major over the window with a strict '>': the first maximum wins ties.
        for (let r = rowBegin; r < rowEnd; r++) {
          for (let c = colBegin; c < colEnd; c++) {
            const pixel = ((n * inHeight + r) * inWidth + c) * channels;
            for (let ch = 0; ch < channels; ch++) {
              const value = xs[pixel + ch];
              if (value > best[ch]) {
                best[ch] = value;
                where[ch] = pixel + ch;
              }
            }
          }
        }
        for (let ch = 0; ch < channels; ch++) if (where[ch] >= 0) dxs[where[ch]] += dys[out + ch];
      }
    }
  }
  return dx;
}
