/**
 * The one checkpoint loader: every command that takes weights (`train --weights`, `predict`, `explain`,
 * `evaluate`, the extension) reads them here, so a file that works for one works for all.
 *
 * Accepted, recognised by content:
 *  - `torch.save` files (zip or legacy) holding a state dict, a training-checkpoint dict (`state_dict`,
 *    `model_state_dict`, `model`, `net`… next to `optimizer`, `epoch`, which are never decoded), or a whole
 *    pickled model (`torch.save(model)`), read structurally: its classes become inert placeholders and the
 *    parameters and buffers are collected from the module tree's `_parameters`, `_buffers` and `_modules`.
 *    Nothing in the file is ever executed (see `pickle.ts`);
 *  - safetensors files (`safetensors.torch.save_file`, or ours with `classes`/`imageSize`/`crop` metadata);
 *  - run folders (`run.json` names the classes; weights from its `model.safetensors`).
 * In each, ResNet-18 is found under any prefix with its classifier under any name (`recognise.ts`), and
 * names and shapes are checked before a single tensor is decoded, so a hostile file costs no more memory
 * than a ResNet-18. The result is a torchvision-keyed state dict plus a record of what was recognised.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MODEL_FILE, RUN_FILE, type RunFile } from '../run/runFile.js';
import { readRunFile } from '../run/runFileIo.js';
import { PickleDict, PickleObject, describe, type PickleValue } from './pickle.js';
import { MAX_DECODED_ELEMENTS, TensorRef, looksLikePth, openPth } from './pth.js';
import { BACKBONE_SHAPES, NotResNet18Error, fileKey, recogniseResNet18, type ResNet18Layout } from './recognise.js';
import type { CheckpointInfo } from './checkpointInfo.js';
import { decodeSafetensors, type HostTensor } from './safetensors.js';

export type { CheckpointInfo } from './checkpointInfo.js';

export interface LoadedCheckpoint {
  /** torchvision keys, PyTorch layout; `fc.*` only when the checkpoint has a classifier. */
  dict: Map<string, HostTensor>;
  info: CheckpointInfo;
  /** The run, when a run folder was given. */
  run: RunFile | undefined;
}

/** A checkpoint that cannot be used; the message names the file and says why and what to do. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** ResNet-18 fp32 is 47 MB, a training checkpoint with Adam state about three times that. */
const MAX_FILE_BYTES = 2 ** 30;
/** Keys under which training scripts keep the model, most specific first; any other key is searched after these. */
const STATE_DICT_KEYS = [
  'model_state_dict',
  'state_dict',
  'model_state',
  'model',
  'net',
  'network',
  'weights',
  'params',
  'module',
  'ema',
];
const CLASS_KEYS = ['class_to_idx', 'idx_to_class', 'classes', 'class_names'] as const;
const MAX_DEPTH = 3;
const RESAVE = 'Save the weights with torch.save(model.state_dict(), path) and load that file instead.';

/**
 * Loads a checkpoint file or run folder. `options.requireHead`: refuse a backbone without a classifier
 * (predict, explain, evaluate need one; training re-initialises it).
 */
export async function loadCheckpoint(
  source: string,
  options: { requireHead?: boolean } = {},
): Promise<LoadedCheckpoint> {
  const given = resolve(source);
  let file = given;
  let run: RunFile | undefined;
  let info: Stats;
  try {
    info = await stat(given);
  } catch {
    throw new CheckpointError(`${source}: no such file or folder`);
  }
  if (info.isDirectory()) {
    // A run folder; one without run.json (copied weights) still has its model.safetensors.
    run = existsSync(join(given, RUN_FILE)) ? await readRunFile(given) : undefined;
    file = join(given, run?.model.weightsFile ?? MODEL_FILE);
    try {
      info = await stat(file);
    } catch {
      throw new CheckpointError(`${source} is a folder without ${run ? `its weights file ${file}` : MODEL_FILE}`);
    }
  }
  if (info.size > MAX_FILE_BYTES)
    throw new CheckpointError(
      `${file}: ${info.size} bytes is far beyond any ResNet-18 checkpoint; refusing to read it`,
    );
  const bytes = await readFile(file);
  const loaded = decodeCheckpoint(bytes, file);
  if (run) {
    loaded.info.classes = run.dataset.classes;
    loaded.info.classesSource = 'run.json';
  }
  if (options.requireHead && loaded.info.head === null) {
    throw new CheckpointError(
      `${file}: a ResNet-18 backbone without a classifier (no Linear(512, K) besides it); it can initialise training but not predict`,
    );
  }
  if (loaded.info.classes && loaded.info.numClasses !== null && loaded.info.classes.length !== loaded.info.numClasses) {
    throw new CheckpointError(
      `${file} classifies ${loaded.info.numClasses} classes but ${loaded.info.classesSource} names ${loaded.info.classes.length} (${loaded.info.classes.join(', ')})`,
    );
  }
  return { ...loaded, run };
}

