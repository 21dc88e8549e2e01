import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codesAt, reconstructionOffset, scalesAt, type CascadeRule } from '../../src/quant/cascade.js';
import {
  StrataFormatError,
  availableBits,
  extractStrata,
  inspectStrata,
  readStrata,
  writeStrata,
} from '../../src/format/index.js';
import type { StrataModelContent, StrataReadResult } from '../../src/format/types.js';
import { headerJson, smallContent } from './helpers.js';

function assertMatchesContent(r: StrataReadResult, content: StrataModelContent, bits: number): void {
  const { topBits, rule } = content.quantization;
  assert.equal(r.bits, bits);
  assert.equal(r.layered.length, content.layered.length);
  r.layered.forEach((t, i) => {
    const src = content.layered[i];
    assert.equal(t.name, src.name);
    assert.deepEqual(t.shape, src.shape);
    assert.deepEqual(t.codes, codesAt(src.topCodes, topBits, bits, rule), `${t.name} at ${bits} bits`);
    assert.deepEqual(t.scales, scalesAt(src.scales, topBits, bits));
    assert.equal(t.offset, reconstructionOffset(topBits, bits, rule));
  });
  assert.deepEqual(r.fixed, content.fixed);
  assert.deepEqual(r.perPrecision, content.perPrecision.get(bits));
}

const CASES: { topBits: number; minBits: number; rule: CascadeRule; distinctParams: boolean }[] = [
  { topBits: 8, minBits: 2, rule: 'floor', distinctParams: false },
  { topBits: 8, minBits: 2, rule: 'round', distinctParams: true },
  { topBits: 5, minBits: 1, rule: 'round', distinctParams: false },
  { topBits: 4, minBits: 4, rule: 'floor', distinctParams: true },
  { topBits: 12, minBits: 3, rule: 'floor', distinctParams: true },
];

test('round trip: every precision reads back the cascade codes, scales, offsets and its own parameters', () => {
  for (const c of CASES) {
    const content = smallContent(c);
    const file = writeStrata(content);
    const full = readStrata(file);
    assert.equal(full.bits, c.topBits);
    assert.deepEqual(full.header.architecture, content.architecture);
    assert.deepEqual(full.header.quantization, content.quantization);
    assert.deepEqual(full.header.metadata, content.metadata);
    for (let b = c.minBits; b <= c.topBits; b++)
      assertMatchesContent(readStrata(file, { bits: b }), content, b);
  }
});

test('a prefix cut at the offset inspect names loads that precision exactly as the full file does; one byte less gives the one below', () => {
  for (const c of CASES) {
    const file = writeStrata(smallContent(c));
    const info = inspectStrata(file);
    assert.deepEqual(
      info.precisions.map((p) => p.bits),
      Array.from({ length: c.topBits - c.minBits + 1 }, (_, i) => c.minBits + i),
    );
    assert.equal(info.precisions.at(-1)?.completeAt, file.length);
    for (const p of info.precisions) {
      const full = readStrata(file, { bits: p.bits });
      const prefix = file.subarray(0, p.completeAt);
      assert.deepEqual(readStrata(prefix), full);
      assert.equal(availableBits(prefix), p.bits);
      const shorter = file.subarray(0, p.completeAt - 1);
      if (p.bits === c.minBits) {
        assert.throws(() => readStrata(shorter), { name: 'StrataFormatError', code: 'TRUNCATED' });
        assert.equal(availableBits(shorter), null);
      } else {
        assert.deepEqual(readStrata(shorter), readStrata(file, { bits: p.bits - 1 }));
      }
      assert.throws(
        () => readStrata(shorter, { bits: p.bits }),
        (e: unknown) => {
          assert.ok(e instanceof StrataFormatError);
          assert.equal(e.code, 'TRUNCATED');
          assert.match(e.message, new RegExp(`precision ${p.bits} needs the first ${p.completeAt} bytes`));
          return true;
        },
      );
    }
  }
});

test('every prefix length of a file either loads its highest complete precision or is refused as truncated', () => {
  const file = writeStrata(smallContent({ seed: 3 }));
  const info = inspectStrata(file);
  const byBits = new Map(info.precisions.map((p) => [p.bits, readStrata(file, { bits: p.bits })]));
  for (let length = 0; length <= file.length; length++) {
    const prefix = file.subarray(0, length);
    const expected = info.precisions.filter((p) => p.completeAt <= length).at(-1);
    if (expected === undefined) {
      assert.throws(() => readStrata(prefix), { code: 'TRUNCATED' });
    } else {
      const r = readStrata(prefix);
      assert.equal(r.bits, expected.bits);
      assert.deepEqual(r.layered, byBits.get(expected.bits)?.layered);
    }
  }
});

