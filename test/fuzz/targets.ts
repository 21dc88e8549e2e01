/**
 * The fuzz targets: one per entry point that takes input from outside. Each starts from the real
 * files of ./corpus.ts, mutates them with knowledge of their structure (checksums repaired so the
 * mutation reaches the checks behind them), runs the entry point, and says which outcomes are the
 * expected refusals. Anything else a target throws is a failure.
 */
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { restoreContent } from '../../src/cli/restore.js';
import { decodeImage } from '../../src/data/image-decode.js';
import { loadNativeBackend, type NativeAddon } from '../../src/engine/backend-native.js';
import { InvalidInputError } from '../../src/engine/limits.js';
import type { Random } from '../../src/engine/random.js';
import { modelFromStrata } from '../../src/export/strata-model.js';
import { readOnnxMetadata } from '../../src/export/onnx-proto.js';
import { crc32 } from '../../src/format/crc32.js';
import { MAGIC, StrataFormatError, inspectStrata, readStrata } from '../../src/format/index.js';
import { StrataSession } from '../../src/runtime/session.js';
import { startServer, UNTRUSTED_CSP, type StrataServer } from '../../src/runtime/server.js';
import { CheckpointError, decodeCheckpoint } from '../../src/train/checkpoint.js';
import { imageToInput, inputSpecFor, toChannels } from '../../src/web/preprocess.js';
import { baseFiles, exercise, INTERESTING, MUTATIONS, mutateStrata } from '../format/fuzz-core.js';
import { withHeader } from '../format/helpers.js';
import {
  fixPngChunkCrc,
  jpegFrameOffset,
  sampleImages,
  sampleOnnx,
  tinyCheckpoint,
  tinyModels,
} from './corpus.js';

export interface FuzzTarget {
  name: string;
  /** Relative share of the executions. */
  weight: number;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** One execution: builds an input from `r`, runs the entry point; returns a short outcome label. */
  run(r: Random): Promise<string>;
  /** Whether an error thrown by `run` is one of the entry point's documented refusals. */
  expected(e: unknown): boolean;
}

const pick = <T>(r: Random, items: readonly T[]): T => items[r.int(items.length)];

/** An error's name, or the code of a StrataFormatError: the outcome label of a refusal. */
export function refusalLabel(e: unknown): string {
  if (e instanceof StrataFormatError) return e.code;
  if (e instanceof InvalidInputError) return `InvalidInputError ${e.field.replace(/\d+/g, 'N')}`;
  if (e instanceof CheckpointError) {
    // The message after "checkpoint <path>: " says which check refused (checksum, header, array, field).
    const reason = e.message.replace(/^checkpoint \S+: /, '').split(/[ (]/)[0];
    return `CheckpointError ${reason}`;
  }
  return e instanceof Error ? e.name : typeof e;
}

function flipBits(bytes: Uint8Array, r: Random): Uint8Array {
  return MUTATIONS.flipBits(bytes, r);
}

/** Overwrites, bumps or deletes one slot of a parsed JSON value (in place). */
function mutateJson(root: unknown, r: Random, extra: readonly unknown[] = []): void {
  const slots: [Record<string, unknown>, string][] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    for (const [k, child] of Object.entries(v)) {
      slots.push([v as Record<string, unknown>, k]);
      stack.push(child);
    }
  }
  if (slots.length === 0) return;
  const [holder, key] = pick(r, slots);
  const choice = r.int(4);
  if (choice === 0) holder[key] = pick(r, [...INTERESTING, ...extra]);
  else if (choice === 1 && typeof holder[key] === 'number')
    holder[key] = (holder[key] as number) * pick(r, [-1, 2, 1000, 1e6]);
  else if (choice === 2 && Array.isArray(holder[key]))
    (holder[key] as unknown[]).push((holder[key] as unknown[])[0]);
  else delete holder[key];
}

// ---------------------------------------------------------------------------------------------
// .strata reader and stream reader (the mutations and checks of test/format/fuzz-core.ts)

const strataReader = (): FuzzTarget => {
  let files: Uint8Array[] = [];
  return {
    name: 'strata-reader',
    weight: 30,
    async setup() {
      files = [...baseFiles(), ...tinyModels().map((m) => m.strata)];
    },
    async run(r) {
      return exercise(mutateStrata(pick(r, files), r).bytes, r);
    },
    expected: (e) => e instanceof StrataFormatError,
  };
};

