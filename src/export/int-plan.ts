/**
 * The integer inference plan of a quantized model at one precision: the network as a list of steps
 * in which every layer whose input Strata quantizes is an integer layer (integer activation codes
 * times the file's integer weight codes, accumulated exactly in int32) followed by one per-channel
 * float epilogue into which the layer's own batch norm (and ReLU) are folded. The ONNX exporter
 * (`onnx-int.ts`) and the native engine (`runtime/int-engine.ts`) both consume this plan, so the two
 * deployments compute the same thing by construction.
 *
 * The arithmetic. A quantized layer at b bits has weight codes q (the file's cascade codes) with
 * per-output-channel step s_b[c] and reconstruction offset o_r (floor rule: the mid-rise 1/2), so its
 * weights are w = (q + o_r) s_b[c]; its input is a = clip(floor(x / s_a + 1/2), qmin, qmax), an
 * integer, times s_a. Then, exactly,
 *
 *     conv(x^, w)[c] = s_a s_b[c] (sum a q + o_r S),   S = sum over the receptive field of a,
 *
 * and `int8Form` writes `sum a (q + o_r)` with int8 codes k: either k = m q + m o_r (m the smallest
 * power of two making m o_r an integer; for the floor rule k = 2q + 1, which fits int8 up to 7 bits)
 * with no correction, or, when that does not fit (8 bits), k = q (shifted into int8 if needed) plus
 * the correction `corr * S`, where S is one extra integer reduction per output pixel (a ones kernel).
 * A batch norm after the layer is an affine map per channel and folds into the epilogue:
 *
 *     y[c] = scale[c] acc[c] + corrScale[c] S + bias[c]   (+ a residual, then ReLU when folded),
 *
 * where acc = sum a k. Nothing in it is approximate except float32 rounding of the epilogue.
 *
 * Models: Strata's built-in architectures and imported graphs (GraphNetwork), whose batch norms, ReLUs
 * and residual sums fold the same way unless another op reads the value they would change; an
 * imported graph with an element-wise product or a concatenation has no plan (TypeError), and the
 * callers fall back to float arithmetic with a note.
 */
import { BatchNorm2d } from '../nn/batch-norm.js';
import { Conv2d } from '../nn/conv.js';
import { AvgPool2d, Flatten, GlobalAvgPool, MaxPool2d, ReLU, ReLU6, Sequential } from '../nn/layers.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import {
  BasicBlock,
  CifarResNet,
  GraphNetwork,
  InvertedResidual,
  MobileNetV2,
  ResNet18,
  SmallCNN,
} from '../nn/models/index.js';
import type { Pool2dOptions } from '../engine/ops.js';
import { getBackend } from '../engine/backend-registry.js';
import { reconstructionOffset } from '../quant/cascade.js';
import { QuantizedLayer, qmaxOf } from '../quant/quantized-layer.js';
import { SwitchableBatchNorm2d } from '../quant/switchable-batch-norm.js';

