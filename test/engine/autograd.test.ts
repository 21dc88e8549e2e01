import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Function, backward, noGrad } from '../../src/engine/autograd.js';
import { scope, pooledByteCount } from '../../src/engine/memory.js';
import {
  add,
  batchNorm,
  conv2d,
  globalAvgPool,
  linear,
  maxPool2d,
  mul,
  relu,
  scale,
  softmaxCrossEntropy,
} from '../../src/engine/ops.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';

function leaf(shape: number[], rng: Random, s = 1): Tensor {
  const t = Tensor.randn(shape, rng, s);
  t.requiresGrad = true;
  return t;
}

test('gradients accumulate across several backward passes before one step', () => {
  const rng = new Random(1);
  const w = leaf([3, 4], rng);
  const x1 = Tensor.randn([5, 4], rng);
  const x2 = Tensor.randn([5, 4], rng);
  const labels = Int32Array.from([0, 1, 2, 1, 0]);

  backward(softmaxCrossEntropy(linear(x1, w), labels));
  const g1 = Float32Array.from(w.grad!.data);
  w.grad = null;
  backward(softmaxCrossEntropy(linear(x2, w), labels));
  const g2 = Float32Array.from(w.grad!.data);

  w.grad = null;
  backward(softmaxCrossEntropy(linear(x1, w), labels));
  backward(softmaxCrossEntropy(linear(x2, w), labels), Tensor.full([], 1));
  const both = w.grad!.data;
  for (let i = 0; i < both.length; i++) assert.ok(Math.abs(both[i] - (g1[i] + g2[i])) < 1e-6);
});

test('a seed weights a loss in the multi-objective sum', () => {
  const rng = new Random(2);
  const w = leaf([2, 3], rng);
  const x = Tensor.randn([4, 3], rng);
  const labels = Int32Array.from([0, 1, 1, 0]);
  backward(softmaxCrossEntropy(linear(x, w), labels));
  const g = Float32Array.from(w.grad!.data);
  w.grad = null;
  backward(softmaxCrossEntropy(linear(x, w), labels), Tensor.full([], 0.25));
  w.grad!.data.forEach((v, i) => assert.ok(Math.abs(v - 0.25 * g[i]) < 1e-7));
});

test('noGrad records nothing', () => {
  const rng = new Random(3);
  const a = leaf([4], rng);
  const y = noGrad(() => relu(a));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.gradFn, null);
});

test('a straight-through estimator is a few lines', () => {
  class RoundSTE extends Function<[Tensor]> {
    forward(x: Tensor): Tensor {
      const y = x.clone();
      y.data.forEach((v, i, d) => (d[i] = Math.round(v)));
      return y;
    }
    backward(g: Tensor): Tensor[] {
      return [g];
    }
  }
  const x = Tensor.fromArray([0.2, 1.7, -2.6]);
  x.requiresGrad = true;
  const y = new RoundSTE().apply(x);
  assert.deepEqual(y.toArray(), [0, 2, -3]);
  backward(mul(y, Tensor.fromArray([1, 2, 3])), Tensor.full([3], 1));
  assert.deepEqual(x.grad!.toArray(), [1, 2, 3]);
});

test('a tensor used twice receives the sum of both gradients', () => {
  const x = Tensor.fromArray([1, 2, 3]);
  x.requiresGrad = true;
  const y = add(mul(x, x), x); // d/dx = 2x + 1
  backward(y, Tensor.full([3], 1));
  assert.deepEqual(x.grad!.toArray(), [3, 5, 7]);
});

/**
 * A small network's gradient against central differences of its own float32 forward pass.
 * (Kernel-level checks in double precision live in reference-kernels.test.ts.)
 */
