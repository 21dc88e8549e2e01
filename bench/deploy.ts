/**
 * npm run bench:deploy — what one layered file costs and buys at deployment, per precision b of a
 * ResNet-20 quantized over 8..2 (calibrated on random data, or packed from --checkpoint):
 *
 * - bytes: the prefix of the .strata file that holds precision b (inspectStrata's completeAt);
 * - first_prediction_ms: from the request to the first logits over a throttled local link
 *   (default 10 Mbit/s): stream the file, stop once b is complete, rebuild the network at b, export
 *   ONNX, create an onnxruntime-node session, classify one image (median of --first-iters runs);
 * - ort_*: onnxruntime-node latency (median of --iters runs) of the b-bit model as a QDQ graph and
 *   as a plain float graph of the same dequantized weights, at batch 1 and batch 128.
 *
 * It also compares the whole 2..8-bit file with the two dedicated single-precision files (8 and 4
 * bits) a non-layered deployment would ship.
 * Options: --checkpoint <path> --kbps 10000 --iters 5 --warmup 1 --first-iters 3 --threads 1 --large-batch 128
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { packCheckpoint } from '../src/cli/commands/pack.js';
import { CIFAR10_MEAN, CIFAR10_STD } from '../src/data/transforms.js';
import { noGrad } from '../src/engine/autograd.js';
import { getBackend } from '../src/engine/backend-registry.js';
import { Random } from '../src/engine/random.js';
import { Tensor } from '../src/engine/tensor.js';
import { exportOnnx } from '../src/export/onnx-export.js';
import { inspectStrata, readStrata, writeStrata, type StrataModelContent } from '../src/format/index.js';
import { manualSeed } from '../src/nn/init.js';
import { modelFromStrata, toStrataContent } from '../src/export/strata-model.js';
import { setPrecision } from '../src/quant/quantize-model.js';
import { startServer } from '../src/runtime/server.js';
import { resolveTrainConfig } from '../src/train/config.js';
import { buildModel } from '../src/train/trainer.js';
import { runProgressive, warmUpOrt, type OrtLike } from '../src/web/progressive.js';
import { arg, median, peakRssMb, writeResult } from './common.js';

function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const checkpoint = stringArg('checkpoint');
const kbps = arg('kbps', 10_000);
const iters = arg('iters', 5);
const warmup = arg('warmup', 1);
const firstIters = arg('first-iters', 3);
const threads = arg('threads', 1);
const largeBatch = arg('large-batch', 128);
const PRECISIONS = [8, 7, 6, 5, 4, 3, 2];
const log = (message: string) => process.stderr.write(`${message}\n`);

/** ResNet-20 quantized over 8..2 with batch-norm statistics and activation scales from random data. */
function calibratedResnet20(): StrataModelContent {
  manualSeed(0);
  const config = resolveTrainConfig({
    model: 'resnet20',
    dataset: 'cifar10-jpeg',
    mode: 'once',
    bits: PRECISIONS,
  });
  const { model, architecture, quant } = buildModel(config, 10, 3);
  const rng = new Random(1);
  noGrad(() => {
    // Training-mode passes set every precision's running statistics (and, the first time, the activation scales).
    model.train();
    for (const b of PRECISIONS) {
      setPrecision(model, b);
      for (let i = 0; i < 2; i++) model.forward(Tensor.randn([32, 32, 32, 3], rng));
    }
    model.eval();
  });
  return toStrataContent(model, architecture, quant!, {
    metadata: {
      classes: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
      inputSize: [32, 32],
      normalize: { mean: CIFAR10_MEAN, std: CIFAR10_STD },
      note: 'bench/deploy.ts: random weights, calibrated on random data',
    },
  });
}

/**
 * The file a deployment that ships one precision would need: the b-bit codes (as read from the
 * layered file) as a single section, topBits = minBits = b, with that precision's parameters and
 * the same fixed tensors.
 */
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

async function medianRunMs(session: ort.InferenceSession, input: ort.Tensor): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    await session.run({ [session.inputNames[0]]: input });
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return median(times);
}

async function ortLatency(onnx: Uint8Array, batch: number, rng: Random): Promise<number> {
  const session = await ort.InferenceSession.create(onnx, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  try {
    const input = new ort.Tensor('float32', Tensor.randn([batch, 3, 32, 32], rng).data, [batch, 3, 32, 32]);
    return await medianRunMs(session, input);
  } finally {
    await session.release();
  }
}

const bytes = checkpoint === undefined ? writeStrata(calibratedResnet20()) : packCheckpoint(checkpoint);
const info = inspectStrata(bytes);
const held = info.precisions.map((p) => p.bits);
const dir = mkdtempSync(join(os.tmpdir(), 'strata-deploy-'));
writeFileSync(join(dir, 'model.strata'), bytes);
const server = await startServer({ root: dir, port: 0, throttleKbps: kbps });
const ortLike = ort as unknown as OrtLike;
const sessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1 } as {
  executionProviders?: string[];
};
await warmUpOrt(ortLike, sessionOptions);
const rng = new Random(2);
const image = Tensor.randn([1, 32, 32, 3], rng).data;

