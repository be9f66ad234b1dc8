/**
 * Chooses the tfjs backend at run time: native TensorFlow (`@tensorflow/tfjs-node`, an optional
 * dependency) when it is installed and loads, else wasm (XNNPACK, with our training kernels), else the
 * pure-JS cpu backend. The choice is always reported: a run's speed and numerics depend on it.
 */
import * as tf from '@tensorflow/tfjs-core';
// Under Node, importing tfjs-core registers no gradients; training needs them all.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import type { BackendName, BackendReport } from '../run/runFile.js';
import { registerWasmTrainingKernels } from './wasmKernels.js';

const ORDER: BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/* eslint-disable @typescript-eslint/no-require-imports -- a backend is loaded only when chosen, and an optional
   one (tfjs-node) may be missing: a synchronous require in the CommonJS bundles, caught by selectBackend. */
async function tryBackend(name: BackendName): Promise<void> {
  switch (name) {
    case 'tensorflow':
      // Native code: a failed load throws here rather than crashing later.
      require('@tensorflow/tfjs-node');
      break;
    case 'wasm':
      require('@tensorflow/tfjs-backend-wasm');
      registerWasmTrainingKernels();
      break;
    case 'cpu':
      require('@tensorflow/tfjs-backend-cpu');
      break;
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

export async function selectBackend(choice: BackendName | 'auto'): Promise<BackendReport> {
  const candidates = choice === 'auto' ? ORDER : [choice];
  const skipped: string[] = [];
  for (const name of candidates) {
    try {
      await tryBackend(name);
      return { name, skipped };
    } catch (error) {
      const reason =
        (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND'
          ? 'not installed'
          : (error as Error).message.split('\n')[0];
      skipped.push(`${name}: ${reason}`);
    }
  }
  throw new Error(`No TensorFlow.js backend could be started (${skipped.join('; ')})`);
}
