import type { Tensor } from '../../engine/tensor.js';
import { BatchNorm2d } from '../batch-norm.js';
import { Conv2d } from '../conv.js';
import { GlobalAvgPool, MaxPool2d, Sequential } from '../layers.js';
import { Linear } from '../linear.js';
import { Module } from '../module.js';

/** A small CNN for 28x28 greyscale digits (MNIST, Fashion-MNIST): three conv-BN-ReLU stages. */
export class SmallCNN extends Module {
  features: Sequential;
  pool: GlobalAvgPool;
  fc: Linear;

  constructor(config: { numClasses?: number; inChannels?: number; width?: number } = {}) {
    super();
    const w = config.width ?? 16;
    this.features = this.registerModule(
      'features',
      new Sequential(
        new Conv2d(config.inChannels ?? 1, w, 3, { padding: 1 }),
        new BatchNorm2d(w, { relu: true }),
        new MaxPool2d({ kernel: 2 }),
        new Conv2d(w, 2 * w, 3, { padding: 1 }),
        new BatchNorm2d(2 * w, { relu: true }),
        new MaxPool2d({ kernel: 2 }),
        new Conv2d(2 * w, 4 * w, 3, { padding: 1 }),
        new BatchNorm2d(4 * w, { relu: true }),
      ),
    );
    this.pool = this.registerModule('pool', new GlobalAvgPool());
    this.fc = this.registerModule('fc', new Linear(4 * w, config.numClasses ?? 10));
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.pool.forward(this.features.forward(x)));
  }
}
