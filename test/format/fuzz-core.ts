import { Random } from '../../src/engine/random.js';
import {
  StrataFormatError,
  StrataStreamReader,
  availableBits,
  crc32,
  extractStrata,
  inspectStrata,
  readStrata,
  writeStrata,
} from '../../src/format/index.js';
import { smallContent } from './helpers.js';

export interface FuzzFailure {
  iteration: number;
  mutation: string;
  error: string;
}

export interface FuzzReport {
  iterations: number;
  accepted: number;
  refused: Record<string, number>;
  failures: FuzzFailure[];
  slowestMs: number;
}

export const INTERESTING: unknown[] = [
  0,
  -1,
  1,
  7,
  255,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  1e308,
  1.5,
  -0.5,
  null,
  'x',
  '',
  [],
  {},
  true,
];

function headerRange(bytes: Uint8Array): [number, number] {
  if (bytes.length < 24) return [0, bytes.length];
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
  return [24, Math.min(bytes.length, 24 + length)];
}

/** Replaces the header JSON bytes and fixes the header checksum, so the mutation reaches the checks behind it. */
export function replaceHeader(bytes: Uint8Array, json: Uint8Array): Uint8Array {
  if (bytes.length < 24) return bytes;
  const [start, end] = headerRange(bytes);
  const out = new Uint8Array(bytes.length - (end - start) + json.length);
  out.set(bytes.subarray(0, start));
  out.set(json, start);
  out.set(bytes.subarray(end), start + json.length);
  const view = new DataView(out.buffer);
  view.setUint32(12, json.length, true);
  view.setUint32(16, crc32(json), true);
  return out;
}

export type Mutation = (bytes: Uint8Array, r: Random) => Uint8Array;

/** Byte- and structure-level mutations of a .strata file (the header ones repair its checksum). */
export const MUTATIONS: Record<string, Mutation> = {
  flipBits(bytes, r) {
    if (bytes.length === 0) return bytes;
    const out = bytes.slice();
    for (let k = 1 + r.int(8); k > 0; k--) out[r.int(out.length)] ^= 1 << r.int(8);
    return out;
  },
  flipPreamble(bytes, r) {
    if (bytes.length < 24) return bytes;
    const out = bytes.slice();
    out[r.int(24)] ^= 1 << r.int(8);
    return out;
  },
  truncate(bytes, r) {
    return bytes.slice(0, r.int(bytes.length));
  },
  insert(bytes, r) {
    const at = r.int(bytes.length + 1);
    const extra = Uint8Array.from({ length: 1 + r.int(16) }, () => r.int(256));
    const out = new Uint8Array(bytes.length + extra.length);
    out.set(bytes.subarray(0, at));
    out.set(extra, at);
    out.set(bytes.subarray(at), at + extra.length);
    return out;
  },
  remove(bytes, r) {
    const at = r.int(bytes.length);
    const end = Math.min(bytes.length, at + 1 + r.int(32));
    const out = new Uint8Array(bytes.length - (end - at));
    out.set(bytes.subarray(0, at));
    out.set(bytes.subarray(end), at);
    return out;
  },
  randomHeaderBytes(bytes, r) {
    const out = bytes.slice();
    const [start, end] = headerRange(out);
    for (let k = 1 + r.int(16); k > 0 && end > start; k--) out[start + r.int(end - start)] = r.int(256);
    return out;
  },
  headerTextWithChecksum(bytes, r) {
    const [start, end] = headerRange(bytes);
    const json = bytes.slice(start, end);
    const alphabet = '{}[]",:0123456789-.eE ntrufalse';
    for (let k = 1 + r.int(4); k > 0 && json.length > 0; k--) {
      json[r.int(json.length)] = alphabet.charCodeAt(r.int(alphabet.length));
    }
    return replaceHeader(bytes, json);
  },
  headerValueWithChecksum(bytes, r) {
    const [start, end] = headerRange(bytes);
    let root: unknown;
    try {
      root = JSON.parse(new TextDecoder().decode(bytes.subarray(start, end)));
    } catch {
      return bytes;
    }
    // Collect every slot (object key or array index) and overwrite one with an interesting value.
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
    if (slots.length === 0) return bytes;
    const [holder, key] = slots[r.int(slots.length)];
    const pick = r.int(3);
    if (pick === 0) holder[key] = INTERESTING[r.int(INTERESTING.length)];
    else if (pick === 1 && typeof holder[key] === 'number')
      holder[key] = (holder[key] as number) + (r.int(17) - 8);
    else delete holder[key];
    return replaceHeader(bytes, new TextEncoder().encode(JSON.stringify(root)));
  },
  appendCopy(bytes, r) {
    const at = r.int(bytes.length);
    const out = new Uint8Array(bytes.length + (bytes.length - at));
    out.set(bytes);
    out.set(bytes.subarray(at), bytes.length);
    return out;
  },
};

