/**
 * What our JS kernels use of tfjs-backend-wasm's BackendWasm (its public methods): they read and write
 * tensors in place on the wasm heap. Imports tfjs-core only, so that the model can import the kernels'
 * ops without loading the wasm backend.
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface HeapBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of the tensor's bytes; views made before a later allocation may be detached by heap growth. */
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

export function requireFloat32(kernelName: string, ...tensors: tf.TensorInfo[]): void {
  const other = tensors.find((t) => t.dtype !== 'float32');
  if (other) throw new Error(`wasm ${kernelName} supports float32 only, got ${other.dtype}`);
}
