// Writers for small files in the official formats, used by the data tests. Everything goes under
// os.tmpdir(); nothing is read from or written to the repository.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

export function makeTempDir(t: { after: (fn: () => void) => void }, label = 'strata-data-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), label));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function idxBytes(dims: number[], data: Uint8Array, magicOverride?: number): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magicOverride ?? 0x0800 + dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

export function writeFile(file: string, bytes: Uint8Array, gzip = false): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, gzip ? gzipSync(bytes) : bytes);
  return file;
}

/** Pixel value of test image `index` at (y, x, c): distinct enough to catch layout mistakes. */
export function pattern(index: number, y: number, x: number, c: number): number {
  return (index * 37 + y * 11 + x * 3 + c * 101) % 256;
}

/** CIFAR records: labelBytes label bytes, then 3072 bytes channel-major (CHW). */
export function cifarRecord(labels: number[], index: number): Buffer {
  const record = Buffer.alloc(labels.length + 3072);
  labels.forEach((l, i) => (record[i] = l));
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) record[labels.length + c * 1024 + y * 32 + x] = pattern(index, y, x, c);
    }
  }
  return record;
}

export function rgbImage(height: number, width: number, seed: number, channels = 3): Uint8Array {
  const data = new Uint8Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = pattern(seed, y, x, c);
    }
  }
  return data;
}

/** PNG from RGB pixels, or greyscale (colorType 0) when `grey` is set. */
export function encodePng(
  rgb: Uint8Array,
  height: number,
  width: number,
  options: { grey?: boolean } = {},
): Buffer {
  const png = new PNG({ width, height });
  for (let p = 0; p < height * width; p++) {
    png.data[4 * p] = rgb[3 * p];
    png.data[4 * p + 1] = options.grey ? rgb[3 * p] : rgb[3 * p + 1];
    png.data[4 * p + 2] = options.grey ? rgb[3 * p] : rgb[3 * p + 2];
    png.data[4 * p + 3] = 255;
  }
  return PNG.sync.write(png, options.grey ? { colorType: 0 } : { colorType: 2 });
}

/** Flat-colour JPEG (flat so that lossy coding leaves the colour within a few levels). */
export function encodeJpeg(height: number, width: number, rgb: [number, number, number]): Buffer {
  const data = Buffer.alloc(height * width * 4);
  for (let p = 0; p < height * width; p++) {
    data[4 * p] = rgb[0];
    data[4 * p + 1] = rgb[1];
    data[4 * p + 2] = rgb[2];
    data[4 * p + 3] = 255;
  }
  return jpeg.encode({ data, width, height }, 95).data;
}

export interface TarMember {
  name: string;
  data?: Uint8Array;
  directory?: boolean;
}

function tarHeader(name: string, size: number, type: string): Buffer {
  const header = Buffer.alloc(512);
  header.write(name.slice(0, 100), 0, 'utf8');
  header.write('0000644\0', 100, 'ascii');
  header.write('0000000\0', 108, 'ascii');
  header.write('0000000\0', 116, 'ascii');
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  header.write('00000000000\0', 136, 'ascii');
  header.write('        ', 148, 'ascii');
  header.write(type, 156, 'ascii');
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return header;
}

function padded(data: Uint8Array): Buffer[] {
  const rest = (512 - (data.length % 512)) % 512;
  return [Buffer.from(data), Buffer.alloc(rest)];
}

/**
 * A minimal ustar writer. Names over 100 bytes use a GNU 'L' record, or a pax 'path' record when
 * `longNames` is 'pax'.
 */
export function tarBytes(members: TarMember[], longNames: 'gnu' | 'pax' = 'gnu'): Buffer {
  const parts: Buffer[] = [];
  for (const member of members) {
    const name = member.directory && !member.name.endsWith('/') ? `${member.name}/` : member.name;
    const data = member.data ?? new Uint8Array(0);
    if (Buffer.byteLength(name) > 100) {
      if (longNames === 'gnu') {
        const longName = Buffer.from(`${name}\0`);
        parts.push(tarHeader('././@LongLink', longName.length, 'L'), ...padded(longName));
      } else {
        const body = ` path=${name}\n`;
        let length = body.length;
        while (`${length}${body}`.length !== length) length = `${length}${body}`.length;
        const record = Buffer.from(`${length}${body}`);
        parts.push(tarHeader('PaxHeader', record.length, 'x'), ...padded(record));
      }
    }
    parts.push(tarHeader(name, member.directory ? 0 : data.length, member.directory ? '5' : '0'));
    if (!member.directory) parts.push(...padded(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
