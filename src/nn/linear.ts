import { expectInteger } from '../engine/check.js';
import { linear } from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import { uniformInit } from './init.js';
import { Module, Parameter } from './module.js';

/** y = x W^T + b with W [out, in]. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, config: { bias?: boolean } = {}) {
    super();
    this.inFeatures = expectInteger(inFeatures, 'inFeatures', 1, 'Linear');
    this.outFeatures = expectInteger(outFeatures, 'outFeatures', 1, 'Linear');
    this.weight = this.registerParameter('weight', new Parameter(Tensor.zeros([outFeatures, inFeatures])))!;
    this.bias = this.registerParameter(
      'bias',
      config.bias === false ? null : new Parameter(Tensor.zeros([outFeatures])),
    );
    this.resetParameters();
  }

  resetParameters(): void {
    const bound = 1 / Math.sqrt(this.inFeatures);
    uniformInit(this.weight, bound);
    if (this.bias !== null) uniformInit(this.bias, bound);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `${this.inFeatures}, ${this.outFeatures}${this.bias === null ? ', bias=false' : ''}`;
  }
}
