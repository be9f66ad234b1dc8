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
import { FEATURE_WIDTH, numClassesOf, type ResNet18Params } from '../model/resnet18.js';
import { ProtoWriter } from './protobuf.js';

export const ONNX_INPUT = 'images';
export const ONNX_OUTPUT = 'logits';
const OPSET = 13;
/** IR version 7 goes with opset 13 (onnx/docs/Versioning.md). */
const IR_VERSION = 7;
/** TensorProto.DataType.FLOAT */
const FLOAT = 1;
/** AttributeProto.AttributeType values. */
const ATTRIBUTE_TYPE = { float: 1, int: 2, ints: 7 } as const;
/** Field numbers of the onnx.proto3 messages written here (onnx/onnx, onnx/onnx.proto3). */
const MODEL = { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 } as const;
const OPERATOR_SET = { domain: 1, version: 2 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 } as const;
const ATTRIBUTE = { name: 1, float: 2, int: 3, ints: 8, type: 20 } as const;
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIMENSION = { value: 1, param: 2 } as const;
const BN_EPSILON = 1e-5;
const LAYERS = ['layer1', 'layer2', 'layer3', 'layer4'];
/** ResNet-18's layer3 width (torchvision: 64 · 2²). */
const LAYER3_CHANNELS = 256;

type Attribute = { name: string; value: number | readonly number[]; float?: boolean };

class GraphBuilder {
  readonly graph = new ProtoWriter();
  private counter = 0;

  constructor(readonly params: ResNet18Params) {}

  /** Adds a node and returns its (single) output's name. */
  node(opType: string, inputs: readonly string[], attributes: Attribute[] = [], output?: string): string {
    const name = output ?? `${opType.toLowerCase()}_${this.counter++}`;
    const node = new ProtoWriter();
    for (const input of inputs) node.string(NODE.input, input);
    node.string(NODE.output, name).string(NODE.name, name).string(NODE.opType, opType);
    for (const attribute of attributes) node.message(NODE.attribute, encodeAttribute(attribute));
    this.graph.message(GRAPH.node, node);
    return name;
  }

  /** A float initializer named `name`, with `data` in row-major order of `dims`. */
  initializer(name: string, dims: readonly number[], data: Float32Array): string {
    const tensor = new ProtoWriter()
      .ints(TENSOR.dims, dims)
      .int(TENSOR.dataType, FLOAT)
      .string(TENSOR.name, name)
      .bytes(TENSOR.rawData, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.graph.message(GRAPH.initializer, tensor);
    return name;
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

function encodeAttribute({ name, value, float }: Attribute): ProtoWriter {
  const attribute = new ProtoWriter().string(ATTRIBUTE.name, name);
  if (typeof value !== 'number') return attribute.ints(ATTRIBUTE.ints, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.ints);
  return float
    ? attribute.float(ATTRIBUTE.float, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.float)
    : attribute.int(ATTRIBUTE.int, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.int);
}

function hwioToOihw(hwio: Float32Array, kh: number, kw: number, inChannels: number, outChannels: number) {
  const oihw = new Float32Array(hwio.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < inChannels; i++) {
        const from = ((y * kw + x) * inChannels + i) * outChannels;
        for (let o = 0; o < outChannels; o++) oihw[((o * inChannels + i) * kh + y) * kw + x] = hwio[from + o];
      }
  return oihw;
}

/** `name: float[dims]`, a dimension given as a string being symbolic. */
function valueInfo(name: string, dims: readonly (number | string)[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const dim of dims) {
    const dimension = new ProtoWriter();
    if (typeof dim === 'number') dimension.int(DIMENSION.value, dim);
    else dimension.string(DIMENSION.param, dim);
    shape.message(SHAPE.dim, dimension);
  }
  const tensorType = new ProtoWriter().int(TENSOR_TYPE.elemType, FLOAT).message(TENSOR_TYPE.shape, shape);
  return new ProtoWriter()
    .string(VALUE_INFO.name, name)
    .message(VALUE_INFO.type, new ProtoWriter().message(TYPE.tensorType, tensorType));
}

/** The nodes from the last computed layer `x` to ONNX_OUTPUT; returns the output's shape. */
function addOutput(builder: GraphBuilder, x: string, upTo: 'fc' | 'avgpool' | 'layer3'): (number | string)[] {
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
  const outputShape = addOutput(builder, x, upTo);

  const graph = builder.graph
    .string(GRAPH.name, 'resnet18')
    .message(GRAPH.input, valueInfo(ONNX_INPUT, ['N', size, size, 3]))
    .message(GRAPH.output, valueInfo(ONNX_OUTPUT, outputShape));
  // The default domain ('') is ai.onnx, the standard operators.
  const opset = new ProtoWriter().string(OPERATOR_SET.domain, '').int(OPERATOR_SET.version, OPSET);
  return new ProtoWriter()
    .int(MODEL.irVersion, IR_VERSION)
    .string(MODEL.producerName, 'leukemia-audit')
    .message(MODEL.graph, graph)
    .message(MODEL.opsetImport, opset)
    .finish();
}
