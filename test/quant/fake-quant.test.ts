import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Backend } from '../../src/engine/backend.js';
import { referenceBackend } from '../../src/engine/backend-reference.js';
import { loadNativeBackend } from '../../src/engine/backend-native.js';
import { Random } from '../../src/engine/random.js';
import { codesAt, quantizeToCodes, reconstructionOffset, type CascadeRule } from '../../src/quant/cascade.js';

const loaded = loadNativeBackend();
const backends: Backend[] = [referenceBackend, ...(loaded.ok ? [loaded.backend] : [])];
if (!loaded.ok && process.env.STRATA_REQUIRE_NATIVE === '1') throw new Error(loaded.message);

function randomWeights(n: number, rng: Random): Float32Array {
  // Heavy tails plus exact grid points and exact halves: the cases where a division or a rounding
  // rule could disagree with the cascade.
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    w[i] =
      r < 0.1
        ? Math.round(rng.normal() * 40) * 0.01
        : r < 0.2
          ? (Math.round(rng.normal() * 40) + 0.5) * 0.01
          : rng.normal() * 0.3;
  }
  return w;
}

test('fake-quantized weights use exactly the cascade codes the file will hold, at every precision', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 3, max: 8 }),
      fc.constantFrom<CascadeRule>('floor', 'round'),
      fc.integer({ min: 0, max: 1 << 30 }),
      (channels, per, topBits, rule, seed) => {
        const rng = new Random(seed);
        const w = randomWeights(channels * per, rng);
        const scales = Float32Array.from({ length: channels }, (_, c) =>
          c % 3 === 0 ? 0.01 : 0.002 + rng.next() * 0.02,
        );
        const top = quantizeToCodes(w, scales, channels, topBits, rule);
        for (let bits = 1; bits <= topBits; bits++) {
          const expected = codesAt(top, topBits, bits, rule);
          const offset = reconstructionOffset(topBits, bits, rule);
          for (const backend of backends) {
            const codes = new Int32Array(w.length);
            const out = new Float32Array(w.length);
            backend.fakeQuantWeightForward(w, channels, scales, topBits, bits, rule, out, codes);
            assert.deepEqual(codes, expected, `${backend.name} codes at ${bits} bits (${rule})`);
            for (let i = 0; i < w.length; i++) {
              const c = Math.floor(i / per);
              const value = Math.fround((expected[i] + offset) * scales[c] * 2 ** (topBits - bits));
              assert.equal(out[i], value, `${backend.name} value ${i} at ${bits} bits`);
            }
          }
        }
      },
    ),
    { numRuns: 60, seed: 5 },
  );
});

test('weight fake-quant gradients: straight-through inside the range, LSQ step-size gradient per channel', () => {
  for (const backend of backends) {
    const w = Float32Array.from([0.05, -0.31, 0.9, -2.0, 0.02, 0.33]);
    const scales = Float32Array.from([0.1, 0.05]); // channel 0: w/s = 0.5, -3.1, 9 (clipped at 3 bits: max 3)
    const dy = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const dw = new Float32Array(6);
    const ds = new Float32Array(2);
    backend.fakeQuantWeightBackward(w, 2, scales, 3, 2, 'floor', dy, dw, ds);
    // 3-bit floor codes: ch0 floor(0.5)=0, floor(-3.1)=-4, floor(9)=3 clipped; ch1: -40 -> -4 clipped, 0.4 -> 0, 6.6 -> 3 clipped.
    assert.deepEqual(Array.from(dw), [1, 2, 0, 0, 5, 0], backend.name);
    // 2-bit codes (k = 1): ch0 0, -2, 1; ch1 -2, 0, 1; d w^/ds = 2 (q + 1/2) - [inside] w/s.
    const ch0 = 1 * (2 * 0.5 - 0.5) + 2 * (2 * -1.5 + 3.1) + 3 * (2 * 1.5);
    const ch1 = 4 * (2 * -1.5) + 5 * (2 * 0.5 - 0.4) + 6 * (2 * 1.5);
    assert.ok(Math.abs(ds[0] - ch0) < 1e-4, `${backend.name}: ${ds[0]} vs ${ch0}`);
    assert.ok(Math.abs(ds[1] - ch1) < 1e-4, `${backend.name}: ${ds[1]} vs ${ch1}`);
  }
});

test('activation fake-quant: values on the grid, gradient passes inside the range only', () => {
  for (const backend of backends) {
    const x = Float32Array.from([-0.3, 0.04, 0.26, 0.74, 2.0]);
    const y = new Float32Array(5);
    backend.fakeQuantActForward(x, 0.1, 0, 7, y);
    assert.deepEqual(
      Array.from(y, (v) => Math.round(v * 10)),
      [0, 0, 3, 7, 7],
      backend.name,
    );
    const dx = new Float32Array(5);
    const ds = backend.fakeQuantActBackward(x, 0.1, 0, 7, Float32Array.from([1, 1, 1, 1, 1]), dx);
    assert.deepEqual(Array.from(dx), [0, 1, 1, 1, 0], backend.name);
    const expected = 0 + (0 - 0.4) + (3 - 2.6) + (7 - 7.4) + 7;
    assert.ok(Math.abs(ds - expected) < 1e-5, `${backend.name}: ${ds} vs ${expected}`);
  }
});

test(
  'native and reference activation fake-quant agree on random tensors',
  { skip: !loaded.ok && 'native addon not built' },
  () => {
    const native = backends[1];
    const rng = new Random(9);
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + rng.int(5000);
      const x = Float32Array.from({ length: n }, () => rng.normal() * 3);
      const bits = 2 + rng.int(7);
      const signed = rng.next() < 0.5;
      const qmax = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
      const qmin = signed ? -qmax - 1 : 0;
      const s = 0.01 + rng.next();
      const [a, b] = [new Float32Array(n), new Float32Array(n)];
      native.fakeQuantActForward(x, s, qmin, qmax, a);
      referenceBackend.fakeQuantActForward(x, s, qmin, qmax, b);
      assert.deepEqual(a, b);
      const dy = Float32Array.from({ length: n }, () => rng.normal());
      const [da, db] = [new Float32Array(n), new Float32Array(n)];
      const ga = native.fakeQuantActBackward(x, s, qmin, qmax, dy, da);
      const gb = referenceBackend.fakeQuantActBackward(x, s, qmin, qmax, dy, db);
      assert.deepEqual(da, db);
      assert.ok(Math.abs(ga - gb) <= 1e-6 * Math.max(1, Math.abs(gb)) + 1e-3, `${ga} vs ${gb}`);
    }
  },
);
