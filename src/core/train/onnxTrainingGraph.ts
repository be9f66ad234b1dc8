/**
 * One training step of ResNet-18 as an ONNX graph, for onnxruntime's native CPU kernels: the training-mode
 * forward pass, PyTorch's class-weighted cross-entropy, and the backward pass written out node by node, so
 * that the step runs on every core without an autograd runtime. The optimiser stays in TypeScript
 * (optimizers.ts); this graph only computes.
 *
 * Inputs: `images` `[N, S, S, 3]` (NHWC, normalised, as the batches carry them); `targets` `[N, K]`, the one-hot
 * labels scaled by each example's class weight over the batch's sum of weights (so the loss is
 * CrossEntropyLoss(weight=…)); and every learnable parameter under its `state_dict` name in our layout (HWIO
 * convolutions, `[in, out]` classifier). Outputs: `loss` `[]`, `logits` `[N, K]`, `grad:<name>` for each
 * parameter in the same layout, and `mean:<bn>` / `variance:<bn>` (biased), the batch statistics of each
 * BatchNorm, from which the caller updates the running statistics as PyTorch does.
 *
 * The batch size is fixed in the graph, so every shape is known while it is built: a run's batches all have
 * the same size (the last, short one is dropped), and a session is built once per size.
 *
 * The backward pass is a tape: each forward operation records how to turn the gradient of its output into
 * the gradients of its inputs, and the tape is replayed in reverse. The rules are the textbook ones; the
 * convolution's two are shaped for onnxruntime: the input gradient is a convolution with the flipped kernel
 * at stride 1 and a ConvTranspose when strided, and the filter gradient one matrix product of the patches
 * (im2col, by strided Slices of a channel-major copy of the input) with the output gradient, which puts the
 * batch and the pixels in the product's long dimension. Nodes are named by role (`conv filter gradient/…`),
 * so onnxruntime's profiler says where a step's time goes (scripts/bench-onnx-step.ts).
 */
import {
  BN_EPSILON,
  FEATURE_WIDTH,
  isLearnable,
  RESNET18_BLOCKS,
  resnet18ParamSpecs,
  STEM_WIDTH,
  type BlockSpec,
} from '../model/resnet18.js';
import { OnnxGraph, type Attribute } from '../infer/onnxGraph.js';

export const STEP_IMAGES = 'images';
export const STEP_TARGETS = 'targets';
export const STEP_LOSS = 'loss';
export const STEP_LOGITS = 'logits';
export const gradientOutput = (parameter: string) => `grad:${parameter}`;
export const meanOutput = (batchNorm: string) => `mean:${batchNorm}`;
export const varianceOutput = (batchNorm: string) => `variance:${batchNorm}`;

function convGeometry(kernel: number, stride: number, pad: number): Attribute[] {
  return [
    { name: 'kernel_shape', value: [kernel, kernel] },
    { name: 'strides', value: [stride, stride] },
    { name: 'pads', value: [pad, pad, pad, pad] },
  ];
}

/** A 4-D activation: its name in the graph and its NCHW shape. */
interface Activation {
  name: string;
  shape: [number, number, number, number];
}

export interface TrainingGraph {
  model: Uint8Array;
  /** The learnable parameters the graph takes and differentiates, in `state_dict` order. */
  parameters: string[];
  /** The BatchNorm modules whose batch statistics it outputs, in execution order. */
  batchNorms: { name: string; valuesPerChannel: number }[];
}

class TapeGraph extends OnnxGraph {
  private readonly tape: (() => void)[] = [];
  private readonly gradients = new Map<string, string>();
  /** Values whose gradient is wanted: parameters and everything computed from them. */
  private readonly differentiable = new Set<string>();
  readonly batchNorms: TrainingGraph['batchNorms'] = [];

  parameter(name: string, dims: readonly number[]): string {
    this.differentiable.add(this.input(name, dims));
    return name;
  }

