/**
 * The PyTorch engine against plain PyTorch, in one run on the same files and device:
 *
 *   ours       `leukemia-audit train --backend torch` end to end (audit, plan, the bundled trainer, final
 *              predictions, Grad-CAM gallery, run.json), wall time of the whole command
 *   reference  a plain PyTorch script a user would write: the same train/val files (read from our plan),
 *              torchvision transforms, DataLoader with the same workers, resnet18, Adam, the same epochs
 *              with validation after each
 *   data path  our trainer's Dataset + DataLoader alone (decode, crop, resize, augment, normalise), no model
 *
 *   npm run bench                         # also runs this after scripts/bench.ts
 *   node --import tsx scripts/bench-torch.ts [--size 64] [--epochs 2] [--images 60] [--device cpu]
 *
 * Target: ours ≥ 0.9× the reference's speed on CPU (the plan and the event stream cost almost nothing, and
 * the data path is fast enough not to starve the model). The machine may be shared: the load average is
 * printed, and both sides run back to back under the same load.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { readRunFile } from '../src/core/run/runFileIo.js';
import { TORCH_PLAN_FILE, type TorchPlan } from '../src/core/torch/plan.js';
import { torchTrainerPath } from '../src/core/torch/runTrainer.js';

const PYTHON = '/usr/bin/python3';
const REPO = join(__dirname, '..');

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '64' },
    epochs: { type: 'string', default: '2' },
    images: { type: 'string', default: '60' },
    device: { type: 'string', default: 'cpu' },
  },
});
const size = Number(values.size);
const epochs = Number(values.epochs);

/** The plain PyTorch script: what a user writes from the torchvision tutorial, on our plan's file lists. */
const REFERENCE_PY = String.raw`
import json, os, sys, time
import torch, torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from PIL import Image

plan = json.load(open(sys.argv[1]))
device = torch.device(sys.argv[2])
workers = int(sys.argv[3])
threads = int(sys.argv[4])
torch.set_num_threads(threads)
size, mean, std = plan["preprocess"]["imageSize"], plan["preprocess"]["mean"], plan["preprocess"]["std"]
t = plan["training"]

class Files(Dataset):
    def __init__(self, examples, transform):
        self.examples, self.transform = examples, transform
    def __len__(self):
        return len(self.examples)
    def __getitem__(self, i):
        path, label = self.examples[i]
        return self.transform(Image.open(os.path.join(plan["datasetRoot"], path)).convert("RGB")), label

train_tf = transforms.Compose([transforms.Resize((size, size)), transforms.RandomHorizontalFlip(), transforms.RandomVerticalFlip(),
                               transforms.ColorJitter(0.1, 0.1), transforms.ToTensor(), transforms.Normalize(mean, std)])
eval_tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(), transforms.Normalize(mean, std)])
started = time.perf_counter()
train = DataLoader(Files(plan["examples"]["train"], train_tf), batch_size=t["batchSize"], shuffle=True, drop_last=True,
                   num_workers=workers, persistent_workers=workers > 0)
val = DataLoader(Files(plan["examples"]["val"], eval_tf), batch_size=t["batchSize"], num_workers=workers, persistent_workers=workers > 0)
model = torchvision.models.resnet18(num_classes=len(plan["classes"])).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=t["learningRate"])
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=len(train) * t["epochs"])
criterion = nn.CrossEntropyLoss(weight=torch.tensor(plan["classWeights"], device=device))
for epoch in range(t["epochs"]):
    model.train()
    for x, y in train:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        for x, y in val:
            model(x.to(device))
print(json.dumps({"seconds": time.perf_counter() - started}))
`;

