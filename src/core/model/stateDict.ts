import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor } from '../weights/safetensors.js';
import {
  fromTorchLayout,
  initialValue,
  numClassesOf,
  resnet18ParamSpecs,
  toTorchLayout,
  torchShapeOf,
  type ResNet18Params,
} from './resnet18.js';
import { randomSourceOf, type RandomSource } from '../random.js';

/**
 * A PyTorch-compatible state dict: torchvision key → tensor in PyTorch layout (OIHW convolutions,
 * `[out, in]` for fc). Written with `writeSafetensors`, it loads with `safetensors.torch.load_file` +
 * `model.load_state_dict`. `num_batches_tracked` buffers are BigInt64Array (int64 in PyTorch).
 */
export type StateDict = Map<string, HostTensor>;

/** Copies every parameter and buffer out of `params`, converted to PyTorch layout. */
export function exportStateDict(params: ResNet18Params): StateDict {
  const dict: StateDict = new Map();
  for (const [name, variable] of params) {
    if (variable.dtype === 'int32') {
      dict.set(name, {
        shape: [...variable.shape],
        data: BigInt64Array.from(variable.dataSync(), (value) => BigInt(value)),
      });
    } else {
      // Not tf.tidy(() => ….dataSync()): tidy walks a returned typed array element by element (seconds here).
      const torchLayout = toTorchLayout(variable);
      try {
        // slice(): the cpu backend hands out its own storage from dataSync, which must not escape.
        dict.set(name, { shape: [...torchLayout.shape], data: (torchLayout.dataSync() as Float32Array).slice() });
      } finally {
        torchLayout.dispose();
      }
    }
  }
  return dict;
}

export interface LoadStateDictOptions {
  /**
   * Accept a checkpoint whose classifier has a different number of classes (e.g. ImageNet's 1000), or
   * none: load the backbone and re-initialise `fc` as a fresh model would.
   */
  allowHeadMismatch?: boolean;
  /** Seed or random source for a re-initialised `fc`. */
  headSeed?: number | RandomSource;
}

export interface LoadStateDictReport {
  /** True when `fc` was re-initialised because the checkpoint classifies another number of classes. */
  headReinitialised: boolean;
}

const HEAD_NAMES = ['fc.weight', 'fc.bias'];
/** PyTorch itself tolerates a missing num_batches_tracked (it only matters with momentum=None). */
const isOptional = (name: string): boolean => name.endsWith('.num_batches_tracked');
const MAX_LISTED = 12;
const INT32_MAX = 2 ** 31 - 1;

function listed(names: readonly string[]): string {
  const shown = names.slice(0, MAX_LISTED).join(', ');
  return names.length > MAX_LISTED ? `${shown} and ${names.length - MAX_LISTED} more` : shown;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, i) => size === b[i]);
}

/**
 * The class count of the checkpoint's classifier if it is well-formed for this backbone
 * (`fc.weight` [k, features] and `fc.bias` [k]), otherwise undefined.
 */
function checkpointClassCount(params: ResNet18Params, dict: ReadonlyMap<string, HostTensor>): number | undefined {
  const weight = dict.get('fc.weight');
  const bias = dict.get('fc.bias');
  const features = params.get('fc.weight')?.shape[0];
  if (!weight || !bias || weight.shape.length !== 2 || weight.shape[1] !== features) return undefined;
  return sameShape(bias.shape, [weight.shape[0]]) ? weight.shape[0] : undefined;
}

/**
 * Loads a torchvision-keyed state dict into `params`. Every key, shape and dtype is checked before
 * anything is assigned, so a failed load leaves the model untouched; the error lists all missing,
 * unexpected and mismatched keys at once.
 */
export function loadStateDict(
  params: ResNet18Params,
  dict: ReadonlyMap<string, HostTensor>,
  options: LoadStateDictOptions = {},
): LoadStateDictReport {
  const modelClasses = numClassesOf(params);
  const checkpointClasses = checkpointClassCount(params, dict);
  const otherClassCount = checkpointClasses !== undefined && checkpointClasses !== modelClasses;
  // A backbone saved without its classifier (fc removed) initialises training as well as ImageNet's does.
  const headAbsent = HEAD_NAMES.every((name) => !dict.has(name));
  const headReinitialised = (otherClassCount || headAbsent) && options.allowHeadMismatch === true;
  const loaded = [...params].filter(([name]) => !(headReinitialised && HEAD_NAMES.includes(name)));

  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const [name, variable] of loaded) {
    const tensor = dict.get(name);
    const problem = tensor ? describeMismatch(tensor, variable) : undefined;
    if (!tensor && !isOptional(name)) missing.push(name);
    if (problem) mismatched.push(`${name}: ${problem}`);
  }
  const unexpected = [...dict.keys()].filter((name) => !params.has(name));
  if (missing.length + unexpected.length + mismatched.length > 0) {
    const problems = [
      missing.length > 0 ? `missing keys: ${listed(missing)}` : '',
      unexpected.length > 0 ? `unexpected keys: ${listed(unexpected)}` : '',
      mismatched.length > 0 ? `mismatched: ${listed(mismatched)}` : '',
      otherClassCount && !headReinitialised
        ? `the checkpoint classifies ${checkpointClasses} classes; allow a head mismatch to keep the backbone and re-initialise fc`
        : '',
    ];
    throw new Error(
      `Cannot load state dict into ResNet-18 (${modelClasses} classes): ${problems.filter(Boolean).join('; ')}`,
    );
  }

  for (const [name, variable] of loaded) {
    const tensor = dict.get(name);
    if (tensor) tf.tidy(() => variable.assign(toVariableValue(tensor, variable)));
  }
  if (headReinitialised) reinitialiseHead(params, options.headSeed ?? 0);
  return { headReinitialised };
}

/** What is wrong with `tensor` as the PyTorch-layout value of `variable`, or undefined if nothing. */
function describeMismatch(tensor: HostTensor, variable: tf.Variable): string | undefined {
  const expected = torchShapeOf(variable.shape);
  if (!sameShape(tensor.shape, expected)) return `checkpoint shape [${tensor.shape}], model shape [${expected}]`;
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  if (tensor.data.length !== count)
    return `shape [${tensor.shape}] holds ${count} values but ${tensor.data.length} were given`;
  if (variable.dtype === 'int32') {
    const values = tensor.data instanceof BigInt64Array ? Array.from(tensor.data, Number) : Array.from(tensor.data);
    if (!values.every((value) => Number.isInteger(value) && value >= 0 && value <= INT32_MAX))
      return `expected a count, got ${values}`;
  } else if (!(tensor.data instanceof Float32Array)) {
    return 'holds integers where floats are expected';
  }
  return undefined;
}

function toVariableValue(tensor: HostTensor, variable: tf.Variable): tf.Tensor {
  if (variable.dtype === 'int32') return tf.tensor(Array.from(tensor.data, Number), tensor.shape, 'int32');
  return fromTorchLayout(tf.tensor(tensor.data as Float32Array, tensor.shape, 'float32'));
}

function reinitialiseHead(params: ResNet18Params, seedOrRandom: number | RandomSource): void {
  const random = randomSourceOf(seedOrRandom);
  for (const spec of resnet18ParamSpecs(numClassesOf(params))) {
    const variable = params.get(spec.name);
    if (variable && HEAD_NAMES.includes(spec.name)) tf.tidy(() => variable.assign(initialValue(spec, random)));
  }
}
