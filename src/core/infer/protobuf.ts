/**
 * The few protobuf wire-format pieces an ONNX model needs, written by hand so that exporting one needs no
 * dependency: varints, length-delimited fields (strings, bytes, nested messages) and 32-bit floats.
 * A message is built as a list of byte chunks and concatenated once (`bytes`), so the 45 MB of weights are
 * copied only into the final buffer.
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(chunk: Uint8Array): this {
    this.chunks.push(chunk);
    this.length += chunk.length;
    return this;
  }

  private key(field: number, wireType: number): this {
    return this.push(varint(field * 8 + wireType));
  }

  /** int32, int64 and enum fields; every value an ONNX model of ours holds is ≥ 0. */
  int(field: number, value: number): this {
    return this.key(field, WIRE_VARINT).push(varint(value));
  }

  /** Repeated int64 written unpacked (one key per element), which every protobuf reader accepts. */
  ints(field: number, values: readonly number[]): this {
    for (const value of values) this.int(field, value);
    return this;
  }

  float(field: number, value: number): this {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    return this.key(field, WIRE_FIXED32).push(bytes);
  }

  bytes(field: number, value: Uint8Array): this {
    return this.key(field, WIRE_LENGTH_DELIMITED).push(varint(value.length)).push(value);
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: ProtoWriter): this {
    return this.bytes(field, value.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

/** Base-128 varint of a non-negative integer below 2^53 (enough for any dimension or field key). */
function varint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint of ${value}`);
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Uint8Array.from(bytes);
}
