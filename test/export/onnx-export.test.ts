import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { exportOnnx, ONNX_METADATA } from '../../src/export/onnx-export.js';
import { readOnnxGraph, readOnnxMetadata } from '../../src/export/onnx-proto.js';
import { Conv2d } from '../../src/nn/conv.js';
import { BatchNorm2d } from '../../src/nn/batch-norm.js';
import { AvgPool2d, Flatten, GlobalAvgPool, MaxPool2d, ReLU, Sequential } from '../../src/nn/layers.js';
import { Linear } from '../../src/nn/linear.js';
import { Random } from '../../src/engine/random.js';
import { Module } from '../../src/nn/module.js';
import { createModel } from '../../src/nn/models/index.js';
import { readStrata, writeStrata } from '../../src/format/index.js';
import { modelFromStrata, toStrataContent } from '../../src/export/strata-model.js';
import { quantizeModel } from '../../src/quant/quantize-model.js';
import { Tensor } from '../../src/engine/tensor.js';
import {
  assertLogitsClose,
  assertNotDegenerate,
  calibratedModel,
  nhwcToNchw,
  PRECISIONS,
  strataLogits,
  type Fixture,
} from './fixtures.js';

async function runOrt(bytes: Uint8Array, f: Fixture): Promise<Float32Array> {
  const [n, h, w, c] = f.shape;
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const out = await session.run({
      input: new ort.Tensor('float32', nhwcToNchw(f.input.data, f.shape), [n, c, h, w]),
    });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

async function checkParity(f: Fixture, bits: number | null, float: boolean, label: string): Promise<void> {
  const ref = strataLogits(f.model, f.input, bits);
  assertNotDegenerate(ref, 10, label);
  const got = await runOrt(exportOnnx(f.model, { bits, float }), f);
  assertLogitsClose(got, ref, 10, bits !== null, label);
}

test('small-cnn: onnxruntime matches Strata at full precision and at every precision, integer and float graphs', async () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 28 });
  await checkParity(f, null, true, 'small-cnn float');
  for (const bits of PRECISIONS) {
    await checkParity(f, bits, false, `small-cnn ${bits}-bit integer`);
    await checkParity(f, bits, true, `small-cnn ${bits}-bit float`);
  }
});

test('resnet20 (projection shortcuts): onnxruntime matches Strata at full precision and every precision', async () => {
  const f = calibratedModel('resnet20', { inChannels: 3, size: 8 });
  await checkParity(f, null, false, 'resnet20 float');
  for (const bits of PRECISIONS) await checkParity(f, bits, false, `resnet20 ${bits}-bit integer`);
  await checkParity(f, 3, true, 'resnet20 3-bit float');
});

test('mobilenetv2 (depthwise, ReLU6, inverted residuals): onnxruntime matches Strata', async () => {
  const f = calibratedModel('mobilenetv2', { inChannels: 3, size: 16, width: 0.25 });
  await checkParity(f, null, false, 'mobilenetv2 float');
  await checkParity(f, 4, false, 'mobilenetv2 4-bit integer');
});

test('weights at 4 bits and below: INT4 at opset 21, int8 at opset 13, the same graph output', async () => {
  const f = calibratedModel('resnet20', { inChannels: 3, size: 8 });
  const at21 = exportOnnx(f.model, { bits: 3, opset: 21 });
  const at13 = exportOnnx(f.model, { bits: 3, opset: 13 });
  assert.ok(at13.length > at21.length, `opset 13 ${at13.length} bytes, opset 21 ${at21.length} bytes`);
  const a = await runOrt(at21, f);
  const b = await runOrt(at13, f);
  assert.deepEqual(b, a);
  assertLogitsClose(a, strataLogits(f.model, f.input, 3), 10, true, 'opset 21');
});

test('metadata records precision, graph style and layout', () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 8, width: 4 });
  const integer = readOnnxMetadata(exportOnnx(f.model, { bits: 3 }));
  assert.equal(integer.get(ONNX_METADATA.bits), '3');
  assert.equal(integer.get(ONNX_METADATA.mode), 'integer');
  assert.equal(integer.get(ONNX_METADATA.layout), 'NCHW');
  assert.equal(integer.get(ONNX_METADATA.classes), '10');
  const fp = readOnnxMetadata(exportOnnx(f.model, { bits: null }));
  assert.equal(fp.get(ONNX_METADATA.bits), 'float');
  assert.equal(fp.get(ONNX_METADATA.mode), 'float');
  assert.equal(readOnnxMetadata(Uint8Array.of(0xff, 0xff)).size, 0);
});

