/**
 * The oneDNN backend against the TypeScript reference on random shapes, strides, paddings,
 * dilations and groups (property-based). Skipped only when the addon is not built, unless
 * STRATA_REQUIRE_NATIVE=1 (set by CI), which turns a missing addon into a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Backend, ConvGeometry, PoolGeometry } from '../../src/engine/backend.js';
import { referenceBackend } from '../../src/engine/backend-reference.js';
import { loadNativeBackend } from '../../src/engine/backend-native.js';
import { Random } from '../../src/engine/random.js';

const loaded = loadNativeBackend();
const native: Backend | null = loaded.ok ? loaded.backend : null;
const skip =
  native === null && process.env.STRATA_REQUIRE_NATIVE !== '1'
    ? `native addon not built: ${loaded.ok ? '' : loaded.reason}`
    : false;

function rand(n: number, rng: Random, low = -1, high = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = low + (high - low) * rng.next();
  return a;
}

/** Mixed absolute/relative check scaled by the magnitude of the expected values. */
function assertNear(actual: Float32Array, expected: Float32Array, what: string, rtol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 1e-3;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= rtol * scale + rtol * Math.abs(expected[i]))) {
      assert.fail(`${what}: element ${i} is ${actual[i]} but reference says ${expected[i]} (scale ${scale})`);
    }
  }
}

/** fc.assert, but the failure message carries the assertion that failed, not only the inputs. */
function check<T>(property: fc.IPropertyWithHooks<T>, params: fc.Parameters<T>): void {
  const details = fc.check(property, params);
  if (details.failed) {
    throw new Error(
      `counterexample ${JSON.stringify(details.counterexample)} (seed ${details.seed}): ${String(details.errorInstance)}`,
    );
  }
}

