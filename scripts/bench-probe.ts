// The batch-effect probe on the demo dataset's training_data, twice with one fresh cache folder: the first run
// computes every image's features, the second reads them back. Prints both runs by phase, the speed-ups, and
// as the reference measured in the same script, the inference alone (the first run's feature phase over its
// images) so load on the machine shows in both. Load average next to the figures.
// Usage: node --import tsx scripts/bench-probe.ts [--image-size 128] [--images-per-fold 200] [--keep]
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { probeDataset } from '../src/core/probe/probe.js';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  const imageSize = option('--image-size', 128);
  const work = await mkdtemp(path.join(os.tmpdir(), 'bench-probe-'));
  try {
    await generateDemoDataset(work, { imagesPerFold: option('--images-per-fold', 200), imageSize: 64, seed: 3 });
    const dataset = path.join(work, 'C-NMC_Leukemia', 'training_data');
    const cacheDir = path.join(work, 'cache');
    const runs = [];
    for (const name of ['first', 'second']) {
      const started = performance.now();
      const { run } = await probeDataset({
        dataset,
        weights: 'none',
        imageSize,
        cacheDir,
        report: false,
        out: path.join(work, `run-${name}`),
      });
      const wall = (performance.now() - started) / 1000;
      const { seconds, cache } = run.probe!;
      runs.push({ wall, seconds, computed: cache.computed });
      process.stdout.write(
        `${name.padEnd(6)} ${wall.toFixed(1)} s wall (audit ${seconds.audit.toFixed(1)}, prepare ${seconds.prepare.toFixed(1)}, ` +
          `features ${seconds.features.toFixed(1)}: ${cache.fromCache} cached, ${cache.computed} computed; probes ${seconds.probes.toFixed(1)}) ` +
          `· load ${load()}\n`,
      );
    }
    const [first, second] = runs;
    process.stdout.write(
      `speed-up: ×${(first.wall / second.wall).toFixed(1)} overall, ×${(first.seconds.features / second.seconds.features).toFixed(1)} on the features; ` +
        `reference (the first run's inference): ${(first.computed / first.seconds.features).toFixed(1)} img/s at ${imageSize} px; ` +
        `the second run's feature phase took ${((100 * second.seconds.features) / first.seconds.features).toFixed(1)} % of its time\n`,
    );
  } finally {
    if (!process.argv.includes('--keep')) await rm(work, { recursive: true, force: true });
  }
}

void main();
