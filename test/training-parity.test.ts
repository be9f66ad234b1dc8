// Training math against PyTorch: the same torchvision ResNet-18 weights and the same batches go through
// our trainStep (wasm engine, our convolution-gradient kernels), through our onnxruntime step (the ONNX
// training graph, onnxTrainingGraph.ts, with the same optimiser) and through torch.optim with
// CrossEntropyLoss(weight=…) and CosineAnnealingLR, BatchNorm in training mode, no augmentation. Every
// parameter and BatchNorm buffer is compared after 1 and after 3 steps, for Adam and SGD with momentum,
// and the first step's gradients are compared directly (they locate a failure: backward pass or optimiser).
// PARITY_DETAIL=1 prints every tensor's figures.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../src/core/engine/backend.js';
import { classWeights } from '../src/core/data/batches.js';
import { createResNet18, disposeModel, toTorchLayout, trainableByName } from '../src/core/model/resnet18.js';
import { exportStateDict, loadStateDict } from '../src/core/model/stateDict.js';
import { createOptimizer, scheduledLearningRate, type Optimizer } from '../src/core/train/optimizers.js';
import type { OptimizerName } from '../src/core/train/settings.js';
import { trainStep } from '../src/core/train/step.js';
import { loadOnnxRuntime } from '../src/core/infer/onnxRuntime.js';
import { createOnnxStepper } from '../src/core/train/onnxStep.js';
import { resnet18TrainingGraph } from '../src/core/train/onnxTrainingGraph.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../src/core/weights/safetensors.js';
import {
  RANDOMISE_BATCHNORM_PY,
  SAFETENSORS_PY,
  referenceUnavailable,
  runPythonIfAvailable,
} from './helpers/python.js';

const SIZE = 48; // layer4 is 2×2: 4·8 values per BatchNorm channel, small enough for a quick CPU test
const STEPS = 3;
const LABELS = [0, 0, 1, 0, 1, 0, 0, 1]; // 5:3, so the class weights matter
const WEIGHT_DECAY = 1e-4;
const LEARNING_RATES: Record<OptimizerName, number> = { adam: 1e-3, sgd: 0.01 };
// As the trainer derives them from a training set's class counts (here 2:1, like C-NMC's ALL:HEM).
const CLASS_WEIGHTS = classWeights([2000, 1000]);

/**
 * PyTorch's steps, once in float32 (what a PyTorch user gets) and once in float64 (the exact result, to
 * float32 resolution). Saved: the initial weights and batches, each precision's first-step gradients and its
 * state_dict after 1 and after `steps` steps; printed: losses and learning rates per step.
 */
const PYTORCH_TRAINING = String.raw`
import json, sys
import torch, torchvision
${SAFETENSORS_PY}
${RANDOMISE_BATCHNORM_PY}
torch.set_num_threads(1)
folder, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
labels, class_weights, rates, weight_decay = (json.loads(a) for a in sys.argv[4:8])
torch.manual_seed(11)
initial = randomise_batchnorm(torchvision.models.resnet18(num_classes=2)).state_dict()
inputs = [torch.randn(len(labels), 3, size, size) for _ in range(steps)]
# Each step sees the labels in another order.
targets = [torch.tensor(labels)[torch.randperm(len(labels))] for _ in range(steps)]
save(folder + '/initial.safetensors', initial)
save(folder + '/batches.safetensors', {**{f'x{i}': x.permute(0, 2, 3, 1).contiguous() for i, x in enumerate(inputs)},
                                       **{f'y{i}': y for i, y in enumerate(targets)}})
as_float32 = lambda tensors: {n: t.float() if t.is_floating_point() else t for n, t in tensors.items()}
report = {}
for name in ('adam', 'sgd'):
    for precision, dtype in (('float32', torch.float32), ('float64', torch.float64)):
        model = torchvision.models.resnet18(num_classes=2)
        model.load_state_dict(initial)
        model.to(dtype).train()
        if name == 'adam':
            optimizer = torch.optim.Adam(model.parameters(), lr=rates[name], weight_decay=weight_decay)
        else:
            optimizer = torch.optim.SGD(model.parameters(), lr=rates[name], momentum=0.9, weight_decay=weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        criterion = torch.nn.CrossEntropyLoss(weight=torch.tensor(class_weights, dtype=dtype))
        losses, lrs = [], []
        for step in range(steps):
            optimizer.zero_grad()
            loss = criterion(model(inputs[step].to(dtype)), targets[step])
            loss.backward()
            if step == 0:
                save(f'{folder}/{name}-{precision}-gradients.safetensors',
                     as_float32({n: p.grad for n, p in model.named_parameters()}))
            lrs.append(optimizer.param_groups[0]['lr'])
            losses.append(loss.item())
            optimizer.step()
            schedule.step()
            if step + 1 in (1, steps):
                save(f'{folder}/{name}-{precision}-after{step + 1}.safetensors', as_float32(model.state_dict()))
        report[f'{name}-{precision}'] = {'losses': losses, 'lrs': lrs}
print(json.dumps(report))
`;