// ---------------------------------------------------------------------------------------------
// modelFromStrata and session creation from model files whose header is edited field by field

const ARCHITECTURE_VALUES = [
  1e6,
  1e7,
  2 ** 31,
  65,
  90000,
  0.5,
  4000,
  'vgg',
  'small-cnn',
  'mobilenetv2',
  'resnet20',
];

const strataModel = (): FuzzTarget => {
  const models = tinyModels();
  return {
    name: 'strata-model',
    weight: 14,
    async run(r) {
      const model = pick(r, models);
      let bytes = model.strata;
      const how = r.int(4);
      if (how === 0) {
        // A prefix that ends on a precision boundary: still a complete model at a lower precision.
        const { precisions } = inspectStrata(bytes);
        bytes = bytes.subarray(0, pick(r, precisions).completeAt);
      } else if (how <= 2) {
        // Field edits with the header re-encoded as a writer would (checksum, offsets), so they
        // reach modelFromStrata instead of stopping at the format checks.
        bytes = withHeader(bytes, (header) => {
          const parts = [header.architecture, header.quantization, header.metadata ?? {}];
          mutateJson(pick(r, parts), r, ARCHITECTURE_VALUES);
          if (r.int(3) === 0) mutateJson(header, r, ARCHITECTURE_VALUES);
        });
      } else {
        bytes = mutateStrata(bytes, r).bytes;
      }
      const read = readStrata(bytes);
      const { architecture } = modelFromStrata(read, 'fuzz.strata');
      inputSpecFor(read.header.architecture, read.header.metadata ?? null, 'fuzz.strata');
      const session = await StrataSession.create(bytes, { engine: 'native' });
      try {
        const [h, w, c] = model.input;
        const p = await session.predict({ data: new Float32Array(h * w * c).fill(0.5), shape: [1, h, w, c] });
        if (p.numClasses !== architecture.numClasses) {
          throw new Error(
            `session gave ${p.numClasses} classes for an architecture of ${architecture.numClasses}`,
          );
        }
      } finally {
        await session.dispose();
      }
      return `loaded ${read.bits} bits`;
    },
    expected: (e) => e instanceof StrataFormatError || e instanceof InvalidInputError,
  };
};

// ---------------------------------------------------------------------------------------------
// checkpoint loader: decode, check the description, rebuild the network

/** Replaces a checkpoint's JSON header and recomputes its CRC (the payload moves with it). */
function checkpointWithHeader(
  bytes: Uint8Array,
  edit: (header: Record<string, unknown>) => void,
): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8, true);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length))) as Record<string, unknown>;
  } catch {
    return bytes;
  }
  edit(header);
  const payload = bytes.subarray(Math.ceil((12 + length) / 4) * 4, bytes.length - 4);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((12 + json.length) / 4) * 4;
  const out = new Uint8Array(start + payload.length + 4);
  out.set(bytes.subarray(0, 8));
  const outView = new DataView(out.buffer);
  outView.setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(payload, start);
  outView.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

function repairCheckpointCrc(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 16) return bytes;
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

const checkpoint = (): FuzzTarget => {
  const files = [tinyCheckpoint()];
  return {
    name: 'checkpoint',
    weight: 14,
    async run(r) {
      let bytes = pick(r, files);
      switch (r.int(6)) {
        case 0:
          bytes = flipBits(bytes, r);
          break;
        case 1:
          bytes = repairCheckpointCrc(flipBits(bytes, r));
          break;
        case 2:
          bytes = MUTATIONS.truncate(bytes, r);
          break;
        case 3:
          bytes = checkpointWithHeader(bytes, (h) => mutateJson(h.meta, r, ARCHITECTURE_VALUES));
          break;
        case 4:
          bytes = checkpointWithHeader(bytes, (h) => {
            const arrays = h.arrays as unknown[];
            if (r.int(3) === 0) arrays.push(pick(r, [null, 7, { name: 'x' }, arrays[0]]));
            else mutateJson(arrays, r, [-1, 2 ** 53, 2 ** 32, 'model.fc.weight']);
          });
          break;
        default:
          bytes = checkpointWithHeader(bytes, (h) => mutateJson(h, r, ARCHITECTURE_VALUES));
      }
      const restored = restoreContent(decodeCheckpoint(bytes, 'fuzz.ckpt'), 'fuzz.ckpt');
      return `restored ${restored.architecture.name}`;
    },
    expected: (e) => e instanceof CheckpointError,
  };
};

