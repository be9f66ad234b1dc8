/**
 * Training and inference throughput of ResNet-18 (2 classes) on the default backend, next to PyTorch CPU on
 * the same shapes, plus the peak memory of a training run.
 *
 *   npm run bench                          # 64, 128 and 224 px; about 6–8 minutes
 *   npm run bench -- --sizes 64,128        # only these image sizes
 *   npm run bench -- --quick               # one or two timed steps per figure (CI smoke)
 *   npm run bench -- --json                # figures as JSON on stdout (progress stays on stderr)
 *
 * Each of our figures comes from a fresh child process, so one measurement's heap growth cannot slow the
 * next, and the training child at 128 px, batch 32 reports its own peak RSS: the memory a real run needs.
 * PyTorch (Debian's /usr/bin/python3 with torch and torchvision) runs after ours, never at the same time,
 * twice: with one thread per core, as upstream PyTorch would, and with one thread, because our wasm
 * engine computes on one core. The machine may be shared, so the load average is printed with the figures.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../src/core/data/batches.js';
import { selectBackend, type BackendReport } from '../src/core/engine/backend.js';
import { createResNet18, forward, trainableVariables } from '../src/core/model/resnet18.js';
import { createOptimizer } from '../src/core/train/optimizers.js';
import { trainStep } from '../src/core/train/step.js';

const NUM_CLASSES = 2;
const TRAIN_BATCH = 32;
/**
 * One 224 px training step at batch 32 takes about 4× a 128 px step on one core, so three of them would
 * take most of a minute; batch 16 keeps the measurement within the time budget and the table says so.
 */
const TRAIN_BATCH_BY_SIZE: Readonly<Record<number, number>> = { 224: 16 };
const INFERENCE_BATCH = 32;
const DEFAULT_SIZES = [64, 128, 224];
const RSS_SIZE = 128;
const RSS_TARGET_BYTES = 3e9;
const PYTHON = '/usr/bin/python3';
/** Adam's default rate, as the trainer uses it; the value does not change the cost of a step. */
const LEARNING_RATE = 1e-3;

type Kind = 'train' | 'infer';

interface Budget {
  /** Timed steps continue until this many seconds have passed… */
  targetSeconds: number;
  /** …and at least this many steps were timed. */
  minSteps: number;
}

/** What one measurement asks for; also the `--child` argument of our child processes. */
interface Job extends Budget {
  kind: Kind;
  size: number;
  batch: number;
}

interface Throughput {
  steps: number;
  seconds: number;
  imagesPerSecond: number;
}

interface ChildResult extends Throughput {
  backend: BackendReport;
  /** Peak resident set of the whole child process (warm-up included), in bytes. */
  maxRssBytes: number;
}

interface TorchResult extends Throughput {
  kind: Kind;
  size: number;
  batch: number;
  threads: number;
}

type TorchReport =
  | { available: true; version: string; defaultThreads: number; cores: number; results: TorchResult[] }
  | { available: false; reason: string };

// ---------------------------------------------------------------------------------------------------
// Child: one measurement with our engine

/**
 * Runs `step` once untimed (wasm grows its heap and XNNPACK packs its operators on first use), then times
 * steps until the budget is spent. The total over all timed steps, not the fastest step: a training run
 * pays for the slow steps too.
 */
function timeSteps(step: () => void, batch: number, budget: Budget): Throughput {
  step();
  let steps = 0;
  const start = performance.now();
  let elapsed = 0;
  while (steps < budget.minSteps || elapsed < budget.targetSeconds * 1000) {
    step();
    steps++;
    elapsed = performance.now() - start;
  }
  return { steps, seconds: elapsed / 1000, imagesPerSecond: (steps * batch) / (elapsed / 1000) };
}

/** Random pixels (the cost of a step does not depend on them) and alternating labels, as a Batch. */
function syntheticBatch(batch: number, size: number): Batch {
  const x = new Float32Array(batch * size * size * 3);
  for (let i = 0; i < x.length; i++) x[i] = Math.random() * 4 - 2;
  return { x, y: Int32Array.from({ length: batch }, (_, i) => i % NUM_CLASSES), paths: [] };
}

async function runChild(job: Job): Promise<ChildResult> {
  const backend = await selectBackend('auto');
  const params = createResNet18(NUM_CLASSES, 1);
  const batch = syntheticBatch(job.batch, job.size);
  let step: () => void;
  if (job.kind === 'train') {
    // Exactly what the trainer does per batch: full fine-tuning with Adam and unit class weights.
    const optimizer = createOptimizer('adam');
    const trainable = new Map([...params].filter(([, variable]) => trainableVariables(params, 'full').includes(variable)));
    const weights = new Array<number>(NUM_CLASSES).fill(1);
    step = () => trainStep(params, trainable, optimizer, batch, job.size, NUM_CLASSES, weights, LEARNING_RATE);
  } else {
    // As the trainer's evaluation: eval-mode forward pass, logits read back to the host.
    step = () =>
      tf.tidy(() => forward(params, tf.tensor4d(batch.x, [job.batch, job.size, job.size, 3]), { training: false }).logits.dataSync());
  }
  const throughput = timeSteps(step, job.batch, job);
  // resourceUsage reports kilobytes.
  return { ...throughput, backend, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
}

// ---------------------------------------------------------------------------------------------------
// Parent: children, PyTorch, table

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Runs a command and resolves with its stdout; stderr passes through so failures are visible. */
function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      process.stderr.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The last line of stdout is the child's JSON; anything before it (a library's notice) is ignored. */
function lastJsonLine<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

