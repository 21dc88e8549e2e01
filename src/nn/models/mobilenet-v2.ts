import { add } from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { BatchNorm2d } from '../batch-norm.js';
import { Conv2d } from '../conv.js';
import { GlobalAvgPool, ReLU6, Sequential } from '../layers.js';
import { Linear } from '../linear.js';
import { Module } from '../module.js';

function convBnRelu6(inC: number, outC: number, kernel: number, stride: number, groups = 1): Sequential {
  return new Sequential(
    new Conv2d(inC, outC, kernel, { stride, padding: (kernel - 1) / 2, groups }),
    new BatchNorm2d(outC),
    new ReLU6(),
  );
}

/** Expand (1x1), depthwise (3x3), project (1x1, linear); residual when shapes allow. */
export class InvertedResidual extends Module {
  body: Sequential;
  readonly residual: boolean;

  constructor(inC: number, outC: number, stride: number, expansion: number) {
    super();
    const hidden = inC * expansion;
    const layers: Module[] = [];
    if (expansion !== 1) layers.push(convBnRelu6(inC, hidden, 1, 1));
    layers.push(convBnRelu6(hidden, hidden, 3, stride, hidden));
    layers.push(new Conv2d(hidden, outC, 1), new BatchNorm2d(outC));
    this.body = this.registerModule('body', new Sequential(...layers));
    this.residual = stride === 1 && inC === outC;
  }

  forward(x: Tensor): Tensor {
    const y = this.body.forward(x);
    return this.residual ? add(x, y) : y;
  }
}

export function roundChannels(c: number): number {
  return Math.max(8, Math.round(c / 8) * 8);
}

/** MobileNetV2 (Sandler et al. 2018) for any input resolution; `width` scales every layer. */
export class MobileNetV2 extends Module {
  features: Sequential;
  pool: GlobalAvgPool;
  fc: Linear;

  constructor(
    config: { numClasses?: number; width?: number; inChannels?: number; stemStride?: number } = {},
  ) {
    super();
    const width = config.width ?? 1;
    const settings: [number, number, number, number][] = [
      [1, 16, 1, 1],
      [6, 24, 2, 2],
      [6, 32, 3, 2],
      [6, 64, 4, 2],
      [6, 96, 3, 1],
      [6, 160, 3, 2],
      [6, 320, 1, 1],
    ];
    let channels = roundChannels(32 * width);
    const layers: Module[] = [convBnRelu6(config.inChannels ?? 3, channels, 3, config.stemStride ?? 2)];
    for (const [t, c, n, s] of settings) {
      const out = roundChannels(c * width);
      for (let i = 0; i < n; i++) {
        layers.push(new InvertedResidual(channels, out, i === 0 ? s : 1, t));
        channels = out;
      }
    }
    const last = roundChannels(1280 * Math.max(1, width));
    layers.push(convBnRelu6(channels, last, 1, 1));
    this.features = this.registerModule('features', new Sequential(...layers));
    this.pool = this.registerModule('pool', new GlobalAvgPool());
    this.fc = this.registerModule('fc', new Linear(last, config.numClasses ?? 1000));
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.pool.forward(this.features.forward(x)));
  }
}
