import { add, relu } from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { BatchNorm2d } from '../batch-norm.js';
import { Conv2d } from '../conv.js';
import { GlobalAvgPool, MaxPool2d, Sequential } from '../layers.js';
import { Linear } from '../linear.js';
import { Module } from '../module.js';

/** Two 3x3 convolutions with an identity or 1x1-projection shortcut (He et al. 2016). */
export class BasicBlock extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  shortcut: Sequential | null;

  constructor(inChannels: number, outChannels: number, stride: number) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, outChannels, 3, { stride, padding: 1 }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(outChannels, { relu: true }));
    this.conv2 = this.registerModule('conv2', new Conv2d(outChannels, outChannels, 3, { padding: 1 }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(outChannels));
    this.shortcut =
      stride !== 1 || inChannels !== outChannels
        ? this.registerModule(
            'shortcut',
            new Sequential(new Conv2d(inChannels, outChannels, 1, { stride }), new BatchNorm2d(outChannels)),
          )
        : null;
  }

  forward(x: Tensor): Tensor {
    const y = this.bn2.forward(this.conv2.forward(this.bn1.forward(this.conv1.forward(x))));
    return relu(add(y, this.shortcut === null ? x : this.shortcut.forward(x)));
  }
}

export interface ResNetConfig {
  numClasses?: number;
  inChannels?: number;
}

/**
 * ResNet for 32x32 inputs (CIFAR): depth 6n+2, stages of 16/32/64 channels, with 1x1 projection
 * shortcuts where the shape changes.
 */
export class CifarResNet extends Module {
  stem: Conv2d;
  stemBn: BatchNorm2d;
  layers: Sequential;
  pool: GlobalAvgPool;
  fc: Linear;
  readonly depth: number;

  constructor(depth: number, config: ResNetConfig = {}) {
    super();
    if (!Number.isInteger(depth) || (depth - 2) % 6 !== 0 || depth < 8) {
      throw new RangeError(`Expected depth 6n+2 (20, 32, 56, ...) for CifarResNet but received ${depth}`);
    }
    this.depth = depth;
    const n = (depth - 2) / 6;
    const numClasses = config.numClasses ?? 10;
    this.stem = this.registerModule('stem', new Conv2d(config.inChannels ?? 3, 16, 3, { padding: 1 }));
    this.stemBn = this.registerModule('stemBn', new BatchNorm2d(16, { relu: true }));
    const blocks: Module[] = [];
    let channels = 16;
    for (const [width, stride] of [
      [16, 1],
      [32, 2],
      [64, 2],
    ]) {
      for (let i = 0; i < n; i++) {
        blocks.push(new BasicBlock(channels, width, i === 0 ? stride : 1));
        channels = width;
      }
    }
    this.layers = this.registerModule('layers', new Sequential(...blocks));
    this.pool = this.registerModule('pool', new GlobalAvgPool());
    this.fc = this.registerModule('fc', new Linear(64, numClasses));
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.pool.forward(this.layers.forward(this.stemBn.forward(this.stem.forward(x)))));
  }

  override extraRepr(): string {
    return `depth=${this.depth}`;
  }
}

/** ResNet-18 with the ImageNet stem (7x7/2 convolution, 3x3/2 max pool); any input resolution. */
export class ResNet18 extends Module {
  stem: Conv2d;
  stemBn: BatchNorm2d;
  stemPool: MaxPool2d;
  layers: Sequential;
  pool: GlobalAvgPool;
  fc: Linear;

  constructor(config: ResNetConfig = {}) {
    super();
    this.stem = this.registerModule(
      'stem',
      new Conv2d(config.inChannels ?? 3, 64, 7, { stride: 2, padding: 3 }),
    );
    this.stemBn = this.registerModule('stemBn', new BatchNorm2d(64, { relu: true }));
    this.stemPool = this.registerModule('stemPool', new MaxPool2d({ kernel: 3, stride: 2, padding: 1 }));
    const blocks: Module[] = [];
    let channels = 64;
    for (const [width, stride] of [
      [64, 1],
      [128, 2],
      [256, 2],
      [512, 2],
    ]) {
      blocks.push(new BasicBlock(channels, width, stride), new BasicBlock(width, width, 1));
      channels = width;
    }
    this.layers = this.registerModule('layers', new Sequential(...blocks));
    this.pool = this.registerModule('pool', new GlobalAvgPool());
    this.fc = this.registerModule('fc', new Linear(512, config.numClasses ?? 1000));
  }

  forward(x: Tensor): Tensor {
    const stem = this.stemPool.forward(this.stemBn.forward(this.stem.forward(x)));
    return this.fc.forward(this.pool.forward(this.layers.forward(stem)));
  }
}
