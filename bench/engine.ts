/**
 * npm run bench:engine — median ResNet-20 training step (forward, backward, SGD) at batch 128 on
 * 32x32 inputs, against the same step in PyTorch on this machine when available.
 * Options: --batch 128 --iters 10 --warmup 2 --threads <STRATA_THREADS or cores>.
 */
import os from 'node:os';
import { getBackend } from '../src/engine/backend-registry.js';
import { nativeAddon } from '../src/engine/backend-native.js';
import { timeTrainingSteps, trainingStepFlops } from '../src/train/benchmark.js';
import { arg, peakGflops, peakRssMb, torchStepMs, writeResult } from './common.js';

const batch = arg('batch', 128);
const iters = arg('iters', 10);
const warmup = arg('warmup', 2);
const threads = arg('threads', Number(process.env.STRATA_THREADS ?? os.availableParallelism()));
process.env.STRATA_THREADS = String(threads);

const backend = getBackend();
const { times, medianMs: strataMs } = timeTrainingSteps(batch, iters, warmup, (step, ms) =>
  process.stderr.write(`\rstep ${step}/${warmup + iters}: ${ms.toFixed(1)} ms   `),
);
process.stderr.write('\n');
const rss = peakRssMb();
const stepGflop = trainingStepFlops(batch) / 1e9;
const peak = peakGflops(threads);
const torch = torchStepMs(['--batch', String(batch), '--threads', String(threads), '--iters', String(iters)]);
const speedup = torch ? torch.medianMs / strataMs : null;

const lines = [
  `backend: ${backend.name}${nativeAddon() ? ` (${nativeAddon()!.version()}, ${nativeAddon()!.getThreads()} threads)` : ''}`,
  `cpu: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.availableParallelism()} cores`,
  `ResNet-20 step, batch ${batch}: median ${strataMs.toFixed(1)} ms over ${iters} steps, ${((batch * 1000) / strataMs).toFixed(0)} img/s`,
  `arithmetic: ${stepGflop.toFixed(1)} GFLOP per step (convolutions and linear, forward and backward) -> ${((stepGflop * 1000) / strataMs).toFixed(1)} GFLOP/s achieved`,
  peak
    ? `float32 FMA peak on ${threads} threads (bench/peak_flops.c): ${peak.toFixed(1)} GFLOP/s -> no step can take less than ${((stepGflop * 1000) / peak).toFixed(0)} ms here; this one runs at ${((100 * stepGflop * 1000) / strataMs / peak).toFixed(0)}% of peak`
    : 'float32 FMA peak: not measured (no C compiler with AVX2/FMA/OpenMP)',
  torch
    ? `PyTorch ${torch.version} same step: median ${torch.medianMs.toFixed(1)} ms (${threads} threads) -> speedup ${speedup!.toFixed(2)}x`
    : 'PyTorch: not available (/usr/bin/python3 -c "import torch" failed)',
  `peak RSS: ${rss.toFixed(0)} MB`,
];
for (const l of lines) console.log(l);
const command = `npm run bench:engine -- ${process.argv.slice(2).join(' ')}`.trim();
writeResult('engine.json', {
  command,
  date: new Date().toISOString(),
  cpu: os.cpus()[0]?.model,
  threads,
  batch,
  backend: backend.name,
  resnet20_step_ms: strataMs,
  step_times_ms: times,
  images_per_s: (batch * 1000) / strataMs,
  step_gflop: stepGflop,
  achieved_gflop_per_s: (stepGflop * 1000) / strataMs,
  peak_fma_gflop_per_s: peak,
  torch_step_ms: torch?.medianMs ?? null,
  torch_version: torch?.version ?? null,
  speedup,
  peak_rss_mb: rss,
});
console.log(
  `resnet20_step_ms=${strataMs.toFixed(1)} torch_step_ms=${torch ? torch.medianMs.toFixed(1) : 'NA'} speedup=${speedup ? speedup.toFixed(2) : 'NA'} peak_rss_mb=${rss.toFixed(0)}`,
);
