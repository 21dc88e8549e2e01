import type { Tensor } from '../engine/tensor.js';
import { BatchNorm2d } from '../nn/batch-norm.js';
import { Module } from '../nn/module.js';

/**
 * One batch norm per precision ("switchable" batch norm): statistics and affine parameters do not
 * share well across bit-widths, so each precision keeps its own, stored with that precision's layer.
 */
export class SwitchableBatchNorm2d extends Module {
  private readonly byBits = new Map<number, BatchNorm2d>();
  /** The precision in use; null selects the full-precision batch norm. */
  bits: number | null = null;
  readonly float: BatchNorm2d;

  constructor(source: BatchNorm2d, precisions: readonly number[]) {
    super();
    this.float = this.registerModule('fp', source);
    for (const b of precisions) this.addPrecision(b, source);
  }

  /** Adds a precision initialised as a copy of `from` (default: the full-precision one). */
  addPrecision(bits: number, from: BatchNorm2d = this.float): BatchNorm2d {
    const bn = new BatchNorm2d(from.numFeatures, { eps: from.eps, momentum: from.momentum, relu: from.relu });
    bn.loadStateDict(from.stateDict());
    bn.train(this.training); // a precision added to a model in eval mode must not update statistics
    this.byBits.set(bits, this.registerModule(`b${bits}`, bn));
    return bn;
  }

  has(bits: number): boolean {
    return this.byBits.has(bits);
  }

  get precisions(): number[] {
    return [...this.byBits.keys()].sort((a, b) => b - a);
  }

  /** The batch norm for a precision (the full-precision one for null). */
  at(bits: number | null): BatchNorm2d {
    if (bits === null) return this.float;
    const bn = this.byBits.get(bits);
    if (bn === undefined) {
      throw new RangeError(
        `SwitchableBatchNorm2d has no ${bits}-bit batch norm (has ${this.precisions.join(', ')})`,
      );
    }
    return bn;
  }

  forward(x: Tensor): Tensor {
    return this.at(this.bits).forward(x);
  }

  override extraRepr(): string {
    return `${this.float.numFeatures}, bits=[${this.precisions.join(', ')}]`;
  }
}
