// Existing seeds must keep giving the same initial weights (run.json records the seed; a resumed or repeated
// run relies on it): a few values of createResNet18(2, 7) pinned as computed by the seeded generator and
// Box–Muller draws, on tfjs's pure-JS backend.
import '@tensorflow/tfjs-backend-cpu';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createResNet18, disposeModel } from '../src/core/model/resnet18.js';

const PINNED: Record<string, { first: number[]; count: number; last: number }> = {
  'conv1.weight': {
    first: [0.0035852950531989336, 0.0014708001399412751, -0.02182568423449993],
    count: 9408,
    last: 0.036242835223674774,
  },
  'layer3.1.conv2.weight': {
    first: [0.01733081229031086, -0.007395985536277294, 0.014335962943732738],
    count: 589824,
    last: 0.017404304817318916,
  },
  'fc.weight': {
    first: [0.02305184304714203, 0.030184132978320122, -0.015137786976993084],
    count: 1024,
    last: -0.042898718267679214,
  },
  'fc.bias': { first: [-0.008594309911131859, -0.030386047437787056], count: 2, last: -0.030386047437787056 },
};

test('seed 7 gives the same initial ResNet-18 weights as it always has', () => {
  const params = createResNet18(2, 7);
  try {
    for (const [name, pinned] of Object.entries(PINNED)) {
      const values = params.get(name)!.dataSync();
      assert.equal(values.length, pinned.count, name);
      assert.deepEqual(Array.from(values.slice(0, pinned.first.length)), pinned.first, name);
      assert.equal(values[values.length - 1], pinned.last, name);
    }
  } finally {
    disposeModel(params);
  }
});
