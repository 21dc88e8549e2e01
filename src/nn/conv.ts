import { expectInteger, expectPair } from '../engine/check.js';
import { conv2d } from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import { kaimingNormal, uniformInit } from './init.js';
import { Module, Parameter } from './module.js';

export interface Conv2dConfig {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
  bias?: boolean;
}

/** 2-D convolution over channels-last input; weight [out, in/groups, kH, kW]. */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  weight: Parameter;
  bias: Parameter | null;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | [number, number],
    config: Conv2dConfig = {},
  ) {
    super();
    this.inChannels = expectInteger(inChannels, 'inChannels', 1, 'Conv2d');
    this.outChannels = expectInteger(outChannels, 'outChannels', 1, 'Conv2d');
    this.kernelSize = expectPair(kernelSize, 'kernelSize', 1, 'Conv2d');
    this.stride = expectPair(config.stride ?? 1, 'stride', 1, 'Conv2d');
    this.padding = expectPair(config.padding ?? 0, 'padding', 0, 'Conv2d');
    this.dilation = expectPair(config.dilation ?? 1, 'dilation', 1, 'Conv2d');
    this.groups = expectInteger(config.groups ?? 1, 'groups', 1, 'Conv2d');
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new RangeError(
        `Conv2d: groups=${this.groups} must divide inChannels=${inChannels} and outChannels=${outChannels}`,
      );
    }
    const [kH, kW] = this.kernelSize;
    this.weight = this.registerParameter(
      'weight',
      new Parameter(Tensor.zeros([outChannels, inChannels / this.groups, kH, kW])),
    )!;
    this.bias = this.registerParameter(
      'bias',
      config.bias ? new Parameter(Tensor.zeros([outChannels])) : null,
    );
    this.resetParameters();
  }

  /** He initialisation on fan-out, the usual choice for ReLU CNNs. */
  resetParameters(): void {
    const [kH, kW] = this.kernelSize;
    kaimingNormal(this.weight, (this.outChannels / this.groups) * kH * kW);
    if (this.bias !== null) uniformInit(this.bias, 1 / Math.sqrt((this.inChannels / this.groups) * kH * kW));
  }

  get convOptions() {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups };
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.convOptions);
  }

  override extraRepr(): string {
    const parts = [`${this.inChannels}, ${this.outChannels}, kernel=${this.kernelSize.join('x')}`];
    if (this.stride.some((s) => s !== 1)) parts.push(`stride=${this.stride.join('x')}`);
    if (this.padding.some((p) => p !== 0)) parts.push(`padding=${this.padding.join('x')}`);
    if (this.dilation.some((d) => d !== 1)) parts.push(`dilation=${this.dilation.join('x')}`);
    if (this.groups !== 1) parts.push(`groups=${this.groups}`);
    if (this.bias === null) parts.push('bias=false');
    return parts.join(', ');
  }
}
