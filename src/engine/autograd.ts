import { getBackend } from './backend-registry.js';
import { Tensor, formatShape, type GradNode } from './tensor.js';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording autograd history (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * A differentiable operation. Subclasses implement `forward` (on plain tensors, saving what the
 * backward needs as fields) and `backward` (one gradient per input, null where none is needed).
 * A straight-through estimator is a subclass whose backward passes the gradient through:
 *
 *   class RoundSTE extends Function<[Tensor]> {
 *     forward(x: Tensor) { const y = x.clone(); y.data.forEach((v, i, d) => (d[i] = Math.round(v))); return y; }
 *     backward(g: Tensor) { return [g]; }
 *   }
 *   const y = new RoundSTE().apply(x);
 */
export abstract class Function<Args extends Tensor[] = Tensor[]> implements GradNode {
  inputs: readonly Tensor[] = [];
  /** needsInputGrad[i] tells backward whether input i wants a gradient. */
  needsInputGrad: boolean[] = [];

  get name(): string {
    return this.constructor.name;
  }

  abstract forward(...inputs: Args): Tensor;
  abstract backward(grad: Tensor): readonly (Tensor | null)[];

  apply(...inputs: Args): Tensor {
    const output = this.forward(...inputs);
    if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
      this.inputs = inputs;
      this.needsInputGrad = inputs.map((t) => t.requiresGrad);
      output.requiresGrad = true;
      output.gradFn = this;
    }
    return output;
  }

  /** Drops references held for backward so their buffers can be reused. */
  release(): void {
    this.inputs = [];
  }
}

/**
 * Back-propagates from `root` (a scalar unless `seed` is given). Leaf tensors that require a gradient
 * accumulate into `.grad`, so several backward passes (one per precision in once QAT) add up
 * before one optimizer step. The graph is released afterwards unless `retainGraph` is set.
 */
export function backward(root: Tensor, seed?: Tensor, options: { retainGraph?: boolean } = {}): void {
  if (!root.requiresGrad) throw new Error('backward() called on a tensor that does not require grad.');
  if (seed === undefined) {
    if (root.size !== 1) {
      throw new RangeError(
        `backward() needs a scalar or an explicit seed but shape is ${formatShape(root.shape)}`,
      );
    }
    seed = Tensor.full(root.shape, 1);
  } else if (seed.size !== root.size) {
    throw new RangeError(
      `backward() seed ${formatShape(seed.shape)} does not match ${formatShape(root.shape)}`,
    );
  }

  const order = topologicalOrder(root);
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  const backend = getBackend();
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    const fn = node.gradFn!;
    const g = grads.get(node);
    if (g === undefined) continue;
    grads.delete(node);
    const inputGrads = fn.backward(g);
    // Every gradient below gets a single owner: a tensor returned twice (add returns [g, g]) is
    // copied, and the incoming gradient is freed unless a backward passed it through.
    const owned = new Set<Tensor>();
    fn.inputs.forEach((input, k) => {
      let ig = inputGrads[k];
      if (ig === null || ig === undefined || !input.requiresGrad) return;
      if (ig.size !== input.size) {
        throw new Error(
          `${fn.name}.backward returned gradient ${formatShape(ig.shape)} for input ${formatShape(input.shape)}`,
        );
      }
      if (owned.has(ig)) ig = ig.clone();
      owned.add(ig);
      if (input.gradFn === null) {
        accumulateLeafGrad(input, ig);
        return;
      }
      const previous = grads.get(input);
      if (previous === undefined) {
        grads.set(input, ig);
      } else {
        backend.axpy(previous.data, 1, ig.data, previous.data);
        ig.dispose();
      }
    });
    if (g !== seed && !owned.has(g)) g.dispose();
    if (!options.retainGraph) {
      fn.release();
      node.gradFn = null;
    }
  }
}

function accumulateLeafGrad(leaf: Tensor, g: Tensor): void {
  if (leaf.grad === null || leaf.grad.isDisposed) {
    leaf.grad = g.shape.length === leaf.shape.length ? g.keep() : g.view(leaf.shape).keep();
    return;
  } else {
    getBackend().axpy(leaf.grad.data, 1, g.data, leaf.grad.data);
  }
  g.dispose();
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative DFS: deep networks would overflow a recursive walk.
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, next] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const child = inputs[next];
      if (child.gradFn !== null && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      if (t.gradFn !== null) order.push(t);
    }
  }
  return order;
}