/** Streams the file until `b` is complete and classifies `image` with precision b (onnxruntime-node). */
async function firstPrediction(
  b: number,
): Promise<{ totalMs: number; downloadMs: number; stagesMs: Record<string, number> }> {
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
  if (results.length !== 1) throw new Error(`expected one ${b}-bit result but got ${results.length}`);
  const r = results[0];
  return { totalMs: r.msToResult, downloadMs: r.msToPrecision, stagesMs: { ...r.timings } };
}

interface Row {
  bits: number;
  bytes: number;
  first_prediction_ms: number;
  first_prediction_runs_ms: number[];
  /** Median time until precision b had arrived (part of first_prediction_ms). */
  download_ms: number;
  /** Rebuild, export, session and run times of the last first-prediction run. */
  stages_ms: Record<string, number>;
  ort_b1_ms: number;
  ort_float_b1_ms: number;
  ort_b128_ms: number;
  ort_float_b128_ms: number;
}
const rows: Row[] = [];
try {
  // One unmeasured run, so that the first precision measured does not pay for compiling the code paths.
  await firstPrediction(held[held.length - 1]);
  for (const b of held) {
    const firstRuns: number[] = [];
    const downloads: number[] = [];
    let stages: Record<string, number> = {};
    for (let i = 0; i < firstIters; i++) {
      const run = await firstPrediction(b);
      firstRuns.push(run.totalMs);
      downloads.push(run.downloadMs);
      stages = run.stagesMs;
    }
    const { model } = modelFromStrata(readStrata(bytes, { bits: b }));
    const qdq = exportOnnx(model, { bits: b, inputSize: 32 });
    const float = exportOnnx(model, { bits: b, float: true, inputSize: 32 });
    const row: Row = {
      bits: b,
      bytes: info.precisions.find((p) => p.bits === b)!.completeAt,
      first_prediction_ms: median(firstRuns),
      first_prediction_runs_ms: firstRuns,
      download_ms: median(downloads),
      stages_ms: stages,
      ort_b1_ms: await ortLatency(qdq, 1, rng),
      ort_float_b1_ms: await ortLatency(float, 1, rng),
      ort_b128_ms: await ortLatency(qdq, largeBatch, rng),
      ort_float_b128_ms: await ortLatency(float, largeBatch, rng),
    };
    rows.push(row);
    log(`w${b} done`);
  }
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}

const dedicated8 = held.includes(8) ? dedicatedBytes(bytes, 8) : null;
const dedicated4 = held.includes(4) ? dedicatedBytes(bytes, 4) : null;
const fmt = (ms: number) => ms.toFixed(ms < 10 ? 2 : 0);

console.log(
  `ResNet-20 over ${held[0]}..${held.at(-1)} bits${checkpoint ? ` (${checkpoint})` : ' (random weights, calibrated on random data)'}; ` +
    `link ${kbps / 1000} Mbit/s; onnxruntime-node ${ort.env.versions.common}, ${threads} thread(s); ` +
    `backend ${getBackend().name}; cpu ${os.cpus()[0]?.model ?? 'unknown'}`,
);
for (const r of rows) {
  console.log(
    `bits=${r.bits} bytes=${r.bytes} first_prediction_ms=${fmt(r.first_prediction_ms)} ort_b1_ms=${fmt(r.ort_b1_ms)} ` +
      `ort_float_b1_ms=${fmt(r.ort_float_b1_ms)} ort_b${largeBatch}_ms=${fmt(r.ort_b128_ms)} ort_float_b${largeBatch}_ms=${fmt(r.ort_float_b128_ms)}`,
  );
}
const whole = bytes.length;
if (dedicated8 !== null && dedicated4 !== null) {
  const pair = dedicated8 + dedicated4;
  console.log(
    `whole ${held[0]}..${held.at(-1)}-bit file: ${whole} bytes; dedicated 8-bit file ${dedicated8} + dedicated 4-bit file ${dedicated4} = ${pair} bytes; ` +
      `layered file is ${((100 * whole) / pair).toFixed(1)} % of the pair (${whole < pair ? 'smaller' : 'NOT smaller'})`,
  );
  if (whole >= pair) process.exitCode = 1;
} else {
  console.log(
    `whole file: ${whole} bytes (it does not hold both 8 and 4 bits, so no dedicated-file comparison)`,
  );
}

const path = writeResult('deploy.json', {
  command: `npm run bench:deploy -- ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  cpu: os.cpus()[0]?.model,
  model: checkpoint ?? 'resnet20 (random weights, calibrated on random data)',
  link_kbps: kbps,
  ort_threads: threads,
  ort_version: ort.env.versions.common,
  iters,
  first_iters: firstIters,
  large_batch: largeBatch,
  float_graph: 'the same b-bit weights dequantized into a plain float32 graph (exportOnnx float: true)',
  rows,
  whole_file_bytes: whole,
  dedicated_8bit_bytes: dedicated8,
  dedicated_4bit_bytes: dedicated4,
  peak_rss_mb: peakRssMb(),
});
log(`results: ${path}`);
