/**
 * Checkpoints with a valid checksum but a description or array table no trainer writes: each is a
 * CheckpointError naming the file and the field (so the `.prev` fallback handles it), and `strata
 * info` reports it instead of crashing with a TypeError. Also: config values past what the kernels
 * hold are refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '../../src/format/crc32.js';
import {
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  loadLatestCheckpoint,
  saveCheckpoint,
} from '../../src/train/checkpoint.js';
import { parseOverride, resolveTrainConfig } from '../../src/train/config.js';
import { restoreContent } from '../../src/cli/restore.js';
import { strata, tempDir } from '../cli/helpers.js';
import { tinyCheckpoint } from '../fuzz/corpus.js';

const good = tinyCheckpoint();

/** The checkpoint with its JSON header edited and the CRC recomputed, as a careful attacker would. */
function withHeader(
  edit: (header: { meta: Record<string, unknown>; arrays: unknown[] }) => void,
): Uint8Array {
  const decoded = decodeCheckpoint(good);
  const view = new DataView(good.buffer, good.byteOffset);
  const headerLength = view.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(good.subarray(12, 12 + headerLength))) as {
    meta: Record<string, unknown>;
    arrays: unknown[];
  };
  edit(header);
  // Re-encode with the same arrays, then splice the edited header in with a fresh checksum.
  const base = encodeCheckpoint(decoded);
  const baseLength = new DataView(base.buffer).getUint32(8, true);
  const payload = base.subarray(Math.ceil((12 + baseLength) / 4) * 4, base.length - 4);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((12 + json.length) / 4) * 4;
  const out = new Uint8Array(start + payload.length + 4);
  out.set(new TextEncoder().encode('STRCKPT1'));
  const outView = new DataView(out.buffer);
  outView.setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(payload, start);
  outView.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

function refuses(bytes: Uint8Array, message: RegExp): void {
  assert.throws(
    () => restoreContent(decodeCheckpoint(bytes, 'run.ckpt'), 'run.ckpt'),
    (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
      assert.match(e.message, message);
      return true;
    },
  );
}

test('the corpus checkpoint itself restores', () => {
  assert.equal(restoreContent(decodeCheckpoint(good, 'run.ckpt'), 'run.ckpt').architecture.numClasses, 3);
});

test('an array table entry that is not an object is a CheckpointError, not a TypeError', () => {
  refuses(
    withHeader((h) => (h.arrays = [null])),
    /^checkpoint run\.ckpt: array entry null is not an object$/,
  );
  refuses(
    withHeader((h) => (h.arrays = [5, 'x'])),
    /array entry 5 is not an object/,
  );
  refuses(
    withHeader((h) => h.arrays.push(h.arrays[0])),
    /^checkpoint run\.ckpt: array 'model\.features\.0\.weight' appears twice$/,
  );
});

test('the .prev fallback takes over from a checkpoint whose array table is malformed', () => {
  const dir = tempDir('ckpt-hostile');
  const path = join(dir, 'run.ckpt');
  saveCheckpoint(path, decodeCheckpoint(good));
  saveCheckpoint(path, decodeCheckpoint(good));
  writeFileSync(
    path,
    withHeader((h) => (h.arrays = [null])),
  );
  const loaded = loadLatestCheckpoint(path);
  assert.ok(loaded !== null);
  assert.equal(loaded.from, `${path}.prev`);
  assert.match(loaded.refused ?? '', /array entry null is not an object/);
});

