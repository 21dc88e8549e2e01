import { noGrad } from '../engine/autograd.js';
import { scope } from '../engine/memory.js';
import { softmaxCrossEntropy } from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import type { DataLoader } from '../data/index.js';
import type { Module } from '../nn/module.js';
import { setPrecision } from '../quant/quantize-model.js';

export interface EvalResult {
  bits: number | null;
  top1: number;
  top5: number;
  loss: number;
  count: number;
}

/** Top-1/top-5 accuracy (percent) and mean loss of the model at one precision (null = float). */
export async function evaluate(
  model: Module,
  loader: DataLoader,
  bits: number | null,
  onBatch?: (images: number) => void,
): Promise<EvalResult> {
  const wasTraining = model.training;
  model.eval();
  if (bits !== null) setPrecision(model, bits);
  let top1 = 0;
  let top5 = 0;
  let lossSum = 0;
  let count = 0;
  for await (const batch of loader.epoch(0)) {
    const stats = noGrad(() =>
      scope(() => {
        const logits = model.forward(new Tensor(batch.images, batch.shape));
        const loss = softmaxCrossEntropy(logits, batch.labels).item();
        const [rows, classes] = logits.shape;
        const z = logits.data;
        let c1 = 0;
        let c5 = 0;
        for (let r = 0; r < rows; r++) {
          const label = batch.labels[r];
          const target = z[r * classes + label];
          let above = 0;
          for (let k = 0; k < classes; k++) {
            const v = z[r * classes + k];
            if (v > target || (v === target && k < label)) above++;
          }
          if (above === 0) c1++;
          if (above < 5) c5++;
        }
        return [c1, c5, loss * rows];
      }),
    );
    top1 += stats[0];
    top5 += stats[1];
    lossSum += stats[2];
    count += batch.size;
    onBatch?.(batch.size);
  }
  model.train(wasTraining);
  return { bits, top1: (100 * top1) / count, top5: (100 * top5) / count, loss: lossSum / count, count };
}
