import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ByteReader, openByteStream } from './byte-stream.js';
import type { ImageDataset } from './dataset.js';

const SIDE = 32;
const PIXELS = SIDE * SIDE;
const IMAGE_BYTES = 3 * PIXELS;

/** Official CIFAR-10 class order (label index), which is also alphabetical. */
export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

export type Cifar100Label = 'fine' | 'coarse';

export interface CifarRecords {
  /** HWC uint8, 32x32x3 each. */
  images: Uint8Array;
  labels: Int32Array;
}

interface RecordLayout {
  /** Label bytes before the pixels (1 for CIFAR-10; coarse then fine for CIFAR-100). */
  labelBytes: number;
  /** Which label byte to keep. */
  labelOffset: number;
  labelName: string;
  classCount: number;
}

function layoutFor(kind: 'cifar10' | 'cifar100', label: Cifar100Label): RecordLayout {
  if (kind === 'cifar10') return { labelBytes: 1, labelOffset: 0, labelName: 'label', classCount: 10 };
  return label === 'coarse'
    ? { labelBytes: 2, labelOffset: 0, labelName: 'coarse label', classCount: 20 }
    : { labelBytes: 2, labelOffset: 1, labelName: 'fine label', classCount: 100 };
}

/** Streams one CIFAR binary file, turning each CHW record into HWC. */
async function readRecords(file: string, layout: RecordLayout): Promise<CifarRecords> {
  const name = path.basename(file);
  const recordBytes = layout.labelBytes + IMAGE_BYTES;
  const reader = ByteReader.of(openByteStream(file));
  let capacity = 10000;
  let images = new Uint8Array(capacity * IMAGE_BYTES);
  let labels = new Int32Array(capacity);
  let count = 0;
  try {
    while (!(await reader.atEnd())) {
      const record = await reader.read(recordBytes);
      if (record.length < recordBytes) {
        throw new Error(
          `${name}: record ${count} is truncated (expected ${recordBytes} bytes, got ${record.length})`,
        );
      }
      const label = record[layout.labelOffset];
      if (label >= layout.classCount) {
        throw new Error(
          `${name}: record ${count} has ${layout.labelName} ${label} (expected 0..${layout.classCount - 1}); ` +
            'is this the right CIFAR variant?',
        );
      }
      if (count === capacity) {
        capacity *= 2;
        const grownImages = new Uint8Array(capacity * IMAGE_BYTES);
        grownImages.set(images);
        images = grownImages;
        const grownLabels = new Int32Array(capacity);
        grownLabels.set(labels);
        labels = grownLabels;
      }
      labels[count] = label;
      const base = count * IMAGE_BYTES;
      const pixels = layout.labelBytes;
      for (let p = 0; p < PIXELS; p++) {
        images[base + 3 * p] = record[pixels + p];
        images[base + 3 * p + 1] = record[pixels + PIXELS + p];
        images[base + 3 * p + 2] = record[pixels + 2 * PIXELS + p];
      }
      count++;
    }
  } finally {
    await reader.close();
  }
  if (count === 0) throw new Error(`${name}: holds no records (expected records of ${recordBytes} bytes)`);
  return { images: images.slice(0, count * IMAGE_BYTES), labels: labels.slice(0, count) };
}

function concat(parts: CifarRecords[]): CifarRecords {
  if (parts.length === 1) return parts[0];
  const n = parts.reduce((sum, p) => sum + p.labels.length, 0);
  const images = new Uint8Array(n * IMAGE_BYTES);
  const labels = new Int32Array(n);
  let at = 0;
  for (const part of parts) {
    images.set(part.images, at * IMAGE_BYTES);
    labels.set(part.labels, at);
    at += part.labels.length;
  }
  return { images, labels };
}

/** Reads CIFAR-10 binary files (1 label byte + 3072 bytes CHW per record), concatenated in the given order. */
export async function readCifar10(files: string[]): Promise<CifarRecords> {
  const layout = layoutFor('cifar10', 'fine');
  const parts: CifarRecords[] = [];
  for (const file of files) parts.push(await readRecords(file, layout));
  return concat(parts);
}

/** Reads CIFAR-100 binary files (coarse byte, fine byte, 3072 bytes CHW), keeping the chosen label. */
export async function readCifar100(files: string[], label: Cifar100Label = 'fine'): Promise<CifarRecords> {
  if (label !== 'fine' && label !== 'coarse') {
    throw new RangeError(`Expected 'fine' or 'coarse' for label but received ${JSON.stringify(label)}`);
  }
  const layout = layoutFor('cifar100', label);
  const parts: CifarRecords[] = [];
  for (const file of files) parts.push(await readRecords(file, layout));
  return concat(parts);
}

/** The official archives unpack into a subfolder; accept either it or its parent. */
function resolveFolder(dir: string, inner: string, probe: string): string {
  if (existsSync(path.join(dir, probe))) return dir;
  return existsSync(path.join(dir, inner)) ? path.join(dir, inner) : dir;
}

async function readNames(file: string, count: number): Promise<string[] | null> {
  if (!existsSync(file)) return null;
  const names = (await readFile(file, 'utf8'))
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (names.length !== count) {
    throw new Error(`${path.basename(file)}: lists ${names.length} class names (expected ${count})`);
  }
  return names;
}

function requireFiles(dir: string, files: string[], what: string): string[] {
  const paths = files.map((f) => path.join(dir, f));
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      `${what}: missing ${missing.map((m) => path.basename(m)).join(', ')} in ${dir}; ` +
        'unpack the official binary release there',
    );
  }
  return paths;
}

/**
 * CIFAR-10 from the official binary release folder (`cifar-10-batches-bin` or its parent):
 * train = data_batch_1..5.bin, test = test_batch.bin.
 */
export async function loadCifar10(dir: string, split: 'train' | 'test'): Promise<ImageDataset> {
  const folder = resolveFolder(dir, 'cifar-10-batches-bin', 'batches.meta.txt');
  const names = split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
  const { images, labels } = await readCifar10(requireFiles(folder, names, `CIFAR-10 ${split}`));
  const classes = (await readNames(path.join(folder, 'batches.meta.txt'), 10)) ?? [...CIFAR10_CLASSES];
  return { images, labels, height: SIDE, width: SIDE, channels: 3, classes };
}

/**
 * CIFAR-100 from the official binary release folder (`cifar-100-binary` or its parent): train.bin or
 * test.bin, with fine (100) or coarse (20) labels; class names from fine/coarse_label_names.txt.
 */
export async function loadCifar100(
  dir: string,
  split: 'train' | 'test',
  label: Cifar100Label = 'fine',
): Promise<ImageDataset> {
  const folder = resolveFolder(dir, 'cifar-100-binary', `${split}.bin`);
  const { images, labels } = await readCifar100(
    requireFiles(folder, [`${split}.bin`], `CIFAR-100 ${split}`),
    label,
  );
  const count = label === 'fine' ? 100 : 20;
  const classes =
    (await readNames(path.join(folder, `${label}_label_names.txt`), count)) ??
    Array.from({ length: count }, (_, i) => String(i));
  return { images, labels, height: SIDE, width: SIDE, channels: 3, classes };
}
