import { getBackend } from '../engine/backend-registry.js';
import { noGrad } from '../engine/autograd.js';
import { conv2d, linear } from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import { Conv2d } from '../nn/conv.js';
import type { Linear } from '../nn/linear.js';
import { Module, Parameter } from '../nn/module.js';
import type { CascadeRule } from './cascade.js';
import { fakeQuantAct, fakeQuantWeight } from './fake-quant.js';

/**
 * How a layer is quantized:
 * - 'layered': weights through the cascade at the current precision (part of the bit-planes),
 *   input activations at the same precision;
 * - 'fixed': weights and input activations at a fixed precision (8 bits by default) whatever the
 *   current precision (the usual treatment of the first convolution and the classifier);
 * - 'float': not quantized.
 */
export type LayerRole = 'layered' | 'fixed' | 'float';

export interface LayerQuantConfig {
  role: LayerRole;
  topBits: number;
  rule: CascadeRule;
  fixedBits: number;
  /** Quantize this layer's input (false for the first layer, whose input is the image). */
  quantizeInput: boolean;
}

const SCALE_CANDIDATES = [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1];

export interface DeployedCodes {
  bits: number;
  codes: Int32Array;
  /** Per output channel step size at `bits`. */
  steps: Float32Array;
  /** Reconstruction offset of the cascade rule at `bits`. */
  offset: number;
}

/** Wraps a Conv2d or Linear (sharing its parameters) with weight and input-activation quantizers. */
export class QuantizedLayer extends Module {
  readonly inner: Conv2d | Linear;
  readonly config: LayerQuantConfig;
  weight: Parameter;
  bias: Parameter | null;
  /** Per-output-channel step size at the top precision (for 'fixed': at fixedBits). */
  weightScale: Parameter | null;
  /** Input activation step size per precision. */
  private readonly actScales = new Map<number, Parameter>();
  /** [signed (0/1), calibrated (0/1)] for the input activations. */
  private readonly actState: Tensor;
  bits: number | null = null;
  /**
   * Weights already dequantized from a model file at one precision. When set, they replace the
   * fake quantizer, so a deployed model computes with exactly the file's values.
   */
  deployedWeight: Tensor | null = null;
  /**
   * The precisions whose loss trains the shared weight step (training only); null = every one.
   * In once QAT the high precisions' step gradients widen the shared grid, which also fixes the
   * low precisions' bin edges (s_b = 2^(B-b) s_B); restricting the step to the lowest precision
   * keeps those edges where a dedicated low-precision model would put them.
   */
  stepLearnsFrom: ReadonlySet<number> | null = null;
  /**
   * The integer codes behind `deployedWeight` as the model file holds them: deployedWeight =
   * (codes + offset) * steps[channel] at precision `bits`. Integer inference and the integer ONNX
   * export read these; null for a layer not rebuilt from a file (or a file without them).
   */
  deployedCodes: DeployedCodes | null = null;

  /**
   * `initScale: false` leaves the weight step sizes at 1 instead of searching them from the
   * weights: for a layer whose weights a model file replaces (modelFromStrata), the search is wasted.
   */
  constructor(
    inner: Conv2d | Linear,
    config: LayerQuantConfig,
    precisions: readonly number[],
    options: { initScale?: boolean } = {},
  ) {
    super();
    this.inner = inner;
    this.config = config;
    this.weight = this.registerParameter('weight', inner.weight)!;
    this.bias = this.registerParameter('bias', inner.bias);
    this.weightScale =
      config.role === 'float'
        ? null
        : this.registerParameter('weightScale', new Parameter(Tensor.full([inner.weight.shape[0]], 1)));
    this.actState = this.registerBuffer('actState', Tensor.zeros([2]))!;
    if (config.role !== 'float' && options.initScale !== false) this.initWeightScale(precisions);
    for (const b of this.actPrecisions(precisions)) this.addActScale(b);
  }

  /** The precision whose grid this layer uses when the model runs at `bits`. */
  effectiveBits(bits: number | null): number | null {
    if (bits === null || this.config.role === 'float') return null;
    return this.config.role === 'fixed' ? this.config.fixedBits : bits;
  }

  private actPrecisions(precisions: readonly number[]): number[] {
    if (!this.config.quantizeInput || this.config.role === 'float') return [];
    return this.config.role === 'fixed' ? [this.config.fixedBits] : [...precisions];
  }

  hasPrecision(bits: number): boolean {
    const b = this.effectiveBits(bits);
    return b === null || !this.config.quantizeInput || this.actScales.has(b);
  }

  /** Adds an activation scale for a new precision, derived from the nearest higher one (same range). */
  addActScale(bits: number): void {
    if (this.actScales.has(bits)) return;
    const scale = new Parameter(Tensor.full([1], 1));
    const higher = [...this.actScales.keys()].filter((b) => b > bits).sort((a, b) => a - b)[0];
    if (higher !== undefined) {
      const signed = this.actState.data[0] === 1;
      scale.data[0] = (this.actScales.get(higher)!.data[0] * qmaxOf(higher, signed)) / qmaxOf(bits, signed);
    }
    this.actScales.set(bits, scale);
    this.registerParameter(`actScale${bits}`, scale);
  }

  get activationPrecisions(): number[] {
    return [...this.actScales.keys()].sort((a, b) => b - a);
  }

  activationScale(bits: number): number | null {
    return this.actScales.get(bits)?.data[0] ?? null;
  }

  get inputSigned(): boolean {
    return this.actState.data[0] === 1;
  }

  get topBits(): number {
    return this.config.role === 'fixed' ? this.config.fixedBits : this.config.topBits;
  }

