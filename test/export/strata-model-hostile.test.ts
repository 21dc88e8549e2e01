/**
 * Model files whose header passes every format check but describes a network the file cannot hold:
 * each must be refused by name, before the network is allocated, in bounded time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInputError, setLimits } from '../../src/engine/limits.js';
import { modelFromStrata } from '../../src/export/strata-model.js';
import { readStrata } from '../../src/format/index.js';
import { StrataSession } from '../../src/runtime/session.js';
import { inputSpecFor } from '../../src/web/preprocess.js';
import { withHeader } from '../format/helpers.js';
import { tinyModels } from '../fuzz/corpus.js';

const [tiny] = tinyModels();

function edited(mutate: (arch: Record<string, unknown>, q: Record<string, unknown>) => void): Uint8Array {
  return withHeader(tiny.strata, (h) =>
    mutate(h.architecture as Record<string, unknown>, h.quantization as Record<string, unknown>),
  );
}

function refusedQuickly(bytes: Uint8Array, message: RegExp): void {
  const started = performance.now();
  assert.throws(
    () => modelFromStrata(readStrata(bytes), 'm.strata'),
    (e: unknown) => {
      assert.ok(e instanceof InvalidInputError, `expected InvalidInputError, got ${String(e)}`);
      assert.match(e.message, message);
      return true;
    },
  );
  const ms = performance.now() - started;
  assert.ok(ms < 1000, `refusal took ${ms} ms`);
}

test('a class count past the limit is refused before the classifier is allocated (1e6 took 14 s and 650 MB, 1e7 ran out)', () => {
  for (const numClasses of [1e6, 1e7, 2 ** 40]) {
    refusedQuickly(
      edited((a) => (a.numClasses = numClasses)),
      new RegExp(
        `^m\\.strata: architecture\\.numClasses ${numClasses} exceeds the limit of 100000 \\(maxClasses\\); raise it with STRATA_MAX_CLASSES$`,
      ),
    );
  }
});

test("a class count within the limit must still match the file's classifier, compared before building", () => {
  refusedQuickly(
    edited((a) => (a.numClasses = 90000)),
    /^m\.strata: tensor 'fc\.weight' shape \[3, 8\] does not match architecture \{"name":"small-cnn","numClasses":90000,"inChannels":1,"width":2\}, which needs \[90000, 8\]$/,
  );
  refusedQuickly(
    edited((a) => (a.width = 4000)),
    /tensor 'fc\.weight' shape \[3, 8\] does not match .* which needs \[3, 16000\]/,
  );
  // Raising the limit lets a larger class count through to the same table comparison.
  const previous = setLimits({ maxClasses: 2e6 });
  try {
    refusedQuickly(
      edited((a) => (a.numClasses = 1e6)),
      /which needs \[1000000, 8\]/,
    );
  } finally {
    setLimits(null);
    setLimits(previous);
  }
});

test('architecture and quantization fields of the wrong kind are named, not TypeErrors', () => {
  refusedQuickly(
    edited((a) => (a.name = 'vgg')),
    /^m\.strata: architecture\.name 'vgg' is not one of resnet20, .*small-cnn, imported$/,
  );
  refusedQuickly(
    edited((a) => (a.inChannels = 1e9)),
    /architecture\.inChannels 1000000000 exceeds the limit of 64 \(maxInputChannels\)/,
  );
  refusedQuickly(
    edited((a) => (a.numClasses = '3')),
    /architecture\.numClasses '3' is not an integer in \[1, 100000\]/,
  );
  refusedQuickly(
    edited((_, q) => (q.fixedBits = 99)),
    /^m\.strata: quantization\.fixedBits 99 is not an integer in \[2, 16\]$/,
  );
  refusedQuickly(
    edited((_, q) => (q.firstLast = null)),
    /quantization\.firstLast null is not one of fixed, layered, float/,
  );
});

test('session creation from a file path names the file in the refusal', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'strata-hostile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'big.strata');
  writeFileSync(
    path,
    edited((a) => (a.numClasses = 1e7)),
  );
  await assert.rejects(StrataSession.create(path, { engine: 'native' }), (e: unknown) => {
    assert.ok(e instanceof InvalidInputError);
    assert.equal(e.source, path);
    assert.equal(e.field, 'architecture.numClasses');
    assert.equal(e.value, '10000000');
    return true;
  });
  writeFileSync(path, tiny.strata.subarray(0, 30));
  await assert.rejects(
    StrataSession.create(path),
    new RegExp(`^StrataFormatError: ${path.replace(/[/.]/g, '\\$&')}: `),
  );
});

test('metadata.inputSize is bounded before preprocessing allocates it', () => {
  const arch = { name: 'small-cnn', inChannels: 1 };
  assert.throws(() => inputSpecFor(arch, { inputSize: 1e6 }, 'm.strata'), {
    name: 'InvalidInputError',
    message:
      'm.strata: metadata.inputSize 1000000 exceeds the limit of 4096 (maxInputSide); raise it with STRATA_MAX_INPUT_SIDE',
  });
  assert.throws(
    () => inputSpecFor(arch, { inputSize: [8, 2 ** 40] }, 'm.strata'),
    /metadata\.inputSize\[1\] 1099511627776 exceeds/,
  );
  const previous = setLimits({ maxPixels: 100 });
  try {
    // Within the side limit, still held to the pixel limit.
    assert.throws(
      () => inputSpecFor(arch, { inputSize: [20, 20] }, 'm.strata'),
      /^InvalidInputError: m\.strata: metadata\.inputSize \(pixels\) 400 exceeds the limit of 100 \(maxPixels\)/,
    );
  } finally {
    setLimits(null);
    setLimits(previous);
  }
  assert.throws(
    () => inputSpecFor(arch, { inputSize: -3 }, 'm.strata'),
    /metadata\.inputSize -3 is not an integer in \[1, 4096\]/,
  );
  assert.deepEqual(inputSpecFor(arch, { inputSize: [8, 9] }, 'm.strata').height, 8);
});

test('a refused model file leaves an existing export untouched and no temporary file behind', async (t) => {
  const { mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { strata } = await import('../cli/helpers.js');
  const dir = mkdtempSync(join(tmpdir(), 'strata-hostile-export-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const model = join(dir, 'bad.strata');
  const output = join(dir, 'out.onnx');
  writeFileSync(
    model,
    edited((a) => (a.numClasses = 90000)),
  );
  writeFileSync(output, 'previous export');
  const r = await strata('export', model, '-o', output);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.strata: tensor 'fc\.weight' shape \[3, 8\] does not match/);
  assert.equal(readFileSync(output, 'utf8'), 'previous export');
  assert.deepEqual(readdirSync(dir).sort(), ['bad.strata', 'out.onnx']);
});

test('what the integer plan refuses in a file (a 16-bit fixed layer, missing step sizes) names the file', async () => {
  // Found by the fuzzer after the integer engine landed: a RangeError from intPlan, not a named error.
  const sixteen = edited((_, q) => (q.fixedBits = 16));
  for (const engine of ['native', 'onnxruntime'] as const) {
    await assert.rejects(
      StrataSession.create(sixteen, { engine }),
      (e: unknown) => e instanceof InvalidInputError && /^\.strata bytes: model /.test(e.message),
    );
  }
});
