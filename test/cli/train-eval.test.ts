import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResults } from '../../src/cli/results.js';
import { TINY, strata, tableRows, tempDir } from './helpers.js';

const dir = tempDir('train');
const onceRun = join(dir, 'once');
const qatRun = join(dir, 'qat8');

function assertPercent(text: string): void {
  const v = Number(text);
  assert.ok(Number.isFinite(v) && v >= 0 && v <= 100, `${text} is not a percentage`);
}

test('train prints one row per precision, the split, the recipe and where its files went', async () => {
  const r = await strata('train', ...TINY, '--mode', 'once', '--bits', '8,4,2', '--out', onceRun);
  assert.equal(r.code, 0, r.stderr);
  const rows = tableRows(r.stdout);
  assert.deepEqual(
    rows.map((row) => row[0]),
    ['w8a8', 'w4a4', 'w2a2'],
  );
  assert.match(r.stdout, /^bits +top-1 % +top-5 % +loss +bytes$/m);
  for (const row of rows) {
    assertPercent(row[1]);
    assertPercent(row[2]);
    assert.match(row[4], /^\d+(\.\d)? KiB$/);
  }
  // Fewer bits, fewer bytes.
  const bytes = rows.map((row) => Number.parseFloat(row[4]));
  assert.ok(bytes[0] > bytes[1] && bytes[1] > bytes[2], `bytes ${bytes.join(' > ')}`);
  assert.match(r.stdout, /^validation split: test \(10,000\) \(limited to 256\)$/m);
  assert.match(
    r.stdout,
    /^recipe: once QAT over 8,4,2, small-cnn on mnist; rule floor, first\/last fixed 8-bit/m,
  );
  assert.ok(r.stdout.includes(`checkpoint: ${join(onceRun, 'checkpoint.ckpt')}`));
  assert.ok(r.stdout.includes(`metrics: ${join(onceRun, 'metrics.jsonl')}`));
  for (const file of ['checkpoint.ckpt', 'metrics.jsonl', 'curves.svg', 'loss.svg']) {
    assert.ok(existsSync(join(onceRun, file)), `${file} missing`);
  }
  const results = JSON.parse(readFileSync(join(onceRun, 'results.json'), 'utf8')) as RunResults;
  assert.equal(results.split, 'test (10,000) (limited to 256)');
  assert.match(results.command, /^strata train --model small-cnn .* --mode once --bits 8,4,2 --out /);
  assert.deepEqual(
    results.rows.map((row) => [row.method, row.bits, row.epochs]),
    [
      ['once', 8, 1],
      ['once', 4, 1],
      ['once', 2, 1],
    ],
  );
  assert.equal(results.rows[0].top1.toFixed(2), rows[0][1]);
});