async function measureOurs(job: Job): Promise<ChildResult> {
  progress(`ours: ${job.kind} ${job.size} px, batch ${job.batch}`);
  // execArgv carries `--import tsx` (and e.g. --cpu-prof) over to the child.
  const { code, stdout } = await run(process.execPath, [...process.execArgv, __filename, '--child', JSON.stringify(job)]);
  if (code !== 0) throw new Error(`bench child for ${job.kind} ${job.size} px exited with code ${code}`);
  return lastJsonLine<ChildResult>(stdout);
}

/**
 * Measures every job with torchvision's resnet18, Adam and CrossEntropyLoss, at each thread count in turn.
 * The timing rule is the same as `timeSteps`: one untimed step, then steps until the budget is spent.
 */
const TORCH_SCRIPT = String.raw`
import json, os, sys, time
config = json.loads(sys.argv[1])
import torch, torchvision
default_threads = torch.get_num_threads()
# Upstream PyTorch defaults to one thread per core; some distribution builds (Debian's) default to 1.
cores = len(os.sched_getaffinity(0))
print(json.dumps({"version": torch.__version__, "defaultThreads": default_threads, "cores": cores}), flush=True)
threads_list = [cores] + ([1] if cores > 1 else [])
torch.manual_seed(0)
for threads in threads_list:
    torch.set_num_threads(threads)
    for job in config["jobs"]:
        model = torchvision.models.resnet18(num_classes=2)
        x = torch.randn(job["batch"], 3, job["size"], job["size"])
        y = torch.arange(job["batch"]) % 2
        if job["kind"] == "train":
            model.train()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            loss_fn = torch.nn.CrossEntropyLoss()
            def step():
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
                loss.item()
        else:
            model.eval()
            def step():
                with torch.inference_mode():
                    model(x).numpy()
        print(f"[bench] pytorch {threads} thread(s): {job['kind']} {job['size']} px, batch {job['batch']}", file=sys.stderr, flush=True)
        step()
        steps = 0
        start = time.perf_counter()
        elapsed = 0.0
        while steps < job["minSteps"] or elapsed < job["targetSeconds"]:
            step()
            steps += 1
            elapsed = time.perf_counter() - start
        print(json.dumps({"kind": job["kind"], "size": job["size"], "batch": job["batch"], "threads": threads,
                          "steps": steps, "seconds": elapsed, "imagesPerSecond": steps * job["batch"] / elapsed}), flush=True)
`;

async function measureTorch(jobs: Job[]): Promise<TorchReport> {
  let probe;
  try {
    probe = await run(PYTHON, ['-c', 'import torch, torchvision']);
  } catch (error) {
    return { available: false, reason: `${PYTHON} could not be started (${(error as Error).message})` };
  }
  if (probe.code !== 0) {
    const lastLine = probe.stderr.trim().split('\n').pop() ?? `exit code ${probe.code}`;
    return { available: false, reason: `${PYTHON} cannot import torch and torchvision: ${lastLine}` };
  }
  const { code, stdout } = await run(PYTHON, ['-c', TORCH_SCRIPT, JSON.stringify({ jobs })]);
  if (code !== 0) return { available: false, reason: `the PyTorch measurement exited with code ${code}` };
  const [header, ...results] = stdout.trim().split('\n').map((line) => JSON.parse(line));
  return { available: true, version: header.version, defaultThreads: header.defaultThreads, cores: header.cores, results };
}