type Stats = Awaited<ReturnType<typeof stat>>;

/** `loadCheckpoint` on bytes already read; `file` is used in messages. */
export function decodeCheckpoint(bytes: Uint8Array, file: string): Omit<LoadedCheckpoint, 'run'> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (looksLikePth(bytes)) return decodeTorchCheckpoint(bytes, file, sha256);
  if (looksLikeSafetensors(bytes)) {
    const { tensors, metadata } = decodeSafetensors(bytes, file);
    const shapes = new Map([...tensors].map(([name, tensor]) => [name, tensor.shape]));
    const layout = recognise(shapes, file);
    const dict = torchvisionDict(layout, (name) => tensors.get(name));
    const classes = metadataClasses(metadata.classes);
    return {
      dict,
      info: {
        ...layoutInfo(layout),
        file,
        sha256,
        format: 'safetensors',
        container: 'state dict',
        classes: classes ?? null,
        classesSource: classes ? 'safetensors metadata' : null,
        ignored: [],
        metadata,
      },
    };
  }
  if (bytes[0] === 0x80)
    throw new CheckpointError(`${file} is a plain pickle, not a file written by torch.save. ${RESAVE}`);
  throw new CheckpointError(
    `${file} is neither a PyTorch file (torch.save) nor a safetensors file (safetensors.torch.save_file)`,
  );
}

/** An 8-byte little-endian header length that fits the file, followed by the JSON header's `{`. */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 9) return false;
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  return headerLength > 0n && headerLength <= BigInt(bytes.length - 8) && bytes[8] === 0x7b;
}

// ---------------------------------------------------------------------------------------------------
// torch.save files

/** A state dict found somewhere in the pickled object. */
interface Candidate {
  /** Keys from the root to it (`[]` for the root itself). */
  path: string[];
  tensors: Map<string, TensorRef>;
  /** The pickled module's class, for whole models. */
  moduleClass: string | undefined;
  /** Dicts and module states on the way, nearest first: where class names may be. */
  context: PickleDict[];
}

function decodeTorchCheckpoint(bytes: Uint8Array, file: string, sha256: string): Omit<LoadedCheckpoint, 'run'> {
  const opened = openPth(bytes, file, { placeholders: true });
  const candidates: Candidate[] = [];
  const refusals: string[] = [];
  collectCandidates(opened.root, [], [], candidates, refusals, file);
  if (candidates.length === 0) {
    throw new CheckpointError(
      refusals[0] ??
        `${file} holds ${describe(opened.root)} with no tensors of a model in it (no state dict, no pickled torch.nn.Module). ${RESAVE}`,
    );
  }
  // The first candidate that is a ResNet-18, in order of preference; otherwise the first one's reason.
  let firstError: Error | undefined;
  for (const candidate of candidates) {
    const what = describeCandidate(file, candidate);
    let layout: ResNet18Layout;
    try {
      layout = recognise(new Map([...candidate.tensors].map(([name, tensor]) => [name, tensor.size])), what);
    } catch (error) {
      firstError ??= error as Error;
      continue;
    }
    const dict = torchvisionDict(layout, (name) => {
      const tensor = candidate.tensors.get(name);
      return tensor && opened.decode(tensor, name);
    });
    const names = classNames(candidate.context, layout.head?.numClasses);
    return {
      dict,
      info: {
        ...layoutInfo(layout),
        file,
        sha256,
        format: opened.format === 'zip' ? 'pytorch' : 'pytorch-legacy',
        container: containerText(candidate),
        classes: names?.classes ?? null,
        classesSource: names?.source ?? null,
        ignored: ignoredKeys(opened.root, candidate),
        metadata: {},
      },
    };
  }
  throw firstError instanceof NotResNet18Error ? new CheckpointError(firstError.message) : firstError!;
}

/**
 * Every state dict in `value`: a dict of tensors, a pickled module (its tree's parameters and buffers), or
 * one of those inside a dict (known state-dict keys first). Unreadable pickled objects add a refusal.
 */
