import { Tensor } from '../engine/tensor.js';
import {
  avgPool2d,
  flatten,
  globalAvgPool,
  maxPool2d,
  relu,
  relu6,
  type Pool2dOptions,
} from '../engine/ops.js';
import { Module } from './module.js';

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class ReLU6 extends Module {
  forward(x: Tensor): Tensor {
    return relu6(x);
  }
}

export class MaxPool2d extends Module {
  constructor(readonly options: Pool2dOptions) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.options);
  }
  override extraRepr(): string {
    return `kernel=${this.options.kernel}, stride=${this.options.stride ?? this.options.kernel}, padding=${this.options.padding ?? 0}`;
  }
}

export class AvgPool2d extends Module {
  constructor(readonly options: Pool2dOptions) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.options);
  }
}

/** [N, H, W, C] -> [N, C]. */
export class GlobalAvgPool extends Module {
  forward(x: Tensor): Tensor {
    return globalAvgPool(x);
  }
}

export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return flatten(x);
  }
}

/** Runs children in order. */
export class Sequential extends Module {
  private layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((m, i) => this.registerModule(String(i), m));
  }
  protected override onChildReplaced(name: string, module: Module): void {
    this.layers[Number(name)] = module;
  }
  get length(): number {
    return this.layers.length;
  }
  at(i: number): Module {
    return this.layers[i];
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const layer of this.layers) y = layer.forward(y);
    return y;
  }
}
