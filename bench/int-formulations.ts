/**
 * Candidate integer ONNX formulations of an integer plan (`src/export/int-plan.ts`), measured against
 * the shipped graph (`src/export/onnx-int.ts`) by bench/deploy-formulations.ts. None of them is
 * exported by Strata; they exist to answer whether some exact integer spelling of the plan runs faster
 * in onnxruntime-node's CPU provider than the shipped ConvInteger graph does.
 *
 * - `matmulGraph`: channels-last; every integer convolution is an im2col of the uint8 codes inside
 *   the graph (Pad + Gather with constant indices, or Pad + one Slice per tap + Concat) followed by
 *   MatMulInteger against the constant weight matrix [kh kw C, M] (int8: ONNX Runtime's u8s8 GEMM,
 *   VNNI on this CPU, with the weights prepacked; or uint8 with zero point 128), and the epilogue
 *   Cast, Mul, Add spelled so that ONNX Runtime fuses it into com.microsoft.MatMulIntegerToFloat (the
 *   scale is Mul(one, scale) with `one` computed at run time, so constant folding leaves the pattern
 *   for MatMulIntegerToFloatFusion). The 8-bit offset correction S is one more weight column of ones.
 *   Exact: the accumulation is the same integer sum, and the epilogue is float(acc) * scale + bias.
 * - `dequantizeEpilogue`: the shipped graph with each Cast + Mul after ConvInteger/MatMulInteger
 *   replaced by one DequantizeLinear of the int32 accumulator (per-channel scale, zero point 0):
 *   float(acc - 0) * scale, the same value in one pass fewer.
 */
import type { IntPlan, PlanStep } from '../src/export/int-plan.js';
import {
  encodeOnnxModel,
  OnnxDataType,
  type AttributeValue,
  type OnnxNode,
  type OnnxTensor,
  type TensorValues,
} from '../src/export/onnx-proto.js';

const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });
const int = (value: number): AttributeValue => ({ kind: 'int', value });

type IntStep = Extract<PlanStep, { kind: 'int' }>;

class Builder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private n = 0;

  tensor(dataType: OnnxDataType, dims: readonly number[], values: TensorValues): string {
    const name = `c${this.n++}`;
    this.initializers.push({ name, dataType, dims, values });
    return name;
  }

  i64(values: readonly number[], scalar = false): string {
    return this.tensor(
      OnnxDataType.INT64,
      scalar ? [] : [values.length],
      BigInt64Array.from(values, (v) => BigInt(v)),
    );
  }

  node(opType: string, inputs: string[], attributes?: Record<string, AttributeValue>): string {
    const output = `t${this.n++}`;
    this.nodes.push({ opType, name: `${opType}_${this.n}`, inputs, outputs: [output], attributes });
    return output;
  }
}

interface Value {
  name: string;
  /** [N, H, W, C] (rank 4) or [N, C]. */
  rank: 2 | 4;
  h: number;
  w: number;
  c: number;
}

export interface MatmulOptions {
  im2col: 'gather' | 'slices';
  /** int8 weights (u8s8 GEMM) or uint8 with zero point 128 (u8u8). */
  weights: 'int8' | 'uint8';
  /** Spell the epilogue so that ONNX Runtime fuses it into MatMulIntegerToFloat. */
  fuse: boolean;
}