  /** Records `backward`, to run when the gradient of `output` is known, if `inputs` need gradients. */
  private record(output: string, inputs: readonly string[], backward: (gradient: string) => void): string {
    if (inputs.some((input) => this.differentiable.has(input))) {
      this.differentiable.add(output);
      // The backward nodes are named after the forward operation's role: "batchnorm gradient", ….
      const role = this.role ? `${this.role} gradient` : 'gradient';
      this.tape.push(() => {
        const gradient = this.gradients.get(output);
        if (gradient) this.inRole(role, () => backward(gradient));
      });
    }
    return output;
  }

  private accumulate(value: string, gradient: string): void {
    if (!this.differentiable.has(value)) return;
    const existing = this.gradients.get(value);
    this.gradients.set(value, existing ? this.node('Add', [existing, gradient]) : gradient);
  }

  /** Replays the tape from `gradient`, the gradient of `value`, and names the parameters' gradients as outputs. */
  backward(value: string, gradient: string, outputs: ReadonlyMap<string, readonly number[]>): void {
    this.gradients.set(value, gradient);
    for (let i = this.tape.length - 1; i >= 0; i--) this.tape[i]();
    for (const [parameter, dims] of outputs) {
      const gradient = this.gradients.get(parameter);
      if (!gradient) throw new Error(`the training graph has no gradient for ${parameter}`);
      this.output(this.node('Identity', [gradient], [], gradientOutput(parameter)), dims);
    }
  }

  /** nn.Conv2d(bias=False) with symmetric padding; `weight` is an HWIO parameter `[k, k, in, out]`. */
  conv(x: Activation, weight: string, kernel: number, outChannels: number, stride: number): Activation {
    const [n, , height, width] = x.shape;
    const pad = (kernel - 1) / 2;
    const outHeight = Math.floor((height + 2 * pad - kernel) / stride) + 1;
    const outWidth = Math.floor((width + 2 * pad - kernel) / stride) + 1;
    const oihw = this.inRole('weight layout', () =>
      this.node('Transpose', [weight], [{ name: 'perm', value: [3, 2, 0, 1] }]),
    );
    const geometry = convGeometry(kernel, stride, pad);
    const y = this.inRole('conv forward', () => this.node('Conv', [x.name, oihw], geometry));
    this.record(y, [x.name, weight], (dy) => {
      this.accumulate(
        weight,
        this.inRole('conv filter gradient', () =>
          this.filterGradient(x, dy, kernel, stride, [outChannels, outHeight, outWidth]),
        ),
      );
      if (this.differentiable.has(x.name))
        this.accumulate(
          x.name,
          this.inRole('conv input gradient', () =>
            this.inputGradient(x, dy, oihw, kernel, stride, [outHeight, outWidth]),
          ),
        );
    });
    return { name: y, shape: [n, outChannels, outHeight, outWidth] };
  }

  private inputGradient(
    x: Activation,
    dy: string,
    oihw: string,
    kernel: number,
    stride: number,
    [outHeight, outWidth]: number[],
  ): string {
    const [, , height, width] = x.shape;
    const pad = (kernel - 1) / 2;
    if (stride === 1) {
      // At stride 1 the input gradient is the convolution of dy with the flipped, transposed kernel, which
      // onnxruntime computes faster than the equivalent ConvTranspose (whose col2im runs on one thread).
      const flipped = this.node('Slice', [
        oihw,
        this.int64s([kernel - 1, kernel - 1]),
        this.int64s([-Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]),
        this.int64s([2, 3]),
        this.int64s([-1, -1]),
      ]);
      const transposed = this.node('Transpose', [flipped], [{ name: 'perm', value: [1, 0, 2, 3] }]);
      return this.node('Conv', [dy, transposed], convGeometry(kernel, 1, kernel - 1 - pad));
    }
    // Strided: the transposed convolution, its output padded back to the input's size.
    const outputPadding = [
      height - (stride * (outHeight - 1) + kernel - 2 * pad),
      width - (stride * (outWidth - 1) + kernel - 2 * pad),
    ];
    return this.node(
      'ConvTranspose',
      [dy, oihw],
      [...convGeometry(kernel, stride, pad), { name: 'output_padding', value: outputPadding }],
    );
  }

