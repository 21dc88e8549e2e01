/**
 * `strata import`: an ONNX float model (opsets 11 to 21) read with protobufjs and turned into a
 * GraphNetwork (src/nn/models/graph.ts) that computes the same function on channels-last input.
 *
 * Layout: ONNX is NCHW, Strata channels-last. Every 4-D value keeps its meaning and only its memory
 * order changes, so convolutions, batch norm, pooling and channel-wise arithmetic carry over as they
 * are (ONNX axis 1 becomes the last axis). The one place the order shows is a Flatten or Reshape of
 * a C x H x W map with H x W > 1: Strata flattens in H, W, C order, so the Gemm or MatMul that reads
 * it gets its weight columns permuted to match; any other reader of such a value is refused.
 *
 * Folded on the way: Identity and Dropout (inference) disappear, a Relu straight after a batch
 * norm is fused into it, an Add of a constant after a bias-free MatMul becomes its bias, and Clip
 * becomes ReLU or ReLU6. Every Conv becomes a Conv2d and every Gemm/MatMul a Linear, which
 * quantization wraps; every BatchNormalization stays a BatchNorm2d, which switchable batch norm
 * replaces.
 */
import { readFileSync } from 'node:fs';
import { noGrad } from '../engine/autograd.js';
import { scope } from '../engine/memory.js';
import { Tensor } from '../engine/tensor.js';
import { GraphNetwork, type GraphOp, type GraphSpec } from '../nn/models/graph.js';
import type { Architecture } from '../nn/models/index.js';
import { onnxModelType } from './onnx-schema.js';

export const IMPORT_MIN_OPSET = 11;
export const IMPORT_MAX_OPSET = 21;

/** ONNX op types strata import reads. */
export const IMPORT_OPS = [
  'Conv',
  'BatchNormalization',
  'Relu',
  'Clip',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'Gemm',
  'MatMul',
  'Flatten',
  'Reshape',
  'Identity',
  'Dropout',
  'Constant',
  'Concat',
  'Cast',
  'Pad',
] as const;

/** ModelProto.metadata_props keys read (and written by scripts/onnx-fixtures/make-fixtures.py). */
export const IMPORT_METADATA = {
  classes: 'strata.classes',
  mean: 'strata.mean',
  std: 'strata.std',
  inputSize: 'strata.input_size',
  dataset: 'strata.dataset',
} as const;

export class OnnxImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxImportError';
  }
}

export interface ImportOptions {
  /** Class names (default: the model's `strata.classes` metadata, else class0, class1, ...). */
  classes?: string[];
  /** Per-channel preprocessing (default: `strata.mean` / `strata.std` metadata). */
  mean?: number[];
  std?: number[];
  /** [height, width] when the model's input size is symbolic (default: `strata.input_size`). */
  inputSize?: [number, number];
  /** Name used in messages (the file path). */
  source?: string;
}

export interface ImportedModel {
  architecture: Architecture & { graph: GraphSpec };
  /** Module parameters and buffers by their state-dict names. */
  state: Map<string, Float32Array>;
  classes: string[];
  inputSize: [number, number];
  mean: number[] | null;
  std: number[] | null;
  /** The model's `strata.dataset` metadata, when present. */
  dataset: string | null;
  opset: number;
  producer: string;
}

// ---------------------------------------------------------------------------------------------
// Decoding

interface ConstTensor {
  dims: number[];
  /** Float data as float32, integer data as exact doubles. */
  values: Float32Array | Float64Array;
}

interface AttrProto {
  name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: unknown;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}
interface TensorProto {
  dims?: number[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: number[];
  double_data?: number[];
  raw_data?: Uint8Array;
  name?: string;
  data_location?: number;
}
interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  attribute?: AttrProto[];
}
interface ValueInfoProto {
  name?: string;
  type?: {
    tensor_type?: {
      elem_type?: number;
      shape?: { dim?: { dim_value?: number; dim_param?: string }[] };
    };
  };
}
interface ModelProto {
  ir_version?: number;
  opset_import?: { domain?: string; version?: number }[];
  producer_name?: string;
  producer_version?: string;
  graph?: {
    node?: NodeProto[];
    initializer?: TensorProto[];
    input?: ValueInfoProto[];
    output?: ValueInfoProto[];
  };
  metadata_props?: { key?: string; value?: string }[];
}

const DATA_TYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  16: 'bfloat16',
};

