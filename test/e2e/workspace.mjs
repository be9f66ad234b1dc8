// The workspace the suite opens: what a user who copied the Kaggle notebook would have — a small C-NMC-like
// dataset (written by the repo's own CLI) and a notebook whose ImageFolder points at training_data — plus
// workspace settings that keep training to seconds.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './harness.mjs';

export const KAGGLE_TRAINING_PATH = '/kaggle/input/leukemia-classification/C-NMC_Leukemia/training_data';
export const NOTEBOOK = 'leukemia_resnet18.ipynb';
/** The notebook's own model file: written by Debian's PyTorch, as the copied notebook saves it. */
export const NOTEBOOK_CHECKPOINT = 'fold_model.pth';
export const PYTHON = '/usr/bin/python3';

// The notebook's pattern: ResNet-18 with `fc = Identity()` inside a wrapper class, its own Linear(512, 3)
// head over the three fold folders, saved as a training checkpoint dict with `class_to_idx`.
const NOTEBOOK_CHECKPOINT_PY = String.raw`
import sys, torch, torchvision
torch.manual_seed(0)
class LeukemiaNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet18()
        self.backbone.fc = torch.nn.Identity()
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(512, 3))
    def forward(self, x):
        return self.head(self.backbone(x))
net = LeukemiaNet()
optimizer = torch.optim.Adam(net.parameters())
torch.save({"epoch": 3, "model_state_dict": net.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
            "class_to_idx": {"fold_0": 0, "fold_1": 1, "fold_2": 2}}, sys.argv[1])
`;
/**
 * A finding on the dataset folder itself (not on a Python file), as the Problems panel's text has it: the
 * message `C-NMC_Leukemia: …`, then the source and the code on lines of their own.
 */
export const DATASET_WARNING = /C-NMC_Leukemia: [^\n]*\n\s*leukemia-audit\s*\n\s*structural-labels/;
export const TRAINING_SETTINGS = {
  'leukemiaAudit.epochs': 1,
  'leukemiaAudit.imageSize': 32,
  'leukemiaAudit.batchSize': 8,
};

function cell(source) {
  const lines = source.split('\n');
  return {
    cell_type: 'code',
    execution_count: null,
    metadata: {},
    outputs: [],
    source: lines.map((l, i) => (i < lines.length - 1 ? `${l}\n` : l)),
  };
}

