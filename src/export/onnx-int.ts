/**
 * The integer ONNX graph of an integer plan (`int-plan.ts`): what ONNX Runtime's CPU provider runs
 * on its integer kernels. Layout NCHW, input float32 `input`, output float32 `logits`.
 *
 * - A quantizer is QuantizeLinear with the layer's step and zero point 0 (uint8 after ReLU, int8
 *   for signed inputs), followed by an integer Clip to [qmin, qmax] below 8 bits.
 * - Every quantized convolution is ConvInteger and the classifier MatMulInteger (exact int32; the
 *   weights as uint8 with zero point 128, ONNX Runtime's fast u8u8 path), with the 8-bit offset
 *   correction `corr * S` from one more integer reduction (ConvInteger with a ones kernel, or
 *   ReduceSum), then the float epilogue Cast, Mul, Add (a residual Add) and Relu. Against Strata's
 *   forward: the same logits up to float32 rounding (1e-5 of the largest) at every precision 2..8
 *   (test/export/onnx-int.test.ts).
 * - With `requantize` (exportOnnx's default), a convolution whose output goes only to quantizers (through its folded batch
 *   norm and ReLU: conv1 of a residual block), whose codes hold the offset (k = 2q + 1, up to 7 bits)
 *   and every channel of which has exact requantization parameters (`exact-requantize.ts`: an
 *   integer weight multiplier, an int32 bias and a float32 scale that reproduce the next layer's
 *   floor-quantized codes for every input) is instead one QLinearConv requantizing straight into the
 *   next layer's codes; the other layers stay ConvInteger, so the graph stays exact. On the trained
 *   ResNet-20 every conv1 qualifies at 2 and 3 bits, most at 4, few at 5..7, none at 8.
 * - Weights are 8-bit (uint8 with zero point 128 for ConvInteger/MatMulInteger, int8 for
 *   QLinearConv); at 4 bits and below (opset 21) they are stored as INT4 and widened by a
 *   Cast/Mul/Add/Cast chain of initializers that ONNX Runtime folds into 8-bit constants at load.
 * - `int8Codes` (for measurements, bench/deploy-formulations.ts): unsigned activation codes as int8
 *   (zero point -128 at 8 bits), which takes ONNX Runtime's u8 x s8 ConvInteger path; exact on CPUs
 *   with VNNI, but the 16-bit pair sums of that path can saturate on AVX2 without it, so not the default.
 * - Layers whose input Strata does not quantize (the first convolution, fed the float image) are a
 *   float Conv with the file's exact weight values and the batch norm folded in.
 */
import type { IntPlan, PlanStep } from './int-plan.js';
import { exactRequantization, type ExactRequantization } from './exact-requantize.js';
import {
  OnnxDataType,
  type AttributeValue,
  type OnnxNode,
  type OnnxTensor,
  type TensorValues,
} from './onnx-proto.js';

const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });
const int = (value: number): AttributeValue => ({ kind: 'int', value });

type IntStep = Extract<PlanStep, { kind: 'int' }>;

interface Emitted {
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  /** The ONNX value holding the plan's output. */
  output: string;
}

/**
 * Nodes and initializers. Node names say where they come from (`<layer path>/<op>`); the values
 * between them get short names and identical small constants are stored once, which keeps names
 * out of the file's bytes (about 40 bytes a value otherwise, 15% of a 2-bit ResNet-20 graph).
 */
class Graph {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly used = new Set<string>();
  private readonly constants = new Map<string, string>();
  private values = 0;

  unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  tensor(base: string, dataType: OnnxDataType, dims: readonly number[], values: TensorValues): string {
    const small = values.byteLength <= 16;
    const key = small
      ? `${dataType}:${dims.join('x')}:${Array.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).join(',')}`
      : '';
    if (small && this.constants.has(key)) return this.constants.get(key)!;
    const name = this.unique(small ? `c${this.constants.size}` : base);
    this.initializers.push({ name, dataType, dims, values });
    if (small) this.constants.set(key, name);
    return name;
  }

  float(base: string, dims: readonly number[], values: Float32Array): string {
    return this.tensor(base, OnnxDataType.FLOAT, dims, values);
  }

  node(opType: string, path: string, inputs: string[], attributes?: Record<string, AttributeValue>): string {
    const output = `t${this.values++}`;
    this.nodes.push({
      opType,
      name: this.unique(path === '' ? opType : `${path}/${opType}`),
      inputs,
      outputs: [output],
      attributes,
    });
    return output;
  }
}