/** The plan as a channels-last MatMulInteger graph on [N, 3, H, W] float input (see the module comment). */
export function matmulGraph(plan: IntPlan, inputSize: number, options: MatmulOptions): Uint8Array {
  const g = new Builder();
  const values = new Map<string, Value>();
  const input = 'input';
  // A run-time 1.0 (the batch is symbolic, so constant folding cannot evaluate it).
  const one = g.node('Cast', [g.node('Greater', [g.node('Size', [input]), g.i64([0], true)])], {
    to: int(OnnxDataType.FLOAT),
  });
  values.set(plan.input, { name: input, rank: 4, h: inputSize, w: inputSize, c: plan.inChannels });
  let nchwInput = true;
  const get = (name: string): Value => {
    const v = values.get(name);
    if (v === undefined) throw new Error(`matmulGraph: '${name}' used before it is defined`);
    return v;
  };
  const nhwc = (name: string): Value => {
    const v = get(name);
    if (name === plan.input && nchwInput) throw new Error('matmulGraph: only the float stem reads the input');
    return v;
  };
  const channelVector = (values: Float32Array) =>
    g.tensor(OnnxDataType.FLOAT, [values.length], Float32Array.from(values));

  for (const step of plan.steps) {
    switch (step.kind) {
      case 'float': {
        if (step.input !== plan.input || step.conv === null)
          throw new Error('matmulGraph: float steps other than the stem are not covered');
        const c = step.conv;
        const x = get(step.input);
        const w = g.tensor(OnnxDataType.FLOAT, [c.outC, c.inC / c.groups, ...c.kernel], step.weight);
        const b = g.tensor(OnnxDataType.FLOAT, [c.outC], step.bias);
        let y = g.node('Conv', [x.name, w, b], {
          kernel_shape: ints(c.kernel),
          strides: ints(c.stride),
          pads: ints([c.padding[0], c.padding[1], c.padding[0], c.padding[1]]),
          dilations: ints(c.dilation),
          group: int(c.groups),
        });
        if (step.relu) y = g.node('Relu', [y]);
        y = g.node('Transpose', [y], { perm: ints([0, 2, 3, 1]) });
        const [oh, ow] = outSize(x.h, x.w, c);
        values.set(step.output, { name: y, rank: 4, h: oh, w: ow, c: c.outC });
        nchwInput = false;
        break;
      }
      case 'quantize': {
        const x = nhwc(step.input);
        const signed = step.qmin < 0;
        const zp = signed
          ? g.tensor(OnnxDataType.INT8, [], new Int8Array(1))
          : g.tensor(OnnxDataType.UINT8, [], new Uint8Array(1));
        let q = g.node('QuantizeLinear', [
          x.name,
          g.tensor(OnnxDataType.FLOAT, [], Float32Array.of(step.scale)),
          zp,
        ]);
        const [lo, hi] = signed ? [-128, 127] : [0, 255];
        if (step.qmin > lo || step.qmax < hi) {
          const t = signed ? OnnxDataType.INT8 : OnnxDataType.UINT8;
          const make = (v: number) => (signed ? Int8Array.of(v) : Uint8Array.of(v));
          q = g.node('Clip', [q, g.tensor(t, [], make(step.qmin)), g.tensor(t, [], make(step.qmax))]);
        }
        values.set(step.output, { ...x, name: q });
        break;
      }
      case 'int': {
        const x = nhwc(step.input);
        values.set(step.output, intLayer(g, step, x, options, one, get));
        break;
      }
      case 'affine': {
        const x = nhwc(step.input);
        let y = g.node('Mul', [x.name, channelVector(step.scale)]);
        y = g.node('Add', [y, channelVector(step.bias)]);
        if (step.relu) y = g.node('Relu', [y]);
        values.set(step.output, { ...x, name: y });
        break;
      }
      case 'add': {
        const a = nhwc(step.inputs[0]);
        values.set(step.output, { ...a, name: g.node('Add', [a.name, nhwc(step.inputs[1]).name]) });
        break;
      }
      case 'relu': {
        const x = nhwc(step.input);
        const y =
          step.cap === null
            ? g.node('Relu', [x.name])
            : g.node('Clip', [
                x.name,
                g.tensor(OnnxDataType.FLOAT, [], Float32Array.of(0)),
                g.tensor(OnnxDataType.FLOAT, [], Float32Array.of(step.cap)),
              ]);
        values.set(step.output, { ...x, name: y });
        break;
      }
      case 'globalAvgPool': {
        const x = nhwc(step.input);
        const y = g.node('ReduceMean', [x.name, g.i64([1, 2])], { keepdims: int(0) });
        values.set(step.output, { name: y, rank: 2, h: 1, w: 1, c: x.c });
        break;
      }
      case 'flatten': {
        // Channels-last already: ONNX Flatten gives Strata's (H, W, C) order.
        const x = nhwc(step.input);
        const y = x.rank === 2 ? x.name : g.node('Flatten', [x.name], { axis: int(1) });
        values.set(step.output, { name: y, rank: 2, h: 1, w: 1, c: x.h * x.w * x.c });
        break;
      }
      case 'pool':
        throw new Error('matmulGraph: pooling layers are not covered');
    }
  }
  const out = get(plan.output);
  g.nodes.push({ opType: 'Identity', name: 'output', inputs: [out.name], outputs: ['logits'] });
  return encodeOnnxModel({
    irVersion: 10,
    opset: 21,
    producerName: 'strata-bench',
    producerVersion: '0',
    graphName: 'matmul',
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [
      {
        name: input,
        elemType: OnnxDataType.FLOAT,
        shape: ['batch', plan.inChannels, inputSize, inputSize],
      },
    ],
    outputs: [{ name: 'logits', elemType: OnnxDataType.FLOAT, shape: ['batch', plan.numClasses] }],
  });
}