// ---------------------------------------------------------------------------------------------
// image decode and preprocessing

const DIMENSIONS = [0, 1, 2, 7, 8, 255, 256, 1000, 4095, 4096, 4097, 65535, 2 ** 31, 2 ** 32 - 1];

function mutateImage(bytes: Uint8Array, r: Random): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  const png = out[0] === 0x89;
  switch (r.int(7)) {
    case 0:
      return flipBits(out, r);
    case 6:
      // Bit flips past the signature with every chunk CRC repaired, so pngjs decodes what follows.
      if (png) {
        const flipped = flipBits(out.subarray(8), r);
        out.set(flipped, 8);
        for (let at = 8; at + 12 <= out.length; at += 12 + view.getUint32(at)) fixPngChunkCrc(out, at);
        return out;
      }
      return flipBits(out, r);
    case 1:
      return MUTATIONS.truncate(out, r);
    case 2: {
      // Declared size: the decompression-bomb lever.
      if (png) {
        view.setUint32(pick(r, [16, 20]), pick(r, DIMENSIONS) >>> 0);
        if (r.int(2) === 0) view.setUint32(pick(r, [16, 20]), pick(r, DIMENSIONS) >>> 0);
        fixPngChunkCrc(out, 8);
      } else {
        const at = jpegFrameOffset(out);
        if (at >= 0) {
          view.setUint16(at + pick(r, [5, 7]), pick(r, DIMENSIONS) & 0xffff);
          if (r.int(2) === 0) view.setUint16(at + pick(r, [5, 7]), pick(r, DIMENSIONS) & 0xffff);
        }
      }
      return out;
    }
    case 3:
      if (png) {
        // Bit depth, colour type, compression, filter, interlace.
        out[24 + r.int(5)] = pick(r, [0, 1, 2, 3, 4, 6, 8, 16, 255]);
        fixPngChunkCrc(out, 8);
        return out;
      }
      return MUTATIONS.insert(out, r);
    case 4:
      return MUTATIONS.appendCopy(out, r);
    default:
      return MUTATIONS.remove(out, r);
  }
}

const image = (): FuzzTarget => {
  const images = sampleImages();
  return {
    name: 'image',
    weight: 14,
    async run(r) {
      const source = pick(r, images);
      const bytes = mutateImage(source.bytes, r);
      const rgb = decodeImage(bytes, source.name);
      const channels = pick(r, [1, 3]);
      const size = pick(r, [1, 4, 8, 28, 32, 64, 100, [5, 9], 1e6, 0, -1, 'x']);
      const spec = inputSpecFor(
        { name: 'small-cnn', inChannels: channels },
        { inputSize: size },
        source.name,
      );
      const input = imageToInput(toChannels(rgb.data, rgb.height, rgb.width, 3, channels), spec, source.name);
      if (input.length !== spec.height * spec.width * spec.channels)
        throw new Error('preprocessed input has the wrong size');
      for (const v of input) if (!Number.isFinite(v)) throw new Error('preprocessed input is not finite');
      return `decoded ${source.name}`;
    },
    expected: (e) => e instanceof InvalidInputError,
  };
};

// ---------------------------------------------------------------------------------------------
// ONNX files as Strata reads them (their metadata); onnxruntime parses the graph itself

const onnx = (): FuzzTarget => {
  let file: Uint8Array = new Uint8Array(0);
  return {
    name: 'onnx-metadata',
    weight: 4,
    async setup() {
      file = sampleOnnx();
    },
    async run(r) {
      const metadata = readOnnxMetadata(mutateStrata(file, r).bytes);
      return `metadata ${metadata.size}`;
    },
    expected: () => false,
  };
};

// ---------------------------------------------------------------------------------------------
// the HTTP server: paths, methods and headers an attacker would send

const SECRET = 'fuzz secret outside the served folder';

const SEGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%2e.',
  '%252e%252e',
  '..%2f..',
  '..%5c..',
  '%5c',
  '%00',
  '%',
  '%zz',
  'link.txt',
  'model.strata',
  'huge.strata',
  'page.html',
  '.hidden',
  'sub',
  'inner.txt',
  'ort',
  'models',
  'client.js',
  'index.html',
  'x'.repeat(300),
  'é',
  '%C0%AE%C0%AE',
  '',
];

