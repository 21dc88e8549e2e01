import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/engine/random.js';
import {
  StrataFormatError,
  StrataStreamReader,
  inspectStrata,
  readStrata,
  readStrataStream,
  writeStrata,
  type StrataPrecisionEvent,
} from '../../src/format/index.js';
import { smallContent } from './helpers.js';

function chunks(bytes: Uint8Array, random: Random, maxChunk: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = 1 + random.int(maxChunk);
    out.push(bytes.slice(at, at + n));
    at += n;
  }
  return out;
}

test('streaming with random chunk sizes reports each precision once, in order, as soon as its bytes are in', () => {
  const file = writeStrata(smallContent({ rule: 'round', distinctParams: true }));
  const info = inspectStrata(file);
  const random = new Random(5);
  for (const maxChunk of [1, 7, 64, 500, file.length]) {
    const events: StrataPrecisionEvent[] = [];
    let headers = 0;
    const reader = new StrataStreamReader({ onHeader: () => headers++, onPrecision: (e) => events.push(e) });
    const pieces = chunks(file, random, maxChunk);
    for (const piece of pieces) {
      const before = reader.bytesReceived;
      const done = reader.push(piece);
      for (const bits of done) {
        const completeAt = info.precisions.find((p) => p.bits === bits)?.completeAt as number;
        assert.ok(
          completeAt > before && completeAt <= reader.bytesReceived,
          `precision ${bits} reported late`,
        );
      }
    }
    assert.equal(headers, 1);
    assert.deepEqual(
      events.map((e) => e.bits),
      info.precisions.map((p) => p.bits),
    );
    for (const e of events) {
      const r = e.read();
      const expected = readStrata(file, { bits: e.bits });
      assert.deepEqual(
        [r.bits, r.layered, r.fixed, r.perPrecision],
        [e.bits, expected.layered, expected.fixed, expected.perPrecision],
      );
    }
    assert.ok(reader.complete);
    assert.equal(reader.end(), 8);
    assert.throws(() => reader.push(new Uint8Array(1)), { message: 'StrataStreamReader already ended.' });
  }
});

test('a stream that stops early ends at the highest precision it completed', () => {
  const file = writeStrata(smallContent());
  const info = inspectStrata(file);
  const reader = new StrataStreamReader();
  reader.push(file.subarray(0, info.precisions[2].completeAt + 3));
  assert.equal(reader.availableBits, 4);
  assert.equal(reader.end(), 4);
  assert.deepEqual(reader.read().layered, readStrata(file, { bits: 4 }).layered);
  assert.deepEqual(reader.read(3).layered, readStrata(file, { bits: 3 }).layered);
  assert.throws(() => reader.read(5), RangeError);

  const short = new StrataStreamReader();
  short.push(file.subarray(0, info.precisions[0].completeAt - 1));
  assert.equal(short.availableBits, null);
  assert.throws(() => short.end(), { name: 'StrataFormatError', code: 'TRUNCATED' });
});

test('the stream reader refuses corruption at the section it hits and stays failed', () => {
  const file = writeStrata(smallContent());
  const info = inspectStrata(file);
  const bad = file.slice();
  bad[info.precisions[3].completeAt - 20] ^= 0x10;
  const seen: number[] = [];
  const reader = new StrataStreamReader({ onPrecision: (e) => seen.push(e.bits) });
  let error: unknown = null;
  for (const piece of chunks(bad, new Random(1), 50)) {
    try {
      reader.push(piece);
    } catch (e) {
      error = e;
      break;
    }
  }
  assert.ok(error instanceof StrataFormatError);
  assert.equal(error.code, 'BAD_CHECKSUM');
  assert.match(error.message, /section enhance 5-bit checksum mismatch/);
  assert.deepEqual(seen, [2, 3, 4]);
  assert.throws(
    () => reader.push(new Uint8Array(1)),
    (e: unknown) => e === error,
  );

  const badMagic = new StrataStreamReader();
  const wrong = file.slice(0, 24);
  wrong[0] = 0x50;
  assert.throws(() => badMagic.push(wrong), { code: 'BAD_MAGIC' });

  const trailing = new StrataStreamReader();
  trailing.push(file);
  assert.throws(() => trailing.push(Uint8Array.of(0)), { code: 'TRAILING_DATA' });
});

test('readStrataStream drains a web ReadableStream and can stop (and cancel) once a precision is in', async () => {
  const file = writeStrata(smallContent());
  const info = inspectStrata(file);
  const pieces = chunks(file, new Random(9), 40);
  let pulled = 0;
  let cancelled = false;
  const stream = (): ReadableStream<Uint8Array> =>
    new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled < pieces.length) controller.enqueue(pieces[pulled++]);
        else controller.close();
      },
      cancel() {
        cancelled = true;
      },
    });
  const partial = await readStrataStream(stream(), { untilBits: 3 });
  assert.equal(partial.bits, 3);
  assert.ok(cancelled);
  assert.ok(partial.bytes.length < file.length && partial.bytes.length >= info.precisions[1].completeAt);
  assert.deepEqual(readStrata(partial.bytes, { bits: 3 }).layered, readStrata(file, { bits: 3 }).layered);

  pulled = 0;
  const whole = await readStrataStream(stream());
  assert.equal(whole.bits, 8);
  assert.deepEqual(whole.bytes, file);

  async function* generate(): AsyncGenerator<Uint8Array> {
    yield* pieces.slice(0, 5);
  }
  await assert.rejects(readStrataStream(generate()), { code: 'TRUNCATED' });
});
