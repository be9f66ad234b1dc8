/**
 * `--weights none|imagenet|PATH`: where a run's initial weights come from.
 *  - `none`: random initialisation (the caller keeps its freshly created model);
 *  - `imagenet`: torchvision's ImageNet ResNet-18, downloaded once (see `imagenet.ts`);
 *  - `PATH`: a `.pth`/`.pt` file written by `torch.save`, a `.safetensors` file (both recognised by
 *    content, not extension), or a run folder, whose `model.safetensors` is used.
 * Every choice yields a torchvision-keyed state dict in PyTorch layout, ready for `loadStateDict`.
 */
import path from 'node:path';
import { describeCheckpoint, loadCheckpoint, type CheckpointInfo } from './checkpoint.js';
import { ensureImagenetWeights, type ImagenetWeightsOptions } from './imagenet.js';
import type { HostTensor } from './safetensors.js';

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
  /** The number of classes the checkpoint's classifier has, if it has one. */
  checkpointClasses: number | undefined;
  /**
   * True when `fc` does not fit `numClasses` (ImageNet's 1000 classes, say) or is absent: load with
   * `allowHeadMismatch: true`, which keeps the backbone and re-initialises `fc`.
   */
  headMismatch: boolean;
  /** What the checkpoint loader recognised. */
  checkpoint: CheckpointInfo;
}

/** The choice `none` means random initialisation: there is nothing to resolve. */
export const NO_WEIGHTS = 'none';
export const IMAGENET_WEIGHTS = 'imagenet';

/**
 * The state dict a `--weights` choice names, or undefined for `none`. Relative paths resolve against
 * the working directory; files and run folders go through the checkpoint loader (`checkpoint.ts`).
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
    const { dict, info } = await loadCheckpoint(cached.file);
    const source = `ImageNet (torchvision ${path.basename(cached.file)}${cached.downloaded ? ', downloaded' : ''}) from ${cached.file}`;
    return withHead(dict, info, source, options.numClasses);
  }
  let loaded;
  try {
    loaded = await loadCheckpoint(choice);
  } catch (error) {
    if (/: no such file or folder$/.test((error as Error).message))
      throw new Error(
        `Weights "${choice}": no such file or folder (expected ${NO_WEIGHTS}, ${IMAGENET_WEIGHTS}, a .pth or .safetensors file, or a run folder)`,
        { cause: error },
      );
    throw error;
  }
  return withHead(loaded.dict, loaded.info, describeCheckpoint(loaded.info), options.numClasses);
}

function withHead(
  dict: Map<string, HostTensor>,
  checkpoint: CheckpointInfo,
  source: string,
  numClasses: number,
): ResolvedWeights {
  const checkpointClasses = checkpoint.numClasses ?? undefined;
  return {
    dict,
    source,
    sha256: checkpoint.sha256,
    checkpointClasses,
    headMismatch: checkpointClasses !== numClasses,
    checkpoint,
  };
}