function decodeTensor(t: TensorProto, what: string): ConstTensor {
  const dims = (t.dims ?? []).map(Number);
  const size = dims.reduce((a, b) => a * b, 1);
  const type = t.data_type ?? 0;
  if (t.data_location === 1) {
    throw new OnnxImportError(
      `${what} keeps its data in an external file; save the model with its data inside`,
    );
  }
  const raw = t.raw_data !== undefined && t.raw_data.length > 0 ? t.raw_data : null;
  const copy = raw === null ? null : new Uint8Array(raw); // aligned copy
  let values: Float32Array | Float64Array;
  if (type === 1) values = copy ? new Float32Array(copy.buffer) : Float32Array.from(t.float_data ?? []);
  else if (type === 11)
    values = Float32Array.from(copy ? new Float64Array(copy.buffer) : (t.double_data ?? []));
  else if (type === 7)
    values = copy
      ? Float64Array.from(new BigInt64Array(copy.buffer), (v) => Number(v))
      : Float64Array.from(t.int64_data ?? []);
  else if (type === 6) values = Float64Array.from(copy ? new Int32Array(copy.buffer) : (t.int32_data ?? []));
  else {
    throw new OnnxImportError(
      `${what} has data type ${DATA_TYPE_NAMES[type] ?? type}; strata import reads float32, float64, int32 and int64 tensors`,
    );
  }
  if (values.length !== size) {
    throw new OnnxImportError(
      `${what} holds ${values.length} values but its dims [${dims.join(', ')}] need ${size}`,
    );
  }
  return { dims, values };
}

/** Parses ModelProto bytes (protobufjs), with int64 fields as numbers. */
export function decodeOnnxModel(bytes: Uint8Array, source = '<memory>'): ModelProto {
  const type = onnxModelType();
  let message;
  try {
    message = type.decode(bytes);
  } catch (e) {
    throw new OnnxImportError(`${source}: not a valid ONNX model (protobuf: ${(e as Error).message})`);
  }
  return type.toObject(message, { longs: Number, enums: Number, arrays: true }) as ModelProto;
}

// ---------------------------------------------------------------------------------------------
// Conversion

/** A value during conversion: a constant, or a tensor computed by the graph. */
type Value =
  | { kind: 'const'; t: ConstTensor }
  | {
      kind: 'tensor';
      /** Its name in the GraphSpec. */
      name: string;
      /** Its ONNX (NCHW) shape, the batch dimension counted as 1. */
      shape: number[];
      /** Set when a C x H x W map was flattened in Strata's H, W, C order. */
      order?: [number, number, number];
    };
type TensorValue = Extract<Value, { kind: 'tensor' }>;

const ATTRIBUTES: Record<string, readonly string[]> = {
  Conv: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'],
  BatchNormalization: ['epsilon', 'momentum', 'training_mode', 'spatial'],
  Clip: ['min', 'max'],
  MaxPool: ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'storage_order', 'strides'],
  AveragePool: ['auto_pad', 'ceil_mode', 'count_include_pad', 'kernel_shape', 'pads', 'strides'],
  Gemm: ['alpha', 'beta', 'transA', 'transB'],
  Flatten: ['axis'],
  Reshape: ['allowzero'],
  Dropout: ['seed', 'ratio'],
  Constant: ['value', 'value_float', 'value_floats', 'value_int', 'value_ints'],
  Concat: ['axis'],
  Cast: ['to', 'saturate'],
  Pad: ['mode'],
};

class NodeContext {
  readonly attrs = new Map<string, AttrProto>();
  constructor(
    readonly node: NodeProto,
    readonly label: string,
  ) {
    for (const a of node.attribute ?? []) this.attrs.set(a.name ?? '', a);
    const allowed = ATTRIBUTES[node.op_type ?? ''] ?? [];
    for (const name of this.attrs.keys()) {
      if (!allowed.includes(name)) {
        this.fail(
          `attribute '${name}' is not supported` +
            (allowed.length > 0 ? ` (supported: ${allowed.join(', ')})` : ' (this op takes none)'),
        );
      }
    }
  }
  fail(message: string): never {
    throw new OnnxImportError(`${this.label}: ${message}`);
  }
  int(name: string, fallback: number): number {
    const a = this.attrs.get(name);
    return a === undefined ? fallback : Number(a.i ?? 0);
  }
  float(name: string, fallback: number): number {
    const a = this.attrs.get(name);
    return a === undefined ? fallback : (a.f ?? 0);
  }
  ints(name: string): number[] | null {
    const a = this.attrs.get(name);
    return a === undefined ? null : (a.ints ?? []).map(Number);
  }
  string(name: string, fallback: string): string {
    const a = this.attrs.get(name);
    return a === undefined ? fallback : new TextDecoder().decode(a.s ?? new Uint8Array());
  }
}

function sanitize(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  return /^[A-Za-z_]/.test(s) ? s : `n_${s}`;
}

function parseJsonList(value: string, key: string, source: string): unknown[] {
  try {
    const parsed = JSON.parse(value) as unknown;
    if (Array.isArray(parsed)) return parsed;
  } catch {
    // reported below
  }
  throw new OnnxImportError(`${source}: metadata ${key} must be a JSON list but is ${JSON.stringify(value)}`);
}

