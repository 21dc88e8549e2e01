import { keep } from '../engine/memory.js';
import { Tensor, formatShape } from '../engine/tensor.js';

/** A trainable tensor: always requires grad and outlives every scope. */
export class Parameter extends Tensor {
  constructor(data: Tensor | Float32Array, shape?: readonly number[]) {
    if (data instanceof Tensor) {
      super(Float32Array.from(data.data), data.shape, { requiresGrad: true });
    } else {
      super(data, shape ?? [data.length], { requiresGrad: true });
    }
    keep(this);
  }
}

export type StateDict = Map<string, Tensor>;

/**
 * Base of every layer and model. A module owns parameters (trained), buffers (saved but not
 * trained, such as batch-norm running statistics) and child modules, all registered by name so
 * `stateDict()` and `namedParameters()` need no per-class code.
 */
export abstract class Module {
  training = true;
  private readonly params = new Map<string, Parameter | null>();
  private readonly buffers = new Map<string, Tensor | null>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Module-specific constructor arguments for `toString()` (only non-default ones). */
  extraRepr(): string {
    return '';
  }

  protected registerParameter(name: string, value: Parameter | null): Parameter | null {
    this.params.set(name, value);
    return value;
  }

  protected registerBuffer(name: string, value: Tensor | null): Tensor | null {
    if (value !== null) keep(value);
    this.buffers.set(name, value);
    return value;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    this.children.set(name, module);
    return module;
  }

  /** Replaces a registered child (used by quantization to wrap layers). */
  replaceChild(name: string, module: Module): void {
    if (!this.children.has(name))
      throw new RangeError(`${this.constructor.name} has no child module '${name}'`);
    this.children.set(name, module);
    const self = this as unknown as Record<string, unknown>;
    if (self[name] !== undefined) self[name] = module;
    this.onChildReplaced(name, module);
  }

  /** Containers that keep children in arrays refresh them here. */
  protected onChildReplaced(_name: string, _module: Module): void {}

  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** Every module in the tree with its dotted path ('' for the root), parents first. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children)
      out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, p] of m.params) if (p !== null) out.push([path ? `${path}.${name}` : name, p]);
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, b] of m.buffers) if (b !== null) out.push([path ? `${path}.${name}` : name, b]);
    }
    return out;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) if (p.grad !== null) p.grad.data.fill(0);
  }

  stateDict(): StateDict {
    return new Map<string, Tensor>([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies values in; `strict` requires exactly the same names. Shapes must match. */
  loadStateDict(state: ReadonlyMap<string, Tensor | Float32Array>, strict = true): void {
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((k) => !state.has(k));
      const unexpected = [...state.keys()].filter((k) => !own.has(k));
      if (missing.length > 0 || unexpected.length > 0) {
        throw new RangeError(
          `loadStateDict: missing keys [${missing.join(', ')}], unexpected keys [${unexpected.join(', ')}]`,
        );
      }
    }
    for (const [name, target] of own) {
      const source = state.get(name);
      if (source === undefined) continue;
      const data = source instanceof Tensor ? source.data : source;
      if (data.length !== target.size) {
        const got = source instanceof Tensor ? formatShape(source.shape) : `${data.length} values`;
        throw new RangeError(
          `loadStateDict: '${name}' has ${got} but the model expects ${formatShape(target.shape)}`,
        );
      }
      target.data.set(data);
    }
  }

  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  toString(indent = ''): string {
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (this.children.size === 0) return `${head})`;
    const inner = [...this.children].map(([name, m]) => `${indent}  (${name}): ${m.toString(indent + '  ')}`);
    return `${head}\n${inner.join('\n')}\n${indent})`;
  }
}
