import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';

/** True when the file starts with the gzip magic bytes, whatever its extension says. */
export async function isGzipFile(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/**
 * The file's bytes as a chunk stream, gunzipped on the fly when the file is gzip data. Errors from the
 * file system or from zlib come out as one Error naming the file, so a caller never sees a bare
 * "incorrect header check".
 */
export async function* openByteStream(file: string): AsyncGenerator<Buffer> {
  const name = path.basename(file);
  const gzip = await isGzipFile(file);
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  const source = gzip ? raw.pipe(createGunzip({ chunkSize: 1 << 18 })) : raw;
  if (gzip) raw.on('error', (err) => source.destroy(err));
  try {
    for await (const chunk of source) yield chunk as Buffer;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (gzip && !(err as NodeJS.ErrnoException).syscall) {
      throw new Error(`${name}: gzip data is corrupt or truncated (${reason})`, { cause: err });
    }
    throw err;
  } finally {
    raw.destroy();
    if (gzip) source.destroy();
  }
}

/**
 * Pulls exact byte counts out of a chunk stream. `read` copies only when a request straddles chunks,
 * so reading many small tar members or whole records stays cheap.
 */
export class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  /** Bytes consumed so far, for error messages that give an offset. */
  position = 0;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  static of(source: AsyncIterable<Buffer>): ByteReader {
    return new ByteReader(source[Symbol.asyncIterator]());
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.done) {
      const next = await this.source.next();
      if (next.done) {
        this.done = true;
      } else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
  }

  /** Exactly n bytes, or fewer only at the end of the stream (the caller reports truncation). */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.buffered);
    let out: Buffer;
    const first = this.chunks[0];
    if (first && first.length >= take) {
      out = first.subarray(0, take);
      if (first.length === take) this.chunks.shift();
      else this.chunks[0] = first.subarray(take);
    } else {
      out = Buffer.allocUnsafe(take);
      let filled = 0;
      while (filled < take) {
        const chunk = this.chunks[0];
        const part = Math.min(chunk.length, take - filled);
        chunk.copy(out, filled, 0, part);
        filled += part;
        if (part === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(part);
      }
    }
    this.buffered -= take;
    this.position += take;
    return out;
  }

  /** Reads into `target` until it is full or the stream ends; returns the number of bytes written. */
  async readInto(target: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < target.length) {
      await this.fill(1);
      if (this.buffered === 0) break;
      const chunk = this.chunks[0];
      const part = Math.min(chunk.length, target.length - filled);
      target.set(chunk.subarray(0, part), filled);
      filled += part;
      this.buffered -= part;
      this.position += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    return filled;
  }

  /** Skips n bytes; returns how many were actually there. */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n) {
      await this.fill(1);
      if (this.buffered === 0) break;
      const chunk = this.chunks[0];
      const part = Math.min(chunk.length, n - skipped);
      skipped += part;
      this.buffered -= part;
      this.position += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    return skipped;
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.buffered === 0;
  }

  /** Stops the underlying stream early (closes the file). */
  async close(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    if (!this.done) {
      this.done = true;
      await this.source.return?.();
    }
  }
}
