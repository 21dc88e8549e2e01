/** Fake quantization as autograd functions with straight-through and LSQ scale gradients. */
import { Function } from '../engine/autograd.js';
import { getBackend } from '../engine/backend-registry.js';
import { Tensor } from '../engine/tensor.js';
import type { CascadeRule } from './cascade.js';

export interface WeightQuantSpec {
  topBits: number;
  bits: number;
  rule: CascadeRule;
  /** LSQ gradient scale for the step size: 1 / sqrt(weights per channel * qmax). */
  gradScale: number;
}

class WeightFakeQuant extends Function<[Tensor, Tensor]> {
  private w!: Tensor;
  private scales!: Tensor;
  constructor(private readonly spec: WeightQuantSpec) {
    super();
  }
  forward(w: Tensor, scalesTop: Tensor): Tensor {
    this.w = w;
    this.scales = scalesTop;
    const out = Tensor.empty(w.shape);
    const { topBits, bits, rule } = this.spec;
    getBackend().fakeQuantWeightForward(
      w.data,
      scalesTop.size,
      scalesTop.data,
      topBits,
      bits,
      rule,
      out.data,
      null,
    );
    return out;
  }
  backward(dy: Tensor): (Tensor | null)[] {
    const { topBits, bits, rule, gradScale } = this.spec;
    const dw = Tensor.empty(this.w.shape);
    const ds = Tensor.empty(this.scales.shape);
    getBackend().fakeQuantWeightBackward(
      this.w.data,
      this.scales.size,
      this.scales.data,
      topBits,
      bits,
      rule,
      dy.data,
      dw.data,
      ds.data,
    );
    const d = ds.data;
    for (let i = 0; i < d.length; i++) d[i] *= gradScale;
    return [this.needsInputGrad[0] ? dw : null, this.needsInputGrad[1] ? ds : null];
  }
}

/** Weights quantized through the cascade to `bits`, from per-output-channel top scales. */
export function fakeQuantWeight(w: Tensor, scalesTop: Tensor, spec: WeightQuantSpec): Tensor {
  if (w.shape[0] !== scalesTop.size) {
    throw new RangeError(
      `fakeQuantWeight: ${scalesTop.size} scales for weight with ${w.shape[0]} output channels`,
    );
  }
  return new WeightFakeQuant(spec).apply(w, scalesTop);
}

export interface ActQuantSpec {
  qmin: number;
  qmax: number;
  gradScale: number;
}

class ActFakeQuant extends Function<[Tensor, Tensor]> {
  private x!: Tensor;
  private scale!: Tensor;
  constructor(private readonly spec: ActQuantSpec) {
    super();
  }
  forward(x: Tensor, scale: Tensor): Tensor {
    this.x = x;
    this.scale = scale;
    const y = Tensor.empty(x.shape);
    getBackend().fakeQuantActForward(x.data, scale.data[0], this.spec.qmin, this.spec.qmax, y.data);
    return y;
  }
  backward(dy: Tensor): (Tensor | null)[] {
    const dx = Tensor.empty(this.x.shape);
    const g = getBackend().fakeQuantActBackward(
      this.x.data,
      this.scale.data[0],
      this.spec.qmin,
      this.spec.qmax,
      dy.data,
      dx.data,
    );
    const ds = Tensor.full([1], g * this.spec.gradScale);
    return [this.needsInputGrad[0] ? dx : null, this.needsInputGrad[1] ? ds : null];
  }
}

/** Activations quantized to the integer grid [qmin, qmax] with one learned step size. */
export function fakeQuantAct(x: Tensor, scale: Tensor, spec: ActQuantSpec): Tensor {
  return new ActFakeQuant(spec).apply(x, scale);
}