/** Our trainer's data path alone: one epoch of its training DataLoader, augmentation included. */
const DATA_PATH_PY = String.raw`
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("trainer", sys.argv[1])
trainer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trainer)
plan = json.load(open(sys.argv[2]))
workers = int(sys.argv[3])
dataset = trainer.CellImages(plan["datasetRoot"], plan["examples"]["train"], plan, trainer.RandomCellAugmentation(plan["augment"]))
loader = trainer.DataLoader(dataset, batch_size=plan["training"]["batchSize"], shuffle=True, num_workers=workers)
seen, started = 0, None
for epoch in range(3):
    if epoch == 1:
        seen, started = 0, time.perf_counter()  # the first epoch pays for starting the workers
    for x, _ in loader:
        seen += len(x)
print(json.dumps({"imagesPerSecond": seen / (time.perf_counter() - started)}))
`;

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ stdout: string; seconds: number }> {
  const started = performance.now();
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) =>
      code === 0
        ? resolveRun({ stdout, seconds: (performance.now() - started) / 1000 })
        : rejectRun(new Error(`${command} ${args.slice(0, 3).join(' ')} exited with ${code}:\n${stderr.slice(-2000)}`)),
    );
  });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'leukemia-bench-torch-'));
  try {
    await generateDemoDataset(work, { imagesPerFold: Number(values.images), validationImages: 6, seed: 11 });
    const dataset = join(work, 'C-NMC_Leukemia', 'training_data');
    const out = join(work, 'run');
    const load = loadavg()[0].toFixed(1);
    process.stderr.write(`bench-torch: ${size} px, ${epochs} epochs, device ${values.device}, load ${load}\n`);

    // Ours first: its plan names the files, the reference then trains on exactly those.
    const ours = await run(process.execPath, [
      join(REPO, 'bin', 'leukemia-audit.js'),
      'train',
      dataset,
      '--labels',
      'folder:2',
      '--backend',
      'torch',
      '--python',
      PYTHON,
      '--device',
      values.device!,
      '--epochs',
      String(epochs),
      '--image-size',
      String(size),
      '--patience',
      '0',
      '--out',
      out,
    ]);
    const runFile = await readRunFile(out);
    const plan = JSON.parse(await readFile(join(out, TORCH_PLAN_FILE), 'utf8')) as TorchPlan;
    const engineLine = runFile.backend.torch!;
    // What the bundled trainer chooses for one process: a DataLoader worker per core (at most 4), a thread per core.
    const workers = Math.max(1, Math.min(4, availableParallelism()));
    const threads = availableParallelism();
    const reference = await run(PYTHON, [
      '-c',
      REFERENCE_PY,
      join(out, TORCH_PLAN_FILE),
      values.device!,
      String(workers),
      String(threads),
    ]);
    const referenceSeconds = JSON.parse(reference.stdout.trim().split('\n').pop()!).seconds as number;
    const dataPath = await run(PYTHON, [
      '-c',
      DATA_PATH_PY,
      torchTrainerPath(),
      join(out, TORCH_PLAN_FILE),
      String(workers),
    ]);
    const dataImagesPerSecond = JSON.parse(dataPath.stdout.trim().split('\n').pop()!).imagesPerSecond as number;

    const trainSeconds = runFile.history.reduce((sum, h) => sum + h.seconds, 0);
    const modelImagesPerSecond = runFile.history.at(-1)!.imagesPerSecond;
    console.log(
      `\nPyTorch engine vs plain PyTorch (${engineLine.torch}, ${engineLine.device}; ${plan.examples.train.length} training and ${plan.examples.val.length} validation images of 450 px at ${size} px, ${epochs} epochs, load ${load})`,
    );
    console.log(
      `  ours, whole train command        ${ours.seconds.toFixed(1)} s (epochs ${trainSeconds.toFixed(1)} s)`,
    );
    console.log(
      `  plain PyTorch script             ${referenceSeconds.toFixed(1)} s in Python (${reference.seconds.toFixed(1)} s with interpreter start)`,
    );
    console.log(
      `  ratio (reference time / ours)    ${(reference.seconds / ours.seconds).toFixed(2)}× whole commands, ${(referenceSeconds / trainSeconds).toFixed(2)}× training epochs  (target ≥ 0.9×)`,
    );
    console.log(
      `  data path alone                  ${dataImagesPerSecond.toFixed(0)} img/s with ${workers} workers, vs ${modelImagesPerSecond.toFixed(0)} img/s trained`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
