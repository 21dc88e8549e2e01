/** The engine's headline measurement, shared by `strata bench` and `npm run bench:engine`. */
import { backward } from '../engine/autograd.js';
import type { Backend, ConvGeometry } from '../engine/backend.js';
import { getBackend, setBackend } from '../engine/backend-registry.js';
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
  const step = resnet20Step(batch);
  const times: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    step();
    const ms = performance.now() - t0;
    if (i >= warmup) times.push(ms);
    onStep?.(i + 1, ms);
  }
  const medianMs = median(times);
  return { times, medianMs, imagesPerSecond: (batch * 1000) / medianMs };
}

function resnet20Step(batch: number): () => void {
  const model = createModel({ name: 'resnet20', numClasses: 10, inChannels: 3 });
  const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const rng = new Random(1);
  const x = Tensor.randn([batch, 32, 32, 3], rng);
  const labels = Int32Array.from({ length: batch }, () => rng.int(10));
  return () => {
    optimizer.zeroGrad();
    scope(() => backward(softmaxCrossEntropy(model.forward(x), labels)));
    optimizer.step();
  };
}

/** Multiply-accumulates of one convolution call: every output element sums (inC / groups) * kH * kW products. */
function convolutionMacs(g: ConvGeometry): number {
  return g.batch * g.outH * g.outW * g.outC * (g.inC / g.groups) * g.kH * g.kW;
}

/**
 * Floating-point operations (2 per multiply-accumulate) of the convolutions and linear layers in one
 * ResNet-20 training step at `batch`, counted from the geometry the kernels are called with. This is
 * the arithmetic no backend can skip, so `flops / step time` says how close the step runs to the
 * CPU's peak and how much any faster kernel could still win.
 */
export function trainingStepFlops(batch: number): number {
  const inner = getBackend();
  let macs = 0;
  const counting: Backend = Object.create(inner) as Backend;
  Object.assign(counting, {
    conv2dForward: (...a: Parameters<Backend['conv2dForward']>) => {
      macs += convolutionMacs(a[0]);
      inner.conv2dForward(...a);
    },
    conv2dBackwardData: (...a: Parameters<Backend['conv2dBackwardData']>) => {
      macs += convolutionMacs(a[0]);
      inner.conv2dBackwardData(...a);
    },
    conv2dBackwardWeights: (...a: Parameters<Backend['conv2dBackwardWeights']>) => {
      macs += convolutionMacs(a[0]);
      inner.conv2dBackwardWeights(...a);
    },
    linearForward: (...a: Parameters<Backend['linearForward']>) => {
      macs += a[0] * a[1] * a[2];
      inner.linearForward(...a);
    },
    linearBackward: (...a: Parameters<Backend['linearBackward']>) => {
      // Weight gradient always; input gradient only when the layer below needs it.
      macs += a[0] * a[1] * a[2] * (a[6] === null ? 1 : 2);
      inner.linearBackward(...a);
    },
  });
  // Two images are enough: every count is linear in the batch.
  const probeBatch = 2;
  setBackend(counting);
  try {
    resnet20Step(probeBatch)();
  } finally {
    setBackend(inner);
  }
  return (2 * macs * batch) / probeBatch;
}
