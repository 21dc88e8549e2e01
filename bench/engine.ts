/**
 * npm run bench:engine — median ResNet-20 training step (forward, backward, SGD) at batch 128 on
 * 32x32 inputs, against the same step in PyTorch on this machine when available.
 * Options: --batch 128 --iters 10 --warmup 2 --threads <STRATA_THREADS or cores>.
 */
import os from 'node:os';
import { backward } from '../src/engine/autograd.js';
import { getBackend } from '../src/engine/backend-registry.js';
import { nativeAddon } from '../src/engine/backend-native.js';
import { scope } from '../src/engine/memory.js';
import { softmaxCrossEntropy } from '../src/engine/ops.js';
import { Random } from '../src/engine/random.js';
import { Tensor } from '../src/engine/tensor.js';
import { createModel } from '../src/nn/models/index.js';
import { SGD } from '../src/train/optim.js';
import { arg, median, peakRssMb, torchStepMs, writeResult } from './common.js';

const batch = arg('batch', 128);
const iters = arg('iters', 10);
const warmup = arg('warmup', 2);
const threads = arg('threads', Number(process.env.STRATA_THREADS ?? os.availableParallelism()));
process.env.STRATA_THREADS = String(threads);

const backend = getBackend();
const model = createModel({ name: 'resnet20', numClasses: 10, inChannels: 3 });
const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
const rng = new Random(1);
const x = Tensor.randn([batch, 32, 32, 3], rng);
const labels = Int32Array.from({ length: batch }, () => rng.int(10));

const times: number[] = [];
for (let i = 0; i < warmup + iters; i++) {
  const t0 = performance.now();
  opt.zeroGrad();
  scope(() => {
    const loss = softmaxCrossEntropy(model.forward(x), labels);
    backward(loss);
  });
  opt.step();
  const ms = performance.now() - t0;
  if (i >= warmup) times.push(ms);
  process.stderr.write(`\rstep ${i + 1}/${warmup + iters}: ${ms.toFixed(1)} ms   `);
}
process.stderr.write('\n');
const strataMs = median(times);
const rss = peakRssMb();
const torch = torchStepMs(['--batch', String(batch), '--threads', String(threads), '--iters', String(iters)]);
const speedup = torch ? torch.medianMs / strataMs : null;

const lines = [
  `backend: ${backend.name}${nativeAddon() ? ` (${nativeAddon()!.version()}, ${nativeAddon()!.getThreads()} threads)` : ''}`,
  `cpu: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.availableParallelism()} cores`,
  `ResNet-20 step, batch ${batch}: median ${strataMs.toFixed(1)} ms over ${iters} steps, ${((batch * 1000) / strataMs).toFixed(0)} img/s`,
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
  torch_step_ms: torch?.medianMs ?? null,
  torch_version: torch?.version ?? null,
  speedup,
  peak_rss_mb: rss,
});
console.log(
  `resnet20_step_ms=${strataMs.toFixed(1)} torch_step_ms=${torch ? torch.medianMs.toFixed(1) : 'NA'} speedup=${speedup ? speedup.toFixed(2) : 'NA'} peak_rss_mb=${rss.toFixed(0)}`,
);