/** Packs int4 values two a byte, element 2i in the low nibble (ONNX INT4 raw data). */
export function packInt4(values: Int8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    if (values[i] < -8 || values[i] > 7)
      throw new RangeError(`packInt4: value ${values[i]} at ${i} is not int4`);
    out[i >> 1] |= (values[i] & 15) << ((i & 1) * 4);
  }
  return out;
}

function convAttributes(
  step: IntStep | Extract<PlanStep, { kind: 'float' }>,
): Record<string, AttributeValue> {
  const c = step.conv!;
  return {
    kernel_shape: ints(c.kernel),
    strides: ints(c.stride),
    pads: ints([c.padding[0], c.padding[1], c.padding[0], c.padding[1]]),
    dilations: ints(c.dilation),
    group: int(c.groups),
  };
}

class IntEmitter {
  readonly g = new Graph();
  /** Plan value -> ONNX value. */
  private readonly names = new Map<string, string>();
  private readonly consumers = new Map<string, PlanStep[]>();

  /** Zero point of each plan value that holds activation codes, and whether they are int8. */
  private readonly codes = new Map<string, { int8: boolean; zero: number }>();

  constructor(
    readonly plan: IntPlan,
    readonly opset: number,
    readonly requantize: boolean,
    readonly int8Codes: boolean,
  ) {
    for (const step of plan.steps) {
      for (const input of step.kind === 'add' ? step.inputs : [step.input]) {
        const list = this.consumers.get(input) ?? [];
        list.push(step);
        this.consumers.set(input, list);
      }
    }
    this.names.set(plan.input, plan.input);
  }

  private name(value: string): string {
    const n = this.names.get(value);
    if (n === undefined) throw new Error(`onnx-int: plan value '${value}' used before it is defined`);
    return n;
  }

  emitAll(): Emitted {
    for (const step of this.plan.steps) if (!this.names.has(step.output)) this.emit(step);
    return { nodes: this.g.nodes, initializers: this.g.initializers, output: this.name(this.plan.output) };
  }

  private emit(step: PlanStep): void {
    const g = this.g;
    let out: string;
    switch (step.kind) {
      case 'quantize':
        out = this.quantize(step);
        break;
      case 'int':
        out = this.intLayer(step);
        break;
      case 'float': {
        const w = g.float(`${step.path}.weight`, this.weightDims(step), step.weight);
        const b = g.float(`${step.path}.bias`, [step.outFeatures], step.bias);
        out =
          step.conv === null
            ? g.node('Gemm', step.path, [this.name(step.input), w, b], { transB: int(1) })
            : g.node('Conv', step.path, [this.name(step.input), w, b], convAttributes(step));
        if (step.relu) out = g.node('Relu', step.path, [out]);
        break;
      }
      case 'affine': {
        const dims = this.channelDims(step.input, step.scale.length);
        out = g.node('Mul', step.path, [
          this.name(step.input),
          g.float(`${step.path}.scale`, dims, step.scale),
        ]);
        out = g.node('Add', step.path, [out, g.float(`${step.path}.shift`, dims, step.bias)]);
        if (step.relu) out = g.node('Relu', step.path, [out]);
        break;
      }
      case 'add':
        out = g.node('Add', step.path, [this.name(step.inputs[0]), this.name(step.inputs[1])]);
        break;
      case 'relu':
        out =
          step.cap === null
            ? g.node('Relu', step.path, [this.name(step.input)])
            : g.node('Clip', step.path, [
                this.name(step.input),
                g.float(`${step.path}.min`, [], Float32Array.of(0)),
                g.float(`${step.path}.max`, [], Float32Array.of(step.cap)),
              ]);
        break;
      case 'pool': {
        const kernel = pair(step.options.kernel);
        const stride = pair(step.options.stride ?? step.options.kernel);
        const [ph, pw] = pair(step.options.padding ?? 0);
        // Strata's average pool divides by the cells inside the image: count_include_pad = 0.
        out = g.node(step.op === 'max' ? 'MaxPool' : 'AveragePool', step.path, [this.name(step.input)], {
          kernel_shape: ints(kernel),
          strides: ints(stride),
          pads: ints([ph, pw, ph, pw]),
        });
        break;
      }
      case 'globalAvgPool':
        out = g.node(
          'Flatten',
          step.path,
          [g.node('GlobalAveragePool', step.path, [this.name(step.input)])],
          {
            axis: int(1),
          },
        );
        break;
      case 'flatten': {
        // Strata flattens channels-last (H, W, C order).
        const nhwc = g.node('Transpose', step.path, [this.name(step.input)], { perm: ints([0, 2, 3, 1]) });
        out = g.node('Flatten', step.path, [nhwc], { axis: int(1) });
        break;
      }
    }
    this.names.set(step.output, out);
  }

