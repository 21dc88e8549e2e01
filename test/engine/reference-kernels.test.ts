import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referenceBackend as be } from '../../src/engine/backend-reference.js';
import type { ConvGeometry, PoolGeometry } from '../../src/engine/backend.js';
import { Random } from '../../src/engine/random.js';
import {
  assertClose,
  assertGradient,
  assertNear,
  convGeometry,
  distinctArray,
  dot,
  poolGeometry,
  randomArray,
  uniformArray,
  type ConvShape,
  type PoolShape,
} from './gradcheck.js';

/*
 * Every backward kernel is checked against central differences (h = 1e-6) of L = sum(y * r) for a
 * random r, in Float64Array, with the max-norm relative error of gradcheck.ts below 1e-3. Output
 * buffers start as NaN so a kernel that skips or accumulates into an element cannot pass.
 */

const nanArray = (n: number): Float64Array => new Float64Array(n).fill(Number.NaN);

function convSizes(g: ConvGeometry): { x: number; w: number; y: number } {
  return {
    x: g.batch * g.inH * g.inW * g.inC,
    w: g.outC * (g.inC / g.groups) * g.kH * g.kW,
    y: g.batch * g.outH * g.outW * g.outC,
  };
}

function checkConvGradients(shape: ConvShape, seed: number, withBias = true): void {
  const g = convGeometry(shape);
  const sizes = convSizes(g);
  const rng = new Random(seed);
  const x = randomArray(sizes.x, rng);
  const w = randomArray(sizes.w, rng, 0.5);
  const bias = withBias ? randomArray(g.outC, rng) : null;
  const r = randomArray(sizes.y, rng);
  const y = new Float64Array(sizes.y);
  const objective = (): number => {
    be.conv2dForward(g, x, w, bias, y);
    return dot(y, r);
  };

  const dx = nanArray(sizes.x);
  const dw = nanArray(sizes.w);
  const dbias = withBias ? nanArray(g.outC) : null;
  be.conv2dBackwardData(g, r, w, dx);
  be.conv2dBackwardWeights(g, x, r, dw, dbias);

  assertGradient(objective, x, dx, 'conv dx');
  assertGradient(objective, w, dw, 'conv dw');
  if (bias !== null && dbias !== null) assertGradient(objective, bias, dbias, 'conv dbias');
}

test('conv2d gradients: stride 1 with padding', () => {
  checkConvGradients({ batch: 2, inH: 5, inW: 4, inC: 3, outC: 4, kH: 3, kW: 3, pad: 1 }, 1);
});

test('conv2d gradients: stride 2 with padding, uneven remainder', () => {
  checkConvGradients({ batch: 2, inH: 6, inW: 7, inC: 2, outC: 3, kH: 3, kW: 3, stride: 2, pad: 1 }, 2);
});

test('conv2d gradients: dilation 2, no bias', () => {
  checkConvGradients(
    { batch: 1, inH: 6, inW: 6, inC: 2, outC: 3, kH: 3, kW: 3, pad: 2, dilation: 2 },
    3,
    false,
  );
});

test('conv2d gradients: groups 2', () => {
  checkConvGradients({ batch: 2, inH: 4, inW: 4, inC: 4, outC: 6, kH: 3, kW: 3, pad: 1, groups: 2 }, 4);
});

test('conv2d gradients: depthwise with stride 2', () => {
  checkConvGradients(
    { batch: 2, inH: 5, inW: 5, inC: 3, outC: 3, kH: 3, kW: 3, stride: 2, pad: 1, groups: 3 },
    5,
  );
});

test('conv2d gradients: non-square kernel without padding', () => {
  checkConvGradients({ batch: 1, inH: 5, inW: 6, inC: 2, outC: 2, kH: 2, kW: 3, stride: 2 }, 6);
});

test('conv2d forward: a 1x1 convolution is a matmul over pixels', () => {
  const g = convGeometry({ batch: 2, inH: 3, inW: 2, inC: 4, outC: 3, kH: 1, kW: 1 });
  const rng = new Random(7);
  const sizes = convSizes(g);
  const x = randomArray(sizes.x, rng);
  const w = randomArray(sizes.w, rng);
  const bias = randomArray(g.outC, rng);
  const y = nanArray(sizes.y);
  be.conv2dForward(g, x, w, bias, y);

  const pixels = g.batch * g.inH * g.inW;
  const expected = new Float64Array(sizes.y);
  for (let p = 0; p < pixels; p++) {
    for (let o = 0; o < g.outC; o++) {
      let sum = bias[o];
      for (let i = 0; i < g.inC; i++) sum += x[p * g.inC + i] * w[o * g.inC + i];
      expected[p * g.outC + o] = sum;
    }
  }
  assertClose(y, expected, 1e-12, '1x1 conv');
});

