import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AnyImageDataset, ImageDataset, ImageListDataset, RawImage } from './dataset.js';
import { checkDataset, isFixedSize } from './dataset.js';

/**
 * Decoded-image cache files.
 *
 * Layout (little-endian):
 *   0  8  magic "STRATAIC"
 *   8  4  format version (1)
 *  12  4  kind: 0 fixed-size, 1 list
 *  16  4  image count N
 *  20  4  height (0 for lists)
 *  24  4  width (0 for lists)
 *  28  4  channels
 *  32  4  metadata length M (UTF-8 JSON: key, classes, sources)
 *  36  8  pixel byte count P (u64)
 *  44 32  sha256 of everything after the header
 *  76  M  metadata
 *      4N labels (int32)
 *      8N (lists only) height, width per image (u32 pairs)
 *      P  pixels, uint8 HWC, image after image
 * The file length must be exactly 76 + M + 4N (+ 8N) + P and the payload must hash to the header's
 * sha256; anything else counts as corrupt and is rebuilt.
 */
const MAGIC = 'STRATAIC';
export const CACHE_FORMAT_VERSION = 1;
const HEADER_BYTES = 76;

/** `$STRATA_CACHE`, else `~/.cache/strata`. */
export function cacheRoot(): string {
  const fromEnv = process.env.STRATA_CACHE;
  return fromEnv && fromEnv.trim() !== ''
    ? path.resolve(fromEnv)
    : path.join(os.homedir(), '.cache', 'strata');
}

/** sha256 of a file's full contents, streamed once (the archives are tens of MB; a partial hash would miss edits). */
export async function fileDigest(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Fingerprint of an unpacked folder: sha256 over every file's relative path, size and mtime. Hashing
 * the contents of a million-file ImageNet tree would cost as much as decoding it, so folders get this
 * weaker key; touch a file (or delete the cache) after editing one in place.
 */
export async function folderDigest(folder: string): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (dir: string, prefix: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      const rel = `${prefix}${entry.name}`;
      if (entry.isDirectory()) {
        hash.update(`d\0${rel}\0`);
        await visit(full, `${rel}/`);
      } else if (entry.isFile()) {
        const info = await stat(full);
        hash.update(`f\0${rel}\0${info.size}\0${info.mtimeMs}\0`);
      }
    }
  };
  await visit(folder, '');
  return hash.digest('hex');
}

interface CacheMeta {
  key: string;
  classes: string[];
  sources?: string[];
}

function* payloadParts(dataset: AnyImageDataset, meta: Buffer): Generator<Uint8Array> {
  yield meta;
  const labels = Buffer.alloc(dataset.labels.length * 4);
  dataset.labels.forEach((label, i) => labels.writeInt32LE(label, 4 * i));
  yield labels;
  if (isFixedSize(dataset)) {
    yield dataset.images;
    return;
  }
  const dims = Buffer.alloc(dataset.images.length * 8);
  dataset.images.forEach((image, i) => {
    dims.writeUInt32LE(image.height, 8 * i);
    dims.writeUInt32LE(image.width, 8 * i + 4);
  });
  yield dims;
  for (const image of dataset.images) yield image.data;
}

