/**
 * `evaluate` on the PyTorch engine against the embedded engine, in one run on the same model and images:
 *
 *   embedded   `leukemia-audit evaluate --backend wasm --no-explain` (tfjs wasm, XNNPACK)
 *   torch      `leukemia-audit evaluate --backend torch --python /usr/bin/python3 --device cpu --no-explain`
 *
 * each run twice back to back (the second with the image cache warm, as any evaluation after a training or a
 * probe at that size is), timed by wall clock and by CPU time (user + system of the CLI and every process it
 * waited for, Python included, from /usr/bin/time): on a shared machine the CPU time is the figure the load
 * does not distort. The load average is printed with the figures.
 *
 *   node --import tsx scripts/bench-torch-inference.ts [--size 128] [--images 240]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { selectBackend } from '../src/core/engine/backend.js';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { createResNet18, disposeModel } from '../src/core/model/resnet18.js';
import { exportStateDict } from '../src/core/model/stateDict.js';
import { writeSafetensors } from '../src/core/weights/safetensors.js';

const execFileAsync = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const CLI = join(__dirname, '..', 'src', 'cli', 'main.ts');

const { values } = parseArgs({
  options: { size: { type: 'string', default: '128' }, images: { type: 'string', default: '240' } },
});
const size = Number(values.size);
const imagesPerFold = Math.ceil(Number(values.images) / 3);

interface Timing {
  wall: number;
  cpu: number;
  images: number;
}

/** One `evaluate` through the CLI under /usr/bin/time: wall and CPU seconds, images predicted. */
async function evaluate(work: string, dataset: string, weights: string, engine: string[]): Promise<Timing> {
  const times = join(work, 'time.txt');
  const out = join(work, `eval-${Date.now()}`);
  const { stdout } = await execFileAsync(
    '/usr/bin/time',
    ['-f', '%e %U %S', '-o', times, process.execPath, '--import', 'tsx', CLI, 'evaluate', dataset].concat([
      '--weights',
      weights,
      '--out',
      out,
      '--no-explain',
      '--json',
      ...engine,
    ]),
    { maxBuffer: 1 << 26, env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache') } },
  );
  const [wall, user, system] = (await readFile(times, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: user + system, images: JSON.parse(stdout).predictions.length };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-torch-infer-'));
  try {
    await generateDemoDataset(work, { imageSize: Math.max(size, 64), imagesPerFold, validationImages: 6, seed: 4 });
    const dataset = join(work, 'C-NMC_Leukemia', 'training_data');
    // A random ResNet-18 with the dataset's classes: inference costs the same whatever the weights.
    await selectBackend('wasm');
    const params = createResNet18(2, 1);
    const weights = join(work, 'model.safetensors');
    await writeSafetensors(weights, exportStateDict(params), {
      format: 'pt',
      classes: JSON.stringify(['all', 'hem']),
      imageSize: String(size),
      crop: 'none',
    });
    disposeModel(params);

    const engines: Record<string, string[]> = {
      embedded: ['--backend', 'wasm'],
      torch: ['--backend', 'torch', '--python', PYTHON, '--device', 'cpu'],
    };
    const results: Record<string, Timing[]> = { embedded: [], torch: [] };
    for (let round = 0; round < 2; round++)
      for (const [name, flags] of Object.entries(engines))
        results[name].push(await evaluate(work, dataset, weights, flags));

    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    console.log(`evaluate, ${results.torch[0].images} images at ${size} px, load average ${load}`);
    for (const round of [0, 1]) {
      const [e, t] = [results.embedded[round], results.torch[round]];
      const label = round === 0 ? 'first run (torch prepares the image cache)' : 'second run (image cache warm)';
      console.log(`  ${label}`);
      for (const [name, r] of [
        ['embedded', e],
        ['torch', t],
      ] as const)
        console.log(
          `    ${name.padEnd(8)} wall ${r.wall.toFixed(1)} s (${(r.images / r.wall).toFixed(1)} img/s), CPU ${r.cpu.toFixed(1)} s`,
        );
      console.log(
        `    torch / embedded: ${(e.wall / t.wall).toFixed(2)}× faster by wall clock, ${(e.cpu / t.cpu).toFixed(2)}× by CPU time`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

void main();
