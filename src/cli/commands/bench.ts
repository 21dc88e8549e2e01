import os from 'node:os';
import { Command } from 'commander';
import { backward } from '../../engine/autograd.js';
import { nativeAddon } from '../../engine/backend-native.js';
import { getBackend } from '../../engine/backend-registry.js';
import { scope } from '../../engine/memory.js';
import { softmaxCrossEntropy } from '../../engine/ops.js';
import { Random } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { createModel } from '../../nn/models/index.js';
import { SGD } from '../../train/optim.js';
import { println, processIo, type CliIo } from '../io.js';
import { parseNonNegativeInteger, parsePositiveInteger } from '../parse.js';

interface BenchFlags {
  batch: number;
  iters: number;
  warmup: number;
  threads?: number;
}

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

export function benchCommand(io: CliIo = processIo): Command {
  return new Command('bench')
    .description('Median ResNet-20 training step (forward, backward, SGD) on random 32x32 batches')
    .option('--batch <n>', 'batch size', parsePositiveInteger, 128)
    .option('--iters <n>', 'measured steps', parsePositiveInteger, 10)
    .option('--warmup <n>', 'steps run before measuring', parseNonNegativeInteger, 2)
    .option('--threads <n>', 'oneDNN threads (default: STRATA_THREADS or every core)', parsePositiveInteger)
    .action((flags: BenchFlags) => {
      if (flags.threads !== undefined) process.env.STRATA_THREADS = String(flags.threads);
      const backend = getBackend();
      const addon = backend.name === 'reference' ? null : nativeAddon();
      if (flags.threads !== undefined) addon?.setThreads(flags.threads);
      const write = (line: string) => println(io.out, line);
      write(
        `backend: ${backend.name}${addon ? ` (${addon.version()}, ${addon.getThreads()} thread${addon.getThreads() === 1 ? '' : 's'})` : ''}` +
          (addon === null && flags.threads !== undefined
            ? ' (--threads applies to the native backend only)'
            : ''),
      );
      write(`cpu: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.availableParallelism()} cores`);
      const timing = timeTrainingSteps(flags.batch, flags.iters, flags.warmup, (step, ms) =>
        io.err(`\rstep ${step}/${flags.warmup + flags.iters}: ${ms.toFixed(1)} ms   `),
      );
      io.err('\n');
      write(
        `ResNet-20 training step, batch ${flags.batch}: median ${timing.medianMs.toFixed(1)} ms over ${flags.iters} steps, ` +
          `${timing.imagesPerSecond.toFixed(0)} images/s`,
      );
      write(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
    });
}