  /**
   * The filter gradient in our HWIO layout: the patches of x, `[k·k·in, N·Ho·Wo]`, times dy `[out, N·Ho·Wo]`
   * transposed. Both are taken from channel-major copies (`[C, N, H, W]`), so the copies move whole rows and
   * the patches are strided Slices of the padded input stacked along the first axis.
   */
  private filterGradient(
    x: Activation,
    dy: string,
    kernel: number,
    stride: number,
    [outChannels, outHeight, outWidth]: number[],
  ): string {
    const inChannels = x.shape[1];
    const pad = (kernel - 1) / 2;
    const channelMajor = [{ name: 'perm', value: [1, 0, 2, 3] }];
    let input = this.node('Transpose', [x.name], channelMajor);
    if (pad > 0) input = this.node('Pad', [input, this.int64s([0, 0, pad, pad, 0, 0, pad, pad])]);
    const patches: string[] = [];
    for (let a = 0; a < kernel; a++)
      for (let b = 0; b < kernel; b++)
        patches.push(
          this.node('Slice', [
            input,
            this.int64s([a, b]),
            this.int64s([a + stride * (outHeight - 1) + 1, b + stride * (outWidth - 1) + 1]),
            this.int64s([2, 3]),
            this.int64s([stride, stride]),
          ]),
        );
    const columns = patches.length > 1 ? this.node('Concat', patches, [{ name: 'axis', value: 0 }]) : patches[0];
    const pixels = x.shape[0] * outHeight * outWidth;
    const dyRows = this.node('Reshape', [
      this.node('Transpose', [dy], channelMajor),
      this.int64s([outChannels, pixels]),
    ]);
    const dw = this.node(
      'Gemm',
      [this.node('Reshape', [columns, this.int64s([kernel * kernel * inChannels, pixels])]), dyRows],
      [{ name: 'transB', value: 1 }],
    );
    return this.node('Reshape', [dw, this.int64s([kernel, kernel, inChannels, outChannels])]);
  }

  /**
   * nn.BatchNorm2d in training mode: normalised with the batch mean and biased variance, which are outputs
   * (the caller updates the running statistics from them). Backward with d = x − mean kept from the forward:
   * dx = γ·σ⁻¹·(dy − Σdy/M − d·σ⁻²·Σ(dy·d)/M), dγ = σ⁻¹·Σ(dy·d), dβ = Σdy.
   */
  batchNorm(x: Activation, name: string): Activation {
    return this.inRole('batchnorm', () => {
      const [n, channels, height, width] = x.shape;
      const count = n * height * width;
      const perChannel = this.int64s([1, channels, 1, 1]);
      const axes = [{ name: 'axes', value: [0, 2, 3] }];
      const gamma = `${name}.weight`;
      const beta = `${name}.bias`;
      this.parameter(gamma, [channels]);
      this.parameter(beta, [channels]);
      const mean = this.node('ReduceMean', [x.name], axes);
      const d = this.node('Sub', [x.name, mean]);
      const variance = this.node('ReduceMean', [this.node('Mul', [d, d])], axes);
      const inverseStd = this.node('Reciprocal', [
        this.node('Sqrt', [this.node('Add', [variance, this.scalar(BN_EPSILON)])]),
      ]);
      const gammaColumn = this.node('Reshape', [gamma, perChannel]);
      const scale = this.node('Mul', [gammaColumn, inverseStd]);
      const y = this.node('Add', [this.node('Mul', [d, scale]), this.node('Reshape', [beta, perChannel])]);
      this.output(this.node('Reshape', [mean, this.int64s([channels])], [], meanOutput(name)), [channels]);
      this.output(this.node('Reshape', [variance, this.int64s([channels])], [], varianceOutput(name)), [channels]);
      this.batchNorms.push({ name, valuesPerChannel: count });
      this.record(y, [x.name, gamma, beta], (dy) => {
        const sumAxes = this.int64s([0, 2, 3]);
        const sumDy = this.node('ReduceSum', [dy, sumAxes]);
        const sumDyD = this.node('ReduceSum', [this.node('Mul', [dy, d]), sumAxes]);
        this.accumulate(beta, this.node('Reshape', [sumDy, this.int64s([channels])]));
        this.accumulate(gamma, this.node('Reshape', [this.node('Mul', [sumDyD, inverseStd]), this.int64s([channels])]));
        if (!this.differentiable.has(x.name)) return;
        const perValue = this.scalar(1 / count);
        // dx = dy·scale + d·dCoefficient + shift, each coefficient per channel.
        const dCoefficient = this.node('Neg', [
          this.node('Mul', [
            this.node('Mul', [scale, this.node('Mul', [inverseStd, inverseStd])]),
            this.node('Mul', [sumDyD, perValue]),
          ]),
        ]);
        const shift = this.node('Neg', [this.node('Mul', [scale, this.node('Mul', [sumDy, perValue])])]);
        this.accumulate(
          x.name,
          this.node('Add', [
            this.node('Mul', [dy, scale]),
            this.node('Add', [this.node('Mul', [d, dCoefficient]), shift]),
          ]),
        );
      });
      return { name: y, shape: x.shape };
    });
  }

