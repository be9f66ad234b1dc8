/**
 * Our ResNet-18 parameters as an ONNX model (opset 13), for onnxruntime: the same eval-mode network as
 * `forward(params, x, { training: false })`, node for node as torchvision's `ResNet._forward_impl`.
 *
 * Layouts: the model's input is our NHWC batch `[N, S, S, 3]` (already normalised), transposed to NCHW by
 * the first node; convolution weights go from our HWIO `[kh, kw, in, out]` to ONNX's OIHW; the classifier
 * keeps our `[in, out]` (Gemm without transB). BatchNorm stays as BatchNormalization nodes with the
 * running statistics: onnxruntime folds them into the convolutions when it optimises the graph.
 * The batch dimension is symbolic, the side fixed.
 */
import { BN_EPSILON, FEATURE_WIDTH, numClassesOf, type ResNet18Params } from '../model/resnet18.js';
import { hwioToOihw, OnnxGraph, type Dims } from './onnxGraph.js';

export const ONNX_INPUT = 'images';
export const ONNX_OUTPUT = 'logits';
const LAYERS = ['layer1', 'layer2', 'layer3', 'layer4'];
/** ResNet-18's layer3 width (torchvision: 64 · 2²). */
const LAYER3_CHANNELS = 256;

class GraphBuilder extends OnnxGraph {
  constructor(readonly params: ResNet18Params) {
    super();
  }

  values(name: string): Float32Array {
    const variable = this.params.get(name);
    if (!variable) throw new Error(`ResNet-18 parameter ${name} is missing`);
    return variable.dataSync() as Float32Array;
  }

  /** Convolution (no bias, symmetric padding as nn.Conv2d) followed by eval-mode BatchNorm `bn`. */
  convBn(input: string, conv: string, bn: string, stride: number): string {
    const [kh, kw, inChannels, outChannels] = this.params.get(`${conv}.weight`)!.shape;
    const weight = this.initializer(
      `${conv}.weight`,
      [outChannels, inChannels, kh, kw],
      hwioToOihw(this.values(`${conv}.weight`), kh, kw, inChannels, outChannels),
    );
    const pad = (kh - 1) / 2;
    const convolved = this.node(
      'Conv',
      [input, weight],
      [
        { name: 'kernel_shape', value: [kh, kw] },
        { name: 'strides', value: [stride, stride] },
        { name: 'pads', value: [pad, pad, pad, pad] },
      ],
    );
    const statistics = ['weight', 'bias', 'running_mean', 'running_var'].map((part) =>
      this.initializer(`${bn}.${part}`, [outChannels], this.values(`${bn}.${part}`)),
    );
    return this.node(
      'BatchNormalization',
      [convolved, ...statistics],
      [{ name: 'epsilon', value: BN_EPSILON, float: true }],
    );
  }

  /** torchvision's BasicBlock: two 3×3 conv-BN, the shortcut (1×1 conv-BN when it changes shape), ReLU. */
  basicBlock(input: string, block: string): string {
    const hasDownsample = this.params.has(`${block}.downsample.0.weight`);
    // In ResNet-18 exactly the blocks that halve the resolution (layer2-4's first) have a downsample.
    const stride = hasDownsample ? 2 : 1;
    const first = this.node('Relu', [this.convBn(input, `${block}.conv1`, `${block}.bn1`, stride)]);
    const second = this.convBn(first, `${block}.conv2`, `${block}.bn2`, 1);
    const shortcut = hasDownsample
      ? this.convBn(input, `${block}.downsample.0`, `${block}.downsample.1`, stride)
      : input;
    return this.node('Relu', [this.node('Add', [second, shortcut])]);
  }
}

/** The nodes from the last computed layer `x` to ONNX_OUTPUT; returns the output's shape. */
function addOutput(builder: GraphBuilder, x: string, upTo: 'fc' | 'avgpool' | 'layer3'): Dims {
  if (upTo === 'layer3') {
    builder.node('Transpose', [x], [{ name: 'perm', value: [0, 2, 3, 1] }], ONNX_OUTPUT);
    return ['N', 'H', 'W', LAYER3_CHANNELS];
  }
  const flatten = [{ name: 'axis', value: 1 }];
  if (upTo === 'avgpool') {
    builder.node('Flatten', [builder.node('GlobalAveragePool', [x])], flatten, ONNX_OUTPUT);
    return ['N', FEATURE_WIDTH];
  }
  const pooled = builder.node('Flatten', [builder.node('GlobalAveragePool', [x])], flatten);
  const numClasses = numClassesOf(builder.params);
  const fcWeight = builder.initializer('fc.weight', [FEATURE_WIDTH, numClasses], builder.values('fc.weight'));
  const fcBias = builder.initializer('fc.bias', [numClasses], builder.values('fc.bias'));
  builder.node('Gemm', [pooled, fcWeight, fcBias], [], ONNX_OUTPUT);
  return ['N', numClasses];
}

/**
 * The serialised ONNX model of `params` for `size`×`size` NHWC input. Its output is the logits `[N, numClasses]`,
 * or, for a frozen prefix, the `avgpool` features `[N, 512]` or the `layer3` activation in our NHWC layout
 * `[N, H, W, 256]` (the layers after it are left out).
 */
export function resnet18Onnx(
  params: ResNet18Params,
  size: number,
  upTo: 'fc' | 'avgpool' | 'layer3' = 'fc',
): Uint8Array {
  const builder = new GraphBuilder(params);
  const nchw = builder.node('Transpose', [ONNX_INPUT], [{ name: 'perm', value: [0, 3, 1, 2] }]);
  const stem = builder.node('Relu', [builder.convBn(nchw, 'conv1', 'bn1', 2)]);
  let x = builder.node(
    'MaxPool',
    [stem],
    [
      { name: 'kernel_shape', value: [3, 3] },
      { name: 'strides', value: [2, 2] },
      { name: 'pads', value: [1, 1, 1, 1] },
    ],
  );
  const layers = upTo === 'layer3' ? LAYERS.slice(0, 3) : LAYERS;
  for (const layer of layers) for (const index of [0, 1]) x = builder.basicBlock(x, `${layer}.${index}`);
  builder.input(ONNX_INPUT, ['N', size, size, 3]);
  builder.output(ONNX_OUTPUT, addOutput(builder, x, upTo));
  return builder.model('resnet18', 13);
}
