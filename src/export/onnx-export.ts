/**
 * ONNX export of a Strata model at one precision.
 *
 * The graph takes `input` as float32 NCHW `[N, C, H, W]` (the ONNX and onnxruntime convention;
 * Strata itself is channels-last, so callers transpose) and returns `logits` `[N, classes]`.
 *
 * Two graph styles:
 * - integer (default for a quantized model at `bits`): the model's integer plan (`int-plan.ts`)
 *   written with ONNX Runtime's integer operators (`onnx-int.ts`): QuantizeLinear codes, int8
 *   weights (INT4 at 4 bits and below), QLinearConv / ConvInteger / MatMulInteger, batch norm folded
 *   into per-channel scales and bias. The weight codes are the file's codes, read from the deployed
 *   layers (`QuantizedLayer.deployedCodes`) or cut by the cascade from a trained model.
 * - float (`float: true`, or `bits: null`): float weights (dequantized at `bits` when given), batch
 *   norm folded into the preceding convolution. With `bits` the activation fake quantization is
 *   spelled with float ops (Div, Add 1/2, Floor, Clip, Mul), which reproduces Strata's
 *   round-half-up exactly, so the float graph at `bits` computes what Strata computes at `bits`.
 *
 * The walk knows every module Strata's models are built from; anything else is rejected with its
 * path, since exporting a module whose forward is unknown would silently produce a wrong graph.
 */
import { getBackend } from '../engine/backend-registry.js';
import { BatchNorm2d } from '../nn/batch-norm.js';
import { Conv2d } from '../nn/conv.js';
import { AvgPool2d, Flatten, GlobalAvgPool, MaxPool2d, ReLU, ReLU6, Sequential } from '../nn/layers.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import {
  BasicBlock,
  GraphNetwork,
  CifarResNet,
  InvertedResidual,
  MobileNetV2,
  ResNet18,
  SmallCNN,
} from '../nn/models/index.js';
import { expectPair } from '../engine/check.js';
import type { Pool2dOptions } from '../engine/ops.js';
import { firstInChannels, intPlan } from './int-plan.js';
import { emitIntGraph } from './onnx-int.js';
import { QuantizedLayer, qmaxOf } from '../quant/quantized-layer.js';
import { SwitchableBatchNorm2d } from '../quant/switchable-batch-norm.js';
import {
  encodeOnnxModel,
  OnnxDataType,
  type AttributeValue,
  type OnnxDim,
  type OnnxNode,
  type OnnxTensor,
  type TensorValues,
} from './onnx-proto.js';

export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'logits';
export const MIN_OPSET = 13;
export const MAX_OPSET = 21;
export const DEFAULT_OPSET = 21;

export interface OnnxExportOptions {
  /** The precision to export; null exports the full-precision model (a float graph). */
  bits: number | null;
  /** Float graph instead of the integer one (see the module comment). */
  float?: boolean;
  /** ONNX opset, in [13, 21]; default 21 (INT4 weights at 4 bits and below). */
  opset?: number;
  /**
   * Integer graph only: requantize a convolution that feeds only quantizers with one QLinearConv
   * where exact parameters exist (see onnx-int.ts and exact-requantize.ts); the logits are the same
   * either way, and onnxruntime runs QLinearConv faster than ConvInteger. Default true; false keeps
   * every layer ConvInteger/MatMulInteger.
   */
  requantize?: boolean;
  /** Extra metadata_props written into the model (for example what input the model expects). */
  metadata?: Readonly<Record<string, string>>;
  /** Fixed batch size; default a symbolic `batch` dimension. */
  batch?: number;
  /** Fixed [height, width]; default symbolic `height`, `width`. */
  inputSize?: number | [number, number];
}

/** Keys written to ModelProto.metadata_props. */
export const ONNX_METADATA = {
  bits: 'strata.bits',
  mode: 'strata.mode',
  layout: 'strata.input_layout',
  classes: 'strata.num_classes',
} as const;