function collectCandidates(
  value: PickleValue | undefined,
  path: string[],
  context: PickleDict[],
  out: Candidate[],
  refusals: string[],
  file: string,
): void {
  if (value instanceof PickleObject) {
    const tensors = new Map<string, TensorRef>();
    const problem = moduleTensors(value, '', tensors);
    if (problem) {
      refusals.push(
        `${file}${path.length ? ` (key "${path.join('.')}")` : ''} holds a pickled ${value.cls.qualifiedName} object whose weights ` +
          `cannot be read without running its code: ${problem}. Nothing in it was executed. ${RESAVE}`,
      );
      return;
    }
    const state = value.state instanceof PickleDict ? value.state : undefined;
    out.push({ path, tensors, moduleClass: value.cls.qualifiedName, context: state ? [state, ...context] : context });
    return;
  }
  if (!(value instanceof PickleDict) || path.length >= MAX_DEPTH) return;
  const entries = [...value].filter(([, v]) => v !== null);
  if (entries.length > 0 && entries.every(([key, v]) => typeof key === 'string' && v instanceof TensorRef)) {
    out.push({
      path,
      tensors: new Map(entries as [string, TensorRef][]),
      moduleClass: undefined,
      context: [value, ...context],
    });
    return;
  }
  const rank = (key: PickleValue) => {
    const index = typeof key === 'string' ? STATE_DICT_KEYS.indexOf(key) : -1;
    return index < 0 ? STATE_DICT_KEYS.length : index;
  };
  const ordered = [...value].filter(([key]) => typeof key === 'string').sort(([a], [b]) => rank(a) - rank(b));
  for (const [key, child] of ordered)
    collectCandidates(child, [...path, key as string], [value, ...context], out, refusals, file);
}

/**
 * Adds the parameters and persistent buffers of a pickled `torch.nn.Module` and its submodules, named as
 * `state_dict()` names them; returns what is wrong if `module` is not a module.
 */
function moduleTensors(module: PickleObject, prefix: string, out: Map<string, TensorRef>): string | undefined {
  const state = module.state;
  const name = prefix ? `"${prefix.slice(0, -1)}" (${module.cls.qualifiedName})` : module.cls.qualifiedName;
  if (!(state instanceof PickleDict)) return `${name} has no attribute dict, so it is not a torch.nn.Module`;
  const parameters = state.get('_parameters');
  const buffers = state.get('_buffers');
  const modules = state.get('_modules');
  if (!(parameters instanceof PickleDict) || !(buffers instanceof PickleDict) || !(modules instanceof PickleDict))
    return `${name} lacks _parameters, _buffers or _modules, so it is not a torch.nn.Module`;
  const nonPersistent = state.get('_non_persistent_buffers_set');
  const skip = new Set(Array.isArray(nonPersistent) ? nonPersistent : []);
  for (const [dict, kind] of [
    [parameters, 'parameter'],
    [buffers, 'buffer'],
  ] as const) {
    for (const [key, tensor] of dict) {
      if (tensor === null || (kind === 'buffer' && skip.has(key))) continue;
      if (typeof key !== 'string' || !(tensor instanceof TensorRef))
        return `${kind} ${String(key)} of ${name} is ${describe(tensor)}, not a tensor`;
      out.set(prefix + key, tensor);
    }
  }
  for (const [key, child] of modules) {
    if (child === null) continue;
    if (typeof key !== 'string' || !(child instanceof PickleObject))
      return `submodule ${String(key)} of ${name} is ${describe(child)}`;
    const problem = moduleTensors(child, `${prefix}${key}.`, out);
    if (problem) return problem;
  }
  return undefined;
}

function describeCandidate(file: string, candidate: Candidate): string {
  if (candidate.moduleClass) return `${file} (a pickled ${candidate.moduleClass})`;
  return candidate.path.length ? `${file} (key "${candidate.path.join('.')}")` : file;
}

function containerText(candidate: Candidate): string {
  const key = candidate.path.length ? `key "${candidate.path.join('.')}"` : '';
  if (candidate.moduleClass) return `whole model ${candidate.moduleClass}${key ? ` under ${key}` : ''}`;
  return key ? `training checkpoint, state dict under ${key}` : 'state dict';
}