test('conv2d forward: hand-computed values', () => {
  // x = 1..9 on a 3x3 grid, kernel [[1, 0], [0, -1]]: every output is x[i][j] - x[i+1][j+1] = -4.
  const diagonal = convGeometry({ batch: 1, inH: 3, inW: 3, inC: 1, outC: 1, kH: 2, kW: 2 });
  const y = nanArray(4);
  be.conv2dForward(
    diagonal,
    Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]),
    Float64Array.from([1, 0, 0, -1]),
    null,
    y,
  );
  assert.deepEqual(Array.from(y), [-4, -4, -4, -4]);

  // A 3x3 box filter over ones with zero padding counts the in-image cells: 4 at corners, 6 on edges.
  const box = convGeometry({ batch: 1, inH: 3, inW: 3, inC: 1, outC: 1, kH: 3, kW: 3, pad: 1 });
  const counts = nanArray(9);
  be.conv2dForward(
    box,
    new Float64Array(9).fill(1),
    new Float64Array(9).fill(1),
    Float64Array.from([0.5]),
    counts,
  );
  assert.deepEqual(Array.from(counts), [4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5]);

  // Depthwise 1x1 scales each channel by its own weight, with no mixing across channels.
  const depthwise = convGeometry({ batch: 1, inH: 1, inW: 2, inC: 2, outC: 2, kH: 1, kW: 1, groups: 2 });
  const scaled = nanArray(4);
  be.conv2dForward(depthwise, Float64Array.from([1, 2, 3, 4]), Float64Array.from([10, -1]), null, scaled);
  assert.deepEqual(Array.from(scaled), [10, -2, 30, -4]);
});

test('conv2d accepts Float32Array and matches the double-precision result', () => {
  const g = convGeometry({ batch: 1, inH: 4, inW: 4, inC: 2, outC: 2, kH: 3, kW: 3, pad: 1 });
  const sizes = convSizes(g);
  const rng = new Random(8);
  const x = randomArray(sizes.x, rng);
  const w = randomArray(sizes.w, rng);
  const y64 = new Float64Array(sizes.y);
  const y32 = new Float32Array(sizes.y);
  be.conv2dForward(g, x, w, null, y64);
  be.conv2dForward(g, Float32Array.from(x), Float32Array.from(w), null, y32);
  assertClose(y32, y64, 1e-6, 'float32 conv');
});

function checkLinearGradients(
  rows: number,
  inF: number,
  outF: number,
  seed: number,
  withBias: boolean,
): void {
  const rng = new Random(seed);
  const x = randomArray(rows * inF, rng);
  const w = randomArray(outF * inF, rng);
  const bias = withBias ? randomArray(outF, rng) : null;
  const r = randomArray(rows * outF, rng);
  const y = new Float64Array(rows * outF);
  const objective = (): number => {
    be.linearForward(rows, inF, outF, x, w, bias, y);
    return dot(y, r);
  };
  const dx = nanArray(rows * inF);
  const dw = nanArray(outF * inF);
  const dbias = withBias ? nanArray(outF) : null;
  be.linearBackward(rows, inF, outF, x, w, r, dx, dw, dbias);
  assertGradient(objective, x, dx, 'linear dx');
  assertGradient(objective, w, dw, 'linear dw');
  if (bias !== null && dbias !== null) assertGradient(objective, bias, dbias, 'linear dbias');

  // Without dx (first layer) the weight gradient must be the same.
  const dwOnly = nanArray(outF * inF);
  be.linearBackward(rows, inF, outF, x, w, r, null, dwOnly, null);
  assert.deepEqual(dwOnly, dw);
}

test('linear gradients with and without bias', () => {
  checkLinearGradients(3, 5, 4, 10, true);
  checkLinearGradients(2, 3, 6, 11, false);
});

test('linear forward: hand-computed values', () => {
  const y = nanArray(2);
  // One row [1, 2, 3] against w rows [1, 0, -1] and [2, 2, 2], bias [10, 0].
  be.linearForward(
    1,
    3,
    2,
    Float64Array.from([1, 2, 3]),
    Float64Array.from([1, 0, -1, 2, 2, 2]),
    Float64Array.from([10, 0]),
    y,
  );
  assert.deepEqual(Array.from(y), [8, 12]);
});