/** Writes the cache file atomically: a uniquely named temporary file in the same folder, then rename. */
export async function writeDatasetCache(file: string, dataset: AnyImageDataset, key: string): Promise<void> {
  checkDataset(dataset, file);
  const fixed = isFixedSize(dataset);
  const meta: CacheMeta = { key, classes: dataset.classes };
  if (dataset.sources) meta.sources = dataset.sources;
  const metaBytes = Buffer.from(JSON.stringify(meta), 'utf8');
  const pixelBytes = fixed
    ? dataset.images.length
    : (dataset as ImageListDataset).images.reduce((sum, im) => sum + im.data.length, 0);
  const hash = createHash('sha256');
  for (const part of payloadParts(dataset, metaBytes)) hash.update(part);
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, 'ascii');
  header.writeUInt32LE(CACHE_FORMAT_VERSION, 8);
  header.writeUInt32LE(fixed ? 0 : 1, 12);
  header.writeUInt32LE(dataset.labels.length, 16);
  header.writeUInt32LE(fixed ? dataset.height : 0, 20);
  header.writeUInt32LE(fixed ? dataset.width : 0, 24);
  header.writeUInt32LE(dataset.channels, 28);
  header.writeUInt32LE(metaBytes.length, 32);
  header.writeBigUInt64LE(BigInt(pixelBytes), 36);
  hash.digest().copy(header, 44);

  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.write(header);
    for (const part of payloadParts(dataset, metaBytes)) await handle.write(part);
    await handle.sync();
    await handle.close();
    await rename(tmp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

export type CacheReadResult = { ok: true; dataset: AnyImageDataset } | { ok: false; reason: string };

/**
 * Reads a cache file written by writeDatasetCache. Never throws for a bad file: returns the reason
 * (missing, short, wrong magic/version/key, length or checksum mismatch) so the caller can rebuild.
 */
export async function readDatasetCache(file: string, key: string): Promise<CacheReadResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    return {
      ok: false,
      reason: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    };
  }
  const fail = (why: string): CacheReadResult => ({ ok: false, reason: `${path.basename(file)}: ${why}` });
  if (bytes.length < HEADER_BYTES)
    return fail(`is ${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  if (bytes.toString('ascii', 0, 8) !== MAGIC) return fail('has no STRATAIC magic');
  const version = bytes.readUInt32LE(8);
  if (version !== CACHE_FORMAT_VERSION)
    return fail(`has format version ${version} (expected ${CACHE_FORMAT_VERSION})`);
  const kind = bytes.readUInt32LE(12);
  const count = bytes.readUInt32LE(16);
  const height = bytes.readUInt32LE(20);
  const width = bytes.readUInt32LE(24);
  const channels = bytes.readUInt32LE(28);
  const metaLength = bytes.readUInt32LE(32);
  const pixelBytes = Number(bytes.readBigUInt64LE(36));
  if (kind > 1) return fail(`has unknown kind ${kind}`);
  const expectedLength = HEADER_BYTES + metaLength + 4 * count + (kind === 1 ? 8 * count : 0) + pixelBytes;
  if (bytes.length !== expectedLength) {
    return fail(`is ${bytes.length} bytes but its header describes ${expectedLength}`);
  }
  if (kind === 0 && pixelBytes !== count * height * width * channels) {
    return fail(
      `header says ${pixelBytes} pixel bytes but ${count} images of ${height}x${width}x${channels}`,
    );
  }
  const digest = createHash('sha256').update(bytes.subarray(HEADER_BYTES)).digest();
  if (!digest.equals(bytes.subarray(44, 76))) return fail('payload does not match its sha256 (corrupt)');
  let meta: CacheMeta;
  try {
    meta = JSON.parse(bytes.toString('utf8', HEADER_BYTES, HEADER_BYTES + metaLength)) as CacheMeta;
  } catch {
    return fail('metadata is not valid JSON');
  }
  if (meta.key !== key) return fail('was built from different source data or options (key mismatch)');
  let at = HEADER_BYTES + metaLength;
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = bytes.readInt32LE(at + 4 * i);
  at += 4 * count;
  let dataset: AnyImageDataset;
  if (kind === 0) {
    const images = new Uint8Array(bytes.buffer, bytes.byteOffset + at, pixelBytes);
    const fixed: ImageDataset = { images, labels, height, width, channels, classes: meta.classes };
    dataset = fixed;
  } else {
    const dimsAt = at;
    at += 8 * count;
    const images: RawImage[] = [];
    for (let i = 0; i < count; i++) {
      const h = bytes.readUInt32LE(dimsAt + 8 * i);
      const w = bytes.readUInt32LE(dimsAt + 8 * i + 4);
      const size = h * w * channels;
      if (at + size > bytes.length) return fail(`image ${i} runs past the end of the file`);
      images.push({ data: new Uint8Array(bytes.buffer, bytes.byteOffset + at, size), height: h, width: w });
      at += size;
    }
    dataset = { images, labels, channels, classes: meta.classes };
  }
  if (meta.sources) dataset.sources = meta.sources;
  try {
    checkDataset(dataset, file);
  } catch (err) {
    return fail((err as Error).message);
  }
  return { ok: true, dataset };
}

export interface CachedOptions {
  /** Base of the file name (sanitised); the key's first 16 hex digits are appended. */
  name: string;
  /** Identifies the source content and every option that changes the decoded result. */
  key: string;
  /** Cache folder; default cacheRoot(). */
  dir?: string;
  log?: (message: string) => void;
}

export function cacheFilePath(options: Pick<CachedOptions, 'name' | 'key' | 'dir'>): string {
  const safe = options.name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'dataset';
  return path.join(options.dir ?? cacheRoot(), `${safe}-${options.key.slice(0, 16)}.bin`);
}

/** Returns the cached dataset, or builds it, stores it and returns it; a bad cache file is rebuilt. */
export async function cachedDataset(
  options: CachedOptions,
  build: () => Promise<AnyImageDataset>,
): Promise<AnyImageDataset> {
  const file = cacheFilePath(options);
  const existing = await readDatasetCache(file, options.key);
  if (existing.ok) {
    options.log?.(`data cache hit: ${file}`);
    return existing.dataset;
  }
  const missing = existing.reason.startsWith('cannot read') && existing.reason.includes('ENOENT');
  options.log?.(missing ? `data cache miss: building ${file}` : `data cache rebuilt: ${existing.reason}`);
  const dataset = await build();
  await writeDatasetCache(file, dataset, options.key);
  return dataset;
}