  /**
   * Initial per-channel step sizes: the channel's max |w| spread over the top grid, times one
   * factor per tensor chosen to minimise the quantization error summed over all precisions.
   */
  private initWeightScale(precisions: readonly number[]): void {
    const w = this.weight.data;
    const channels = this.weight.shape[0];
    const per = w.length / channels;
    const top = this.topBits;
    const base = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      let m = 0;
      for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(w[i]));
      base[c] = Math.max(m, 1e-8) / 2 ** (top - 1);
    }
    const levels = this.config.role === 'fixed' ? [this.config.fixedBits] : precisions;
    const backend = getBackend();
    const out = new Float32Array(w.length);
    let best = 1;
    let bestErr = Infinity;
    for (const f of SCALE_CANDIDATES) {
      const scales = base.map((s) => s * f);
      let err = 0;
      for (const b of levels) {
        backend.fakeQuantWeightForward(w, channels, scales, top, b, this.config.rule, out, null);
        let e = 0;
        for (let i = 0; i < w.length; i++) e += (out[i] - w[i]) ** 2;
        err += e;
      }
      if (err < bestErr) {
        bestErr = err;
        best = f;
      }
    }
    this.weightScale!.data.set(base.map((s) => s * best));
  }

  /** Chooses each activation step size to minimise the quantization error on this batch. */
  private calibrate(x: Tensor): void {
    const d = x.data;
    const stride = Math.max(1, Math.floor(d.length / 65536));
    const sample: number[] = [];
    for (let i = 0; i < d.length; i += stride) sample.push(d[i]);
    const signed = sample.some((v) => v < 0);
    this.actState.data[0] = signed ? 1 : 0;
    const maxAbs = Math.max(1e-8, ...sample.map(Math.abs));
    for (const [b, scale] of this.actScales) {
      const qmax = qmaxOf(b, signed);
      const qmin = signed ? -qmax - 1 : 0;
      let best = maxAbs / qmax;
      let bestErr = Infinity;
      for (const f of SCALE_CANDIDATES) {
        const s = (maxAbs / qmax) * f;
        let e = 0;
        for (const v of sample) e += (Math.min(qmax, Math.max(qmin, Math.floor(v / s + 0.5))) * s - v) ** 2;
        if (e < bestErr) {
          bestErr = e;
          best = s;
        }
      }
      scale.data[0] = best;
    }
    this.actState.data[1] = 1;
  }

  /** Holds every learned step size of this layer positive (call after each optimizer step). */
  clampScales(): void {
    if (this.weightScale !== null) keepPositive(this.weightScale.data);
    for (const scale of this.actScales.values()) keepPositive(scale.data);
  }

  /** Forgets the activation calibration so the next forward re-calibrates (post-training quantization). */
  resetCalibration(): void {
    this.actState.data[1] = 0;
  }

  /** The weights this layer computes with at a precision (null = float). */
  quantizedWeight(bits: number | null): Tensor {
    if (this.deployedWeight !== null) return this.deployedWeight;
    const b = this.effectiveBits(bits);
    if (b === null) return this.weight;
    keepPositive(this.weightScale!.data);
    const per = this.weight.size / this.weight.shape[0];
    return fakeQuantWeight(this.weight, this.weightScale!, {
      topBits: this.topBits,
      bits: b,
      rule: this.config.rule,
      // LSQ scales the step-size gradient by 1/sqrt(N Qp). The learned parameter is the top step
      // s_B = s_b / 2^k, whose gradient is 2^k times that of s_b; dividing by a further 4^k makes the
      // update of s_b what LSQ would make, whatever precision the gradient comes from.
      gradScale:
        this.stepLearnsFrom === null || this.stepLearnsFrom.has(b)
          ? 1 / (Math.sqrt(per * 2 ** (b - 1)) * 4 ** (this.topBits - b))
          : 0,
    });
  }

  quantizedInput(x: Tensor, bits: number | null): Tensor {
    const b = this.effectiveBits(bits);
    if (b === null || !this.config.quantizeInput) return x;
    if (this.actState.data[1] === 0) noGrad(() => this.calibrate(x));
    const scale = this.actScales.get(b);
    if (scale === undefined) {
      throw new RangeError(
        `QuantizedLayer has no ${b}-bit activation scale (has ${this.activationPrecisions.join(', ')})`,
      );
    }
    keepPositive(scale.data);
    const signed = this.inputSigned;
    const qmax = qmaxOf(b, signed);
    return fakeQuantAct(x, scale, {
      qmin: signed ? -qmax - 1 : 0,
      qmax,
      gradScale: 1 / Math.sqrt((x.size / x.shape[0]) * qmax),
    });
  }

  forward(x: Tensor): Tensor {
    const xq = this.quantizedInput(x, this.bits);
    const w = this.quantizedWeight(this.bits);
    if (this.inner instanceof Conv2d) return conv2d(xq, w, this.bias, this.inner.convOptions);
    return linear(xq, w, this.bias);
  }

  override extraRepr(): string {
    const kind = this.inner instanceof Conv2d ? 'Conv2d' : 'Linear';
    return `${kind}(${this.inner.extraRepr()}), ${this.config.role}${this.config.role === 'fixed' ? ` ${this.config.fixedBits}-bit` : ''}`;
  }
}

/** A learned step size that an optimizer step pushed to zero or below is held at a tiny positive value. */
function keepPositive(scales: Float32Array): void {
  for (let i = 0; i < scales.length; i++) if (!(scales[i] > 1e-8)) scales[i] = 1e-8;
}

export function qmaxOf(bits: number, signed: boolean): number {
  return signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
}
