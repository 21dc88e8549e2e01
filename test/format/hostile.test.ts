import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StrataFormatError,
  MAX_HEADER_BYTES,
  crc32,
  extractStrata,
  inspectStrata,
  readStrata,
  writeStrata,
  type StrataErrorCode,
} from '../../src/format/index.js';
import { headerJson, smallContent, withHeader, type RawHeader } from './helpers.js';

const valid = writeStrata(smallContent());
const info = inspectStrata(valid);

function refuses(bytes: Uint8Array, code: StrataErrorCode, message?: RegExp): void {
  assert.throws(
    () => readStrata(bytes),
    (e: unknown) => {
      assert.ok(e instanceof StrataFormatError, `expected StrataFormatError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      if (message) assert.match(e.message, message);
      return true;
    },
  );
}

function patched(edit: (bytes: Uint8Array, view: DataView) => void): Uint8Array {
  const bytes = valid.slice();
  edit(bytes, new DataView(bytes.buffer));
  return bytes;
}

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  const data = valid.subarray(100, 900);
  assert.equal(crc32(data.subarray(300), crc32(data.subarray(0, 300))), crc32(data));
});

test('preamble: empty, short, bad magic, other major version, absurd or zero header length, reserved bytes', () => {
  refuses(new Uint8Array(0), 'TRUNCATED', /preamble alone needs 24/);
  refuses(valid.subarray(0, 23), 'TRUNCATED');
  refuses(
    patched((b) => (b[3] = 0x42)),
    'BAD_MAGIC',
  );
  refuses(new TextEncoder().encode('{"architecture": {}}'.padEnd(64)), 'BAD_MAGIC');
  refuses(
    patched((_, v) => v.setUint16(8, 2, true)),
    'UNSUPPORTED_VERSION',
    /version 2\.0/,
  );
  // A newer minor version of the same major stays readable.
  assert.equal(readStrata(patched((_, v) => v.setUint16(10, 7, true))).bits, 8);
  refuses(
    patched((_, v) => v.setUint32(12, 0xffffffff, true)),
    'HEADER_TOO_LARGE',
  );
  refuses(
    patched((_, v) => v.setUint32(12, MAX_HEADER_BYTES + 1, true)),
    'HEADER_TOO_LARGE',
    /exceeds the limit of 4194304 bytes/,
  );
  refuses(
    patched((_, v) => v.setUint32(12, MAX_HEADER_BYTES, true)),
    'TRUNCATED',
  );
  refuses(
    patched((_, v) => v.setUint32(12, 0, true)),
    'BAD_HEADER',
  );
  refuses(
    patched((_, v) => v.setUint32(20, 1, true)),
    'BAD_HEADER',
    /reserved/,
  );
});

test('checksums: a flipped bit in the header or in any section is caught and the section is named', () => {
  refuses(
    patched((b) => (b[40] ^= 0x01)),
    'BAD_CHECKSUM',
    /header checksum mismatch/,
  );
  refuses(
    patched((_, v) => v.setUint32(16, v.getUint32(16, true) ^ 0x100, true)),
    'BAD_CHECKSUM',
  );
  for (const p of info.precisions) {
    const corrupt = patched((b) => (b[p.completeAt - 30] ^= 0x80));
    const name = p.bits === 2 ? 'basic \\(2-bit\\)' : `enhance ${p.bits}-bit`;
    refuses(corrupt, 'BAD_CHECKSUM', new RegExp(`section ${name} checksum mismatch`));
    assert.throws(() => extractStrata(corrupt, 8), { code: 'BAD_CHECKSUM' });
    // Lower precisions do not depend on the corrupt section, so they still load.
    if (p.bits > 2) assert.equal(readStrata(corrupt, { bits: p.bits - 1 }).bits, p.bits - 1);
  }
});

test('header JSON that is not JSON, not UTF-8, too deep, or missing fields is refused as BAD_HEADER', () => {
  const rawHeader = (text: Uint8Array): Uint8Array => {
    const start = Math.ceil((24 + text.length) / 8) * 8;
    const out = new Uint8Array(start);
    out.set(valid.subarray(0, 24));
    const v = new DataView(out.buffer);
    v.setUint32(12, text.length, true);
    v.setUint32(16, crc32(text), true);
    out.set(text, 24);
    return out;
  };
  refuses(rawHeader(new TextEncoder().encode('{"architecture": ')), 'BAD_HEADER', /not valid UTF-8 JSON/);
  refuses(rawHeader(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)), 'BAD_HEADER');
  refuses(rawHeader(new TextEncoder().encode('[1, 2]')), 'BAD_HEADER');
  refuses(
    rawHeader(new TextEncoder().encode('['.repeat(100000) + ']'.repeat(100000))),
    'BAD_HEADER',
    /deeper than 64/,
  );
  const edits: [string, (h: RawHeader) => void, RegExp][] = [
    ['missing architecture', (h) => delete h.architecture, /missing header\.architecture/],
    ['rule', (h) => ((h.quantization as Record<string, unknown>).rule = 'nearest'), /quantization\.rule/],
    ['minBits > topBits', (h) => ((h.quantization as Record<string, unknown>).minBits = 9), /minBits/],
    ['topBits 40', (h) => ((h.quantization as Record<string, unknown>).topBits = 40), /topBits/],
    [
      'duplicate names',
      (h) => ((h.fixed as [string, number[]][])[0][0] = 'conv1.weight'),
      /'conv1.weight' twice/,
    ],
    ['empty name', (h) => ((h.layered as [string, number[]][])[1][0] = ''), /layered\[1\]\[0\]/],
    ['entry not a pair', (h) => ((h.layered as unknown[])[0] = { name: 'x', shape: [1] }), /\[name, shape\]/],
    ['params index', (h) => (h.sections[1].params = 5), /sections\[1\]\.params/],
    ['section bits', (h) => (h.sections[2].bits = 7), /section 2 must hold precision 4/],
    ['too many sections', (h) => h.sections.push({ ...h.sections[6] }), /limit 7/],
    ['no sections', (h) => (h.sections = []), /no sections/],
    ['precisions count', (h) => h.precisions.pop(), /7 sections/],
    [
      'too many tensors',
      (h) => (h.layered = Array.from({ length: 65537 }, (_, i) => [`t${i}`, [1]])),
      /limit 65536/,
    ],
    ['metadata type', (h) => (h.metadata = [1]), /metadata must be an object/],
  ];
  for (const [what, edit, message] of edits) {
    assert.throws(
      () => readStrata(withHeader(valid, edit)),
      (e: unknown) => e instanceof StrataFormatError && e.code === 'BAD_HEADER' && message.test(e.message),
      what,
    );
  }
});

test('offsets: overlapping, out-of-range, non-integer sections and wrong completeAt are INVALID_OFFSET', () => {
  const cases: [string, (h: RawHeader) => void][] = [
    ['overlap with the previous section', (h) => (h.sections[3].offset -= 8)],
    ['gap after the previous section', (h) => (h.sections[3].offset += 8)],
    ['first section inside the header', (h) => (h.sections[0].offset = 16)],
    ['offset far past the end', (h) => (h.sections[6].offset = 2 ** 52)],
    ['negative offset', (h) => (h.sections[0].offset = -8)],
    ['fractional offset', (h) => (h.sections[1].offset += 0.5)],
    ['string offset', (h) => ((h.sections[1] as Record<string, unknown>).offset = '1000')],
    ['length past 2^53', (h) => (h.sections[6].length = Number.MAX_SAFE_INTEGER)],
    ['completeAt disagrees', (h) => (h.precisions[2].completeAt += 8)],
  ];
  for (const [what, edit] of cases) {
    assert.throws(
      () => readStrata(withHeader(valid, edit, { keepOffsets: true })),
      (e: unknown) => e instanceof StrataFormatError && e.code === 'INVALID_OFFSET',
      what,
    );
  }
  refuses(
    withHeader(valid, (h) => (h.sections[4].offset += 8), { keepOffsets: true }),
    'INVALID_OFFSET',
    /enhance 6-bit/,
  );
});

test('shapes: NaN, fractions, zero, huge dims and rank are BAD_SHAPE; dims that disagree with the bytes are SIZE_MISMATCH', () => {
  const shapeOf = (h: RawHeader, table: string, i: number): number[] =>
    (h[table] as [string, number[]][])[i][1];
  const bad: [string, (h: RawHeader) => void][] = [
    ['NaN (serialized as null)', (h) => (shapeOf(h, 'layered', 0)[1] = NaN)],
    ['string dim', (h) => ((shapeOf(h, 'layered', 0) as unknown[])[1] = 'NaN')],
    ['fraction', (h) => (shapeOf(h, 'fixed', 0)[0] = 1.5)],
    ['zero', (h) => (shapeOf(h, 'layered', 2)[0] = 0)],
    ['negative', (h) => (shapeOf(h, 'layered', 2)[0] = -3)],
    ['huge', (h) => ((h.layered as [string, number[]][])[0][1] = [65536, 65536, 2])],
    ['rank 0 layered', (h) => ((h.layered as [string, number[]][])[0][1] = [])],
    ['rank 9', (h) => ((h.fixed as [string, number[]][])[0][1] = Array<number>(9).fill(1))],
    ['not an array', (h) => ((h.fixed as [string, unknown][])[0][1] = 6)],
  ];
  for (const [what, edit] of bad) {
    assert.throws(
      () => readStrata(withHeader(valid, edit)),
      (e: unknown) => e instanceof StrataFormatError && e.code === 'BAD_SHAPE',
      what,
    );
  }
  refuses(
    withHeader(valid, (h) => ((h.layered as [string, number[]][])[0][1] = [4, 3, 3, 4])),
    'SIZE_MISMATCH',
    /section basic \(2-bit\) is \d+ bytes but its tensor shapes need \d+/,
  );
  refuses(
    withHeader(valid, (h) => ((h.paramTables as [string, number[]][][])[0][0][1] = [400])),
    'SIZE_MISMATCH',
  );
  refuses(
    withHeader(valid, (h) => (h.sections[5].length += 8), { keepOffsets: true }),
    'SIZE_MISMATCH',
    /section enhance 7-bit is 72 bytes but its tensor shapes need 64/,
  );
});

test('trailing bytes, non-finite scales behind a valid checksum, and requests for absent precisions', () => {
  const longer = new Uint8Array(valid.length + 3);
  longer.set(valid);
  refuses(longer, 'TRAILING_DATA', /3 bytes after its last section/);

  const header = headerJson(valid);
  const basic = header.sections[0];
  const nanScale = valid.slice();
  new DataView(nanScale.buffer).setFloat32(basic.offset + 4, NaN, true);
  const fixed = withHeader(nanScale, (h) => {
    h.sections[0].crc32 = crc32(nanScale.subarray(basic.offset, basic.offset + basic.length));
  });
  refuses(fixed, 'BAD_DATA', /Tensor 'conv1.weight': scale 1 is NaN/);

  assert.throws(() => readStrata(valid, { bits: 9 }), {
    name: 'RangeError',
    message: 'Expected bits in [2, 8] (the precisions this file holds) but received 9',
  });
  assert.throws(() => readStrata(valid, { bits: 1 }), RangeError);
  assert.throws(() => readStrata(valid, { bits: 2.5 }), TypeError);
  assert.throws(() => readStrata('not bytes' as unknown as Uint8Array), TypeError);
});
