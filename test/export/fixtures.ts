/** Small calibrated quantized models and a logit comparison shared by the export and runtime tests. */
import assert from 'node:assert/strict';
import { noGrad } from '../../src/engine/autograd.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { createModel, type Architecture, type ModelName } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import {
  quantizeModel,
  setPrecision,
  switchableNorms,
  type QuantConfig,
} from '../../src/quant/quantize-model.js';

export const PRECISIONS = [8, 6, 4, 3, 2];

export interface Fixture {
  model: Module;
  /** [N, H, W, C] */
  shape: number[];
  /** A channels-last batch of 16 images. */
  input: Tensor;
  /** Set for models made by calibratedModel. */
  architecture?: Architecture;
  quant?: QuantConfig;
}

/**
 * A quantized model with non-trivial batch norm at every precision (random affine parameters and
 * running statistics, different per precision) and activation scales calibrated on one batch.
 */
export function calibratedModel(
  name: ModelName,
  config: { inChannels: number; size: number; width?: number; seed?: number },
): Fixture {
  const rng = new Random(config.seed ?? 7);
  const architecture: Architecture = {
    name,
    numClasses: 10,
    inChannels: config.inChannels,
    width: config.width,
  };
  const model = createModel(architecture);
  const quant = quantizeModel(model, { precisions: PRECISIONS });
  for (const [, sbn] of switchableNorms(model)) {
    for (const bits of [null, ...PRECISIONS]) {
      const bn = sbn.at(bits);
      for (let c = 0; c < bn.numFeatures; c++) {
        bn.weight.data[c] = 0.6 + 0.8 * rng.next();
        bn.bias.data[c] = 0.2 * rng.normal();
        bn.runningMean.data[c] = 0.2 * rng.normal();
        bn.runningVar.data[c] = 0.5 + 1.5 * rng.next();
      }
    }
  }
  const shape = [16, config.size, config.size, config.inChannels];
  model.eval();
  // The first forward calibrates every layer's activation scales (all precisions at once).
  noGrad(() => {
    setPrecision(model, PRECISIONS[0]);
    model.forward(Tensor.randn(shape, rng));
  });
  setPrecision(model, null);
  return { model, shape, input: Tensor.randn(shape, rng), architecture, quant };
}

export function strataLogits(model: Module, input: Tensor, bits: number | null): Float32Array {
  setPrecision(model, bits);
  return Float32Array.from(noGrad(() => model.forward(input)).data);
}

export function nhwcToNchw(x: Float32Array, [n, h, w, c]: readonly number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      for (let z = 0; z < w; z++) {
        for (let k = 0; k < c; k++) out[((i * c + k) * h + y) * w + z] = x[((i * h + y) * w + z) * c + k];
      }
    }
  }
  return out;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
  return best;
}

export interface LogitDiff {
  maxDiff: number;
  meanDiff: number;
  maxAbs: number;
  agree: number;
}

/**
 * The stated tolerance. Full precision: |diff| <= 1e-4 max(1, max|logit|) everywhere. Quantized:
 * onnxruntime and Strata sum convolutions and batch norms in different orders, so an activation lying
 * within a float32 rounding error of a quantization boundary can land on the other side; each such
 * flip moves downstream values by one activation step. Those flips are rare, so the bound is on the
 * mean (|diff| <= 2e-3 max|logit|) with a looser max (3e-2 max|logit|). Argmax must agree on every
 * row whose top-2 gap in Strata exceeds the largest difference seen (in practice all 16).
 */
export function assertLogitsClose(
  got: Float32Array,
  ref: Float32Array,
  classes: number,
  quantized: boolean,
  label: string,
): LogitDiff {
  assert.equal(got.length, ref.length, `${label}: logit count`);
  let maxDiff = 0;
  let meanDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    assert.ok(Number.isFinite(got[i]), `${label}: logit ${i} is ${got[i]}`);
    maxDiff = Math.max(maxDiff, d);
    meanDiff += d / got.length;
    maxAbs = Math.max(maxAbs, Math.abs(ref[i]));
  }
  if (quantized) {
    assert.ok(meanDiff <= 2e-3 * maxAbs, `${label}: mean |diff| ${meanDiff} > ${2e-3 * maxAbs}`);
    assert.ok(maxDiff <= 3e-2 * maxAbs, `${label}: max |diff| ${maxDiff} > ${3e-2 * maxAbs}`);
  } else {
    assert.ok(maxDiff <= 1e-4 * Math.max(1, maxAbs), `${label}: max |diff| ${maxDiff}`);
  }
  let agree = 0;
  for (let n = 0; n < got.length / classes; n++) {
    const g = got.subarray(n * classes, (n + 1) * classes);
    const r = ref.subarray(n * classes, (n + 1) * classes);
    const top = argmax(r);
    const gap = r[top] - Math.max(...Array.from(r).filter((_, k) => k !== top));
    if (argmax(g) === top) agree++;
    else assert.ok(gap <= maxDiff, `${label}: row ${n} argmax ${argmax(g)} != ${top} with gap ${gap}`);
  }
  return { maxDiff, meanDiff, maxAbs, agree };
}

/** Guards against vacuous comparisons: the logits must depend on the input. */
export function assertNotDegenerate(logits: Float32Array, classes: number, label: string): void {
  const rows = logits.length / classes;
  let spread = 0;
  for (let k = 0; k < classes; k++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let n = 0; n < rows; n++) {
      lo = Math.min(lo, logits[n * classes + k]);
      hi = Math.max(hi, logits[n * classes + k]);
    }
    spread = Math.max(spread, hi - lo);
  }
  assert.ok(spread > 1e-3, `${label}: logits barely vary across the batch (spread ${spread})`);
}