function outSize(h: number, w: number, c: NonNullable<IntStep['conv']>): [number, number] {
  return [
    Math.floor((h + 2 * c.padding[0] - c.dilation[0] * (c.kernel[0] - 1) - 1) / c.stride[0]) + 1,
    Math.floor((w + 2 * c.padding[1] - c.dilation[1] * (c.kernel[1] - 1) - 1) / c.stride[1]) + 1,
  ];
}

function intLayer(
  g: Builder,
  step: IntStep,
  x: Value,
  options: MatmulOptions,
  one: string,
  get: (name: string) => Value,
): Value {
  const c = step.conv;
  const M = step.outFeatures;
  const correction = step.form.corr !== 0;
  const cols = M + (correction ? 1 : 0);
  let a: string;
  let taps: number;
  let oh = 1;
  let ow = 1;
  if (c === null) {
    if (x.rank !== 2) throw new Error('matmulGraph: a Linear needs a flat input');
    a = x.name;
    taps = 1;
  } else {
    if (c.groups !== 1 || c.dilation[0] !== 1 || c.dilation[1] !== 1)
      throw new Error('matmulGraph: grouped or dilated convolutions are not covered');
    [oh, ow] = outSize(x.h, x.w, c);
    const [kh, kw] = c.kernel;
    const [sh, sw] = c.stride;
    const [ph, pw] = c.padding;
    taps = kh * kw;
    const padded =
      ph === 0 && pw === 0
        ? x.name
        : g.node('Pad', [x.name, g.i64([0, ph, pw, 0, 0, ph, pw, 0])], {
            mode: { kind: 'string', value: 'constant' },
          });
    const hp = x.h + 2 * ph;
    const wp = x.w + 2 * pw;
    if (taps === 1) {
      const sliced = g.node('Slice', [
        padded,
        g.i64([0, 0]),
        g.i64([hp, wp]),
        g.i64([1, 2]),
        g.i64([sh, sw]),
      ]);
      a = g.node('Reshape', [sliced, g.i64([-1, x.c])]);
    } else if (options.im2col === 'gather') {
      const index = new BigInt64Array(oh * ow * taps);
      let k = 0;
      for (let y = 0; y < oh; y++)
        for (let z = 0; z < ow; z++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) index[k++] = BigInt((y * sh + i) * wp + (z * sw + j));
      const flat = g.node('Reshape', [padded, g.i64([0, hp * wp, x.c])]);
      const gathered = g.node('Gather', [flat, g.tensor(OnnxDataType.INT64, [index.length], index)], {
        axis: int(1),
      });
      a = g.node('Reshape', [gathered, g.i64([-1, taps * x.c])]);
    } else {
      const parts: string[] = [];
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          parts.push(
            g.node('Slice', [
              padded,
              g.i64([i, j]),
              g.i64([i + sh * (oh - 1) + 1, j + sw * (ow - 1) + 1]),
              g.i64([1, 2]),
              g.i64([sh, sw]),
            ]),
          );
        }
      }
      a = g.node('Reshape', [g.node('Concat', parts, { axis: int(3) }), g.i64([-1, taps * x.c])]);
    }
  }
  // B[(tap, c), o] = k[o, c, tap]; the correction column is all ones.
  const inC = c === null ? step.inFeatures : c.inC;
  const K = taps * inC;
  const k = step.form.k;
  const b = new Int8Array(K * cols);
  for (let o = 0; o < M; o++)
    for (let ci = 0; ci < inC; ci++)
      for (let t = 0; t < taps; t++) b[(t * inC + ci) * cols + o] = k[(o * inC + ci) * taps + t];
  if (correction) for (let r = 0; r < K; r++) b[r * cols + M] = 1;
  const xZero = step.inputSigned
    ? g.tensor(OnnxDataType.INT8, [], new Int8Array(1))
    : g.tensor(OnnxDataType.UINT8, [], new Uint8Array(1));
  const [bName, bZero] =
    options.weights === 'int8'
      ? [g.tensor(OnnxDataType.INT8, [K, cols], b), g.tensor(OnnxDataType.INT8, [], new Int8Array(1))]
      : [
          g.tensor(
            OnnxDataType.UINT8,
            [K, cols],
            Uint8Array.from(b, (v) => v + 128),
          ),
          g.tensor(OnnxDataType.UINT8, [], Uint8Array.of(128)),
        ];
  const acc = g.node('MatMulInteger', [a, bName, xZero, bZero]);
  const scale = new Float32Array(cols);
  const bias = new Float32Array(cols);
  scale.set(step.scale);
  bias.set(step.bias);
  if (correction) scale[M] = 1;
  const scaleConst = g.tensor(OnnxDataType.FLOAT, [cols], scale);
  const scaleValue = options.fuse ? g.node('Mul', [one, scaleConst]) : scaleConst;
  let y = g.node('Mul', [g.node('Cast', [acc], { to: int(OnnxDataType.FLOAT) }), scaleValue]);
  y = g.node('Add', [y, g.tensor(OnnxDataType.FLOAT, [cols], bias)]);
  if (correction) {
    const main = g.node('Slice', [y, g.i64([0]), g.i64([M]), g.i64([1])]);
    const s = g.node('Slice', [y, g.i64([M]), g.i64([M + 1]), g.i64([1])]);
    y = g.node('Add', [main, g.node('Mul', [s, g.tensor(OnnxDataType.FLOAT, [M], step.corrScale)])]);
  }
  if (c !== null) y = g.node('Reshape', [y, g.i64([-1, oh, ow, M])]);
  if (step.residual !== null) y = g.node('Add', [y, get(step.residual).name]);
  if (step.relu) y = g.node('Relu', [y]);
  return c === null ? { name: y, rank: 2, h: 1, w: 1, c: M } : { name: y, rank: 4, h: oh, w: ow, c: M };
}

