import os from 'node:os';
import { Command } from 'commander';
import { nativeAddon } from '../../engine/backend-native.js';
import { getBackend } from '../../engine/backend-registry.js';
import { timeTrainingSteps, trainingStepFlops } from '../../train/benchmark.js';
import { println, processIo, type CliIo } from '../io.js';
import { parseNonNegativeInteger, parsePositiveInteger } from '../parse.js';

interface BenchFlags {
  batch: number;
  iters: number;
  warmup: number;
  threads?: number;
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
      const gflop = trainingStepFlops(flags.batch) / 1e9;
      write(
        `arithmetic: ${gflop.toFixed(2)} GFLOP per step (convolutions and linear, forward and backward), ` +
          `${((gflop * 1000) / timing.medianMs).toFixed(1)} GFLOP/s achieved`,
      );
      write(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
    });
}
