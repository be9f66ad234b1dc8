/**
 * Training and inference throughput of ResNet-18 (2 classes) on the default backend, next to PyTorch CPU on
 * the same shapes, plus the peak memory of a training run.
 *
 *   npm run bench                          # 64, 128 and 224 px; 5–8 minutes, depending on the machine's load
 *   npm run bench -- --sizes 64,128        # only these image sizes
 *   npm run bench -- --quick               # one timed step per figure (CI smoke)
 *   npm run -s bench -- --json             # figures as JSON on stdout (progress on stderr; -s keeps npm's banner off stdout)
 *   npm run bench -- --only infer          # only inference (or only train; --only infer also skips bench-torch.ts)
 *
 * Each of our figures comes from a fresh child process, so one measurement's heap growth cannot slow the
 * next, and the training children at 128 px, batch 32 report their own peak RSS, on one core and on every
 * core (the data-parallel threads, a real run's default there): the memory a real run needs. Training
 * steps go through the trainer's own choice of gradient accumulation (tfjsEngine's accumulatedMicroBatch).
 * PyTorch (Debian's /usr/bin/python3 with torch and torchvision) measures each shape right after ours,
 * never at the same time, twice: with one thread per core, as upstream PyTorch would, and with one
 * thread, because our wasm engine computes on one core. The machine may be shared, so the load average
 * is printed with the figures, and the single-core comparison is also made by CPU time.
 *
 * Full training's native steps (onnxruntime, train/onnxStep.ts, what the trainer runs when onnxruntime-node
 * loads) are measured on every core against PyTorch on as many threads.
 *
 * Inference is also measured through the inference engines evaluate, predict and the probe use
 * (src/core/infer): onnxruntime on every core and the wasm worker pool on every core, each against PyTorch
 * on as many threads, by wall time and by CPU time (every thread of the process counts).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { batches, type Batch } from '../src/core/data/batches.js';
import { cacheFilePath, type PreparedImages } from '../src/core/data/cache.js';
import { selectBackend } from '../src/core/engine/backend.js';
import { BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD } from '../src/core/engine/wasmBatchNorm.js';
import type { BackendReport } from '../src/core/run/runFile.js';
import { createResNet18, trainableByName } from '../src/core/model/resnet18.js';
import { createOptimizer } from '../src/core/train/optimizers.js';
import { createDataParallelTrainer, inferLogits, type StepTimings } from '../src/core/train/dataParallel.js';
import type { Optimizer } from '../src/core/train/optimizers.js';
import { trainStep } from '../src/core/train/step.js';
import { accumulatedMicroBatch } from '../src/core/train/tfjsEngine.js';
import { createInferenceEngine, type InferenceEngineKind } from '../src/core/infer/engine.js';
import { loadOnnxRuntime } from '../src/core/infer/onnxRuntime.js';
import { createOnnxStepper } from '../src/core/train/onnxStep.js';

const NUM_CLASSES = 2;
const TRAIN_BATCH = 32;
const INFERENCE_BATCH = 32;
const DEFAULT_SIZES = [64, 128, 224];
const RSS_SIZE = 128;
const RSS_TARGET_BYTES = 2e9; // issue 12
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
  /** Training only: split each batch over this many cores (our data-parallel trainer); absent = one core. */
  ways?: number;
  /**
   * Inference: run through this engine (src/core/infer) on `ways` threads instead of one core. Training:
   * `onnxruntime` runs the trainer's native steps (train/onnxStep.ts) on `ways` threads.
   */
  engine?: InferenceEngineKind;
}

interface Throughput {
  steps: number;
  seconds: number;
  /** CPU time the process spent in the timed steps: what a step costs whatever else the machine runs. */
  cpuSeconds: number;
  imagesPerSecond: number;
  imagesPerCpuSecond: number;
}

