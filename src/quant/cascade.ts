/**
 * Integer side of vertical layering: the cascade that derives every lower precision from the B-bit codes.
 *
 * Why only two rules exist. For the dropped bit to be one enhance layer, a one-bit downsampling D must map the
 * 2^b codes of precision b onto the 2^(b-1) codes of precision b-1 with exactly two preimages each, and those two
 * preimages must differ only in the dropped bit. A monotone map with that property over a contiguous range has to pair
 * consecutive codes, so D is a floor of q/2 with some offset. Unbiasedness cannot come from D itself; it comes from
 * where each code is reconstructed:
 *
 * - `floor`: codes in [-2^(b-1), 2^(b-1)-1], q_B = clip(floor(w / s_B)), D(q) = q >> 1, enhance bit e = q - 2 D(q).
 *   The b-bit code is the literal top b bits of the B-bit two's-complement code, and flooring along the cascade equals
 *   flooring w / s_b directly. Each code covers [q s_b, (q+1) s_b), so it is reconstructed mid-rise at (q + 1/2) s_b.
 * - `round`: codes in [-2^(b-1)+1, 2^(b-1)] (shifted by one so that ceil(q/2) never leaves the range, which a
 *   two's-complement range would at its top edge), q_B = clip(round-half-away-from-zero(w / s_B)),
 *   D(q) = ceil(q / 2) = (q + 1) >> 1, enhance bit e = 2 D(q) - q. A b-bit code q collects the B-bit codes
 *   2^k q - 2^k + 1 .. 2^k q (k = B - b), so it is reconstructed at their centroid (q - 1/2 + 2^-(k+1)) s_b, which is
 *   q_B s_B at b = B.
 *
 * In both rules the scale doubles per dropped bit: s_b = s_B 2^(B-b).
 */

export type CascadeRule = 'floor' | 'round';

export const CASCADE_RULES: readonly CascadeRule[] = ['floor', 'round'];

export const MIN_CODE_BITS = 1;
export const MAX_CODE_BITS = 16;

export interface CodeRange {
  readonly min: number;
  readonly max: number;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}' of type string`;
  return `${String(value)} of type ${typeof value}`;
}

export function assertBits(bits: unknown, name = 'bits'): asserts bits is number {
  if (typeof bits !== 'number' || !Number.isInteger(bits)) {
    throw new TypeError(`Expected integer for ${name} but received ${describe(bits)}`);
  }
  if (bits < MIN_CODE_BITS || bits > MAX_CODE_BITS) {
    throw new RangeError(`Expected ${name} in [${MIN_CODE_BITS}, ${MAX_CODE_BITS}] but received ${bits}`);
  }
}

export function assertRule(rule: unknown, name = 'rule'): asserts rule is CascadeRule {
  if (rule !== 'floor' && rule !== 'round') {
    throw new TypeError(`Expected 'floor' or 'round' for ${name} but received ${describe(rule)}`);
  }
}

function assertLevels(topBits: number, bits: number): void {
  assertBits(topBits, 'topBits');
  assertBits(bits, 'bits');
  if (bits > topBits) throw new RangeError(`Expected bits in [1, ${topBits}] but received ${bits}`);
}

function assertChannels(channels: unknown, length: number, what: string): asserts channels is number {
  if (typeof channels !== 'number' || !Number.isInteger(channels) || channels < 1) {
    throw new TypeError(`Expected positive integer for channels but received ${describe(channels)}`);
  }
  if (length % channels !== 0) {
    throw new RangeError(`Expected ${what} length ${length} to be a multiple of channels ${channels}`);
  }
}

function assertScales(scales: Float32Array, channels: number): void {
  if (!(scales instanceof Float32Array)) throw new TypeError('Expected Float32Array for scales');
  if (scales.length !== channels) {
    throw new RangeError(`Expected ${channels} scales (one per channel) but received ${scales.length}`);
  }
  for (let c = 0; c < channels; c++) {
    const s = scales[c];
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new RangeError(`Expected positive finite scale for channel ${c} but received ${s}`);
    }
  }
}

/** The representable codes at `bits` bits under `rule`. */
export function codeRange(bits: number, rule: CascadeRule): CodeRange {
  assertBits(bits);
  assertRule(rule);
  const half = 2 ** (bits - 1);
  return rule === 'floor' ? { min: -half, max: half - 1 } : { min: -half + 1, max: half };
}

/**
 * Checks that every code lies in the range of `bits` bits; the cascade arithmetic is only a bijection there.
 */
export function assertCodesInRange(codes: Int32Array, bits: number, rule: CascadeRule, name = 'codes'): void {
  if (!(codes instanceof Int32Array)) throw new TypeError(`Expected Int32Array for ${name}`);
  const { min, max } = codeRange(bits, rule);
  for (let i = 0; i < codes.length; i++) {
    const q = codes[i];
    if (q < min || q > max) {
      throw new RangeError(
        `Expected ${name}[${i}] in [${min}, ${max}] (${bits}-bit ${rule} codes) but received ${q}`,
      );
    }
  }
}

/**
 * Top codes of a weight tensor whose first dimension is the output channel (one scale per channel).
 * `floor` floors w / s; `round` rounds half away from zero, so it has no systematic bias at ties.
 */
