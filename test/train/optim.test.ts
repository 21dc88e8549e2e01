import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor.js';
import { Parameter } from '../../src/nn/module.js';
import { AdamW, SGD } from '../../src/train/optim.js';
import { CosineSchedule, StepSchedule, WarmupSchedule } from '../../src/train/schedule.js';
import { parseOverride, resolveTrainConfig } from '../../src/train/config.js';

function param(values: number[], grad: number[]): Parameter {
  const p = new Parameter(Float32Array.from(values));
  p.grad = Tensor.fromArray(grad);
  return p;
}

test('SGD with Nesterov momentum and weight decay matches the hand-computed update', () => {
  const p = param([1, -2], [0.5, 0.25]);
  const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true });
  opt.step();
  // g' = g + wd p = [0.51, 0.23]; v = g'; p -= lr (g' + 0.9 v) = lr * 1.9 g'
  assert.ok(Math.abs(p.data[0] - (1 - 0.1 * 1.9 * 0.51)) < 1e-6);
  assert.ok(Math.abs(p.data[1] - (-2 - 0.1 * 1.9 * 0.23)) < 1e-6);
  const state = opt.stateDict();
  const q = param([...p.data], [0.5, 0.25]);
  const restored = new SGD([q], { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true });
  restored.loadStateDict(state);
  opt.step();
  restored.step();
  assert.deepEqual(q.data, p.data, 'a restored optimizer continues exactly');
});

test('AdamW takes a bias-corrected step of about lr and decays decoupled', () => {
  const p = param([1], [3]);
  const opt = new AdamW([p], { lr: 0.01, weightDecay: 0.1 });
  opt.step();
  // First step: m^/sqrt(v^) = sign(g) = 1; decay lr * wd * p = 0.001.
  assert.ok(Math.abs(p.data[0] - (1 - 0.001 - 0.01)) < 1e-5, `${p.data[0]}`);
});

test('schedules: step, cosine and linear warm-up', () => {
  const step = new StepSchedule(0.1, [10, 20], 0.1);
  assert.ok(
    Math.abs(step.lrAt(5) - 0.1) < 1e-12 &&
      Math.abs(step.lrAt(15) - 0.01) < 1e-12 &&
      Math.abs(step.lrAt(25) - 0.001) < 1e-12,
  );
  const cos = new CosineSchedule(0.1, 100);
  assert.equal(cos.lrAt(0), 0.1);
  assert.ok(Math.abs(cos.lrAt(50) - 0.05) < 1e-12);
  assert.ok(cos.lrAt(100) < 1e-12);
  const warm = new WarmupSchedule(cos, 10, 0.1);
  assert.ok(Math.abs(warm.lrAt(0) - 0.01) < 1e-12);
  assert.ok(warm.lrAt(5) > warm.lrAt(0) && warm.lrAt(5) < 0.1);
  assert.equal(warm.lrAt(10), cos.lrAt(10));
});

test('training configs refuse unknown options and bad values by name', () => {
  assert.throws(() => resolveTrainConfig({ epoch: 3 }), /config: unknown option 'epoch'/);
  assert.throws(
    () => resolveTrainConfig({ mode: 'qat', bits: [8, 4] }),
    /mode 'qat' trains one precision but bits lists 2/,
  );
  assert.throws(
    () => resolveTrainConfig({ lr: Number.NaN }),
    /Expected finite number for lr of config but received NaN/,
  );
  assert.throws(
    () => resolveTrainConfig({ bits: [9] }),
    /Expected bits in \[2, 8\] of config but received 9/,
  );
  assert.deepEqual(resolveTrainConfig({ bits: [2, 8, 4] }).bits, [8, 4, 2]);
  assert.deepEqual(parseOverride('bits=8,4,2'), ['bits', [8, 4, 2]]);
  assert.deepEqual(parseOverride('distill=true'), ['distill', true]);
  assert.deepEqual(parseOverride('lr=0.05'), ['lr', 0.05]);
  assert.throws(() => parseOverride('lr'), /Expected key=value/);
  assert.deepEqual(parseOverride('lossWeights=[0.5,0.25]'), ['lossWeights', [0.5, 0.25]]);
  assert.throws(() => parseOverride('lossWeights=[0.5,]'), /Expected a JSON list such as \[1,2,3\]/);
  // A list option given a string (or one number) names the option instead of counting characters.
  assert.throws(
    () => resolveTrainConfig({ mode: 'once', bits: [8, 4], lossWeights: '1;2' }),
    /lossWeights must be a list of non-negative numbers .* but received "1;2"/,
  );
  assert.throws(() => resolveTrainConfig({ milestones: 30 }), /milestones must be a list/);
});