interface TorchRun {
  folder: string;
  /** Keyed `<optimiser>-<float32|float64>`. */
  report: Record<string, { losses: number[]; lrs: number[] }>;
}

let workDir = '';
let torchRun: Promise<TorchRun | string> | undefined;

before(async () => {
  await selectBackend('wasm');
  workDir = await mkdtemp(join(tmpdir(), 'training-parity-'));
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** PyTorch's run, once for both optimisers, or the reason it cannot run here. */
function pytorchTraining(): Promise<TorchRun | string> {
  torchRun ??= (async () => {
    const args = [workDir, SIZE, STEPS, LABELS, CLASS_WEIGHTS, LEARNING_RATES, WEIGHT_DECAY].map((a) =>
      typeof a === 'string' ? a : JSON.stringify(a),
    );
    const run = await runPythonIfAvailable(PYTORCH_TRAINING, args, {
      timeoutMs: 120_000,
      purpose: 'Training-step parity with PyTorch',
    });
    if ('unavailable' in run) return run.unavailable;
    return { folder: workDir, report: JSON.parse(run.stdout) as TorchRun['report'] };
  })();
  return torchRun;
}

async function tensorsOf(folder: string, file: string): Promise<Map<string, HostTensor>> {
  return (await readSafetensors(join(folder, file))).tensors;
}

/** Records each step's gradients in PyTorch layout, then lets the real optimiser apply them. */
function recording(optimizer: Optimizer, record: Map<string, Float32Array>[]): Optimizer {
  return {
    name: optimizer.name,
    step(variables, gradients, learningRate) {
      const step = new Map<string, Float32Array>();
      for (const [name, gradient] of gradients) {
        const torchLayout = toTorchLayout(gradient);
        step.set(name, torchLayout.dataSync() as Float32Array);
        torchLayout.dispose();
      }
      record.push(step);
      optimizer.step(variables, gradients, learningRate);
    },
    exportState: () => optimizer.exportState(),
    importState: (state) => optimizer.importState(state),
    dispose: () => optimizer.dispose(),
  };
}

interface TensorComparison {
  name: string;
  /** Over the unambiguous elements: max |ours − exact| and max |PyTorch float32 − exact|, exact = PyTorch float64. */
  ours: number;
  torch: number;
  /** max |exact|. */
  scale: number;
  /** max |ours − PyTorch float32|, all elements. */
  direct: number;
  /** Elements excluded as sign-ambiguous (Adam), and the worst |ours − exact| among them. */
  ambiguous: number;
  ambiguousError: number;
}

/** A float32 reduction over n terms is off by about √n·ε relative; ResNet-18's longest is 3·3·512 = 4608. */
const REDUCTION_FLOOR = Math.sqrt(4608) * 2 ** -23;

function compare(
  ours: ReadonlyMap<string, { data: ArrayLike<number | bigint> }>,
  torch32: ReadonlyMap<string, HostTensor>,
  exact: ReadonlyMap<string, HostTensor>,
  ambiguousOf: (name: string) => Uint8Array | undefined = () => undefined,
): TensorComparison[] {
  return [...exact].map(([name, reference]) => {
    const expected = reference.data as ArrayLike<number | bigint>;
    const mine = ours.get(name)!.data;
    const theirs = torch32.get(name)!.data as ArrayLike<number | bigint>;
    const mask = ambiguousOf(name);
    const c: TensorComparison = { name, ours: 0, torch: 0, scale: 0, direct: 0, ambiguous: 0, ambiguousError: 0 };
    for (let i = 0; i < expected.length; i++) {
      const truth = Number(expected[i]);
      const error = Math.abs(Number(mine[i]) - truth);
      c.scale = Math.max(c.scale, Math.abs(truth));
      c.direct = Math.max(c.direct, Math.abs(Number(mine[i]) - Number(theirs[i])));
      if (mask?.[i]) {
        c.ambiguous++;
        c.ambiguousError = Math.max(c.ambiguousError, error);
      } else {
        c.ours = Math.max(c.ours, error);
        c.torch = Math.max(c.torch, Math.abs(Number(theirs[i]) - truth));
      }
    }
    return c;
  });
}

/**
 * The float32 argument for the tolerance: PyTorch's own float32 run is a correct implementation, so its
 * distance from the exact (float64) result is what float32 rounding costs on this problem — including its
 * ill-conditioned parts (BatchNorm's backward subtracts the gradient's batch mean, which cancels most of
 * layer2.0.bn1's gradient here: PyTorch float32 itself is 10 % off there). Ours sums in another order, so
 * it may be a few times worse, never more: within 8× PyTorch's error, plus √n·ε of the tensor's scale for
 * tensors where PyTorch happens to be exact (n the longest reduction, 4608).
 */
function assertWithinFloat32(comparisons: TensorComparison[], what: string): void {
  for (const c of comparisons) {
    const tolerance = 8 * c.torch + REDUCTION_FLOOR * c.scale;
    assert.ok(
      c.ours <= tolerance,
      `${what}, ${c.name}: ours is ${c.ours.toExponential(2)} from the exact result, PyTorch float32 ${c.torch.toExponential(2)} (scale ${c.scale.toExponential(2)})`,
    );
  }
}

/**
 * Adam's first update is lr·g/(|g| + ε), ε = 1e-8: ±lr unless |g| is near ε. Two kinds of element are
 * decided by float32 rounding in any implementation (PyTorch float32 included): those whose gradient is
 * within the accepted gradient error δ of zero (their sign, so a jump of 2·lr, is rounding), and those so
 * small that the update's sensitivity lr·ε·δ/g² exceeds the parameter tolerance. Those elements are checked
 * only against the 2·Σlr bound; there must be few of them, or the test would prove nothing.
 */
function signAmbiguous(
  gradients: TensorComparison[],
  exactGradients: ReadonlyMap<string, HostTensor>,
  initial: ReadonlyMap<string, HostTensor>,
  learningRate: number,
): Map<string, Uint8Array> {
  const masks = new Map<string, Uint8Array>();
  for (const c of gradients) {
    const delta = 8 * c.torch + REDUCTION_FLOOR * c.scale;
    const parameterTolerance = REDUCTION_FLOOR * maxAbs(initial.get(c.name)!);
    // What Adam sees: the gradient plus PyTorch's L2 term weight_decay·p.
    const p = initial.get(c.name)!.data as Float32Array;
    const g = (exactGradients.get(c.name)!.data as Float32Array).map((value, i) => value + WEIGHT_DECAY * p[i]);
    masks.set(
      c.name,
      Uint8Array.from(g, (value) =>
        Math.abs(value) <= delta || (learningRate * 1e-8 * delta) / value ** 2 > parameterTolerance ? 1 : 0,
      ),
    );
  }
  return masks;
}

function maxAbs(tensor: HostTensor): number {
  let max = 0;
  for (const value of tensor.data as Float32Array) max = Math.max(max, Math.abs(value));
  return max;
}

function summary(comparisons: TensorComparison[]): string {
  const worst = (key: (c: TensorComparison) => number) =>
    comparisons.reduce((best, c) => (key(c) > key(best) ? c : best), comparisons[0]);
  const abs = worst((c) => c.direct);
  const rel = worst((c) => c.direct / Math.max(c.scale, 1e-30));
  const ratioOf = (c: TensorComparison) => c.ours / Math.max(c.torch, REDUCTION_FLOOR * c.scale, 1e-30);
  const ratio = worst(ratioOf);
  const ambiguous = comparisons.reduce((sum, c) => sum + c.ambiguous, 0);
  return (
    `vs PyTorch float32: max |Δ| ${abs.direct.toExponential(2)} (${abs.name}), max |Δ|/max|x| ${(rel.direct / rel.scale).toExponential(2)} (${rel.name}); ` +
    `distance from float64, ours / PyTorch float32's: worst ${ratioOf(ratio).toFixed(2)} (${ratio.name})` +
    (ambiguous ? `; ${ambiguous} sign-ambiguous Adam elements` : '')
  );
}

for (const [name, engine] of [
  ['adam', 'tfjs'],
  ['sgd', 'tfjs'],
  ['adam', 'onnxruntime'],
  ['sgd', 'onnxruntime'],
] as const) {
  test(`PyTorch parity: ${name} training steps on ${engine} (class weights, cosine schedule, BatchNorm in training mode)`, async (t) => {
    const torch = await pytorchTraining();
    if (typeof torch === 'string') return referenceUnavailable(t, torch);
    const batches = await tensorsOf(torch.folder, 'batches.safetensors');
    const params = createResNet18(2, 1);
    const optimizer = createOptimizer(name, WEIGHT_DECAY);
    const gradients: Map<string, Float32Array>[] = [];
    // A missing onnxruntime-node is a failure here: it is a dependency, installed by npm ci.
    const stepper =
      engine === 'onnxruntime' ? createOnnxStepper(loadOnnxRuntime(), { numClasses: 2, imageSize: SIZE }) : undefined;
    try {
      const initial = await tensorsOf(torch.folder, 'initial.safetensors');
      loadStateDict(params, initial);
      const trainable = trainableByName(params, 'full');
      const recorder = recording(optimizer, gradients);
      const exact = torch.report[`${name}-float64`];
      let ambiguous: Map<string, Uint8Array> | undefined;
      let learningRateSum = 0;
      for (let step = 0; step < STEPS; step++) {
        const learningRate = scheduledLearningRate(LEARNING_RATES[name], 'cosine', step, STEPS);
        assert.ok(
          Math.abs(learningRate - exact.lrs[step]) <= 1e-12 * LEARNING_RATES[name],
          `step ${step + 1}: learning rate ${learningRate}, PyTorch's CosineAnnealingLR ${exact.lrs[step]}`,
        );
        const batch = {
          x: batches.get(`x${step}`)!.data as Float32Array,
          y: Int32Array.from(batches.get(`y${step}`)!.data as BigInt64Array, Number),
          paths: [],
        };
        learningRateSum += learningRate;
        const { loss } = stepper
          ? await stepper.step(params, trainable, recorder, batch, CLASS_WEIGHTS, learningRate)
          : trainStep(params, trainable, recorder, batch, SIZE, 2, CLASS_WEIGHTS, learningRate);
        const torchLoss = torch.report[`${name}-float32`].losses[step];
        t.diagnostic(
          `step ${step + 1}: loss ${loss.toFixed(7)}, PyTorch float32 ${torchLoss.toFixed(7)}, float64 ${exact.losses[step].toFixed(7)}`,
        );
        const lossTolerance = 8 * Math.abs(torchLoss - exact.losses[step]) + 1e-6;
        assert.ok(Math.abs(loss - exact.losses[step]) <= lossTolerance, `step ${step + 1}: loss ${loss}`);
        if (step === 0) {
          const exactGradients = await tensorsOf(torch.folder, `${name}-float64-gradients.safetensors`);
          const comparisons = compare(
            new Map([...gradients[0]].map(([key, data]) => [key, { data }])),
            await tensorsOf(torch.folder, `${name}-float32-gradients.safetensors`),
            exactGradients,
          );
          if (name === 'adam') ambiguous = signAmbiguous(comparisons, exactGradients, initial, LEARNING_RATES.adam);
          if (process.env.PARITY_DETAIL)
            for (const c of comparisons)
              t.diagnostic(
                `  ${c.name}: ours ${c.ours.toExponential(2)} torch ${c.torch.toExponential(2)} scale ${c.scale.toExponential(2)}`,
              );
          t.diagnostic(`step 1 gradients: ${summary(comparisons)}`);
          assertWithinFloat32(comparisons, 'step 1 gradients');
        }
        if (step + 1 === 1 || step + 1 === STEPS) {
          const comparisons = compare(
            exportStateDict(params),
            await tensorsOf(torch.folder, `${name}-float32-after${step + 1}.safetensors`),
            await tensorsOf(torch.folder, `${name}-float64-after${step + 1}.safetensors`),
            (key) => ambiguous?.get(key),
          );
          if (process.env.PARITY_DETAIL)
            for (const c of comparisons)
              t.diagnostic(
                `  ${c.name}: ours ${c.ours.toExponential(2)} torch ${c.torch.toExponential(2)} scale ${c.scale.toExponential(2)} amb ${c.ambiguous}`,
              );
          t.diagnostic(`after ${step + 1} step(s), every parameter and buffer: ${summary(comparisons)}`);
          assertWithinFloat32(comparisons, `after ${step + 1} step(s)`);
          const parameterCount = comparisons.reduce((sum, c) => sum + (ambiguous?.get(c.name)?.length ?? 0), 0);
          for (const c of comparisons) {
            // Adam's update never exceeds lr per step here (|m̂| ≤ √v̂ for bias-corrected moments of ≤ 3 steps).
            assert.ok(c.ambiguousError <= 2 * learningRateSum, `${c.name}: a sign-ambiguous element moved too far`);
          }
          const ambiguousCount = comparisons.reduce((sum, c) => sum + c.ambiguous, 0);
          assert.ok(
            ambiguousCount <= 0.1 * parameterCount,
            `${ambiguousCount} sign-ambiguous elements of ${parameterCount}`,
          );
        }
      }
    } finally {
      await stepper?.dispose();
      optimizer.dispose();
      disposeModel(params);
    }
  });
}

/** PyTorch's first-step gradients, float32 and float64, for the weights and batch in `folder`. */
const PYTORCH_GRADIENTS = String.raw`
import json, sys
import torch, torchvision
${SAFETENSORS_PY}
torch.set_num_threads(1)
folder, class_weights = sys.argv[1], json.loads(sys.argv[2])
initial, batch = load(folder + '/initial.safetensors'), load(folder + '/batch.safetensors')
for precision, dtype in (('float32', torch.float32), ('float64', torch.float64)):
    model = torchvision.models.resnet18(num_classes=2)
    model.load_state_dict(initial)
    model.to(dtype).train()
    criterion = torch.nn.CrossEntropyLoss(weight=torch.tensor(class_weights, dtype=dtype))
    loss = criterion(model(batch['x'].permute(0, 3, 1, 2).to(dtype)), batch['y'].long())
    loss.backward()
    save(f'{folder}/{precision}-gradients.safetensors', {n: p.grad.float() for n, p in model.named_parameters()})
`;

test('the onnxruntime step at an odd size (50 px: output padding in every strided gradient) agrees with PyTorch', async (t) => {
  const size = 50;
  const folder = join(workDir, 'odd-size');
  await mkdir(folder, { recursive: true });
  const labels = Int32Array.from([0, 1, 1, 0, 1, 0]);
  const x = Float32Array.from(
    { length: labels.length * size * size * 3 },
    (_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011),
  );
  const params = createResNet18(2, 4);
  const optimizer = createOptimizer('sgd');
  const stepper = createOnnxStepper(loadOnnxRuntime(), { numClasses: 2, imageSize: size });
  try {
    await writeSafetensors(join(folder, 'initial.safetensors'), exportStateDict(params));
    await writeSafetensors(
      join(folder, 'batch.safetensors'),
      new Map([
        ['x', { shape: [labels.length, size, size, 3], data: x }],
        ['y', { shape: [labels.length], data: BigInt64Array.from(labels, BigInt) }],
      ]),
    );
    const run = await runPythonIfAvailable(PYTORCH_GRADIENTS, [folder, JSON.stringify(CLASS_WEIGHTS)], {
      timeoutMs: 120_000,
      purpose: 'Odd-size gradient parity with PyTorch',
    });
    if ('unavailable' in run) return referenceUnavailable(t, run.unavailable);
    const recorded: Map<string, Float32Array>[] = [];
    await stepper.step(
      params,
      trainableByName(params, 'full'),
      recording(optimizer, recorded),
      { x, y: labels, paths: [] },
      CLASS_WEIGHTS,
      0.01,
    );
    const comparisons = compare(
      new Map([...recorded[0]].map(([key, data]) => [key, { data }])),
      await tensorsOf(folder, 'float32-gradients.safetensors'),
      await tensorsOf(folder, 'float64-gradients.safetensors'),
    );
    t.diagnostic(`gradients at ${size} px: ${summary(comparisons)}`);
    assertWithinFloat32(comparisons, `gradients at ${size} px`);
  } finally {
    await stepper.dispose();
    optimizer.dispose();
    disposeModel(params);
  }
});

test('onnxruntime micro-batches of 4 update the weights and BatchNorm statistics as one batch of 8 of the same images twice', async () => {
  const size = 32;
  const four = Float32Array.from({ length: 4 * size * size * 3 }, (_, i) => Math.sin(i * 0.21) + Math.cos(i * 0.013));
  const x = new Float32Array(2 * four.length);
  x.set(four);
  x.set(four, four.length);
  const batch = { x, y: Int32Array.from([0, 1, 1, 0, 0, 1, 1, 0]), paths: [] };
  const after = async (microBatch: number) => {
    const params = createResNet18(2, 6);
    const optimizer = createOptimizer('sgd');
    const stepper = createOnnxStepper(loadOnnxRuntime(), { numClasses: 2, imageSize: size, microBatch });
    try {
      const { loss } = await stepper.step(
        params,
        trainableByName(params, 'full'),
        optimizer,
        batch,
        CLASS_WEIGHTS,
        0.05,
      );
      return { loss, state: exportStateDict(params) };
    } finally {
      await stepper.dispose();
      optimizer.dispose();
      disposeModel(params);
    }
  };
  const whole = await after(8);
  const parts = await after(4);
  // Each micro-batch holds the same four images as the other, so its BatchNorm statistics are the batch's.
  assert.ok(Math.abs(whole.loss - parts.loss) <= 1e-5 * Math.abs(whole.loss), `loss ${whole.loss} vs ${parts.loss}`);
  // running_var moves from 1 by 0.1 · the unbiased batch variance: over the c values per channel of the whole
  // batch, or (the micro-batches' average) over c/2.
  const valuesPerChannel = new Map(
    resnet18TrainingGraph(8, size, 2).batchNorms.map((bn) => [bn.name, bn.valuesPerChannel]),
  );
  const unbiased = (c: number) => c / (c - 1);
  for (const [name, expected] of whole.state) {
    const c = valuesPerChannel.get(name.replace(/\.running_var$/, ''));
    const a = Array.from(expected.data as ArrayLike<number | bigint>, (value) =>
      name.endsWith('running_var') && c ? 0.9 + ((Number(value) - 0.9) * unbiased(c / 2)) / unbiased(c) : Number(value),
    );
    const b = parts.state.get(name)!.data as ArrayLike<number | bigint>;
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - Number(b[i])));
      scale = Math.max(scale, Math.abs(a[i]));
    }
    assert.ok(worst <= 1e-4 * scale + 1e-6, `${name}: ${worst} apart (scale ${scale})`);
  }
});
