import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  codeRange,
  codesAt,
  dequantize,
  downsample,
  enhanceBits,
  quantizeToCodes,
  reconstructionOffset,
  scalesAt,
  upsample,
  type CascadeRule,
} from '../../src/quant/cascade.js';

const RULES: CascadeRule[] = ['floor', 'round'];

function allCodes(bits: number, rule: CascadeRule): Int32Array {
  const { min, max } = codeRange(bits, rule);
  return Int32Array.from({ length: max - min + 1 }, (_, i) => min + i);
}

test('codeRange: floor is two-complement, round is shifted up by one, both hold 2^b codes', () => {
  assert.deepEqual(codeRange(8, 'floor'), { min: -128, max: 127 });
  assert.deepEqual(codeRange(8, 'round'), { min: -127, max: 128 });
  assert.deepEqual(codeRange(1, 'floor'), { min: -1, max: 0 });
  assert.deepEqual(codeRange(1, 'round'), { min: 0, max: 1 });
  for (const rule of RULES) {
    for (let b = 1; b <= 16; b++) {
      const { min, max } = codeRange(b, rule);
      assert.equal(max - min + 1, 2 ** b);
    }
  }
});

test('exhaustive over all 256 codes of B = 8: every level keeps the range, drops exactly one bit, and inverts', () => {
  for (const rule of RULES) {
    let codes = allCodes(8, rule);
    for (let b = 8; b > 1; b--) {
      const { min, max } = codeRange(b - 1, rule);
      const lower = downsample(codes, rule);
      const bits = enhanceBits(codes, rule);
      const preimages = new Map<number, number[]>();
      codes.forEach((q, i) => {
        const d = lower[i];
        assert.ok(d >= min && d <= max, `${rule}: D(${q}) = ${d} leaves [${min}, ${max}] at ${b - 1} bits`);
        const residual = rule === 'floor' ? q - 2 * d : 2 * d - q;
        assert.ok(residual === 0 || residual === 1, `${rule}: residual of ${q} is ${residual}`);
        assert.equal(bits[i], residual);
        preimages.set(d, [...(preimages.get(d) ?? []), q]);
      });
      // Exactly two consecutive preimages for every (b-1)-bit code, including the clipped edges.
      assert.equal(preimages.size, 2 ** (b - 1));
      for (const [d, qs] of preimages) {
        assert.equal(qs.length, 2, `${rule}: ${d} at ${b - 1} bits has preimages ${qs}`);
        assert.equal(Math.abs(qs[1] - qs[0]), 1);
      }
      assert.deepEqual(upsample(lower, bits, rule), codes);
      // Downsampling the full b-bit range yields every (b-1)-bit code exactly twice, so it is the full lower range.
      codes = allCodes(b - 1, rule);
    }
  }
});

test('the clipped edges of the round rule stay in range where a naive round-half-up cascade would not', () => {
  const top = Int32Array.of(128, 127, -127, -126);
  assert.deepEqual([...downsample(top, 'round')], [64, 64, -63, -63]);
  assert.deepEqual([...enhanceBits(top, 'round')], [0, 1, 1, 0]);
  const floorTop = Int32Array.of(127, 126, -128, -127);
  assert.deepEqual([...downsample(floorTop, 'floor')], [63, 63, -64, -64]);
  assert.deepEqual([...enhanceBits(floorTop, 'floor')], [1, 0, 0, 1]);
});

test('codesAt equals iterated downsampling for every code, level and rule', () => {
  for (const rule of RULES) {
    const top = allCodes(8, rule);
    let codes = top;
    for (let b = 8; b >= 1; b--) {
      assert.deepEqual(codesAt(top, 8, b, rule), codes, `${rule} at ${b} bits`);
      codes = downsample(codes, rule);
    }
  }
});

test('quantizeToCodes: floor floors, round rounds half away from zero, both clip to the range', () => {
  const w = Float32Array.of(0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49, -0.51, 1000, -1000);
  const scales = Float32Array.of(1);
  assert.deepEqual([...quantizeToCodes(w, scales, 1, 4, 'round')], [1, -1, 2, -2, 3, -3, 0, -1, 8, -7]);
  assert.deepEqual([...quantizeToCodes(w, scales, 1, 4, 'floor')], [0, -1, 1, -2, 2, -3, 0, -1, 7, -8]);
});

test('quantizeToCodes uses the scale of each output channel', () => {
  const w = Float32Array.of(1, 2, 1, 2);
  assert.deepEqual([...quantizeToCodes(w, Float32Array.of(0.5, 0.25), 2, 8, 'round')], [2, 4, 4, 8]);
});