export function quantizeToCodes(
  w: Float32Array,
  scales: Float32Array,
  channels: number,
  bits: number,
  rule: CascadeRule,
): Int32Array {
  if (!(w instanceof Float32Array)) throw new TypeError('Expected Float32Array for weights');
  assertChannels(channels, w.length, 'weights');
  assertScales(scales, channels);
  const { min, max } = codeRange(bits, rule);
  const out = new Int32Array(w.length);
  const perChannel = w.length / channels;
  for (let c = 0; c < channels; c++) {
    const s = scales[c];
    const start = c * perChannel;
    for (let i = start; i < start + perChannel; i++) {
      const x = w[i] / s;
      if (Number.isNaN(x)) throw new RangeError(`Expected finite weight at index ${i} but received ${w[i]}`);
      let q = rule === 'floor' ? Math.floor(x) : x < 0 ? -Math.round(-x) : Math.round(x);
      if (q < min) q = min;
      else if (q > max) q = max;
      out[i] = q;
    }
  }
  return out;
}

/** One level down the cascade. Works on any integers; the range invariant is the caller's. */
export function downsample(codes: Int32Array, rule: CascadeRule): Int32Array {
  if (!(codes instanceof Int32Array)) throw new TypeError('Expected Int32Array for codes');
  assertRule(rule);
  const out = new Int32Array(codes.length);
  if (rule === 'floor') for (let i = 0; i < codes.length; i++) out[i] = codes[i] >> 1;
  else for (let i = 0; i < codes.length; i++) out[i] = (codes[i] + 1) >> 1;
  return out;
}

/**
 * Codes at `bits` from codes at `topBits`. Nested floors (ceils) of halves are one floor (ceil) of q / 2^k, so the
 * whole cascade is one shift.
 */
export function codesAt(topCodes: Int32Array, topBits: number, bits: number, rule: CascadeRule): Int32Array {
  assertLevels(topBits, bits);
  assertCodesInRange(topCodes, topBits, rule, 'topCodes');
  const k = topBits - bits;
  const out = new Int32Array(topCodes.length);
  if (rule === 'floor') for (let i = 0; i < topCodes.length; i++) out[i] = topCodes[i] >> k;
  else {
    const bias = (1 << k) - 1;
    for (let i = 0; i < topCodes.length; i++) out[i] = (topCodes[i] + bias) >> k;
  }
  return out;
}

/**
 * The bit dropped going from `codesHigh` to the next lower level. It is the parity of q under both rules:
 * q - 2 floor(q/2) and 2 ceil(q/2) - q are both 1 exactly when q is odd.
 */
export function enhanceBits(codesHigh: Int32Array, rule: CascadeRule): Uint8Array {
  if (!(codesHigh instanceof Int32Array)) throw new TypeError('Expected Int32Array for codesHigh');
  assertRule(rule);
  const out = new Uint8Array(codesHigh.length);
  for (let i = 0; i < codesHigh.length; i++) out[i] = codesHigh[i] & 1;
  return out;
}

/** Inverse of (downsample, enhanceBits): floor gives q = 2 q' + e, round gives q = 2 q' - e. */
export function upsample(codesLow: Int32Array, bits: Uint8Array, rule: CascadeRule): Int32Array {
  if (!(codesLow instanceof Int32Array)) throw new TypeError('Expected Int32Array for codesLow');
  if (!(bits instanceof Uint8Array)) throw new TypeError('Expected Uint8Array for enhance bits');
  assertRule(rule);
  if (bits.length !== codesLow.length) {
    throw new RangeError(`Expected ${codesLow.length} enhance bits but received ${bits.length}`);
  }
  const sign = rule === 'floor' ? 1 : -1;
  const out = new Int32Array(codesLow.length);
  for (let i = 0; i < codesLow.length; i++) {
    const e = bits[i];
    if (e > 1) throw new RangeError(`Expected enhance bit ${i} in [0, 1] but received ${e}`);
    out[i] = 2 * codesLow[i] + sign * e;
  }
  return out;
}

/** w ~ (q_b + offset) * s_b; see the header comment for where each offset comes from. */
export function reconstructionOffset(topBits: number, bits: number, rule: CascadeRule): number {
  assertLevels(topBits, bits);
  assertRule(rule);
  return rule === 'floor' ? 0.5 : -0.5 + 2 ** -(topBits - bits + 1);
}

/** s_b = s_B 2^(B-b): exact in floating point, so nothing drifts between levels. */
export function scalesAt(topScales: Float32Array, topBits: number, bits: number): Float32Array {
  if (!(topScales instanceof Float32Array)) throw new TypeError('Expected Float32Array for topScales');
  assertLevels(topBits, bits);
  const factor = 2 ** (topBits - bits);
  const out = new Float32Array(topScales.length);
  for (let i = 0; i < topScales.length; i++) out[i] = topScales[i] * factor;
  return out;
}

/** Float weights from codes, with `scales` already at the codes' precision. */
export function dequantize(
  codes: Int32Array,
  scales: Float32Array,
  channels: number,
  offset: number,
): Float32Array {
  if (!(codes instanceof Int32Array)) throw new TypeError('Expected Int32Array for codes');
  assertChannels(channels, codes.length, 'codes');
  assertScales(scales, channels);
  if (!Number.isFinite(offset)) throw new RangeError(`Expected finite offset but received ${offset}`);
  const out = new Float32Array(codes.length);
  const perChannel = codes.length / channels;
  for (let c = 0; c < channels; c++) {
    const s = scales[c];
    const start = c * perChannel;
    for (let i = start; i < start + perChannel; i++) out[i] = (codes[i] + offset) * s;
  }
  return out;
}
