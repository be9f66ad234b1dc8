/**
 * Features of a frozen network prefix (stem..layer3 for `finetune`, everything up to avgpool for
 * `linear`), computed once in eval mode and kept in a file, so each epoch trains only the head and
 * memory stays flat however many images there are (layer3 features at 224 px are 200 kB an image).
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { batches, type Batch, type Example } from '../data/batches.js';
import type { PreparedImages } from '../data/cache.js';
import { createPrefixEngine, describeEngine, type FrozenPrefix } from '../infer/engine.js';
import type { ResNet18Params } from '../model/resnet18.js';
import { createRng } from '../random.js';

export class FeatureStore {
  private constructor(
    private readonly file: string,
    private readonly handle: FileHandle,
    readonly examples: Example[],
    readonly exampleShape: number[],
    private readonly exampleLength: number,
  ) {}

  /**
   * Runs the frozen prefix over every example once (eval mode: its BatchNorm statistics stay as loaded), on the
   * inference engine (onnxruntime on every core when it loads). `onLog` hears which engine.
   */
  static async build(
    file: string,
    params: ResNet18Params,
    prepared: PreparedImages,
    examples: Example[],
    frozenUpTo: FrozenPrefix,
    batchSize: number,
    onProgress?: (done: number, total: number) => void,
    signal?: AbortSignal,
    onLog?: (message: string) => void,
  ): Promise<FeatureStore> {
    const engine = await createPrefixEngine({ params, imageSize: prepared.size, upTo: frozenUpTo });
    onLog?.(describeEngine(engine));
    const handle = await open(file, 'w+').catch(async (error: unknown) => {
      await engine.dispose();
      throw error;
    });
    let exampleShape: number[] = [];
    let written = 0;
    try {
      for await (const batch of batches(prepared, examples, { batchSize, seed: 0, epoch: 0, sampling: 'sequential' })) {
        signal?.throwIfAborted();
        const n = batch.y.length;
        const { data, shape } = await engine.activations(batch.x, n);
        exampleShape = shape.slice(1);
        await handle.write(
          new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
          0,
          data.byteLength,
          written * 4,
        );
        written += data.length;
        onProgress?.(Math.round(written / (data.length / n)), examples.length);
      }
    } catch (error) {
      await handle.close();
      await rm(file, { force: true });
      throw error;
    } finally {
      await engine.dispose();
    }
    const exampleLength = exampleShape.reduce((a, b) => a * b, 1);
    return new FeatureStore(file, handle, examples, exampleShape, exampleLength);
  }

  /** Seeded shuffled batches of features, a fresh order each epoch (no augmentation: features are fixed). */
  async *batches(batchSize: number, seed: number, epoch: number, dropLast: boolean): AsyncGenerator<Batch> {
    const order = createRng(seed)
      .fork(`features/${epoch}`)
      .shuffle([...this.examples.keys()]);
    const count = dropLast ? Math.floor(order.length / batchSize) : Math.ceil(order.length / batchSize);
    const bytes = this.exampleLength * 4;
    for (let b = 0; b < count; b++) {
      const chosen = order.slice(b * batchSize, (b + 1) * batchSize);
      const x = new Float32Array(chosen.length * this.exampleLength);
      await Promise.all(
        chosen.map((index, i) => this.handle.read(new Uint8Array(x.buffer, i * bytes, bytes), 0, bytes, index * bytes)),
      );
      yield {
        x,
        y: Int32Array.from(chosen, (i) => this.examples[i].label),
        paths: chosen.map((i) => this.examples[i].path),
      };
    }
  }

  async dispose(): Promise<void> {
    await this.handle.close();
    await rm(this.file, { force: true });
  }
}

/** The frozen prefix of each strategy: what its cached features are the output of. */
export function frozenPrefix(strategy: 'full' | 'finetune' | 'linear'): FrozenPrefix | undefined {
  return strategy === 'finetune' ? 'layer3' : strategy === 'linear' ? 'avgpool' : undefined;
}
