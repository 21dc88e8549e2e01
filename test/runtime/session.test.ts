import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportOnnx } from '../../src/export/onnx-export.js';
import { writeStrata } from '../../src/format/index.js';
import { StrataSession } from '../../src/runtime/session.js';
import { getBackend, setBackend } from '../../src/engine/backend-registry.js';
import { referenceBackend } from '../../src/engine/backend-reference.js';
import { toStrataContent } from '../../src/export/strata-model.js';
import { quantizedLayers, switchableNorms } from '../../src/quant/quantize-model.js';
import { assertLogitsClose, calibratedModel, strataLogits } from '../export/fixtures.js';

const fixture = calibratedModel('small-cnn', { inChannels: 1, size: 12, width: 4 });
const input = { data: fixture.input.data, shape: fixture.shape };

test('onnxruntime-node loads its bundled CPU binary from node_modules/onnxruntime-node/bin', async (t) => {
  if (process.platform !== 'linux') return t.skip('reads /proc/self/maps');
  const session = await StrataSession.create(fixture.model, { bits: 4, engine: 'onnxruntime', threads: 1 });
  await session.dispose();
  const maps = await readFile('/proc/self/maps', 'utf8');
  const binding = `onnxruntime-node/bin/napi-v6/linux/${process.arch}/onnxruntime_binding.node`;
  assert.ok(maps.includes(binding), `${binding} is not mapped into the process`);
  assert.ok(maps.includes(`onnxruntime-node/bin/napi-v6/linux/${process.arch}/libonnxruntime.so.1`));
});

test('both engines agree with Strata at a precision and in full precision; outputs are consistent', async () => {
  for (const bits of [3, null]) {
    const ref = strataLogits(fixture.model, fixture.input, bits);
    for (const engine of ['onnxruntime', 'native'] as const) {
      const session = await StrataSession.create(fixture.model, { bits, engine, threads: 1 });
      assert.equal(session.engine, engine);
      assert.equal(session.bits, bits);
      const p = await session.predict(input);
      assert.equal(p.batch, 16);
      assert.equal(p.numClasses, 10);
      assertLogitsClose(p.logits, ref, 10, bits !== null, `${engine} at ${bits}`);
      if (engine === 'native' && bits === null) assert.deepEqual(p.logits, ref);
      if (engine === 'native' && bits !== null) {
        // Integer kernels: exact integer accumulation, float epilogue in another order than Strata's.
        assert.equal(session.arithmetic, 'native-int8');
        const maxAbs = Math.max(...Array.from(ref, Math.abs));
        p.logits.forEach((v, i) =>
          assert.ok(Math.abs(v - ref[i]) <= 1e-5 * maxAbs, `logit ${i}: ${v} vs ${ref[i]}`),
        );
      }
      for (let n = 0; n < 16; n++) {
        const row = p.logits.subarray(n * 10, n * 10 + 10);
        const probs = p.probabilities.subarray(n * 10, n * 10 + 10);
        assert.equal(p.classes[n], row.indexOf(Math.max(...row)));
        assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
        assert.equal(probs.indexOf(Math.max(...probs)), p.classes[n]);
        // softmax ratios are exp of logit differences
        assert.ok(Math.abs(Math.log(probs[0] / probs[1]) - (row[0] - row[1])) < 1e-4);
      }
      await session.dispose();
    }
  }
});

