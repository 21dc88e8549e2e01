/**
 * npm run bench:deploy — what one layered file costs and buys at deployment, per precision b held by
 * the .strata file of a trained ResNet-20 (default: the committed once-QAT checkpoint
 * checkpoints/cifar10-resnet20-once3.ckpt, packed 2..8 bits), side by side in one process:
 *
 * - strata_bytes: the prefix of the .strata file that holds precision b (completeAt);
 * - onnx_bytes: the integer ONNX graph at b (exportOnnx; INT4 weights at 4 bits and below);
 * - ort_*: onnxruntime-node latency of the integer graph and of the float graph at b (the same
 *   weights dequantized, batch norm folded, activation fake quantization spelled with float ops),
 *   at batch 1 and batch --large-batch (128);
 * - native_*: Strata's engine at batch 128: the integer plan on the oneDNN int8 kernels, and Strata's
 *   own float forward at b (native backend).
 *
 * Latencies are medians of --iters runs after --warmup runs, integer and float alternated run by run
 * (so that load from other processes falls on both alike), on --threads threads (onnxruntime intra-op
 * threads, oneDNN's OpenMP threads and onnxruntime-web's wasm threads alike). onnxruntime-web (wasm,
 * run in this Node process) is timed at batch 1 too, integer against float graph. It also records the CPU's ISA flags and the
 * load average, profiles one precision's graphs per operator type (where onnxruntime spends its time),
 * times the ConvInteger-only graph (requantize: false; the exported integer graph uses QLinearConv
 * where exact-requantize.ts finds parameters), and compares the whole file with the dedicated
 * 8- and 4-bit files. With --first-iters N it also measures the first prediction over a throttled
 * link (--kbps) as before. Output: the lines below, bench/results/deploy.json and deploy.txt.
 * Options: --checkpoint <path> --iters 5 --warmup 1 --threads 1 --large-batch 128 --first-iters 0 --kbps 10000
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { packCheckpoint } from '../src/cli/commands/pack.js';
import { nativeAddon } from '../src/engine/backend-native.js';
import { getBackend } from '../src/engine/backend-registry.js';
import { Random } from '../src/engine/random.js';
import { Tensor } from '../src/engine/tensor.js';
import { exportOnnx } from '../src/export/onnx-export.js';
import { modelFromStrata } from '../src/export/strata-model.js';
import { inspectStrata, readStrata, writeStrata, type StrataModelContent } from '../src/format/index.js';
import { StrataSession } from '../src/runtime/session.js';
import { startServer } from '../src/runtime/server.js';
import { runProgressive, warmUpOrt, type OrtLike } from '../src/web/progressive.js';
import { arg, median, peakRssMb, repoRoot, writeResult } from './common.js';
import { ortOperatorProfile } from './ort-profile.js';

function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const DEFAULT_CHECKPOINT = 'checkpoints/cifar10-resnet20-once3.ckpt';
const checkpoint = stringArg('checkpoint') ?? DEFAULT_CHECKPOINT;
const iters = arg('iters', 5);
const warmup = arg('warmup', 1);
const threads = arg('threads', 1);
const largeBatch = arg('large-batch', 128);
const firstIters = arg('first-iters', 0);
const kbps = arg('kbps', 10_000);
const output: string[] = [];
const say = (line: string) => {
  output.push(line);
  console.log(line);
};
const log = (message: string) => process.stderr.write(`${message}\n`);

const addon = nativeAddon();
if (addon === null || getBackend().name !== 'native') {
  throw new Error(
    'bench:deploy compares native integer and float inference: build the addon (npx node-gyp rebuild)',
  );
}
addon.setThreads(threads);

/** The ISA flags that decide int8 and float32 kernel speed. */
function cpuFlags(): string[] {
  const wanted = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'amx_int8', 'amx_bf16'];
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    const flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
    return wanted.filter((f) => flags.has(f));
  } catch {
    return [];
  }
}

/**
 * Median milliseconds of `a` and of `b`, run alternately (a b, b a, a b, ...) after --warmup runs of
 * each, so that load from other processes on this shared machine falls on both sides alike.
 */
async function pairedMs(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  const times: [number[], number[]] = [[], []];
  const once = async (f: () => Promise<unknown>, into: number[] | null) => {
    const t0 = performance.now();
    await f();
    into?.push(performance.now() - t0);
  };
  for (let i = 0; i < warmup; i++) {
    await once(a, null);
    await once(b, null);
  }
  for (let i = 0; i < iters; i++) {
    if (i % 2 === 0) {
      await once(a, times[0]);
      await once(b, times[1]);
    } else {
      await once(b, times[1]);
      await once(a, times[0]);
    }
  }
  return [median(times[0]), median(times[1])];
}

const ortOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 3 as const };
/** The same options as the progressive client's type names them. */
const sessionOptions = ortOptions as { executionProviders?: string[] };

/** onnxruntime-node latency of two graphs at one batch size, alternated. */
async function ortPair(a: Uint8Array, b: Uint8Array, batch: number, rng: Random): Promise<[number, number]> {
  const sa = await ort.InferenceSession.create(a, ortOptions);
  const sb = await ort.InferenceSession.create(b, ortOptions);
  try {
    const input = new ort.Tensor('float32', Tensor.randn([batch, 3, 32, 32], rng).data, [batch, 3, 32, 32]);
    return await pairedMs(
      () => sa.run({ [sa.inputNames[0]]: input }),
      () => sb.run({ [sb.inputNames[0]]: input }),
    );
  } finally {
    await sa.release();
    await sb.release();
  }
}

/** onnxruntime-web (wasm, in this Node process) latency of two graphs at batch 1, alternated. */
async function webPair(a: Uint8Array, b: Uint8Array, rng: Random): Promise<[number, number]> {
  ortWeb.env.wasm.numThreads = threads;
  const options = { executionProviders: ['wasm'] };
  const sa = await ortWeb.InferenceSession.create(a, options);
  const sb = await ortWeb.InferenceSession.create(b, options);
  try {
    const input = new ortWeb.Tensor('float32', Tensor.randn([1, 3, 32, 32], rng).data, [1, 3, 32, 32]);
    return await pairedMs(
      () => sa.run({ [sa.inputNames[0]]: input }),
      () => sb.run({ [sb.inputNames[0]]: input }),
    );
  } finally {
    await sa.release();
    await sb.release();
  }
}

/** Milliseconds a run per operator type at `batch` (onnxruntime's own profile, mean of --iters runs). */
function ortProfile(onnx: Uint8Array, batch: number, rng: Random): Promise<Record<string, number>> {
  const input = new ort.Tensor('float32', Tensor.randn([batch, 3, 32, 32], rng).data, [batch, 3, 32, 32]);
  return ortOperatorProfile(onnx, input, ortOptions, iters);
}

async function nativePair(
  a: StrataSession,
  b: StrataSession,
  batch: number,
  rng: Random,
): Promise<[number, number]> {
  const input = { data: Tensor.randn([batch, 32, 32, 3], rng).data, shape: [batch, 32, 32, 3] };
  return pairedMs(
    () => a.predict(input),
    () => b.predict(input),
  );
}

/** The dedicated single-precision file: the b-bit codes as one section (topBits = minBits = b). */
function dedicatedBytes(layered: Uint8Array, b: number): number {
  const read = readStrata(layered, { bits: b });
  const content: StrataModelContent = {
    architecture: read.header.architecture,
    quantization: { ...read.header.quantization, topBits: b, minBits: b },
    layered: read.layered.map((t) => ({ name: t.name, shape: t.shape, topCodes: t.codes, scales: t.scales })),
    fixed: read.fixed,
    perPrecision: new Map([[b, read.perPrecision]]),
    ...(read.header.metadata !== null ? { metadata: read.header.metadata } : {}),
  };
  return writeStrata(content).length;
}