/** Geometry of a convolution step (channels and kernel as in the module). */
export interface ConvSpec {
  inC: number;
  outC: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** The int8 spelling of `sum a (q + offset)` = (sum a k + corr S) / divisor. */
export interface Int8Form {
  k: Int8Array;
  /** 0 when k already holds the offset. */
  corr: number;
  divisor: number;
}

export type PlanStep =
  | {
      kind: 'quantize';
      input: string;
      output: string;
      scale: number;
      qmin: number;
      qmax: number;
      path: string;
    }
  | {
      kind: 'int';
      path: string;
      input: string;
      output: string;
      /** Null for a Linear. */
      conv: ConvSpec | null;
      inFeatures: number;
      outFeatures: number;
      /** The file's b-bit codes q, [out, in/groups, kH, kW] or [out, in]. */
      codes: Int32Array;
      /** The codes' precision (the layer's fixed precision for a fixed layer). */
      bits: number;
      reconstructionOffset: number;
      form: Int8Form;
      inputSigned: boolean;
      inputScale: number;
      /** Epilogue: y = scale acc + corrScale S + bias (+ residual), then ReLU when `relu`. */
      scale: Float32Array;
      corrScale: Float32Array;
      bias: Float32Array;
      /** A value of the output's shape added before the ReLU (a residual block's shortcut), or null. */
      residual: string | null;
      relu: boolean;
    }
  | {
      kind: 'float';
      path: string;
      input: string;
      output: string;
      conv: ConvSpec | null;
      inFeatures: number;
      outFeatures: number;
      /** Weights with the following batch norm folded in. */
      weight: Float32Array;
      bias: Float32Array;
      relu: boolean;
    }
  | {
      kind: 'affine';
      path: string;
      input: string;
      output: string;
      scale: Float32Array;
      bias: Float32Array;
      relu: boolean;
    }
  | { kind: 'add'; path: string; inputs: [string, string]; output: string }
  | { kind: 'relu'; path: string; input: string; output: string; cap: number | null }
  | { kind: 'pool'; op: 'max' | 'avg'; path: string; input: string; output: string; options: Pool2dOptions }
  | { kind: 'globalAvgPool'; path: string; input: string; output: string }
  | { kind: 'flatten'; path: string; input: string; output: string };

export interface IntPlan {
  bits: number;
  inChannels: number;
  numClasses: number;
  input: string;
  output: string;
  steps: PlanStep[];
}

/**
 * `sum a (q + offset)` with int8 codes. The first form keeps k in [-127, 127], so that negating a
 * channel (a negative folded batch-norm scale in QLinearConv) stays in range.
 */
export function int8Form(codes: Int32Array, offset: number): Int8Form {
  let lo = 0;
  let hi = 0;
  for (const q of codes) {
    if (q < lo) lo = q;
    if (q > hi) hi = q;
  }
  let m = 1;
  while (!Number.isInteger(offset * m)) m *= 2;
  const shift = m * offset;
  if (m * lo + shift >= -127 && m * hi + shift <= 127) {
    const k = new Int8Array(codes.length);
    for (let i = 0; i < codes.length; i++) k[i] = m * codes[i] + shift;
    return { k, corr: 0, divisor: m };
  }
  const base = hi > 127 ? hi - 127 : lo < -128 ? lo + 128 : 0;
  if (hi - base > 127 || lo - base < -128) {
    throw new RangeError(`int8Form: codes span [${lo}, ${hi}], more than 8 bits`);
  }
  const k = new Int8Array(codes.length);
  for (let i = 0; i < codes.length; i++) k[i] = codes[i] - base;
  return { k, corr: offset + base, divisor: 1 };
}

/** The b-bit codes and per-channel steps a quantized layer computes with (from its file when deployed). */
export function layerCodes(
  layer: QuantizedLayer,
  bits: number,
): { codes: Int32Array; steps: Float32Array; offset: number } {
  const deployed = layer.deployedCodes;
  if (deployed !== null) {
    if (deployed.bits !== bits) {
      throw new RangeError(
        `layer holds its ${deployed.bits}-bit codes from the model file, not ${bits}-bit ones`,
      );
    }
    return { codes: deployed.codes, steps: deployed.steps, offset: deployed.offset };
  }
  if (layer.deployedWeight !== null) {
    // Rebuilt from a file that holds this layer's values but not its step sizes (a fixed layer packed
    // before they were recorded): its codes are not in the file, and guessing them is not exact.
    throw new RangeError(
      'the model file does not record the step sizes of a fixed layer, so its integer codes are unknown; ' +
        're-pack the checkpoint with this version of strata, or run with float arithmetic (--float)',
    );
  }
  const w = layer.weight.data;
  const channels = layer.weight.shape[0];
  const top = layer.weightScale!.data;
  const codes = new Int32Array(w.length);
  getBackend().fakeQuantWeightForward(
    w,
    channels,
    top,
    layer.topBits,
    bits,
    layer.config.rule,
    new Float32Array(w.length),
    codes,
  );
  const steps = new Float32Array(channels);
  for (let c = 0; c < channels; c++) steps[c] = top[c] * 2 ** (layer.topBits - bits);
  return { codes, steps, offset: reconstructionOffset(layer.topBits, bits, layer.config.rule) };
}

interface Value {
  name: string;
  rank: 2 | 4;
  channels: number;
}

type Foldable = Extract<PlanStep, { kind: 'int' | 'float' | 'affine' }>;

const CHAIN_MODELS: ReadonlySet<unknown> = new Set([SmallCNN, CifarResNet, ResNet18, MobileNetV2]);

function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

class Planner {
  readonly steps: PlanStep[] = [];
  private counter = 0;
  /** The last folding target whose output nothing has read yet. */
  private pending: Foldable | null = null;
  /**
   * Values that more than one operation reads (in an imported graph): a batch norm, ReLU or residual
   * sum applied to one of them cannot be folded into the step that made it, since the other readers
   * need it as it is.
   */
  private readonly shared = new Set<string>();

