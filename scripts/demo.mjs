// `npm run demo`: the main job on bundled demo data. Writes a C-NMC-like dataset (once), audits the folder
// the widely copied notebook pointed ImageFolder at, shows that training refuses the fold labels, then
// trains on the labels the audit recommends and prints the metrics.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin', 'leukemia-audit.js');
const demoDir = join(root, 'demo-data');
const dataset = join(demoDir, 'C-NMC_Leukemia');
const trainingData = join(dataset, 'training_data');

function run(args, { expectFailure = false } = {}) {
  process.stderr.write(`\n$ leukemia-audit ${args.join(' ')}\n`);
  const result = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (expectFailure ? result.status === 0 : result.status !== 0) process.exit(result.status || 1);
}

if (!existsSync(dataset)) run(['demo-data', demoDir]);
run(['audit', trainingData]);
run(['train', trainingData], { expectFailure: true });
run(['train', trainingData, '--labels', 'folder:2', '--out', join(demoDir, 'runs', 'demo')]);
