/**
 * A network described by data rather than code: an ordered list of operations over named values,
 * the form an imported ONNX model takes (src/export/onnx-import.ts). The description is plain JSON,
 * kept in checkpoints and .strata headers as the architecture, so the network can be rebuilt
 * without the file it came from. Convolutions, linear layers and batch norms are child modules
 * (registered in graph order, so quantization finds the first and last weighted layers and wraps
 * them like any built-in model's); everything else is a stateless op.
 *
 * Values are channels-last like the rest of Strata: a 4-D value is [N, H, W, C].
 */
import {
  add,
  avgPool2d,
  channelAffine,
  concatLast,
  globalAvgPool,
  maxPool2d,
  mul,
  relu,
  relu6,
  reshape,
} from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { BatchNorm2d } from '../batch-norm.js';
import { Conv2d } from '../conv.js';
import { Linear } from '../linear.js';
import { Module } from '../module.js';

interface OpBase {
  /** Where the op came from (an ONNX node's name and type), for messages. */
  source: string;
  inputs: string[];
  output: string;
}

export interface ConvOp extends OpBase {
  op: 'conv';
  module: string;
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
  bias: boolean;
}
export interface LinearOp extends OpBase {
  op: 'linear';
  module: string;
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
}
export interface BatchNormOp extends OpBase {
  op: 'batchnorm';
  module: string;
  features: number;
  eps: number;
  relu: boolean;
}
export interface PoolOp extends OpBase {
  op: 'maxpool' | 'avgpool';
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}
export interface AffineOp extends OpBase {
  op: 'affine';
  /** One value per channel (last axis) or one for all; null: 1 (scale) or 0 (shift). */
  scale: number[] | null;
  shift: number[] | null;
}
export interface SimpleOp extends OpBase {
  /** globalavgpool: [N, H, W, C] -> [N, 1, 1, C]; flatten: [N, ...] -> [N, rest] (channels-last order). */
  op: 'relu' | 'relu6' | 'add' | 'mul' | 'concat' | 'globalavgpool' | 'flatten';
}
export type GraphOp = ConvOp | LinearOp | BatchNormOp | PoolOp | AffineOp | SimpleOp;

export interface GraphSpec {
  input: string;
  output: string;
  ops: GraphOp[];
}

export const GRAPH_OPS = [
  'conv',
  'linear',
  'batchnorm',
  'maxpool',
  'avgpool',
  'affine',
  'relu',
  'relu6',
  'add',
  'mul',
  'concat',
  'globalavgpool',
  'flatten',
] as const;

function expectString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '')
    throw new TypeError(
      `graph: expected a non-empty string for ${what} but received ${JSON.stringify(value)}`,
    );
  return value;
}

/** Checks a description read from a file: every op known, every input defined before use. */
export function checkGraphSpec(spec: unknown): GraphSpec {
  if (typeof spec !== 'object' || spec === null || !Array.isArray((spec as GraphSpec).ops)) {
    throw new TypeError('graph: expected an object with input, output and ops');
  }
  const g = spec as GraphSpec;
  const defined = new Set([expectString(g.input, 'graph.input')]);
  const modules = new Set<string>();
  g.ops.forEach((op, i) => {
    const where = `graph.ops[${i}] (${String(op?.source)})`;
    if (!(GRAPH_OPS as readonly string[]).includes(op?.op)) {
      throw new RangeError(`${where}: unknown op ${JSON.stringify(op?.op)} (known: ${GRAPH_OPS.join(', ')})`);
    }
    if (!Array.isArray(op.inputs) || op.inputs.length === 0)
      throw new TypeError(`${where}: expected a non-empty inputs list`);
    for (const input of op.inputs) {
      if (!defined.has(input)) throw new RangeError(`${where}: input '${input}' is not defined before it`);
    }
    defined.add(expectString(op.output, `${where}.output`));
    if ('module' in op) {
      const name = expectString(op.module, `${where}.module`);
      if (modules.has(name) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new RangeError(`${where}: module name '${name}' is repeated or not an identifier`);
      modules.add(name);
    }
  });
  if (!defined.has(g.output)) throw new RangeError(`graph: output '${String(g.output)}' is never computed`);
  return g;
}

export class GraphNetwork extends Module {
  readonly spec: GraphSpec;
  private readonly layers = new Map<string, Module>();

  constructor(spec: GraphSpec) {
    super();
    this.spec = checkGraphSpec(spec);
    for (const op of this.spec.ops) {
      let module: Module | null = null;
      if (op.op === 'conv') {
        module = new Conv2d(op.inChannels, op.outChannels, op.kernel, {
          stride: op.stride,
          padding: op.padding,
          dilation: op.dilation,
          groups: op.groups,
          bias: op.bias,
        });
      } else if (op.op === 'linear') {
        module = new Linear(op.inFeatures, op.outFeatures, { bias: op.bias });
      } else if (op.op === 'batchnorm') {
        module = new BatchNorm2d(op.features, { eps: op.eps, relu: op.relu });
      }
      if (module !== null && 'module' in op)
        this.layers.set(op.module, this.registerModule(op.module, module));
    }
  }

  protected override onChildReplaced(name: string, module: Module): void {
    this.layers.set(name, module);
  }

  /** The module an op runs (conv, linear, batchnorm ops), after any replacement by quantization. */
  layer(name: string): Module {
    const m = this.layers.get(name);
    if (m === undefined) throw new RangeError(`GraphNetwork has no module '${name}'`);
    return m;
  }

  forward(x: Tensor): Tensor {
    const values = new Map<string, Tensor>([[this.spec.input, x]]);
    const get = (name: string): Tensor => values.get(name)!;
    for (const op of this.spec.ops) {
      const [a, b] = op.inputs;
      let y: Tensor;
      switch (op.op) {
        case 'conv':
        case 'linear':
        case 'batchnorm':
          y = this.layer(op.module).forward(get(a));
          break;
        case 'maxpool':
        case 'avgpool': {
          const options = { kernel: op.kernel, stride: op.stride, padding: op.padding };
          y = op.op === 'maxpool' ? maxPool2d(get(a), options) : avgPool2d(get(a), options);
          break;
        }
        case 'affine':
          y = channelAffine(
            get(a),
            op.scale === null ? null : Float32Array.from(op.scale),
            op.shift === null ? null : Float32Array.from(op.shift),
          );
          break;
        case 'relu':
          y = relu(get(a));
          break;
        case 'relu6':
          y = relu6(get(a));
          break;
        case 'add':
          y = add(get(a), get(b));
          break;
        case 'mul':
          y = mul(get(a), get(b));
          break;
        case 'concat':
          y = concatLast(op.inputs.map(get));
          break;
        case 'globalavgpool': {
          const v = get(a);
          y = reshape(globalAvgPool(v), [v.shape[0], 1, 1, v.shape[3]]);
          break;
        }
        case 'flatten': {
          const v = get(a);
          y = reshape(v, [v.shape[0], -1]);
          break;
        }
      }
      values.set(op.output, y);
    }
    return get(this.spec.output);
  }

  override extraRepr(): string {
    return `${this.spec.ops.length} ops`;
  }
}
