/**
 * Where a full training step on onnxruntime (train/onnxStep.ts) spends its time: onnxruntime's profiler
 * traces one step, and its kernel times are summed by operator and by what the operator does in the step
 * (forward convolution, the two convolution gradients, BatchNorm, …), next to the wall and CPU time of
 * whole steps with the optimiser and the host copies around them.
 *
 *   node --import tsx scripts/bench-onnx-step.ts                    # 128 px, batch 32, every core
 *   node --import tsx scripts/bench-onnx-step.ts --size 224 --batch 32 --threads 1
 *
 * Other processes on the machine skew the times; the shares move less.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/core/engine/backend.js';
import { loadOnnxRuntime } from '../src/core/infer/onnxRuntime.js';
import { createResNet18, disposeModel, trainableByName } from '../src/core/model/resnet18.js';
import { createOnnxStepper } from '../src/core/train/onnxStep.js';
import { createOptimizer } from '../src/core/train/optimizers.js';

const NUM_CLASSES = 2;
const TIMED_STEPS = 3;

/** One node's kernel run in onnxruntime's trace (Chrome trace format). */
interface TraceEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args: { op_name?: string };
}

/** The role the step graph named the node under (`<role>/<op>_<n>`, onnxGraph.ts inRole). */
function roleOf(nodeName: string): string {
  const slash = nodeName.indexOf('/');
  return slash > 0 ? nodeName.slice(0, slash) : 'other';
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '128' },
      batch: { type: 'string', default: '32' },
      threads: { type: 'string', default: String(availableParallelism()) },
    },
  });
  const [size, batchSize, threads] = [values.size, values.batch, values.threads].map(Number);
  await selectBackend('wasm');
  const folder = await mkdtemp(join(tmpdir(), 'onnx-step-profile-'));
  const params = createResNet18(NUM_CLASSES, 1);
  const optimizer = createOptimizer('adam');
  const trainable = trainableByName(params, 'full');
  const stepper = createOnnxStepper(loadOnnxRuntime(), {
    numClasses: NUM_CLASSES,
    imageSize: size,
    threads,
    profileFilePrefix: join(folder, 'step'),
  });
  const batch = {
    x: Float32Array.from({ length: batchSize * size * size * 3 }, (_, i) => Math.sin(i)),
    y: Int32Array.from({ length: batchSize }, (_, i) => i % NUM_CLASSES),
    paths: [],
  };
  const step = () => stepper.step(params, trainable, optimizer, batch, [1, 1], 1e-3);
  try {
    await step(); // the session is built and warmed up
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < TIMED_STEPS; i++) await step();
    const cpu = process.cpuUsage(cpuBefore);
    const wallMs = (performance.now() - started) / TIMED_STEPS;
    const cpuMs = (cpu.user + cpu.system) / 1000 / TIMED_STEPS;
    await stepper.dispose(); // writes the trace
    const traceFile = (await readdir(folder)).find((name) => name.endsWith('.json'));
    if (!traceFile) throw new Error(`onnxruntime wrote no profile in ${folder}`);
    const trace = JSON.parse(await readFile(join(folder, traceFile), 'utf8')) as TraceEvent[];
    const runs = trace.filter((event) => event.cat === 'Session' && event.name === 'model_run');
    const last = runs[runs.length - 1];
    const kernels = trace.filter(
      (event) =>
        event.cat === 'Node' &&
        event.name.endsWith('_kernel_time') &&
        event.ts >= last.ts &&
        event.ts <= last.ts + last.dur,
    );
    const byOperator = new Map<string, number>();
    const byRole = new Map<string, number>();
    for (const event of kernels) {
      const op = event.args.op_name ?? '?';
      byOperator.set(op, (byOperator.get(op) ?? 0) + event.dur / 1000);
      const role = roleOf(event.name.slice(0, -'_kernel_time'.length));
      byRole.set(role, (byRole.get(role) ?? 0) + event.dur / 1000);
    }
    const kernelMs = kernels.reduce((sum, event) => sum + event.dur / 1000, 0);
    console.log(
      `onnxruntime training step, ResNet-18, ${size} px, batch ${batchSize}, ${threads} thread(s), load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log(
      `whole step (graph, optimiser, copies): ${wallMs.toFixed(0)} ms wall = ${((1000 * batchSize) / wallMs).toFixed(1)} img/s, ` +
        `${cpuMs.toFixed(0)} ms CPU; the profiled graph run: ${(last.dur / 1000).toFixed(0)} ms, its kernels ${kernelMs.toFixed(0)} ms`,
    );
    const table = (title: string, parts: Map<string, number>) => {
      console.log(`\n${title}`);
      for (const [name, ms] of [...parts].sort((a, b) => b[1] - a[1]))
        console.log(
          `  ${name.padEnd(52)} ${ms.toFixed(1).padStart(7)} ms ${((100 * ms) / kernelMs).toFixed(1).padStart(5)} %`,
        );
    };
    table('by what it does', byRole);
    table('by operator', byOperator);
  } finally {
    disposeModel(params);
    optimizer.dispose();
    await rm(folder, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
