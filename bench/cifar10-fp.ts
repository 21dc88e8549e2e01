/**
 * npm run bench:cifar10-fp — ResNet-20 at full precision on the shared CIFAR-10 JPEG training
 * archive, scored on its fixed validation split (the last 500 images of every class), with the
 * recipe of configs/cifar10-resnet20-fp.json and `--epochs N` (default 52: what fits one 3-hour
 * working session on 2 cores at about 160 s an epoch).
 *
 *   npm run bench:cifar10-fp -- --epochs 52 [--out runs/cifar10-resnet20-fp52]
 *
 * Resumes from the run folder's checkpoint when there is one (a finished run is only evaluated),
 * then writes bench/results/cifar10-resnet20-fp.json and the training curves beside the checkpoint.
 */
import { join } from 'node:path';
import { loadConfigFile, resolveTrainConfig } from '../src/train/config.js';
import { runTraining } from '../src/train/trainer.js';
import { arg, repoRoot, writeResult } from './common.js';

const epochs = arg('epochs', 52);
const outIndex = process.argv.indexOf('--out');
const out = outIndex >= 0 ? process.argv[outIndex + 1] : join('runs', `cifar10-resnet20-fp${epochs}`);
const configFile = join(repoRoot, 'configs', 'cifar10-resnet20-fp.json');
const config = resolveTrainConfig({ ...loadConfigFile(configFile), epochs, out }, configFile);

const run = await runTraining(config, {
  log: (m) => process.stderr.write(`${m}\n`),
  progressStream: process.stderr,
});
if (run.interrupted) {
  process.stderr.write(`interrupted: run the same command again to resume from ${run.checkpoint}\n`);
  process.exit(130);
}
const top1 = run.results[0].top1;
const best = Math.max(...run.history.map((h) => h.valTop1.fp ?? -Infinity));
const command = `npm run bench:cifar10-fp -- ${process.argv.slice(2).join(' ')}`.trim();
writeResult('cifar10-resnet20-fp.json', {
  split: run.valSplit,
  top1,
  top5: run.results[0].top5,
  epochs: config.epochs,
  wall_s: run.wallSeconds,
  command,
  recipe:
    `ResNet-20, SGD ${config.nesterov ? 'nesterov ' : ''}momentum ${config.momentum}, lr ${config.lr} ${config.schedule} ` +
    `(warm-up ${config.warmupEpochs} epoch), batch ${config.batchSize}, weight decay ${config.weightDecay}, ` +
    `random crop (pad 4) + horizontal flip, seed ${config.seed}`,
  best_epoch_top1: best,
  checkpoint: run.checkpoint,
  date: new Date().toISOString(),
});
console.log(
  `top1=${top1.toFixed(2)} epochs=${config.epochs} wall_s=${run.wallSeconds.toFixed(0)} split="${run.valSplit}"`,
);
