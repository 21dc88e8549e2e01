import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { checkpointPath, runTraining } from '../../src/train/trainer.js';

const quiet = () => undefined;

test('an interrupted once-QAT run resumes to exactly the weights of an uninterrupted one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-resume-'));
  const base = {
    model: 'small-cnn',
    width: 4,
    dataset: 'mnist',
    mode: 'once',
    bits: [8, 4, 2],
    trainLimit: 256,
    valLimit: 128,
    epochs: 2,
    batchSize: 64,
    lr: 0.05,
  };
  const straight = resolveTrainConfig({ ...base, out: join(dir, 'straight') });
  const whole = await runTraining(straight, { log: quiet });
  assert.equal(whole.interrupted, false);
  assert.equal(whole.results.length, 3);

  const split = resolveTrainConfig({ ...base, out: join(dir, 'split') });
  const first = await runTraining(split, { log: quiet, maxSteps: 3 }); // stops mid-epoch 1 (4 steps an epoch)
  assert.equal(first.interrupted, true);
  const messages: string[] = [];
  const second = await runTraining(split, { log: (m) => messages.push(m) });
  assert.ok(
    messages.some((m) => /resumed from .*checkpoint\.ckpt: epoch 1, batch 3/.test(m)),
    messages.join('\n'),
  );
  assert.equal(second.interrupted, false);

  const a = loadCheckpoint(checkpointPath(straight)).arrays;
  const b = loadCheckpoint(checkpointPath(split)).arrays;
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, arr] of a) assert.deepEqual(b.get(name), arr, name);
  assert.deepEqual(
    second.results.map((r) => r.top1),
    whole.results.map((r) => r.top1),
  );
});