  /** Rank of a plan value: 4 for images, 2 after pooling/flattening; used for broadcast shapes. */
  private rank4 = new Set<string>();

  private channelDims(value: string, channels: number): number[] {
    return this.isImage(value) ? [1, channels, 1, 1] : [1, channels];
  }

  private isImage(value: string): boolean {
    if (value === this.plan.input) return true;
    if (this.rank4.has(value)) return true;
    const producer = this.plan.steps.find((s) => s.output === value);
    if (producer === undefined) return false;
    let image: boolean;
    switch (producer.kind) {
      case 'int':
      case 'float':
        image = producer.conv !== null;
        break;
      case 'globalAvgPool':
      case 'flatten':
        image = false;
        break;
      case 'add':
        image = this.isImage(producer.inputs[0]);
        break;
      default:
        image = this.isImage(producer.input);
    }
    if (image) this.rank4.add(value);
    return image;
  }

  private weightDims(step: IntStep | Extract<PlanStep, { kind: 'float' }>): number[] {
    const c = step.conv;
    return c === null
      ? [step.outFeatures, step.inFeatures]
      : [c.outC, c.inC / c.groups, c.kernel[0], c.kernel[1]];
  }

  private zeroPoint(path: string, signed: boolean): string {
    return signed
      ? this.g.tensor(`${path}.zero_point`, OnnxDataType.INT8, [], new Int8Array(1))
      : this.g.tensor(`${path}.zero_point`, OnnxDataType.UINT8, [], new Uint8Array(1));
  }

  /** An integer Clip of codes to [lo, hi] when narrower than the 8-bit type. */
  private clipCodes(value: string, path: string, signed: boolean, lo: number, hi: number): string {
    const [tlo, thi] = signed ? [-128, 127] : [0, 255];
    if (lo <= tlo && hi >= thi) return value;
    const t = signed ? OnnxDataType.INT8 : OnnxDataType.UINT8;
    const make = (v: number) => (signed ? Int8Array.of(v) : Uint8Array.of(v));
    return this.g.node('Clip', path, [
      value,
      this.g.tensor(`${path}.code_min`, t, [], make(Math.max(lo, tlo))),
      this.g.tensor(`${path}.code_max`, t, [], make(Math.min(hi, thi))),
    ]);
  }

  private quantize(step: Extract<PlanStep, { kind: 'quantize' }>): string {
    const signed = step.qmin < 0;
    const at = `${step.path}.input`;
    // int8Codes: unsigned codes as int8, shifted by -128 when they need all 8 bits (zero point -128).
    const int8 = signed || this.int8Codes;
    const zero = !signed && this.int8Codes && step.qmax > 127 ? -128 : 0;
    this.codes.set(step.output, { int8, zero });
    const q = this.g.node('QuantizeLinear', at, [
      this.name(step.input),
      this.g.float(`${at}.scale`, [], Float32Array.of(step.scale)),
      this.codeZero(at, int8, zero),
    ]);
    return this.clipCodes(q, at, int8, step.qmin + zero, step.qmax + zero);
  }

  private codeZero(path: string, int8: boolean, zero: number): string {
    return int8
      ? this.g.tensor(`${path}.zero_point`, OnnxDataType.INT8, [], Int8Array.of(zero))
      : this.g.tensor(`${path}.zero_point`, OnnxDataType.UINT8, [], Uint8Array.of(zero));
  }

