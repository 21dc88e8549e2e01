/**
 * Integer inference kernels: int8 convolution and linear layers over activation codes, and the
 * quantizer that makes those codes. Two implementations of one contract:
 * - native (`src/native/int8-inference.cc`): oneDNN int8 convolution / inner product primitives
 *   (forward_inference, s32 accumulation, per-channel output scales, bias and ReLU post-ops);
 * - reference (below): plain TypeScript loops, the definition the native kernels are tested
 *   against, and what runs when the addon is absent (`int8Kernels().name` says which).
 *
 * A layer computes, per output pixel p and channel c (channels-last, weights [O, I/groups, kH, kW]
 * or [O, I]):
 *     acc = sum a k (int32, exact),  S = sum of a over the receptive field,
 *     y   = scale[c] acc + corrScale[c] S + bias[c] (+ residual),  then max(y, 0) when relu.
 * corrScale is null when the codes need no offset correction (see `export/int-plan.ts`).
 */
import { getBackend } from './backend-registry.js';
import { nativeAddon } from './backend-native.js';

export interface Int8LayerSpec {
  kind: 'conv' | 'linear';
  inC: number;
  outC: number;
  srcSigned: boolean;
  relu: boolean;
  /** Runs take a residual of the output's shape, added before the ReLU. */
  residual?: boolean;
  kH?: number;
  kW?: number;
  strideH?: number;
  strideW?: number;
  padH?: number;
  padW?: number;
  dilationH?: number;
  dilationW?: number;
  groups?: number;
}

/** An opaque prepared layer (a native handle or a reference object). */
export type Int8Layer = { readonly __int8Layer: true };

export type Codes = Uint8Array | Int8Array;

export interface Int8Kernels {
  readonly name: 'native' | 'reference';
  int8LayerCreate(
    spec: Int8LayerSpec,
    weights: Int8Array,
    scale: Float32Array,
    corrScale: Float32Array | null,
    bias: Float32Array,
  ): Int8Layer;
  /**
   * src [batch, inH, inW, inC] codes (linear: inH = inW = 1); dst [batch, outH, outW, outC] floats;
   * residual: like dst for a layer created with `residual`, else null.
   */
  int8LayerRun(
    layer: Int8Layer,
    batch: number,
    inH: number,
    inW: number,
    src: Codes,
    dst: Float32Array,
    residual: Float32Array | null,
  ): void;
  /** out = clamp(floor(x * fround(1 / scale) + 1/2), qmin, qmax): Strata's activation rounding (NaN: qmin). */
  quantizeCodes(x: Float32Array, scale: number, qmin: number, qmax: number, out: Codes): void;
}

interface ReferenceLayer {
  spec: Required<Int8LayerSpec>;
  weights: Int8Array;
  scale: Float32Array;
  corrScale: Float32Array | null;
  bias: Float32Array;
}

function outSize(inSize: number, k: number, stride: number, pad: number, dilation: number): number {
  return Math.floor((inSize + 2 * pad - dilation * (k - 1) - 1) / stride) + 1;
}