/** Runs every reader entry point; returns the precision it loaded or the error code, or throws on any other error. */
export function exercise(bytes: Uint8Array, r: Random): string {
  let outcome: string;
  try {
    const result = readStrata(bytes);
    for (const t of result.layered) {
      if (t.codes.length !== t.shape.reduce((a, b) => a * b, 1))
        throw new Error(`decoded size of ${t.name} is wrong`);
    }
    extractStrata(bytes, result.bits);
    outcome = `bits ${result.bits}`;
  } catch (e) {
    if (!(e instanceof StrataFormatError)) throw e;
    outcome = e.code;
  }
  try {
    inspectStrata(bytes);
    availableBits(bytes);
  } catch (e) {
    if (!(e instanceof StrataFormatError)) throw e;
  }
  let streamed: string;
  const reader = new StrataStreamReader();
  try {
    for (let at = 0; at < bytes.length;) {
      const n = 1 + r.int(256);
      reader.push(bytes.subarray(at, at + n));
      at += n;
    }
    streamed = `bits ${reader.end()}`;
  } catch (e) {
    if (!(e instanceof StrataFormatError)) throw e;
    streamed = e.code;
  }
  // The one-shot and the streaming reader must agree on whether a file loads, and at which precision.
  if (outcome.startsWith('bits') || streamed.startsWith('bits')) {
    if (outcome !== streamed)
      throw new Error(`readStrata gave ${outcome} but the stream reader gave ${streamed}`);
  }
  return outcome;
}

export function baseFiles(): Uint8Array[] {
  return [
    writeStrata(smallContent({ seed: 11 })),
    writeStrata(smallContent({ seed: 12, rule: 'round', distinctParams: true })),
    writeStrata(smallContent({ seed: 13, topBits: 5, minBits: 1 })),
  ];
}

/** One to three mutations of `bytes`, and their names (to report a failing case). */
export function mutateStrata(bytes: Uint8Array, random: Random): { bytes: Uint8Array; applied: string[] } {
  const names = Object.keys(MUTATIONS);
  const applied: string[] = [];
  let out = bytes;
  for (let k = 1 + random.int(3); k > 0; k--) {
    const name = names[random.int(names.length)];
    applied.push(name);
    out = MUTATIONS[name](out, random);
  }
  return { bytes: out, applied };
}

/** Seeded random mutations of valid files; every outcome must be a load or a StrataFormatError, quickly. */
export function fuzzStrata(iterations: number, seed = 1): FuzzReport {
  const random = new Random(seed);
  const files = baseFiles();
  const report: FuzzReport = { iterations, accepted: 0, refused: {}, failures: [], slowestMs: 0 };
  for (let i = 0; i < iterations; i++) {
    const { bytes, applied } = mutateStrata(files[random.int(files.length)], random);
    const started = performance.now();
    try {
      const outcome = exercise(bytes, random);
      if (outcome.startsWith('bits')) report.accepted++;
      else report.refused[outcome] = (report.refused[outcome] ?? 0) + 1;
    } catch (e) {
      report.failures.push({
        iteration: i,
        mutation: applied.join('+'),
        error: String((e as Error)?.stack ?? e),
      });
    }
    report.slowestMs = Math.max(report.slowestMs, performance.now() - started);
  }
  return report;
}