function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} of type ${typeof value}`;
  if (typeof value === 'string') return `'${value}' of type string`;
  if (value === null || value === undefined) return String(value);
  return `a value of type ${(value as object).constructor?.name ?? typeof value}`;
}

/** A graph value and what the walk knows about it. */
interface Value {
  name: string;
  rank: 2 | 4;
  channels: number;
}

/** A float convolution or Gemm whose weights may still absorb a following batch norm. */
interface Foldable {
  output: string;
  weight: Float32Array;
  bias: Float32Array;
}

interface Context {
  bits: number | null;
  float: boolean;
  opset: number;
}

const ACT_CALIBRATED = 1;

class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly used = new Set<string>();
  private foldable: Foldable | null = null;

  unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  tensor(base: string, dataType: OnnxDataType, dims: readonly number[], values: TensorValues): string {
    const name = this.unique(base);
    this.initializers.push({ name, dataType, dims, values });
    return name;
  }

  scalar(base: string, value: number): string {
    return this.tensor(base, OnnxDataType.FLOAT, [], Float32Array.of(value));
  }

  node(opType: string, path: string, inputs: string[], attributes?: Record<string, AttributeValue>): string {
    if (this.foldable !== null && inputs.includes(this.foldable.output)) this.foldable = null;
    const prefix = path === '' ? opType : `${path}/${opType}`;
    const output = this.unique(prefix);
    this.nodes.push({ opType, name: output, inputs, outputs: [output], attributes });
    return output;
  }

  setFoldable(f: Foldable): void {
    this.foldable = f;
  }

  /** The pending conv/Gemm that produced `value` and that nothing has read yet, if any. */
  takeFoldable(value: string): Foldable | null {
    const f = this.foldable;
    if (f === null || f.output !== value) return null;
    this.foldable = null;
    return f;
  }

  /** Makes `value` the graph output named `name`. */
  rename(value: string, name: string): void {
    const producer = this.nodes.find((n) => n.outputs.includes(value));
    if (producer === undefined || this.nodes.some((n) => n.inputs.includes(value))) {
      this.nodes.push({ opType: 'Identity', name, inputs: [value], outputs: [name] });
      return;
    }
    this.nodes[this.nodes.indexOf(producer)] = { ...producer, outputs: [name] };
  }
}

const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });
const int = (value: number): AttributeValue => ({ kind: 'int', value });
const float = (value: number): AttributeValue => ({ kind: 'float', value });

/** Models whose forward applies their registered children in registration order. */
const CHAIN_MODELS: ReadonlySet<unknown> = new Set([SmallCNN, CifarResNet, ResNet18, MobileNetV2]);

class Exporter {
  readonly g = new GraphBuilder();
  constructor(readonly ctx: Context) {}

  emit(module: Module, path: string, x: Value): Value {
    const kind = module.constructor;
    if (kind === Sequential || CHAIN_MODELS.has(kind)) {
      let y = x;
      for (const [name, child] of module.namedChildren()) y = this.emit(child, join(path, name), y);
      return y;
    }
    if (kind === BasicBlock) return this.basicBlock(module, path, x);
    if (kind === GraphNetwork) return this.graph(module as GraphNetwork, path, x);
    if (kind === InvertedResidual) return this.invertedResidual(module as InvertedResidual, path, x);
    if (kind === QuantizedLayer) return this.weighted(module as QuantizedLayer, path, x);
    if (kind === Conv2d || kind === Linear) return this.weighted(module as Conv2d | Linear, path, x);
    if (kind === SwitchableBatchNorm2d)
      return this.batchNorm((module as SwitchableBatchNorm2d).at(this.ctx.bits), path, x);
    if (kind === BatchNorm2d) return this.batchNorm(module as BatchNorm2d, path, x);
    if (kind === ReLU) return { ...x, name: this.g.node('Relu', path, [x.name]) };
    if (kind === ReLU6) return this.clip(x, path, 0, 6);
    if (kind === MaxPool2d) return this.pool('MaxPool', (module as MaxPool2d).options, path, x);
    if (kind === AvgPool2d) return this.pool('AveragePool', (module as AvgPool2d).options, path, x);
    if (kind === GlobalAvgPool) {
      expectRank(x, 4, path, 'GlobalAvgPool');
      const pooled = this.g.node('GlobalAveragePool', path, [x.name]);
      return {
        name: this.g.node('Flatten', path, [pooled], { axis: int(1) }),
        rank: 2,
        channels: x.channels,
      };
    }
    if (kind === Flatten) return this.flatten(path, x);
    throw new TypeError(
      `exportOnnx: cannot export module '${path || '(root)'}' of type ${kind.name}; supported: Sequential, ` +
        'Conv2d, Linear, BatchNorm2d, ReLU, ReLU6, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, BasicBlock, ' +
        'InvertedResidual, QuantizedLayer, SwitchableBatchNorm2d and the models SmallCNN, CifarResNet, ResNet18, MobileNetV2, GraphNetwork',
    );
  }

  private basicBlock(block: Module, path: string, x: Value): Value {
    const child = new Map(block.namedChildren());
    let y = x;
    for (const name of ['conv1', 'bn1', 'conv2', 'bn2']) y = this.emit(child.get(name)!, join(path, name), y);
    const shortcut = child.get('shortcut');
    const s = shortcut === undefined ? x : this.emit(shortcut, join(path, 'shortcut'), x);
    const sum = this.g.node('Add', path, [y.name, s.name]);
    return { ...y, name: this.g.node('Relu', path, [sum]) };
  }

  /** An imported network: its ops in order, its layers through emit (so BN folding and QDQ apply). */
  private graph(net: GraphNetwork, path: string, x: Value): Value {
    const values = new Map<string, Value>([[net.spec.input, x]]);
    for (const op of net.spec.ops) {
      const [a, b] = op.inputs.map((name) => values.get(name)!);
      const at = join(path, 'module' in op ? op.module : op.op);
      let y: Value;
      switch (op.op) {
        case 'conv':
        case 'linear':
        case 'batchnorm':
          y = this.emit(net.layer(op.module), at, a);
          break;
        case 'maxpool':
        case 'avgpool':
          y = this.pool(op.op === 'maxpool' ? 'MaxPool' : 'AveragePool', op, at, a);
          break;
        case 'relu':
          y = { ...a, name: this.g.node('Relu', at, [a.name]) };
          break;
        case 'relu6':
          y = this.clip(a, at, 0, 6);
          break;
        case 'add':
        case 'mul':
          y = { ...a, name: this.g.node(op.op === 'add' ? 'Add' : 'Mul', at, [a.name, b.name]) };
          break;
        case 'concat': {
          const parts = op.inputs.map((name) => values.get(name)!);
          const name = this.g.node(
            'Concat',
            at,
            parts.map((p) => p.name),
            { axis: int(1) },
          );
          y = { name, rank: a.rank, channels: parts.reduce((n, p) => n + p.channels, 0) };
          break;
        }
        case 'globalavgpool':
          expectRank(a, 4, at, 'GlobalAveragePool');
          y = { ...a, name: this.g.node('GlobalAveragePool', at, [a.name]) };
          break;
        case 'flatten':
          y = this.flatten(at, a);
          break;
        case 'affine': {
          // A per-channel constant broadcasts over NCHW as [C, 1, 1] and over [N, C] as [C].
          const dims = (v: number[]) => (v.length === 1 ? [] : a.rank === 4 ? [v.length, 1, 1] : [v.length]);
          let name = a.name;
          if (op.scale !== null) {
            const k = this.g.tensor(
              `${at}.scale`,
              OnnxDataType.FLOAT,
              dims(op.scale),
              Float32Array.from(op.scale),
            );
            name = this.g.node('Mul', at, [name, k]);
          }
          if (op.shift !== null) {
            const k = this.g.tensor(
              `${at}.shift`,
              OnnxDataType.FLOAT,
              dims(op.shift),
              Float32Array.from(op.shift),
            );
            name = this.g.node('Add', at, [name, k]);
          }
          y = { ...a, name };
          break;
        }
      }
      values.set(op.output, y);
    }
    return values.get(net.spec.output)!;
  }

  private invertedResidual(block: InvertedResidual, path: string, x: Value): Value {
    const y = this.emit(block.body, join(path, 'body'), x);
    return block.residual ? { ...y, name: this.g.node('Add', path, [x.name, y.name]) } : y;
  }

  private clip(x: Value, path: string, low: number, high: number): Value {
    const lo = this.g.scalar(`${path}.clip_min`, low);
    const hi = this.g.scalar(`${path}.clip_max`, high);
    return { ...x, name: this.g.node('Clip', path, [x.name, lo, hi]) };
  }

  private pool(op: 'MaxPool' | 'AveragePool', options: Pool2dOptions, path: string, x: Value): Value {
    expectRank(x, 4, path, op);
    const kernel = expectPair(options.kernel, 'kernel', 1, path);
    const stride = expectPair(options.stride ?? options.kernel, 'stride', 1, path);
    const [padH, padW] = expectPair(options.padding ?? 0, 'padding', 0, path);
    // Strata's average pool divides by the cells inside the image, which is count_include_pad = 0.
    const name = this.g.node(op, path, [x.name], {
      kernel_shape: ints(kernel),
      strides: ints(stride),
      pads: ints([padH, padW, padH, padW]),
    });
    return { ...x, name };
  }

  private flatten(path: string, x: Value): Value {
    if (x.rank === 2) return x;
    // Strata flattens channels-last ([N, H, W, C] -> H, W, C order); transposing first keeps a following
    // Linear's weight layout valid.
    const nhwc = this.g.node('Transpose', path, [x.name], { perm: ints([0, 2, 3, 1]) });
    return { name: this.g.node('Flatten', path, [nhwc], { axis: int(1) }), rank: 2, channels: Number.NaN };
  }

  private batchNorm(bn: BatchNorm2d, path: string, x: Value): Value {
    if (Number.isFinite(x.channels) && x.channels !== bn.numFeatures) {
      throw new RangeError(
        `exportOnnx: '${path}' normalises ${bn.numFeatures} channels but receives ${x.channels}`,
      );
    }
    const target = this.ctx.float ? this.g.takeFoldable(x.name) : null;
    let y: string;
    if (target !== null) {
      foldBatchNorm(target, bn);
      y = x.name;
      this.g.setFoldable(target);
    } else {
      const f = OnnxDataType.FLOAT;
      const c = [bn.numFeatures];
      y = this.g.node(
        'BatchNormalization',
        path,
        [
          x.name,
          this.g.tensor(`${path}.weight`, f, c, Float32Array.from(bn.weight.data)),
          this.g.tensor(`${path}.bias`, f, c, Float32Array.from(bn.bias.data)),
          this.g.tensor(`${path}.runningMean`, f, c, Float32Array.from(bn.runningMean.data)),
          this.g.tensor(`${path}.runningVar`, f, c, Float32Array.from(bn.runningVar.data)),
        ],
        { epsilon: float(bn.eps) },
      );
    }
    return { ...x, name: bn.relu ? this.g.node('Relu', path, [y]) : y };
  }

  /** Conv2d / Linear, quantized or not. */
  private weighted(layer: QuantizedLayer | Conv2d | Linear, path: string, x: Value): Value {
    const inner = layer instanceof QuantizedLayer ? layer.inner : layer;
    const q = layer instanceof QuantizedLayer ? layer : null;
    const bits = q === null ? null : q.effectiveBits(this.ctx.bits);
    const isConv = inner instanceof Conv2d;
    const inChannels = isConv ? inner.inChannels : inner.inFeatures;
    if (isConv) expectRank(x, 4, path, 'Conv2d');
    else expectRank(x, 2, path, 'Linear');
    if (Number.isFinite(x.channels) && x.channels !== inChannels) {
      throw new RangeError(
        `exportOnnx: '${path}' expects ${inChannels} input channels but receives ${x.channels}`,
      );
    }

    const input =
      q !== null && bits !== null && q.config.quantizeInput ? this.quantizeInput(q, bits, path, x) : x.name;
    const outC = inner.weight.shape[0];
    const dims = inner.weight.shape;
    const bias = inner.bias === null ? new Float32Array(outC) : Float32Array.from(inner.bias.data);
    // The weights Strata computes with at this precision: the file's values for a deployed layer.
    const w =
      q === null || bits === null
        ? Float32Array.from(inner.weight.data)
        : q.deployedWeight !== null
          ? Float32Array.from(q.deployedWeight.data)
          : dequantizedWeight(q, bits);
    const weight = this.g.tensor(`${path}.weight`, OnnxDataType.FLOAT, dims, w);
    const foldable: Foldable = { output: '', weight: w, bias };
    const biasName = this.g.tensor(`${path}.bias`, OnnxDataType.FLOAT, [outC], bias);

    let output: string;
    if (inner instanceof Conv2d) {
      output = this.g.node('Conv', path, [input, weight, biasName], {
        kernel_shape: ints(inner.kernelSize),
        strides: ints(inner.stride),
        pads: ints([inner.padding[0], inner.padding[1], inner.padding[0], inner.padding[1]]),
        dilations: ints(inner.dilation),
        group: int(inner.groups),
      });
    } else {
      output = this.g.node('Gemm', path, [input, weight, biasName], { transB: int(1) });
    }
    this.g.setFoldable({ ...foldable, output });
    return { name: output, rank: isConv ? 4 : 2, channels: outC };
  }

  private quantizeInput(layer: QuantizedLayer, bits: number, path: string, x: Value): string {
    const state = layer.namedBuffers().find(([name]) => name === 'actState')?.[1];
    const scale = layer.activationScale(bits);
    if (state === undefined || state.data[ACT_CALIBRATED] !== 1 || scale === null) {
      throw new Error(
        `exportOnnx: layer '${path}' has no calibrated ${bits}-bit activation scale; run the model on data at ${bits} bits before exporting`,
      );
    }
    const signed = layer.inputSigned;
    const qmax = qmaxOf(bits, signed);
    const qmin = signed ? -qmax - 1 : 0;
    const at = `${path}.input`;
    // floor(x / s + 1/2): Strata's rounding, which QuantizeLinear (half to even) cannot express.
    const s = this.g.scalar(`${at}.scale`, scale);
    const div = this.g.node('Div', at, [x.name, s]);
    const shifted = this.g.node('Add', at, [div, this.g.scalar(`${at}.half`, 0.5)]);
    const floored = this.g.node('Floor', at, [shifted]);
    const clipped = this.g.node('Clip', at, [
      floored,
      this.g.scalar(`${at}.qmin`, qmin),
      this.g.scalar(`${at}.qmax`, qmax),
    ]);
    return this.g.node('Mul', at, [clipped, s]);
  }
}

function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

function expectRank(x: Value, rank: 2 | 4, path: string, op: string): void {
  if (x.rank !== rank) {
    const want = rank === 4 ? '[N, C, H, W]' : '[N, features]';
    throw new RangeError(
      `exportOnnx: ${op} '${path}' needs a rank-${rank} input ${want} but receives rank ${x.rank}`,
    );
  }
}

/** The layer's weights through its cascade at `bits`, as the backend's fake quantizer computes them. */
function dequantizedWeight(layer: QuantizedLayer, bits: number): Float32Array {
  const w = layer.weight.data;
  const out = new Float32Array(w.length);
  getBackend().fakeQuantWeightForward(
    w,
    layer.weightScale!.data.length,
    layer.weightScale!.data,
    layer.topBits,
    bits,
    layer.config.rule,
    out,
    null,
  );
  return out;
}

/** y = a (conv(x) + b - mean) + beta with a = gamma / sqrt(var + eps), absorbed into weight and bias. */
function foldBatchNorm(target: Foldable, bn: BatchNorm2d): void {
  const channels = bn.numFeatures;
  const per = target.weight.length / channels;
  for (let c = 0; c < channels; c++) {
    const a = bn.weight.data[c] / Math.sqrt(bn.runningVar.data[c] + bn.eps);
    for (let i = c * per; i < (c + 1) * per; i++) target.weight[i] *= a;
    target.bias[c] = (target.bias[c] - bn.runningMean.data[c]) * a + bn.bias.data[c];
  }
}

function irVersionFor(opset: number): number {
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 15) return 8;
  return 7;
}

/**
 * Checks that `bits` is null or a precision every quantized layer and batch norm of the model holds
 * (a plain float model accepts only null).
 */
export function validateExportBits(model: Module, bits: unknown): number | null {
  if (bits === null) return null;
  if (typeof bits !== 'number' || !Number.isInteger(bits)) {
    throw new TypeError(`Expected integer or null for bits but received ${describe(bits)}`);
  }
  const layers = model
    .namedModules()
    .filter((e): e is [string, QuantizedLayer] => e[1] instanceof QuantizedLayer);
  const norms = model
    .namedModules()
    .filter((e): e is [string, SwitchableBatchNorm2d] => e[1] instanceof SwitchableBatchNorm2d);
  if (layers.length === 0) {
    throw new RangeError(`exportOnnx: the model is not quantized, so bits must be null but received ${bits}`);
  }
  const available =
    norms.length > 0
      ? norms[0][1].precisions
      : [...new Set(layers.flatMap(([, l]) => l.activationPrecisions))];
  const missing = layers.some(([, l]) => !l.hasPrecision(bits)) || norms.some(([, n]) => !n.has(bits));
  if (missing) {
    throw new RangeError(`Expected bits in {${available.join(', ')}} or null but received ${bits}`);
  }
  return bits;
}

/** Serializes `model` at `options.bits` to the bytes of an .onnx file (see the module comment). */
export function exportOnnx(model: Module, options: OnnxExportOptions): Uint8Array {
  if (!(model instanceof Module))
    throw new TypeError(`Expected Module for model but received ${describe(model)}`);
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected object for options but received ${describe(options)}`);
  }
  const bits = validateExportBits(model, options.bits);
  if (options.float !== undefined && typeof options.float !== 'boolean') {
    throw new TypeError(`Expected boolean for float but received ${describe(options.float)}`);
  }
  const opset = options.opset ?? DEFAULT_OPSET;
  if (typeof opset !== 'number' || !Number.isInteger(opset)) {
    throw new TypeError(`Expected integer for opset but received ${describe(opset)}`);
  }
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new RangeError(`Expected opset in [${MIN_OPSET}, ${MAX_OPSET}] but received ${opset}`);
  }
  const batch: OnnxDim = options.batch === undefined ? 'batch' : positive(options.batch, 'batch');
  const [height, width]: OnnxDim[] =
    options.inputSize === undefined
      ? ['height', 'width']
      : expectPair(options.inputSize, 'inputSize', 1, 'exportOnnx');
  const isFloat = bits === null || options.float === true;

  const inChannels = firstInChannels(model, 'exportOnnx');
  let nodes: OnnxNode[];
  let initializers: OnnxTensor[];
  let classes: number;
  if (isFloat) {
    const exporter = new Exporter({ bits, float: true, opset });
    const out = exporter.emit(model, '', { name: ONNX_INPUT_NAME, rank: 4, channels: inChannels });
    if (out.rank !== 2)
      throw new RangeError(`exportOnnx: the model must end in [N, classes] but ends in rank ${out.rank}`);
    exporter.g.rename(out.name, ONNX_OUTPUT_NAME);
    ({ nodes, initializers } = exporter.g);
    classes = out.channels;
  } else {
    const plan = intPlan(model, bits!);
    const graph = emitIntGraph(plan, opset, options.requantize !== false);
    nodes = [
      ...graph.nodes,
      { opType: 'Identity', name: ONNX_OUTPUT_NAME, inputs: [graph.output], outputs: [ONNX_OUTPUT_NAME] },
    ];
    initializers = graph.initializers;
    classes = plan.numClasses;
  }

  return encodeOnnxModel({
    irVersion: irVersionFor(opset),
    opset,
    producerName: 'strata',
    producerVersion: '0.1.0',
    docString: `Strata ${model.constructor.name} at ${bits === null ? 'full precision' : `${bits} bits`} (${isFloat ? 'float' : 'integer'}); input NCHW float32`,
    graphName: model.constructor.name,
    nodes,
    initializers,
    inputs: [
      { name: ONNX_INPUT_NAME, elemType: OnnxDataType.FLOAT, shape: [batch, inChannels, height, width] },
    ],
    outputs: [{ name: ONNX_OUTPUT_NAME, elemType: OnnxDataType.FLOAT, shape: [batch, classes] }],
    metadata: {
      ...options.metadata,
      [ONNX_METADATA.bits]: bits === null ? 'float' : String(bits),
      [ONNX_METADATA.mode]: isFloat ? 'float' : 'integer',
      [ONNX_METADATA.layout]: 'NCHW',
      [ONNX_METADATA.classes]: String(classes),
    },
  });
}

function positive(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`Expected positive integer for ${name} but received ${describe(value)}`);
  }
  if (value < 1) throw new RangeError(`Expected positive integer for ${name} but received ${value}`);
  return value;
}

/** Strata's channels-last images ([N, H, W, C]) in the NCHW order the exported graph takes. */
export function nhwcToNchw(x: Float32Array, [n, h, w, c]: readonly number[]): Float32Array {
  const out = new Float32Array(x.length);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < plane; p++) {
      const src = (i * plane + p) * c;
      for (let k = 0; k < c; k++) out[(i * c + k) * plane + p] = x[src + k];
    }
  }
  return out;
}
