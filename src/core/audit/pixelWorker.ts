/** Worker thread of the audit's pixel phase (see pixels.ts): digests the files of each batch it is sent. */
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { describeDigestFailure, digestFile } from '../image/digestFile.js';
import type { PixelBatch, PixelBatchResult, PixelWorkerInit } from './pixels.js';

const init = workerData as PixelWorkerInit;
const port = parentPort!;

port.on('message', async (batch: PixelBatch) => {
  const results: PixelBatchResult['results'] = [];
  const features: Int8Array[] = [];
  for (const path of batch.paths) {
    try {
      const digest = await digestFile(join(init.root, path), init.limits, true);
      results.push({ pixel: digest.pixel, perceptual: digest.perceptual });
      features.push(digest.features.content, digest.features.texture);
    } catch (error) {
      results.push({ failure: describeDigestFailure(error) });
    }
  }
  const packed = new Int8Array(features.reduce((n, t) => n + t.length, 0));
  let offset = 0;
  for (const vector of features) {
    packed.set(vector, offset);
    offset += vector.length;
  }
  const reply: PixelBatchResult = { id: batch.id, results, features: packed };
  port.postMessage(reply, [packed.buffer]);
});