function preActivation(
  rows: number,
  channels: number,
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
): Float64Array {
  const y = new Float64Array(rows * channels);
  be.batchNormForwardTraining(
    rows,
    channels,
    x,
    gamma,
    beta,
    1e-5,
    false,
    y,
    new Float64Array(channels),
    new Float64Array(channels),
  );
  return y;
}

function checkBatchNormGradients(relu: boolean, seed: number): void {
  const rows = 8;
  const channels = 3;
  const eps = 1e-5;
  const rng = new Random(seed);
  const x = randomArray(rows * channels, rng, 2).map((v) => v + 1);
  const gamma = randomArray(channels, rng).map((v) => v + 0.5);
  const beta = randomArray(channels, rng, 0.5);
  const r = randomArray(rows * channels, rng);
  if (relu) {
    // Finite differences across the ReLU kink would be meaningless; this seed keeps clear of it.
    const nearest = Math.min(...Array.from(preActivation(rows, channels, x, gamma, beta), Math.abs));
    assert.ok(nearest > 1e-3, `seed ${seed} puts a pre-activation at ${nearest}, too close to the kink`);
  }
  const y = new Float64Array(rows * channels);
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  const objective = (): number => {
    be.batchNormForwardTraining(rows, channels, x, gamma, beta, eps, relu, y, mean, variance);
    return dot(y, r);
  };
  objective();
  if (relu) {
    assert.ok(
      y.some((v) => v === 0) && y.some((v) => v > 0),
      'the ReLU should clip some outputs and pass others',
    );
  }
  const dx = nanArray(rows * channels);
  const dgamma = nanArray(channels);
  const dbeta = nanArray(channels);
  be.batchNormBackward(rows, channels, x, r, gamma, mean, variance, eps, relu, y, dx, dgamma, dbeta);
  assertGradient(objective, x, dx, 'batch norm dx');
  assertGradient(objective, gamma, dgamma, 'batch norm dgamma');
  assertGradient(objective, beta, dbeta, 'batch norm dbeta');
}

test('batch norm gradients without relu', () => {
  checkBatchNormGradients(false, 20);
});

test('batch norm gradients with fused relu', () => {
  checkBatchNormGradients(true, 21);
});

test('batch norm forward: statistics, output mean beta, and inference agreement', () => {
  const rows = 6;
  const channels = 2;
  const eps = 1e-3;
  const rng = new Random(22);
  const x = randomArray(rows * channels, rng, 3);
  const gamma = Float64Array.from([2, -0.5]);
  const beta = Float64Array.from([0.25, -1]);
  const y = nanArray(rows * channels);
  const mean = nanArray(channels);
  const variance = nanArray(channels);
  be.batchNormForwardTraining(rows, channels, x, gamma, beta, eps, false, y, mean, variance);

  for (let c = 0; c < channels; c++) {
    const column = Array.from({ length: rows }, (_, r) => x[r * channels + c]);
    const expectedMean = column.reduce((s, v) => s + v, 0) / rows;
    const expectedVariance = column.reduce((s, v) => s + (v - expectedMean) ** 2, 0) / rows;
    assertNear(mean[c], expectedMean, 1e-12, `mean of channel ${c}`);
    assertNear(variance[c], expectedVariance, 1e-12, `biased variance of channel ${c}`);

    const out = Array.from({ length: rows }, (_, r) => y[r * channels + c]);
    const outMean = out.reduce((s, v) => s + v, 0) / rows;
    const outVariance = out.reduce((s, v) => s + (v - outMean) ** 2, 0) / rows;
    assertNear(outMean, beta[c], 1e-12, `output mean of channel ${c} should be beta`);
    const expectedOutVariance = (gamma[c] ** 2 * expectedVariance) / (expectedVariance + eps);
    assertNear(outVariance, expectedOutVariance, 1e-10, `output variance of channel ${c}`);
  }

  const inferred = nanArray(rows * channels);
  be.batchNormForwardInference(rows, channels, x, gamma, beta, mean, variance, eps, false, inferred);
  assert.deepEqual(inferred, y);

  const clipped = nanArray(rows * channels);
  be.batchNormForwardInference(rows, channels, x, gamma, beta, mean, variance, eps, true, clipped);
  assert.deepEqual(
    Array.from(clipped),
    Array.from(y, (v) => Math.max(v, 0)),
  );
});

