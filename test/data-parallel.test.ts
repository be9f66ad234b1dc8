import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { selectBackend } from '../src/core/engine/backend.js';
import * as tf from '@tensorflow/tfjs-core';
import {
  createResNet18,
  disposeModel,
  forward,
  trainableByName,
  type ResNet18Params,
} from '../src/core/model/resnet18.js';
import { createDataParallelTrainer, inferLogits } from '../src/core/train/dataParallel.js';
import { createOptimizer } from '../src/core/train/optimizers.js';
import { trainStep } from '../src/core/train/step.js';
import type { Batch } from '../src/core/data/batches.js';

// Generous timeouts: the machine is shared, and a 60 s limit timed out under a load average of 18.
const SIZE = 32;
const CLASSES = 2;
// Binary-exact weights, so every weight sum (4 per shard, 8 in all) and the scaling by it are exact.
const WEIGHTS = [0.5, 1.5];

before(async () => {
  await selectBackend('wasm');
});

function snapshot(params: ResNet18Params): Map<string, Float32Array> {
  return new Map([...params].map(([name, v]) => [name, Float32Array.from(v.dataSync())]));
}

/**
 * Four distinct images, then the same four again. Each 2-way shard then holds exactly the images of the
 * whole batch once, so its BatchNorm batch mean and (biased) variance are those of the whole batch: the
 * data-parallel gradient must equal the single-process one up to float rounding, not merely resemble it.
 */
function halfBatch(): Batch {
  let state = 12345;
  const random = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const y = Int32Array.from([0, 1, 1, 0]);
  return {
    x: Float32Array.from({ length: 4 * SIZE * SIZE * 3 }, random),
    y,
    paths: Array.from(y, (_, i) => `image-${i}`),
  };
}

function duplicatedBatch(): Batch {
  const half = halfBatch();
  const x = new Float32Array(2 * half.x.length);
  x.set(half.x, 0);
  x.set(half.x, half.x.length);
  return { x, y: Int32Array.from([...half.y, ...half.y]), paths: [...half.paths, ...half.paths] };
}

test(
  'a 2-way data-parallel step updates the weights as the single-process trainStep does',
  { timeout: 300_000 },
  async () => {
    const batch = duplicatedBatch();
    // SGD, not Adam: Adam's first step is ≈ lr·sign(g), which turns rounding noise in near-zero gradients
    // into full-size differences; SGD's update is lr·g, so its difference is the gradient's difference.
    const learningRate = 0.1;

    const reference = createResNet18(CLASSES, 7);
    const before = snapshot(reference);
    const referenceOptimizer = createOptimizer('sgd');
    const expected = trainStep(
      reference,
      trainableByName(reference, 'full'),
      referenceOptimizer,
      batch,
      SIZE,
      CLASSES,
      WEIGHTS,
      learningRate,
    );
    // Each shard computes exactly what trainStep computes on the four distinct images; the recombination
    // (×4 per shard, sum of two, ÷8) is exact in binary floats, so this reference must match bit for bit,
    // running statistics included (the shards' equal-weight average of two equal values is exact too).
    const shardwise = createResNet18(CLASSES, 7);
    const shardwiseOptimizer = createOptimizer('sgd');
    const expectedShard = trainStep(
      shardwise,
      trainableByName(shardwise, 'full'),
      shardwiseOptimizer,
      halfBatch(),
      SIZE,
      CLASSES,
      WEIGHTS,
      learningRate,
    );

    const model = createResNet18(CLASSES, 7);
    const optimizer = createOptimizer('sgd');
    const trainer = createDataParallelTrainer({ numClasses: CLASSES, imageSize: SIZE, workers: 2 });
    try {
      const actual = await trainer.step(model, trainableByName(model, 'full'), optimizer, batch, WEIGHTS, learningRate);
      assert.equal(actual.correct, expected.correct);
      assert.equal(actual.correct, 2 * expectedShard.correct);
      assert.equal(actual.loss, expectedShard.loss);
      // Same float32 noise bound as the updates below (measured ~3e-6 relative).
      assert.ok(
        Math.abs(actual.loss - expected.loss) <= 1e-4 * Math.abs(expected.loss),
        `loss ${actual.loss} vs ${expected.loss}`,
      );

      for (const [name, variable] of model) {
        const got = variable.dataSync();
        assert.deepEqual(got, shardwise.get(name)!.dataSync(), `${name} matches the shard-wise reference exactly`);
        const want = reference.get(name)!.dataSync();
        const start = before.get(name)!;
        if (name.endsWith('num_batches_tracked')) {
          assert.equal(got[0], want[0], `${name} advances once per step`);
          continue;
        }
        // running_var differs by design: each shard's n/(n−1) correction uses its own n (4·H·W, not 8·H·W).
        if (name.endsWith('running_var')) continue;
        // Against the whole-batch trainStep, compare the update (new − old) relative to the tensor's largest
        // update. The two are mathematically equal, but float32 rounding through 18 BatchNorm'd layers is
        // not small here: trainStep itself on these 4 images vs on the 8 duplicated ones differs by up to
        // 1.2e-4 relative (measured). 1e-3 leaves room for that and still catches a real mistake
        // (a wrong normaliser or a lost shard is an error of tens of percent).
        let scale = 0;
        let difference = 0;
        for (let i = 0; i < got.length; i++) {
          scale = Math.max(scale, Math.abs(want[i] - start[i]));
          difference = Math.max(difference, Math.abs(got[i] - want[i]));
        }
        if (scale === 0) continue;
        assert.ok(difference <= 1e-3 * scale, `${name}: update differs by ${difference} (largest update ${scale})`);
      }
    } finally {
      await trainer.dispose();
      for (const p of [reference, shardwise, model]) disposeModel(p);
      for (const o of [referenceOptimizer, shardwiseOptimizer]) o.dispose();
      optimizer.dispose();
    }
  },
);