/** `cli`: the CLI bundle to write the dataset with; the suite passes the one inside the installed VSIX. */
export function writeWorkspace(folder, cli = join(REPO, 'dist', 'cli.js')) {
  mkdirSync(join(folder, '.vscode'), { recursive: true });
  const result = spawnSync(
    process.execPath,
    [cli, 'demo-data', folder, '--image-size', '32', '--images-per-fold', '24', '--seed', '7'],
    { encoding: 'utf8' },
  );
  if (result.status !== 0)
    throw new Error(`${cli} demo-data failed (exit ${result.status}):\n${result.stderr}${result.stdout}`);
  writeFileSync(join(folder, '.vscode', 'settings.json'), `${JSON.stringify(TRAINING_SETTINGS, null, 2)}\n`);
  const notebook = {
    cells: [
      {
        cell_type: 'markdown',
        metadata: {},
        source: ['# ALL vs HEM with ResNet-18\n', 'Copied from a popular Kaggle notebook.'],
      },
      cell('import torch\nfrom torchvision import datasets, transforms, models'),
      cell(
        `tf = transforms.Compose([transforms.Resize(224), transforms.ToTensor()])\ntrain_ds = datasets.ImageFolder('${KAGGLE_TRAINING_PATH}', transform=tf)\nprint(train_ds.classes)`,
      ),
      cell('model = models.resnet18(num_classes=len(train_ds.classes))'),
    ],
    metadata: {
      kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' },
      language_info: { name: 'python', version: '3.11' },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
  writeFileSync(join(folder, NOTEBOOK), `${JSON.stringify(notebook, null, 1)}\n`);
  const python = spawnSync(PYTHON, ['-c', NOTEBOOK_CHECKPOINT_PY, join(folder, NOTEBOOK_CHECKPOINT)], {
    encoding: 'utf8',
  });
  if (python.status !== 0)
    throw new Error(
      `${PYTHON} (Debian python3-torch) could not write ${NOTEBOOK_CHECKPOINT} (exit ${python.status}): ${python.error?.message ?? ''}${python.stderr}`,
    );
  return { folder, dataset: join(folder, 'C-NMC_Leukemia', 'training_data') };
}

/** The pattern issue 11 names: exponential backtracking on a run of `a`s not followed by `_`. */
export const HOSTILE_PATTERN = '^(a+)+_';
export const HOSTILE_RUN = 32;

/**
 * An untrusted workspace that tries to freeze the window: the Kaggle-like workspace above, plus a dataset
 * folder `hostile/` whose images are named `aaaa…!N.bmp` (HOSTILE_RUN `a`s: ~2^32 steps for the pattern)
 * and whose leukemia-audit.json, like the workspace settings, sets the subject pattern to HOSTILE_PATTERN;
 * and `elsewhere/leukemia-audit.json` whose `root` is `/usr`.
 */
export function writeHostileWorkspace(folder, cli = join(REPO, 'dist', 'cli.js')) {
  const written = writeWorkspace(folder, cli);
  const hostile = join(folder, 'hostile');
  const source = join(written.dataset, 'fold_0');
  for (const label of ['all', 'hem']) {
    mkdirSync(join(hostile, label), { recursive: true });
    const images = readdirSync(join(source, label)).filter((n) => n.endsWith('.bmp'));
    images.forEach((name, i) =>
      copyFileSync(join(source, label, name), join(hostile, label, `${'a'.repeat(HOSTILE_RUN)}!${label}${i}.bmp`)),
    );
  }
  writeFileSync(
    join(hostile, 'leukemia-audit.json'),
    `${JSON.stringify({ labels: 'folder:1', subjectPattern: HOSTILE_PATTERN }, null, 2)}\n`,
  );
  // A dataset file that points the audit outside the workspace.
  mkdirSync(join(folder, 'elsewhere'));
  writeFileSync(join(folder, 'elsewhere', 'leukemia-audit.json'), `${JSON.stringify({ root: '/usr' }, null, 2)}\n`);
  writeFileSync(
    join(folder, '.vscode', 'settings.json'),
    `${JSON.stringify({ ...TRAINING_SETTINGS, 'leukemiaAudit.subjectPattern': HOSTILE_PATTERN }, null, 2)}\n`,
  );
  return { ...written, hostile };
}

/**
 * The Kaggle-like workspace plus `sites/`: the same cells re-filed by acquisition site — fold_0's subjects
 * scanned at site_A, whose scanner makes every image brighter (×1.45 + 12 on every byte of the BMP's
 * pixels), fold_1's at site_B, fold_2's at site_C — a batch effect the probe should find.
 */
export function writeSitesWorkspace(folder, cli = join(REPO, 'dist', 'cli.js')) {
  const written = writeWorkspace(folder, cli);
  const sites = join(folder, 'sites');
  ['site_A', 'site_B', 'site_C'].forEach((site, fold) => {
    for (const label of ['all', 'hem']) {
      const source = join(written.dataset, `fold_${fold}`, label);
      mkdirSync(join(sites, site, label), { recursive: true });
      for (const name of readdirSync(source).filter((n) => n.endsWith('.bmp'))) {
        const bytes = readFileSync(join(source, name));
        // 24-bit BMP: the pixels start at the offset in bytes 10–13 (32 px rows need no padding).
        if (site === 'site_A')
          for (let i = bytes.readUInt32LE(10); i < bytes.length; i++)
            bytes[i] = Math.min(255, Math.round(bytes[i] * 1.45 + 12));
        writeFileSync(join(sites, site, label, name), bytes);
      }
    }
  });
  return { ...written, sites };
}

/** The two runs the comparison suite opens: a model of the fold folders and one of all/hem, side by side. */
export const COMPARED_RUNS = { folds: 'run-folds', diagnosis: 'run-allhem' };
/** A two-output checkpoint whose output names are not the dataset's classes: Evaluate asks how to map them. */
export const RENAMED_CHECKPOINT = 'renamed_outputs.pth';
export const RENAMED_OUTPUTS = ['blast', 'normal'];

// torchvision's ResNet-18 with a two-output head, saved as a checkpoint dict whose class_to_idx names the
// outputs `blast` and `normal`: as many outputs as the dataset has classes, under other names.
const RENAMED_CHECKPOINT_PY = String.raw`
import sys, torch, torchvision
torch.manual_seed(1)
net = torchvision.models.resnet18(num_classes=2)
torch.save({"model_state_dict": net.state_dict(), "class_to_idx": {"blast": 0, "normal": 1}}, sys.argv[1])
`;

/**
 * The Kaggle-like workspace, plus two training runs in its runs folder (`.leukemia-audit/runs`, where the
 * run picker looks) trained by the packaged CLI on the notebook's training_data — one on the fold folders
 * (`folder:1`, structural), one on all/hem (`folder:2`) — and RENAMED_CHECKPOINT.
 */
export function writeComparisonWorkspace(folder, cli = join(REPO, 'dist', 'cli.js')) {
  const written = writeWorkspace(folder, cli);
  const runs = join(folder, '.leukemia-audit', 'runs');
  const train = (labels, name) => {
    const out = join(runs, name);
    // The workspace settings' training size; wasm: the same engine on every machine, no interpreter probe.
    const args = [cli, 'train', written.dataset, '--labels', labels, '--out', out, '--backend', 'wasm'];
    args.push('--epochs', '1', '--image-size', '32', '--batch-size', '8');
    const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
    if (result.status !== 0)
      throw new Error(`${cli} train --labels ${labels} failed (exit ${result.status}):\n${result.stderr}`);
    return out;
  };
  const python = spawnSync(PYTHON, ['-c', RENAMED_CHECKPOINT_PY, join(folder, RENAMED_CHECKPOINT)], {
    encoding: 'utf8',
  });
  if (python.status !== 0)
    throw new Error(`${PYTHON} could not write ${RENAMED_CHECKPOINT} (exit ${python.status}): ${python.stderr}`);
  return {
    ...written,
    runs,
    folds: train('folder:1', COMPARED_RUNS.folds),
    diagnosis: train('folder:2', COMPARED_RUNS.diagnosis),
  };
}