test('property: the floor cascade equals flooring w / s_b directly at every precision', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 8 }),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.float({ min: -4, max: 4, noNaN: true }), { minLength: 1, maxLength: 24 }),
      fc.float({ min: Math.fround(0.01), max: 1, noNaN: true }),
      (topBits, channels, values, scale) => {
        const w = Float32Array.from(values.flatMap((v) => Array<number>(channels).fill(v)));
        const top = Float32Array.from({ length: channels }, (_, c) => scale * (c + 1));
        const topCodes = quantizeToCodes(w, top, channels, topBits, 'floor');
        for (let b = 1; b <= topBits; b++) {
          const direct = quantizeToCodes(w, scalesAt(top, topBits, b), channels, b, 'floor');
          assert.deepEqual(codesAt(topCodes, topBits, b, 'floor'), direct);
        }
      },
    ),
    { seed: 42, numRuns: 200 },
  );
});

test('reconstruction offsets: mid-rise for floor; the centroid of the top codes of each code for round', () => {
  assert.equal(reconstructionOffset(8, 8, 'round'), 0);
  assert.equal(reconstructionOffset(8, 4, 'floor'), 0.5);
  for (let b = 1; b <= 8; b++) {
    const top = allCodes(8, 'round');
    const low = codesAt(top, 8, b, 'round');
    const sums = new Map<number, { sum: number; n: number }>();
    low.forEach((q, i) => {
      const s = sums.get(q) ?? { sum: 0, n: 0 };
      s.sum += top[i];
      s.n++;
      sums.set(q, s);
    });
    const offset = reconstructionOffset(8, b, 'round');
    for (const [q, { sum, n }] of sums) {
      // In units of s_B: the centroid of the top codes vs (q + offset) * 2^(8-b).
      assert.equal((q + offset) * 2 ** (8 - b), sum / n, `round, code ${q} at ${b} bits`);
    }
  }
});

test('floor mid-rise reconstruction is unbiased over a uniform input', () => {
  const n = 4096;
  const w = Float32Array.from({ length: n }, (_, i) => -1 + (2 * (i + 0.5)) / n);
  const top = Float32Array.of(1 / 128);
  const topCodes = quantizeToCodes(w, top, 1, 8, 'floor');
  for (const b of [8, 4, 2]) {
    const rec = dequantize(
      codesAt(topCodes, 8, b, 'floor'),
      scalesAt(top, 8, b),
      1,
      reconstructionOffset(8, b, 'floor'),
    );
    let bias = 0;
    for (let i = 0; i < n; i++) bias += rec[i] - w[i];
    assert.ok(Math.abs(bias / n) < 1e-6, `bias ${bias / n} at ${b} bits`);
  }
});

test('dequantize applies per-channel scales and the offset', () => {
  const out = dequantize(Int32Array.of(1, -2, 3, 0), Float32Array.of(2, 0.5), 2, 0.5);
  assert.deepEqual([...out], [3, -3, 1.75, 0.25]);
  assert.deepEqual([...scalesAt(Float32Array.of(0.25, 1), 8, 5)], [2, 8]);
});

test('validation errors name the parameter and the allowed interval', () => {
  assert.throws(() => codeRange(0, 'floor'), {
    name: 'RangeError',
    message: 'Expected bits in [1, 16] but received 0',
  });
  assert.throws(() => codeRange(17, 'floor'), RangeError);
  assert.throws(() => codeRange(2.5, 'floor'), {
    name: 'TypeError',
    message: 'Expected integer for bits but received 2.5 of type number',
  });
  assert.throws(() => codeRange(4, 'nearest' as CascadeRule), {
    name: 'TypeError',
    message: "Expected 'floor' or 'round' for rule but received 'nearest' of type string",
  });
  assert.throws(() => codesAt(Int32Array.of(8), 4, 2, 'floor'), {
    name: 'RangeError',
    message: 'Expected topCodes[0] in [-8, 7] (4-bit floor codes) but received 8',
  });
  assert.throws(() => codesAt(Int32Array.of(1), 4, 5, 'floor'), RangeError);
  assert.throws(() => upsample(Int32Array.of(1, 2), Uint8Array.of(0, 2), 'floor'), {
    message: 'Expected enhance bit 1 in [0, 1] but received 2',
  });
  assert.throws(() => upsample(Int32Array.of(1, 2), Uint8Array.of(0), 'floor'), RangeError);
  assert.throws(() => quantizeToCodes(new Float32Array(5), Float32Array.of(1, 1), 2, 8, 'floor'), {
    message: 'Expected weights length 5 to be a multiple of channels 2',
  });
  assert.throws(() => quantizeToCodes(new Float32Array(2), Float32Array.of(1, 0), 2, 8, 'floor'), {
    message: 'Expected positive finite scale for channel 1 but received 0',
  });
  assert.throws(() => quantizeToCodes(Float32Array.of(NaN), Float32Array.of(1), 1, 8, 'floor'), RangeError);
  assert.throws(() => quantizeToCodes(new Float32Array(2), Float32Array.of(1), 1.5, 8, 'floor'), TypeError);
});