test('extract gives a smaller stand-alone file that reads like the original at each precision it keeps', () => {
  for (const c of CASES) {
    const content = smallContent(c);
    const file = writeStrata(content);
    assert.deepEqual(extractStrata(file, c.topBits), file, 'extracting everything rebuilds the same bytes');
    for (let b = c.minBits; b <= c.topBits; b++) {
      const small = extractStrata(file, b);
      const info = inspectStrata(small);
      assert.equal(info.precisions.at(-1)?.bits, b);
      assert.equal(info.fileLength, small.length);
      if (b < c.topBits) assert.ok(small.length < file.length);
      for (let lower = c.minBits; lower <= b; lower++) {
        const a = readStrata(small, { bits: lower });
        const o = readStrata(file, { bits: lower });
        assert.deepEqual([a.layered, a.fixed, a.perPrecision], [o.layered, o.fixed, o.perPrecision]);
        assertMatchesContent(a, content, lower);
      }
      assert.throws(() => readStrata(small, { bits: b + 1 }), RangeError);
      // Parameter tables only removed precisions used are dropped, so the header stays minimal.
      const used = new Set(headerJson(small).sections.map((s) => s.params));
      assert.equal(used.size, (headerJson(small).paramTables as unknown[]).length);
    }
  }
});

test('inspect summarizes a prefix without needing the sections', () => {
  const content = smallContent();
  const file = writeStrata(content);
  const info = inspectStrata(file);
  const header = inspectStrata(file.subarray(0, info.dataStart));
  assert.equal(header.availableBits, null);
  assert.ok(header.precisions.every((p) => !p.present));
  assert.equal(info.availableBits, 8);
  assert.equal(info.layeredTensors, 3);
  assert.equal(
    info.layeredWeights,
    content.layered.reduce((n, t) => n + t.topCodes.length, 0),
  );
  assert.deepEqual(info.formatVersion, { major: 1, minor: 0 });
  assert.equal(availableBits(readStrata(file).header, info.precisions[3].completeAt), 5);
  assert.throws(() => inspectStrata(file.subarray(0, info.dataStart - 1)), { code: 'TRUNCATED' });
});

test('the writer refuses invalid content with errors that name the tensor', () => {
  const base = smallContent();
  const withLayered = (patch: Partial<StrataModelContent['layered'][number]>): StrataModelContent => ({
    ...base,
    layered: [{ ...base.layered[0], ...patch }, ...base.layered.slice(1)],
  });
  assert.throws(() => writeStrata(withLayered({ shape: [4, 3, 3, 2] })), {
    name: 'RangeError',
    message: "Tensor 'conv1.weight' has 108 elements but shape [4, 3, 3, 2] needs 72",
  });
  assert.throws(() => writeStrata(withLayered({ scales: new Float32Array(3) })), {
    message: "Expected 4 scales for 'conv1.weight' (one per output channel) but received 3",
  });
  assert.throws(() => writeStrata(withLayered({ topCodes: new Int32Array(108).fill(200) })), {
    message: "Expected topCodes of 'conv1.weight'[0] in [-128, 127] (8-bit floor codes) but received 200",
  });
  assert.throws(() => writeStrata(withLayered({ name: 'head.bias' })), {
    message: "Duplicate tensor name 'head.bias' in layered and fixed tensors",
  });
  assert.throws(() => writeStrata({ ...base, quantization: { ...base.quantization, minBits: 9 } }), {
    message: 'Expected quantization.minBits in [1, 8] but received 9',
  });
  assert.throws(() => writeStrata({ ...base, perPrecision: new Map([[9, []]]) }), {
    message: 'Expected perPrecision keys in [2, 8] but received 9',
  });
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 80; i++) deep = { deep };
  assert.throws(() => writeStrata({ ...base, architecture: deep }), RangeError);
});

test('models without per-precision parameters or fixed tensors are valid', () => {
  const base = smallContent({ topBits: 3, minBits: 1 });
  const content = { ...base, fixed: [], perPrecision: new Map(), metadata: undefined };
  const file = writeStrata(content);
  for (let b = 1; b <= 3; b++) {
    const r = readStrata(file, { bits: b });
    assert.deepEqual(r.perPrecision, []);
    assert.deepEqual(r.fixed, []);
    assert.equal(r.header.metadata, null);
  }
});