test('the default engine: native int8 for a Module or .strata file when the addon is loaded, onnxruntime with a note when not', async (t) => {
  // Its own model: packing derives every precision 2..8, which the error tests below rely on not having.
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 12, width: 4, seed: 5 });
  const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
  const onnx = exportOnnx(f.model, { bits: 4 });
  const saved = getBackend();
  try {
    if (saved.name === 'native') {
      for (const source of [f.model, strata]) {
        const session = await StrataSession.create(source, { bits: 4 });
        assert.equal(session.engine, 'native');
        assert.equal(session.arithmetic, 'native-int8');
        assert.equal(session.engineNote, null);
        await session.dispose();
      }
    } else t.diagnostic('the native addon is not loaded: only the fallback is checked');
    // An .onnx file runs through onnxruntime, the one engine that runs it, without a note.
    const viaOnnx = await StrataSession.create(onnx, { threads: 1 });
    assert.equal(viaOnnx.engine, 'onnxruntime');
    assert.equal(viaOnnx.engineNote, null);
    await viaOnnx.dispose();
    // Without the native backend the default is onnxruntime, and the session says why.
    setBackend(referenceBackend);
    const fallback = await StrataSession.create(strata, { bits: 4, threads: 1 });
    assert.equal(fallback.engine, 'onnxruntime');
    assert.equal(fallback.arithmetic, 'onnxruntime-integer');
    assert.match(
      fallback.engineNote ?? '',
      /^the native addon is not loaded \(.+\), so this runs through onnxruntime instead of Strata's oneDNN int8 engine/,
    );
    assertLogitsClose(
      (await fallback.predict({ data: f.input.data, shape: f.shape })).logits,
      strataLogits(f.model, f.input, 4),
      10,
      true,
      'fallback',
    );
    await fallback.dispose();
    // Asked for by name, an engine is used as asked, without a note.
    const named = await StrataSession.create(strata, { bits: 4, engine: 'native' });
    assert.equal(named.arithmetic, 'reference-int8');
    assert.equal(named.engineNote, null);
    await named.dispose();
  } finally {
    setBackend(saved);
  }
});

test('the native engine leaves the model precision and train mode as it found them', async () => {
  const model = fixture.model;
  strataLogits(model, fixture.input, 6);
  model.train();
  const session = await StrataSession.create(model, { bits: 2, engine: 'native', float: true });
  assert.equal(session.arithmetic, 'float');
  const p = await session.predict(input);
  assert.ok(quantizedLayers(model).every(([, l]) => l.bits === 6));
  assert.ok(switchableNorms(model).every(([, bn]) => bn.bits === 6));
  assert.ok(model.training);
  model.eval();
  assert.deepEqual(p.logits, strataLogits(model, fixture.input, 2));
});

