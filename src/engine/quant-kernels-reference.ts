/**
 * Plain-TypeScript fake-quantization kernels: the definition the native versions are tested
 * against (see QuantKernels in backend.ts for the formulas).
 */
import type { FloatArray, QuantKernels } from './backend.js';

interface WeightGrid {
  qmin: number;
  qmax: number;
  shift: number;
  offset: number;
  round: boolean;
}

function weightGrid(topBits: number, bits: number, rule: 'floor' | 'round'): WeightGrid {
  const k = topBits - bits;
  const round = rule === 'round';
  const half = 2 ** (topBits - 1);
  return {
    qmin: round ? -half + 1 : -half,
    qmax: round ? half : half - 1,
    shift: k,
    offset: round ? -0.5 + 2 ** -(k + 1) : 0.5,
    round,
  };
}

function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** The b-bit code of one weight and whether its top code was clipped. */
function cascadeCode(v: number, g: WeightGrid): [number, boolean] {
  const raw = g.round ? roundHalfAway(v) : Math.floor(v);
  const top = Math.min(g.qmax, Math.max(g.qmin, raw));
  const code = g.round ? Math.ceil(top / 2 ** g.shift) : Math.floor(top / 2 ** g.shift);
  return [code, raw !== top];
}

export const referenceQuantKernels: QuantKernels = {
  fakeQuantWeightForward(w, channels, scalesTop, topBits, bits, rule, out, codes) {
    const g = weightGrid(topBits, bits, rule);
    const per = w.length / channels;
    const mult = 2 ** g.shift;
    for (let c = 0; c < channels; c++) {
      const s = scalesTop[c];
      for (let i = c * per; i < (c + 1) * per; i++) {
        const [q] = cascadeCode(w[i] / s, g);
        out[i] = (q + g.offset) * s * mult;
        if (codes !== null) codes[i] = q;
      }
    }
  },

  fakeQuantWeightBackward(w, channels, scalesTop, topBits, bits, rule, dy, dw, dscale) {
    const g = weightGrid(topBits, bits, rule);
    const per = w.length / channels;
    const mult = 2 ** g.shift;
    for (let c = 0; c < channels; c++) {
      const s = scalesTop[c];
      let sum = 0;
      for (let i = c * per; i < (c + 1) * per; i++) {
        const v = w[i] / s;
        const [q, clipped] = cascadeCode(v, g);
        dw[i] = clipped ? 0 : dy[i];
        sum += dy[i] * (mult * (q + g.offset) - (clipped ? 0 : v));
      }
      dscale[c] = sum;
    }
  },

  // Activations are defined in float32 arithmetic (v = x * fround(1 / s)), as the native kernel
  // computes them, so the two agree bit for bit.
  fakeQuantActForward(x: FloatArray, scale: number, qmin: number, qmax: number, y: FloatArray) {
    const s = Math.fround(scale);
    const inv = Math.fround(1 / s);
    for (let i = 0; i < x.length; i++) {
      const q = Math.min(qmax, Math.max(qmin, Math.floor(Math.fround(Math.fround(x[i] * inv) + 0.5))));
      y[i] = Math.fround(q * s);
    }
  },

  fakeQuantActBackward(x, scale, qmin, qmax, dy, dx) {
    const inv = Math.fround(1 / Math.fround(scale));
    let sum = 0;
    for (let i = 0; i < x.length; i++) {
      const v = Math.fround(x[i] * inv);
      const inside = v >= qmin - 0.5 && v < qmax + 0.5;
      const q = Math.min(qmax, Math.max(qmin, Math.floor(Math.fround(v + 0.5))));
      dx[i] = inside ? dy[i] : 0;
      sum += dy[i] * (inside ? q - v : q);
    }
    return sum;
  },
};
