import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { AnyImageDataset, ImageDataset, ImageListDataset } from '../../src/data/index.js';
import {
  cacheFilePath,
  cacheRoot,
  cachedDataset,
  fileDigest,
  loadImageTree,
  readDatasetCache,
  writeDatasetCache,
} from '../../src/data/index.js';
import { encodePng, makeTempDir, rgbImage, tarBytes, writeFile } from './fixtures.js';

const fixed: ImageDataset = {
  images: Uint8Array.from({ length: 3 * 2 * 2 * 3 }, (_, i) => (i * 13) % 256),
  labels: Int32Array.from([1, 0, 1]),
  height: 2,
  width: 2,
  channels: 3,
  classes: ['a', 'b'],
  sources: ['b/1.png', 'a/2.png', 'b/3.png'],
};

const list: ImageListDataset = {
  images: [
    { data: rgbImage(2, 3, 1), height: 2, width: 3 },
    { data: rgbImage(5, 1, 2), height: 5, width: 1 },
  ],
  labels: Int32Array.from([0, 2]),
  channels: 3,
  classes: ['x', 'y', 'z'],
};

test('cache files round-trip fixed-size and list datasets', async (t) => {
  const dir = makeTempDir(t);
  for (const ds of [fixed, list] as AnyImageDataset[]) {
    const file = path.join(dir, `${ds.classes[0]}.bin`);
    await writeDatasetCache(file, ds, 'key-1');
    const back = await readDatasetCache(file, 'key-1');
    assert.ok(back.ok, back.ok ? '' : back.reason);
    assert.deepEqual({ ...back.dataset }, { ...ds });
    // No temporary file is left behind by the atomic write.
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.tmp-')),
      [],
    );
  }
});

test('corrupt, truncated, foreign or stale cache files are detected', async (t) => {
  const dir = makeTempDir(t);
  const file = path.join(dir, 'c.bin');
  await writeDatasetCache(file, fixed, 'key-1');
  const good = readFileSync(file);
  const reason = async (key = 'key-1'): Promise<string> => {
    const r = await readDatasetCache(file, key);
    assert.equal(r.ok, false);
    return r.ok ? '' : r.reason;
  };
  assert.equal(
    await reason('key-2'),
    'c.bin: was built from different source data or options (key mismatch)',
  );
  truncateSync(file, good.length - 5);
  assert.equal(await reason(), `c.bin: is ${good.length - 5} bytes but its header describes ${good.length}`);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 3] ^= 1;
  writeFileSync(file, flipped);
  assert.equal(await reason(), 'c.bin: payload does not match its sha256 (corrupt)');
  writeFileSync(file, Buffer.concat([Buffer.from('NOTSTRAT'), good.subarray(8)]));
  assert.equal(await reason(), 'c.bin: has no STRATAIC magic');
  writeFileSync(file, good.subarray(0, 10));
  assert.equal(await reason(), 'c.bin: is 10 bytes, shorter than the 76-byte header');
  const r = await readDatasetCache(path.join(dir, 'absent.bin'), 'key-1');
  assert.ok(!r.ok && /^cannot read .*absent\.bin \(ENOENT\)$/.test(r.reason));
});

test('cachedDataset builds once, then reads; a corrupt file is rebuilt', async (t) => {
  const dir = makeTempDir(t);
  let builds = 0;
  const messages: string[] = [];
  const options = { name: 'toy set', key: 'a'.repeat(64), dir, log: (m: string) => messages.push(m) };
  const build = async (): Promise<AnyImageDataset> => {
    builds++;
    return fixed;
  };
  const first = await cachedDataset(options, build);
  const second = await cachedDataset(options, build);
  assert.equal(builds, 1);
  assert.deepEqual(second.labels, first.labels);
  const file = cacheFilePath(options);
  assert.equal(path.basename(file), 'toy_set-aaaaaaaaaaaaaaaa.bin');
  truncateSync(file, 100);
  const third = await cachedDataset(options, build);
  assert.equal(builds, 2);
  assert.deepEqual(third.images, fixed.images);
  assert.equal(statSync(file).size, readFileSync(file).length);
  assert.ok((await readDatasetCache(file, options.key)).ok, 'rebuilt file is valid');
  assert.deepEqual(
    messages.map((m) => m.split(':')[0]),
    ['data cache miss', 'data cache hit', 'data cache rebuilt'],
  );
  assert.match(messages[2], /is 100 bytes but its header describes \d+/);
});

test('loadImageTree caches by archive content, not by name, size or mtime', async (t) => {
  const dir = makeTempDir(t);
  const cacheDir = path.join(dir, 'cache');
  const members = (seed: number) => [
    { name: 'train/a/1.png', data: encodePng(rgbImage(3, 3, seed), 3, 3) },
    { name: 'train/b/1.png', data: encodePng(rgbImage(3, 3, seed + 1), 3, 3) },
  ];
  const archive = writeFile(path.join(dir, 'set.tar'), tarBytes(members(1)));
  const first = await loadImageTree(archive, { cacheDir });
  assert.equal(readdirSync(cacheDir).length, 1);
  const again = await loadImageTree(archive, { cacheDir });
  assert.deepEqual(again.labels, first.labels);
  assert.equal(readdirSync(cacheDir).length, 1);
  // Same length, same mtime, different pixels: the content hash must notice.
  const { mtime } = statSync(archive);
  const changed = tarBytes(members(7));
  assert.equal(changed.length, readFileSync(archive).length);
  writeFileSync(archive, changed);
  const { utimesSync } = await import('node:fs');
  utimesSync(archive, mtime, mtime);
  const fresh = await loadImageTree(archive, { cacheDir });
  assert.deepEqual((fresh as ImageDataset).images.subarray(0, 27), rgbImage(3, 3, 7));
  assert.equal(readdirSync(cacheDir).length, 2);
  assert.match(await fileDigest(archive), /^[0-9a-f]{64}$/);
});

test('cacheRoot honours STRATA_CACHE, else ~/.cache/strata', () => {
  const saved = process.env.STRATA_CACHE;
  try {
    process.env.STRATA_CACHE = '/tmp/somewhere/strata';
    assert.equal(cacheRoot(), '/tmp/somewhere/strata');
    delete process.env.STRATA_CACHE;
    assert.equal(cacheRoot(), path.join(os.homedir(), '.cache', 'strata'));
  } finally {
    if (saved === undefined) delete process.env.STRATA_CACHE;
    else process.env.STRATA_CACHE = saved;
  }
});
