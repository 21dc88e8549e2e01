/**
 * Integer inference on Strata's engine: the integer plan of a model rebuilt from a .strata file, run
 * on the oneDNN int8 kernels and on the TypeScript reference ones, equals Strata's own forward at
 * every precision 2..8 (the integer accumulation is exact; only float rounding of the epilogue differs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/engine/backend-registry.js';
import { int8Kernels, referenceInt8Kernels } from '../../src/engine/int8-kernels.js';
import { intPlan } from '../../src/export/int-plan.js';
import { modelFromStrata, toStrataContent } from '../../src/export/strata-model.js';
import { readStrata, writeStrata } from '../../src/format/index.js';
import { IntPlanRunner } from '../../src/runtime/int-engine.js';
import { StrataSession } from '../../src/runtime/session.js';
import { calibratedModel, strataLogits } from '../export/fixtures.js';

function assertClose(got: Float32Array, want: Float32Array, label: string): void {
  const maxAbs = Math.max(...Array.from(want, Math.abs));
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * maxAbs, `${label}: logit ${i} ${got[i]} vs ${want[i]}`);
  }
}

for (const name of ['resnet20', 'small-cnn', 'mobilenetv2'] as const) {
  test(`${name}: the integer plan equals Strata's forward at every precision 2..8, on both int8 kernel sets`, () => {
    const f =
      name === 'resnet20'
        ? calibratedModel('resnet20', { inChannels: 3, size: 8 })
        : name === 'small-cnn'
          ? calibratedModel('small-cnn', { inChannels: 1, size: 28 })
          : calibratedModel('mobilenetv2', { inChannels: 3, size: 16, width: 0.25 });
    const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
    for (let bits = 2; bits <= 8; bits++) {
      const { model } = modelFromStrata(readStrata(strata, { bits }));
      const want = strataLogits(model, f.input, bits);
      const plan = intPlan(model, bits);
      const kernels = int8Kernels();
      assert.equal(kernels.name, getBackend().name === 'native' ? 'native' : 'reference');
      const runner = new IntPlanRunner(plan);
      assertClose(runner.run(f.input.data, f.shape), want, `${name} ${bits} bits (${kernels.name})`);
      if (name !== 'mobilenetv2') assert.deepEqual(runner.referenceLayers, []);
      if (bits === 8 || bits === 3) {
        const reference = new IntPlanRunner(plan, referenceInt8Kernels);
        assertClose(reference.run(f.input.data, f.shape), want, `${name} ${bits} bits (reference)`);
      }
    }
  });
}

test('a native session on a .strata file runs the integer plan and says which kernels it uses', async () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 12, width: 4 });
  const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
  const session = await StrataSession.create(strata, { bits: 4, engine: 'native' });
  assert.equal(session.arithmetic, getBackend().name === 'native' ? 'native-int8' : 'reference-int8');
  const { model } = modelFromStrata(readStrata(strata, { bits: 4 }));
  assertClose((await session.predict(f.input)).logits, strataLogits(model, f.input, 4), 'session');
  const float = await StrataSession.create(strata, { bits: 4, engine: 'native', float: true });
  assert.equal(float.arithmetic, 'float');
  assert.deepEqual((await float.predict(f.input)).logits, strataLogits(model, f.input, 4));
});
