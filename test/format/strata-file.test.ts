import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectStrata, readStrata, writeStrata } from '../../src/format/index.js';
import { readStrataFile, writeStrataFile } from '../../src/format/strata-file.js';
import { smallContent } from './helpers.js';

test('writeStrataFile writes atomically and readStrataFile reads any precision, also from a truncated file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-file-'));
  try {
    const path = join(dir, 'model.strata');
    const content = smallContent({ rule: 'round' });
    const expected = writeStrata(content);
    await writeFile(path, 'old contents');
    assert.equal(await writeStrataFile(path, content), expected.length);
    assert.deepEqual(new Uint8Array(await readFile(path)), expected);
    assert.deepEqual(await readdir(dir), ['model.strata'], 'no temporary file is left behind');

    for (const bits of [2, 5, 8]) {
      const r = await readStrataFile(path, { bits });
      assert.deepEqual(r.layered, readStrata(expected, { bits }).layered);
    }
    assert.equal((await readStrataFile(path)).bits, 8);

    const info = inspectStrata(expected);
    await truncate(path, info.precisions[3].completeAt + 5);
    assert.equal((await readStrataFile(path)).bits, 5);
    assert.equal((await readStrataFile(path, { bits: 3 })).bits, 3);
    await assert.rejects(readStrataFile(path, { bits: 6 }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'TRUNCATED');
      assert.match(e.message, /model\.strata/);
      return true;
    });

    await writeStrataFile(path, expected);
    await writeFile(path, Uint8Array.of(1, 2, 3), { flag: 'a' });
    await assert.rejects(readStrataFile(path), { code: 'TRAILING_DATA' });
    await assert.rejects(writeStrataFile(join(dir, 'missing', 'x.strata'), expected), { code: 'ENOENT' });
    assert.deepEqual((await readdir(dir)).sort(), ['model.strata']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
