/**
 * The baselines once QAT is judged against: the "adapted" model (trained at the highest precision
 * only, lower precisions cut from it by the same cascade, with or without re-estimating batch-norm
 * statistics) and post-training quantization of a full-precision model.
 */
import { noGrad } from '../engine/autograd.js';
import { reestimateBatchNorm } from './batch-norm-reestimate.js';
import { scope } from '../engine/memory.js';
import { Tensor } from '../engine/tensor.js';
import type { DataLoader } from '../data/index.js';
import type { Module } from '../nn/module.js';
import { ensurePrecision, quantizedLayers, setPrecision } from '../quant/quantize-model.js';
import { evaluate, type EvalResult } from './evaluate.js';

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
    if (options.reestimate) {
      setPrecision(model, b);
      await reestimateBatchNorm(model, options.reestimate.loader, options.reestimate.batches);
    }
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
    await calibratePrecision(model, calibration, b, {
      activations: true,
      bnBatches: options.reestimateBatches ?? 0,
    });
    rows.push({ method: options.reestimateBatches ? 'ptq+bn' : 'ptq', ...(await evaluate(model, val, b)) });
  }
  return rows;
}

/**
 * Makes precision `bits` of a quantization-wrapped model runnable without training: derived from the
 * cascade (ensurePrecision), with its activation scales calibrated on the first calibration batch
 * (`activations`, post-training quantization) and its batch-norm statistics re-estimated on
 * `bnBatches` calibration batches (0: kept as derived). Leaves the model at `bits`; returns the
 * batches used for batch norm.
 */
export async function calibratePrecision(
  model: Module,
  calibration: DataLoader,
  bits: number,
  options: { activations: boolean; bnBatches: number },
): Promise<number> {
  ensurePrecision(model, bits);
  setPrecision(model, bits);
  if (options.activations) {
    for (const [, layer] of quantizedLayers(model)) layer.resetCalibration();
    const first = await calibration.batch(0, 0);
    model.eval();
    noGrad(() => scope(() => model.forward(new Tensor(first.images, first.shape))));
  }
  return options.bnBatches > 0 ? reestimateBatchNorm(model, calibration, options.bnBatches) : 0;
}
