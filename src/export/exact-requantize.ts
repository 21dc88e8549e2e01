/**
 * Exact requantization: the parameters with which one QLinearConv reproduces, bit for bit, an integer
 * layer of the plan (`int-plan.ts`) followed by the quantizer of the next layer, or null when none
 * exist.
 *
 * The plan's codes for the next layer, from the exact integer accumulator acc of channel c (the native
 * engine's arithmetic, which the ConvInteger graph reproduces):
 *
 *     code(acc) = clip(floor(fl(fl(y inv) + 1/2)), 0, qmax),  y = max(fl(fl(scale acc) + bias), 0),  inv = fl(1 / s')
 *
 * A non-decreasing step function of sign(scale) acc, with thresholds T_1..T_qmax (T_j the smallest
 * accumulator whose code is at least j). A QLinearConv with input scale 1, output scale 1, zero points
 * 0, weights t k (an integer multiplier t with |t k| <= 127) and per-channel weight scale m computes
 * (ONNX Runtime's MLAS requantization: int32 sum plus the int32 bias, converted to float, one float32
 * multiply, round half to even, clamp)
 *
 *     code'(acc) = clamp(rhe(fl(fl(t acc + B) m)), 0, 255),
 *
 * also a non-decreasing step function, so the two agree for every input iff their thresholds agree.
 * With u = 1 / m that asks for (j - 1/2) u - B in (t (T_j - 1), t T_j] for every threshold inside the
 * accumulator's range: a small two-variable problem per channel, solved here by trying the integers B
 * near the real solution for each t and intersecting the intervals that u may take, and each candidate
 * is then checked in float32 at every threshold (and the range ends) before it is accepted.
 *
 * Why it is not always possible: B is an integer in units of the accumulator, so the folded batch-norm
 * shift can only be matched to 1/t of a unit, and one multiplier m has to place all qmax thresholds at
 * once. With few thresholds (2 and 3 bits: 3 and 7) and a large t (42 and 18), every channel of the
 * trained ResNet-20 has a solution; with 31 to 127 thresholds and t = 4, 2, 1 (5 to 7 bits) most
 * channels have none (bench/results/qlinear-exact.txt). At 8 bits the mid-rise codes 2q + 1 need 9
 * bits, and QLinearConv has no second term for the correction, so no layer qualifies.
 */
import type { PlanStep } from './int-plan.js';

type IntStep = Extract<PlanStep, { kind: 'int' }>;
type QuantizeStep = Extract<PlanStep, { kind: 'quantize' }>;

const f = Math.fround;

export interface ExactRequantization {
  /** Signed weight multiplier per output channel (sign(scale) t), so that |k'| = |t k| <= 127. */
  weightMultiplier: Int8Array;
  /** int32 bias per output channel, in accumulator units. */
  bias: Int32Array;
  /** float32 weight scale per output channel (input and output scales are 1). */
  multiplier: Float32Array;
}

/** Round half to even (the CPU's float-to-int conversion under the default rounding mode). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return x - Math.floor(x) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The next layer's code from accumulator `acc` of channel c, as the native engine computes it. */
export function referenceCode(step: IntStep, quantizer: QuantizeStep, c: number, acc: number): number {
  let y = f(f(step.scale[c] * acc) + step.bias[c]);
  if (step.relu && y < 0) y = 0;
  const inv = f(1 / f(quantizer.scale));
  const code = Math.floor(f(f(y * inv) + 0.5));
  return Math.min(quantizer.qmax, Math.max(quantizer.qmin, code));
}

/** Smallest s in [lo, hi] with g(s) >= j for a non-decreasing g, or hi + 1. */
function threshold(g: (s: number) => number, j: number, lo: number, hi: number): number {
  if (g(hi) < j) return hi + 1;
  let a = lo;
  let b = hi;
  while (a < b) {
    const mid = Math.floor((a + b) / 2);
    if (g(mid) >= j) b = mid;
    else a = mid + 1;
  }
  return a;
}

/**
 * The parameters of channel c, or null when no multiplier t, bias B and scale m reproduce it. Inputs
 * are codes in [0, inputMax].
 */
