import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectStrata, writeStrata } from '../../src/format/index.js';
import { smallContent } from '../format/helpers.js';
import { strata, tableRows, tempDir } from './helpers.js';

const bytes = writeStrata(smallContent({ topBits: 8, minBits: 2 }));
const dir = tempDir('info');

test('info on a .strata file lists each precision and the byte where it becomes available', async () => {
  const path = join(dir, 'model.strata');
  writeFileSync(path, bytes);
  const r = await strata('info', path);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^\\.strata model file ${path.replace(/\./g, '\\.')} \\(`));
  assert.match(r.stdout, /^quantization: codes 8-bit, lowest 2-bit, rule floor$/m);
  const expected = inspectStrata(bytes).precisions;
  const rows = tableRows(r.stdout);
  assert.deepEqual(
    rows.map((row) => [row[0], Number(row[1].replace(/,/g, '')), row[4]]),
    expected.map((p) => [`w${p.bits}a${p.bits}`, p.completeAt, 'yes']),
  );
  assert.equal(rows[rows.length - 1][3], '100.0');
});

test('info on a prefix of a .strata file says which precisions it holds', async () => {
  const { precisions } = inspectStrata(bytes);
  const cut = precisions[2].completeAt; // holds 2, 3 and 4 bits
  const path = join(dir, 'prefix.strata');
  writeFileSync(path, bytes.subarray(0, cut));
  const r = await strata('info', path);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^truncated: ${cut.toLocaleString('en-US')} of `, 'm'));
  assert.deepEqual(
    tableRows(r.stdout).map((row) => row[4]),
    precisions.map((p) => (p.completeAt <= cut ? 'yes' : 'no')),
  );
});

test('info on a .strata file with a damaged header names the file', async () => {
  const damaged = Uint8Array.from(bytes);
  damaged[9] = 99; // format major version
  const path = join(dir, 'damaged.strata');
  writeFileSync(path, damaged);
  const r = await strata('info', path);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.startsWith(`error: ${path}: `), r.stderr);
});
