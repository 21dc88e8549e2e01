/**
 * Decompression bombs and degenerate images: the declared size is checked against maxPixels before
 * the decoder allocates anything, and every refusal names the file, the field, the limit and the value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { decodeImage } from '../../src/data/image-decode.js';
import { InvalidInputError, setLimits } from '../../src/engine/limits.js';
import { fixPngChunkCrc, jpegFrameOffset, sampleImages } from '../fuzz/corpus.js';

const images = new Map(sampleImages().map((i) => [i.name, i.bytes]));

/** The sample PNG with its IHDR width and height replaced (CRC fixed, so pngjs would accept it). */
function pngSized(width: number, height: number, base = 'rgb.png'): Uint8Array {
  const bytes = images.get(base)!.slice();
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  fixPngChunkCrc(bytes, 8);
  return bytes;
}

function jpegSized(width: number, height: number): Uint8Array {
  const bytes = images.get('photo.jpg')!.slice();
  const at = jpegFrameOffset(bytes);
  const view = new DataView(bytes.buffer);
  view.setUint16(at + 5, height);
  view.setUint16(at + 7, width);
  return bytes;
}

function refusedQuickly(bytes: Uint8Array, name: string, message: RegExp): InvalidInputError {
  const started = performance.now();
  const before = process.memoryUsage().rss;
  let error: unknown = null;
  try {
    decodeImage(bytes, name);
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - started;
  assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
  assert.match(error.message, message);
  assert.ok(ms < 500, `refusal took ${ms} ms`);
  assert.ok(process.memoryUsage().rss - before < 64 * 2 ** 20, 'refusal allocated the declared image');
  return error;
}

test('a PNG declaring 12000x12000 is refused from its header (it took 27 s and 1.95 GB)', () => {
  const e = refusedQuickly(
    pngSized(12000, 12000),
    'bomb.png',
    /^bomb\.png: image size 12000x12000 \(144000000 pixels\) exceeds the limit of 16777216 pixels \(maxPixels\); raise it with STRATA_MAX_PIXELS$/,
  );
  assert.equal(e.field, 'image size');
  assert.equal(e.value, '12000x12000');
});

test('a JPEG declaring 9000x9000 in a few hundred bytes is refused from its frame header (5 s, 0.9 GB)', () => {
  refusedQuickly(
    jpegSized(9000, 9000),
    'bomb.jpg',
    /^bomb\.jpg: image size 9000x9000 \(81000000 pixels\) exceeds the limit/,
  );
});

test('images with no pixels are refused at once: a 0x5 PNG, a 7x0 JPEG', () => {
  refusedQuickly(
    pngSized(0, 5),
    'empty.png',
    /^empty\.png: image size 0x5 has no pixels \(width and height must be at least 1\)$/,
  );
  refusedQuickly(jpegSized(7, 0), 'empty.jpg', /^empty\.jpg: image size 7x0 has no pixels/);
});

test('the pixel limit is configurable, and a normal image passes it', () => {
  assert.equal(decodeImage(images.get('rgba.png')!, 'ok.png').width, 16);
  const previous = setLimits({ maxPixels: 100 });
  try {
    refusedQuickly(
      images.get('rgba.png')!,
      'ok.png',
      /image size 16x16 \(256 pixels\) exceeds the limit of 100 pixels/,
    );
    assert.equal(decodeImage(images.get('small.jpg')!, 'small.jpg').height, 3);
  } finally {
    setLimits(null);
    setLimits(previous);
  }
});

test('an interlaced PNG whose data inflates past its declared size is refused before pngjs inflates it', () => {
  // 10x10 declared, 50 MB of zeros compressed to about 50 kB: pngjs inflates interlaced data unbounded.
  const bytes = pngSized(10, 10);
  bytes[28] = 1;
  fixPngChunkCrc(bytes, 8);
  const payload = deflateSync(Buffer.alloc(50 * 2 ** 20));
  const chunk = new Uint8Array(12 + payload.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, payload.length);
  chunk.set(new TextEncoder().encode('IDAT'), 4);
  chunk.set(payload, 8);
  fixPngChunkCrc(chunk, 0);
  const iend = bytes.subarray(bytes.length - 12);
  const bomb = new Uint8Array(33 + chunk.length + 12);
  bomb.set(bytes.subarray(0, 33));
  bomb.set(chunk, 33);
  bomb.set(iend, 33 + chunk.length);
  refusedQuickly(
    bomb,
    'interlaced.png',
    /^interlaced\.png: image data is not a decodable PNG \(.*at most \d+ bytes for 10x10\)$/,
  );
});

test('text and truncated files are refused as InvalidInputError naming the file', () => {
  refusedQuickly(new TextEncoder().encode('hello'), 'a.txt', /^a\.txt: image is neither a JPEG nor a PNG/);
  refusedQuickly(
    images.get('photo.jpg')!.subarray(0, 40),
    'cut.jpg',
    /^cut\.jpg: image is not a decodable JPEG/,
  );
  refusedQuickly(
    images.get('rgb.png')!.subarray(0, 20),
    'cut.png',
    /^cut\.png: image is not a decodable PNG/,
  );
});

test('an extreme aspect ratio is refused before the resize to the input size allocates it', async () => {
  const { imageToInput, inputSpecFor } = await import('../../src/web/preprocess.js');
  const spec = inputSpecFor({ name: 'resnet18', inChannels: 1 }, { inputSize: 100 }, 'm.strata');
  const wide = { data: new Uint8Array(65535 * 13), height: 13, width: 65535 };
  const started = performance.now();
  assert.throws(() => imageToInput(wide, spec, 'wide.png'), {
    name: 'InvalidInputError',
    message:
      'wide.png: image aspect ratio 65535x13 would be resized to 65514774 pixels (shorter side 114 for a 100x100 input), over the bound of 851955 pixels',
  });
  assert.ok(performance.now() - started < 500);
  // An ordinary photo's proportions pass.
  const photo = { data: new Uint8Array(120 * 90), height: 90, width: 120 };
  assert.equal(imageToInput(photo, spec, 'photo.png').length, 100 * 100);
});
