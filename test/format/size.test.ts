import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspectStrata, readStrata, writeStrata } from '../../src/format/index.js';
import { resnet20Content } from './helpers.js';

test('ResNet-20: the prefix for b bits is within 10% of b/32 of the float weights plus what else that prefix must hold', () => {
  const content = resnet20Content();
  const file = writeStrata(content);
  const info = inspectStrata(file);
  const weights = content.layered.reduce((n, t) => n + t.topCodes.length, 0);
  assert.ok(weights > 260_000 && weights < 280_000 && content.layered.length === 19);
  const floatBytes = 4 * weights;
  const fixedBytes = content.fixed.reduce((n, t) => n + 4 * t.data.length, 0);
  let paramBytes = 0;
  for (const p of info.precisions) {
    // A b-bit prefix holds the parameters of every precision up to b (they precede it in the file).
    paramBytes += (content.perPrecision.get(p.bits) ?? []).reduce((n, t) => n + 4 * t.data.length, 0);
    const ideal = (p.bits / 32) * floatBytes + fixedBytes + paramBytes;
    assert.ok(
      p.completeAt >= ideal,
      `${p.bits}-bit prefix ${p.completeAt} is below the information it holds`,
    );
    assert.ok(p.completeAt <= 1.1 * ideal, `${p.bits}-bit prefix is ${p.completeAt} bytes, ideal ${ideal}`);
  }
  assert.equal(readStrata(file.subarray(0, info.precisions[0].completeAt)).bits, 2);
});