/** Values in [-8, 8] kept 0.05 away from the kinks at 0 and 6. */
function awayFromKinks(n: number, rng: Random): Float64Array {
  return uniformArray(n, rng, -8, 8).map((v) => {
    if (Math.abs(v) < 0.05) return v + 0.1;
    if (Math.abs(v - 6) < 0.05) return v + 0.1;
    return v;
  });
}

for (const [name, cap] of [
  ['relu', Infinity],
  ['relu6', 6],
] as const) {
  test(`${name} gradient`, () => {
    const rng = new Random(cap === 6 ? 30 : 31);
    const x = awayFromKinks(64, rng);
    const r = randomArray(64, rng);
    const y = new Float64Array(64);
    const objective = (): number => {
      be.reluForward(x, cap, y);
      return dot(y, r);
    };
    objective();
    const dx = nanArray(64);
    be.reluBackward(y, r, cap, dx);
    assert.ok(dx.some((v) => v === 0) && dx.some((v) => v !== 0), 'both regions should be exercised');
    assertGradient(objective, x, dx, `${name} dx`);
  });
}

test('relu and relu6 forward values', () => {
  const x = Float64Array.from([-2, 0, 3, 6, 7.5]);
  const y = nanArray(5);
  be.reluForward(x, Infinity, y);
  assert.deepEqual(Array.from(y), [0, 0, 3, 6, 7.5]);
  be.reluForward(x, 6, y);
  assert.deepEqual(Array.from(y), [0, 0, 3, 6, 6]);
  // At the cap itself the output is saturated, so no gradient passes.
  const dx = nanArray(5);
  be.reluBackward(y, new Float64Array(5).fill(1), 6, dx);
  assert.deepEqual(Array.from(dx), [0, 0, 1, 0, 0]);
});

test('add, mul and axpy values and gradients', () => {
  const rng = new Random(40);
  const a = randomArray(10, rng);
  const b = randomArray(10, rng);
  const r = randomArray(10, rng);
  const out = new Float64Array(10);

  const sum = (): number => {
    be.add(a, b, out);
    return dot(out, r);
  };
  assertGradient(sum, a, r, 'add da');
  assertGradient(sum, b, r, 'add db');

  const product = (): number => {
    be.mul(a, b, out);
    return dot(out, r);
  };
  const da = new Float64Array(10);
  const db = new Float64Array(10);
  be.mul(r, b, da);
  be.mul(r, a, db);
  assertGradient(product, a, da, 'mul da');
  assertGradient(product, b, db, 'mul db');

  be.add(Float64Array.from([1, 2]), Float64Array.from([10, 20]), out.subarray(0, 2));
  assert.deepEqual(Array.from(out.subarray(0, 2)), [11, 22]);
  be.mul(Float64Array.from([3, -2]), Float64Array.from([4, 5]), out.subarray(0, 2));
  assert.deepEqual(Array.from(out.subarray(0, 2)), [12, -10]);

  // axpy with out aliasing a, as gradient accumulation uses it.
  const acc = Float64Array.from([1, 2, 3]);
  be.axpy(acc, 0.5, Float64Array.from([2, 4, -6]), acc);
  assert.deepEqual(Array.from(acc), [2, 4, 0]);
});

function poolSizes(g: PoolGeometry): { x: number; y: number } {
  return { x: g.batch * g.inH * g.inW * g.channels, y: g.batch * g.outH * g.outW * g.channels };
}

const poolCases: readonly { name: string; shape: PoolShape }[] = [
  { name: '2x2 stride 2', shape: { batch: 2, inH: 4, inW: 4, channels: 2, kH: 2, kW: 2 } },
  {
    name: '3x3 stride 2 pad 1',
    shape: { batch: 1, inH: 5, inW: 6, channels: 3, kH: 3, kW: 3, stride: 2, pad: 1 },
  },
  {
    name: '3x3 stride 1 pad 1 (overlapping)',
    shape: { batch: 1, inH: 4, inW: 4, channels: 2, kH: 3, kW: 3, stride: 1, pad: 1 },
  },
  { name: 'global', shape: { batch: 2, inH: 3, inW: 4, channels: 3, kH: 3, kW: 4 } },
];

