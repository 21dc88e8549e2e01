import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
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

/**
 * Decodes a JPEG or PNG into 3-channel uint8 HWC. Greyscale is replicated into all three channels and
 * alpha is dropped, so every image of a folder dataset has the same channel count. `name` goes into
 * error messages.
 */
export function decodeImage(bytes: Uint8Array, name: string): RawImage {
  const format = sniffImageFormat(bytes);
  if (format === null) {
    throw new Error(`${name} is neither a JPEG nor a PNG (leading bytes do not match either signature)`);
  }
  if (format === 'jpeg') {
    let decoded: { width: number; height: number; data: Uint8Array };
    try {
      // RGB output: jpeg-js already expands 1-component (greyscale) JPEGs to three equal channels.
      decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
    } catch (err) {
      throw new Error(`${name} is not a decodable JPEG (${(err as Error).message})`, { cause: err });
    }
    if (
      decoded.width === 0 ||
      decoded.height === 0 ||
      decoded.data.length !== decoded.width * decoded.height * 3
    ) {
      throw new Error(
        `${name} is not a decodable JPEG (decoder returned ${decoded.width}x${decoded.height})`,
      );
    }
    return { data: decoded.data, height: decoded.height, width: decoded.width };
  }
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new Error(`${name} is not a decodable PNG (${(err as Error).message})`, { cause: err });
  }
  // pngjs hands back RGBA whatever the colour type, greyscale included; keep RGB.
  const { width, height } = png;
  const rgba = png.data;
  const data = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; p < data.length; p += 3, q += 4) {
    data[p] = rgba[q];
    data[p + 1] = rgba[q + 1];
    data[p + 2] = rgba[q + 2];
  }
  return { data, height, width };
}