interface Options {
  sizes: number[];
  quick: boolean;
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { sizes: DEFAULT_SIZES, quick: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--json') options.json = true;
    else if (arg === '--sizes' || arg.startsWith('--sizes=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      options.sizes = (value ?? '').split(',').map(Number);
      // BatchNorm in training needs more than one value per channel after layer4's 32× downsampling.
      if (options.sizes.length === 0 || options.sizes.some((size) => !Number.isInteger(size) || size < 64)) {
        throw new Error(`--sizes takes whole numbers ≥ 64 separated by commas, got "${value}"`);
      }
    } else throw new Error(`Unknown argument "${arg}"; use --sizes 64,128, --quick, --json`);
  }
  return options;
}

function trainBatchFor(size: number): number {
  return TRAIN_BATCH_BY_SIZE[size] ?? TRAIN_BATCH;
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

function printReport(
  options: Options,
  ours: Map<string, ChildResult>,
  rss: ChildResult,
  torch: TorchReport,
  load: { before: number[]; after: number[] },
): void {
  const key = (kind: Kind, size: number) => `${kind}/${size}`;
  const backend = rss.backend;
  const torchFigure = (kind: Kind, size: number, threads: number) =>
    torch.available ? torch.results.find((r) => r.kind === kind && r.size === size && r.threads === threads) : undefined;
  const threadCounts = torch.available ? [...new Set(torch.results.map((r) => r.threads))] : [];

  console.log(`Backend: ${backend.name}${backend.skipped.length ? ` (passed over: ${backend.skipped.join('; ')})` : ''}`);
  if (torch.available) {
    console.log(
      `PyTorch ${torch.version}, CPU: ${threadCounts.map((t) => `${t} thread${t > 1 ? 's' : ''}`).join(' and ')} ` +
        `(${torch.cores} cores; this torch build's own default is ${torch.defaultThreads})`,
    );
  } else {
    console.log(`PyTorch: not measured — ${torch.reason}`);
  }
  for (const kind of ['train', 'infer'] as const) {
    const header = ['px', 'batch', 'ours img/s', 'steps'];
    for (const threads of threadCounts) header.push(`PyTorch ${threads}T img/s`, `ours/PT ${threads}T`);
    const rows = options.sizes.map((size) => {
      const mine = ours.get(key(kind, size))!;
      const batch = kind === 'train' ? trainBatchFor(size) : INFERENCE_BATCH;
      const row = [String(size), batch === TRAIN_BATCH || kind === 'infer' ? String(batch) : `${batch}*`, mine.imagesPerSecond.toFixed(2), String(mine.steps)];
      for (const threads of threadCounts) {
        const theirs = torchFigure(kind, size, threads);
        row.push(theirs ? theirs.imagesPerSecond.toFixed(2) : '-', theirs ? `${(mine.imagesPerSecond / theirs.imagesPerSecond).toFixed(2)}×` : '-');
      }
      return row;
    });
    console.log(`\n${kind === 'train' ? 'Training (forward, backward, Adam step)' : 'Inference (eval-mode forward)'}, images/s`);
    console.log(formatTable(header, rows));
  }
  if (options.sizes.some((size) => trainBatchFor(size) !== TRAIN_BATCH)) {
    console.log(`* smaller training batch at this size, to keep the measurement within the time budget`);
  }
  const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
  console.log(
    `\nPeak RSS, training ${RSS_SIZE} px, batch ${TRAIN_BATCH}: ${gb(rss.maxRssBytes)} GB ` +
      `(target ${gb(RSS_TARGET_BYTES)} GB; ${((100 * rss.maxRssBytes) / RSS_TARGET_BYTES).toFixed(0)} % of it)`,
  );
  const loads = (values: number[]) => values.map((value) => value.toFixed(2)).join(' ');
  console.log(`Load average (1, 5, 15 min) before: ${loads(load.before)}, after: ${loads(load.after)} — other processes skew every figure.`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    process.stdout.write(`${JSON.stringify(await runChild(JSON.parse(argv[1]) as Job))}\n`);
    return;
  }
  const options = parseOptions(argv);
  const budget: Budget = options.quick ? { targetSeconds: 0, minSteps: 1 } : { targetSeconds: 10, minSteps: 2 };
  const jobs: Job[] = ['train', 'infer'].flatMap((kind) =>
    options.sizes.map((size): Job => ({ kind: kind as Kind, size, batch: kind === 'train' ? trainBatchFor(size) : INFERENCE_BATCH, ...budget })),
  );
  const load = { before: loadavg(), after: [] as number[] };
  const ours = new Map<string, ChildResult>();
  for (const job of jobs) ours.set(`${job.kind}/${job.size}`, await measureOurs(job));
  // The 128 px, batch 32 training child doubles as the memory measurement; without it, one short run.
  const rss =
    ours.get(`train/${RSS_SIZE}`) ??
    (await measureOurs({ kind: 'train', size: RSS_SIZE, batch: TRAIN_BATCH, targetSeconds: 0, minSteps: 1 }));
  const torch = await measureTorch(jobs);
  load.after = loadavg();
  if (options.json) {
    const { backend } = rss;
    const figures = jobs.map((job) => ({ ...job, ours: ours.get(`${job.kind}/${job.size}`) }));
    process.stdout.write(
      `${JSON.stringify({ backend, figures, peakRss: { size: RSS_SIZE, batch: TRAIN_BATCH, bytes: rss.maxRssBytes, targetBytes: RSS_TARGET_BYTES }, torch, loadavg: load }, null, 2)}\n`,
    );
  } else {
    printReport(options, ours, rss, torch, load);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
