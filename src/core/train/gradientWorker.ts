/**
 * A data-parallel gradient worker (a worker_threads entry, see dataParallel.ts): its own tfjs on the wasm
 * backend and its own ResNet-18, whose weights are overwritten from shared memory before every shard, so
 * its initialisation never matters.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from '../engine/backend.js';
import { createResNet18 } from '../model/resnet18.js';
import { accumulatedGradient } from './accumulation.js';
import { inferLogits, stateLayout, type FromWorker, type ToWorker, type WorkerInit } from './dataParallel.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const send = (message: FromWorker) => port.postMessage(message);

async function start(): Promise<void> {
  // Always wasm: tfjs-node breaks in worker threads, and cpu would be far slower than the main thread.
  await selectBackend('wasm');
  const params = createResNet18(init.numClasses);
  const layout = stateLayout(init.numClasses);
  const state = new Float32Array(init.state);
  const out = new Float32Array(init.out);

  let loaded = -1;
  port.on('message', (message: ToWorker) => {
    try {
      // A step always reloads: its own forward pass changed the running statistics of this copy.
      if (message.version !== loaded || message.type === 'step') {
        for (const entry of layout.entries) {
          const variable = params.get(entry.name)!;
          tf.tidy(() =>
            variable.assign(tf.tensor(state.subarray(entry.offset, entry.offset + entry.size), entry.shape)),
          );
        }
        loaded = message.type === 'step' ? -1 : message.version;
      }
      if (message.type === 'infer') {
        const logits = inferLogits(params, message.x, message.n, init.imageSize);
        send({ type: 'logits', logits });
        return;
      }
      const n = message.y.length;
      const batch = { x: message.x, y: message.y, paths: new Array<string>(n).fill('') };
      const result = accumulatedGradient(
        params,
        message.trainable,
        batch,
        init.imageSize,
        init.numClasses,
        message.weights,
        layout.byName,
        out,
        init.microBatch,
      );
      // The running statistics this shard produced, for the main thread to average.
      for (const entry of layout.entries) {
        if (entry.isRunningStat) out.set(params.get(entry.name)!.dataSync() as Float32Array, entry.offset);
      }
      send({ type: 'done', ...result });
    } catch (error) {
      send({ type: 'error', message: (error as Error).stack ?? String(error) });
    }
  });
  send({ type: 'ready' });
}

start().catch((error: Error) => send({ type: 'error', message: error.stack ?? String(error) }));
