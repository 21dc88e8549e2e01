/**
 * The baselines once QAT is judged against: the "adapted" model (trained at the highest precision
 * only, lower precisions cut from it by the same cascade, with or without re-estimating batch-norm
 * statistics) and post-training quantization of a full-precision model.
 */
import { noGrad } from '../engine/autograd.js';
import { scope } from '../engine/memory.js';
import { Tensor } from '../engine/tensor.js';
import type { DataLoader } from '../data/index.js';
import { BatchNorm2d } from '../nn/batch-norm.js';
import type { Module } from '../nn/module.js';
import { ensurePrecision, quantizedLayers, setPrecision, switchableNorms } from '../quant/quantize-model.js';
import { evaluate, type EvalResult } from './evaluate.js';

/**
 * Recomputes the running statistics of the batch norms used at `bits` as a cumulative average
 * over `batches` training batches (no gradients, no parameter change).
 */
export async function reestimateBatchNorm(
  model: Module,
  loader: DataLoader,
  bits: number | null,
  batches: number,
): Promise<void> {
  const norms =
    bits === null
      ? model.namedModules().filter((e): e is [string, BatchNorm2d] => e[1] instanceof BatchNorm2d)
      : switchableNorms(model).map(([p, s]) => [p, s.at(bits)] as [string, BatchNorm2d]);
  const saved = norms.map(([, bn]) => bn.momentum);
  for (const [, bn] of norms) bn.resetRunningStats();
  const wasTraining = model.training;
  if (bits !== null) setPrecision(model, bits);
  model.train();
  let k = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      if (k >= batches) break;
      for (const [, bn] of norms) bn.momentum = 1 / (k + 1);
      noGrad(() => scope(() => model.forward(new Tensor(batch.images, batch.shape))));
      k++;
    }
  } finally {
    norms.forEach(([, bn], i) => (bn.momentum = saved[i]));
    model.train(wasTraining);
  }
}

export interface BaselineRow extends EvalResult {
  method: string;
}

/**
 * Evaluates a model trained at one (highest) precision at every precision of `bits`, cutting the
 * lower ones from the cascade; with `reestimate`, each precision's batch-norm statistics are
 * re-estimated on `calibration` first.
 */
export async function evaluateAdapted(
  model: Module,
  val: DataLoader,
  bits: number[],
  options: { reestimate?: { loader: DataLoader; batches: number } } = {},
): Promise<BaselineRow[]> {
  const rows: BaselineRow[] = [];
  for (const b of bits) {
    ensurePrecision(model, b);
    if (options.reestimate)
      await reestimateBatchNorm(model, options.reestimate.loader, b, options.reestimate.batches);
    rows.push({ method: options.reestimate ? 'adapted+bn' : 'adapted', ...(await evaluate(model, val, b)) });
  }
  return rows;
}

/**
 * Post-training quantization of a quantization-wrapped full-precision model: activation scales
 * calibrated on one training batch per precision, optional batch-norm re-estimation.
 */
export async function evaluatePtq(
  model: Module,
  val: DataLoader,
  calibration: DataLoader,
  bits: number[],
  options: { reestimateBatches?: number } = {},
): Promise<BaselineRow[]> {
  const rows: BaselineRow[] = [];
  for (const b of bits) {
    ensurePrecision(model, b);
    for (const [, layer] of quantizedLayers(model)) layer.resetCalibration();
    setPrecision(model, b);
    const first = await calibration.batch(0, 0);
    model.eval();
    noGrad(() => scope(() => model.forward(new Tensor(first.images, first.shape))));
    if (options.reestimateBatches)
      await reestimateBatchNorm(model, calibration, b, options.reestimateBatches);
    rows.push({ method: options.reestimateBatches ? 'ptq+bn' : 'ptq', ...(await evaluate(model, val, b)) });
  }
  return rows;
}
