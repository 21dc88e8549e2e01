import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ImageDataset, ImageListDataset } from '../../src/data/index.js';
import { getImage, isFixedSize, readImageTree, toFixedSize } from '../../src/data/index.js';
import type { TarMember } from './fixtures.js';
import { encodeJpeg, encodePng, makeTempDir, rgbImage, tarBytes, writeFile } from './fixtures.js';

const H = 4;
const W = 6;

/** class -> file -> bytes; the same tree goes to a folder and into archives. */
function sampleTree(): Map<string, Map<string, Buffer>> {
  return new Map([
    [
      'dog',
      new Map([
        ['b.png', encodePng(rgbImage(H, W, 2), H, W, { grey: true })],
        ['a.jpg', encodeJpeg(H, W, [200, 40, 90])],
      ]),
    ],
    ['cat', new Map([['0001.png', encodePng(rgbImage(H, W, 1), H, W)]])],
    ['ant', new Map([['x.png', encodePng(rgbImage(H, W, 3), H, W)]])],
  ]);
}

function writeTree(root: string, tree: Map<string, Map<string, Buffer>>): void {
  for (const [cls, files] of tree) {
    mkdirSync(path.join(root, cls), { recursive: true });
    for (const [name, bytes] of files) writeFileSync(path.join(root, cls, name), bytes);
  }
}

function tarMembers(prefix: string, tree: Map<string, Map<string, Buffer>>): TarMember[] {
  const members: TarMember[] = [{ name: prefix, directory: true }];
  for (const [cls, files] of tree) {
    members.push({ name: `${prefix}/${cls}`, directory: true });
    for (const [name, data] of files) members.push({ name: `${prefix}/${cls}/${name}`, data });
  }
  return members;
}

function checkSample(ds: ImageDataset): void {
  assert.deepEqual(ds.classes, ['ant', 'cat', 'dog']);
  assert.deepEqual(Array.from(ds.labels), [0, 1, 2, 2]);
  assert.deepEqual(ds.sources, ['ant/x.png', 'cat/0001.png', 'dog/a.jpg', 'dog/b.png']);
  assert.deepEqual([ds.height, ds.width, ds.channels], [H, W, 3]);
  assert.deepEqual(getImage(ds, 0).data, rgbImage(H, W, 3));
  assert.deepEqual(getImage(ds, 1).data, rgbImage(H, W, 1));
  const jpeg = getImage(ds, 2).data;
  for (let p = 0; p < H * W; p++) {
    assert.ok(
      Math.abs(jpeg[3 * p] - 200) <= 3 &&
        Math.abs(jpeg[3 * p + 1] - 40) <= 3 &&
        Math.abs(jpeg[3 * p + 2] - 90) <= 3,
    );
  }
  // Greyscale PNG: one channel in the file, three equal channels in the dataset.
  const grey = getImage(ds, 3).data;
  const source = rgbImage(H, W, 2);
  for (let p = 0; p < H * W; p++) {
    assert.deepEqual(
      [grey[3 * p], grey[3 * p + 1], grey[3 * p + 2]],
      [source[3 * p], source[3 * p], source[3 * p]],
    );
  }
}

test('image folder: sorted class names, file-name order, PNG/JPEG/greyscale decoded to RGB', async (t) => {
  const dir = makeTempDir(t);
  writeTree(dir, sampleTree());
  writeFileSync(path.join(dir, 'README.txt'), 'not a class');
  const ds = await readImageTree(dir);
  assert.ok(isFixedSize(ds));
  checkSample(ds);
});

test('image archives (.tar with GNU long names, .tar.gz) read like the folder, root detected', async (t) => {
  const dir = makeTempDir(t);
  const tree = sampleTree();
  const plain = writeFile(path.join(dir, 'imgs.tar'), tarBytes(tarMembers('train', tree)));
  const gz = writeFile(path.join(dir, 'imgs.tar.gz'), tarBytes(tarMembers('train', tree)), true);
  const deepPrefix = `nested/${'n'.repeat(110)}`;
  const deep = writeFile(path.join(dir, 'deep.tar'), tarBytes(tarMembers(deepPrefix, tree)));
  for (const file of [plain, gz, deep]) {
    const ds = await readImageTree(file);
    assert.ok(isFixedSize(ds), file);
    checkSample(ds);
  }
  // An explicit root overrides detection.
  const explicit = await readImageTree(plain, { root: 'train/' });
  assert.ok(isFixedSize(explicit));
  checkSample(explicit);
});

