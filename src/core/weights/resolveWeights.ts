/**
 * `--weights none|imagenet|PATH`: where a run's initial weights come from.
 *  - `none`: random initialisation (the caller keeps its freshly created model);
 *  - `imagenet`: torchvision's ImageNet ResNet-18, downloaded once (see `imagenet.ts`);
 *  - `PATH`: a `.pth`/`.pt` file written by `torch.save`, a `.safetensors` file (both recognised by
 *    content, not extension), or a run folder, whose `model.safetensors` is used.
 * Every choice yields a torchvision-keyed state dict in PyTorch layout, ready for `loadStateDict`.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_FILE } from '../run/runFile.js';
import { ensureImagenetWeights, type ImagenetWeightsOptions } from './imagenet.js';
import { decodePth, looksLikePth, readPth } from './pth.js';
import { decodeSafetensors, type HostTensor } from './safetensors.js';

export interface ResolveWeightsOptions extends Omit<ImagenetWeightsOptions, 'onProgress'> {
  /** Classes of the model the weights are for; decides whether the checkpoint's classifier fits. */
  numClasses: number;
  /** Download progress of `imagenet` (bytes, total when known); not called when a cached copy is used. */
  onProgress?: (bytes: number, total: number | undefined) => void;
}

export interface ResolvedWeights {
  dict: Map<string, HostTensor>;
  /** What was loaded from where, for logs and run.json. */
  source: string;
  /** SHA-256 of the file read. */
  sha256: string;
  /** The number of classes the checkpoint's `fc` classifies, if it has one. */
  checkpointClasses: number | undefined;
  /**
   * True when `fc` does not fit `numClasses` (ImageNet's 1000 classes, say): load with
   * `allowHeadMismatch: true`, which keeps the backbone and re-initialises `fc`.
   */
  headMismatch: boolean;
}

/** The choice `none` means random initialisation: there is nothing to resolve. */
export const NO_WEIGHTS = 'none';
export const IMAGENET_WEIGHTS = 'imagenet';

/**
 * The state dict a `--weights` choice names, or undefined for `none`. Relative paths resolve against
 * the working directory.
 */
export async function resolveWeights(
  choice: string,
  options: ResolveWeightsOptions,
): Promise<ResolvedWeights | undefined> {
  if (!Number.isInteger(options.numClasses) || options.numClasses < 1)
    throw new RangeError(`numClasses must be a positive integer, got ${options.numClasses}`);
  if (choice === NO_WEIGHTS) return undefined;
  if (choice === IMAGENET_WEIGHTS) {
    const cached = await ensureImagenetWeights(options);
    const source = `ImageNet (torchvision ${path.basename(cached.file)}${cached.downloaded ? ', downloaded' : ''}) from ${cached.file}`;
    return withHead(await readPth(cached.file), source, cached.sha256, options.numClasses);
  }

  const given = path.resolve(choice);
  let file = given;
  try {
    if ((await stat(given)).isDirectory()) file = path.join(given, MODEL_FILE);
  } catch {
    throw new Error(
      `Weights "${choice}": no such file or folder (expected ${NO_WEIGHTS}, ${IMAGENET_WEIGHTS}, a .pth or .safetensors file, or a run folder)`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    const missingModel = file !== given && (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missingModel
        ? `Weights "${choice}" is a folder without ${MODEL_FILE}; give a run folder or a weights file`
        : `Weights "${choice}": cannot read ${file} (${(error as Error).message})`,
      { cause: error },
    );
  }
  let dict: Map<string, HostTensor>;
  let format: string;
  if (looksLikePth(bytes)) {
    dict = decodePth(bytes, file);
    format = 'PyTorch';
  } else if (looksLikeSafetensors(bytes)) {
    dict = decodeSafetensors(bytes, file).tensors;
    format = 'safetensors';
  } else {
    throw new Error(`Weights "${choice}": ${file} is neither a PyTorch file (torch.save) nor a safetensors file`);
  }
  return withHead(dict, `${format} weights from ${file}`, sha256Of(bytes), options.numClasses);
}

/** An 8-byte little-endian header length that fits the file, followed by the JSON header's `{`. */
function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 9) return false;
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  return headerLength > 0n && headerLength <= BigInt(bytes.length - 8) && bytes[8] === 0x7b;
}

function withHead(dict: Map<string, HostTensor>, source: string, sha256: string, numClasses: number): ResolvedWeights {
  const bias = dict.get('fc.bias');
  const checkpointClasses = bias && bias.shape.length === 1 ? bias.shape[0] : undefined;
  return {
    dict,
    source,
    sha256,
    checkpointClasses,
    headMismatch: checkpointClasses !== undefined && checkpointClasses !== numClasses,
  };
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
