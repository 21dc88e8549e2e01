import { getBackend } from '../engine/backend-registry.js';
import { expectFinite, expectInRange } from '../engine/check.js';
import { noGrad } from '../engine/autograd.js';
import { Tensor } from '../engine/tensor.js';
import type { Parameter } from '../nn/module.js';

/** Serializable optimizer state: per-parameter slots by parameter index, plus scalars. */
export interface OptimizerState {
  kind: string;
  step: number;
  lr: number;
  slots: Record<string, Float32Array[]>;
}

export abstract class Optimizer {
  lr: number;
  stepCount = 0;
  constructor(
    readonly params: readonly Parameter[],
    lr: number,
  ) {
    this.lr = expectFinite(lr, 'lr', this.constructor.name);
    if (params.length === 0) throw new RangeError(`${this.constructor.name}: no parameters to optimise`);
  }

  zeroGrad(): void {
    for (const p of this.params) if (p.grad !== null) p.grad.data.fill(0);
  }

  step(): void {
    noGrad(() => {
      this.params.forEach((p, i) => {
        if (p.grad !== null) this.update(p, p.grad, i);
      });
    });
    this.stepCount++;
  }

  protected abstract update(p: Parameter, grad: Tensor, index: number): void;
  abstract stateDict(): OptimizerState;
  abstract loadStateDict(state: OptimizerState): void;

  protected restoreSlots(state: OptimizerState, kind: string, names: string[]): Float32Array[][] {
    if (state.kind !== kind)
      throw new RangeError(`Optimizer state is for '${state.kind}' but this optimizer is '${kind}'`);
    this.stepCount = state.step;
    this.lr = state.lr;
    return names.map((name) => {
      const slot = state.slots[name] ?? [];
      slot.forEach((arr, i) => {
        if (arr.length > 0 && arr.length !== this.params[i]?.size) {
          throw new RangeError(
            `Optimizer state slot '${name}' ${i} has ${arr.length} values, parameter has ${this.params[i]?.size}`,
          );
        }
      });
      return slot;
    });
  }
}

export interface SgdConfig {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
  /** Parameters exempt from weight decay (for example batch-norm affine parameters). */
  noDecay?: ReadonlySet<Parameter>;
}

/** SGD with momentum, Nesterov and L2 weight decay (PyTorch semantics). */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private readonly noDecay: ReadonlySet<Parameter>;
  private velocity: (Float32Array | null)[];

  constructor(params: readonly Parameter[], config: SgdConfig) {
    super(params, config.lr);
    this.momentum = expectInRange(config.momentum ?? 0, 'momentum', 0, 1, 'SGD');
    this.weightDecay = expectInRange(config.weightDecay ?? 0, 'weightDecay', 0, 1, 'SGD');
    this.nesterov = config.nesterov ?? false;
    if (this.nesterov && this.momentum === 0) throw new RangeError('SGD: nesterov needs momentum > 0');
    this.noDecay = config.noDecay ?? new Set();
    this.velocity = params.map(() => null);
  }

  protected update(p: Parameter, grad: Tensor, i: number): void {
    let v = this.velocity[i];
    if (v === null && this.momentum > 0) {
      v = new Float32Array(p.size);
      this.velocity[i] = v;
    }
    const wd = this.noDecay.has(p) ? 0 : this.weightDecay;
    getBackend().sgdStep(p.data, grad.data, v, this.lr, this.momentum, wd, this.nesterov);
  }

  stateDict(): OptimizerState {
    return {
      kind: 'sgd',
      step: this.stepCount,
      lr: this.lr,
      slots: { velocity: this.velocity.map((v) => v ?? new Float32Array(0)) },
    };
  }

  loadStateDict(state: OptimizerState): void {
    const [velocity] = this.restoreSlots(state, 'sgd', ['velocity']);
    this.velocity = this.params.map((_, i) =>
      velocity[i] !== undefined && velocity[i].length > 0 ? Float32Array.from(velocity[i]) : null,
    );
  }
}

export interface AdamWConfig {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  noDecay?: ReadonlySet<Parameter>;
}

/** Adam with decoupled weight decay (Loshchilov & Hutter). */
export class AdamW extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly noDecay: ReadonlySet<Parameter>;
  private m: Float32Array[];
  private v: Float32Array[];

  constructor(params: readonly Parameter[], config: AdamWConfig) {
    super(params, config.lr);
    const [b1, b2] = config.betas ?? [0.9, 0.999];
    this.beta1 = expectInRange(b1, 'beta1', 0, 0.999999, 'AdamW');
    this.beta2 = expectInRange(b2, 'beta2', 0, 0.999999, 'AdamW');
    this.eps = expectInRange(config.eps ?? 1e-8, 'eps', 0, 1, 'AdamW');
    this.weightDecay = expectInRange(config.weightDecay ?? 0.01, 'weightDecay', 0, 1, 'AdamW');
    this.noDecay = config.noDecay ?? new Set();
    this.m = params.map((p) => new Float32Array(p.size));
    this.v = params.map((p) => new Float32Array(p.size));
  }

  protected update(p: Parameter, grad: Tensor, i: number): void {
    const t = this.stepCount + 1;
    const c1 = 1 - this.beta1 ** t;
    const c2 = 1 - this.beta2 ** t;
    const decay = this.noDecay.has(p) ? 0 : this.lr * this.weightDecay;
    const w = p.data;
    const g = grad.data;
    const m = this.m[i];
    const v = this.v[i];
    for (let k = 0; k < w.length; k++) {
      m[k] = this.beta1 * m[k] + (1 - this.beta1) * g[k];
      v[k] = this.beta2 * v[k] + (1 - this.beta2) * g[k] * g[k];
      w[k] -= decay * w[k] + (this.lr * (m[k] / c1)) / (Math.sqrt(v[k] / c2) + this.eps);
    }
  }

  stateDict(): OptimizerState {
    return { kind: 'adamw', step: this.stepCount, lr: this.lr, slots: { m: this.m, v: this.v } };
  }

  loadStateDict(state: OptimizerState): void {
    const [m, v] = this.restoreSlots(state, 'adamw', ['m', 'v']);
    this.m = this.params.map((p, i) =>
      m[i]?.length === p.size ? Float32Array.from(m[i]) : new Float32Array(p.size),
    );
    this.v = this.params.map((p, i) =>
      v[i]?.length === p.size ? Float32Array.from(v[i]) : new Float32Array(p.size),
    );
  }
}
