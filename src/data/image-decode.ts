import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { inflateSync } from 'node:zlib';
import { InvalidInputError, limits, raiseHint } from '../engine/limits.js';
import type { RawImage } from './dataset.js';

export type ImageFormat = 'jpeg' | 'png';

/** Recognises JPEG and PNG by their leading bytes (extensions lie often enough in scraped data). */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (
    bytes.length >= 8 &&
    bytes[0] === 0x89 &&
    bytes[1] === 0x50 &&
    bytes[2] === 0x4e &&
    bytes[3] === 0x47 &&
    bytes[4] === 0x0d &&
    bytes[5] === 0x0a &&
    bytes[6] === 0x1a &&
    bytes[7] === 0x0a
  ) {
    return 'png';
  }
  return null;
}

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'];

export function hasImageExtension(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** Width and height an image header declares, read without decoding anything. */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** PNG only: Adam7 interlacing (pngjs inflates those without an output bound). */
  interlaced: boolean;
}

/** The PNG IHDR (always the first chunk) or the first JPEG start-of-frame marker; null if absent. */
export function readImageHeader(bytes: Uint8Array, format: ImageFormat): ImageHeader | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'png') {
    if (bytes.length < 29 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
    return { format, width: view.getUint32(16), height: view.getUint32(20), interlaced: bytes[28] === 1 };
  }
  // JPEG: walk the marker segments up to the first SOFn (C0-CF except DHT C4, JPG C8, DAC CC).
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at++;
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      at += 2;
      continue;
    }
    const length = view.getUint16(at + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (at + 9 > bytes.length) return null;
      return { format, height: view.getUint16(at + 5), width: view.getUint16(at + 7), interlaced: false };
    }
    if (length < 2) return null;
    at += 2 + length;
  }
  return null;
}

/**
 * Refuses an image whose header declares no pixels or more than maxPixels (docs/LIMITS.md) before
 * the decoder allocates anything: a 420 KB PNG of 12000x12000 once took 27 s and 1.95 GB, a 147-byte
 * JPEG declaring 9000x9000 5 s and 0.9 GB.
 */
export function checkImageHeader(bytes: Uint8Array, format: ImageFormat, name: string): ImageHeader {
  const header = readImageHeader(bytes, format);
  const kind = format === 'jpeg' ? 'JPEG' : 'PNG';
  if (header === null) {
    throw new InvalidInputError(name, 'image', `is not a decodable ${kind} (no image header)`, '');
  }
  if (header.width === 0 || header.height === 0) {
    throw new InvalidInputError(
      name,
      'image size',
      'has no pixels (width and height must be at least 1)',
      `${header.width}x${header.height}`,
    );
  }
  const pixels = header.width * header.height;
  const limit = limits().maxPixels;
  if (pixels > limit) {
    throw new InvalidInputError(
      name,
      'image size',
      `(${pixels} pixels) exceeds the limit of ${limit} pixels (maxPixels)`,
      `${header.width}x${header.height}`,
      raiseHint('maxPixels'),
    );
  }
  // The decoders allocate and convert the declared size whatever data follows, so a tiny file
  // declaring a large size costs seconds. No valid file is that small: deflate expands at most 1032
  // times, and a JPEG codes at least one bit per 8x8 block (progressive DC scan; baseline needs two).
  const least = leastFileBytes(bytes, header);
  if (bytes.length < least) {
    throw new InvalidInputError(
      name,
      'image data',
      `is too short for the declared ${header.width}x${header.height} (a valid ${kind} of that size has at least ${least} bytes)`,
      `(${bytes.length} bytes)`,
    );
  }
  return header;
}

/** The fewest bytes a valid file of the declared size can have (see checkImageHeader). */
function leastFileBytes(bytes: Uint8Array, header: ImageHeader): number {
  const pixels = header.width * header.height;
  if (header.format === 'jpeg') return Math.floor(pixels / 1024);
  // Bits per pixel from the IHDR colour type and depth; unknown types are the decoder's to refuse.
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[bytes[25]] ?? 1;
  const rowBytes = Math.ceil((header.width * channels * Math.max(1, bytes[24])) / 8) + 1;
  return Math.floor((rowBytes * header.height) / 1032);
}

/**
 * pngjs inflates an interlaced PNG's data with no bound on its size, so a few kilobytes of zlib can
 * expand to gigabytes whatever the header says. Inflating it here with the most an image of the
 * declared size can hold as the bound refuses such a file before pngjs sees it.
 */
function checkInterlacedInflate(bytes: Uint8Array, header: ImageHeader, name: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Uint8Array[] = [];
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === 'IDAT') parts.push(bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + length)));
    if (type === 'IEND') break;
    at += 12 + length;
  }
  // At most 8 bytes a pixel (16-bit RGBA), one filter byte a row for each of the 7 passes.
  const bound = header.width * header.height * 8 + 7 * (header.height + 1) + 1024;
  try {
    inflateSync(Buffer.concat(parts), { maxOutputLength: bound });
  } catch (err) {
    throw new InvalidInputError(
      name,
      'image data',
      `is not a decodable PNG (${(err as Error).message}; at most ${bound} bytes for ${header.width}x${header.height})`,
      '',
    );
  }
}

/**
 * Decodes a JPEG or PNG into 3-channel uint8 HWC. Greyscale is replicated into all three channels and
 * alpha is dropped, so every image of a folder dataset has the same channel count. `name` goes into
 * error messages. The declared size is checked against maxPixels first; every refusal is an
 * InvalidInputError.
 */
export function decodeImage(bytes: Uint8Array, name: string): RawImage {
  const format = sniffImageFormat(bytes);
  if (format === null) {
    throw new InvalidInputError(
      name,
      'image',
      'is neither a JPEG nor a PNG (leading bytes do not match either signature)',
      '',
    );
  }
  const header = checkImageHeader(bytes, format, name);
  if (format === 'jpeg') {
    let decoded: { width: number; height: number; data: Uint8Array };
    try {
      // RGB output: jpeg-js already expands 1-component (greyscale) JPEGs to three equal channels.
      // Its own bounds back the header check (a file may carry several frames).
      decoded = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        tolerantDecoding: false,
        maxResolutionInMP: limits().maxPixels / 1e6,
        maxMemoryUsageInMB: Math.max(64, Math.ceil((limits().maxPixels * 24) / 2 ** 20)),
      });
    } catch (err) {
      throw new InvalidInputError(name, 'image', `is not a decodable JPEG (${(err as Error).message})`, '');
    }
    if (
      decoded.width === 0 ||
      decoded.height === 0 ||
      decoded.data.length !== decoded.width * decoded.height * 3
    ) {
      throw new InvalidInputError(
        name,
        'image',
        `is not a decodable JPEG (decoder returned ${decoded.width}x${decoded.height})`,
        '',
      );
    }
    return { data: decoded.data, height: decoded.height, width: decoded.width };
  }
  if (header.interlaced) checkInterlacedInflate(bytes, header, name);
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new InvalidInputError(name, 'image', `is not a decodable PNG (${(err as Error).message})`, '');
  }
  // pngjs hands back RGBA whatever the colour type, greyscale included; keep RGB.
  const { width, height } = png;
  const rgba = png.data;
  if (width * height !== header.width * header.height || rgba.length < width * height * 4) {
    throw new InvalidInputError(
      name,
      'image',
      `is not a decodable PNG (decoder returned ${width}x${height})`,
      '',
    );
  }
  const data = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; p < data.length; p += 3, q += 4) {
    data[p] = rgba[q];
    data[p + 1] = rgba[q + 1];
    data[p + 2] = rgba[q + 2];
  }
  return { data, height, width };
}
