import { StrataFormatError } from './errors.js';
import { parseHeader, parsePreamble, type Preamble } from './header.js';
import { PREAMBLE_BYTES } from './layout.js';
import { decodePrecision, verifySection } from './reader.js';
import type { StrataHeader, StrataReadResult } from './types.js';

export interface StrataPrecisionEvent {
  bits: number;
  bytesReceived: number;
  header: StrataHeader;
  /** Decodes this precision from the bytes received so far. */
  read(): StrataReadResult;
}

export interface StrataStreamOptions {
  onHeader?: (header: StrataHeader) => void;
  onPrecision?: (event: StrataPrecisionEvent) => void;
}

/**
 * Incremental reader for a .strata byte stream (fetch body, socket, file chunks). Each time the bytes of another
 * precision are complete and their checksum holds, it reports that precision, so a client can start with the basic
 * layer and refine as enhance layers arrive. Uses only Uint8Array, DataView and TextDecoder (browser and Node).
 *
 * Memory grows with the bytes actually received, never with sizes the header claims.
 */
export class StrataStreamReader {
  private buffer = new Uint8Array(0);
  private received = 0;
  private preamble: Preamble | null = null;
  private parsed: StrataHeader | null = null;
  private nextSection = 0;
  private failure: StrataFormatError | null = null;
  private ended = false;

  constructor(private readonly options: StrataStreamOptions = {}) {}

  get header(): StrataHeader | null {
    return this.parsed;
  }

  get bytesReceived(): number {
    return this.received;
  }

  /** Highest precision complete and verified so far, or null. */
  get availableBits(): number | null {
    if (this.parsed === null || this.nextSection === 0) return null;
    return this.parsed.sections[this.nextSection - 1].bits;
  }

  /** True once every precision the file holds has arrived. */
  get complete(): boolean {
    return this.parsed !== null && this.nextSection === this.parsed.sections.length;
  }

  /** The bytes received so far (a view, valid until the next push). */
  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.received);
  }

  /** Adds a chunk and returns the precisions it completed, in increasing order. */
  push(chunk: Uint8Array): number[] {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('Expected Uint8Array for chunk');
    if (this.failure !== null) throw this.failure;
    if (this.ended) throw new Error('StrataStreamReader already ended.');
    this.append(chunk);
    try {
      return this.advance();
    } catch (e) {
      if (e instanceof StrataFormatError) this.failure = e;
      throw e;
    }
  }

  /** Declares the stream finished; returns the highest complete precision, or throws TRUNCATED if none. */
  end(): number {
    if (this.failure !== null) throw this.failure;
    this.ended = true;
    const bits = this.availableBits;
    if (bits === null) {
      this.failure = new StrataFormatError(
        'TRUNCATED',
        `Truncated .strata stream: ended after ${this.received} bytes, before its lowest precision was complete`,
      );
      throw this.failure;
    }
    return bits;
  }

  /** Decodes a received precision (default: the highest available). */
  read(bits?: number): StrataReadResult {
    if (this.failure !== null) throw this.failure;
    const available = this.availableBits;
    if (this.parsed === null || available === null) {
      throw new Error('StrataStreamReader has no complete precision yet.');
    }
    const target = bits ?? available;
    const end = this.parsed.precisions.find((p) => p.bits === target)?.completeAt;
    if (end === undefined || target > available) {
      throw new RangeError(
        `Expected bits in [${this.parsed.quantization.minBits}, ${available}] but received ${target}`,
      );
    }
    // Its sections were verified as they arrived, and its header parsed: decoded as they are.
    return decodePrecision(this.bytes(), this.parsed, target);
  }

  private append(chunk: Uint8Array): void {
    const needed = this.received + chunk.length;
    if (needed > this.buffer.length) {
      const grown = new Uint8Array(Math.max(needed, 2 * this.buffer.length, 4096));
      grown.set(this.bytes());
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.received);
    this.received = needed;
  }

  private advance(): number[] {
    if (this.preamble === null) {
      if (this.received < PREAMBLE_BYTES) return [];
      this.preamble = parsePreamble(this.bytes());
    }
    if (this.parsed === null) {
      if (this.received < this.preamble.dataStart) return [];
      this.parsed = parseHeader(this.bytes());
      this.options.onHeader?.(this.parsed);
    }
    const header = this.parsed;
    if (this.received > header.fileLength) {
      throw new StrataFormatError(
        'TRAILING_DATA',
        `.strata stream continues past its declared length of ${header.fileLength} bytes`,
      );
    }
    const completed: number[] = [];
    while (this.nextSection < header.sections.length) {
      const s = header.sections[this.nextSection];
      if (s.offset + s.length > this.received) break;
      verifySection(this.bytes(), header, this.nextSection);
      this.nextSection++;
      completed.push(s.bits);
    }
    for (const bits of completed) {
      const snapshot = this.received;
      this.options.onPrecision?.({ bits, bytesReceived: snapshot, header, read: () => this.read(bits) });
    }
    return completed;
  }
}

export interface ReadStrataStreamOptions extends StrataStreamOptions {
  /** Stop reading (and cancel the source) once this precision is complete. */
  untilBits?: number;
}

export interface StrataStreamResult {
  header: StrataHeader;
  bits: number;
  /** The bytes received: a valid prefix that holds `bits`. */
  bytes: Uint8Array;
}

function isReadableStream(source: unknown): source is ReadableStream<Uint8Array> {
  return (
    typeof source === 'object' &&
    source !== null &&
    typeof (source as ReadableStream).getReader === 'function'
  );
}

/** Drains a web ReadableStream (e.g. `fetch(url).body`) or any async iterable of chunks through a StrataStreamReader. */
export async function readStrataStream(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: ReadStrataStreamOptions = {},
): Promise<StrataStreamResult> {
  const reader = new StrataStreamReader(options);
  const reached = (): boolean =>
    options.untilBits !== undefined && (reader.availableBits ?? -Infinity) >= options.untilBits;
  if (isReadableStream(source)) {
    const stream = source.getReader();
    try {
      while (!reached()) {
        const { done, value } = await stream.read();
        if (done) break;
        reader.push(value);
      }
      if (reached()) await stream.cancel();
    } catch (e) {
      // Stops the transfer (e.g. an HTTP download) instead of leaving it running for bytes nobody will read.
      await stream.cancel(e).catch(() => undefined);
      throw e;
    } finally {
      stream.releaseLock();
    }
  } else {
    for await (const chunk of source) {
      reader.push(chunk);
      if (reached()) break;
    }
  }
  const bits = reached() ? (reader.availableBits as number) : reader.end();
  return { header: reader.header as StrataHeader, bits, bytes: reader.bytes().slice() };
}
