import assert from 'node:assert/strict';
import type { ConvGeometry, FloatArray, PoolGeometry } from '../../src/engine/backend.js';
import type { Random } from '../../src/engine/random.js';

/**
 * Helpers for checking kernels against finite differences and against each other. Shared by the
 * reference-kernel tests and the native-versus-reference comparison.
 */

/** Standard-normal values times `scale`, in double precision (copy with Float32Array.from for float32). */
export function randomArray(n: number, rng: Random, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/** Uniform values in [low, high). */
export function uniformArray(n: number, rng: Random, low: number, high: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = low + (high - low) * rng.next();
  return out;
}

/**
 * Distinct values spaced `gap` apart in random order, so a max never ties and a finite-difference
 * step far smaller than `gap` never changes which element is largest.
 */
export function distinctArray(n: number, rng: Random, gap = 0.05): Float64Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  rng.shuffle(order);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (order[i] - n / 2) * gap;
  return out;
}

export function dot(a: FloatArray, b: FloatArray): number {
  assert.equal(a.length, b.length, 'dot: lengths differ');
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/**
 * Central-difference gradient of the scalar `f` with respect to every element of `x`. `f` must read
 * `x` afresh on each call; `x` is perturbed in place and restored exactly afterwards.
 */
export function numericGradient(f: () => number, x: FloatArray, h = 1e-6): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i];
    x[i] = saved + h;
    const plus = f();
    x[i] = saved - h;
    const minus = f();
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * Max-norm relative error: max_i |a_i - b_i| / max(floor, max_i |a_i| + max_i |b_i|).
 *
 * Normalising by the largest magnitude rather than element by element keeps tiny gradient entries,
 * whose finite-difference estimate is dominated by round-off, from failing an otherwise exact match,
 * while any real discrepancy still shows at the scale of the vector. NaN anywhere yields NaN.
 */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  assert.equal(a.length, b.length, 'relativeError: lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Number.NaN;
    worst = Math.max(worst, d);
  }
  return worst / Math.max(floor, maxAbs(a) + maxAbs(b));
}

/** Fails with both vectors' heads in the message when relativeError(actual, expected) >= tolerance. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  what: string,
): void {
  const error = relativeError(actual, expected);
  if (!(error < tolerance)) {
    const head = (v: ArrayLike<number>): string =>
      Array.from({ length: Math.min(6, v.length) }, (_, i) => v[i].toPrecision(6)).join(', ');
    assert.fail(
      `${what}: relative error ${error} is not below ${tolerance}\n  actual:   [${head(actual)}]\n  expected: [${head(expected)}]`,
    );
  }
}

/** Scalar check with both numbers in the message (assert.ok without one can stall on a failure). */
export function assertNear(actual: number, expected: number, tolerance: number, what: string): void {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    assert.fail(`${what}: ${actual} differs from ${expected} by more than ${tolerance}`);
  }
}

/**
 * Checks an analytic gradient against finite differences of `objective` with respect to `x`.
 * Also asserts the gradient is not all zeros, so a kernel that writes nothing cannot pass.
 */
export function assertGradient(
  objective: () => number,
  x: FloatArray,
  analytic: ArrayLike<number>,
  what: string,
  tolerance = 1e-3,
): void {
  const numeric = numericGradient(objective, x);
  assert.ok(maxAbs(numeric) > 1e-8, `${what}: numeric gradient is all zeros, the check would be vacuous`);
  assertClose(analytic, numeric, tolerance, what);
}

function outputSize(input: number, kernel: number, stride: number, pad: number, dilation: number): number {
  return Math.floor((input + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

export interface ConvShape {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outC: number;
  kH: number;
  kW: number;
  stride?: number;
  pad?: number;
  dilation?: number;
  groups?: number;
}

/** A full ConvGeometry from a square-ish description, with the usual floor output-size rule. */
export function convGeometry(s: ConvShape): ConvGeometry {
  const stride = s.stride ?? 1;
  const pad = s.pad ?? 0;
  const dilation = s.dilation ?? 1;
  return {
    batch: s.batch,
    inH: s.inH,
    inW: s.inW,
    inC: s.inC,
    outC: s.outC,
    kH: s.kH,
    kW: s.kW,
    outH: outputSize(s.inH, s.kH, stride, pad, dilation),
    outW: outputSize(s.inW, s.kW, stride, pad, dilation),
    strideH: stride,
    strideW: stride,
    padH: pad,
    padW: pad,
    dilationH: dilation,
    dilationW: dilation,
    groups: s.groups ?? 1,
  };
}

export interface PoolShape {
  batch: number;
  inH: number;
  inW: number;
  channels: number;
  kH: number;
  kW: number;
  stride?: number;
  pad?: number;
}

export function poolGeometry(s: PoolShape): PoolGeometry {
  const stride = s.stride ?? s.kH;
  const pad = s.pad ?? 0;
  return {
    batch: s.batch,
    inH: s.inH,
    inW: s.inW,
    channels: s.channels,
    kH: s.kH,
    kW: s.kW,
    outH: outputSize(s.inH, s.kH, stride, pad, 1),
    outW: outputSize(s.inW, s.kW, stride, pad, 1),
    strideH: stride,
    strideW: stride,
    padH: pad,
    padW: pad,
  };
}
