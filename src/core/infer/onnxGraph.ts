/**
 * A small writer of ONNX graphs: nodes, float and int64 initializers, typed inputs and outputs, and the
 * model around them, on the hand-written protobuf encoder (protobuf.ts). Both of our graphs use it: the
 * eval-mode network (onnxModel.ts) and the training step (train/onnxTrainingGraph.ts).
 */
import { ProtoWriter } from './protobuf.js';

/** TensorProto.DataType values. */
export const ONNX_TYPE = { float: 1, int64: 7 } as const;
type ElementType = (typeof ONNX_TYPE)[keyof typeof ONNX_TYPE];
/** AttributeProto.AttributeType values. */
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, ints: 7 } as const;
/** Field numbers of the onnx.proto3 messages written here (onnx/onnx, onnx/onnx.proto3). */
const MODEL = { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 } as const;
const OPERATOR_SET = { domain: 1, version: 2 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 } as const;
const ATTRIBUTE = { name: 1, float: 2, int: 3, string: 4, ints: 8, type: 20 } as const;
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIMENSION = { value: 1, param: 2 } as const;
/** The IR version that goes with each opset we write (onnx/docs/Versioning.md). */
const IR_VERSION_OF_OPSET: Readonly<Record<number, number>> = { 13: 7, 17: 8 };

/** A node attribute: a number is an int unless `float`; a string is a STRING attribute. */
export type Attribute = { name: string; value: number | readonly number[] | string; float?: boolean };

/** A dimension given as a string is symbolic (the batch). */
export type Dims = readonly (number | string)[];

export class OnnxGraph {
  private readonly graph = new ProtoWriter();
  private counter = 0;
  private readonly int64Constants = new Map<string, string>();
  /** Prefixes generated node names (`<role>/<op>_<n>`): profiles then say what each node was for. */
  protected role = '';

  /** Runs `build` with its nodes named under `role`. */
  inRole<T>(role: string, build: () => T): T {
    const outer = this.role;
    this.role = role;
    try {
      return build();
    } finally {
      this.role = outer;
    }
  }

  /** Adds a node and returns the names of its `outputs` outputs (generated unless `names` are given). */
  nodeOutputs(
    opType: string,
    inputs: readonly string[],
    attributes: Attribute[],
    outputs: number,
    names?: readonly string[],
  ): string[] {
    const id = this.counter++;
    const prefix = this.role ? `${this.role}/` : '';
    const outputNames = Array.from(
      { length: outputs },
      (_, i) => names?.[i] ?? `${prefix}${opType.toLowerCase()}_${id}_${i}`,
    );
    const node = new ProtoWriter();
    for (const input of inputs) node.string(NODE.input, input);
    for (const output of outputNames) node.string(NODE.output, output);
    node.string(NODE.name, outputNames[0]).string(NODE.opType, opType);
    for (const attribute of attributes) node.message(NODE.attribute, encodeAttribute(attribute));
    this.graph.message(GRAPH.node, node);
    return outputNames;
  }

  /** Adds a node with one output and returns its name. */
  node(opType: string, inputs: readonly string[], attributes: Attribute[] = [], output?: string): string {
    return this.nodeOutputs(opType, inputs, attributes, 1, output === undefined ? undefined : [output])[0];
  }

  /** A float initializer named `name`, with `data` in row-major order of `dims`. */
  initializer(name: string, dims: readonly number[], data: Float32Array): string {
    return this.tensor(name, dims, ONNX_TYPE.float, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** A float scalar constant. */
  scalar(value: number): string {
    return this.initializer(`scalar_${this.counter++}`, [], Float32Array.of(value));
  }

  /** A 1-D int64 constant (shapes, axes, slice bounds), shared between the nodes that use the same values. */
  int64s(values: readonly number[]): string {
    const key = values.join(',');
    let name = this.int64Constants.get(key);
    if (!name) {
      name = `int64_${this.counter++}`;
      this.tensor(name, [values.length], ONNX_TYPE.int64, new Uint8Array(BigInt64Array.from(values, BigInt).buffer));
      this.int64Constants.set(key, name);
    }
    return name;
  }

  input(name: string, dims: Dims, type: ElementType = ONNX_TYPE.float): string {
    this.graph.message(GRAPH.input, valueInfo(name, dims, type));
    return name;
  }

  output(name: string, dims: Dims): void {
    this.graph.message(GRAPH.output, valueInfo(name, dims, ONNX_TYPE.float));
  }

  /** The serialised model: this graph, named `name`, on the standard operators of `opset`. */
  model(name: string, opset: 13 | 17): Uint8Array {
    const graph = this.graph.string(GRAPH.name, name);
    // The default domain ('') is ai.onnx, the standard operators.
    const opsetImport = new ProtoWriter().string(OPERATOR_SET.domain, '').int(OPERATOR_SET.version, opset);
    return new ProtoWriter()
      .int(MODEL.irVersion, IR_VERSION_OF_OPSET[opset])
      .string(MODEL.producerName, 'leukemia-audit')
      .message(MODEL.graph, graph)
      .message(MODEL.opsetImport, opsetImport)
      .finish();
  }

  private tensor(name: string, dims: readonly number[], type: ElementType, raw: Uint8Array): string {
    const tensor = new ProtoWriter()
      .ints(TENSOR.dims, dims)
      .int(TENSOR.dataType, type)
      .string(TENSOR.name, name)
      .bytes(TENSOR.rawData, raw);
    this.graph.message(GRAPH.initializer, tensor);
    return name;
  }
}

function encodeAttribute({ name, value, float }: Attribute): ProtoWriter {
  const attribute = new ProtoWriter().string(ATTRIBUTE.name, name);
  if (typeof value === 'string')
    return attribute.string(ATTRIBUTE.string, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.string);
  if (typeof value !== 'number') return attribute.ints(ATTRIBUTE.ints, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.ints);
  return float
    ? attribute.float(ATTRIBUTE.float, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.float)
    : attribute.int(ATTRIBUTE.int, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.int);
}

function valueInfo(name: string, dims: Dims, type: ElementType): ProtoWriter {
  const shape = new ProtoWriter();
  for (const dim of dims) {
    const dimension = new ProtoWriter();
    if (typeof dim === 'number') dimension.int(DIMENSION.value, dim);
    else dimension.string(DIMENSION.param, dim);
    shape.message(SHAPE.dim, dimension);
  }
  const tensorType = new ProtoWriter().int(TENSOR_TYPE.elemType, type).message(TENSOR_TYPE.shape, shape);
  return new ProtoWriter()
    .string(VALUE_INFO.name, name)
    .message(VALUE_INFO.type, new ProtoWriter().message(TYPE.tensorType, tensorType));
}

/** HWIO `[kh, kw, in, out]` (our convolution weights) → ONNX's OIHW. */
export function hwioToOihw(hwio: Float32Array, kh: number, kw: number, inChannels: number, outChannels: number) {
  const oihw = new Float32Array(hwio.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < inChannels; i++) {
        const from = ((y * kw + x) * inChannels + i) * outChannels;
        for (let o = 0; o < outChannels; o++) oihw[((o * inChannels + i) * kh + y) * kw + x] = hwio[from + o];
      }
  return oihw;
}
