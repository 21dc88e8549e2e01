import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Random } from '../../src/engine/random.js';
import { inspectStrata, writeStrata } from '../../src/format/index.js';
import { toStrataContent } from '../../src/export/strata-model.js';
import { StrataSession } from '../../src/runtime/session.js';
import {
  classLabels,
  imageToInput,
  inputSpecFor,
  softmax,
  toChannels,
  topClasses,
} from '../../src/web/preprocess.js';
import { runProgressive, type OrtLike } from '../../src/web/progressive.js';
import { assertLogitsClose, calibratedModel } from '../export/fixtures.js';

const fixture = calibratedModel('small-cnn', { inChannels: 1, size: 12, width: 4 });
const bytes = writeStrata(toStrataContent(fixture.model, fixture.architecture!, fixture.quant!));
const info = inspectStrata(bytes);
const images = { data: fixture.input.data.slice(0, 2 * 144), shape: [2, 12, 12, 1] as const };
const ortLike = ort as unknown as OrtLike;

/** The file as a web stream of `size`-byte chunks that records whether it was cancelled. */
function chunked(size: number): {
  stream: ReadableStream<Uint8Array>;
  state: { pulled: number; cancelled: boolean };
} {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(state.pulled, state.pulled + size));
      state.pulled += size;
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

test('runProgressive classifies every precision as its bytes complete, like StrataSession on the file', async () => {
  const { stream } = chunked(1000);
  let headerSeen = 0;
  const results = await runProgressive({
    ort: ortLike,
    body: stream,
    images: (header) => {
      headerSeen++;
      assert.deepEqual(header.architecture, fixture.architecture);
      return images;
    },
  });
  assert.equal(headerSeen, 1);
  assert.deepEqual(
    results.map((r) => r.bits),
    info.precisions.map((p) => p.bits),
  );
  for (const r of results) {
    const completeAt = info.precisions.find((p) => p.bits === r.bits)!.completeAt;
    // Chunks of 1000 bytes: the precision is reported with the chunk that completes it.
    assert.equal(r.bytesAtPrecision, Math.min(bytes.length, Math.ceil(completeAt / 1000) * 1000));
    assert.equal(r.totalBytes, bytes.length);
    assert.equal(r.batch, 2);
    assert.equal(r.numClasses, 10);
    assert.ok(r.msToResult >= r.msToPrecision);
    const session = await StrataSession.create(bytes, { bits: r.bits, threads: 1 });
    const want = await session.predict({ data: images.data, shape: images.shape });
    await session.dispose();
    assertLogitsClose(r.logits, want.logits, 10, true, `w${r.bits}`);
  }
  assert.ok(results.at(-1)!.downloadCompleteAtResult);
});

test('untilBits stops reading and cancels the body; select picks the precisions classified', async () => {
  const { stream, state } = chunked(256);
  const results = await runProgressive({
    ort: ortLike,
    body: stream,
    untilBits: 4,
    select: (bits) => bits === 4,
    images: () => images,
  });
  assert.deepEqual(
    results.map((r) => r.bits),
    [4],
  );
  assert.ok(state.cancelled);
  assert.ok(state.pulled < bytes.length, `read ${state.pulled} of ${bytes.length} bytes`);
  assert.ok(results[0].bytesAtPrecision < bytes.length && !results[0].downloadCompleteAtResult);
});

test('a stream that ends before the lowest precision rejects with TRUNCATED', async () => {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes.slice(0, info.precisions[0].completeAt - 1));
      controller.close();
    },
  });
  await assert.rejects(runProgressive({ ort: ortLike, body: stream, images: () => images }), {
    code: 'TRUNCATED',
  });
});

test('preprocess: input spec from metadata or defaults, luma, stretch and crop resizing, top classes', () => {
  const spec = inputSpecFor(
    { name: 'small-cnn', inChannels: 1 },
    { inputSize: [28, 28], normalize: { mean: [0.5], std: [0.25] }, classes: ['a', 'b'] },
  );
  assert.deepEqual(spec, {
    height: 28,
    width: 28,
    channels: 1,
    mean: [0.5],
    std: [0.25],
    normalizeSource: 'metadata',
  });
  const fallback = inputSpecFor({ name: 'resnet20', inChannels: 3 }, { normalize: { mean: [1], std: [1] } });
  assert.equal(fallback.height, 32);
  assert.equal(fallback.normalizeSource, 'default');
  assert.deepEqual(fallback.std, [1, 1, 1]);
  assert.deepEqual(classLabels({ classes: ['x', 'y'] }), ['x', 'y']);
  assert.equal(classLabels({ classes: [1, 2] }), null);

  const grey = toChannels(Uint8Array.of(255, 0, 0, 9, 10, 20, 30, 9), 1, 2, 4, 1);
  assert.deepEqual(Array.from(grey.data), [
    Math.round(0.299 * 255),
    Math.round(0.299 * 10 + 0.587 * 20 + 0.114 * 30),
  ]);
  assert.throws(() => toChannels(new Uint8Array(6), 1, 2, 3, 2), RangeError);

  // Same size: only normalisation.
  const rng = new Random(5);
  const pixels = Uint8Array.from({ length: 28 * 28 }, () => rng.int(256));
  const x = imageToInput({ data: pixels, height: 28, width: 28 }, spec);
  x.forEach((v, i) => assert.ok(Math.abs(v - (pixels[i] / 255 - 0.5) / 0.25) < 1e-5));
  // A uniform image stays uniform through either resize path.
  const flat = { data: new Uint8Array(90 * 60).fill(51), height: 90, width: 60 };
  assert.ok(imageToInput(flat, spec).every((v) => Math.abs(v - (0.2 - 0.5) / 0.25) < 1e-5));
  const big = { ...spec, height: 224, width: 224 };
  const cropped = imageToInput({ data: new Uint8Array(300 * 400).fill(51), height: 300, width: 400 }, big);
  assert.equal(cropped.length, 224 * 224);
  assert.ok(cropped.every((v) => Math.abs(v - (0.2 - 0.5) / 0.25) < 1e-5));

  const probs = softmax(Float32Array.of(1, 3, 2, 3));
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-6);
  assert.deepEqual(
    topClasses(probs, 3, ['a', 'b', 'c', 'd']).map((t) => t.label),
    ['b', 'd', 'c'],
  );
  assert.equal(topClasses(probs, 10).length, 4);
});
