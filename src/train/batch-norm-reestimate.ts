/**
 * Batch-norm re-estimation: a precision derived from the cascade (not trained) inherits batch-norm
 * statistics measured at another precision, and its activations are distributed differently. A few
 * forward passes at the new precision give it its own statistics, with no training.
 */
import { noGrad } from '../engine/autograd.js';
import { scope } from '../engine/memory.js';
import { Tensor } from '../engine/tensor.js';
import type { DataLoader } from '../data/index.js';
import { BatchNorm2d } from '../nn/batch-norm.js';
import type { Module } from '../nn/module.js';
import { SwitchableBatchNorm2d } from '../quant/switchable-batch-norm.js';

/** The batch norms a forward pass uses now: the current precision's copy of each switchable one. */
export function activeBatchNorms(model: Module): BatchNorm2d[] {
  const out: BatchNorm2d[] = [];
  const visit = (module: Module): void => {
    if (module instanceof SwitchableBatchNorm2d) out.push(module.at(module.bits));
    else if (module instanceof BatchNorm2d) out.push(module);
    else for (const [, child] of module.namedChildren()) visit(child);
  };
  visit(model);
  return out;
}

/**
 * Resets the running statistics of the batch norms in use and replaces them by their average over
 * `batches` training batches (all batches of one epoch if it has fewer), computed by forward passes
 * in training mode without gradients. Returns the number of batches used.
 *
 * BatchNorm2d keeps an exponential average with a fixed momentum m; an equal-weight average needs
 * momentum 1/(k+1) at batch k. Since the momentum cannot change, each update is rescaled instead:
 * after a step, `old + (new - old) / m` is the batch's own statistic, so
 * `old + (new - old) / (m (k+1))` is the cumulative average.
 */
export async function reestimateBatchNorm(
  model: Module,
  loader: DataLoader,
  batches: number,
): Promise<number> {
  if (!Number.isInteger(batches) || batches < 1) {
    throw new RangeError(`Expected positive integer for batches but received ${batches}`);
  }
  const norms = activeBatchNorms(model);
  if (norms.length === 0) return 0;
  for (const bn of norms) {
    if (!(bn.momentum > 0)) {
      throw new RangeError(
        `reestimateBatchNorm: a batch norm has momentum ${bn.momentum}; it must be in (0, 1]`,
      );
    }
    bn.resetRunningStats();
  }
  const wasTraining = model.training;
  model.train();
  let k = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      const before = norms.map((bn) => [
        Float32Array.from(bn.runningMean.data),
        Float32Array.from(bn.runningVar.data),
      ]);
      noGrad(() => scope(() => void model.forward(new Tensor(batch.images, batch.shape))));
      norms.forEach((bn, i) => {
        const weight = 1 / (bn.momentum * (k + 1));
        for (const [stat, old] of [
          [bn.runningMean.data, before[i][0]],
          [bn.runningVar.data, before[i][1]],
        ] as const) {
          for (let c = 0; c < stat.length; c++) stat[c] = old[c] + (stat[c] - old[c]) * weight;
        }
      });
      k++;
      if (k >= batches) break;
    }
  } finally {
    model.train(wasTraining);
  }
  return k;
}
