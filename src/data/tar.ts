import path from 'node:path';
import { ByteReader, openByteStream } from './byte-stream.js';

/** One member of a tar archive. `data` holds the contents of included regular files, else null. */
export interface TarEntry {
  /** Position among the archive's real members (long-name and pax records do not count). */
  index: number;
  name: string;
  type: 'file' | 'directory' | 'other';
  size: number;
  data: Buffer | null;
}

export interface ReadTarOptions {
  /** Which regular files to load into memory; the rest are skipped without buffering. Default: all. */
  include?: (name: string) => boolean;
}

const BLOCK = 512;

function field(header: Buffer, offset: number, length: number): string {
  const slice = header.subarray(offset, offset + length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end === -1 ? length : end).toString('utf8');
}

/** Numeric fields are octal text, or big-endian base-256 when the top bit is set (GNU, for sizes >= 8 GiB). */
function numberField(header: Buffer, offset: number, length: number): number {
  if (header[offset] & 0x80) {
    let value = header[offset] & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + header[offset + i];
    return value;
  }
  const text = field(header, offset, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return Number.NaN;
  return parseInt(text, 8);
}

function checksumMatches(header: Buffer): { stored: number; computed: number; ok: boolean } {
  const stored = numberField(header, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : header[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  // Some old writers summed signed chars; both sums are accepted like GNU tar does.
  return { stored, computed: unsigned, ok: stored === unsigned || stored === signed };
}

/** pax extended header records: "<length> <key>=<value>\n". */
function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const length = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isInteger(length) || length <= 0 || pos + length > data.length) break;
    const record = data.subarray(space + 1, pos + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return out;
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * Streams the members of a .tar or .tar.gz (gzip is recognised by its magic bytes). Understands ustar
 * (name prefix), GNU long names ('L') and pax 'path'/'size' records; links and devices come out as
 * type 'other'. Reads the archive once, front to back, holding one member at a time.
 */
export async function* readTar(file: string, options: ReadTarOptions = {}): AsyncGenerator<TarEntry> {
  const archive = path.basename(file);
  const reader = ByteReader.of(openByteStream(file));
  const include = options.include ?? (() => true);
  let index = 0;
  let longName: string | null = null;
  let pax = new Map<string, string>();
  try {
    while (true) {
      const offset = reader.position;
      const header = await reader.read(BLOCK);
      if (header.length === 0) return;
      if (header.length < BLOCK) {
        throw new Error(
          `${archive}: header of entry ${index} at byte ${offset} is truncated (expected ${BLOCK} bytes, got ${header.length})`,
        );
      }
      if (isZeroBlock(header)) return;
      const sum = checksumMatches(header);
      if (!sum.ok) {
        throw new Error(
          `${archive}: header of entry ${index} at byte ${offset} has a bad checksum ` +
            `(stored ${Number.isNaN(sum.stored) ? 'not a number' : sum.stored}, computed ${sum.computed}); ` +
            'the file is not a tar archive or is corrupt',
        );
      }
      const typeFlag = String.fromCharCode(header[156] || 0x30);
      let name = field(header, 0, 100);
      const magic = field(header, 257, 6);
      if (magic.startsWith('ustar')) {
        const prefix = field(header, 345, 155);
        if (prefix !== '' && magic === 'ustar') name = `${prefix}/${name}`;
      }
      let size = numberField(header, 124, 12);
      if (pax.has('size')) size = Number(pax.get('size'));
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new Error(`${archive}: entry ${index} ('${name}') has an invalid size field`);
      }
      const padded = Math.ceil(size / BLOCK) * BLOCK;

      if (typeFlag === 'L' || typeFlag === 'x' || typeFlag === 'g' || typeFlag === 'K') {
        const data = await reader.read(size);
        if (data.length < size) {
          throw new Error(
            `${archive}: extended header before entry ${index} is truncated (expected ${size} bytes, got ${data.length})`,
          );
        }
        await reader.skip(padded - size);
        if (typeFlag === 'L') longName = field(data, 0, data.length);
        else if (typeFlag === 'x') pax = parsePax(data);
        continue;
      }

      if (longName !== null) name = longName;
      if (pax.has('path')) name = pax.get('path') as string;
      longName = null;
      pax = new Map();

      const type = typeFlag === '0' || typeFlag === '7' ? 'file' : typeFlag === '5' ? 'directory' : 'other';
      if (type === 'directory' && !name.endsWith('/')) name += '/';
      let data: Buffer | null = null;
      if (type === 'file' && include(name)) {
        data = await reader.read(size);
        if (data.length < size) {
          throw new Error(
            `${archive}: entry ${index} ('${name}') is truncated (expected ${size} bytes of data, got ${data.length})`,
          );
        }
        await reader.skip(padded - size);
      } else {
        const skipped = await reader.skip(padded);
        if (skipped < size) {
          throw new Error(
            `${archive}: entry ${index} ('${name}') is truncated (expected ${size} bytes of data, got ${skipped})`,
          );
        }
      }
      yield { index, name, type, size, data };
      index++;
    }
  } finally {
    await reader.close();
  }
}

/** True for names that look like tar archives this module reads. */
export function isTarPath(file: string): boolean {
  return /\.(tar|tar\.gz|tgz)$/i.test(file);
}
