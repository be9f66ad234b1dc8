import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * Starts the worker thread whose entry is `<name>.ts` next to the calling source file under tsx (tests, scripts),
 * or the separate bundle `<name>.js` next to the bundle that contains the caller (dist/*.js, see scripts/build.mjs).
 * Pass the caller's own `__filename`: in a bundle that is the bundle, in source the .ts file.
 */
export function startWorker(callerFile: string, name: string, workerData: unknown): Worker {
  const folder = join(callerFile, '..');
  if (callerFile.endsWith('.ts')) {
    // Node 20 loads a worker's entry before `--import tsx` in its execArgv has registered the loader
    // (ERR_UNKNOWN_FILE_EXTENSION), so register tsx's CommonJS hook from a tiny evaluated entry instead.
    const file = join(folder, `${name}.ts`);
    return new Worker(`require('tsx/cjs'); require(${JSON.stringify(file)});`, { eval: true, workerData });
  }
  const file = join(folder, `${name}.js`);
  if (!existsSync(file)) throw new Error(`${name} needs ${file} (built by scripts/build.mjs)`);
  return new Worker(file, { workerData });
}