test('wnids.txt (or the classes option) fixes the class order and must match the folders', async (t) => {
  const dir = makeTempDir(t);
  writeTree(dir, sampleTree());
  writeFileSync(path.join(dir, 'wnids.txt'), 'dog\ncat\nant\n');
  const ds = await readImageTree(dir);
  assert.deepEqual(ds.classes, ['dog', 'cat', 'ant']);
  assert.deepEqual(Array.from(ds.labels), [0, 0, 1, 2]);
  const archive = writeFile(
    path.join(dir, '..', `${path.basename(dir)}-w.tar`),
    tarBytes([
      ...tarMembers('val', sampleTree()),
      { name: 'val/wnids.txt', data: Buffer.from('cat\ndog\nant\n') },
    ]),
  );
  t.after(() => import('node:fs').then((fs) => fs.rmSync(archive, { force: true })));
  assert.deepEqual((await readImageTree(archive)).classes, ['cat', 'dog', 'ant']);
  writeFileSync(path.join(dir, 'wnids.txt'), 'dog\ncat\nant\ncow\n');
  await assert.rejects(readImageTree(dir), { message: `${dir}: class 'cow' from wnids.txt has no folder` });
  writeFileSync(path.join(dir, 'wnids.txt'), 'dog\ncat\n');
  await assert.rejects(readImageTree(dir), {
    message: `${dir}: class folder 'ant' is not listed in wnids.txt`,
  });
  await assert.rejects(readImageTree(dir, { classes: ['ant', 'cat'] }), {
    message: `${dir}: class folder 'dog' is not listed in the classes option`,
  });
});

test('images of different sizes stay a list; packing it names the odd image', async (t) => {
  const dir = makeTempDir(t);
  const tree = sampleTree();
  tree.get('cat')?.set('0002.png', encodePng(rgbImage(7, 3, 5), 7, 3));
  writeTree(dir, tree);
  const ds = (await readImageTree(dir)) as ImageListDataset;
  assert.ok(!isFixedSize(ds));
  assert.equal(ds.images.length, 5);
  assert.deepEqual([ds.images[2].height, ds.images[2].width], [7, 3]);
  assert.deepEqual(ds.images[2].data, rgbImage(7, 3, 5));
  assert.throws(() => toFixedSize(ds), {
    message:
      'cat/0002.png is 7x3 but the first image is 4x6; keep the list and let the transforms crop or resize it',
  });
});

test('corrupt images and empty class folders are reported with the file and class', async (t) => {
  const dir = makeTempDir(t);
  const tree = sampleTree();
  const corrupt = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(40, 0x55)]);
  tree.get('cat')?.set('0002.jpg', corrupt);
  const folder = path.join(dir, 'folder');
  writeTree(folder, tree);
  await assert.rejects(
    readImageTree(folder),
    new RegExp(
      `^InvalidInputError: ${path.join(folder, 'cat', '0002.jpg').replace(/[/.]/g, '\\$&')}: image is not a decodable JPEG \\(.+\\)$`,
    ),
  );
  const archive = writeFile(path.join(dir, 'bad.tar'), tarBytes(tarMembers('train', tree)));
  await assert.rejects(
    readImageTree(archive),
    /^InvalidInputError: bad\.tar entry 'train\/cat\/0002\.jpg': image is not a decodable JPEG \(.+\)$/,
  );

  const notImage = sampleTree();
  notImage.get('ant')?.set('y.png', Buffer.from('plain text, not a png'));
  const other = path.join(dir, 'other');
  writeTree(other, notImage);
  await assert.rejects(readImageTree(other), {
    message: `${path.join(other, 'ant', 'y.png')}: image is neither a JPEG nor a PNG (leading bytes do not match either signature)`,
  });

  const emptyFolder = path.join(dir, 'empty');
  writeTree(emptyFolder, sampleTree());
  mkdirSync(path.join(emptyFolder, 'bee'));
  writeFileSync(path.join(emptyFolder, 'bee', 'notes.txt'), 'no images here');
  await assert.rejects(readImageTree(emptyFolder), {
    message: `${emptyFolder}: class 'bee' holds no JPEG or PNG images`,
  });
  const emptyTar = writeFile(
    path.join(dir, 'empty.tar'),
    tarBytes([...tarMembers('train', sampleTree()), { name: 'train/bee', directory: true }]),
  );
  await assert.rejects(readImageTree(emptyTar), {
    message: "empty.tar:train: class 'bee' holds no JPEG or PNG images",
  });
  await assert.rejects(readImageTree(path.join(dir, 'missing')), {
    message: `${path.join(dir, 'missing')}: no such file or folder`,
  });
  const noClasses = path.join(dir, 'none');
  mkdirSync(noClasses);
  await assert.rejects(readImageTree(noClasses), {
    message: `${noClasses}: no class folders with JPEG or PNG images found (expected <root>/<class>/<image>)`,
  });
});