/**
 * The shipped integer graph (`emitIntGraph`) with each Cast + Mul of an int32 accumulator replaced by
 * one DequantizeLinear (per-channel scale on axis 1, zero point 0).
 */
export function dequantizeEpilogue(
  emitted: { nodes: OnnxNode[]; initializers: OnnxTensor[]; output: string },
  plan: IntPlan,
  inputSize: number,
): Uint8Array {
  const producers = new Map(emitted.nodes.map((n) => [n.outputs[0], n]));
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of emitted.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const initializers = new Map(emitted.initializers.map((t) => [t.name, t]));
  const extra: OnnxTensor[] = [];
  const removed = new Set<OnnxNode>();
  const nodes: OnnxNode[] = [];
  for (const n of emitted.nodes) {
    if (removed.has(n)) continue;
    const source = producers.get(n.inputs[0]);
    const users = consumers.get(n.outputs[0]) ?? [];
    const mul = users[0];
    const scale = mul === undefined ? undefined : initializers.get(mul.inputs[1]);
    if (
      n.opType === 'Cast' &&
      source !== undefined &&
      ['ConvInteger', 'MatMulInteger'].includes(source.opType) &&
      // The 8-bit correction's one-channel sum broadcasts against the scale: left as Cast + Mul.
      !source.name.includes('.sum/') &&
      users.length === 1 &&
      mul.opType === 'Mul' &&
      scale !== undefined
    ) {
      const channels = scale.values.length;
      const s = `dq_scale_${extra.length}`;
      const z = `dq_zero_${extra.length}`;
      extra.push({ name: s, dataType: OnnxDataType.FLOAT, dims: [channels], values: scale.values });
      extra.push({
        name: z,
        dataType: OnnxDataType.INT32,
        dims: [channels],
        values: new Int32Array(channels),
      });
      nodes.push({
        opType: 'DequantizeLinear',
        name: `${n.name}/dq`,
        inputs: [n.inputs[0], s, z],
        outputs: mul.outputs,
        attributes: { axis: int(1) },
      });
      removed.add(mul);
      continue;
    }
    nodes.push(n);
  }
  return encodeEmitted(
    { nodes, initializers: [...emitted.initializers, ...extra], output: emitted.output },
    plan,
    inputSize,
  );
}

/** An emitted integer graph as the bytes of a model on [N, C, size, size] float input. */
export function encodeEmitted(
  emitted: { nodes: OnnxNode[]; initializers: OnnxTensor[]; output: string },
  plan: IntPlan,
  inputSize: number,
): Uint8Array {
  const nodes = [
    ...emitted.nodes,
    { opType: 'Identity', name: 'output', inputs: [emitted.output], outputs: ['logits'] },
  ];
  return encodeOnnxModel({
    irVersion: 10,
    opset: 21,
    producerName: 'strata-bench',
    producerVersion: '0',
    graphName: 'dequantize',
    nodes,
    initializers: emitted.initializers,
    inputs: [
      {
        name: 'input',
        elemType: OnnxDataType.FLOAT,
        shape: ['batch', plan.inChannels, inputSize, inputSize],
      },
    ],
    outputs: [{ name: 'logits', elemType: OnnxDataType.FLOAT, shape: ['batch', plan.numClasses] }],
  });
}
