/** The engine's headline measurement, shared by `strata bench` and `npm run bench:engine`. */
import { backward } from '../engine/autograd.js';
import { scope } from '../engine/memory.js';
import { softmaxCrossEntropy } from '../engine/ops.js';
import { Random } from '../engine/random.js';
import { Tensor } from '../engine/tensor.js';
import { createModel } from '../nn/models/index.js';
import { SGD } from './optim.js';

export interface StepTiming {
  /** Milliseconds of each measured step (warm-up steps left out). */
  times: number[];
  medianMs: number;
  imagesPerSecond: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Times ResNet-20 training steps (forward, backward, SGD with momentum and weight decay) on random
 * 32x32 RGB batches: the engine's headline number, comparable with one PyTorch step.
 */
export function timeTrainingSteps(
  batch: number,
  iters: number,
  warmup: number,
  onStep?: (step: number, ms: number) => void,
): StepTiming {
  const model = createModel({ name: 'resnet20', numClasses: 10, inChannels: 3 });
  const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const rng = new Random(1);
  const x = Tensor.randn([batch, 32, 32, 3], rng);
  const labels = Int32Array.from({ length: batch }, () => rng.int(10));
  const times: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    optimizer.zeroGrad();
    scope(() => backward(softmaxCrossEntropy(model.forward(x), labels)));
    optimizer.step();
    const ms = performance.now() - t0;
    if (i >= warmup) times.push(ms);
    onStep?.(i + 1, ms);
  }
  const medianMs = median(times);
  return { times, medianMs, imagesPerSecond: (batch * 1000) / medianMs };
}
