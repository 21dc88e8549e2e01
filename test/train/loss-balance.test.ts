import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveTrainConfig } from '../../src/train/config.js';
import { lossWeight, precisionsForStep } from '../../src/train/trainer.js';

const once = (extra: Record<string, unknown>) =>
  resolveTrainConfig({ model: 'small-cnn', mode: 'once', bits: [8, 7, 6, 5, 4, 3, 2], ...extra });

test("loss balance 'lowest': the lowest precision at weight 1, the others sharing one", () => {
  const config = once({ lossBalance: 'lowest' });
  const weights = config.bits.map((b) => lossWeight(config, config.bits, b));
  assert.deepEqual(weights.slice(0, 6), Array(6).fill(1 / 6));
  assert.equal(weights[6], 1);
});

test("loss balance 'mean' weighs every precision alike, and explicit weights override either", () => {
  const mean = once({ lossBalance: 'mean' });
  for (const b of mean.bits) assert.equal(lossWeight(mean, mean.bits, b), 1 / 7);
  const explicit = once({ lossBalance: 'lowest', lossWeights: [1, 2, 3, 4, 5, 6, 7] });
  assert.equal(lossWeight(explicit, explicit.bits, 6), 3);
});

test('with sampled precisions the share is over the precisions run in the step', () => {
  const config = once({ lossBalance: 'lowest', samplePrecisions: 3 });
  const step = precisionsForStep(config, 5);
  assert.equal(step.length, 3);
  assert.deepEqual(
    step.map((b) => lossWeight(config, step, b)),
    [0.5, 0.5, 1],
  );
});

test('a dedicated model has one precision at weight 1 under either balance', () => {
  for (const lossBalance of ['mean', 'lowest'] as const) {
    const config = resolveTrainConfig({ model: 'small-cnn', mode: 'qat', bits: [2], lossBalance });
    assert.equal(lossWeight(config, config.bits, 2), 1);
  }
});

test('an unknown loss balance is refused by name', () => {
  assert.throws(() => once({ lossBalance: 'sum' }), /lossBalance/);
});
