/**
 * npm run bench:once — median once-QAT training step of ResNet-20 at batch 128 over the five
 * precisions {8,6,4,3,2} (five forward/backward passes into shared weights, one SGD step), against
 * the same step in PyTorch on this machine (bench/torch_step.py: switchable batch norm and a
 * simpler per-tensor fake quantizer) when available.
 * Options: --batch 128 --iters 5 --warmup 1 --threads <cores>.
 */
import os from 'node:os';
import { getBackend } from '../src/engine/backend-registry.js';
import { Random } from '../src/engine/random.js';
import { Tensor } from '../src/engine/tensor.js';
import { manualSeed } from '../src/nn/init.js';
import { resolveTrainConfig } from '../src/train/config.js';
import { buildModel, trainStep } from '../src/train/trainer.js';
import { SGD } from '../src/train/optim.js';
import { trainingStepFlops } from '../src/train/benchmark.js';
import { arg, median, peakGflops, peakRssMb, torchStepMs, writeResult } from './common.js';

const batch = arg('batch', 128);
const iters = arg('iters', 5);
const warmup = arg('warmup', 1);
const threads = arg('threads', Number(process.env.STRATA_THREADS ?? os.availableParallelism()));
process.env.STRATA_THREADS = String(threads);
const bits = [8, 6, 4, 3, 2];

manualSeed(0);
const config = resolveTrainConfig({
  model: 'resnet20',
  dataset: 'cifar10-jpeg',
  mode: 'once',
  bits,
  batchSize: batch,
});
const { model } = buildModel(config, 10, 3);
const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const rng = new Random(1);
const x = Tensor.randn([batch, 32, 32, 3], rng);
const labels = Int32Array.from({ length: batch }, () => rng.int(10));

const times: number[] = [];
for (let i = 0; i < warmup + iters; i++) {
  const t0 = performance.now();
  trainStep(model, optimizer, config, x.data, [...x.shape], labels, i);
  const ms = performance.now() - t0;
  if (i >= warmup) times.push(ms);
  process.stderr.write(`\ronce-QAT step ${i + 1}/${warmup + iters}: ${ms.toFixed(0)} ms   `);
}
process.stderr.write('\n');
const strataMs = median(times);
const torch = torchStepMs([
  '--batch',
  String(batch),
  '--threads',
  String(threads),
  '--iters',
  String(iters),
  '--warmup',
  '1',
  '--bits',
  bits.join(','),
]);
const speedup = torch ? torch.medianMs / strataMs : null;
console.log(`backend: ${getBackend().name}, ${threads} threads, cpu ${os.cpus()[0]?.model ?? 'unknown'}`);
console.log(
  `ResNet-20 once-QAT step over {${bits.join(',')}}, batch ${batch}: median ${strataMs.toFixed(0)} ms over ${iters} steps`,
);
// Each precision runs the full forward and backward: the convolution arithmetic of one plain step.
const onceGflop = (bits.length * trainingStepFlops(batch)) / 1e9;
const peak = peakGflops(threads);
console.log(
  `arithmetic: ${onceGflop.toFixed(0)} GFLOP per step (${bits.length} x one plain step), ${((onceGflop * 1000) / strataMs).toFixed(1)} GFLOP/s achieved` +
    (peak
      ? `; float32 FMA peak ${peak.toFixed(1)} GFLOP/s on ${threads} threads -> no once step can take less than ${((onceGflop * 1000) / peak).toFixed(0)} ms here`
      : ''),
);
console.log(
  torch
    ? `PyTorch ${torch.version}: median ${torch.medianMs.toFixed(0)} ms -> speedup ${speedup!.toFixed(2)}x`
    : 'PyTorch: not available',
);
writeResult('once.json', {
  command: `npm run bench:once -- ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  cpu: os.cpus()[0]?.model,
  threads,
  batch,
  bits,
  once5_step_ms: strataMs,
  step_gflop: onceGflop,
  peak_fma_gflop_per_s: peak,
  step_times_ms: times,
  torch_once5_step_ms: torch?.medianMs ?? null,
  speedup,
  peak_rss_mb: peakRssMb(),
});
console.log(
  `once5_step_ms=${strataMs.toFixed(0)} torch_once5_step_ms=${torch ? torch.medianMs.toFixed(0) : 'NA'} speedup=${speedup ? speedup.toFixed(2) : 'NA'}`,
);