export const referenceInt8Kernels: Int8Kernels = {
  name: 'reference',

  int8LayerCreate(spec, weights, scale, corrScale, bias) {
    const full: Required<Int8LayerSpec> = {
      kH: 1,
      kW: 1,
      strideH: 1,
      strideW: 1,
      padH: 0,
      padW: 0,
      dilationH: 1,
      dilationW: 1,
      groups: 1,
      residual: false,
      ...spec,
    };
    const per = (full.inC / full.groups) * full.kH * full.kW;
    if (weights.length !== per * full.outC) {
      throw new RangeError(
        `int8LayerCreate: expected ${per * full.outC} weight codes but received ${weights.length}`,
      );
    }
    for (const [name, v] of [
      ['scale', scale],
      ['bias', bias],
      ['corrScale', corrScale],
    ] as const) {
      if (v !== null && v.length !== full.outC) {
        throw new RangeError(
          `int8LayerCreate: expected ${full.outC} values for ${name} but received ${v.length}`,
        );
      }
    }
    const layer: ReferenceLayer = {
      spec: full,
      weights: Int8Array.from(weights),
      scale: Float32Array.from(scale),
      corrScale: corrScale === null ? null : Float32Array.from(corrScale),
      bias: Float32Array.from(bias),
    };
    return layer as unknown as Int8Layer;
  },

  int8LayerRun(handle, batch, inH, inW, src, dst, residual) {
    const { spec: g, weights, scale, corrScale, bias } = handle as unknown as ReferenceLayer;
    const outH = g.kind === 'conv' ? outSize(inH, g.kH, g.strideH, g.padH, g.dilationH) : 1;
    const outW = g.kind === 'conv' ? outSize(inW, g.kW, g.strideW, g.padW, g.dilationW) : 1;
    if (src.length !== batch * inH * inW * g.inC || dst.length !== batch * outH * outW * g.outC) {
      throw new RangeError('int8LayerRun: src or dst size does not match the layer');
    }
    if (g.residual !== (residual !== null) || (residual !== null && residual.length !== dst.length)) {
      throw new RangeError('int8LayerRun: the residual does not match the layer');
    }
    const inPer = g.inC / g.groups;
    const outPer = g.outC / g.groups;
    for (let n = 0; n < batch; n++) {
      for (let oy = 0; oy < outH; oy++) {
        for (let ox = 0; ox < outW; ox++) {
          const base = ((n * outH + oy) * outW + ox) * g.outC;
          for (let c = 0; c < g.outC; c++) {
            const group = Math.floor(c / outPer);
            let acc = 0;
            let sum = 0;
            for (let ky = 0; ky < g.kH; ky++) {
              const iy = oy * g.strideH - g.padH + ky * g.dilationH;
              if (iy < 0 || iy >= inH) continue;
              for (let kx = 0; kx < g.kW; kx++) {
                const ix = ox * g.strideW - g.padW + kx * g.dilationW;
                if (ix < 0 || ix >= inW) continue;
                const at = ((n * inH + iy) * inW + ix) * g.inC + group * inPer;
                for (let i = 0; i < inPer; i++) {
                  const a = src[at + i];
                  acc += a * weights[((c * inPer + i) * g.kH + ky) * g.kW + kx];
                  sum += a;
                }
              }
            }
            let y = Math.fround(
              Math.fround(scale[c] * acc) + (corrScale === null ? 0 : Math.fround(corrScale[c] * sum)),
            );
            y = Math.fround(y + bias[c]);
            if (residual !== null) y = Math.fround(y + residual[base + c]);
            dst[base + c] = g.relu && y < 0 ? 0 : y;
          }
        }
      }
    }
  },

  quantizeCodes(x, scale, qmin, qmax, out) {
    const inv = Math.fround(1 / Math.fround(scale));
    for (let i = 0; i < x.length; i++) {
      const q = Math.floor(Math.fround(Math.fround(x[i] * inv) + 0.5));
      out[i] = Number.isNaN(q) ? qmin : Math.min(qmax, Math.max(qmin, q));
    }
  },
};

/** The native int8 kernels when the active backend is the oneDNN addon, else the reference ones. */
export function int8Kernels(): Int8Kernels {
  const addon = getBackend().name === 'native' ? nativeAddon() : null;
  if (addon === null) return referenceInt8Kernels;
  return {
    name: 'native',
    int8LayerCreate: (spec, weights, scale, corrScale, bias) =>
      addon.int8LayerCreate(spec, weights, scale, corrScale, bias),
    int8LayerRun: (layer, batch, inH, inW, src, dst, residual) =>
      addon.int8LayerRun(layer, batch, inH, inW, src, dst, residual),
    quantizeCodes: (x, scale, qmin, qmax, out) => addon.quantizeCodes(x, scale, qmin, qmax, out),
  };
}