function numberList(value: unknown[], key: string, source: string, length?: number): number[] {
  if (
    !value.every((v) => typeof v === 'number' && Number.isFinite(v)) ||
    (length !== undefined && value.length !== length)
  ) {
    throw new OnnxImportError(
      `${source}: ${key} must be a list of ${length ?? 'some'} finite numbers but is ${JSON.stringify(value)}`,
    );
  }
  return value as number[];
}

/** Converts a decoded ONNX model; see the module comment. */
export function convertOnnxModel(model: ModelProto, options: ImportOptions = {}): ImportedModel {
  const source = options.source ?? '<memory>';
  const graph = model.graph;
  if (graph === undefined) throw new OnnxImportError(`${source}: the model has no graph`);
  const opsets = (model.opset_import ?? []).filter((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  if (opsets.length === 0) throw new OnnxImportError(`${source}: the model imports no default-domain opset`);
  const opset = Number(opsets[0].version ?? 0);
  if (opset < IMPORT_MIN_OPSET || opset > IMPORT_MAX_OPSET) {
    throw new OnnxImportError(
      `${source}: opset ${opset} is outside the range strata import reads [${IMPORT_MIN_OPSET}, ${IMPORT_MAX_OPSET}]`,
    );
  }
  const metadata = new Map((model.metadata_props ?? []).map((p) => [p.key ?? '', p.value ?? '']));

  const values = new Map<string, Value>();
  for (const init of graph.initializer ?? []) {
    values.set(init.name ?? '', {
      kind: 'const',
      t: decodeTensor(init, `${source}: initializer '${init.name}'`),
    });
  }
  const inputs = (graph.input ?? []).filter((i) => !values.has(i.name ?? ''));
  if (inputs.length !== 1) {
    throw new OnnxImportError(
      `${source}: expected one graph input (an image batch) but found ${inputs.length}: ${inputs.map((i) => i.name).join(', ')}`,
    );
  }
  const input = inputs[0];
  const inputName = input.name ?? '';
  const tensorType = input.type?.tensor_type;
  const dims = tensorType?.shape?.dim ?? [];
  if (tensorType?.elem_type !== 1 || dims.length !== 4) {
    throw new OnnxImportError(
      `${source}: input '${inputName}' must be a float32 [N, C, H, W] image batch (elem_type ${tensorType?.elem_type}, rank ${dims.length})`,
    );
  }
  const staticDim = (i: number): number | null =>
    dims[i].dim_value !== undefined && Number(dims[i].dim_value) > 0 ? Number(dims[i].dim_value) : null;
  const inChannels = staticDim(1);
  if (inChannels === null)
    throw new OnnxImportError(`${source}: input '${inputName}' has no fixed channel count`);
  const metaSize = metadata.has(IMPORT_METADATA.inputSize)
    ? numberList(
        parseJsonList(metadata.get(IMPORT_METADATA.inputSize)!, IMPORT_METADATA.inputSize, source),
        IMPORT_METADATA.inputSize,
        source,
        2,
      )
    : null;
  const h = options.inputSize?.[0] ?? staticDim(2) ?? metaSize?.[0] ?? null;
  const w = options.inputSize?.[1] ?? staticDim(3) ?? metaSize?.[1] ?? null;
  if (h === null || w === null) {
    throw new OnnxImportError(
      `${source}: input '${inputName}' has a symbolic height or width; give the input size`,
    );
  }
  values.set(inputName, { kind: 'tensor', name: inputName, shape: [1, inChannels, h, w] });

  const uses = new Map<string, number>();
  for (const node of graph.node ?? []) for (const i of node.input ?? []) uses.set(i, (uses.get(i) ?? 0) + 1);
  const outputs = graph.output ?? [];
  for (const o of outputs) uses.set(o.name ?? '', (uses.get(o.name ?? '') ?? 0) + 1);

  const ops: GraphOp[] = [];
  const state = new Map<string, Float32Array>();
  const moduleNames = new Set<string>();
  const producer = new Map<string, GraphOp>();
  const emit = (op: GraphOp): TensorValue => {
    ops.push(op);
    producer.set(op.output, op);
    return { kind: 'tensor', name: op.output, shape: [] };
  };
  const moduleName = (base: string): string => {
    let name = sanitize(base);
    for (let i = 1; moduleNames.has(name); i++) name = `${sanitize(base)}_${i}`;
    moduleNames.add(name);
    return name;
  };

  (graph.node ?? []).forEach((node, index) => {
    const opType = node.op_type ?? '';
    const label = `${source}: node '${node.name || `#${index}`}' (${opType})`;
    if ((node.domain ?? '') !== '' && node.domain !== 'ai.onnx') {
      throw new OnnxImportError(
        `${label}: domain '${node.domain}' is not supported (only the default ONNX domain)`,
      );
    }
    if (!(IMPORT_OPS as readonly string[]).includes(opType)) {
      throw new OnnxImportError(
        `${label}: op type '${opType}' is not supported by strata import (supported: ${IMPORT_OPS.join(', ')})`,
      );
    }
    const ctx: NodeContext = new NodeContext(node, label);
    const ins = node.input ?? [];
    const outs = node.output ?? [];
    const sourceTag = `${node.name || `#${index}`} (${opType})`;
    const valueOf = (i: number): Value | null => {
      const name = ins[i];
      if (name === undefined || name === '') return null;
      const v = values.get(name);
      if (v === undefined) ctx.fail(`input '${name}' is not computed before this node`);
      return v;
    };
    const tensorIn = (i: number, ranks: number[] = [4]): TensorValue => {
      const v = valueOf(i);
      if (v === null || v.kind !== 'tensor') ctx.fail(`input ${i} must be a computed tensor, not a constant`);
      if (!ranks.includes(v.shape.length)) {
        ctx.fail(
          `input '${ins[i]}' has rank ${v.shape.length} (shape [${v.shape.join(', ')}]); expected rank ${ranks.join(' or ')}`,
        );
      }
      if (
        v.order !== undefined &&
        !['Gemm', 'MatMul', 'Relu', 'Clip', 'Identity', 'Dropout'].includes(opType)
      ) {
        ctx.fail(
          `input '${ins[i]}' is a flattened ${v.order.join('x')} (CxHxW) map, whose element order channels-last Strata ` +
            'does not keep; only Gemm, MatMul and element-wise activations may read it',
        );
      }
      return v;
    };
    const constIn = (i: number, what: string): ConstTensor => {
      const v = valueOf(i);
      if (v === null || v.kind !== 'const')
        ctx.fail(`${what} (input ${i}) must be a constant (an initializer or Constant node)`);
      return v.t;
    };
    const extraOutputs = outs.slice(1).filter((o) => o !== '' && (uses.get(o) ?? 0) > 0);
    if (extraOutputs.length > 0)
      ctx.fail(`outputs ${extraOutputs.join(', ')} are used, but only the first output is supported`);
    const out = outs[0] ?? '';
    const set = (v: Value): void => void values.set(out, v);
    const op = <T extends GraphOp['op']>(kind: T, inputs: string[]) => ({
      op: kind,
      source: sourceTag,
      inputs,
      output: out,
    });
    const pads2 = (kernelRank: number): [number, number] => {
      const autoPad = ctx.string('auto_pad', 'NOTSET');
      if (autoPad !== 'NOTSET' && autoPad !== 'VALID')
        ctx.fail(`auto_pad '${autoPad}' is not supported (supported: NOTSET, VALID)`);
      const pads = ctx.ints('pads') ?? new Array<number>(2 * kernelRank).fill(0);
      if (autoPad === 'VALID') pads.fill(0);
      if (pads.length !== 4 || pads[0] !== pads[2] || pads[1] !== pads[3]) {
        ctx.fail(
          `pads [${pads.join(', ')}] are not supported (supported: 2-D, equal at both ends: [t, l, t, l])`,
        );
      }
      return [pads[0], pads[1]];
    };
    const pair = (name: string, fallback: number): [number, number] => {
      const v = ctx.ints(name) ?? [fallback, fallback];
      if (v.length !== 2) ctx.fail(`${name} [${v.join(', ')}] must have two values (2-D only)`);
      return [v[0], v[1]];
    };
    const outSize = (size: number, k: number, s: number, p: number, d = 1): number =>
      Math.floor((size + 2 * p - d * (k - 1) - 1) / s) + 1;

    switch (opType) {
      case 'Constant': {
        const [name] = [...ctx.attrs.keys()];
        const a = ctx.attrs.get(name)!;
        let t: ConstTensor;
        if (name === 'value') t = decodeTensor(a.t ?? {}, `${label} value`);
        else if (name === 'value_float') t = { dims: [], values: Float32Array.of(a.f ?? 0) };
        else if (name === 'value_floats')
          t = { dims: [(a.floats ?? []).length], values: Float32Array.from(a.floats ?? []) };
        else if (name === 'value_int') t = { dims: [], values: Float64Array.of(Number(a.i ?? 0)) };
        else if (name === 'value_ints')
          t = { dims: [(a.ints ?? []).length], values: Float64Array.from((a.ints ?? []).map(Number)) };
        else ctx.fail('expected one value attribute');
        set({ kind: 'const', t });
        return;
      }
      case 'Identity':
      case 'Dropout': {
        if (opType === 'Dropout' && valueOf(2) !== null) ctx.fail('the training_mode input is not supported');
        const v = valueOf(0);
        if (v === null) ctx.fail('has no input');
        set(v);
        return;
      }
      case 'Cast': {
        // Exporters cast constants (Clip bounds) and no-op casts of float tensors; nothing else is supported.
        const to = ctx.int('to', 0);
        const v = valueOf(0);
        if (v === null) ctx.fail('has no input');
        if (v.kind === 'const') {
          if (to === 1 || to === 11)
            set({ kind: 'const', t: { dims: v.t.dims, values: Float32Array.from(v.t.values) } });
          else if (to === 6 || to === 7)
            set({ kind: 'const', t: { dims: v.t.dims, values: Float64Array.from(v.t.values, Math.trunc) } });
          else
            ctx.fail(
              `casting a constant to ${DATA_TYPE_NAMES[to] ?? to} is not supported (supported: float32, float64, int32, int64)`,
            );
          return;
        }
        if (to !== 1)
          ctx.fail(
            `casting a computed tensor to ${DATA_TYPE_NAMES[to] ?? to} is not supported (only to float32)`,
          );
        set(tensorIn(0, [2, 4]));
        return;
      }
      case 'Pad': {
        // Only the all-zero padding some exporters put before a pool.
        const x = tensorIn(0);
        const mode = ctx.string('mode', 'constant');
        const pads = Array.from(constIn(1, 'the pads').values);
        if (mode !== 'constant' || pads.some((p) => p !== 0)) {
          ctx.fail(
            `pads [${pads.join(', ')}] in mode '${mode}' are not supported (only zero padding, which does nothing)`,
          );
        }
        set(x);
        return;
      }
      case 'Conv': {
        const x = tensorIn(0);
        const weight = constIn(1, 'the weight');
        const bias = valueOf(2) === null ? null : constIn(2, 'the bias');
        if (weight.dims.length !== 4)
          ctx.fail(`weight dims [${weight.dims.join(', ')}]: only 2-D convolutions are supported`);
        const [outC, inPerGroup, kH, kW] = weight.dims;
        const kernel = ctx.ints('kernel_shape');
        if (kernel !== null && (kernel[0] !== kH || kernel[1] !== kW))
          ctx.fail(`kernel_shape [${kernel.join(', ')}] disagrees with the weight`);
        const groups = ctx.int('group', 1);
        const inC = x.shape[1];
        if (inPerGroup * groups !== inC) {
          ctx.fail(
            `the weight expects ${inPerGroup * groups} input channels (group ${groups}) but the input has ${inC}`,
          );
        }
        const stride = pair('strides', 1);
        const dilation = pair('dilations', 1);
        const padding = pads2(2);
        const module = moduleName(node.name || `conv_${index}`);
        state.set(`${module}.weight`, Float32Array.from(weight.values));
        if (bias !== null) state.set(`${module}.bias`, Float32Array.from(bias.values));
        const y = emit({
          ...op('conv', [x.name]),
          module,
          inChannels: inC,
          outChannels: outC,
          kernel: [kH, kW],
          stride,
          padding,
          dilation,
          groups,
          bias: bias !== null,
        });
        y.shape = [
          1,
          outC,
          outSize(x.shape[2], kH, stride[0], padding[0], dilation[0]),
          outSize(x.shape[3], kW, stride[1], padding[1], dilation[1]),
        ];
        if (y.shape[2] < 1 || y.shape[3] < 1)
          ctx.fail(`input [${x.shape.join(', ')}] is smaller than the kernel`);
        set(y);
        return;
      }
      case 'BatchNormalization': {
        if (ctx.int('training_mode', 0) !== 0)
          ctx.fail('training_mode 1 is not supported (export the model in eval mode)');
        const x = tensorIn(0);
        const c = x.shape[1];
        const parts = ['scale', 'B', 'input_mean', 'input_var'].map((what, k) => {
          const t = constIn(k + 1, what);
          if (t.values.length !== c) ctx.fail(`${what} has ${t.values.length} values for ${c} channels`);
          return Float32Array.from(t.values);
        });
        const module = moduleName(node.name || `bn_${index}`);
        ['weight', 'bias', 'runningMean', 'runningVar'].forEach((k, i) =>
          state.set(`${module}.${k}`, parts[i]),
        );
        const y = emit({
          ...op('batchnorm', [x.name]),
          module,
          features: c,
          eps: ctx.float('epsilon', 1e-5),
          relu: false,
        });
        y.shape = [...x.shape];
        set(y);
        return;
      }
      case 'Relu':
      case 'Clip': {
        const x = tensorIn(0, [2, 4]);
        let kind: 'relu' | 'relu6' = 'relu';
        if (opType === 'Clip') {
          const bound = (i: number, attr: string, fallback: number): number => {
            if (valueOf(i) !== null) return constIn(i, attr).values[0];
            const a = ctx.attrs.get(attr);
            return a === undefined ? fallback : (a.f ?? 0);
          };
          const lo = bound(1, 'min', -Infinity);
          const hi = bound(2, 'max', Infinity);
          if (lo !== 0 || (hi !== 6 && hi !== Infinity && hi < 3.4e38)) {
            ctx.fail(
              `Clip to [${lo}, ${hi}] is not supported (supported: [0, 6] as ReLU6 and [0, inf) as ReLU)`,
            );
          }
          if (hi === 6) kind = 'relu6';
        }
        const p = producer.get(x.name);
        if (kind === 'relu' && p?.op === 'batchnorm' && !p.relu && uses.get(ins[0]) === 1) {
          p.relu = true;
          set(x);
          return;
        }
        const y = emit(op(kind, [x.name]));
        y.shape = [...x.shape];
        if (x.order) y.order = x.order;
        set(y);
        return;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const x = tensorIn(0);
        if (ctx.int('ceil_mode', 0) !== 0) ctx.fail('ceil_mode 1 is not supported');
        if (ctx.int('storage_order', 0) !== 0) ctx.fail('storage_order 1 is not supported');
        const dil = ctx.ints('dilations');
        if (dil !== null && dil.some((d) => d !== 1))
          ctx.fail(`dilations [${dil.join(', ')}] are not supported (only 1)`);
        const kernel = ctx.ints('kernel_shape');
        if (kernel === null || kernel.length !== 2) ctx.fail('kernel_shape must give two values');
        const stride = pair('strides', 1);
        const padding = pads2(2);
        if (padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1])
          ctx.fail('pads larger than half the kernel are not supported');
        if (
          opType === 'AveragePool' &&
          ctx.int('count_include_pad', 0) !== 0 &&
          (padding[0] > 0 || padding[1] > 0)
        ) {
          ctx.fail(
            'count_include_pad 1 with padding is not supported (Strata averages over the cells inside the image)',
          );
        }
        const y = emit({
          ...op(opType === 'MaxPool' ? 'maxpool' : 'avgpool', [x.name]),
          kernel: [kernel[0], kernel[1]],
          stride,
          padding,
        });
        y.shape = [
          1,
          x.shape[1],
          outSize(x.shape[2], kernel[0], stride[0], padding[0]),
          outSize(x.shape[3], kernel[1], stride[1], padding[1]),
        ];
        if (y.shape[2] < 1 || y.shape[3] < 1)
          ctx.fail(`input [${x.shape.join(', ')}] is smaller than the kernel`);
        set(y);
        return;
      }
      case 'GlobalAveragePool': {
        const x = tensorIn(0);
        const y = emit(op('globalavgpool', [x.name]));
        y.shape = [1, x.shape[1], 1, 1];
        set(y);
        return;
      }
      case 'Flatten':
      case 'Reshape': {
        const x = tensorIn(0, [2, 4]);
        const features = x.shape.slice(1).reduce((a, b) => a * b, 1);
        if (opType === 'Flatten') {
          const axis = ctx.int('axis', 1);
          if (axis !== 1 && !(axis === -1 && x.shape.length === 2))
            ctx.fail(`axis ${axis} is not supported (only 1)`);
        } else {
          const target = Array.from(constIn(1, 'the shape').values);
          const allowZero = ctx.int('allowzero', 0) !== 0;
          const first = target[0];
          const batchOk = first === -1 || first === 1 || (first === 0 && !allowZero);
          const restOk =
            target.length === 2 && (target[1] === features || (target[1] === -1 && first !== -1));
          const inferredOk = target.length === 2 && first === -1 && target[1] === features;
          if (!batchOk || !(restOk || inferredOk)) {
            ctx.fail(
              `shape [${target.join(', ')}] of a [N, ${x.shape.slice(1).join(', ')}] input is not supported ` +
                `(supported: flattening to [N, ${features}], e.g. [0, -1], [-1, ${features}], [N, -1])`,
            );
          }
        }
        if (x.shape.length === 2) {
          set(x);
          return;
        }
        const y = emit(op('flatten', [x.name]));
        y.shape = [1, features];
        if (x.shape[2] * x.shape[3] > 1) y.order = [x.shape[1], x.shape[2], x.shape[3]];
        set(y);
        return;
      }
      case 'Gemm':
      case 'MatMul': {
        const x = tensorIn(0, [2]);
        const b = constIn(1, 'the weight');
        if (b.dims.length !== 2) ctx.fail(`weight dims [${b.dims.join(', ')}]: expected a matrix`);
        let transB = false;
        let alpha = 1;
        let beta = 1;
        if (opType === 'Gemm') {
          if (ctx.int('transA', 0) !== 0) ctx.fail('transA 1 is not supported');
          transB = ctx.int('transB', 0) !== 0;
          alpha = ctx.float('alpha', 1);
          beta = ctx.float('beta', 1);
        }
        const [outF, inF] = transB ? b.dims : [b.dims[1], b.dims[0]];
        if (inF !== x.shape[1])
          ctx.fail(`the weight expects ${inF} input features but the input has ${x.shape[1]}`);
        const weight = new Float32Array(outF * inF);
        // Column j of ONNX's order (c, h, w) reads Strata's index (h, w, c) when the input was a flattened map.
        const column = (j: number): number => {
          if (x.order === undefined) return j;
          const [c, hh, ww] = x.order;
          const ci = Math.floor(j / (hh * ww));
          const rest = j % (hh * ww);
          return rest * c + ci;
        };
        for (let o = 0; o < outF; o++) {
          for (let j = 0; j < inF; j++) {
            const v = transB ? b.values[o * inF + j] : b.values[j * outF + o];
            weight[o * inF + column(j)] = alpha * v;
          }
        }
        const c = opType === 'Gemm' && valueOf(2) !== null ? constIn(2, 'the bias') : null;
        let bias: Float32Array | null = null;
        if (c !== null) {
          if (c.values.length !== outF && c.values.length !== 1)
            ctx.fail(`bias has ${c.values.length} values for ${outF} outputs`);
          bias = Float32Array.from(
            { length: outF },
            (_, k) => beta * c.values[c.values.length === 1 ? 0 : k],
          );
        }
        const module = moduleName(node.name || `linear_${index}`);
        state.set(`${module}.weight`, weight);
        if (bias !== null) state.set(`${module}.bias`, bias);
        const y = emit({
          ...op('linear', [x.name]),
          module,
          inFeatures: inF,
          outFeatures: outF,
          bias: bias !== null,
        });
        y.shape = [1, outF];
        set(y);
        return;
      }
      case 'Concat': {
        const parts = ins.map((_, i) => tensorIn(i, [2, 4]));
        const rank = parts[0].shape.length;
        let axis = ctx.int('axis', 1);
        if (axis < 0) axis += rank;
        if (axis !== 1) ctx.fail(`axis ${ctx.int('axis', 1)} is not supported (only the channel axis 1)`);
        for (const p of parts) {
          if (p.shape.length !== rank || p.shape.some((d, k) => k !== 1 && d !== parts[0].shape[k])) {
            ctx.fail(
              `input shapes ${parts.map((q) => `[${q.shape.join(', ')}]`).join(', ')} differ outside axis 1`,
            );
          }
        }
        const y = emit(
          op(
            'concat',
            parts.map((p) => p.name),
          ),
        );
        y.shape = [...parts[0].shape];
        y.shape[1] = parts.reduce((s, p) => s + p.shape[1], 0);
        set(y);
        return;
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div': {
        const a = valueOf(0);
        const b = valueOf(1);
        if (a === null || b === null) ctx.fail('needs two inputs');
        if (a.kind === 'tensor' && b.kind === 'tensor') {
          const x = tensorIn(0, [2, 4]);
          const z = tensorIn(1, [2, 4]);
          if (opType === 'Sub' || opType === 'Div')
            ctx.fail(`${opType} of two computed tensors is not supported (only by a constant)`);
          if (x.shape.join() !== z.shape.join()) {
            ctx.fail(
              `shapes [${x.shape.join(', ')}] and [${z.shape.join(', ')}] differ (broadcasting two computed tensors is not supported)`,
            );
          }
          const y = emit(op(opType === 'Add' ? 'add' : 'mul', [x.name, z.name]));
          y.shape = [...x.shape];
          set(y);
          return;
        }
        if (a.kind === 'const' && b.kind === 'const')
          ctx.fail('both inputs are constants (constant folding is not supported)');
        const tensorFirst = a.kind === 'tensor';
        const x = tensorIn(tensorFirst ? 0 : 1, [2, 4]);
        const k = (tensorFirst ? b : a) as Extract<Value, { kind: 'const' }>;
        const channels = x.shape[1];
        const dims = [...k.t.dims];
        while (dims.length > 0 && dims[0] === 1 && dims.length > x.shape.length - 1) dims.shift();
        const perChannel =
          k.t.values.length === 1 ||
          (k.t.values.length === channels &&
            (x.shape.length === 2 ? dims.length <= 1 : dims.length === 3 && dims[1] === 1 && dims[2] === 1));
        if (!perChannel || dims.length > x.shape.length) {
          ctx.fail(
            `constant of dims [${k.t.dims.join(', ')}] does not broadcast per channel over [${x.shape.join(', ')}] ` +
              `(supported: a scalar or ${x.shape.length === 4 ? `[${channels}, 1, 1]` : `[${channels}]`})`,
          );
        }
        const c = Array.from(k.t.values);
        let scale: number[] | null = null;
        let shift: number[] | null = null;
        if (opType === 'Add') shift = c;
        else if (opType === 'Mul') scale = c;
        else if (opType === 'Sub') {
          if (tensorFirst) shift = c.map((v) => -v);
          else {
            scale = [-1];
            shift = c;
          }
        } else {
          if (!tensorFirst) ctx.fail('dividing a constant by a computed tensor is not supported');
          scale = c.map((v) => 1 / v);
        }
        const p = producer.get(x.name);
        if (
          scale === null &&
          shift !== null &&
          p?.op === 'linear' &&
          !p.bias &&
          uses.get(ins[tensorFirst ? 0 : 1]) === 1
        ) {
          p.bias = true;
          state.set(
            `${p.module}.bias`,
            Float32Array.from({ length: p.outFeatures }, (_, i) => shift![shift!.length === 1 ? 0 : i]),
          );
          set(x);
          return;
        }
        const y = emit({ ...op('affine', [x.name]), scale, shift });
        y.shape = [...x.shape];
        set(y);
        return;
      }
    }
  });

  if (outputs.length !== 1) {
    throw new OnnxImportError(
      `${source}: expected one graph output (the logits) but found ${outputs.length}`,
    );
  }
  const outName = outputs[0].name ?? '';
  const result = values.get(outName);
  if (
    result === undefined ||
    result.kind !== 'tensor' ||
    result.shape.length !== 2 ||
    result.name === inputName
  ) {
    throw new OnnxImportError(
      `${source}: output '${outName}' must be computed logits [N, classes]` +
        (result?.kind === 'tensor' ? ` (its shape is [${result.shape.join(', ')}])` : ''),
    );
  }
  const numClasses = result.shape[1];

  let classes = options.classes;
  if (classes === undefined && metadata.has(IMPORT_METADATA.classes)) {
    const list = parseJsonList(metadata.get(IMPORT_METADATA.classes)!, IMPORT_METADATA.classes, source);
    if (!list.every((c) => typeof c === 'string'))
      throw new OnnxImportError(`${source}: ${IMPORT_METADATA.classes} must list strings`);
    classes = list as string[];
  }
  classes ??= Array.from({ length: numClasses }, (_, i) => `class${i}`);
  if (classes.length !== numClasses) {
    throw new OnnxImportError(
      `${source}: ${classes.length} class names given but the model has ${numClasses} outputs`,
    );
  }
  const readStats = (given: number[] | undefined, key: string): number[] | null => {
    if (given !== undefined) return numberList(given, key, source, inChannels);
    const raw = metadata.get(key);
    return raw === undefined ? null : numberList(parseJsonList(raw, key, source), key, source, inChannels);
  };
  const mean = readStats(options.mean, IMPORT_METADATA.mean);
  const std = readStats(options.std, IMPORT_METADATA.std);
  if ((mean === null) !== (std === null))
    throw new OnnxImportError(`${source}: give both mean and std, or neither`);

  const spec: GraphSpec = { input: inputName, output: result.name, ops };
  const architecture = { name: 'imported' as const, numClasses, inChannels, graph: spec };
  // A dry run checks that the network builds, takes the weights and computes [1, classes].
  const network = new GraphNetwork(spec);
  network.loadStateDict(completeState(network, state), true);
  network.eval();
  const logits = noGrad(() => scope(() => network.forward(Tensor.zeros([1, h, w, inChannels])).shape));
  if (logits.length !== 2 || logits[1] !== numClasses) {
    throw new OnnxImportError(
      `${source}: the imported network computes [${logits.join(', ')}], not [1, ${numClasses}]`,
    );
  }
  return {
    architecture,
    state: completeState(network, state),
    classes,
    inputSize: [h, w],
    mean,
    std,
    dataset: metadata.get(IMPORT_METADATA.dataset) ?? null,
    opset,
    producer: `${model.producer_name ?? ''} ${model.producer_version ?? ''}`.trim(),
  };
}

/** Every state entry the network has (a conv without bias has none to fill). */
function completeState(network: GraphNetwork, state: Map<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of network.stateDict()) {
    const v = state.get(name);
    if (v === undefined) throw new OnnxImportError(`import: no value for '${name}' (internal error)`);
    if (v.length !== t.size)
      throw new OnnxImportError(`import: '${name}' has ${v.length} values, the network needs ${t.size}`);
    out.set(name, v);
  }
  return out;
}

/** Reads and converts an ONNX file. */
export function importOnnx(bytes: Uint8Array, options: ImportOptions = {}): ImportedModel {
  return convertOnnxModel(decodeOnnxModel(bytes, options.source), options);
}

export function importOnnxFile(path: string, options: ImportOptions = {}): ImportedModel {
  return importOnnx(readFileSync(path), { source: path, ...options });
}

/** The imported network with its weights loaded, in eval mode. */
export function buildImported(imported: ImportedModel): GraphNetwork {
  const network = new GraphNetwork(imported.architecture.graph);
  network.loadStateDict(imported.state, true);
  return network.eval();
}