const convArb = fc
  .record({
    batch: fc.integer({ min: 1, max: 3 }),
    groups: fc.constantFrom(1, 1, 2, 3),
    inPerGroup: fc.integer({ min: 1, max: 4 }),
    outPerGroup: fc.integer({ min: 1, max: 4 }),
    depthwise: fc.boolean(),
    kH: fc.integer({ min: 1, max: 3 }),
    kW: fc.integer({ min: 1, max: 3 }),
    strideH: fc.integer({ min: 1, max: 2 }),
    strideW: fc.integer({ min: 1, max: 2 }),
    padH: fc.integer({ min: 0, max: 2 }),
    padW: fc.integer({ min: 0, max: 2 }),
    dil: fc.integer({ min: 1, max: 2 }),
    inH: fc.integer({ min: 3, max: 9 }),
    inW: fc.integer({ min: 3, max: 9 }),
    bias: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .map((r) => {
    const groups = r.depthwise ? r.inPerGroup * r.groups : r.groups;
    const inC = r.depthwise ? groups : r.inPerGroup * groups;
    const outC = r.depthwise ? groups : r.outPerGroup * groups;
    const outH = Math.floor((r.inH + 2 * r.padH - r.dil * (r.kH - 1) - 1) / r.strideH) + 1;
    const outW = Math.floor((r.inW + 2 * r.padW - r.dil * (r.kW - 1) - 1) / r.strideW) + 1;
    const g: ConvGeometry = {
      batch: r.batch,
      inH: r.inH,
      inW: r.inW,
      inC,
      outH,
      outW,
      outC,
      kH: r.kH,
      kW: r.kW,
      strideH: r.strideH,
      strideW: r.strideW,
      padH: r.padH,
      padW: r.padW,
      dilationH: r.dil,
      dilationW: r.dil,
      groups,
    };
    return { g, bias: r.bias, seed: r.seed };
  })
  .filter(({ g }) => g.outH >= 1 && g.outW >= 1);

test('convolution forward, backward-data and backward-weights match the reference', { skip }, () => {
  const nb = native!;
  check(
    fc.property(convArb, ({ g, bias, seed }) => {
      const rng = new Random(seed);
      const xs = g.batch * g.inH * g.inW * g.inC;
      const ys = g.batch * g.outH * g.outW * g.outC;
      const ws = g.outC * (g.inC / g.groups) * g.kH * g.kW;
      const x = rand(xs, rng);
      const w = rand(ws, rng);
      const b = bias ? rand(g.outC, rng) : null;
      const dy = rand(ys, rng);
      const [yN, yR] = [new Float32Array(ys), new Float32Array(ys)];
      nb.conv2dForward(g, x, w, b, yN);
      referenceBackend.conv2dForward(g, x, w, b, yR);
      assertNear(yN, yR, `conv2dForward ${JSON.stringify(g)}`);
      const [dxN, dxR] = [new Float32Array(xs), new Float32Array(xs)];
      nb.conv2dBackwardData(g, dy, w, dxN);
      referenceBackend.conv2dBackwardData(g, dy, w, dxR);
      assertNear(dxN, dxR, `conv2dBackwardData ${JSON.stringify(g)}`);
      const [dwN, dwR] = [new Float32Array(ws), new Float32Array(ws)];
      const [dbN, dbR] = bias ? [new Float32Array(g.outC), new Float32Array(g.outC)] : [null, null];
      nb.conv2dBackwardWeights(g, x, dy, dwN, dbN);
      referenceBackend.conv2dBackwardWeights(g, x, dy, dwR, dbR);
      assertNear(dwN, dwR, `conv2dBackwardWeights ${JSON.stringify(g)}`);
      if (dbN && dbR) assertNear(dbN, dbR, 'conv bias gradient');
    }),
    { numRuns: 150, seed: 42 },
  );
});

test(
  'batch norm (training, inference, backward; with and without fused ReLU) matches the reference',
  { skip },
  () => {
    const nb = native!;
    check(
      fc.property(
        fc.integer({ min: 2, max: 200 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 << 30 }),
        (rows, C, relu, seed) => {
          const rng = new Random(seed);
          const n = rows * C;
          const x = rand(n, rng, -2, 3);
          const gamma = rand(C, rng, 0.5, 1.5);
          const beta = rand(C, rng);
          const dy = rand(n, rng);
          const out = () => ({ y: new Float32Array(n), mean: new Float32Array(C), v: new Float32Array(C) });
          const N = out();
          const R = out();
          nb.batchNormForwardTraining(rows, C, x, gamma, beta, 1e-5, relu, N.y, N.mean, N.v);
          referenceBackend.batchNormForwardTraining(rows, C, x, gamma, beta, 1e-5, relu, R.y, R.mean, R.v);
          assertNear(N.y, R.y, 'bn forward y', 2e-4);
          assertNear(N.mean, R.mean, 'bn mean');
          assertNear(N.v, R.v, 'bn variance');
          const g = () => ({ dx: new Float32Array(n), dg: new Float32Array(C), db: new Float32Array(C) });
          const gN = g();
          const gR = g();
          nb.batchNormBackward(rows, C, x, dy, gamma, R.mean, R.v, 1e-5, relu, R.y, gN.dx, gN.dg, gN.db);
          referenceBackend.batchNormBackward(
            rows,
            C,
            x,
            dy,
            gamma,
            R.mean,
            R.v,
            1e-5,
            relu,
            R.y,
            gR.dx,
            gR.dg,
            gR.db,
          );
          assertNear(gN.dx, gR.dx, 'bn dx', 5e-4);
          assertNear(gN.dg, gR.dg, 'bn dgamma', 2e-4);
          assertNear(gN.db, gR.db, 'bn dbeta', 2e-4);
          const [iN, iR] = [new Float32Array(n), new Float32Array(n)];
          nb.batchNormForwardInference(rows, C, x, gamma, beta, R.mean, R.v, 1e-5, relu, iN);
          referenceBackend.batchNormForwardInference(rows, C, x, gamma, beta, R.mean, R.v, 1e-5, relu, iR);
          assertNear(iN, iR, 'bn inference', 2e-4);
        },
      ),
      { numRuns: 60, seed: 7 },
    );
  },
);

const poolArb = fc
  .record({
    batch: fc.integer({ min: 1, max: 3 }),
    channels: fc.integer({ min: 1, max: 5 }),
    inH: fc.integer({ min: 2, max: 9 }),
    inW: fc.integer({ min: 2, max: 9 }),
    k: fc.integer({ min: 1, max: 3 }),
    s: fc.integer({ min: 1, max: 3 }),
    p: fc.integer({ min: 0, max: 1 }),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .filter((r) => r.p * 2 <= r.k && r.k <= r.inH + 2 * r.p && r.k <= r.inW + 2 * r.p)
  .map((r) => {
    const g: PoolGeometry = {
      batch: r.batch,
      inH: r.inH,
      inW: r.inW,
      channels: r.channels,
      outH: Math.floor((r.inH + 2 * r.p - r.k) / r.s) + 1,
      outW: Math.floor((r.inW + 2 * r.p - r.k) / r.s) + 1,
      kH: r.k,
      kW: r.k,
      strideH: r.s,
      strideW: r.s,
      padH: r.p,
      padW: r.p,
    };
    return { g, seed: r.seed };
  });

test('max and average pooling forward/backward match the reference', { skip }, () => {
  const nb = native!;
  check(
    fc.property(poolArb, ({ g, seed }) => {
      const rng = new Random(seed);
      const xs = g.batch * g.inH * g.inW * g.channels;
      const ys = g.batch * g.outH * g.outW * g.channels;
      const x = rand(xs, rng);
      const dy = rand(ys, rng);
      for (const kind of ['max', 'avg'] as const) {
        const [yN, yR] = [new Float32Array(ys), new Float32Array(ys)];
        const [dxN, dxR] = [new Float32Array(xs), new Float32Array(xs)];
        if (kind === 'max') {
          nb.maxPoolForward(g, x, yN);
          referenceBackend.maxPoolForward(g, x, yR);
          nb.maxPoolBackward(g, x, dy, dxN);
          referenceBackend.maxPoolBackward(g, x, dy, dxR);
        } else {
          nb.avgPoolForward(g, x, yN);
          referenceBackend.avgPoolForward(g, x, yR);
          nb.avgPoolBackward(g, dy, dxN);
          referenceBackend.avgPoolBackward(g, dy, dxR);
        }
        assertNear(yN, yR, `${kind}Pool forward ${JSON.stringify(g)}`);
        assertNear(dxN, dxR, `${kind}Pool backward ${JSON.stringify(g)}`);
      }
    }),
    { numRuns: 100, seed: 3 },
  );
});

test('linear, element-wise, loss and SGD kernels match the reference', { skip }, () => {
  const nb = native!;
  check(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 2, max: 12 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 1 << 30 }),
      (rows, inF, outF, bias, seed) => {
        const rng = new Random(seed);
        const x = rand(rows * inF, rng);
        const w = rand(outF * inF, rng);
        const b = bias ? rand(outF, rng) : null;
        const [yN, yR] = [new Float32Array(rows * outF), new Float32Array(rows * outF)];
        nb.linearForward(rows, inF, outF, x, w, b, yN);
        referenceBackend.linearForward(rows, inF, outF, x, w, b, yR);
        assertNear(yN, yR, 'linearForward');
        const dy = rand(rows * outF, rng);
        const mk = () => ({
          dx: new Float32Array(rows * inF),
          dw: new Float32Array(outF * inF),
          db: new Float32Array(outF),
        });
        const N = mk();
        const R = mk();
        nb.linearBackward(rows, inF, outF, x, w, dy, N.dx, N.dw, bias ? N.db : null);
        referenceBackend.linearBackward(rows, inF, outF, x, w, dy, R.dx, R.dw, bias ? R.db : null);
        assertNear(N.dx, R.dx, 'linear dx');
        assertNear(N.dw, R.dw, 'linear dw');
        assertNear(N.db, R.db, 'linear dbias');

        const n = rows * inF;
        const a = rand(n, rng, -8, 8);
        const c = rand(n, rng, -8, 8);
        for (const cap of [Infinity, 6]) {
          const [rN, rR] = [new Float32Array(n), new Float32Array(n)];
          nb.reluForward(a, cap, rN);
          referenceBackend.reluForward(a, cap, rR);
          assertNear(rN, rR, `relu cap=${cap}`);
          const [bN, bR] = [new Float32Array(n), new Float32Array(n)];
          nb.reluBackward(rR, c, cap, bN);
          referenceBackend.reluBackward(rR, c, cap, bR);
          assertNear(bN, bR, `reluBackward cap=${cap}`);
        }
        for (const op of ['add', 'mul'] as const) {
          const [oN, oR] = [new Float32Array(n), new Float32Array(n)];
          nb[op](a, c, oN);
          referenceBackend[op](a, c, oR);
          assertNear(oN, oR, op);
        }
        const [aN, aR] = [new Float32Array(n), new Float32Array(n)];
        nb.axpy(a, -0.37, c, aN);
        referenceBackend.axpy(a, -0.37, c, aR);
        assertNear(aN, aR, 'axpy');

        const labels = Int32Array.from({ length: rows }, () => rng.int(outF));
        for (const smoothing of [0, 0.1]) {
          const [pN, pR] = [new Float32Array(rows * outF), new Float32Array(rows * outF)];
          const lN = nb.softmaxCrossEntropyForward(rows, outF, yR, labels, smoothing, pN);
          const lR = referenceBackend.softmaxCrossEntropyForward(rows, outF, yR, labels, smoothing, pR);
          assert.ok(Math.abs(lN - lR) <= 1e-5 * Math.max(1, Math.abs(lR)), `loss ${lN} vs ${lR}`);
          assertNear(pN, pR, 'softmax probs');
          const [gN, gR] = [new Float32Array(rows * outF), new Float32Array(rows * outF)];
          nb.softmaxCrossEntropyBackward(rows, outF, pR, labels, smoothing, 0.5, gN);
          referenceBackend.softmaxCrossEntropyBackward(rows, outF, pR, labels, smoothing, 0.5, gR);
          assertNear(gN, gR, 'softmax cross-entropy gradient');
        }

        for (const [momentum, nesterov] of [
          [0, false],
          [0.9, false],
          [0.9, true],
        ] as const) {
          const p0 = rand(n, rng);
          const g0 = rand(n, rng);
          const pN = Float32Array.from(p0);
          const pR = Float32Array.from(p0);
          const vN = momentum > 0 ? rand(n, new Random(seed)) : null;
          const vR = vN ? Float32Array.from(vN) : null;
          nb.sgdStep(pN, g0, vN, 0.1, momentum, 5e-4, nesterov);
          referenceBackend.sgdStep(pR, g0, vR, 0.1, momentum, 5e-4, nesterov);
          assertNear(pN, pR, `sgd momentum=${momentum} nesterov=${nesterov}`);
          if (vN && vR) assertNear(vN, vR, 'sgd velocity');
        }
      },
    ),
    { numRuns: 60, seed: 11 },
  );
});

test('native kernels refuse buffers that are too small instead of overrunning them', { skip }, () => {
  const nb = native!;
  const g: ConvGeometry = {
    batch: 1,
    inH: 4,
    inW: 4,
    inC: 2,
    outH: 4,
    outW: 4,
    outC: 3,
    kH: 3,
    kW: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    dilationH: 1,
    dilationW: 1,
    groups: 1,
  };
  assert.throws(
    () => nb.conv2dForward(g, new Float32Array(32), new Float32Array(54), null, new Float32Array(10)),
    /conv2dForward: y holds 10 floats but 48 are needed/,
  );
  assert.throws(
    () =>
      nb.conv2dForward(
        { ...g, outH: 5 },
        new Float32Array(32),
        new Float32Array(54),
        null,
        new Float32Array(80),
      ),
    /conv2dForward: inconsistent convolution geometry/,
  );
  assert.throws(
    () => nb.add(new Float32Array(3), new Float32Array(2), new Float32Array(3)),
    /add: b holds 2 floats but 3/,
  );
});