test('info describes the checkpoint written by train', async () => {
  const r = await strata('info', join(onceRun, 'checkpoint.ckpt'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^architecture: small-cnn, 10 classes, 1 input channel$/m);
  assert.match(r.stdout, /^mode: once QAT over 8,4,2$/m);
  assert.match(r.stdout, /^quantization: precisions 8,4,2; codes 8-bit, lowest 2; rule floor/m);
  assert.match(r.stdout, /^progress: 1 of 1 epochs done \(finished\)/m);
  assert.match(r.stdout, /^parameters: 24,058 in the network; /m);
  assert.deepEqual(
    tableRows(r.stdout).map((row) => [row[0], row[3]]),
    [
      ['w8a8', '1'],
      ['w4a4', '1'],
      ['w2a2', '1'],
    ],
  );
});

test('eval --bits all on a dedicated 8-bit checkpoint derives 7..2 (the adapted baseline)', async () => {
  const trained = await strata('train', ...TINY, '--mode', 'qat', '--bits', '8', '--out', qatRun);
  assert.equal(trained.code, 0, trained.stderr);
  const svg = join(dir, 'adapted.svg');
  const resultsFile = join(qatRun, 'adapted.json');
  const r = await strata(
    'eval',
    join(qatRun, 'checkpoint.ckpt'),
    '--bits',
    'all',
    '--chart',
    svg,
    '--results',
    resultsFile,
  );
  assert.equal(r.code, 0, r.stderr);
  const rows = tableRows(r.stdout);
  assert.deepEqual(
    rows.map((row) => row[0]),
    ['w8a8', 'w7a7', 'w6a6', 'w5a5', 'w4a4', 'w3a3', 'w2a2'],
  );
  assert.deepEqual(
    rows.map((row) => row[row.length - 1]),
    ['trained', 'adapted', 'adapted', 'adapted', 'adapted', 'adapted', 'adapted'],
  );
  for (const row of rows) assertPercent(row[1]);
  // The trained precision evaluates as train reported it.
  assert.equal(rows[0][1], tableRows(trained.stdout)[0][1]);
  assert.match(readFileSync(svg, 'utf8'), /^<svg [^>]*>/);
  const saved = JSON.parse(readFileSync(resultsFile, 'utf8')) as RunResults;
  assert.deepEqual(
    saved.rows.map((row) => [row.method, row.bits]),
    [['qat', 8], ...[7, 6, 5, 4, 3, 2].map((b) => ['adapted', b])],
  );
});

test('eval --reestimate-bn gives derived precisions their own batch-norm statistics', async () => {
  const r = await strata(
    'eval',
    join(qatRun, 'checkpoint.ckpt'),
    '--bits',
    '8,4',
    '--adapted',
    '--reestimate-bn',
    '--bn-batches',
    '3',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    tableRows(r.stdout).map((row) => [row[0], row[row.length - 1]]),
    [
      ['w8a8', 'trained'],
      ['w4a4', 'adapted+bn (3 batches)'],
    ],
  );
});

test('eval refuses precisions the checkpoint cannot give, saying why', async () => {
  const ckpt = join(qatRun, 'checkpoint.ckpt');
  const untrained = await strata('eval', ckpt, '--bits', '4');
  assert.equal(untrained.code, 1);
  assert.equal(
    untrained.stderr,
    `error: checkpoint ${ckpt} was trained at 8 bits, not at 4; pass --adapted to derive them from the cascade\n`,
  );
  const outside = await strata('eval', ckpt, '--bits', '9', '--adapted');
  assert.equal(
    outside.stderr,
    `error: Expected bits in [2, 8] (the range of checkpoint ${ckpt}) but received 9\n`,
  );
});

test('chart draws once QAT, dedicated QAT and the adapted baseline from results files', async () => {
  const out = join(dir, 'compare.svg');
  const r = await strata('chart', '--runs', onceRun, qatRun, join(qatRun, 'adapted.json'), '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const svg = readFileSync(out, 'utf8');
  for (const name of ['once QAT', 'dedicated QAT', 'adapted'])
    assert.ok(svg.includes(name), `chart lacks ${name}`);
  const rows = tableRows(r.stdout);
  assert.deepEqual(
    rows.map((row) => row[0]),
    ['once QAT', 'dedicated QAT', 'adapted'],
  );
});

test('a corrupt checkpoint is refused with a message naming the file', async () => {
  const corrupt = join(dir, 'corrupt.ckpt');
  copyFileSync(join(onceRun, 'checkpoint.ckpt'), corrupt);
  const bytes = readFileSync(corrupt);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(corrupt, bytes);
  for (const command of ['eval', 'info']) {
    const r = await strata(command, corrupt);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^error: checkpoint ${corrupt.replace(/[.]/g, '\\.')}: corrupt or truncated: checksum [0-9a-f]+ does not match the stored [0-9a-f]+\\n$`,
      ),
    );
  }
  const truncated = join(dir, 'truncated.ckpt');
  writeFileSync(truncated, bytes.subarray(0, 10));
  const r = await strata('eval', truncated);
  assert.equal(
    r.stderr,
    `error: checkpoint ${truncated}: truncated (10 bytes; a checkpoint has at least 16)\n`,
  );
});
