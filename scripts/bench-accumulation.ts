/**
 * What gradient accumulation costs: the same training step (ResNet-18, Adam, batch 32, wasm) with the
 * automatic micro-batch against one micro-batch per thread, interleaved in one process so a shared
 * machine's load falls on both alike. CPU time is the figure to read (wall time follows the load); the
 * first round is a warm-up.
 *
 *   node --import tsx scripts/bench-accumulation.ts [size=128] [workers=2] [rounds=3]
 */
import { loadavg } from 'node:os';
import { selectBackend } from '../src/core/engine/backend.js';
import { createResNet18, disposeModel, trainableByName } from '../src/core/model/resnet18.js';
import { microBatchSize } from '../src/core/train/accumulation.js';
import { createDataParallelTrainer } from '../src/core/train/dataParallel.js';
import { createOptimizer } from '../src/core/train/optimizers.js';

const BATCH = 32;
const CLASSES = 2;
const WEIGHTS = [1, 1];
const LEARNING_RATE = 1e-3;

async function main(): Promise<void> {
  const [size = 128, workers = 2, rounds = 3] = process.argv.slice(2).map(Number);
  await selectBackend('wasm');
  const automatic = microBatchSize(size, workers);
  // One micro-batch per thread is what ran before accumulation; it may outgrow the heap at large sizes.
  const contenders = [
    { label: `one micro-batch per thread (${Math.ceil(BATCH / workers)})`, microBatch: BATCH },
    { label: `automatic micro-batch (${automatic})`, microBatch: automatic },
  ];
  const params = createResNet18(CLASSES, 1);
  const optimizer = createOptimizer('adam');
  const trainable = trainableByName(params, 'full');
  let state = 7;
  const random = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const batch = {
    x: Float32Array.from({ length: BATCH * size * size * 3 }, random),
    y: Int32Array.from({ length: BATCH }, (_, i) => i % CLASSES),
    paths: [],
  };
  const trainers = contenders.map(({ microBatch }) =>
    createDataParallelTrainer({ numClasses: CLASSES, imageSize: size, workers, microBatch }),
  );
  const cpuSeconds = contenders.map(() => 0);
  const wallSeconds = contenders.map(() => 0);
  try {
    for (let round = 0; round <= rounds; round++) {
      for (const [k, trainer] of trainers.entries()) {
        const cpuStart = process.cpuUsage();
        const start = performance.now();
        await trainer.step(params, trainable, optimizer, batch, WEIGHTS, LEARNING_RATE);
        if (round === 0) continue;
        const cpu = process.cpuUsage(cpuStart);
        cpuSeconds[k] += (cpu.user + cpu.system) / 1e6;
        wallSeconds[k] += (performance.now() - start) / 1000;
      }
    }
  } finally {
    for (const trainer of trainers) await trainer.dispose();
    disposeModel(params);
    optimizer.dispose();
  }
  console.log(`Training ${size} px, batch ${BATCH}, ${workers} thread(s), ${rounds} steps each:`);
  contenders.forEach(({ label }, k) => {
    const images = rounds * BATCH;
    console.log(
      `  ${label}: ${(images / cpuSeconds[k]).toFixed(2)} img/CPU-s, ${(images / wallSeconds[k]).toFixed(2)} img/s, ` +
        `CPU ratio to the first ${(cpuSeconds[0] / cpuSeconds[k]).toFixed(3)}`,
    );
  });
  console.log(
    `Load average (1, 5, 15 min): ${loadavg()
      .map((value) => value.toFixed(2))
      .join(' ')}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