/** Streams the file over a throttled link until b is complete and classifies one image (onnxruntime). */
async function firstPredictionMs(bytes: Uint8Array, b: number, image: Float32Array): Promise<number[]> {
  const dir = mkdtempSync(join(os.tmpdir(), 'strata-deploy-'));
  writeFileSync(join(dir, 'model.strata'), bytes);
  const server = await startServer({ root: dir, port: 0, throttleKbps: kbps });
  const ortLike = ort as unknown as OrtLike;
  try {
    await warmUpOrt(ortLike, sessionOptions);
    const runs: number[] = [];
    for (let i = 0; i <= firstIters; i++) {
      const started = performance.now();
      const response = await fetch(`${server.url}/model.strata`);
      if (!response.ok || response.body === null) throw new Error(`GET model.strata: ${response.status}`);
      const results = await runProgressive({
        ort: ortLike,
        body: response.body,
        untilBits: b,
        select: (bits) => bits === b,
        startedAt: started,
        sessionOptions,
        images: () => ({ data: image, shape: [1, 32, 32, 3] }),
      });
      if (i > 0) runs.push(results[0].msToResult);
    }
    return runs;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const started = new Date();
const loadBefore = os.loadavg();
const bytes = packCheckpoint(join(repoRoot, checkpoint));
const info = inspectStrata(bytes);
const held = info.precisions.map((p) => p.bits);
const trained = (info.metadata?.trainedBits as number[] | undefined) ?? [];
const rng = new Random(2);
const flags = cpuFlags();

interface Row {
  bits: number;
  strata_bytes: number;
  onnx_bytes: number;
  onnx_float_bytes: number;
  ort_b1_ms: number;
  ort_float_b1_ms: number;
  ort_b128_ms: number;
  ort_float_b128_ms: number;
  native_b128_ms: number;
  native_float_b128_ms: number;
  native_b1_ms: number;
  native_float_b1_ms: number;
  ort_convinteger_b128_ms: number;
  web_wasm_b1_ms: number;
  web_wasm_float_b1_ms: number;
  first_prediction_runs_ms?: number[];
}

const rows: Row[] = [];
let profile: { bits: number; integer: Record<string, number>; float: Record<string, number> } | null = null;
for (const b of held) {
  const { model } = modelFromStrata(readStrata(bytes, { bits: b }));
  const integer = exportOnnx(model, { bits: b });
  const float = exportOnnx(model, { bits: b, float: true });
  const convInteger = exportOnnx(model, { bits: b, requantize: false });
  const nativeInt = await StrataSession.create(model, { bits: b, engine: 'native' });
  const nativeFloat = await StrataSession.create(model, { bits: b, engine: 'native', float: true });
  if (nativeInt.arithmetic !== 'native-int8') throw new Error(`native session runs ${nativeInt.arithmetic}`);
  const [ortB1, ortFloatB1] = await ortPair(integer, float, 1, rng);
  const [ortB128, ortFloatB128] = await ortPair(integer, float, largeBatch, rng);
  const [ortConvIntegerB128] = await ortPair(convInteger, float, largeBatch, rng);
  const [nativeB128, nativeFloatB128] = await nativePair(nativeInt, nativeFloat, largeBatch, rng);
  const [nativeB1, nativeFloatB1] = await nativePair(nativeInt, nativeFloat, 1, rng);
  const [webB1, webFloatB1] = await webPair(integer, float, rng);
  const row: Row = {
    bits: b,
    strata_bytes: info.precisions.find((p) => p.bits === b)!.completeAt,
    onnx_bytes: integer.length,
    onnx_float_bytes: float.length,
    ort_b1_ms: ortB1,
    ort_float_b1_ms: ortFloatB1,
    ort_b128_ms: ortB128,
    ort_float_b128_ms: ortFloatB128,
    native_b128_ms: nativeB128,
    native_float_b128_ms: nativeFloatB128,
    native_b1_ms: nativeB1,
    native_float_b1_ms: nativeFloatB1,
    ort_convinteger_b128_ms: ortConvIntegerB128,
    web_wasm_b1_ms: webB1,
    web_wasm_float_b1_ms: webFloatB1,
  };
  if (firstIters > 0) {
    row.first_prediction_runs_ms = await firstPredictionMs(bytes, b, Tensor.randn([1, 32, 32, 3], rng).data);
  }
  if (b === 4) {
    profile = {
      bits: b,
      integer: await ortProfile(integer, largeBatch, rng),
      float: await ortProfile(float, largeBatch, rng),
    };
  }
  await nativeInt.dispose();
  await nativeFloat.dispose();
  rows.push(row);
  log(`w${b} done`);
}
const loadAfter = os.loadavg();

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0));
const ratio = (a: number, b: number) => (a / b).toFixed(2);
say(
  `ResNet-20, trained once-QAT checkpoint ${checkpoint} (trained at ${trained.join(',') || '?'} bits; ` +
    `the packed file holds ${held[0]}..${held.at(-1)}, the others derived by the cascade); ` +
    `threads=${threads} (onnxruntime intra-op and oneDNN OpenMP); onnxruntime-node ${ort.env.versions.common}; ` +
    `onnxruntime-web ${ortWeb.env.versions.web ?? ''} (wasm); native ${addon.version()}; cpu ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} logical cores, ` +
    `flags ${flags.join(' ') || 'none found'}; load average ${loadBefore[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after; ` +
    `median of ${iters} runs after ${warmup} warm-up, integer and float alternated`,
);
for (const r of rows) {
  say(
    `bits=${r.bits} strata_bytes=${r.strata_bytes} onnx_bytes=${r.onnx_bytes} ort_b1_ms=${fmt(r.ort_b1_ms)} ` +
      `ort_float_b1_ms=${fmt(r.ort_float_b1_ms)} ort_b${largeBatch}_ms=${fmt(r.ort_b128_ms)} ` +
      `ort_float_b${largeBatch}_ms=${fmt(r.ort_float_b128_ms)} native_b${largeBatch}_ms=${fmt(r.native_b128_ms)} ` +
      `native_float_b${largeBatch}_ms=${fmt(r.native_float_b128_ms)}`,
  );
}
say(
  'speed-ups (float / integer; targets: ORT >= 1.5 at batch 128 and >= 1.0 at batch 1, native >= 1.5 at batch 128):',
);
for (const r of rows) {
  say(
    `  bits=${r.bits} ort_b${largeBatch}=${ratio(r.ort_float_b128_ms, r.ort_b128_ms)} ort_b1=${ratio(r.ort_float_b1_ms, r.ort_b1_ms)} ` +
      `native_b${largeBatch}=${ratio(r.native_float_b128_ms, r.native_b128_ms)} native_b1=${ratio(r.native_float_b1_ms, r.native_b1_ms)} ` +
      `ort_convinteger_b${largeBatch}=${ratio(r.ort_float_b128_ms, r.ort_convinteger_b128_ms)} (${fmt(r.ort_convinteger_b128_ms)} ms, ConvInteger only) ` +
      `web_wasm_b1=${ratio(r.web_wasm_float_b1_ms, r.web_wasm_b1_ms)} (${fmt(r.web_wasm_b1_ms)} vs ${fmt(r.web_wasm_float_b1_ms)} ms)` +
      (r.first_prediction_runs_ms ? ` first_prediction_ms=${fmt(median(r.first_prediction_runs_ms))}` : ''),
  );
}
const eight = rows.find((r) => r.bits === 8);
if (eight !== undefined) {
  say(
    `onnx bytes against 8 bits: ${rows.map((r) => `${r.bits}:${((100 * r.onnx_bytes) / eight.onnx_bytes).toFixed(1)}%`).join(' ')} ` +
      `(float graph ${eight.onnx_float_bytes} bytes)`,
  );
}
if (profile !== null) {
  const top = (p: Record<string, number>) =>
    Object.entries(p)
      .slice(0, 6)
      .map(([op, ms]) => `${op}=${fmt(ms)}`)
      .join(' ');
  say(
    `onnxruntime per-operator ms at ${profile.bits} bits, batch ${largeBatch}: integer ${top(profile.integer)}`,
  );
  say(`  float ${top(profile.float)}`);
}
if (held.includes(8) && held.includes(4)) {
  const d8 = dedicatedBytes(bytes, 8);
  const d4 = dedicatedBytes(bytes, 4);
  say(
    `whole ${held[0]}..${held.at(-1)}-bit file: ${bytes.length} bytes; dedicated 8-bit ${d8} + dedicated 4-bit ${d4} = ${d8 + d4} ` +
      `(${((100 * bytes.length) / (d8 + d4)).toFixed(1)} %)`,
  );
}

