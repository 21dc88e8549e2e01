/** Node-only helpers (node:fs); the rest of src/format/ runs in browsers too. */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StrataFormatError } from './errors.js';
import { parseHeader, parsePreamble } from './header.js';
import { PREAMBLE_BYTES } from './layout.js';
import { readStrata, type ReadStrataOptions } from './reader.js';
import { writeStrata } from './writer.js';
import type { StrataModelContent, StrataReadResult } from './types.js';

async function readAt(handle: import('node:fs/promises').FileHandle, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return out.subarray(0, done);
}

/**
 * Reads one precision from a .strata file, loading only the bytes that precision needs (the header, then the prefix
 * up to where it completes), so a 2-bit load of an 8-bit file reads about a quarter of it.
 */
export async function readStrataFile(
  path: string,
  options: ReadStrataOptions = {},
): Promise<StrataReadResult> {
  if (typeof path !== 'string' || path.length === 0)
    throw new TypeError('Expected non-empty string for path');
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const preamble = parsePreamble(await readAt(handle, Math.min(size, PREAMBLE_BYTES)));
    const header = parseHeader(await readAt(handle, Math.min(size, preamble.dataStart)));
    if (size > header.fileLength) {
      throw new StrataFormatError(
        'TRAILING_DATA',
        `.strata file ${path} has ${size - header.fileLength} bytes after its last section`,
      );
    }
    const wanted =
      options.bits === undefined
        ? undefined
        : header.precisions.find((p) => p.bits === options.bits)?.completeAt;
    const prefix = await readAt(handle, Math.min(size, wanted ?? size));
    return readStrata(prefix, options);
  } catch (e) {
    if (e instanceof StrataFormatError) e.message = `${e.message} (file ${path})`;
    throw e;
  } finally {
    await handle.close();
  }
}

/**
 * Writes atomically: a temporary file in the same directory, flushed, then renamed over `path`, so readers never see
 * a half-written model and a crash leaves the old file intact.
 */
export async function writeStrataFile(
  path: string,
  content: StrataModelContent | Uint8Array,
): Promise<number> {
  if (typeof path !== 'string' || path.length === 0)
    throw new TypeError('Expected non-empty string for path');
  const bytes = content instanceof Uint8Array ? content : writeStrata(content);
  await writeFileAtomic(path, bytes);
  return bytes.length;
}

/**
 * Any output file (a model, an ONNX export): written whole to a temporary file beside `path`,
 * flushed, then renamed over it, so a refusal or a crash never leaves a partial file or replaces a
 * good one.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