  private foldable(p: Foldable | null, x: Value): p is Foldable {
    return p !== null && p.output === x.name && !this.shared.has(x.name);
  }

  constructor(readonly bits: number) {}

  fresh(): string {
    return `v${this.counter++}`;
  }

  private push(step: PlanStep): void {
    const inputs = step.kind === 'add' ? step.inputs : [step.input];
    if (this.pending !== null && inputs.includes(this.pending.output)) this.pending = null;
    this.steps.push(step);
  }

  emit(module: Module, path: string, x: Value): Value {
    const kind = module.constructor;
    if (kind === Sequential || CHAIN_MODELS.has(kind)) {
      let y = x;
      for (const [name, child] of module.namedChildren()) y = this.emit(child, join(path, name), y);
      return y;
    }
    if (kind === BasicBlock) {
      const child = new Map(module.namedChildren());
      let y = x;
      for (const name of ['conv1', 'bn1', 'conv2', 'bn2'])
        y = this.emit(child.get(name)!, join(path, name), y);
      const shortcut = child.get('shortcut');
      const s = shortcut === undefined ? x : this.emit(shortcut, join(path, 'shortcut'), x);
      return this.relu(this.add(y, s, path), path, null);
    }
    if (kind === InvertedResidual) {
      const block = module as InvertedResidual;
      const y = this.emit(block.body, join(path, 'body'), x);
      return block.residual ? this.add(x, y, path) : y;
    }
    if (kind === GraphNetwork) return this.graph(module as GraphNetwork, path, x);
    if (kind === QuantizedLayer) return this.quantized(module as QuantizedLayer, path, x);
    if (kind === Conv2d || kind === Linear) return this.floatLayer(module as Conv2d | Linear, path, x);
    if (kind === SwitchableBatchNorm2d)
      return this.batchNorm((module as SwitchableBatchNorm2d).at(this.bits), path, x);
    if (kind === BatchNorm2d) return this.batchNorm(module as BatchNorm2d, path, x);
    if (kind === ReLU) return this.relu(x, path, null);
    if (kind === ReLU6) return this.relu(x, path, 6);
    if (kind === MaxPool2d || kind === AvgPool2d) {
      expectRank(x, 4, path);
      const output = this.fresh();
      const options = (module as MaxPool2d | AvgPool2d).options;
      this.push({
        kind: 'pool',
        op: kind === MaxPool2d ? 'max' : 'avg',
        path,
        input: x.name,
        output,
        options,
      });
      return { ...x, name: output };
    }
    if (kind === GlobalAvgPool) {
      expectRank(x, 4, path);
      const output = this.fresh();
      this.push({ kind: 'globalAvgPool', path, input: x.name, output });
      return { name: output, rank: 2, channels: x.channels };
    }
    if (kind === Flatten) {
      if (x.rank === 2) return x;
      const output = this.fresh();
      this.push({ kind: 'flatten', path, input: x.name, output });
      return { name: output, rank: 2, channels: Number.NaN };
    }
    throw new TypeError(
      `intPlan: cannot plan module '${path || '(root)'}' of type ${kind.name}; supported: Sequential, Conv2d, ` +
        'Linear, BatchNorm2d, ReLU, ReLU6, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, BasicBlock, InvertedResidual, ' +
        'QuantizedLayer, SwitchableBatchNorm2d and the models SmallCNN, CifarResNet, ResNet18, MobileNetV2, GraphNetwork',
    );
  }

