import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  loadLatestCheckpoint,
  saveCheckpoint,
} from '../../src/train/checkpoint.js';

const content = () => ({
  meta: { epoch: 3, note: 'x' },
  arrays: new Map([
    ['model.a', Float32Array.from([1, 2, 3])],
    ['optim.velocity.0', Float32Array.from([0.5])],
  ]),
});

test('a checkpoint round-trips its arrays and metadata', () => {
  const back = decodeCheckpoint(encodeCheckpoint(content()));
  assert.deepEqual(back.meta, { epoch: 3, note: 'x' });
  assert.deepEqual(back.arrays.get('model.a'), Float32Array.from([1, 2, 3]));
  assert.deepEqual(back.arrays.get('optim.velocity.0'), Float32Array.from([0.5]));
});

test('truncated, bit-flipped and foreign files are refused with a message naming the file', () => {
  const bytes = encodeCheckpoint(content());
  assert.throws(
    () => decodeCheckpoint(bytes.subarray(0, bytes.length - 7), 'a.ckpt'),
    (e: Error) =>
      e instanceof CheckpointError && /^checkpoint a\.ckpt: corrupt or truncated: checksum/.test(e.message),
  );
  const flipped = Uint8Array.from(bytes);
  flipped[flipped.length - 9] ^= 0x10;
  assert.throws(() => decodeCheckpoint(flipped, 'b.ckpt'), /checkpoint b\.ckpt: corrupt or truncated/);
  assert.throws(
    () => decodeCheckpoint(new TextEncoder().encode('hello world, not a checkpoint'), 'c.ckpt'),
    /checkpoint c\.ckpt: not a Strata checkpoint \(bad magic\)/,
  );
  assert.throws(
    () => decodeCheckpoint(new Uint8Array(5), 'd.ckpt'),
    /checkpoint d\.ckpt: truncated \(5 bytes/,
  );
});

test('saving keeps the previous checkpoint, and a corrupt newest one falls back to it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-ckpt-'));
  const path = join(dir, 'run', 'checkpoint.ckpt');
  saveCheckpoint(path, content());
  const second = content();
  second.meta.epoch = 4;
  saveCheckpoint(path, second);
  assert.ok(existsSync(`${path}.prev`));
  assert.equal(loadCheckpoint(path).meta.epoch, 4);
  // A process killed while writing leaves garbage in the newest file: the previous one is used.
  writeFileSync(path, readFileSync(path).subarray(0, 40));
  const latest = loadLatestCheckpoint(path)!;
  assert.equal(latest.from, `${path}.prev`);
  assert.equal(latest.content.meta.epoch, 3);
  assert.match(latest.refused!, /corrupt or truncated|header of/);
  assert.equal(loadLatestCheckpoint(join(dir, 'none.ckpt')), null);
});