test('fixed batch and input size are written into the graph input', async () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 8, width: 4 });
  const session = await ort.InferenceSession.create(
    exportOnnx(f.model, { bits: 4, batch: 16, inputSize: 8 }),
  );
  const meta = session.inputMetadata[0];
  assert.ok(meta.isTensor);
  assert.deepEqual(meta.shape, [16, 1, 8, 8]);
  await session.release();
  const dynamic = await ort.InferenceSession.create(exportOnnx(f.model, { bits: 4 }));
  const dmeta = dynamic.inputMetadata[0];
  assert.ok(dmeta.isTensor);
  assert.deepEqual(dmeta.shape, ['batch', 1, 'height', 'width']);
  await dynamic.release();
});

class Mystery extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

test('errors: unknown modules name their path; bits, opset and options are checked', () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 8, width: 4 });
  const plain = new Sequential(new Conv2d(1, 4, 3), new Sequential(new Mystery()), new GlobalAvgPool());
  assert.throws(
    () => exportOnnx(plain, { bits: null }),
    (e: Error) =>
      e instanceof TypeError &&
      e.message.startsWith("exportOnnx: cannot export module '1.0' of type Mystery"),
  );
  assert.throws(() => exportOnnx(f.model, { bits: 5 }), {
    name: 'RangeError',
    message: 'Expected bits in {8, 6, 4, 3, 2} or null but received 5',
  });
  assert.throws(() => exportOnnx(f.model, { bits: 2.5 }), {
    name: 'TypeError',
    message: 'Expected integer or null for bits but received 2.5 of type number',
  });
  assert.throws(() => exportOnnx(plain, { bits: 4 }), {
    name: 'RangeError',
    message: 'exportOnnx: the model is not quantized, so bits must be null but received 4',
  });
  assert.throws(() => exportOnnx(f.model, { bits: 4, opset: 12 }), {
    name: 'RangeError',
    message: 'Expected opset in [13, 21] but received 12',
  });
  assert.throws(() => exportOnnx(f.model, { bits: 4, batch: 0 }), {
    name: 'RangeError',
    message: 'Expected positive integer for batch but received 0',
  });
  assert.throws(() => exportOnnx({} as Module, { bits: null }), {
    name: 'TypeError',
    message: 'Expected Module for model but received a value of type Object',
  });
  const fresh = createModel({ name: 'small-cnn', numClasses: 10, inChannels: 1, width: 4 });
  quantizeModel(fresh, { precisions: PRECISIONS });
  assert.throws(() => exportOnnx(fresh, { bits: 4 }), {
    name: 'Error',
    message:
      "intPlan: layer 'features.3' has no calibrated 4-bit activation scale; run the model on data at 4 bits first",
  });
});

test('Sequential with padded AvgPool2d, MaxPool2d and a spatial Flatten (channels-last order) into Linear', async () => {
  const rng = new Random(3);
  const model = new Sequential(
    new Conv2d(3, 8, 3, { padding: 1 }),
    new BatchNorm2d(8, { relu: true }),
    new AvgPool2d({ kernel: 3, stride: 2, padding: 1 }),
    new Conv2d(8, 6, 3, { padding: 1, bias: true }),
    new ReLU(),
    new MaxPool2d({ kernel: 3, stride: 2, padding: 1 }),
    new Flatten(),
    new Linear(6 * 3 * 3, 10),
  );
  const bn = model.at(1) as BatchNorm2d;
  for (let c = 0; c < 8; c++) {
    bn.runningMean.data[c] = 0.3 * rng.normal();
    bn.runningVar.data[c] = 0.5 + rng.next();
    bn.bias.data[c] = 0.3 * rng.normal();
  }
  const input = Tensor.randn([16, 10, 10, 3], rng);
  const f: Fixture = { model, shape: [16, 10, 10, 3], input };
  model.eval();
  await checkParity(f, null, false, 'plain float');
  quantizeModel(model, { precisions: PRECISIONS });
  model.eval(); // the wrappers quantizeModel adds start in training mode
  strataLogits(model, Tensor.randn([16, 10, 10, 3], rng), 8);
  for (const bits of [8, 2]) await checkParity(f, bits, false, `plain ${bits}-bit integer`);
});

test("a model rebuilt from a .strata file exports the file's integer codes for every quantized layer", async () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 10, width: 4, seed: 5 });
  const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
  for (const bits of [8, 3]) {
    const { model } = modelFromStrata(readStrata(strata, { bits }));
    const bytes = exportOnnx(model, { bits });
    // Every layer whose input Strata quantizes (all but the first convolution) holds integer codes:
    // int8 at 8 bits, INT4 at 3 bits.
    const codes = readOnnxGraph(bytes).initializers.filter((t) => /\.weight_(codes|int4)$/.test(t.name));
    assert.equal(codes.length, 3, `bits ${bits}: ${codes.map((t) => t.name).join(', ')}`);
    assertLogitsClose(
      await runOrt(bytes, f),
      strataLogits(f.model, f.input, bits),
      10,
      true,
      `rebuilt ${bits}`,
    );
  }
});