for (const { name, shape } of poolCases) {
  test(`max pool gradient: ${name}`, () => {
    const g = poolGeometry(shape);
    const sizes = poolSizes(g);
    const rng = new Random(50 + sizes.x);
    const x = distinctArray(sizes.x, rng);
    const r = randomArray(sizes.y, rng);
    const y = new Float64Array(sizes.y);
    const objective = (): number => {
      be.maxPoolForward(g, x, y);
      return dot(y, r);
    };
    const dx = nanArray(sizes.x);
    be.maxPoolBackward(g, x, r, dx);
    assertGradient(objective, x, dx, `max pool ${name} dx`);
  });

  test(`avg pool gradient: ${name}`, () => {
    const g = poolGeometry(shape);
    const sizes = poolSizes(g);
    const rng = new Random(60 + sizes.x);
    const x = randomArray(sizes.x, rng);
    const r = randomArray(sizes.y, rng);
    const y = new Float64Array(sizes.y);
    const objective = (): number => {
      be.avgPoolForward(g, x, y);
      return dot(y, r);
    };
    const dx = nanArray(sizes.x);
    be.avgPoolBackward(g, r, dx);
    assertGradient(objective, x, dx, `avg pool ${name} dx`);
  });
}

test('pooling forward: padding is excluded from averages and ignored by max', () => {
  const g = poolGeometry({ batch: 1, inH: 3, inW: 3, channels: 1, kH: 3, kW: 3, stride: 1, pad: 1 });
  const constant = new Float64Array(9).fill(-2.5);
  const y = nanArray(9);
  be.avgPoolForward(g, constant, y);
  assert.deepEqual(Array.from(y), new Array(9).fill(-2.5));

  // All-negative input: counting padding as zeros would make every max 0.
  const x = Float64Array.from([-1, -2, -3, -4, -5, -6, -7, -8, -9]);
  be.maxPoolForward(g, x, y);
  assert.deepEqual(Array.from(y), [-1, -1, -2, -1, -1, -2, -4, -4, -5]);

  // Top-left window holds -1, -2, -4, -5: mean -3 over four cells, not -12 / 9.
  be.avgPoolForward(g, x, y);
  assert.equal(y[0], -3);

  const global = poolGeometry({ batch: 1, inH: 2, inW: 2, channels: 2, kH: 2, kW: 2 });
  const pair = nanArray(2);
  be.avgPoolForward(global, Float64Array.from([1, 10, 2, 20, 3, 30, 6, 60]), pair);
  assert.deepEqual(Array.from(pair), [3, 30]);
  be.maxPoolForward(global, Float64Array.from([1, 10, 2, 20, 3, 30, 6, 60]), pair);
  assert.deepEqual(Array.from(pair), [6, 60]);
});

test('max pool sends a tied maximum its gradient once, to the first cell in scan order', () => {
  const g = poolGeometry({ batch: 1, inH: 2, inW: 2, channels: 1, kH: 2, kW: 2 });
  const dx = nanArray(4);
  be.maxPoolBackward(g, Float64Array.from([1, 3, 3, 0]), Float64Array.from([5]), dx);
  assert.deepEqual(Array.from(dx), [0, 5, 0, 0]);
});

for (const smoothing of [0, 0.1]) {
  test(`softmax cross-entropy gradient, smoothing ${smoothing}`, () => {
    const rows = 4;
    const classes = 5;
    const rng = new Random(70);
    const logits = randomArray(rows * classes, rng, 2);
    const labels = Int32Array.from([0, 3, 4, 3]);
    const probs = new Float64Array(rows * classes);
    const objective = (): number =>
      be.softmaxCrossEntropyForward(rows, classes, logits, labels, smoothing, probs);
    objective();
    const dlogits = nanArray(rows * classes);
    be.softmaxCrossEntropyBackward(rows, classes, probs, labels, smoothing, 1, dlogits);
    // Before the finite differences, which leave probs from a perturbed forward behind.
    const scaled = nanArray(rows * classes);
    be.softmaxCrossEntropyBackward(rows, classes, probs, labels, smoothing, -2.5, scaled);
    assertGradient(objective, logits, dlogits, 'softmax cross-entropy dlogits');

    assertClose(
      scaled,
      dlogits.map((v) => -2.5 * v),
      1e-12,
      'scale multiplies the gradient',
    );
  });
}