  private add(a: Value, b: Value, path: string): Value {
    // A residual sum folds into the epilogue of the integer layer that made one of its operands.
    const p = this.pending;
    if (p !== null && p.kind === 'int' && !p.relu && p.residual === null && a.name !== b.name) {
      if ((p.output === a.name || p.output === b.name) && !this.shared.has(p.output)) {
        p.residual = p.output === a.name ? b.name : a.name;
        return p.output === a.name ? a : b;
      }
    }
    const output = this.fresh();
    this.push({ kind: 'add', path, inputs: [a.name, b.name], output });
    return { ...a, name: output };
  }

  private relu(x: Value, path: string, cap: number | null): Value {
    const p = this.pending;
    if (cap === null && this.foldable(p, x) && !p.relu) {
      p.relu = true;
      return x;
    }
    const output = this.fresh();
    this.push({ kind: 'relu', path, input: x.name, output, cap });
    return { ...x, name: output };
  }

  private batchNorm(bn: BatchNorm2d, path: string, x: Value): Value {
    if (Number.isFinite(x.channels) && x.channels !== bn.numFeatures) {
      throw new RangeError(
        `intPlan: '${path}' normalises ${bn.numFeatures} channels but receives ${x.channels}`,
      );
    }
    const a = new Float32Array(bn.numFeatures);
    const shift = new Float32Array(bn.numFeatures);
    for (let c = 0; c < bn.numFeatures; c++) {
      a[c] = bn.weight.data[c] / Math.sqrt(bn.runningVar.data[c] + bn.eps);
      shift[c] = bn.bias.data[c] - bn.runningMean.data[c] * a[c];
    }
    const y = this.affine(a, shift, path, x);
    return bn.relu ? this.relu(y, path, null) : y;
  }

  /** x -> a x + shift per channel: folded into the step that made x when nothing else reads x. */
  private affine(a: Float32Array, shift: Float32Array, path: string, x: Value): Value {
    const p = this.pending;
    let y: Value;
    if (
      this.foldable(p, x) &&
      !p.relu &&
      a.length === (p.kind === 'affine' ? p.scale.length : p.outFeatures)
    ) {
      foldAffine(p, a, shift);
      y = x;
    } else {
      const output = this.fresh();
      const step: Foldable = {
        kind: 'affine',
        path,
        input: x.name,
        output,
        scale: a,
        bias: shift,
        relu: false,
      };
      this.push(step);
      this.pending = step;
      y = { ...x, name: output };
    }
    return y;
  }