test('.onnx sources: bytes and file path, precision read from the file, fixed input size known', async () => {
  const bytes = exportOnnx(fixture.model, { bits: 4, inputSize: 12 });
  const dir = await mkdtemp(join(tmpdir(), 'strata-session-'));
  try {
    const path = join(dir, 'model.onnx');
    await writeFile(path, bytes);
    const fromPath = await StrataSession.create(path, { threads: 1 });
    const fromBytes = await StrataSession.create(bytes, { bits: 4, threads: 1 });
    assert.equal(fromPath.bits, 4);
    assert.deepEqual(fromPath.inputShape, [12, 12, 1]);
    // A bare Float32Array works because the exported input has fixed H, W, C.
    const a = await fromPath.predict(fixture.input.data);
    const b = await fromBytes.predict(input);
    assert.deepEqual(a.logits, b.logits);
    assertLogitsClose(a.logits, strataLogits(fixture.model, fixture.input, 4), 10, true, 'onnx file');
    await fromPath.dispose();
    await fromBytes.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('.strata sources: bytes and path, at a chosen precision or the highest held, both engines', async () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 12, width: 4, seed: 11 });
  const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
  const dir = await mkdtemp(join(tmpdir(), 'strata-session-'));
  try {
    const path = join(dir, 'model.strata');
    await writeFile(path, strata);
    const batch = { data: f.input.data, shape: f.shape };
    for (const bits of [2, 4]) {
      const ref = strataLogits(f.model, f.input, bits);
      const viaOrt = await StrataSession.create(path, { bits, engine: 'onnxruntime', threads: 1 });
      const viaNative = await StrataSession.create(strata, { bits, engine: 'native' });
      assert.equal(viaOrt.bits, bits);
      assertLogitsClose(
        (await viaOrt.predict(batch)).logits,
        ref,
        10,
        true,
        `.strata ${bits}-bit onnxruntime`,
      );
      assertLogitsClose((await viaNative.predict(batch)).logits, ref, 10, true, `.strata ${bits}-bit native`);
      await viaOrt.dispose();
      await viaNative.dispose();
    }
    const highest = await StrataSession.create(strata, { engine: 'native' });
    assert.equal(highest.bits, 8);
    await highest.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await assert.rejects(StrataSession.create(strata, { bits: null }), {
    name: 'RangeError',
    message: 'StrataSession: a .strata file holds quantized precisions only, so bits cannot be null',
  });
  await assert.rejects(StrataSession.create(strata, { bits: 9 }), RangeError);
});

test('errors: options, sources, inputs and disposal', async () => {
  const onnx = exportOnnx(fixture.model, { bits: 4 });
  await assert.rejects(StrataSession.create(fixture.model, { bits: 4, engine: 'gpu' as 'native' }), {
    name: 'TypeError',
    message: "Expected 'auto', 'onnxruntime' or 'native' for engine but received 'gpu' of type string",
  });
  await assert.rejects(StrataSession.create(42 as unknown as Uint8Array, { bits: 4 }), {
    name: 'TypeError',
    message: 'Expected file path, Uint8Array or Module for source but received 42 of type number',
  });
  await assert.rejects(StrataSession.create(fixture.model, {}), {
    name: 'TypeError',
    message: 'Expected integer or null for bits but received undefined',
  });
  await assert.rejects(StrataSession.create(fixture.model, { bits: 5, engine: 'native' }), {
    name: 'RangeError',
    message: 'Expected bits in {8, 6, 4, 3, 2} or null but received 5',
  });
  await assert.rejects(StrataSession.create(onnx, { bits: 4, engine: 'native' }), {
    name: 'TypeError',
    message:
      "StrataSession: engine 'native' runs a Module or a .strata file; an .onnx file runs only through 'onnxruntime'",
  });
  await assert.rejects(StrataSession.create(onnx, { bits: 2 }), {
    name: 'RangeError',
    message: 'StrataSession: the .onnx file was exported at 4 bits but bits 2 was requested',
  });
  await assert.rejects(StrataSession.create(Uint8Array.of(1, 2, 3), {}), /onnxruntime rejected the model/);
  await assert.rejects(StrataSession.create(fixture.model, { bits: 4, threads: 0 }), {
    name: 'RangeError',
    message: 'Expected positive integer for threads but received 0 of type number',
  });
  await assert.rejects(
    StrataSession.create(fixture.model, {
      bits: 4,
      inputShape: [12, 12] as unknown as [number, number, number],
    }),
    {
      name: 'TypeError',
    },
  );

  const session = await StrataSession.create(onnx, { threads: 1 });
  await assert.rejects(session.predict(fixture.input.data), {
    name: 'TypeError',
    message:
      'StrataSession.predict: pass { data, shape } or create the session with inputShape [H, W, C] to use a bare Float32Array',
  });
  await assert.rejects(session.predict({ data: new Float32Array(10), shape: [1, 12, 12, 1] }), {
    name: 'RangeError',
    message: 'Expected 144 values for input shape [1, 12, 12, 1] but received 10',
  });
  await assert.rejects(session.predict({ data: new Float32Array(144), shape: [12, 12, 1] }), {
    name: 'RangeError',
    message: 'Expected input shape [N, H, W, C] of positive integers but received [12, 12, 1]',
  });
  await assert.rejects(session.predict([1, 2] as unknown as Float32Array), { name: 'TypeError' });
  await session.dispose();
  assert.ok(session.disposed);
  await session.dispose();
  await assert.rejects(session.predict(input), { name: 'Error', message: 'Session already disposed.' });

  const shaped = await StrataSession.create(fixture.model, {
    bits: 4,
    engine: 'native',
    inputShape: [12, 12, 1],
  });
  await assert.rejects(shaped.predict(new Float32Array(100)), {
    name: 'RangeError',
    message:
      'StrataSession.predict: expected a multiple of 144 values (images of [12, 12, 1]) but received 100',
  });
  await assert.rejects(shaped.predict({ data: new Float32Array(16 * 16), shape: [1, 16, 16, 1] }), {
    name: 'RangeError',
    message: 'Expected images of [12, 12, 1] (H, W, C) but received [16, 16, 1]',
  });
  const ok = await shaped.predict(fixture.input.data.subarray(0, 144 * 2));
  assert.equal(ok.batch, 2);
  await shaped.dispose();
});

test('load is StrataSession.create under the name the API documents', async () => {
  const { load } = await import('../../src/runtime/session.js');
  // Four bytes are neither a .strata file (no magic) nor a parsable ONNX model.
  await assert.rejects(
    load(new Uint8Array(4), { bits: 4 }),
    /^Error: StrataSession: onnxruntime rejected the model/,
  );
});
