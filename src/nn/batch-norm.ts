import { expectInRange, expectInteger } from '../engine/check.js';
import { batchNorm } from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import { Module, Parameter } from './module.js';

export interface BatchNormConfig {
  eps?: number;
  momentum?: number;
  /** Apply ReLU after normalising, in the same kernel pass. */
  relu?: boolean;
}

/** Batch norm over the channel (last) dimension of channels-last input, optionally fused with ReLU. */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly relu: boolean;
  weight: Parameter;
  bias: Parameter;
  runningMean: Tensor;
  runningVar: Tensor;

  constructor(numFeatures: number, config: BatchNormConfig = {}) {
    super();
    this.numFeatures = expectInteger(numFeatures, 'numFeatures', 1, 'BatchNorm2d');
    this.eps = expectInRange(config.eps ?? 1e-5, 'eps', 0, 1, 'BatchNorm2d');
    this.momentum = expectInRange(config.momentum ?? 0.1, 'momentum', 0, 1, 'BatchNorm2d');
    this.relu = config.relu ?? false;
    this.weight = this.registerParameter('weight', new Parameter(Tensor.full([numFeatures], 1)))!;
    this.bias = this.registerParameter('bias', new Parameter(Tensor.zeros([numFeatures])))!;
    this.runningMean = this.registerBuffer('runningMean', Tensor.zeros([numFeatures]))!;
    this.runningVar = this.registerBuffer('runningVar', Tensor.full([numFeatures], 1))!;
  }

  resetRunningStats(): void {
    this.runningMean.data.fill(0);
    this.runningVar.data.fill(1);
  }

  forward(x: Tensor): Tensor {
    return batchNorm(x, this.weight, this.bias, {
      training: this.training,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      momentum: this.momentum,
      eps: this.eps,
      relu: this.relu,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}${this.relu ? ', relu' : ''}`;
  }
}