  relu(x: Activation): Activation {
    return this.inRole('relu', () => {
      const y = this.node('Relu', [x.name]);
      this.record(y, [x.name], (dy) => {
        this.accumulate(x.name, this.node('Where', [this.node('Greater', [y, this.scalar(0)]), dy, this.scalar(0)]));
      });
      return { name: y, shape: x.shape };
    });
  }

  add(a: Activation, b: Activation): Activation {
    return this.inRole('residual add', () => {
      const y = this.node('Add', [a.name, b.name]);
      this.record(y, [a.name, b.name], (dy) => {
        this.accumulate(a.name, dy);
        this.accumulate(b.name, dy);
      });
      return { name: y, shape: a.shape };
    });
  }

  /**
   * nn.MaxPool2d(3, stride 2, padding 1). The gradient goes back to the input position each window took
   * (onnxruntime's indices, first maximum in window order as PyTorch), summed where windows overlap.
   */
  maxPool(x: Activation): Activation {
    return this.inRole('max-pool', () => {
      const [n, channels, height, width] = x.shape;
      const [y, indices] = this.nodeOutputs(
        'MaxPool',
        [x.name],
        [
          { name: 'kernel_shape', value: [3, 3] },
          { name: 'strides', value: [2, 2] },
          { name: 'pads', value: [1, 1, 1, 1] },
        ],
        2,
      );
      this.record(y, [x.name], (dy) => {
        const flat = this.int64s([-1]);
        const zeros = this.node('ConstantOfShape', [this.int64s([n * channels * height * width])]);
        const scattered = this.node(
          'ScatterElements',
          [zeros, this.node('Reshape', [indices, flat]), this.node('Reshape', [dy, flat])],
          [
            { name: 'axis', value: 0 },
            { name: 'reduction', value: 'add' },
          ],
        );
        this.accumulate(x.name, this.node('Reshape', [scattered, this.int64s([n, channels, height, width])]));
      });
      const out = (size: number) => Math.floor((size + 2 - 3) / 2) + 1;
      return { name: y, shape: [n, channels, out(height), out(width)] };
    });
  }

  /** AdaptiveAvgPool2d(1) and flatten: `[N, C]`. */
  averagePool(x: Activation): string {
    return this.inRole('avgpool', () => {
      const [n, channels, height, width] = x.shape;
      const y = this.node('Flatten', [this.node('GlobalAveragePool', [x.name])], [{ name: 'axis', value: 1 }]);
      this.record(y, [x.name], (dy) => {
        const column = this.node('Reshape', [dy, this.int64s([n, channels, 1, 1])]);
        this.accumulate(
          x.name,
          this.node('Expand', [this.node('Mul', [column, this.scalar(1 / (height * width))]), this.int64s(x.shape)]),
        );
      });
      return y;
    });
  }

  /** nn.Linear with our `[in, out]` weight. */
  linear(x: string, weight: string, bias: string): string {
    return this.inRole('fc', () => {
      const y = this.node('Gemm', [x, weight, bias]);
      this.record(y, [x, weight, bias], (dy) => {
        this.accumulate(weight, this.node('Gemm', [x, dy], [{ name: 'transA', value: 1 }]));
        this.accumulate(bias, this.node('ReduceSum', [dy, this.int64s([0])], [{ name: 'keepdims', value: 0 }]));
        this.accumulate(x, this.node('Gemm', [dy, weight], [{ name: 'transB', value: 1 }]));
      });
      return y;
    });
  }