const command = `npm run bench:deploy -- ${process.argv.slice(2).join(' ')}`.trim();
writeFileSync(join(repoRoot, 'bench', 'results', 'deploy.txt'), `$ ${command}\n${output.join('\n')}\n`);
const path = writeResult('deploy.json', {
  command,
  date: started.toISOString(),
  checkpoint,
  cpu: os.cpus()[0]?.model,
  cpu_flags: flags,
  logical_cores: os.cpus().length,
  load_average_before: loadBefore,
  load_average_after: loadAfter,
  threads,
  ort_version: ort.env.versions.common,
  native: addon.version(),
  iters,
  warmup,
  large_batch: largeBatch,
  integer_graph:
    'exportOnnx(model, { bits }): QuantizeLinear, ConvInteger/MatMulInteger (u8 weights, zero point 128), QLinearConv where exact requantization parameters exist, INT4 at <= 4 bits',
  float_graph:
    'exportOnnx(model, { bits, float: true }): the same weights dequantized, batch norm folded, activation fake quantization as float ops',
  native_int: 'StrataSession engine native: the integer plan on oneDNN int8 convolution / inner product',
  native_float: "StrataSession engine native, float: true: Strata's own forward at b on the native backend",
  rows,
  ort_profile_ms: profile,
  whole_file_bytes: bytes.length,
  peak_rss_mb: peakRssMb(),
});
log(`results: ${path} and bench/results/deploy.txt`);