test('softmax cross-entropy forward: hand-computed values', () => {
  const logits = Float64Array.from([1, 2, 3, 0, 0, 0]);
  const labels = Int32Array.from([2, 1]);
  const probs = nanArray(6);
  const z = Math.E + Math.E ** 2 + Math.E ** 3;
  const row0 = -Math.log(Math.E ** 3 / z);
  const row1 = Math.log(3);
  const loss = be.softmaxCrossEntropyForward(2, 3, logits, labels, 0, probs);
  assertNear(loss, (row0 + row1) / 2, 1e-12, 'unsmoothed loss');
  assertClose(
    probs,
    [Math.E / z, Math.E ** 2 / z, Math.E ** 3 / z, 1 / 3, 1 / 3, 1 / 3],
    1e-12,
    'probabilities',
  );

  // Smoothing s spreads s / classes on every class: row loss -(1 - s) log p_label - (s / 3) sum_k log p_k.
  const s = 0.3;
  const logP0 = [1, 2, 3].map((v) => v - Math.log(z));
  const smoothRow0 = -(1 - s) * logP0[2] - (s / 3) * (logP0[0] + logP0[1] + logP0[2]);
  // Uniform logits lose log(3) whatever the smoothing, so row 1 is unchanged.
  const smoothed = be.softmaxCrossEntropyForward(2, 3, logits, labels, s, probs);
  assertNear(smoothed, (smoothRow0 + row1) / 2, 1e-12, 'smoothed loss');

  // Huge logits stay finite thanks to the max shift.
  const huge = be.softmaxCrossEntropyForward(
    1,
    2,
    Float64Array.from([1000, 0]),
    Int32Array.from([1]),
    0,
    probs,
  );
  assertNear(huge, 1000, 1e-9, 'loss of huge logits');
});

test('softmax cross-entropy rejects labels outside [0, classes)', () => {
  const probs = new Float64Array(6);
  assert.throws(
    () => be.softmaxCrossEntropyForward(2, 3, new Float64Array(6), Int32Array.from([0, 3]), 0, probs),
    new RangeError('Expected label in [0, 2] for labels[1] but received 3'),
  );
  assert.throws(
    () => be.softmaxCrossEntropyBackward(2, 3, probs, Int32Array.from([-1, 0]), 0, 1, new Float64Array(6)),
    new RangeError('Expected label in [0, 2] for labels[0] but received -1'),
  );
});

test('sgdStep matches hand-computed steps with momentum, nesterov and weight decay', () => {
  // lr 0.1, momentum 0.9, weight decay 0.01; p = [1, -2], g = [0.5, 0.25], v = [0.1, -0.2].
  // g' = [0.51, 0.23]; v' = 0.9 v + g' = [0.6, 0.05].
  const start = (): { p: Float64Array; g: Float64Array; v: Float64Array } => ({
    p: Float64Array.from([1, -2]),
    g: Float64Array.from([0.5, 0.25]),
    v: Float64Array.from([0.1, -0.2]),
  });
  const near = (actual: ArrayLike<number>, expected: number[], what: string): void =>
    expected.forEach((e, i) => assertNear(actual[i], e, 1e-12, `${what}[${i}]`));

  const plain = start();
  be.sgdStep(plain.p, plain.g, plain.v, 0.1, 0.9, 0.01, false);
  near(plain.v, [0.6, 0.05], 'momentum velocity');
  near(plain.p, [0.94, -2.005], 'momentum param');

  // Nesterov steps along g' + momentum * v' = [1.05, 0.275].
  const nesterov = start();
  be.sgdStep(nesterov.p, nesterov.g, nesterov.v, 0.1, 0.9, 0.01, true);
  near(nesterov.v, [0.6, 0.05], 'nesterov velocity');
  near(nesterov.p, [0.895, -2.0275], 'nesterov param');

  // No velocity buffer: plain SGD on g'.
  const bare = start();
  be.sgdStep(bare.p, bare.g, null, 0.1, 0.9, 0.01, false);
  near(bare.p, [0.949, -2.023], 'plain SGD param');

  // A second momentum step reuses the stored velocity: g' = [0.5094, 0.22995], v = [1.0494, 0.27495].
  be.sgdStep(plain.p, plain.g, plain.v, 0.1, 0.9, 0.01, false);
  near(plain.v, [1.0494, 0.27495], 'second velocity');
  near(plain.p, [0.94 - 0.10494, -2.005 - 0.027495], 'second param');

  // Float32 parameters are updated in place too.
  const p32 = Float32Array.from([1, -2]);
  be.sgdStep(p32, Float32Array.from([0.5, 0.25]), Float32Array.from([0.1, -0.2]), 0.1, 0.9, 0.01, false);
  assert.deepEqual(p32, Float32Array.from([0.94, -2.005]));
});