  /** torchvision's BasicBlock. */
  basicBlock(x: Activation, { name, inChannels, outChannels, stride, hasDownsample }: BlockSpec): Activation {
    let out = this.relu(
      this.batchNorm(
        this.conv(x, this.weight(`${name}.conv1`, 3, inChannels, outChannels), 3, outChannels, stride),
        `${name}.bn1`,
      ),
    );
    out = this.batchNorm(
      this.conv(out, this.weight(`${name}.conv2`, 3, outChannels, outChannels), 3, outChannels, 1),
      `${name}.bn2`,
    );
    const shortcut = hasDownsample
      ? this.batchNorm(
          this.conv(x, this.weight(`${name}.downsample.0`, 1, inChannels, outChannels), 1, outChannels, stride),
          `${name}.downsample.1`,
        )
      : x;
    return this.relu(this.add(out, shortcut));
  }

  private weight(conv: string, kernel: number, inChannels: number, outChannels: number): string {
    return this.parameter(`${conv}.weight`, [kernel, kernel, inChannels, outChannels]);
  }

  stem(images: string, batchSize: number, imageSize: number): Activation {
    const nchw: Activation = {
      name: this.node('Transpose', [images], [{ name: 'perm', value: [0, 3, 1, 2] }]),
      shape: [batchSize, 3, imageSize, imageSize],
    };
    const conv1 = this.conv(nchw, this.weight('conv1', 7, 3, STEM_WIDTH), 7, STEM_WIDTH, 2);
    return this.maxPool(this.relu(this.batchNorm(conv1, 'bn1')));
  }
}

/** The training step of a ResNet-18 with `numClasses` outputs, for batches of `batchSize` `imageSize`² images. */
export function resnet18TrainingGraph(batchSize: number, imageSize: number, numClasses: number): TrainingGraph {
  const graph = new TapeGraph();
  const images = graph.input(STEP_IMAGES, [batchSize, imageSize, imageSize, 3]);
  const targets = graph.input(STEP_TARGETS, [batchSize, numClasses]);
  let x = graph.stem(images, batchSize, imageSize);
  for (const block of RESNET18_BLOCKS) x = graph.basicBlock(x, block);
  const fcWeight = graph.parameter('fc.weight', [FEATURE_WIDTH, numClasses]);
  const fcBias = graph.parameter('fc.bias', [numClasses]);
  const logits = graph.linear(graph.averagePool(x), fcWeight, fcBias);
  graph.output(graph.node('Identity', [logits], [], STEP_LOGITS), [batchSize, numClasses]);

  // CrossEntropyLoss(weight=w) = −Σ targets·log softmax, targets already scaled by w / Σw; its gradient with
  // respect to the logits is softmax · (row sum of targets) − targets.
  const { loss, dLogits } = graph.inRole('loss', () => {
    const keep = [{ name: 'keepdims', value: 0 }];
    const logProbabilities = graph.node('LogSoftmax', [logits], [{ name: 'axis', value: 1 }]);
    const loss = graph.node(
      'Neg',
      [graph.node('ReduceSum', [graph.node('Mul', [targets, logProbabilities])], keep)],
      [],
      STEP_LOSS,
    );
    const rowWeights = graph.node('ReduceSum', [targets, graph.int64s([1])]);
    const dLogits = graph.node('Sub', [
      graph.node('Mul', [graph.node('Softmax', [logits], [{ name: 'axis', value: 1 }]), rowWeights]),
      targets,
    ]);
    return { loss, dLogits };
  });
  graph.output(loss, []);
  const learnable = resnet18ParamSpecs(numClasses).filter(isLearnable);
  graph.backward(logits, dLogits, new Map(learnable.map((spec) => [spec.name, spec.shape])));
  return {
    model: graph.model('resnet18_training_step', 17),
    parameters: learnable.map((spec) => spec.name),
    batchNorms: graph.batchNorms,
  };
}
