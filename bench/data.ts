/**
 * npm run bench:data — does the data pipeline keep the engine busy? Times ResNet-20 training steps
 * fed by the real CIFAR-10 loader (decode cache, random crop + flip + normalise, prefetch) against
 * the same steps on one pre-made tensor, in one run. Options: --steps 20 --batch 128.
 */
import os from 'node:os';
import { loadCifar10Jpeg, DataLoader, cifarTrainTransforms } from '../src/data/index.js';
import { Random } from '../src/engine/random.js';
import { Tensor } from '../src/engine/tensor.js';
import { manualSeed } from '../src/nn/init.js';
import { resolveTrainConfig } from '../src/train/config.js';
import { SGD } from '../src/train/optim.js';
import { buildModel, trainStep } from '../src/train/trainer.js';
import { arg, median, writeResult } from './common.js';

const steps = arg('steps', 20);
const batch = arg('batch', 128);
manualSeed(0);
const config = resolveTrainConfig({
  model: 'resnet20',
  dataset: 'cifar10-jpeg',
  mode: 'fp',
  batchSize: batch,
});
const { model } = buildModel(config, 10, 3);
const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
const { train } = await loadCifar10Jpeg({ log: (m) => process.stderr.write(`${m}\n`) });
const loader = new DataLoader(train, {
  batchSize: batch,
  seed: 1,
  transforms: cifarTrainTransforms(),
  dropLast: true,
});

const rng = new Random(2);
const x = Tensor.randn([batch, 32, 32, 3], rng);
const labels = Int32Array.from({ length: batch }, () => rng.int(10));
for (let i = 0; i < 2; i++) trainStep(model, opt, config, x.data, [...x.shape], labels, i);

// Alternate blocks of the two feeds so drift in machine load affects both alike.
const fed: number[] = [];
const premade: number[] = [];
const it = loader.epoch(0)[Symbol.asyncIterator]();
for (let block = 0; block < steps / 5; block++) {
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    trainStep(model, opt, config, x.data, [...x.shape], labels, i);
    premade.push(performance.now() - t);
  }
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const next = await it.next();
    if (next.done) throw new Error('epoch ended early');
    trainStep(model, opt, config, next.value.images, next.value.shape, next.value.labels, i);
    fed.push(performance.now() - t);
  }
}
await loader.close();
const a = median(premade);
const b = median(fed);
const overhead = (b / a - 1) * 100;
console.log(`pre-made tensor: median ${a.toFixed(1)} ms/step (${((batch * 1000) / a).toFixed(0)} img/s)`);
console.log(
  `real CIFAR-10 loader: median ${b.toFixed(1)} ms/step (${((batch * 1000) / b).toFixed(0)} img/s), overhead ${overhead.toFixed(1)}%`,
);
writeResult('data-pipeline.json', {
  command: `npm run bench:data -- ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  cpu: os.cpus()[0]?.model,
  batch,
  steps,
  premade_step_ms: a,
  loader_step_ms: b,
  overhead_percent: overhead,
});
console.log(
  `premade_step_ms=${a.toFixed(1)} loader_step_ms=${b.toFixed(1)} overhead_percent=${overhead.toFixed(1)}`,
);