  /**
   * An imported network (GraphNetwork): its ops in order, layers through emit, so a quantized layer
   * becomes an integer step and batch norms, ReLUs and residual sums fold into it as in the built-in
   * models, except where another op reads the value they would change. Element-wise products and
   * concatenations have no integer-plan step and are refused (the float graph covers them).
   */
  private graph(net: GraphNetwork, path: string, x: Value): Value {
    const readers = new Map<string, number>([[net.spec.output, 1]]);
    for (const op of net.spec.ops) for (const i of op.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
    const values = new Map<string, Value>();
    const set = (name: string, v: Value) => {
      values.set(name, v);
      if ((readers.get(name) ?? 0) > 1) this.shared.add(v.name);
    };
    set(net.spec.input, x);
    for (const op of net.spec.ops) {
      const [a, b] = op.inputs.map((name) => values.get(name)!);
      const at = join(path, 'module' in op ? op.module : `${op.op}(${op.source})`);
      let y: Value;
      switch (op.op) {
        case 'conv':
        case 'linear':
        case 'batchnorm':
          y = this.emit(net.layer(op.module), at, a);
          break;
        case 'maxpool':
        case 'avgpool': {
          expectRank(a, 4, at);
          const output = this.fresh();
          this.push({
            kind: 'pool',
            op: op.op === 'maxpool' ? 'max' : 'avg',
            path: at,
            input: a.name,
            output,
            options: { kernel: op.kernel, stride: op.stride, padding: op.padding },
          });
          y = { ...a, name: output };
          break;
        }
        case 'relu':
          y = this.relu(a, at, null);
          break;
        case 'relu6':
          y = this.relu(a, at, 6);
          break;
        case 'add':
          y = this.add(a, b, at);
          break;
        case 'affine': {
          // One value for all channels is spread over the channels when they are known.
          const spread = (v: number[] | null, fill: number): Float32Array => {
            if (v === null) return new Float32Array(Number.isFinite(a.channels) ? a.channels : 1).fill(fill);
            if (v.length === 1 && Number.isFinite(a.channels)) return new Float32Array(a.channels).fill(v[0]);
            return Float32Array.from(v);
          };
          y = this.affine(spread(op.scale, 1), spread(op.shift, 0), at, a);
          break;
        }
        case 'globalavgpool': {
          // [N, 1, 1, C] in the graph; the plan's [N, C] is the same values, which a flatten keeps.
          expectRank(a, 4, at);
          const output = this.fresh();
          this.push({ kind: 'globalAvgPool', path: at, input: a.name, output });
          y = { name: output, rank: 2, channels: a.channels };
          break;
        }
        case 'flatten':
          if (a.rank === 2) y = a;
          else {
            const output = this.fresh();
            this.push({ kind: 'flatten', path: at, input: a.name, output });
            y = { name: output, rank: 2, channels: Number.NaN };
          }
          break;
        case 'mul':
        case 'concat':
          throw new TypeError(
            `intPlan: op '${op.op}' (${op.source}) of an imported graph has no integer-plan step; ` +
              'supported: conv, linear, batchnorm, maxpool, avgpool, relu, relu6, add, affine, globalavgpool, flatten',
          );
      }
      set(op.output, y);
    }
    return values.get(net.spec.output)!;
  }

  private checkInput(inner: Conv2d | Linear, path: string, x: Value): void {
    const isConv = inner instanceof Conv2d;
    expectRank(x, isConv ? 4 : 2, path);
    const inChannels = isConv ? inner.inChannels : inner.inFeatures;
    if (Number.isFinite(x.channels) && x.channels !== inChannels) {
      throw new RangeError(
        `intPlan: '${path}' expects ${inChannels} input channels but receives ${x.channels}`,
      );
    }
  }

  private floatLayer(inner: Conv2d | Linear, path: string, x: Value, weight?: Float32Array): Value {
    this.checkInput(inner, path, x);
    const outC = inner.weight.shape[0];
    const output = this.fresh();
    const step: Foldable = {
      kind: 'float',
      path,
      input: x.name,
      output,
      conv: inner instanceof Conv2d ? convSpec(inner) : null,
      inFeatures: inner instanceof Conv2d ? inner.inChannels : inner.inFeatures,
      outFeatures: outC,
      weight: Float32Array.from(weight ?? inner.weight.data),
      bias: inner.bias === null ? new Float32Array(outC) : Float32Array.from(inner.bias.data),
      relu: false,
    };
    this.push(step);
    this.pending = step;
    return { name: output, rank: inner instanceof Conv2d ? 4 : 2, channels: outC };
  }

  private quantized(layer: QuantizedLayer, path: string, x: Value): Value {
    const inner = layer.inner;
    const bits = layer.effectiveBits(this.bits);
    if (bits === null) return this.floatLayer(inner, path, x);
    if (!layer.config.quantizeInput) {
      // The first layer sees the float image: it computes in float with the file's exact weight values.
      if (layer.deployedWeight !== null) return this.floatLayer(inner, path, x, layer.deployedWeight.data);
      const { codes, steps, offset } = layerCodes(layer, bits);
      const per = codes.length / steps.length;
      const w = new Float32Array(codes.length);
      for (let i = 0; i < w.length; i++) w[i] = (codes[i] + offset) * steps[Math.floor(i / per)];
      return this.floatLayer(inner, path, x, w);
    }
    let held: ReturnType<typeof layerCodes>;
    try {
      held = layerCodes(layer, bits);
    } catch (e) {
      throw new RangeError(`intPlan: layer '${path}': ${(e as Error).message}`);
    }
    const { codes, steps, offset } = held;
    this.checkInput(inner, path, x);
    const scale = layer.activationScale(bits);
    const state = layer.namedBuffers().find(([name]) => name === 'actState')?.[1];
    if (scale === null || state === undefined || state.data[1] !== 1) {
      throw new Error(
        `intPlan: layer '${path}' has no calibrated ${bits}-bit activation scale; run the model on data at ${bits} bits first`,
      );
    }
    if (bits > 8)
      throw new RangeError(`intPlan: layer '${path}' runs at ${bits} bits; integer plans hold 2..8`);
    const signed = layer.inputSigned;
    const qmax = qmaxOf(bits, signed);
    const codesName = this.fresh();
    this.push({
      kind: 'quantize',
      path,
      input: x.name,
      output: codesName,
      scale,
      qmin: signed ? -qmax - 1 : 0,
      qmax,
    });
    const form = int8Form(codes, offset);
    const outC = steps.length;
    const stepScale = new Float32Array(outC);
    const corrScale = new Float32Array(outC);
    for (let c = 0; c < outC; c++) {
      stepScale[c] = (scale * steps[c]) / form.divisor;
      corrScale[c] = stepScale[c] * form.corr;
    }
    const output = this.fresh();
    const step: Foldable = {
      kind: 'int',
      path,
      input: codesName,
      output,
      conv: inner instanceof Conv2d ? convSpec(inner) : null,
      inFeatures: inner instanceof Conv2d ? inner.inChannels : inner.inFeatures,
      outFeatures: outC,
      codes,
      bits,
      reconstructionOffset: offset,
      form,
      inputSigned: signed,
      inputScale: scale,
      scale: stepScale,
      corrScale,
      bias: inner.bias === null ? new Float32Array(outC) : Float32Array.from(inner.bias.data),
      residual: null,
      relu: false,
    };
    if (step.conv !== null && step.conv.groups > 1 && form.corr !== 0 && step.conv.groups !== outC) {
      throw new RangeError(
        `intPlan: layer '${path}' needs the offset correction with groups=${step.conv.groups}; supported: 1 or depthwise`,
      );
    }
    this.push(step);
    this.pending = step;
    return { name: output, rank: inner instanceof Conv2d ? 4 : 2, channels: outC };
  }
}

/** y -> a y + shift per channel, applied to a step's epilogue (or float weights). */
function foldAffine(step: Foldable, a: Float32Array, shift: Float32Array): void {
  const channels = a.length;
  if (step.kind === 'float') {
    const per = step.weight.length / channels;
    for (let c = 0; c < channels; c++) {
      for (let i = c * per; i < (c + 1) * per; i++) step.weight[i] *= a[c];
      step.bias[c] = step.bias[c] * a[c] + shift[c];
    }
    return;
  }
  for (let c = 0; c < channels; c++) {
    step.scale[c] *= a[c];
    step.bias[c] = step.bias[c] * a[c] + shift[c];
    if (step.kind === 'int') step.corrScale[c] *= a[c];
  }
}

function convSpec(conv: Conv2d): ConvSpec {
  return {
    inC: conv.inChannels,
    outC: conv.outChannels,
    kernel: [...conv.kernelSize],
    stride: [...conv.stride],
    padding: [...conv.padding],
    dilation: [...conv.dilation],
    groups: conv.groups,
  };
}

function expectRank(x: Value, rank: 2 | 4, path: string): void {
  if (x.rank !== rank) {
    throw new RangeError(`intPlan: '${path}' needs a rank-${rank} input but receives rank ${x.rank}`);
  }
}

/** The channels of the image a model reads: its first Conv2d's input (the exporters name themselves as `who`). */
export function firstInChannels(model: Module, who = 'intPlan'): number {
  for (const [, m] of model.namedModules()) {
    const inner = m instanceof QuantizedLayer ? m.inner : m;
    if (inner instanceof Conv2d) return inner.inChannels;
    if (inner instanceof Linear) break;
  }
  throw new TypeError(`${who}: the model must start with a Conv2d (image input)`);
}

/** The integer plan of a quantized, calibrated model at `bits` (see the module comment). */
export function intPlan(model: Module, bits: number): IntPlan {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) {
    throw new RangeError(`Expected bits in [2, 8] for an integer plan but received ${bits}`);
  }
  const planner = new Planner(bits);
  const inChannels = firstInChannels(model);
  const input = 'input';
  const out = planner.emit(model, '', { name: input, rank: 4, channels: inChannels });
  if (out.rank !== 2)
    throw new RangeError(`intPlan: the model must end in [N, classes] but ends in rank ${out.rank}`);
  return { bits, inChannels, numClasses: out.channels, input, output: out.name, steps: planner.steps };
}
