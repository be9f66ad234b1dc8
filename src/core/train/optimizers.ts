/**
 * Adam and SGD with momentum, written out with PyTorch's update rules (torch.optim.Adam, torch.optim.SGD)
 * and with their state keyed by parameter name, so a checkpoint stores it by torchvision key and a resumed
 * run continues exactly where it stopped. The learning rate is an argument of every step: schedules stay
 * outside the optimiser.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor } from '../weights/safetensors.js';
import type { OptimizerName } from './settings.js';

export interface Optimizer {
  readonly name: OptimizerName;
  /** Applies one update to each named variable from its gradient, then disposes nothing it does not own. */
  step(
    variables: ReadonlyMap<string, tf.Variable>,
    gradients: ReadonlyMap<string, tf.Tensor>,
    learningRate: number,
  ): void;
  /** State as host tensors named `<param>/<slot>` plus `step`. */
  exportState(): Map<string, HostTensor>;
  importState(state: ReadonlyMap<string, HostTensor>): void;
  dispose(): void;
}

const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;
const SGD_MOMENTUM = 0.9;

export function createOptimizer(name: OptimizerName, weightDecay = 0): Optimizer {
  return name === 'adam' ? new Adam(weightDecay) : new SgdMomentum(weightDecay);
}

abstract class SlottedOptimizer implements Optimizer {
  abstract readonly name: OptimizerName;
  protected readonly slots = new Map<string, tf.Variable>();
  protected steps = 0;

  constructor(protected readonly weightDecay: number) {}

  step(
    variables: ReadonlyMap<string, tf.Variable>,
    gradients: ReadonlyMap<string, tf.Tensor>,
    learningRate: number,
  ): void {
    this.steps++;
    const update = this.updateRule(learningRate);
    for (const [name, variable] of variables) {
      const raw = gradients.get(name);
      if (raw) tf.tidy(() => update(name, variable, this.decayed(raw, variable)));
    }
  }

  /** This step's update of one parameter from its (weight-decayed) gradient; runs inside `tf.tidy`. */
  protected abstract updateRule(
    learningRate: number,
  ): (name: string, variable: tf.Variable, gradient: tf.Tensor) => void;

  protected slot(key: string, like: tf.Tensor): tf.Variable {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = tf.variable(tf.zerosLike(like), false);
      this.slots.set(key, slot);
    }
    return slot;
  }

  /** PyTorch's L2 weight decay: added to the gradient before the update. */
  protected decayed(gradient: tf.Tensor, variable: tf.Variable): tf.Tensor {
    return this.weightDecay > 0 ? tf.add(gradient, tf.mul(variable, this.weightDecay)) : gradient;
  }

  exportState(): Map<string, HostTensor> {
    const state = new Map<string, HostTensor>();
    state.set('step', { shape: [1], data: Float32Array.of(this.steps) });
    for (const [key, slot] of this.slots)
      state.set(key, { shape: [...slot.shape], data: (slot.dataSync() as Float32Array).slice() });
    return state;
  }

  importState(state: ReadonlyMap<string, HostTensor>): void {
    this.dispose();
    for (const [key, tensor] of state) {
      if (key === 'step') this.steps = Number(tensor.data[0]);
      else
        this.slots.set(
          key,
          tf.variable(tf.tensor(Float32Array.from(tensor.data as Float32Array), tensor.shape), false),
        );
    }
  }

  dispose(): void {
    for (const slot of this.slots.values()) slot.dispose();
    this.slots.clear();
  }
}

class Adam extends SlottedOptimizer {
  readonly name = 'adam' as const;

  protected updateRule(learningRate: number) {
    const correction1 = 1 - ADAM_BETA1 ** this.steps;
    const correction2 = 1 - ADAM_BETA2 ** this.steps;
    const stepSize = learningRate / correction1;
    return (name: string, variable: tf.Variable, g: tf.Tensor) => {
      const m = this.slot(`${name}/exp_avg`, variable);
      const v = this.slot(`${name}/exp_avg_sq`, variable);
      m.assign(tf.add(tf.mul(m, ADAM_BETA1), tf.mul(g, 1 - ADAM_BETA1)));
      v.assign(tf.add(tf.mul(v, ADAM_BETA2), tf.mul(tf.square(g), 1 - ADAM_BETA2)));
      const denominator = tf.add(tf.div(tf.sqrt(v), Math.sqrt(correction2)), ADAM_EPSILON);
      variable.assign(tf.sub(variable, tf.mul(tf.div(m, denominator), stepSize)));
    };
  }
}

class SgdMomentum extends SlottedOptimizer {
  readonly name = 'sgd' as const;

  protected updateRule(learningRate: number) {
    return (name: string, variable: tf.Variable, g: tf.Tensor) => {
      const buffer = this.slots.get(`${name}/momentum_buffer`);
      // PyTorch initialises the buffer with the first gradient, not with zeros.
      const next = buffer ? tf.add(tf.mul(buffer, SGD_MOMENTUM), g) : g;
      this.slot(`${name}/momentum_buffer`, variable).assign(next);
      variable.assign(tf.sub(variable, tf.mul(next, learningRate)));
    };
  }
}

/** Learning rate at `step` of `totalSteps`: cosine annealing to 0, or ×0.1 at 50 % and 75 %. */
export function scheduledLearningRate(
  base: number,
  schedule: 'cosine' | 'step' | 'constant',
  step: number,
  totalSteps: number,
): number {
  const progress = totalSteps > 0 ? Math.min(1, step / totalSteps) : 0;
  switch (schedule) {
    case 'cosine':
      return base * 0.5 * (1 + Math.cos(Math.PI * progress));
    case 'step':
      return base * (progress >= 0.75 ? 0.01 : progress >= 0.5 ? 0.1 : 1);
    case 'constant':
      return base;
  }
}