test('dispose terminates the workers and later steps fail', { timeout: 300_000 }, async () => {
  const model = createResNet18(CLASSES, 1);
  const optimizer = createOptimizer('sgd');
  const trainer = createDataParallelTrainer({ numClasses: CLASSES, imageSize: SIZE, workers: 2 });
  try {
    // One real step first, so a worker is running (not merely starting) when it is terminated.
    await trainer.step(model, trainableByName(model, 'full'), optimizer, duplicatedBatch(), WEIGHTS, 0.01);
    // The thread's handle keeps the event loop alive until it exits: none may remain after dispose.
    const workersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Worker' || r === 'MessagePort').length;
    assert.ok(workersBefore > 0);
    await trainer.dispose();
    const workersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Worker' || r === 'MessagePort').length;
    assert.equal(workersAfter, 0);
    await assert.rejects(
      trainer.step(model, trainableByName(model, 'full'), optimizer, duplicatedBatch(), WEIGHTS, 0.01),
      /disposed/,
    );
  } finally {
    disposeModel(model);
    optimizer.dispose();
  }
});

test(
  '2-way inference gives the single-thread eval logits, before and after a step changes the weights',
  { timeout: 300_000 },
  async () => {
    const model = createResNet18(CLASSES, 3);
    const optimizer = createOptimizer('sgd');
    const trainer = createDataParallelTrainer({ numClasses: CLASSES, imageSize: SIZE, workers: 2 });
    try {
      // An odd count: the shards are 2 and 3 images.
      const { x } = halfBatch();
      const images = new Float32Array(5 * SIZE * SIZE * 3);
      images.set(x);
      images.set(x.subarray(0, SIZE * SIZE * 3), x.length);
      const check = async (when: string) => {
        const expected = inferLogits(model, images, 5, SIZE);
        const actual = await trainer.infer(model, images, 5);
        assert.equal(actual.length, 5 * CLASSES);
        for (let i = 0; i < expected.length; i++)
          assert.ok(
            Math.abs(actual[i] - expected[i]) <= 1e-5 * Math.max(1, Math.abs(expected[i])),
            `${when}: logit ${i}`,
          );
        return actual;
      };
      const first = await check('initial weights');
      assert.deepEqual(await trainer.infer(model, images, 5), first, 'published weights are reused as they are');
      await trainer.step(model, trainableByName(model, 'full'), optimizer, duplicatedBatch(), WEIGHTS, 0.5);
      const second = await check('after a step');
      assert.notDeepEqual(second, first, 'the step changed the logits');
    } finally {
      await trainer.dispose();
      disposeModel(model);
      optimizer.dispose();
    }
  },
);

test('inference in parts sized for the heap gives the logits of one forward pass', { timeout: 300_000 }, async () => {
  // At 224 px a part holds 6 images (inferenceBatchSize): 7 images are two parts.
  const size = 224;
  const count = 7;
  const model = createResNet18(CLASSES, 5);
  try {
    let state = 99;
    const images = Float32Array.from(
      { length: count * size * size * 3 },
      () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1,
    );
    const whole = tf.tidy(() =>
      forward(model, tf.tensor4d(images, [count, size, size, 3]), { training: false }).logits.dataSync(),
    );
    const parts = inferLogits(model, images, count, size);
    assert.equal(parts.length, whole.length);
    for (let i = 0; i < whole.length; i++)
      assert.ok(Math.abs(parts[i] - whole[i]) <= 1e-5 * Math.max(1, Math.abs(whole[i])), `logit ${i}`);
  } finally {
    disposeModel(model);
  }
});
