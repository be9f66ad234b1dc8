// `npm run demo`: the main job on bundled demo data. Writes a C-NMC-like dataset (once), audits the folder
// the widely copied notebook pointed ImageFolder at, shows that training refuses the fold labels, then
// trains on the labels the audit recommends, prints the metrics and writes the HTML report.
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
const runDir = join(demoDir, 'runs', 'demo');
// --force: a second `npm run demo` replaces the demo's own run.
run(['train', trainingData, '--labels', 'folder:2', '--out', runDir, '--force']);
run(['report', runDir]);