test('meta.config, architecture and history of the wrong kind are named by field', () => {
  refuses(
    withHeader((h) => (h.meta.config = null)),
    /^checkpoint run\.ckpt: config must be an object but is null$/,
  );
  refuses(
    withHeader((h) => (h.meta.architecture = null)),
    /^checkpoint run\.ckpt: architecture null is not an object$/,
  );
  refuses(
    withHeader((h) => (h.meta.architecture = { name: 'small-cnn', numClasses: 1e9, inChannels: 1 })),
    /architecture\.numClasses 1000000000 exceeds the limit of 100000 \(maxClasses\)/,
  );
  refuses(
    withHeader((h) => (h.meta.history = [{}])),
    /^checkpoint run\.ckpt: history must list epoch records .* but is \[\{\}\]$/,
  );
  refuses(
    withHeader((h) => (h.meta.classes = ['a'])),
    /classes must list 3 names \(architecture\.numClasses\) but is \["a"\]/,
  );
  refuses(
    withHeader((h) => (h.meta.epoch = -1)),
    /epoch must be a non-negative number but is -1/,
  );
  refuses(
    withHeader((h) => ((h.meta.config as Record<string, unknown>).fixedBits = 99)),
    /checkpoint run\.ckpt: Expected integer in \[2, 16\] for fixedBits of checkpoint run\.ckpt but received 99/,
  );
});

test('a classifier array that does not match the class count is refused before the network is built', () => {
  const bytes = withHeader((h) => {
    const arch = h.meta.architecture as Record<string, unknown>;
    arch.numClasses = 90000;
    h.meta.classes = Array.from({ length: 90000 }, (_, i) => `c${i}`);
  });
  refuses(bytes, /array 'model\.fc\.weight' holds 24 values but small-cnn with 90000 classes needs 720000/);
});

test('strata info reports a malformed checkpoint description as an error naming the file, not a TypeError', async () => {
  const dir = tempDir('info-hostile');
  for (const [name, edit] of [
    ['config', (h: { meta: Record<string, unknown> }) => (h.meta.config = null)],
    ['architecture', (h: { meta: Record<string, unknown> }) => (h.meta.architecture = null)],
    ['history', (h: { meta: Record<string, unknown> }) => (h.meta.history = [{}])],
  ] as const) {
    const path = join(dir, `${name}.ckpt`);
    writeFileSync(path, withHeader(edit));
    const r = await strata('info', path);
    assert.equal(r.code, 1, r.stdout);
    assert.doesNotMatch(r.stderr, /TypeError|Cannot read/);
    assert.match(r.stderr, new RegExp(`checkpoint ${path.replace(/[/.]/g, '\\$&')}: ${name}`));
  }
});

test('a checkpoint header longer than maxCheckpointHeaderBytes is refused before it is decoded', () => {
  const bytes = good.slice();
  new DataView(bytes.buffer).setUint32(8, 0xffffff00, true);
  assert.throws(() => decodeCheckpoint(bytes, 'x.ckpt'), {
    name: 'CheckpointError',
    message:
      'checkpoint x.ckpt: header length 4294967040 exceeds the limit of 67108864 bytes (maxCheckpointHeaderBytes); raise it with STRATA_MAX_CHECKPOINT_HEADER_BYTES',
  });
});

test('--set fixedBits=99 and topBits=40 fail config validation by name, not inside a kernel', () => {
  for (const [key, max, min] of [
    ['fixedBits', 16, 2],
    ['topBits', 16, 2],
    ['minBits', 16, 1],
  ] as const) {
    const [k, v] = parseOverride(`${key}=99`);
    assert.throws(() => resolveTrainConfig({ [k]: v }, '--set'), {
      name: 'RangeError',
      message: `Expected integer in [${min}, ${max}] for ${key} of --set but received 99 of type number`,
    });
  }
  assert.equal(resolveTrainConfig({ topBits: 16, bits: [16, 2] }, '--set').topBits, 16);
});

test('a failed checkpoint write leaves neither a partial file nor a temporary one, and keeps the old one', () => {
  const dir = tempDir('ckpt-atomic');
  const path = join(dir, 'run.ckpt');
  saveCheckpoint(path, decodeCheckpoint(good));
  const before = readFileSync(path);
  const content = decodeCheckpoint(good);
  // A description the encoder cannot serialise (a getter that throws) stops the save before any write.
  content.meta = {
    get boom(): never {
      throw new Error('refused');
    },
  } as unknown as Record<string, unknown>;
  assert.throws(() => saveCheckpoint(path, content), /refused/);
  assert.deepEqual(readFileSync(path), before);
  assert.equal(existsSync(`${path}.tmp-${process.pid}`), false);
});
