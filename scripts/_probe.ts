import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/core/engine/backend.js';
import { createResNet18, trainableByName } from '../src/core/model/resnet18.js';
import { createOptimizer } from '../src/core/train/optimizers.js';
import { trainStep } from '../src/core/train/step.js';
(async () => {
const [size, batch] = process.argv.slice(2).map(Number);
await selectBackend('wasm');
const params = createResNet18(2, 1);
const opt = createOptimizer('adam');
const trainable = trainableByName(params, 'full');
const x = new Float32Array(batch*size*size*3).map(() => Math.random()*2-1);
const b = { x, y: Int32Array.from({length: batch}, (_, i) => i % 2), paths: [] };
const heap = () => ((tf.backend() as any).wasm.HEAPU8.byteLength/1e6).toFixed(0);
console.log('start heap MB', heap(), 'tensors MB', (tf.memory().numBytes/1e6).toFixed(0), 'rss', (process.memoryUsage().rss/1e6).toFixed(0));
for (let i = 0; i < 2; i++) {
  const t0 = performance.now();
  const p = await tf.profile(() => { trainStep(params, trainable, opt, b, size, 2, [1,1], 1e-3); });
  console.log(`step ${i} ${(performance.now()-t0).toFixed(0)} ms peakMB ${(p.peakBytes/1e6).toFixed(0)} heapMB ${heap()} tensorsMB ${(tf.memory().numBytes/1e6).toFixed(0)} rss ${(process.memoryUsage().rss/1e6).toFixed(0)} maxrss ${(process.resourceUsage().maxRSS/1e3).toFixed(0)}`);
}

})();