test('composite network gradient agrees with finite differences', () => {
  const rng = new Random(4);
  const x = leaf([2, 6, 6, 2], rng);
  const w = leaf([4, 2, 3, 3], rng, 0.5);
  const gamma = leaf([4], rng, 0.2);
  gamma.data.forEach((v, i, d) => (d[i] = 1 + v));
  const beta = leaf([4], rng, 0.1);
  const fcw = leaf([3, 4], rng);
  const labels = Int32Array.from([2, 0]);
  const runningMean = Tensor.zeros([4]);
  const runningVar = Tensor.full([4], 1);
  const f = () =>
    softmaxCrossEntropy(
      linear(
        globalAvgPool(
          maxPool2d(
            batchNorm(conv2d(x, w, null, { padding: 1 }), gamma, beta, {
              training: true,
              runningMean,
              runningVar,
              relu: true,
            }),
            { kernel: 2 },
          ),
        ),
        fcw,
      ),
      labels,
    );
  backward(f());
  for (const p of [x, w, gamma, beta, fcw]) {
    const analytic = Float32Array.from(p.grad!.data);
    const h = 1e-2;
    for (let i = 0; i < p.size; i += Math.max(1, Math.floor(p.size / 12))) {
      const old = p.data[i];
      p.data[i] = old + h;
      const up = noGrad(() => f().item());
      p.data[i] = old - h;
      const down = noGrad(() => f().item());
      p.data[i] = old;
      const numeric = (up - down) / (2 * h);
      assert.ok(
        Math.abs(numeric - analytic[i]) <= 2e-3 + 5e-2 * Math.abs(numeric),
        `${p.shape} [${i}]: analytic ${analytic[i]} numeric ${numeric}`,
      );
    }
  }
});

test('scope returns buffers to the pool and disposed tensors refuse access', () => {
  const rng = new Random(5);
  const w = leaf([8, 8], rng);
  let inner: Tensor | null = null;
  const before = pooledByteCount();
  const kept = scope(() => {
    inner = relu(Tensor.randn([64, 8], rng));
    return linear(inner, w);
  });
  assert.ok(pooledByteCount() > before, 'intermediate buffers went back to the pool');
  assert.throws(() => inner!.data, /already disposed/);
  assert.equal(kept.shape.join(), '64,8');
  assert.ok(Number.isFinite(kept.data[0]));
});

test('scale multiplies values and gradients', () => {
  const x = Tensor.fromArray([1, -2]);
  x.requiresGrad = true;
  const y = scale(x, 3);
  assert.deepEqual(y.toArray(), [3, -6]);
  backward(y, Tensor.full([2], 1));
  assert.deepEqual(x.grad!.toArray(), [3, 3]);
});

test('bad input raises errors that name the op and the shapes', () => {
  const x = Tensor.zeros([2, 8, 8, 3]);
  const w = Tensor.zeros([16, 4, 3, 3]);
  assert.throws(
    () => conv2d(x, w),
    (e: Error) =>
      e instanceof RangeError &&
      e.message ===
        'conv2d: input [2, 8, 8, 3] (channels-last, 3 channels) does not match weight [16, 4, 3, 3] with groups=1',
  );
  assert.throws(
    () => conv2d(x, Tensor.zeros([16, 3, 3, 3]), null, { stride: Number.NaN }),
    (e: Error) =>
      e.message === 'Expected positive integer for stride of conv2d but received NaN of type number',
  );
  assert.throws(
    () => conv2d(Tensor.zeros([8, 8, 3]), Tensor.zeros([16, 3, 3, 3])),
    (e: Error) =>
      e.message === 'conv2d: expected 4-D input [N, H, W, C] (channels-last) but received shape [8, 8, 3]',
  );
  assert.throws(
    () => add(Tensor.zeros([2, 3]), Tensor.zeros([3, 2])),
    (e: Error) => e.message === 'add: shapes [2, 3] and [3, 2] differ',
  );
  assert.throws(
    () => new Tensor(new Float64Array(4) as unknown as Float32Array, [4]),
    (e: Error) =>
      e instanceof TypeError &&
      e.message === 'Expected Float32Array for tensor data but received Float64Array',
  );
  assert.throws(
    () => softmaxCrossEntropy(Tensor.zeros([2, 3]), Int32Array.from([0, 3])),
    (e: Error) => e.message === 'softmaxCrossEntropy: label 3 at row 1 is outside [0, 3)',
  );
  assert.throws(
    () =>
      batchNorm(Tensor.zeros([2, 4, 4, 8]), Tensor.zeros([4]), Tensor.zeros([4]), {
        training: true,
        runningMean: Tensor.zeros([4]),
        runningVar: Tensor.zeros([4]),
      }),
    (e: Error) =>
      e.message === 'batchNorm: gamma [4] does not match input [2, 4, 4, 8] with 8 channels (last dimension)',
  );
  assert.throws(
    () =>
      batchNorm(Tensor.zeros([2, 4]), Tensor.zeros([4]), Tensor.zeros([4]), {
        training: true,
        runningMean: Tensor.zeros([4]),
        runningVar: Tensor.zeros([4]),
        eps: Number.NaN,
      }),
    (e: Error) => e.message === 'Expected finite number for eps of batchNorm but received NaN of type number',
  );
});
