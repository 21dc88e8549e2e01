import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectStrata } from '../../src/format/index.js';
import type { PrecisionInfo } from '../../src/cli/commands/pack.js';
import { repoRoot, strata, tableRows, tempDir } from './helpers.js';

const dir = tempDir('pack-calibrate');
// A small-cnn (width 8) trained at full precision on 8,192 MNIST images for two epochs.
const SMALL = ['--dataset', 'mnist', '--batch-size', '64', '--val-limit', '256'];
const fpRun = await strata(
  'train',
  ...SMALL,
  '--model',
  'small-cnn',
  '--set',
  'width=8',
  '--mode',
  'fp',
  '--train-limit',
  '8192',
  '--epochs',
  '2',
  '--lr',
  '0.1',
  '--out',
  join(dir, 'fp'),
);
assert.equal(fpRun.code, 0, fpRun.stderr);
const fp = join(dir, 'fp', 'checkpoint.ckpt');

function precisionInfo(path: string): PrecisionInfo[] {
  return inspectStrata(new Uint8Array(readFileSync(path))).metadata!.precisionInfo as PrecisionInfo[];
}

/**
 * The file's accuracy must not fall as bytes are added: each precision at least the next lower
 * one's, within 1.0 point (1,000 validation images: one point is ten images, about the sampling
 * noise between two neighbouring precisions that are equally good).
 */
const TOLERANCE = 1.0;
function assertMonotone(info: PrecisionInfo[]): void {
  for (let i = 1; i < info.length; i++) {
    const [lower, higher] = [info[i - 1], info[i]];
    assert.ok(
      higher.top1! >= lower.top1! - TOLERANCE,
      `${higher.bits} bits ${higher.top1}% is below ${lower.bits} bits ${lower.top1}% by more than ${TOLERANCE} ` +
        `(${info.map((p) => `${p.bits}: ${p.top1} ${p.source}`).join(', ')})`,
    );
  }
}