interface ChildResult extends Throughput {
  backend: BackendReport;
  /** Peak resident set of the whole child process (warm-up included), in bytes. */
  maxRssBytes: number;
  /** Training on one core: milliseconds per step by kernel group, from one profiled step. */
  kernels?: Record<string, number>;
  /** Training on several cores: milliseconds per step by phase of the data-parallel step. */
  phases?: Record<string, number>;
  /** Training: images/s of the data path alone (cache read, augmentation, normalisation), one core. */
  dataPathImagesPerSecond?: number;
  /** Training: the micro-batch of gradient accumulation, as the trainer chooses it; absent = none. */
  microBatch?: number;
}

/** Kernel groups of a training step; every kernel not named here counts as element-wise. */
const KERNEL_GROUPS: Readonly<Record<string, string>> = {
  Conv2D: 'conv forward',
  Conv2DBackpropFilter: 'conv filter gradient',
  Conv2DBackpropInput: 'conv input gradient',
  BatchMatMul: 'fc',
  _FusedMatMul: 'fc',
  MaxPool: 'maxpool',
  MaxPoolGrad: 'maxpool',
  PadV2: 'padding',
  Slice: 'padding',
  [BATCH_NORM_TRAINING]: 'BatchNorm',
  [BATCH_NORM_TRAINING_GRAD]: 'BatchNorm',
};
/** ReLU, residual additions, the loss and their gradients (and BatchNorm's ops where its fused kernels are missing). */
const ELEMENT_WISE = 'ReLU, adds, loss (element-wise)';

/**
 * One training step under tf.profile, its kernels' times grouped; the optimiser's kernels are told apart by
 * recording where in the kernel list its step begins and ends.
 */
async function profileStep(
  run: (optimizer: Optimizer) => unknown,
  optimizer: Optimizer,
): Promise<Record<string, number>> {
  const profiled = tf.engine().state.activeProfile;
  let range: [number, number] = [0, 0];
  const timed: Optimizer = {
    ...optimizer,
    name: optimizer.name,
    step(variables, gradients, learningRate) {
      const start = profiled.kernels.length;
      optimizer.step(variables, gradients, learningRate);
      range = [start, profiled.kernels.length];
    },
  };
  const profile = await tf.profile(() => {
    run(timed);
  });
  const groups: Record<string, number> = {};
  profile.kernels.forEach((kernel, index) => {
    const group =
      index >= range[0] && index < range[1] ? 'optimizer (Adam)' : (KERNEL_GROUPS[kernel.name] ?? ELEMENT_WISE);
    groups[group] = (groups[group] ?? 0) + (kernel.kernelTimeMs as number);
  });
  return groups;
}

