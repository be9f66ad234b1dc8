/**
 * Training throughput of ResNet-18 (full fine-tuning, Adam, batch 32) on the wasm backend: the
 * single-process `trainStep` against the 2-way data-parallel step, at 48 and 128 px. Reports the median
 * of several steps after a warm-up step (the first step compiles kernels and allocates the optimiser).
 * Wall-clock throughput: on a machine whose other core is busy, the data-parallel step cannot win.
 *
 *   node --import tsx scripts/bench-parallel.ts [steps=3] [sizes=48,128]
 */
import { selectBackend } from '../src/core/engine/backend.js';
import type { Batch } from '../src/core/data/batches.js';
import { createResNet18, disposeModel, trainableByName } from '../src/core/model/resnet18.js';
import { createDataParallelTrainer } from '../src/core/train/dataParallel.js';
import { createOptimizer } from '../src/core/train/optimizers.js';
import { trainStep } from '../src/core/train/step.js';

const BATCH = 32;
const CLASSES = 2;
const WEIGHTS = [1, 1];
const LEARNING_RATE = 1e-3;

function randomBatch(size: number, seed: number): Batch {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const y = Int32Array.from({ length: BATCH }, (_, i) => i % CLASSES);
  return {
    x: Float32Array.from({ length: BATCH * size * size * 3 }, random),
    y,
    paths: Array.from(y, (_, i) => `image-${i}`),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Seconds per step of each contender. Steps alternate between them, so a neighbour's load that comes and
 * goes (the machine is shared) falls on both alike; the first (warm-up) round is not counted.
 */
async function timeInterleaved(steps: number, contenders: ((index: number) => unknown)[]): Promise<number[][]> {
  const seconds = contenders.map(() => [] as number[]);
  for (let i = 0; i <= steps; i++) {
    for (const [k, step] of contenders.entries()) {
      const start = performance.now();
      await step(i);
      if (i > 0) seconds[k].push((performance.now() - start) / 1000);
    }
  }
  return seconds;
}

async function main(): Promise<void> {
  const steps = Number(process.argv[2] ?? 3);
  const sizes = (process.argv[3] ?? '48,128').split(',').map(Number);
  const backend = await selectBackend('wasm');
  console.log(`backend ${backend.name}, batch ${BATCH}, ${steps} timed steps after 1 warm-up, medians`);
  for (const size of sizes) {
    const batches = Array.from({ length: steps + 1 }, (_, i) => randomBatch(size, i + 1));

    // Two models, each with its own optimiser, so both contenders train as they would on their own.
    const models = [createResNet18(CLASSES, 0), createResNet18(CLASSES, 0)];
    const [singleTrainable, parallelTrainable] = models.map((params) => trainableByName(params, 'full'));
    const optimizers = [createOptimizer('adam'), createOptimizer('adam')];
    const trainer = createDataParallelTrainer({ numClasses: CLASSES, imageSize: size, workers: 2 });
    let single: number[];
    let parallel: number[];
    try {
      [single, parallel] = await timeInterleaved(steps, [
        (i) => trainStep(models[0], singleTrainable, optimizers[0], batches[i], size, CLASSES, WEIGHTS, LEARNING_RATE),
        (i) => trainer.step(models[1], parallelTrainable, optimizers[1], batches[i], WEIGHTS, LEARNING_RATE),
      ]);
    } finally {
      await trainer.dispose();
      for (const optimizer of optimizers) optimizer.dispose();
      for (const params of models) disposeModel(params);
    }

    const [s, p] = [median(single), median(parallel)];
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
    console.log(`${size} px  1 process: ${(BATCH / s).toFixed(1)} img/s (${fmt(single)} s/step)`);
    console.log(
      `${size} px  2-way DP : ${(BATCH / p).toFixed(1)} img/s (${fmt(parallel)} s/step)  speedup ×${(s / p).toFixed(2)}`,
    );
    // Ratio within each round: the two steps ran back to back, under nearly the same outside load.
    console.log(
      `${size} px  paired speedup (median of per-round ratios) ×${median(single.map((t, i) => t / parallel[i])).toFixed(2)}`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
