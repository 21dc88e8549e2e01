/**
 * A protobuf writer for the part of ONNX's ModelProto that the exporter emits, written from the
 * field numbers of onnx.proto3. Only encoding is needed (plus a metadata reader for sessions), so a
 * hundred lines replace a protobuf dependency.
 *
 * Wire format reminders: a field is a varint key (field << 3 | wire type) followed by a varint
 * (type 0), 8 bytes (type 1), a varint length and bytes (type 2) or 4 bytes (type 5).
 */

const VARINT = 0;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** TensorProto.DataType values. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  /** Two 4-bit values a byte, element 2i in the low nibble (opset 21). */
  UINT4: 21,
  INT4: 22,
} as const;
export type OnnxDataType = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** AttributeProto.AttributeType values. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

const textEncoder = new TextEncoder();

/** Accumulates one message; nested messages are encoded first and written as bytes. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  private length = 0;

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    this.chunks.push(Uint8Array.from(this.scratch));
    this.length += this.scratch.length;
    this.scratch = [];
  }

  private rawVarint(value: number | bigint): void {
    // Negative int64 values are ten-byte two's complement varints.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
  }

  private key(field: number, wireType: number): void {
    this.rawVarint((field << 3) | wireType);
  }

  int(field: number, value: number | bigint): this {
    this.key(field, VARINT);
    this.rawVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.scratch.push(...bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, LENGTH_DELIMITED);
    this.rawVarint(value.length);
    this.flushScratch();
    this.chunks.push(value);
    this.length += value.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(v);
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): this {
    const data = new Uint8Array(values.length * 4);
    const view = new DataView(data.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, data);
  }

  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

export type TensorValues = Float32Array | Int8Array | Uint8Array | Int16Array | Int32Array | BigInt64Array;

export interface OnnxTensor {
  name: string;
  dataType: OnnxDataType;
  dims: readonly number[];
  values: TensorValues;
}

export type AttributeValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'tensor'; value: OnnxTensor };

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: Readonly<Record<string, AttributeValue>>;
}

/** A symbolic dimension is a string, a fixed one a number. */
export type OnnxDim = number | string;

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataType;
  shape: readonly OnnxDim[];
}

export interface OnnxModel {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
  graphName: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  metadata?: Readonly<Record<string, string>>;
}

function littleEndianBytes(values: TensorValues): Uint8Array {
  // Typed arrays use host byte order; ONNX raw_data is little-endian, which every supported host is.
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, littleEndianBytes(t.values));
}

function writeAttribute(w: ProtoWriter, name: string, a: AttributeValue): void {
  w.string(1, name);
  switch (a.kind) {
    case 'int':
      w.int(3, a.value).int(20, AttributeType.INT);
      break;
    case 'float':
      w.float(2, a.value).int(20, AttributeType.FLOAT);
      break;
    case 'string':
      w.string(4, a.value).int(20, AttributeType.STRING);
      break;
    case 'ints':
      w.packedInts(8, a.value).int(20, AttributeType.INTS);
      break;
    case 'floats':
      w.packedFloats(7, a.value).int(20, AttributeType.FLOATS);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, a.value)).int(20, AttributeType.TENSOR);
      break;
  }
}

function writeNode(w: ProtoWriter, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [name, a] of Object.entries(n.attributes ?? {}))
    w.message(5, (aw) => writeAttribute(aw, name, a));
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

/** Serializes a model to the bytes of an .onnx file. */
export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  if (m.docString !== undefined) w.string(6, m.docString);
  w.message(7, (g) => {
    for (const n of m.nodes) g.message(1, (nw) => writeNode(nw, n));
    g.string(2, m.graphName);
    for (const t of m.initializers) g.message(5, (tw) => writeTensor(tw, t));
    for (const v of m.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of m.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
  });
  w.message(8, (o) => o.string(1, '').int(2, m.opset));
  for (const [key, value] of Object.entries(m.metadata ?? {}))
    w.message(14, (e) => e.string(1, key).string(2, value));
  return w.finish();
}

/** Walks the length-delimited fields of one message (other wire types are skipped). */
function walkFields(
  bytes: Uint8Array,
  start: number,
  end: number,
  visit: (field: number, from: number, to: number) => void,
): void {
  const state = { at: start };
  const varint = (): number => {
    let result = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      if (state.at >= end) throw new RangeError('truncated varint');
      const b = bytes[state.at++];
      result += (b & 0x7f) * shift;
      if ((b & 0x80) === 0) return result;
      shift *= 128;
    }
    throw new RangeError('varint longer than 10 bytes');
  };
  while (state.at < end) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === VARINT) varint();
    else if (wire === 1) state.at += 8;
    else if (wire === FIXED32) state.at += 4;
    else if (wire === LENGTH_DELIMITED) {
      const len = varint();
      if (state.at + len > end) throw new RangeError('field runs past the end');
      visit(field, state.at, state.at + len);
      state.at += len;
    } else throw new RangeError(`unsupported wire type ${wire}`);
  }
}

/**
 * Reads ModelProto.metadata_props (field 14) without decoding the graph: every other top-level
 * field is skipped by its wire type. Returns an empty map for bytes that are not a ModelProto.
 */
export function readOnnxMetadata(bytes: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const decoder = new TextDecoder();
  try {
    walkFields(bytes, 0, bytes.length, (field, from, to) => {
      if (field !== 14) return;
      let key = '';
      let value = '';
      walkFields(bytes, from, to, (f, a, b) => {
        if (f === 1) key = decoder.decode(bytes.subarray(a, b));
        else if (f === 2) value = decoder.decode(bytes.subarray(a, b));
      });
      out.set(key, value);
    });
  } catch {
    return new Map();
  }
  return out;
}

export interface OnnxNodeSummary {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
}

/**
 * The graph's nodes (op type, domain, name, inputs) and initializer names with their byte sizes,
 * read from an .onnx file (or onnxruntime's optimized model); throws RangeError on malformed bytes.
 */
export function readOnnxGraph(bytes: Uint8Array): {
  nodes: OnnxNodeSummary[];
  initializers: { name: string; bytes: number }[];
} {
  const decoder = new TextDecoder();
  const nodes: OnnxNodeSummary[] = [];
  const initializers: { name: string; bytes: number }[] = [];
  walkFields(bytes, 0, bytes.length, (field, from, to) => {
    if (field !== 7) return;
    walkFields(bytes, from, to, (g, a, b) => {
      if (g === 1) {
        const node: OnnxNodeSummary = { opType: '', domain: '', name: '', inputs: [] };
        walkFields(bytes, a, b, (n, x, y) => {
          const text = () => decoder.decode(bytes.subarray(x, y));
          if (n === 1) node.inputs.push(text());
          else if (n === 3) node.name = text();
          else if (n === 4) node.opType = text();
          else if (n === 7) node.domain = text();
        });
        nodes.push(node);
      } else if (g === 5) {
        let name = '';
        walkFields(bytes, a, b, (n, x, y) => {
          if (n === 8) name = decoder.decode(bytes.subarray(x, y));
        });
        initializers.push({ name, bytes: b - a });
      }
    });
  });
  return { nodes, initializers };
}