function channel(
  step: IntStep,
  quantizer: QuantizeStep,
  c: number,
  inputMax: number,
): { t: number; bias: number; multiplier: number } | null {
  const k = step.form.k;
  const per = k.length / step.outFeatures;
  let kmax = 0;
  let pos = 0;
  let neg = 0;
  for (let i = c * per; i < (c + 1) * per; i++) {
    kmax = Math.max(kmax, Math.abs(k[i]));
    if (k[i] > 0) pos += k[i] * inputMax;
    else neg += k[i] * inputMax;
  }
  const sign = step.scale[c] >= 0 ? 1 : -1;
  // In s = sign acc the reference is non-decreasing; s spans [lo, hi].
  const lo = sign > 0 ? neg : -pos;
  const hi = sign > 0 ? pos : -neg;
  const g = (s: number) => referenceCode(step, quantizer, c, sign * s);
  const thresholds: number[] = [];
  for (let j = 1; j <= quantizer.qmax; j++) thresholds.push(threshold(g, j, lo, hi));
  const inside = thresholds.map((tj, i) => ({ j: i + 1, tj })).filter(({ tj }) => tj > lo && tj <= hi);
  if (inside.length === 0 || kmax === 0) {
    // One code over the whole range: weights times 0 and the code as the bias.
    return { t: 0, bias: g(lo), multiplier: 1 };
  }
  for (let t = 1; t * kmax <= 127; t++) {
    const code = (B: number, m: number, s: number) =>
      Math.min(quantizer.qmax, Math.max(0, roundHalfEven(f(f(t * s + B) * m))));
    const exact = (B: number, m: number): boolean => {
      if (!(m > 0) || !Number.isFinite(m)) return false;
      for (let j = 1; j <= quantizer.qmax; j++) {
        const tj = thresholds[j - 1];
        if (tj <= hi && code(B, m, tj) < j) return false;
        if (tj > lo && code(B, m, Math.min(tj - 1, hi)) >= j) return false;
      }
      return true;
    };
    const first = inside[0];
    const last = inside[inside.length - 1];
    const u0 = first === last ? t * (hi - lo + 1) : (t * (last.tj - first.tj)) / (last.j - first.j);
    const b0 = (first.j - 0.5) * u0 - t * first.tj;
    const window = 4 * t + 8;
    for (let B = Math.floor(b0 - window); B <= Math.ceil(b0 + window); B++) {
      if (Math.abs(t * Math.max(-lo, hi) + Math.abs(B)) >= 2 ** 24) continue; // float32-exact sums only
      let uLo = -Infinity;
      let uHi = Infinity;
      for (const { j, tj } of inside) {
        uLo = Math.max(uLo, (t * (tj - 1) + B) / (j - 0.5));
        uHi = Math.min(uHi, (t * tj + B) / (j - 0.5));
      }
      if (!(uLo < uHi)) continue;
      for (const fraction of [0.5, 0.25, 0.75]) {
        const m = f(1 / (uLo + (uHi - uLo) * fraction));
        if (exact(B, m)) return { t, bias: B, multiplier: m };
      }
    }
  }
  return null;
}

/**
 * Exact QLinearConv parameters for `step` (an integer layer without residual or offset correction,
 * unsigned input codes in [0, inputMax]) followed by `quantizer` (unsigned codes), or null when some
 * channel has none.
 */
export function exactRequantization(
  step: IntStep,
  quantizer: QuantizeStep,
  inputMax: number,
): ExactRequantization | null {
  if (step.residual !== null || step.form.corr !== 0 || quantizer.qmin !== 0 || quantizer.qmax > 255)
    return null;
  const outC = step.outFeatures;
  const result: ExactRequantization = {
    weightMultiplier: new Int8Array(outC),
    bias: new Int32Array(outC),
    multiplier: new Float32Array(outC),
  };
  for (let c = 0; c < outC; c++) {
    const found = channel(step, quantizer, c, inputMax);
    if (found === null) return null;
    result.weightMultiplier[c] = (step.scale[c] >= 0 ? 1 : -1) * found.t;
    result.bias[c] = found.bias;
    result.multiplier[c] = found.multiplier;
  }
  return result;
}

/** How many channels of `step` have exact parameters (for reports). */
export function exactChannels(step: IntStep, quantizer: QuantizeStep, inputMax: number): number {
  let n = 0;
  for (let c = 0; c < step.outFeatures; c++) if (channel(step, quantizer, c, inputMax) !== null) n++;
  return n;
}