/** images/s of `batches()` with augmentation over a cache of synthetic images: the data path without the model. */
async function measureDataPath(size: number, batch: number): Promise<number> {
  const root = await mkdtemp(join(tmpdir(), 'bench-data-'));
  try {
    const count = batch * 2;
    const keys = new Map<string, string>();
    for (let i = 0; i < count; i++) {
      const key = `${String(i).padStart(4, '0')}bench`;
      const file = cacheFilePath(root, key);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(
        file,
        Uint8Array.from({ length: size * size * 3 }, (_, k) => (k * 31 + i) % 256),
      );
      keys.set(`image-${i}.bmp`, key);
    }
    const prepared: PreparedImages = {
      root,
      size,
      crop: 'none',
      cacheDir: root,
      keys,
      skipped: [],
      stats: { decoded: 0, fromCache: count, seconds: 0 },
      decode: () => Promise.reject(new Error('not used')),
    };
    const examples = [...keys.keys()].map((path, i) => ({ path, label: i % NUM_CLASSES }));
    const started = performance.now();
    let images = 0;
    for (let epoch = 1; epoch <= 2; epoch++) {
      for await (const b of batches(prepared, examples, {
        batchSize: batch,
        seed: 1,
        epoch,
        sampling: 'shuffle',
        augment: true,
      }))
        images += b.y.length;
    }
    return images / ((performance.now() - started) / 1000);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

interface TorchResult extends Throughput {
  threads: number;
}

type TorchSetup =
  | {
      available: true;
      version: string;
      defaultThreads: number;
      cores: number;
      ompWaitPolicy: string;
      threads: number[];
    }
  | { available: false; reason: string };

// ---------------------------------------------------------------------------------------------------
// Child: one measurement with our engine

function throughput(steps: number, batch: number, seconds: number, cpuSeconds: number): Throughput {
  return {
    steps,
    seconds,
    cpuSeconds,
    imagesPerSecond: (steps * batch) / seconds,
    imagesPerCpuSecond: (steps * batch) / cpuSeconds,
  };
}

/**
 * Runs `step` once untimed (wasm grows its heap and XNNPACK packs its operators on first use), then times
 * steps until the budget is spent. The total over all timed steps, not the fastest step: a training run
 * pays for the slow steps too.
 */
async function timeSteps(step: () => unknown, batch: number, budget: Budget): Promise<Throughput> {
  await step();
  let steps = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let elapsed = 0;
  while (steps < budget.minSteps || elapsed < budget.targetSeconds * 1000) {
    await step();
    steps++;
    elapsed = performance.now() - start;
  }
  const cpu = process.cpuUsage(cpuStart);
  return throughput(steps, batch, elapsed / 1000, (cpu.user + cpu.system) / 1e6);
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
  let step: () => unknown;
  let dispose = async () => {};
  let profile: () => Promise<
    Pick<ChildResult, 'kernels' | 'phases' | 'dataPathImagesPerSecond' | 'microBatch'>
  > = async () => ({});
  if (job.kind === 'train') {
    // Exactly what the trainer does per batch: full fine-tuning with Adam and unit class weights.
    const optimizer = createOptimizer('adam');
    const trainable = trainableByName(params, 'full');
    const weights = new Array<number>(NUM_CLASSES).fill(1);
    const ways = job.ways ?? 1;
    // The trainer's choice (tfjsEngine): split over cores, and into micro-batches when a part outgrows the budget.
    const microBatch = accumulatedMicroBatch(
      { strategy: 'full', imageSize: job.size, batchSize: job.batch },
      backend.name,
      ways,
    );
    // One core: the kernels of one trainStep on what the trainer computes at once (a micro-batch when it
    // accumulates), and the data path.
    const profiled = microBatch ? syntheticBatch(microBatch, job.size) : batch;
    const profileOneCore = async () => ({
      kernels: await profileStep(
        (timed) => trainStep(params, trainable, timed, profiled, job.size, NUM_CLASSES, weights, LEARNING_RATE),
        optimizer,
      ),
      dataPathImagesPerSecond: await measureDataPath(job.size, job.batch),
    });
    if (job.engine === 'onnxruntime') {
      const stepper = createOnnxStepper(loadOnnxRuntime(), {
        numClasses: NUM_CLASSES,
        imageSize: job.size,
        threads: ways,
      });
      step = () => stepper.step(params, trainable, optimizer, batch, weights, LEARNING_RATE);
      dispose = () => stepper.dispose();
    } else if (ways > 1 || microBatch) {
      const parallel = createDataParallelTrainer({
        numClasses: NUM_CLASSES,
        imageSize: job.size,
        workers: ways,
        microBatch,
      });
      step = () => parallel.step(params, trainable, optimizer, batch, weights, LEARNING_RATE);
      dispose = () => parallel.dispose();
      profile = async () => ({
        phases: perStep(parallel.timings),
        microBatch,
        ...(ways === 1 ? await profileOneCore() : {}),
      });
    } else {
      step = () => trainStep(params, trainable, optimizer, batch, job.size, NUM_CLASSES, weights, LEARNING_RATE);
      profile = profileOneCore;
    }
  } else if (job.engine) {
    // What evaluate, predict and the probe run: the inference engine on every core.
    const engine = await createInferenceEngine({
      params,
      imageSize: job.size,
      threads: job.ways ?? cpus().length,
      engine: job.engine,
    });
    step = () => engine.logits(batch.x, job.batch);
    dispose = () => engine.dispose();
  } else {
    // As the trainer's evaluation on one core: eval-mode forward pass, logits read back to the host.
    step = () => inferLogits(params, batch.x, job.batch, job.size);
  }
  const figures = await timeSteps(step, job.batch, job);
  const details = await profile();
  await dispose();
  // resourceUsage reports kilobytes.
  return { ...figures, ...details, backend, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
}

/** Timings of the data-parallel steps as milliseconds per step. */
function perStep(timings: StepTimings): Record<string, number> {
  const { steps, ...phases } = timings;
  return Object.fromEntries(Object.entries(phases).map(([phase, ms]) => [phase, ms / Math.max(1, steps)]));
}

// ---------------------------------------------------------------------------------------------------
// Parent: children, PyTorch, table

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Runs a command and resolves with its stdout; stderr passes through so failures are visible. */
function run(
  command: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
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

/** One JSON value per stdout line. */
function jsonLines<T>(stdout: string): T[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as T);
}

async function measureOurs(job: Job): Promise<ChildResult> {
  progress(`ours: ${job.kind} ${job.size} px, batch ${job.batch}`);
  // execArgv carries `--import tsx` (and e.g. --cpu-prof) over to the child.
  const { code, stdout } = await run(process.execPath, [
    ...process.execArgv,
    __filename,
    '--child',
    JSON.stringify(job),
  ]);
  if (code !== 0) throw new Error(`bench child for ${job.kind} ${job.size} px exited with code ${code}`);
  return jsonLines<ChildResult>(stdout)[0];
}

const TORCH_PROBE = String.raw`
import json, os
import torch, torchvision
print(json.dumps({"version": torch.__version__, "defaultThreads": torch.get_num_threads(), "cores": len(os.sched_getaffinity(0))}))
`;

/**
 * One job with torchvision's resnet18, Adam and CrossEntropyLoss, at each thread count in turn. The
 * timing rule is the one of `timeSteps`: one untimed step, then steps until the budget is spent.
 */
const TORCH_MEASURE = String.raw`
import json, sys, time
import torch, torchvision
job, threads_list = json.loads(sys.argv[1]), json.loads(sys.argv[2])
torch.manual_seed(0)
for threads in threads_list:
    torch.set_num_threads(threads)
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
    print(f"[bench] pytorch, {threads} thread(s): {job['kind']} {job['size']} px, batch {job['batch']}", file=sys.stderr, flush=True)
    step()
    steps, elapsed = 0, 0.0
    cpu_start, start = time.process_time(), time.perf_counter()
    while steps < job["minSteps"] or elapsed < job["targetSeconds"]:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
    print(json.dumps({"threads": threads, "steps": steps, "seconds": elapsed, "cpuSeconds": time.process_time() - cpu_start}), flush=True)
`;

/**
 * libgomp's threads spin-wait at every barrier by default: with another process busy on the second core,
 * PyTorch on 2 threads measured 5–10× slower than on 1, a figure that says nothing about PyTorch. Passive
 * waiting costs little on an idle machine. A policy set by the caller is kept.
 */
const OMP_WAIT_POLICY = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';

async function probeTorch(): Promise<TorchSetup> {
  let probe;
  try {
    probe = await run(PYTHON, ['-c', TORCH_PROBE]);
  } catch (error) {
    return { available: false, reason: `${PYTHON} could not be started (${(error as Error).message})` };
  }
  if (probe.code !== 0) {
    const lastLine = probe.stderr.trim().split('\n').pop() ?? `exit code ${probe.code}`;
    return { available: false, reason: `${PYTHON} cannot import torch and torchvision: ${lastLine}` };
  }
  const { version, defaultThreads, cores } = jsonLines<{ version: string; defaultThreads: number; cores: number }>(
    probe.stdout,
  )[0];
  // Upstream PyTorch defaults to one thread per core (Debian's build defaults to 1); one thread matches our engine.
  const threads = [...new Set([cores, 1])];
  return { available: true, version, defaultThreads, cores, ompWaitPolicy: OMP_WAIT_POLICY, threads };
}

async function measureTorch(job: Job, threads: number[]): Promise<TorchResult[]> {
  const { code, stdout } = await run(PYTHON, ['-c', TORCH_MEASURE, JSON.stringify(job), JSON.stringify(threads)], {
    ...process.env,
    OMP_WAIT_POLICY,
  });
  if (code !== 0) throw new Error(`the PyTorch measurement of ${job.kind} ${job.size} px exited with code ${code}`);
  return jsonLines<{ threads: number; steps: number; seconds: number; cpuSeconds: number }>(stdout).map((r) => ({
    threads: r.threads,
    ...throughput(r.steps, job.batch, r.seconds, r.cpuSeconds),
  }));
}

interface Options {
  sizes: number[];
  quick: boolean;
  json: boolean;
  kinds: Kind[];
}

function parseOptions(argv: string[]): Options {
  const options: Options = { sizes: DEFAULT_SIZES, quick: false, json: false, kinds: ['train', 'infer'] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (value !== 'train' && value !== 'infer') throw new Error(`--only takes train or infer, got "${value}"`);
      options.kinds = [value];
    } else if (arg === '--json') options.json = true;
    else if (arg === '--sizes' || arg.startsWith('--sizes=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      options.sizes = (value ?? '').split(',').map(Number);
      // ResNet-18 downsamples by 32: below 32 px, layer4 works on padding rather than on the image.
      if (options.sizes.length === 0 || options.sizes.some((size) => !Number.isInteger(size) || size < 32)) {
        throw new Error(`--sizes takes whole numbers ≥ 32 separated by commas, got "${value}"`);
      }
    } else throw new Error(`Unknown argument "${arg}"; use --sizes 64,128, --only train|infer, --quick, --json`);
  }
  return options;
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ');
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

interface Report {
  backend: BackendReport;
  torch: TorchSetup;
  /** Each job with our figure and PyTorch's, in table order. */
  figures: (Job & {
    ours: ChildResult;
    torch: TorchResult[];
    oursOnAllCores?: ChildResult;
    /** Inference: each engine on every core. */
    engines?: Partial<Record<InferenceEngineKind, ChildResult>>;
  })[];
  /** Why onnxruntime was not measured, when it was not. */
  onnxruntimeUnavailable?: string;
  /** Absent with --only infer. */
  rss?: ChildResult;
  /** The same on every core: the data-parallel trainer's threads each hold a wasm heap. */
  rssAllCores?: ChildResult;
  loadavg: { before: number[]; after: number[] };
}

function printReport(report: Report): void {
  const { backend, torch } = report;
  const threadCounts = torch.available ? torch.threads : [];
  const plural = (count: number) => `${count} thread${count > 1 ? 's' : ''}`;
  console.log(
    `Backend: ${backend.name}${backend.skipped.length ? ` (passed over: ${backend.skipped.join('; ')})` : ''}, one core unless marked ×N`,
  );
  if (torch.available) {
    console.log(
      `PyTorch ${torch.version} CPU with ${threadCounts.map(plural).join(' and with ')} (${torch.cores} cores; ` +
        `this torch build's own default is ${plural(torch.defaultThreads)}), OMP_WAIT_POLICY=${torch.ompWaitPolicy}`,
    );
  } else {
    console.log(`PyTorch: not measured — ${torch.reason}`);
  }
  const perCore = threadCounts.includes(1);
  for (const kind of (['train', 'infer'] as const).filter((k) => report.figures.some((f) => f.kind === k))) {
    const header = ['px', 'batch', 'ours img/s', 'steps'];
    for (const threads of threadCounts) header.push(`PyTorch ${threads}T img/s`, `ours/PT ${threads}T`);
    if (perCore) header.push('ours/PT 1T by CPU time');
    const allCores = report.figures.find((figure) => figure.kind === kind && figure.oursOnAllCores);
    const mostThreads = Math.max(0, ...threadCounts);
    if (allCores)
      header.push(
        `ours ${allCores.oursOnAllCores!.backend.name} ×${cpus().length} img/s`,
        ...(mostThreads ? [`×${cpus().length}/PT ${mostThreads}T`] : []),
      );
    const rows = report.figures
      .filter((figure) => figure.kind === kind)
      .map((figure) => {
        const ratio = (ours: number, theirs: number | undefined) => (theirs ? `${(ours / theirs).toFixed(2)}×` : '-');
        const theirs = (threads: number) => figure.torch.find((result) => result.threads === threads);
        const row = [
          String(figure.size),
          `${figure.batch}${figure.ours.microBatch ? ` (${figure.ours.microBatch})` : ''}`,
          figure.ours.imagesPerSecond.toFixed(2),
          String(figure.ours.steps),
        ];
        for (const threads of threadCounts) {
          row.push(
            theirs(threads)?.imagesPerSecond.toFixed(2) ?? '-',
            ratio(figure.ours.imagesPerSecond, theirs(threads)?.imagesPerSecond),
          );
        }
        if (perCore) row.push(ratio(figure.ours.imagesPerCpuSecond, theirs(1)?.imagesPerCpuSecond));
        if (allCores) {
          const parallel = figure.oursOnAllCores?.imagesPerSecond;
          row.push(parallel?.toFixed(2) ?? '-');
          if (mostThreads)
            row.push(parallel === undefined ? '-' : ratio(parallel, theirs(mostThreads)?.imagesPerSecond));
        }
        return row;
      });
    console.log(
      `\n${kind === 'train' ? 'Training (forward, backward, Adam step)' : 'Inference (eval-mode forward)'}, images/s, warm-up step excluded`,
    );
    console.log(formatTable(header, rows));
  }
  if (report.figures.some((figure) => figure.ours.microBatch))
    console.log(
      "batch (n): one-core gradient accumulation over micro-batches of at most n images (the trainer's choice)",
    );
  if (perCore)
    console.log(
      '"by CPU time": images per CPU-second of each single-threaded process, which other processes on the machine barely change',
    );
  if (report.figures.some((figure) => figure.oursOnAllCores)) {
    console.log(
      `"×${cpus().length}": the batch split over every core by our data-parallel threads (--workers ${cpus().length}; the training run's evaluation after each epoch uses them too), against PyTorch's own threads. Target ≥ 0.35×`,
    );
  }
  printEngines(report);
  printShares(report);
  const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
  const rssLine = (label: string, child: ChildResult) =>
    console.log(
      `Peak RSS, training ${RSS_SIZE} px, batch ${TRAIN_BATCH}, ${label}: ${gb(child.maxRssBytes)} GB ` +
        `(target ${gb(RSS_TARGET_BYTES)} GB; ${((100 * child.maxRssBytes) / RSS_TARGET_BYTES).toFixed(0)} % of it)` +
        (child.microBatch ? `, micro-batches of ≤ ${child.microBatch}` : ''),
    );
  console.log('');
  if (report.rss) rssLine('one core', report.rss);
  if (report.rssAllCores) rssLine(`wasm ×${cpus().length}`, report.rssAllCores);
  const native = report.figures.find((f) => f.kind === 'train' && f.size === RSS_SIZE)?.engines?.onnxruntime;
  if (native) rssLine(`onnxruntime ×${cpus().length} (a real run's default when it loads)`, native);
  const loads = (values: number[]) => values.map((value) => value.toFixed(2)).join(' ');
  console.log(
    `Load average (1, 5, 15 min) before: ${loads(report.loadavg.before)}, after: ${loads(report.loadavg.after)} ` +
      `on ${cpus().length} cores; other processes slow every images/s figure.`,
  );
}

/**
 * Training steps on onnxruntime (what full training runs when it loads) and inference through the engines of
 * src/core/infer, each on every core, against PyTorch on as many threads.
 */
function printEngines(report: Report): void {
  const cores = cpus().length;
  const rows: string[][] = [];
  const ratio = (ours: number, theirs: number | undefined) => (theirs ? `${(ours / theirs).toFixed(2)}×` : '-');
  for (const figure of report.figures) {
    const torch = figure.torch.find((result) => result.threads === cores);
    for (const [engine, result] of Object.entries(figure.engines ?? {})) {
      rows.push([
        figure.kind === 'train' ? 'training' : 'inference',
        String(figure.size),
        String(figure.batch),
        `${engine} ×${cores}`,
        result.imagesPerSecond.toFixed(2),
        torch?.imagesPerSecond.toFixed(2) ?? '-',
        ratio(result.imagesPerSecond, torch?.imagesPerSecond),
        result.imagesPerCpuSecond.toFixed(2),
        torch?.imagesPerCpuSecond.toFixed(2) ?? '-',
        ratio(result.imagesPerCpuSecond, torch?.imagesPerCpuSecond),
      ]);
    }
  }
  if (rows.length === 0) return;
  console.log(
    `\nEngines on every core (${cores} threads each) against PyTorch on ${cores} threads: training steps on onnxruntime ` +
      `(target ≥ 0.35×); inference for evaluate, predict and the probe (target ≥ 0.5×)`,
  );
  const pt = `PT ${cores}T`;
  console.log(
    formatTable(
      [
        'job',
        'px',
        'batch',
        'engine',
        'img/s',
        `${pt} img/s`,
        `ours/${pt}`,
        'img/CPU-s',
        `${pt} img/CPU-s`,
        'by CPU time',
      ],
      rows,
    ),
  );
  if (report.onnxruntimeUnavailable) console.log(`onnxruntime: not measured — ${report.onnxruntimeUnavailable}`);
  console.log('"img/CPU-s": images per CPU-second of all the process\'s threads, which other processes barely change');
}

/** Where a training step's time goes: kernel groups on one core, phases of the data-parallel step, the data path. */
function printShares(report: Report): void {
  const percent = (part: number, whole: number) => `${((100 * part) / whole).toFixed(0)} %`;
  const describe = (parts: Record<string, number>) => {
    const total = Object.values(parts).reduce((a, b) => a + b, 0);
    const list = Object.entries(parts)
      .sort((a, b) => b[1] - a[1])
      .map(([name, ms]) => `${name} ${percent(ms, total)}`)
      .join(', ');
    return { total, list };
  };
  for (const figure of report.figures.filter((f) => f.kind === 'train')) {
    console.log(`\nTraining ${figure.size} px, batch ${figure.batch}: where a step's time goes`);
    const stepMs = (1000 * figure.ours.seconds) / figure.ours.steps;
    if (figure.ours.kernels) {
      const { total, list } = describe(figure.ours.kernels);
      const micro = figure.ours.microBatch;
      const what = micro
        ? `one profiled micro-batch of ${micro} (${total.toFixed(0)} ms; a ${stepMs.toFixed(0)} ms step has ${Math.ceil(figure.batch / micro)})`
        : `one profiled step (${total.toFixed(0)} ms of a ${stepMs.toFixed(0)} ms step)`;
      console.log(`  one core, kernels of ${what}: ${list}`);
    }
    if (figure.ours.dataPathImagesPerSecond) {
      const dataMs = (1000 * figure.batch) / figure.ours.dataPathImagesPerSecond;
      console.log(
        `  data path alone (cache read, augmentation, normalisation): ${figure.ours.dataPathImagesPerSecond.toFixed(0)} img/s, ${dataMs.toFixed(0)} ms per batch = ${percent(dataMs, stepMs)} of a one-core step`,
      );
    }
    const parallel = figure.oursOnAllCores;
    if (parallel?.phases) {
      const { total, list } = describe(parallel.phases);
      console.log(
        `  ×${parallel.backend.name === 'wasm' ? cpus().length : 1} data-parallel step (${total.toFixed(0)} ms): ${list}`,
      );
    }
  }
}

/** Set by the first onnxruntime child that fails: the package did not load, so the others would fail too. */
let onnxruntimeUnavailable: string | undefined;

/** The job through each engine on `cores` threads; onnxruntime is left out when it does not load. */
async function measureEngines(job: Job, cores: number): Promise<Partial<Record<InferenceEngineKind, ChildResult>>> {
  const engines: Partial<Record<InferenceEngineKind, ChildResult>> = {};
  if (onnxruntimeUnavailable === undefined) {
    try {
      engines.onnxruntime = await measureOurs({ ...job, ways: cores, engine: 'onnxruntime' });
    } catch (error) {
      onnxruntimeUnavailable = (error as Error).message;
    }
  }
  // Training's wasm figure on every core is the data-parallel one (oursOnAllCores).
  if (job.kind === 'infer') engines.wasm = await measureOurs({ ...job, ways: cores, engine: 'wasm' });
  return engines;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    process.stdout.write(`${JSON.stringify(await runChild(JSON.parse(argv[1]) as Job))}\n`);
    return;
  }
  const options = parseOptions(argv);
  // The parent starts the same backend as its children only to learn which one it is: batch sizes depend on it.
  const backend = await selectBackend('auto');
  const budget: Budget = options.quick ? { targetSeconds: 0, minSteps: 1 } : { targetSeconds: 10, minSteps: 2 };
  const jobs = options.kinds.flatMap((kind) =>
    options.sizes.map((size): Job => ({
      kind,
      size,
      batch: kind === 'train' ? TRAIN_BATCH : INFERENCE_BATCH,
      ...budget,
    })),
  );
  const loadBefore = loadavg();
  let torch = await probeTorch();
  const figures: Report['figures'] = [];
  for (const job of jobs) {
    const ours = await measureOurs(job);
    if (ours.backend.name !== backend.name)
      throw new Error(`a bench child ran on ${ours.backend.name}, the parent on ${backend.name}`);
    // PyTorch right after ours on the same job, so that both see about the same load from other processes.
    let theirs: TorchResult[] = [];
    if (torch.available) {
      try {
        theirs = await measureTorch(job, torch.threads);
      } catch (error) {
        torch = { available: false, reason: (error as Error).message };
      }
    }
    // Training also with the batch split over every core (our data-parallel trainer), against PyTorch's
    // own multi-threading: the comparison a laptop user sees.
    const cores = cpus().length;
    const oursOnAllCores =
      job.kind === 'train' && backend.name === 'wasm' && cores > 1
        ? await measureOurs({ ...job, ways: cores })
        : undefined;
    const engines = await measureEngines(job, cores);
    figures.push({ ...job, ours, torch: theirs, oursOnAllCores, engines });
  }
  // The 128 px, batch 32 training children double as the memory measurement; without them, short runs.
  const rssFigure = figures.find((figure) => figure.kind === 'train' && figure.size === RSS_SIZE);
  const rssJob: Job = { kind: 'train', size: RSS_SIZE, batch: TRAIN_BATCH, targetSeconds: 0, minSteps: 1 };
  const measuresTraining = options.kinds.includes('train');
  const rss = measuresTraining ? (rssFigure?.ours ?? (await measureOurs(rssJob))) : undefined;
  const rssAllCores =
    rssFigure?.oursOnAllCores ??
    (measuresTraining && backend.name === 'wasm' && cpus().length > 1
      ? await measureOurs({ ...rssJob, ways: cpus().length })
      : undefined);
  const report: Report = {
    backend,
    torch,
    figures,
    onnxruntimeUnavailable,
    rss,
    rssAllCores,
    loadavg: { before: loadBefore, after: loadavg() },
  };
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printReport(report);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