const requestArbitrary = fc.record({
  segments: fc.array(fc.constantFrom(...SEGMENTS), { minLength: 0, maxLength: 5 }),
  query: fc.constantFrom('', '?a=1', '?../..', '#frag'),
  method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'),
  range: fc.option(
    fc.oneof(
      fc.constantFrom(
        'bytes=0-',
        'bytes=-1',
        'bytes=5-2',
        'bytes=0-0,5-6',
        'bytes=99999999999999999999-',
        'items=1-2',
        'bytes=--1',
      ),
      fc.tuple(fc.nat(5000), fc.nat(5000)).map(([a, b]) => `bytes=${a}-${b}`),
    ),
    { nil: undefined },
  ),
  ifNoneMatch: fc.option(fc.constantFrom('*', '"x"', 'W/"x"', '"a", "b"', ''), { nil: undefined }),
  ifRange: fc.option(fc.constantFrom('"x"', 'Thu, 01 Jan 1970 00:00:00 GMT', 'junk'), { nil: undefined }),
});

const http = (): FuzzTarget => {
  let dir = '';
  let outside = '';
  let server: StrataServer | null = null;
  // No keep-alive: a reused socket the server has just timed out would fail the next request.
  const agent = new Agent({ keepAlive: false, maxSockets: 1 });
  return {
    name: 'http',
    weight: 12,
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'strata-fuzz-http-'));
      outside = mkdtempSync(join(tmpdir(), 'strata-fuzz-outside-'));
      writeFileSync(join(outside, 'secret.txt'), SECRET);
      writeFileSync(join(dir, '.hidden'), SECRET);
      symlinkSync(join(outside, 'secret.txt'), join(dir, 'link.txt'));
      writeFileSync(join(dir, 'model.strata'), tinyModels()[0].strata);
      writeFileSync(join(dir, 'page.html'), '<script>1</script>');
      const preamble = new Uint8Array(24);
      preamble.set(MAGIC);
      new DataView(preamble.buffer).setUint16(8, 1, true);
      new DataView(preamble.buffer).setUint32(12, 300_000_000, true);
      writeFileSync(join(dir, 'huge.strata'), preamble);
      // Larger than any header the reader accepts, small enough that a GET of it stays quick.
      truncateSync(join(dir, 'huge.strata'), 8_000_000);
      server = await startServer({ root: dir, port: 0 });
    },
    async teardown() {
      agent.destroy();
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    },
    async run(r) {
      const [req] = fc.sample(requestArbitrary, { seed: r.int(2 ** 31), numRuns: 1 });
      const path = `/${req.segments.join('/')}${req.query}`;
      const headers: Record<string, string> = {};
      if (req.range !== undefined) headers.Range = req.range;
      if (req.ifNoneMatch !== undefined) headers['If-None-Match'] = req.ifNoneMatch;
      if (req.ifRange !== undefined) headers['If-Range'] = req.ifRange;
      const url = new URL(server!.url);
      const response = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
        (done, fail) => {
          const call = request(
            { host: url.hostname, port: url.port, method: req.method, path, headers, agent },
            (res) => {
              const chunks: Buffer[] = [];
              let size = 0;
              res.on('data', (c: Buffer) => {
                // The listing and the tiny files are small; a large body would be a leak of something.
                size += c.length;
                if (size <= 1 << 20) chunks.push(c);
              });
              res.on('end', () =>
                done({
                  status: res.statusCode ?? 0,
                  headers: res.headers,
                  body: Buffer.concat(chunks).toString('latin1'),
                }),
              );
              res.on('error', fail);
            },
          );
          call.on('error', (e) =>
            fail(new Error(`${req.method} ${path} ${JSON.stringify(headers)}: ${e.message}`)),
          );
          call.end();
        },
      );
      const allowed = [200, 204, 206, 304, 400, 404, 405, 416];
      if (!allowed.includes(response.status))
        throw new Error(`${req.method} ${path} answered ${response.status}`);
      if (response.body.includes(SECRET)) throw new Error(`${req.method} ${path} leaked the secret`);
      if (response.headers['x-content-type-options'] !== 'nosniff') throw new Error(`${path}: no nosniff`);
      const folderFile = ['model.strata', 'page.html', 'huge.strata'].includes(
        req.segments[req.segments.length - 1] ?? '',
      );
      if (folderFile && req.segments.length === 1 && [200, 206, 304].includes(response.status)) {
        if (response.headers['content-security-policy'] !== UNTRUSTED_CSP)
          throw new Error(`${path}: no sandbox CSP`);
      }
      return `status ${response.status}`;
    },
    expected: () => false,
  };
};