test('pack --ptq layers a full-precision checkpoint: every precision calibrated, measured, monotone in bits', async () => {
  const out = join(dir, 'ptq.strata');
  const r = await strata(
    'pack',
    fp,
    '--ptq',
    '--validate',
    '--val-limit',
    '1000',
    '--bn-batches',
    '8',
    '-o',
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  const info = precisionInfo(out);
  assert.deepEqual(
    info.map((p) => [p.bits, p.source, p.samples, p.split]),
    [2, 3, 4, 5, 6, 7, 8].map((b) => [b, 'calibrated', 1000, 'test (10,000) (limited to 1000)']),
  );
  assert.ok(info[info.length - 1].top1! > 80, `8-bit PTQ top-1 ${info[info.length - 1].top1}`);
  assertMonotone(info);
  // strata eval on the same file measures exactly what pack recorded.
  const e = await strata('eval', out, '--val-limit', '1000');
  assert.equal(e.code, 0, e.stderr);
  const rows = tableRows(e.stdout);
  assert.equal(rows.length, 7);
  for (const row of rows) {
    const bits = Number(row[0].slice(1, row[0].indexOf('a')));
    const recorded = info.find((p) => p.bits === bits)!;
    assert.equal(row[1], recorded.top1!.toFixed(2), `${bits} bits`);
    assert.equal(row[5], `recorded: calibrated, ${recorded.top1!.toFixed(2)}%`);
  }
  const shown = await strata('info', out);
  assert.match(shown.stdout, /w8a8 .* yes; calibrated, \d+\.\d\d%/);
  assert.match(shown.stdout, /top-1 measured on: test \(10,000\) \(limited to 1000\) \(1000 images\)/);
});

test('pack of a once-QAT checkpoint: trained precisions kept, the others calibrated, accuracy monotone in bits', async () => {
  const once = join(dir, 'once');
  const t = await strata(
    'train',
    ...SMALL,
    '--model',
    'small-cnn',
    '--set',
    'width=8',
    '--mode',
    'once',
    '--bits',
    '8,4,2',
    '--init',
    fp,
    '--train-limit',
    '4096',
    '--epochs',
    '2',
    '--lr',
    '0.01',
    '--out',
    once,
  );
  assert.equal(t.code, 0, t.stderr);
  const out = join(dir, 'once.strata');
  const r = await strata(
    'pack',
    join(once, 'checkpoint.ckpt'),
    '--validate',
    '--val-limit',
    '1000',
    '-o',
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  const info = precisionInfo(out);
  assert.deepEqual(
    info.map((p) => p.source),
    ['trained', 'calibrated', 'trained', 'calibrated', 'calibrated', 'calibrated', 'trained'],
  );
  assertMonotone(info);
  // Without data to calibrate on, untrained precisions are refused by name unless flagged.
  const refused = await strata(
    'pack',
    join(once, 'checkpoint.ckpt'),
    '--calibrate',
    join(dir, 'missing'),
    '-o',
    join(dir, 'x.strata'),
  );
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /precisions 3, 5, 6, 7 were not trained and must be calibrated/);
  const flagged = await strata(
    'pack',
    join(once, 'checkpoint.ckpt'),
    '--allow-uncalibrated',
    '-o',
    join(dir, 'flagged.strata'),
  );
  assert.equal(flagged.code, 0, flagged.stderr);
  assert.deepEqual(
    precisionInfo(join(dir, 'flagged.strata')).map((p) => p.source),
    ['trained', 'uncalibrated', 'trained', 'uncalibrated', 'uncalibrated', 'uncalibrated', 'trained'],
  );
});

test('an imported PyTorch model evaluates, trains with once QAT from --init, packs, evaluates and exports', async () => {
  // test/fixtures/onnx/mnist-cnn.onnx: conv-BN-ReLU stages trained briefly in PyTorch, with its class
  // names, preprocessing and dataset in metadata_props (scripts/onnx-fixtures/make-fixtures.py).
  const ckpt = join(dir, 'mnist-cnn.ckpt');
  const imp = await strata(
    'import',
    join(repoRoot, 'test', 'fixtures', 'onnx', 'mnist-cnn.onnx'),
    '-o',
    ckpt,
  );
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout, /dataset mnist, mean \[0\.1307\], std \[0\.3081\]/);
  assert.match(imp.stdout, /onnxruntime check \(random batch of 2\): largest logit difference/);
  const shown = await strata('info', ckpt);
  assert.match(shown.stdout, /architecture: imported \(11 ops\), 10 classes, 1 input channel/);
  assert.match(shown.stdout, /imported from: mnist-cnn\.onnx \(ONNX opset 14, pytorch 1\.13\.0\)/);
  const before = tableRows((await strata('eval', ckpt, '--val-limit', '500')).stdout);
  assert.equal(before[0][0], 'fp');
  assert.ok(Number(before[0][1]) > 85, `imported top-1 ${before[0][1]}`);
  const run = join(dir, 'imported-once');
  const t = await strata(
    'train',
    ...SMALL,
    '--train-limit',
    '1024',
    '--mode',
    'once',
    '--bits',
    '8,4,2',
    '--init',
    ckpt,
    '--lr',
    '0.01',
    '--out',
    run,
  );
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stderr, /^strata train: once QAT over 8,4,2, imported on mnist/);
  const trained = tableRows(t.stdout);
  assert.equal(trained[0][0], 'w8a8');
  assert.ok(Number(trained[0][1]) > 85, `once QAT of the imported network: 8-bit top-1 ${trained[0][1]}`);
  const packed = join(dir, 'imported.strata');
  const p = await strata('pack', join(run, 'checkpoint.ckpt'), '-o', packed);
  assert.equal(p.code, 0, p.stderr);
  const header = inspectStrata(new Uint8Array(readFileSync(packed)));
  assert.equal(header.architecture.name, 'imported');
  assert.deepEqual(header.metadata!.normalize, { mean: [0.1307], std: [0.3081] });
  const e = await strata('eval', packed, '--bits', '4', '--val-limit', '256');
  assert.equal(e.code, 0, e.stderr);
  const x = await strata(
    'export',
    packed,
    '--bits',
    '4',
    '--format',
    'onnx',
    '-o',
    join(dir, 'imported-4.onnx'),
  );
  assert.equal(x.code, 0, x.stderr);
  // The imported graph has an integer plan: the integer ONNX graph, and predict on the native int8 engine.
  assert.match(x.stdout, /ONNX integer graph at 4 bits/);
  assert.doesNotMatch(x.stderr, /does not cover/);
});