/** Top-level entries of a checkpoint dict that are not the weights. */
function ignoredKeys(root: PickleValue, candidate: Candidate): string[] {
  if (!(root instanceof PickleDict) || candidate.path.length === 0) return [];
  return [...root.keys()].filter((key): key is string => typeof key === 'string' && key !== candidate.path[0]);
}

/**
 * Output names from `class_to_idx` ({name: index}), `idx_to_class` ({index: name}), `classes` or
 * `class_names` ([name…]) in the nearest dict or module state that has one of them and fits `numClasses`.
 */
function classNames(
  context: readonly PickleDict[],
  numClasses: number | undefined,
): { classes: string[]; source: string } | undefined {
  for (const dict of context) {
    for (const key of CLASS_KEYS) {
      const names = namesFrom(key, dict.get(key));
      if (names && (numClasses === undefined || names.length === numClasses)) return { classes: names, source: key };
    }
  }
  return undefined;
}

function namesFrom(key: (typeof CLASS_KEYS)[number], value: PickleValue | undefined): string[] | undefined {
  if (Array.isArray(value)) return value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
  if (!(value instanceof PickleDict) || value.size === 0) return undefined;
  const names: string[] = [];
  for (const [k, v] of value) {
    const [name, index] = key === 'class_to_idx' ? [k, v] : [v, typeof k === 'string' ? Number(k) : k];
    if (typeof name !== 'string' || typeof index !== 'number' || !Number.isInteger(index)) return undefined;
    if (index < 0 || index >= value.size || names[index] !== undefined) return undefined;
    names[index] = name;
  }
  return names.length === value.size ? names : undefined;
}

// ---------------------------------------------------------------------------------------------------

function recognise(shapes: ReadonlyMap<string, readonly number[]>, what: string): ResNet18Layout {
  try {
    const layout = recogniseResNet18(shapes, what);
    const elements =
      [...BACKBONE_SHAPES.values()].reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0) +
      (layout.head ? layout.head.numClasses * 513 : 0);
    if (elements > MAX_DECODED_ELEMENTS)
      throw new NotResNet18Error(
        `${what}: a classifier of ${layout.head?.numClasses} outputs is beyond what this reader decodes (${MAX_DECODED_ELEMENTS} elements)`,
      );
    return layout;
  } catch (error) {
    if (error instanceof NotResNet18Error) throw new CheckpointError(error.message);
    throw error;
  }
}

/** The file's tensors under torchvision's names, decoded only now that names and shapes are known to fit. */
function torchvisionDict(
  layout: ResNet18Layout,
  tensorAt: (name: string) => HostTensor | undefined,
): Map<string, HostTensor> {
  const dict = new Map<string, HostTensor>();
  const set = (name: string, tensor: HostTensor | undefined) => tensor && dict.set(name, tensor);
  // Absent only for optional buffers (num_batches_tracked): recognition checked the rest.
  for (const name of BACKBONE_SHAPES.keys()) set(name, tensorAt(fileKey(layout, name)));
  if (layout.head) {
    const { name, numClasses, hasBias } = layout.head;
    set('fc.weight', tensorAt(`${name}.weight`));
    set('fc.bias', hasBias ? tensorAt(`${name}.bias`) : { shape: [numClasses], data: new Float32Array(numClasses) });
  }
  return dict;
}

function layoutInfo(layout: ResNet18Layout): Pick<CheckpointInfo, 'prefix' | 'naming' | 'head' | 'numClasses'> {
  return {
    prefix: layout.prefix,
    naming: layout.naming,
    head: layout.head?.name ?? null,
    numClasses: layout.head?.numClasses ?? null,
  };
}

function metadataClasses(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) && parsed.every((name) => typeof name === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** One line saying what was recognised, for stderr and logs. */
export function describeCheckpoint(info: CheckpointInfo): string {
  const parts = [
    `${info.format === 'safetensors' ? 'safetensors' : 'PyTorch'} ${info.container}`,
    info.prefix ? `prefix "${info.prefix}" stripped` : 'torchvision keys',
    ...(info.naming === 'children' ? ['top-level modules numbered (nn.Sequential of resnet18().children())'] : []),
    info.head ? `classifier "${info.head}" with ${info.numClasses} outputs` : 'no classifier',
    info.classes ? `classes ${info.classes.join(', ')} (from ${info.classesSource})` : 'no class names',
  ];
  if (info.ignored.length > 0) parts.push(`ignored ${info.ignored.join(', ')}`);
  return `${info.file}: ResNet-18 — ${parts.join('; ')}`;
}
