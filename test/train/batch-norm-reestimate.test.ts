import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activeBatchNorms, reestimateBatchNorm } from '../../src/train/batch-norm-reestimate.js';
import { DataLoader } from '../../src/data/index.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { BatchNorm2d } from '../../src/nn/batch-norm.js';
import { Module } from '../../src/nn/module.js';
import { SwitchableBatchNorm2d } from '../../src/quant/switchable-batch-norm.js';

class Wrapper extends Module {
  readonly inner: Module;
  constructor(inner: Module) {
    super();
    this.inner = this.registerModule('inner', inner);
  }
  forward(x: Tensor): Tensor {
    return this.inner.forward(x);
  }
}

/** 12 one-pixel images with two channels; pixels reach the model divided by 255. */
const pixels = Uint8Array.from({ length: 24 }, (_, i) => (i * 37 + (i % 5) * 11) % 256);
function loader(): DataLoader {
  const dataset = {
    images: pixels,
    labels: new Int32Array(12),
    height: 1,
    width: 1,
    channels: 2,
    classes: ['only'],
  };
  return new DataLoader(dataset, { batchSize: 4, shuffle: false });
}

/** Per channel: the mean over batches of each batch's mean and unbiased variance. */
function expectedStats(batches: number): { mean: number[]; variance: number[] } {
  const mean = [0, 0];
  const variance = [0, 0];
  for (let b = 0; b < batches; b++) {
    for (let c = 0; c < 2; c++) {
      const xs = [0, 1, 2, 3].map((i) => pixels[(b * 4 + i) * 2 + c] / 255);
      const m = xs.reduce((s, x) => s + x, 0) / 4;
      mean[c] += m / batches;
      variance[c] += xs.reduce((s, x) => s + (x - m) ** 2, 0) / 3 / batches;
    }
  }
  return { mean, variance };
}

function assertClose(actual: Float32Array, expected: number[]): void {
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i] - e) < 1e-5, `${actual[i]} vs ${e} at ${i}`));
}

test('reestimateBatchNorm replaces running statistics by their equal-weight average over batches', async () => {
  const bn = new BatchNorm2d(2, { momentum: 0.1 });
  bn.runningMean.data.fill(5);
  const model = new Wrapper(bn).eval();
  const used = await reestimateBatchNorm(model, loader(), 2);
  assert.equal(used, 2);
  const expected = expectedStats(2);
  assertClose(bn.runningMean.data, expected.mean);
  assertClose(bn.runningVar.data, expected.variance);
  assert.equal(model.training, false);
});

test('reestimateBatchNorm stops at the end of the epoch when it has fewer batches', async () => {
  const bn = new BatchNorm2d(2, { momentum: 0.3 });
  const used = await reestimateBatchNorm(new Wrapper(bn), loader(), 50);
  assert.equal(used, 3);
  assertClose(bn.runningMean.data, expectedStats(3).mean);
});

test('only the batch norm of the current precision is re-estimated', async () => {
  const switchable = new SwitchableBatchNorm2d(new BatchNorm2d(2), [8, 4]);
  switchable.bits = 4;
  const model = new Wrapper(switchable);
  assert.deepEqual(activeBatchNorms(model), [switchable.at(4)]);
  await reestimateBatchNorm(model, loader(), 1);
  assertClose(switchable.at(4).runningMean.data, expectedStats(1).mean);
  for (const untouched of [switchable.at(8), switchable.at(null)]) {
    assert.deepEqual([...untouched.runningMean.data], [0, 0]);
    assert.deepEqual([...untouched.runningVar.data], [1, 1]);
  }
});

test('reestimateBatchNorm refuses a batch count below one', async () => {
  await assert.rejects(reestimateBatchNorm(new Wrapper(new BatchNorm2d(2)), loader(), 0), {
    name: 'RangeError',
    message: 'Expected positive integer for batches but received 0',
  });
});