  /**
   * The int8 weight tensor of a layer, k' = sign[c] k: INT4 with a folded widening chain at 4 bits
   * and below (opset 21), int8 otherwise. `transposed` gives MatMulInteger's [in, out].
   */
  private weights(step: IntStep, sign: Int8Array, transposed: boolean, unsigned: boolean): string {
    const g = this.g;
    const k = step.form.k;
    const outC = step.outFeatures;
    const per = k.length / outC;
    const dims = this.weightDims(step);
    const order = (values: Int8Array): Int8Array => {
      if (!transposed) return values;
      const t = new Int8Array(values.length);
      for (let o = 0; o < outC; o++) for (let i = 0; i < per; i++) t[i * outC + o] = values[o * per + i];
      return t;
    };
    const finalDims = transposed ? [step.inFeatures, outC] : dims;
    let lo = 0;
    let hi = 0;
    for (const q of step.codes) {
      if (q < lo) lo = q;
      if (q > hi) hi = q;
    }
    const base = hi > 7 ? hi - 7 : 0;
    if (this.opset >= 21 && step.bits <= 4 && hi - base <= 7 && lo - base >= -8) {
      // k = divisor (q - base) + c0 for one constant c0 (both int8 forms are affine in q).
      const stored = new Int8Array(step.codes.length);
      for (let i = 0; i < stored.length; i++) stored[i] = step.codes[i] - base;
      const c0 = k.length === 0 ? 0 : k[0] - step.form.divisor * stored[0];
      const uniform = sign.every((v) => v === sign[0]);
      const vecDims = uniform ? [] : transposed ? [1, outC] : [outC, ...dims.slice(1).map(() => 1)];
      const mul = new Int32Array(uniform ? 1 : outC);
      const add = new Int32Array(uniform ? 1 : outC);
      for (let o = 0; o < mul.length; o++) {
        mul[o] = sign[o] * step.form.divisor;
        add[o] = sign[o] * c0 + (unsigned ? 128 : 0);
      }
      const at = `${step.path}.weight`;
      const packed = g.tensor(`${at}_int4`, OnnxDataType.INT4, finalDims, packInt4(order(stored)));
      const wide = g.node('Cast', at, [packed], { to: int(OnnxDataType.INT32) });
      const scaled = g.node('Mul', at, [wide, g.tensor(`${at}.mul`, OnnxDataType.INT32, vecDims, mul)]);
      const shifted = g.node('Add', at, [scaled, g.tensor(`${at}.add`, OnnxDataType.INT32, vecDims, add)]);
      return g.node('Cast', at, [shifted], { to: int(unsigned ? OnnxDataType.UINT8 : OnnxDataType.INT8) });
    }
    const signed = new Int8Array(k.length);
    for (let i = 0; i < k.length; i++) signed[i] = sign[Math.floor(i / per)] * k[i];
    const ordered = order(signed);
    if (unsigned) {
      return g.tensor(
        `${step.path}.weight_codes`,
        OnnxDataType.UINT8,
        finalDims,
        Uint8Array.from(ordered, (v) => v + 128),
      );
    }
    return g.tensor(`${step.path}.weight_codes`, OnnxDataType.INT8, finalDims, ordered);
  }

  /**
   * Exact QLinearConv parameters (`exact-requantize.ts`) when this layer can requantize straight into
   * its consumers' codes: a convolution without residual or offset correction whose output goes only
   * to quantizers of one scale, reading unsigned codes of at most 7 bits (so that no u8 x s8 pair
   * product sum can saturate 16 bits on CPUs without VNNI), every channel of which has exact
   * parameters; null otherwise.
   */
  private fusedTarget(step: IntStep): {
    quantizers: Extract<PlanStep, { kind: 'quantize' }>[];
    exact: ExactRequantization;
  } | null {
    if (!this.requantize || step.conv === null || step.form.corr !== 0 || step.residual !== null) return null;
    if (step.output === this.plan.output || step.inputSigned) return null;
    const source = this.plan.steps.find((s) => s.output === step.input);
    if (source === undefined || source.kind !== 'quantize' || source.qmin !== 0 || source.qmax > 127)
      return null;
    const consumers = this.consumers.get(step.output) ?? [];
    if (consumers.length === 0 || consumers.some((c) => c.kind !== 'quantize')) return null;
    const quantizers = consumers as Extract<PlanStep, { kind: 'quantize' }>[];
    const first = quantizers[0];
    if (quantizers.some((q) => q.scale !== first.scale || q.qmin !== first.qmin || q.qmax !== first.qmax)) {
      return null;
    }
    const exact = exactRequantization(step, first, source.qmax);
    return exact === null ? null : { quantizers, exact };
  }

