import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readTar } from '../../src/data/index.js';
import type { TarEntry } from '../../src/data/index.js';
import { makeTempDir, tarBytes, writeFile } from './fixtures.js';

async function collect(file: string): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  for await (const entry of readTar(file))
    out.push({ ...entry, data: entry.data && Buffer.from(entry.data) });
  return out;
}

const longName = `deep/${'x'.repeat(120)}/file.bin`;
const members = [
  { name: 'root', directory: true },
  { name: 'root/a.txt', data: Buffer.from('hello') },
  { name: 'root/empty.txt', data: Buffer.alloc(0) },
  { name: 'root/block.bin', data: Buffer.alloc(512, 7) },
  { name: longName, data: Buffer.from('long') },
];

for (const mode of ['gnu', 'pax'] as const) {
  test(`tar reader: directories, sizes at block edges and ${mode} long names, plain and gzip`, async (t) => {
    const dir = makeTempDir(t);
    for (const gzip of [false, true]) {
      const file = writeFile(
        path.join(dir, `a-${mode}.tar${gzip ? '.gz' : ''}`),
        tarBytes(members, mode),
        gzip,
      );
      const entries = await collect(file);
      assert.deepEqual(
        entries.map((e) => [e.index, e.name, e.type, e.size]),
        [
          [0, 'root/', 'directory', 0],
          [1, 'root/a.txt', 'file', 5],
          [2, 'root/empty.txt', 'file', 0],
          [3, 'root/block.bin', 'file', 512],
          [4, longName, 'file', 4],
        ],
      );
      assert.equal(entries[1].data?.toString(), 'hello');
      assert.deepEqual(entries[3].data, Buffer.alloc(512, 7));
      assert.equal(entries[4].data?.toString(), 'long');
    }
  });
}

test('tar reader reads archives made by the system tar (GNU and pax formats)', async (t) => {
  let hasTar = true;
  try {
    execFileSync('tar', ['--version'], { stdio: 'ignore' });
  } catch {
    hasTar = false;
  }
  if (!hasTar) {
    t.skip('no tar command on this machine');
    return;
  }
  const dir = makeTempDir(t);
  const src = path.join(dir, 'src');
  const deepName = `${'d'.repeat(90)}/${'f'.repeat(70)}.txt`;
  writeFile(path.join(src, 'tree', deepName), Buffer.from('deep'));
  writeFile(path.join(src, 'tree', 'small.txt'), Buffer.from('small'));
  for (const format of ['gnu', 'pax']) {
    const file = path.join(dir, `${format}.tar.gz`);
    execFileSync('tar', [`--format=${format}`, '-czf', file, '-C', src, 'tree']);
    const files = (await collect(file)).filter((e) => e.type === 'file');
    const byName = new Map(files.map((e) => [e.name, e.data?.toString()]));
    assert.equal(byName.get(`tree/${deepName}`), 'deep', `${format}: ${[...byName.keys()]}`);
    assert.equal(byName.get('tree/small.txt'), 'small');
  }
});

test('tar reader: `include` skips unwanted members without loading them', async (t) => {
  const dir = makeTempDir(t);
  const file = writeFile(path.join(dir, 'a.tar'), tarBytes(members));
  const loaded: string[] = [];
  for await (const e of readTar(file, { include: (name) => name.endsWith('.txt') }))
    if (e.data) loaded.push(e.name);
  assert.deepEqual(loaded, ['root/a.txt', 'root/empty.txt']);
});

test('tar reader reports truncated entries, bad checksums and corrupt gzip', async (t) => {
  const dir = makeTempDir(t);
  const bytes = tarBytes([
    { name: 'a.txt', data: Buffer.from('hello') },
    { name: 'big.bin', data: Buffer.alloc(2000, 1) },
  ]);
  const truncated = writeFile(path.join(dir, 'cut.tar.gz'), bytes.subarray(0, 1024 + 512 + 700), true);
  await assert.rejects(collect(truncated), {
    message: "cut.tar.gz: entry 1 ('big.bin') is truncated (expected 2000 bytes of data, got 700)",
  });
  const halfHeader = writeFile(path.join(dir, 'half.tar'), bytes.subarray(0, 1024 + 100));
  await assert.rejects(collect(halfHeader), {
    message: 'half.tar: header of entry 1 at byte 1024 is truncated (expected 512 bytes, got 100)',
  });
  const damaged = Buffer.from(bytes);
  damaged[1024 + 3] ^= 0xff;
  const bad = writeFile(path.join(dir, 'bad.tar'), damaged);
  await assert.rejects(
    collect(bad),
    /^Error: bad\.tar: header of entry 1 at byte 1024 has a bad checksum \(stored \d+, computed \d+\); the file is not a tar archive or is corrupt$/,
  );
  const notTar = writeFile(path.join(dir, 'text.tar'), Buffer.from('just some text\n'.repeat(50)));
  await assert.rejects(
    collect(notTar),
    /^Error: text\.tar: header of entry 0 at byte 0 has a bad checksum \(stored not a number/,
  );
  const gz = gzipSync(bytes);
  const corrupt = writeFile(path.join(dir, 'corrupt.tar.gz'), gz.subarray(0, gz.length - 30));
  await assert.rejects(collect(corrupt), /^Error: corrupt\.tar\.gz: gzip data is corrupt or truncated \(/);
});
