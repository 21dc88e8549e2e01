import { Storage, insideScope, keep, returnBuffer, takeBuffer, track } from './memory.js';
import type { Random } from './random.js';

/** The autograd node that produced a tensor (see autograd.ts). */
export interface GradNode {
  readonly inputs: readonly Tensor[];
  readonly name: string;
  backward(grad: Tensor): readonly (Tensor | null)[];
  release(): void;
}

export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

function checkShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new TypeError(
        `Expected non-negative integer dimensions for ${what} but received ${formatShape(shape)}`,
      );
    }
  }
}

/**
 * A dense float32 tensor. Images are channels-last ([N, H, W, C]).
 *
 * Storage is a Float32Array shared with views made by `reshape`. Tensors created inside
 * `scope()` give their buffer back to a pool when the scope ends; touching `data` afterwards
 * throws instead of reading a buffer that another tensor now owns.
 */
export class Tensor {
  readonly shape: Shape;
  readonly size: number;
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf tensor after `backward()`. */
  grad: Tensor | null = null;
  /** The operation that produced this tensor, while its graph is alive. */
  gradFn: GradNode | null = null;
  private storage: Storage;

  constructor(data: Float32Array, shape: Shape, options: { requiresGrad?: boolean } = {}) {
    if (!(data instanceof Float32Array)) {
      const kind = data === null ? 'null' : ((data as object).constructor?.name ?? typeof data);
      throw new TypeError(`Expected Float32Array for tensor data but received ${kind}`);
    }
    checkShape(shape, 'tensor shape');
    const size = shapeSize(shape);
    if (size !== data.length) {
      throw new RangeError(
        `Tensor data has ${data.length} elements but shape ${formatShape(shape)} needs ${size}`,
      );
    }
    this.shape = Object.freeze([...shape]);
    this.size = size;
    this.requiresGrad = options.requiresGrad ?? false;
    this.storage = new Storage(data, false);
    track(this);
  }

  /** A tensor over a fresh (pooled when inside a scope) uninitialised buffer. */
  static empty(shape: Shape): Tensor {
    checkShape(shape, 'tensor shape');
    const n = shapeSize(shape);
    const pooled = insideScope();
    const t = new Tensor(pooled ? takeBuffer(n) : new Float32Array(n), shape);
    t.storage = new Storage(t.storage.data, pooled);
    return t;
  }

  static zeros(shape: Shape): Tensor {
    const t = Tensor.empty(shape);
    t.data.fill(0);
    return t;
  }

  static full(shape: Shape, value: number): Tensor {
    const t = Tensor.empty(shape);
    t.data.fill(value);
    return t;
  }

  static fromArray(values: ArrayLike<number>, shape?: Shape): Tensor {
    return new Tensor(Float32Array.from(values), shape ?? [values.length]);
  }

  /** Normal(0, std^2) samples. */
  static randn(shape: Shape, rng: Random, std = 1): Tensor {
    const t = Tensor.empty(shape);
    const d = t.data;
    for (let i = 0; i < d.length; i++) d[i] = rng.normal() * std;
    return t;
  }

  /** Uniform samples in [low, high). */
  static uniform(shape: Shape, rng: Random, low: number, high: number): Tensor {
    const t = Tensor.empty(shape);
    const d = t.data;
    for (let i = 0; i < d.length; i++) d[i] = low + (high - low) * rng.next();
    return t;
  }

  get data(): Float32Array {
    const d = this.storage.data;
    if (d === null) throw new Error(`Tensor ${formatShape(this.shape)} already disposed.`);
    return d;
  }

  get isDisposed(): boolean {
    return this.storage.data === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1)
      throw new RangeError(`item() needs a one-element tensor but shape is ${formatShape(this.shape)}`);
    return this.data[0];
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  /**
   * A view with another shape over the same storage. One dimension may be -1. Not recorded by
   * autograd: use `ops.reshape` inside differentiable code.
   */
  view(shape: Shape): Tensor {
    const resolved = resolveShape(shape, this.size, this.shape);
    const t = new Tensor(this.data, resolved);
    t.storage = this.storage;
    this.storage.refs++;
    return t;
  }

  /** A copy that shares nothing and records no history. */
  clone(): Tensor {
    const t = Tensor.empty(this.shape);
    t.data.set(this.data);
    return t;
  }

  /** The same values, cut from the autograd graph (shares storage). */
  detach(): Tensor {
    return this.view(this.shape);
  }

  /** Exempts this tensor from the enclosing scopes' clean-up. */
  keep(): this {
    return keep(this);
  }

  dispose(): void {
    const s = this.storage;
    if (s.data === null || this.released) return;
    this.released = true;
    this.gradFn = null;
    s.refs--;
    if (s.refs === 0) {
      if (s.pooled) returnBuffer(s.data);
      s.data = null;
    } else {
      this.storage = new Storage(null, false);
    }
  }
  private released = false;

  toString(): string {
    const head = Array.from(this.data.subarray(0, 6), (v) => v.toPrecision(4)).join(', ');
    return `Tensor(${formatShape(this.shape)}, [${head}${this.size > 6 ? ', ...' : ''}])`;
  }
}

export function resolveShape(shape: Shape, size: number, from: Shape): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const known = out.reduce((a, d, i) => (i === free ? a : a * d), 1);
    if (known === 0 || size % known !== 0) {
      throw new RangeError(`Cannot reshape ${formatShape(from)} to ${formatShape(shape)}`);
    }
    out[free] = size / known;
  }
  checkShape(out, 'reshape');
  if (shapeSize(out) !== size)
    throw new RangeError(`Cannot reshape ${formatShape(from)} to ${formatShape(shape)}`);
  return out;
}
