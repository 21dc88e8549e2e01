import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { manualSeed } from '../../src/nn/init.js';
import { createModel } from '../../src/nn/models/index.js';
import { quantizeModel } from '../../src/quant/quantize-model.js';
import { resolveTrainConfig, type TrainConfig } from '../../src/train/config.js';
import { SGD } from '../../src/train/optim.js';
import { trainStep } from '../../src/train/trainer.js';

/** The weights of a small once-QAT model after three steps of a recipe, from a fixed start. */
function weightsAfter(bits: number[], options: Partial<TrainConfig>): Float32Array {
  manualSeed(3);
  const rng = new Random(3);
  const model = createModel({ name: 'small-cnn', numClasses: 4, inChannels: 1, width: 8 });
  quantizeModel(model, { precisions: bits });
  const config = resolveTrainConfig({ model: 'small-cnn', mode: 'once', bits, ...options });
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const x = Tensor.randn([8, 12, 12, 1], rng);
  const labels = Int32Array.from({ length: 8 }, (_, i) => i % 4);
  for (let step = 0; step < 3; step++) trainStep(model, opt, config, x.data, [8, 12, 12, 1], labels, step);
  return Float32Array.from(model.parameters().flatMap((p) => [...p.data]));
}

test('recursive distillation teaches each precision from its neighbour, not from the highest', () => {
  const highest = weightsAfter([8, 4, 2], { distill: true, distillFrom: 'highest' });
  const next = weightsAfter([8, 4, 2], { distill: true, distillFrom: 'next' });
  const plain = weightsAfter([8, 4, 2], {});
  assert.notDeepEqual(next, highest, '2 bits learns from 4 bits under "next", from 8 bits under "highest"');
  assert.notDeepEqual(next, plain, 'distillation changes the update');
  // With two precisions the next higher one is the highest: the two teachers are the same.
  assert.deepEqual(
    weightsAfter([8, 2], { distill: true, distillFrom: 'next' }),
    weightsAfter([8, 2], { distill: true, distillFrom: 'highest' }),
  );
});

test('an unknown distillation teacher is refused by name', () => {
  assert.throws(() => resolveTrainConfig({ mode: 'once', distillFrom: 'lowest' }, 'test'), /distillFrom/);
});
