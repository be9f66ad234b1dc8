/**
 * Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay et al. 2018) on the real ResNet-18, in the
 * spirit of pytorch-grad-cam's `BaseCAM`: one function gets the activations A of the target layer and the
 * gradient G = d(score)/dA, another turns (A, G) into per-channel weights (the only thing the methods differ
 * in), a third forms ReLU(Σ_k w_k A_k). Maps are returned raw, at the layer's resolution; upsampling and
 * scaling for display live in overlay.ts.
 *
 * The gradient is exact for any head: A comes from a forward pass, then `forwardFrom(params, A, layer)`
 * recomputes everything above the layer inside `tf.grad`, so the tape holds just the part of the network the
 * gradient flows through. The score is the target class's logit (pytorch-grad-cam's ClassifierOutputTarget),
 * not its probability: a softmax would mix in the other classes' evidence.
 */
import * as tf from '@tensorflow/tfjs-core';
import { forward, forwardFrom, type ResNet18Params, type ResumePoint } from '../model/resnet18.js';

export type CamMethod = 'gradcam' | 'gradcam++';
export const CAM_METHODS: readonly CamMethod[] = ['gradcam', 'gradcam++'];

/**
 * Layers a map can be taken at: those `forwardFrom` can resume after and that are still images (the
 * stem's `maxpool` and the four residual layers). A layer's output is its last block's output, so
 * `layer4.1` names the same tensor as `layer4` and is accepted as an alias.
 */
export type CamLayer = Extract<ResumePoint, 'maxpool' | 'layer1' | 'layer2' | 'layer3' | 'layer4'>;
export const CAM_LAYERS: readonly CamLayer[] = ['maxpool', 'layer1', 'layer2', 'layer3', 'layer4'];
export const DEFAULT_CAM_LAYER: CamLayer = 'layer4';

/** The layer a user-facing name refers to; throws a sentence naming the choices otherwise. */
export function resolveCamLayer(name: string): CamLayer {
  const layer = /^(layer[1-4])\.1$/.exec(name)?.[1] ?? name;
  if ((CAM_LAYERS as readonly string[]).includes(layer)) return layer as CamLayer;
  throw new Error(
    `Grad-CAM layer must be one of ${CAM_LAYERS.join(', ')} (or layer1.1 … layer4.1, the same tensors), got "${name}"`,
  );
}

export interface CamOptions {
  /** Default `layer4`. */
  layer?: string;
  /** Default `gradcam`. */
  method?: CamMethod;
  /** Class explained for each image; default the predicted one. */
  targets?: readonly number[];
}

export interface CamBatch {
  /** One raw map per image, `[row][column]` at the layer's resolution, ReLU applied, not normalised. */
  maps: number[][][];
  /** Eval-mode logits, one row per image. */
  logits: number[][];
  /** The class each map explains. */
  targets: number[];
}

function predictedClasses(logits: tf.Tensor2D): number[] {
  const predicted = tf.argMax(logits, 1);
  try {
    return Array.from(predicted.dataSync());
  } finally {
    predicted.dispose();
  }
}

/**
 * Activations A of `layer` for input `x` and G = d(Σ_n logit[n, targets[n]])/dA. Images in eval mode do not
 * interact, so summing the batch's scores gives each image exactly its own gradient, in one backward pass.
 * All returned tensors belong to the caller.
 */
export function layerGradients(
  params: ResNet18Params,
  x: tf.Tensor4D,
  layer: CamLayer,
  targets?: readonly number[],
): { activation: tf.Tensor4D; gradient: tf.Tensor4D; logits: tf.Tensor2D; targets: number[] } {
  // Its own tidy, so the forward pass's intermediates are freed before the backward pass allocates its own.
  const { logits, activations } = tf.tidy(() => forward(params, x, { training: false, captureLayers: [layer] }));
  const activation = activations[layer] as tf.Tensor4D;
  try {
    const chosen = targets ? [...targets] : predictedClasses(logits);
    const numClasses = logits.shape[1];
    if (chosen.length !== x.shape[0] || chosen.some((c) => !Number.isInteger(c) || c < 0 || c >= numClasses)) {
      throw new RangeError(`Grad-CAM needs one class index in 0…${numClasses - 1} per image, got [${chosen}]`);
    }
    const gradient = tf.tidy(() => {
      const mask = tf.oneHot(tf.tensor1d(chosen, 'int32'), numClasses);
      const score = (a: tf.Tensor) => tf.sum(tf.mul(forwardFrom(params, a, layer, { training: false }).logits, mask));
      return tf.grad(score)(activation) as tf.Tensor4D;
    });
    return { activation, gradient, logits, targets: chosen };
  } catch (error) {
    tf.dispose([logits, activation]);
    throw error;
  }
}

/**
 * Grad-CAM weights: the gradient averaged over the map, `[N, C]` — each channel's importance for the score.
 */
export function gradCamWeights(gradient: tf.Tensor4D): tf.Tensor2D {
  return tf.mean(gradient, [1, 2]);
}

/**
 * Grad-CAM++ weights: w_k = Σ_ij α_ij ReLU(g_ij) with α = g² / (2g² + Σ_ab A_ab · g³), all per channel.
 * The closed form of α comes from taking exp(logit) as the score: its higher derivatives are powers of the
 * logit's gradient g times exp(logit), which cancels in α; the remaining exp(logit) factor on the weights is
 * the same for every channel and left out, as pytorch-grad-cam does, so the map keeps the logit's scale.
 */
export function gradCamPlusPlusWeights(activation: tf.Tensor4D, gradient: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const g2 = tf.square(gradient);
    const g3 = tf.mul(g2, gradient);
    const activationSum = tf.sum(activation, [1, 2], true);
    // The 1e-6 (pytorch-grad-cam's guard too) keeps g = 0 from giving 0/0: α is then exactly 0.
    const denominator = tf.add(tf.add(tf.mul(g2, 2), tf.mul(activationSum, g3)), 1e-6);
    const alpha = tf.div(g2, denominator);
    return tf.sum(tf.mul(alpha, tf.relu(gradient)), [1, 2]);
  });
}

/** ReLU(Σ_k w_k A_k): `[N, H, W]` from activations `[N, H, W, C]` and weights `[N, C]`. */
export function weightedMap(activation: tf.Tensor4D, weights: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, , , c] = activation.shape;
    return tf.relu(tf.sum(tf.mul(activation, tf.reshape(weights, [n, 1, 1, c])), 3)) as tf.Tensor3D;
  });
}

/** Per-channel weights of `method`. */
export function camWeights(method: CamMethod, activation: tf.Tensor4D, gradient: tf.Tensor4D): tf.Tensor2D {
  return method === 'gradcam' ? gradCamWeights(gradient) : gradCamPlusPlusWeights(activation, gradient);
}

/** Class activation maps for a batch of normalised NHWC images. */
export function computeCams(params: ResNet18Params, x: tf.Tensor4D, options: CamOptions = {}): CamBatch {
  const layer = resolveCamLayer(options.layer ?? DEFAULT_CAM_LAYER);
  const method = options.method ?? 'gradcam';
  const { activation, gradient, logits, targets } = layerGradients(params, x, layer, options.targets);
  try {
    const maps = tf.tidy(() => weightedMap(activation, camWeights(method, activation, gradient)));
    try {
      return { maps: maps.arraySync(), logits: logits.arraySync(), targets };
    } finally {
      maps.dispose();
    }
  } finally {
    tf.dispose([activation, gradient, logits]);
  }
}