// ---------------------------------------------------------------------------------------------
// the addon's own argument validation, called directly

const NUMBERS = [
  0,
  1,
  2,
  3,
  7,
  64,
  2 ** 16,
  2 ** 29,
  2 ** 31,
  2 ** 32,
  2 ** 40,
  2 ** 53,
  2 ** 60,
  1e9,
  1e9 + 1,
  -1,
  1.5,
  NaN,
  Infinity,
  -Infinity,
];

function arrayArg(r: Random, length: number): unknown {
  switch (r.int(8)) {
    case 0:
      return new Int32Array(Math.max(0, length));
    case 1:
      return new Float64Array(Math.max(0, length));
    case 2:
      return pick(r, [null, undefined, 'x', {}, [1, 2], 3]);
    default:
      return new Float32Array(Math.max(0, length + pick(r, [0, 0, 0, -1, 1, -length])));
  }
}

function geometryArg(r: Random): Record<string, unknown> {
  const small = () => 1 + r.int(4);
  const inH = small() + 2;
  const inW = small() + 2;
  const k = 1 + r.int(3);
  const g: Record<string, unknown> = {
    batch: small(),
    inH,
    inW,
    channels: small(),
    inC: 2,
    outC: 2,
    outH: inH - k + 1,
    outW: inW - k + 1,
    kH: k,
    kW: k,
    strideH: 1,
    strideW: 1,
    padH: 0,
    padW: 0,
    dilationH: 1,
    dilationW: 1,
    groups: pick(r, [1, 1, 2]),
  };
  for (let n = r.int(3); n > 0; n--) g[pick(r, Object.keys(g))] = pick(r, NUMBERS);
  if (r.int(10) === 0) delete g[pick(r, Object.keys(g))];
  return g;
}

const addon = (): FuzzTarget => {
  let native: NativeAddon | null = null;
  let names: string[] = [];
  return {
    name: 'addon',
    weight: 12,
    async setup() {
      const loaded = loadNativeBackend();
      if (!loaded.ok) return;
      const { nativeAddon } = await import('../../src/engine/backend-native.js');
      native = nativeAddon();
      // setThreads changes the process-wide thread count; its checks have their own test.
      names = Object.keys(native ?? {}).filter((n) => n !== 'setThreads');
    },
    async run(r) {
      if (native === null) return 'no addon';
      const name = pick(r, names);
      const fn = (native as unknown as Record<string, (...args: unknown[]) => unknown>)[name];
      const geometry = geometryArg(r);
      const sizes = [
        Number(geometry.batch) * Number(geometry.inH) * Number(geometry.inW) * Number(geometry.channels),
        Number(geometry.batch) * Number(geometry.outH) * Number(geometry.outW) * Number(geometry.channels),
        Number(geometry.batch) * Number(geometry.inH) * Number(geometry.inW) * 2,
        Number(geometry.batch) * Number(geometry.outH) * Number(geometry.outW) * 2,
        2 * 2 * Number(geometry.kH) * Number(geometry.kW),
        r.int(64),
      ].map((n) => (Number.isFinite(n) && n >= 0 && n < 1 << 20 ? n : r.int(64)));
      const args: unknown[] = [];
      for (let i = 0; i < 13; i++) {
        const kind = r.int(10);
        if (i === 0 && kind < 5) args.push(geometry);
        else if (kind < 6) args.push(arrayArg(r, pick(r, sizes)));
        else if (kind < 9) args.push(pick(r, [...NUMBERS, ...sizes]));
        else args.push(pick(r, ['floor', 'round', 'x', true, false, null]));
      }
      try {
        fn(...args);
      } catch (e) {
        // The addon's refusals are JS errors whose message starts with the op that refused.
        if (e instanceof Error && e.message.startsWith(`${name}:`)) return 'refused';
        throw e;
      }
      return 'accepted';
    },
    expected: () => false,
  };
};

/** Every target, in the order the runner interleaves them. */
export function fuzzTargets(): FuzzTarget[] {
  return [strataReader(), strataModel(), checkpoint(), image(), onnx(), http(), addon()];
}
