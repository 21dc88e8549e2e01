import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  codeRange,
  codesAt,
  downsample,
  enhanceBits,
  quantizeToCodes,
  upsample,
  type CascadeRule,
} from '../../src/quant/cascade.js';
import {
  composeBitPlanes,
  decomposeBitPlanes,
  packBits,
  packCodes,
  packEnhanceBits,
  packedByteLength,
  unpackBits,
  unpackCodes,
  unpackEnhanceBits,
} from '../../src/quant/bit-planes.js';

test('bit order: fields fill each byte from its least significant bit', () => {
  assert.deepEqual([...packBits([1, 0, 1, 1, 0, 0, 0, 0, 1], 1)], [0b00001101, 0b00000001]);
  assert.deepEqual([...packBits([0b01, 0b10, 0b11, 0b00, 0b11], 2)], [0b00111001, 0b00000011]);
  // A 3-bit field straddling a byte boundary: fields 5, 6, 7 occupy bits 0-2, 3-5, 6-8.
  assert.deepEqual([...packBits([5, 6, 7], 3)], [0b11110101, 0b00000001]);
  assert.equal(packedByteLength(9, 1), 2);
  assert.equal(packedByteLength(5, 3), 2);
});

test('packBits and unpackBits are inverses for every width from 1 to 16', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 16 }), fc.array(fc.nat(), { maxLength: 40 }), (width, raw) => {
      const values = raw.map((v) => v % 2 ** width);
      const packed = packBits(values, width);
      assert.equal(packed.length, Math.ceil((values.length * width) / 8));
      assert.deepEqual([...unpackBits(packed, width, values.length)], values);
    }),
    { seed: 7, numRuns: 300 },
  );
});

test('packCodes stores every code of either rule in b bits, one to one', () => {
  for (const rule of ['floor', 'round'] as CascadeRule[]) {
    for (let b = 1; b <= 9; b++) {
      const { min, max } = codeRange(b, rule);
      const codes = Int32Array.from({ length: max - min + 1 }, (_, i) => min + i);
      const packed = packCodes(codes, b, rule);
      assert.equal(packed.length, Math.ceil((codes.length * b) / 8));
      assert.deepEqual(unpackCodes(packed, codes.length, b, rule), codes);
      assert.equal(new Set(unpackBits(packed, b, codes.length)).size, codes.length);
    }
  }
  // Documented mapping: two's complement of (q - bias), bias 0 for floor and 1 for round.
  assert.deepEqual([...unpackBits(packCodes(Int32Array.of(-2, -1, 0, 1), 2, 'floor'), 2, 4)], [2, 3, 0, 1]);
  assert.deepEqual([...unpackBits(packCodes(Int32Array.of(-1, 0, 1, 2), 2, 'round'), 2, 4)], [2, 3, 0, 1]);
  assert.throws(() => packCodes(Int32Array.of(2), 2, 'floor'), RangeError);
});

const planeCase = fc
  .record({
    topBits: fc.integer({ min: 3, max: 8 }),
    minFraction: fc.double({ min: 0, max: 0.999, noNaN: true }),
    rule: fc.constantFrom<CascadeRule>('floor', 'round'),
    channels: fc.integer({ min: 1, max: 5 }),
    perChannel: fc.integer({ min: 1, max: 23 }),
    seed: fc.integer(),
    spread: fc.double({ min: 0.1, max: 3, noNaN: true }),
  })
  .map((c) => ({ ...c, minBits: 1 + Math.floor(c.minFraction * (c.topBits - 1)) }));

/** Random weights with random per-channel scales; some weights land beyond the range to exercise clipping. */
function randomTopCodes(c: {
  topBits: number;
  rule: CascadeRule;
  channels: number;
  perChannel: number;
  seed: number;
  spread: number;
}): Int32Array {
  let s = c.seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  const n = c.channels * c.perChannel;
  const w = Float32Array.from({ length: n }, () => (next() * 2 - 1) * c.spread);
  const scales = Float32Array.from({ length: c.channels }, () => (0.2 + next()) / 2 ** (c.topBits - 1));
  return quantizeToCodes(w, scales, c.channels, c.topBits, c.rule);
}

test('property: basic + first (b - b_min) enhance layers are exactly codesAt(top, B, b) at every b', () => {
  fc.assert(
    fc.property(planeCase, (c) => {
      const top = randomTopCodes(c);
      const planes = decomposeBitPlanes(top, c.topBits, c.minBits, c.rule);
      assert.equal(planes.enhance.length, c.topBits - c.minBits);
      assert.equal(planes.basic.length, Math.ceil((top.length * c.minBits) / 8));
      for (let b = c.minBits; b <= c.topBits; b++) {
        const expected = codesAt(top, c.topBits, b, c.rule);
        assert.deepEqual(composeBitPlanes(planes, b), expected, `b = ${b}`);
        if (b > c.minBits) {
          const plane = planes.enhance[b - c.minBits - 1];
          assert.equal(plane.length, Math.ceil(top.length / 8));
          const bits = unpackEnhanceBits(plane, top.length);
          assert.ok(bits.every((e) => e === 0 || e === 1));
          assert.deepEqual(bits, enhanceBits(expected, c.rule));
          assert.deepEqual(plane, packEnhanceBits(enhanceBits(expected, c.rule)));
        }
      }
      assert.deepEqual(composeBitPlanes(planes), top);
    }),
    { seed: 2024, numRuns: 200 },
  );
});

test('property: downsample and upsample are inverses along the whole cascade', () => {
  fc.assert(
    fc.property(planeCase, (c) => {
      let codes = randomTopCodes(c);
      for (let b = c.topBits; b > c.minBits; b--) {
        const lower = downsample(codes, c.rule);
        const bits = enhanceBits(codes, c.rule);
        assert.ok(bits.every((e) => e === 0 || e === 1));
        const { min, max } = codeRange(b - 1, c.rule);
        assert.ok(lower.every((q) => q >= min && q <= max));
        assert.deepEqual(upsample(lower, bits, c.rule), codes);
        codes = lower;
      }
    }),
    { seed: 99, numRuns: 200 },
  );
});

test('composeBitPlanes validates the precision and the layer sizes', () => {
  const planes = decomposeBitPlanes(Int32Array.of(5, -3, 7), 4, 2, 'floor');
  assert.throws(() => composeBitPlanes(planes, 5), {
    name: 'RangeError',
    message: 'Expected bits in [2, 4] but received 5',
  });
  assert.throws(() => composeBitPlanes(planes, 1), RangeError);
  assert.throws(() => composeBitPlanes({ ...planes, enhance: [new Uint8Array(0)] }, 3), {
    message: 'Expected enhance layer 0 to hold at least 1 bytes',
  });
  assert.throws(() => composeBitPlanes({ ...planes, basic: new Uint8Array(0) }, 2), RangeError);
  assert.throws(() => decomposeBitPlanes(Int32Array.of(8), 4, 2, 'floor'), RangeError);
  assert.throws(() => decomposeBitPlanes(Int32Array.of(1), 4, 5, 'floor'), {
    message: 'Expected minBits in [1, 4] but received 5',
  });
});
