import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../data/batches.js';
import { forwardFrom, type ResNet18Params, type ResumePoint } from '../model/resnet18.js';
import type { Optimizer } from './optimizers.js';

export interface FeatureInput {
  after: ResumePoint;
  /** Shape of one example's input at that point, e.g. [S, S, 3] for images, [512] after avgpool. */
  exampleShape: number[];
}

/** One optimisation step; class-weighted cross-entropy normalised by the weights, as PyTorch's CrossEntropyLoss(weight=…). */
export function trainStep(
  params: ResNet18Params,
  trainable: Map<string, tf.Variable>,
  optimizer: Optimizer,
  batch: Batch,
  size: number,
  numClasses: number,
  weights: number[],
  learningRate: number,
  /** Where `batch.x` enters the network: images by default, or cached features of a frozen prefix. */
  start: FeatureInput = { after: 'input', exampleShape: [size, size, 3] },
): { loss: number; correct: number } {
  const n = batch.y.length;
  let correct = 0;
  const loss = tf.tidy(() => {
    const x = tf.tensor(batch.x, [n, ...start.exampleShape]);
    const y = tf.tensor1d(batch.y, 'int32');
    const sampleWeights = tf.tensor1d(Array.from(batch.y, (c) => weights[c]));
    const { value, grads } = tf.variableGrads(() => {
      const { logits } = forwardFrom(params, x, start.after, { training: true });
      correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32')).dataSync()[0];
      const perExample = tf.neg(tf.sum(tf.mul(tf.oneHot(y, numClasses), tf.logSoftmax(logits)), 1));
      return tf.div(tf.sum(tf.mul(perExample, sampleWeights)), tf.sum(sampleWeights)) as tf.Scalar;
    }, [...trainable.values()]);
    const byName = new Map<string, tf.Tensor>();
    for (const [name, variable] of trainable) byName.set(name, grads[variable.name]);
    optimizer.step(trainable, byName, learningRate);
    return value;
  });
  const value = loss.dataSync()[0];
  loss.dispose();
  return { loss: value, correct };
}
