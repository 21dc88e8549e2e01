/**
 * Parity on a trained once-QAT model: every precision of its .strata file, rebuilt from the file,
 * exported as an integer graph and run in onnxruntime-node, and run on Strata's int8 kernels, agrees
 * with Strata's own forward on real MNIST test digits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { packCheckpoint } from '../../src/cli/commands/pack.js';
import { loadMnist } from '../../src/data/idx.js';
import { normalize, transformInto } from '../../src/data/transforms.js';
import { getImage } from '../../src/data/dataset.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { exportOnnx } from '../../src/export/onnx-export.js';
import { intPlan } from '../../src/export/int-plan.js';
import { IntPlanRunner } from '../../src/runtime/int-engine.js';
import { readStrata } from '../../src/format/index.js';
import { modelFromStrata } from '../../src/export/strata-model.js';
import { trainTinyMnist } from '../web/fixtures.js';
import { assertLogitsClose, nhwcToNchw, strataLogits } from './fixtures.js';

test('every precision of a trained once-QAT model runs the same in onnxruntime as in Strata', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-once-onnx-'));
  try {
    const checkpoint = await trainTinyMnist(join(dir, 'run'), { bits: [8, 6, 4, 3, 2], trainLimit: 1024 });
    const bytes = packCheckpoint(checkpoint);
    const digits = await loadMnist('test');
    const n = 32;
    const input = new Tensor(new Float32Array(n * 28 * 28), [n, 28, 28, 1]);
    for (let i = 0; i < n; i++) {
      transformInto(
        getImage(digits, i),
        1,
        [normalize([0.1307], [0.3081])],
        new Random(0),
        input.data,
        i * 784,
        28,
        28,
        `digit ${i}`,
      );
    }
    let agreeing = 0;
    for (let bits = 2; bits <= 8; bits++) {
      const { model } = modelFromStrata(readStrata(bytes, { bits }));
      const reference = strataLogits(model, input, bits);
      const session = await ort.InferenceSession.create(exportOnnx(model, { bits }), {
        intraOpNumThreads: 1,
      });
      const out = await session.run({
        input: new ort.Tensor('float32', nhwcToNchw(input.data, [n, 28, 28, 1]), [n, 1, 28, 28]),
      });
      const logits = out.logits.data as Float32Array;
      const diff = assertLogitsClose(logits, reference, 10, true, `${bits} bits`);
      const native = new IntPlanRunner(intPlan(model, bits)).run(input.data, input.shape);
      assertLogitsClose(native, reference, 10, true, `${bits} bits, int8 kernels`);
      agreeing += diff.agree;
      await session.release();
    }
    assert.ok(agreeing >= 7 * n - 2, `argmax agreed on ${agreeing} of ${7 * n} rows`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
