// `npm run demo`: the main job on bundled demo data. Writes a C-NMC-like dataset (once), then audits the
// folder the widely copied notebook pointed ImageFolder at.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin', 'leukemia-audit.js');
const demoDir = join(root, 'demo-data');
const dataset = join(demoDir, 'C-NMC_Leukemia');

function run(args) {
  process.stderr.write(`\n$ leukemia-audit ${args.join(' ')}\n`);
  const result = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(dataset)) run(['demo-data', demoDir]);
run(['audit', join(dataset, 'training_data')]);
