/**
 * Training checkpoints: one binary file holding named float32 arrays and a JSON description,
 * protected by a CRC-32, written atomically (temporary file, fsync, rename). The previous
 * checkpoint is kept as `<name>.prev` until the new one is complete, so a crash or a corrupt file
 * never loses more than one epoch.
 *
 * Layout: "STRCKPT1" | u32 header bytes | header JSON | pad to 4 | float32 payload | u32 CRC-32 of
 * everything before it. All integers little-endian.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
  mkdirSync,
  rmSync,
} from 'node:fs';
import { limits, raiseHint } from '../engine/limits.js';
import { dirname } from 'node:path';
import { crc32 } from '../format/crc32.js';

const MAGIC = 'STRCKPT1';

export class CheckpointError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`checkpoint ${path}: ${message}`);
    this.name = 'CheckpointError';
  }
}

export interface CheckpointContent {
  /** Any JSON-serialisable description (config, epoch, optimizer scalars, RNG state, metrics). */
  meta: Record<string, unknown>;
  arrays: Map<string, Float32Array>;
}

interface ArrayEntry {
  name: string;
  offset: number;
  length: number;
}

export function encodeCheckpoint(content: CheckpointContent): Uint8Array {
  const entries: ArrayEntry[] = [];
  let floats = 0;
  for (const [name, arr] of content.arrays) {
    entries.push({ name, offset: floats, length: arr.length });
    floats += arr.length;
  }
  const header = new TextEncoder().encode(
    JSON.stringify({ version: 1, meta: content.meta, arrays: entries }),
  );
  const headerEnd = 12 + header.length;
  const payloadStart = Math.ceil(headerEnd / 4) * 4;
  const total = payloadStart + floats * 4 + 4;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, header.length, true);
  bytes.set(header, 12);
  const payload = new Float32Array(bytes.buffer, payloadStart, floats);
  for (const e of entries) payload.set(content.arrays.get(e.name)!, e.offset);
  view.setUint32(total - 4, crc32(bytes.subarray(0, total - 4)), true);
  return bytes;
}

export function decodeCheckpoint(bytes: Uint8Array, path = '<memory>'): CheckpointContent {
  const fail = (msg: string): never => {
    throw new CheckpointError(path, msg);
  };
  if (bytes.length < 16) fail(`truncated (${bytes.length} bytes; a checkpoint has at least 16)`);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) fail('not a Strata checkpoint (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  const maxHeader = limits().maxCheckpointHeaderBytes;
  if (headerLength > maxHeader) {
    fail(
      `header length ${headerLength} exceeds the limit of ${maxHeader} bytes (maxCheckpointHeaderBytes); ${raiseHint('maxCheckpointHeaderBytes')}`,
    );
  }
  if (12 + headerLength + 4 > bytes.length) {
    fail(`truncated or corrupt: header of ${headerLength} bytes does not fit in ${bytes.length} bytes`);
  }
  const stored = view.getUint32(bytes.length - 4, true);
  const actual = crc32(bytes.subarray(0, bytes.length - 4));
  if (stored !== actual) {
    fail(
      `corrupt or truncated: checksum ${actual.toString(16)} does not match the stored ${stored.toString(16)}`,
    );
  }
  let header: { version: unknown; meta: unknown; arrays: unknown };
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + headerLength)),
    );
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header.version !== 1)
    fail(`unsupported version ${String(header.version)} (this Strata reads version 1)`);
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('header is not a JSON object');
  const meta = header.meta;
  const entries = header.arrays;
  if (!Array.isArray(entries) || typeof meta !== 'object' || meta === null || Array.isArray(meta))
    fail('header lacks arrays or meta');
  const payloadStart = Math.ceil((12 + headerLength) / 4) * 4;
  const floats = (bytes.length - 4 - payloadStart) / 4;
  if (!Number.isInteger(floats) || floats < 0) fail('payload size is not a whole number of float32 values');
  const aligned = new Uint8Array(bytes.subarray(payloadStart, payloadStart + floats * 4));
  const payload = new Float32Array(aligned.buffer, 0, floats);
  const arrays = new Map<string, Float32Array>();
  for (const raw of entries as unknown[]) {
    // Each entry is checked as the untyped JSON it is: a CRC only proves the writer meant it.
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      fail(`array entry ${String(JSON.stringify(raw)).slice(0, 80)} is not an object`);
    }
    const e = raw as Partial<ArrayEntry>;
    if (
      typeof e.name !== 'string' ||
      typeof e.offset !== 'number' ||
      typeof e.length !== 'number' ||
      !Number.isSafeInteger(e.offset) ||
      !Number.isSafeInteger(e.length) ||
      e.offset < 0 ||
      e.length < 0
    ) {
      fail(`array entry ${JSON.stringify(e).slice(0, 80)} is malformed`);
    }
    const { name, offset, length } = e as ArrayEntry;
    if (offset + length > floats)
      fail(`array '${name}' ends past the payload (${offset + length} > ${floats})`);
    if (arrays.has(name)) fail(`array '${name}' appears twice`);
    arrays.set(name, payload.slice(offset, offset + length));
  }
  return { meta: meta as Record<string, unknown>, arrays };
}

/** Writes atomically; the file previously at `path` becomes `path.prev`. */
export function saveCheckpoint(path: string, content: CheckpointContent): void {
  mkdirSync(dirname(path), { recursive: true });
  const bytes = encodeCheckpoint(content);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    // A failed write (disk full) leaves neither a partial checkpoint nor a stray temporary file.
    rmSync(tmp, { force: true });
    throw e;
  }
  if (existsSync(path)) renameSync(path, `${path}.prev`);
  renameSync(tmp, path);
}

export function loadCheckpoint(path: string): CheckpointContent {
  if (!existsSync(path)) throw new CheckpointError(path, 'file not found');
  return decodeCheckpoint(readFileSync(path), path);
}

/**
 * The newest readable checkpoint among `path` and `path.prev`, with the reason the newer one was
 * refused (a run killed while writing leaves at worst a corrupt newest file).
 */
export function loadLatestCheckpoint(
  path: string,
): { content: CheckpointContent; from: string; refused: string | null } | null {
  let refused: string | null = null;
  for (const candidate of [path, `${path}.prev`]) {
    if (!existsSync(candidate)) continue;
    try {
      return { content: loadCheckpoint(candidate), from: candidate, refused };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      refused = e.message;
    }
  }
  if (refused !== null) throw new CheckpointError(path, `no readable checkpoint: ${refused}`);
  return null;
}