  private intLayer(step: IntStep): string {
    const g = this.g;
    const input = this.name(step.input);
    const outC = step.outFeatures;
    const fused = this.fusedTarget(step);
    if (fused !== null) {
      const q = fused.quantizers[0];
      const one = g.float(`${step.path}.unit_scale`, [], Float32Array.of(1));
      const out = g.node(
        'QLinearConv',
        step.path,
        [
          input,
          one,
          this.zeroPoint(`${step.path}.x`, false),
          this.weights(step, fused.exact.weightMultiplier, false, false),
          g.float(`${step.path}.w_scale`, [outC], fused.exact.multiplier),
          g.tensor(`${step.path}.w_zero_point`, OnnxDataType.INT8, [], new Int8Array(1)),
          one,
          this.zeroPoint(`${step.path}.y`, false),
          g.tensor(`${step.path}.bias_int32`, OnnxDataType.INT32, [outC], fused.exact.bias),
        ],
        convAttributes(step),
      );
      const codes = this.clipCodes(out, step.path, false, 0, q.qmax);
      for (const quantizer of fused.quantizers) {
        this.names.set(quantizer.output, codes);
        this.codes.set(quantizer.output, { int8: false, zero: 0 });
      }
      return out;
    }
    const ones = new Int8Array(outC).fill(1);
    // uint8 weights with zero point 128: ONNX Runtime's u8u8 integer GEMM is several times faster
    // than its u8s8 path for ConvInteger (measured 44 against 450 ms for a 32-channel layer).
    const codes = this.codes.get(step.input) ?? { int8: step.inputSigned, zero: 0 };
    const xZero = this.codeZero(`${step.path}.x`, codes.int8, codes.zero);
    const wZero = g.tensor(`${step.path}.w_zero_point`, OnnxDataType.UINT8, [], Uint8Array.of(128));
    let acc: string;
    let sum: string | null = null;
    const image = step.conv !== null;
    if (image) {
      acc = g.node(
        'ConvInteger',
        step.path,
        [input, this.weights(step, ones, false, true), xZero, wZero],
        convAttributes(step),
      );
      if (step.form.corr !== 0) {
        const c = step.conv!;
        const groups = c.groups;
        const kernel = new Uint8Array(groups * (c.inC / groups) * c.kernel[0] * c.kernel[1]).fill(1);
        const onesW = g.tensor(
          `${step.path}.ones`,
          OnnxDataType.UINT8,
          [groups, c.inC / groups, ...c.kernel],
          kernel,
        );
        sum = g.node('ConvInteger', `${step.path}.sum`, [input, onesW, xZero], convAttributes(step));
      }
    } else {
      acc = g.node('MatMulInteger', step.path, [input, this.weights(step, ones, true, true), xZero, wZero]);
      if (step.form.corr !== 0) {
        let wide = g.node('Cast', `${step.path}.sum`, [input], { to: int(OnnxDataType.INT32) });
        if (codes.zero !== 0) {
          const zero = g.tensor(`${step.path}.sum_zero`, OnnxDataType.INT32, [], Int32Array.of(codes.zero));
          wide = g.node('Sub', `${step.path}.sum`, [wide, zero]);
        }
        sum = g.node('ReduceSum', `${step.path}.sum`, [
          wide,
          g.tensor(`${step.path}.sum_axes`, OnnxDataType.INT64, [1], BigInt64Array.of(1n)),
        ]);
      }
    }
    const dims = image ? [1, outC, 1, 1] : [1, outC];
    let y = g.node('Cast', step.path, [acc], { to: int(OnnxDataType.FLOAT) });
    y = g.node('Mul', step.path, [y, g.float(`${step.path}.acc_scale`, dims, step.scale)]);
    if (sum !== null) {
      const s = g.node('Cast', `${step.path}.sum`, [sum], { to: int(OnnxDataType.FLOAT) });
      y = g.node('Add', step.path, [
        y,
        g.node('Mul', `${step.path}.sum`, [s, g.float(`${step.path}.sum_scale`, dims, step.corrScale)]),
      ]);
    }
    y = g.node('Add', step.path, [y, g.float(`${step.path}.bias`, dims, step.bias)]);
    if (step.residual !== null) y = g.node('Add', `${step.path}.residual`, [y, this.name(step.residual)]);
    return step.relu ? g.node('Relu', step.path, [y]) : y;
  }
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

/** The nodes and initializers of an integer plan's ONNX graph (see the module comment). */
export function emitIntGraph(plan: IntPlan, opset: number, requantize = false, int8Codes = false): Emitted {
  if (opset < 13)
    throw new RangeError(`Expected opset in [13, 21] for an integer graph but received ${opset}`);
  if (requantize && int8Codes) throw new RangeError('emitIntGraph: requantize takes uint8 activation codes');
  return new IntEmitter(plan, opset, requantize, int8Codes).emitAll();
}
