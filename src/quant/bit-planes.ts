import { assertBits, assertCodesInRange, assertRule, codesAt, type CascadeRule } from './cascade.js';

/**
 * Vertical layers of a tensor's top codes: the basic layer (codes at minBits, minBits bits a weight) and one enhance
 * layer per extra bit (1 bit a weight), so basic + the first k enhance layers are the codes at minBits + k, exactly.
 *
 * Bit order (also the file format's): a packed array of `width`-bit fields is a little-endian bit stream. Field i
 * occupies stream bits [i*width, (i+1)*width), its least significant bit first, and stream bit j is bit (j mod 8) of
 * byte floor(j / 8), counted from the least significant bit. For enhance layers (width 1) that is 8 weights a byte,
 * weight i in bit (i mod 8), LSB-first. Unused high bits of the last byte are zero.
 *
 * A code is stored as the `bits`-bit two's complement of (q - bias) with bias 0 for `floor` and 1 for `round`: this maps
 * each rule's range ([-2^(b-1), 2^(b-1)-1] and [-2^(b-1)+1, 2^(b-1)]) one to one onto the 2^b bit patterns.
 */

export interface BitPlanes {
  readonly topBits: number;
  readonly minBits: number;
  readonly rule: CascadeRule;
  readonly count: number;
  /** Codes at minBits, packed minBits bits a weight. */
  readonly basic: Uint8Array;
  /** enhance[k] is the bit dropped between minBits + k + 1 and minBits + k, packed 8 weights a byte. */
  readonly enhance: readonly Uint8Array[];
}

function assertCount(count: unknown): asserts count is number {
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw new TypeError(
      `Expected non-negative integer for count but received ${String(count)} of type ${typeof count}`,
    );
  }
}

export function packedByteLength(count: number, width: number): number {
  assertCount(count);
  assertBits(width, 'width');
  return Math.ceil((count * width) / 8);
}

/** Packs unsigned `width`-bit fields; values must already fit. */
export function packBits(values: ArrayLike<number>, width: number): Uint8Array {
  const out = new Uint8Array(packedByteLength(values.length, width));
  const limit = 2 ** width;
  let acc = 0;
  let accBits = 0;
  let pos = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0 || v >= limit) {
      throw new RangeError(`Expected values[${i}] in [0, ${limit - 1}] for width ${width} but received ${v}`);
    }
    acc |= v << accBits;
    accBits += width;
    while (accBits >= 8) {
      out[pos++] = acc & 0xff;
      acc >>>= 8;
      accBits -= 8;
    }
  }
  if (accBits > 0) out[pos] = acc & 0xff;
  return out;
}

export function unpackBits(bytes: Uint8Array, width: number, count: number): Uint32Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('Expected Uint8Array for packed bytes');
  const needed = packedByteLength(count, width);
  if (bytes.length < needed) {
    throw new RangeError(
      `Expected at least ${needed} packed bytes for ${count} ${width}-bit fields but received ${bytes.length}`,
    );
  }
  const out = new Uint32Array(count);
  if (width === 1) {
    for (let i = 0; i < count; i++) out[i] = (bytes[i >> 3] >> (i & 7)) & 1;
    return out;
  }
  const mask = 2 ** width - 1;
  let acc = 0;
  let accBits = 0;
  let pos = 0;
  for (let i = 0; i < count; i++) {
    while (accBits < width) {
      acc |= bytes[pos++] << accBits;
      accBits += 8;
    }
    out[i] = acc & mask;
    acc >>>= width;
    accBits -= width;
  }
  return out;
}

function storageBias(rule: CascadeRule): number {
  return rule === 'floor' ? 0 : 1;
}

export function packCodes(codes: Int32Array, bits: number, rule: CascadeRule): Uint8Array {
  assertCodesInRange(codes, bits, rule);
  const bias = storageBias(rule);
  const mask = 2 ** bits - 1;
  const fields = new Uint32Array(codes.length);
  for (let i = 0; i < codes.length; i++) fields[i] = (codes[i] - bias) & mask;
  return packBits(fields, bits);
}

export function unpackCodes(bytes: Uint8Array, count: number, bits: number, rule: CascadeRule): Int32Array {
  assertRule(rule);
  const fields = unpackBits(bytes, bits, count);
  const bias = storageBias(rule);
  const half = 2 ** (bits - 1);
  const full = 2 ** bits;
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const u = fields[i];
    out[i] = (u >= half ? u - full : u) + bias;
  }
  return out;
}

export function packEnhanceBits(bits: Uint8Array): Uint8Array {
  if (!(bits instanceof Uint8Array)) throw new TypeError('Expected Uint8Array for enhance bits');
  return packBits(bits, 1);
}

export function unpackEnhanceBits(bytes: Uint8Array, count: number): Uint8Array {
  return Uint8Array.from(unpackBits(bytes, 1, count));
}

export function decomposeBitPlanes(
  topCodes: Int32Array,
  topBits: number,
  minBits: number,
  rule: CascadeRule,
): BitPlanes {
  assertBits(topBits, 'topBits');
  assertBits(minBits, 'minBits');
  if (minBits > topBits) throw new RangeError(`Expected minBits in [1, ${topBits}] but received ${minBits}`);
  assertCodesInRange(topCodes, topBits, rule, 'topCodes');
  const count = topCodes.length;
  const basic = packCodes(codesAt(topCodes, topBits, minBits, rule), minBits, rule);
  const enhance: Uint8Array[] = [];
  for (let b = minBits + 1; b <= topBits; b++) {
    // The parity of the b-bit code is the bit that level b adds (see enhanceBits in cascade.ts).
    const k = topBits - b;
    const plane = new Uint8Array(Math.ceil(count / 8));
    for (let i = 0; i < count; i++) {
      const q = rule === 'floor' ? topCodes[i] >> k : (topCodes[i] + (1 << k) - 1) >> k;
      plane[i >> 3] |= (q & 1) << (i & 7);
    }
    enhance.push(plane);
  }
  return { topBits, minBits, rule, count, basic, enhance };
}

/**
 * Codes at `bits` (default: every layer given) from the basic layer and the first bits - minBits enhance layers.
 */
export function composeBitPlanes(
  planes: Pick<BitPlanes, 'minBits' | 'rule' | 'count' | 'basic' | 'enhance'>,
  bits = planes.minBits + planes.enhance.length,
): Int32Array {
  const { minBits, rule, count, basic, enhance } = planes;
  assertBits(minBits, 'minBits');
  assertBits(bits, 'bits');
  assertRule(rule);
  assertCount(count);
  const maxBits = minBits + enhance.length;
  if (bits < minBits || bits > maxBits) {
    throw new RangeError(`Expected bits in [${minBits}, ${maxBits}] but received ${bits}`);
  }
  // Each step is the inverse of one downsampling, a bijection between full ranges, so the result needs no range check.
  const codes = unpackCodes(basic, count, minBits, rule);
  const sign = rule === 'floor' ? 1 : -1;
  const planeBytes = Math.ceil(count / 8);
  for (let level = 0; level < bits - minBits; level++) {
    const plane = enhance[level];
    if (!(plane instanceof Uint8Array) || plane.length < planeBytes) {
      throw new RangeError(`Expected enhance layer ${level} to hold at least ${planeBytes} bytes`);
    }
    for (let i = 0; i < count; i++) codes[i] = 2 * codes[i] + sign * ((plane[i >> 3] >> (i & 7)) & 1);
  }
  return codes;
}
