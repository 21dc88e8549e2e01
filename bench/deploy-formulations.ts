/**
 * npm run bench:deploy-formulations — issue 12's open question: is there an exact integer ONNX
 * spelling of the integer plan that onnxruntime-node's CPU provider runs faster than the float graph?
 * Side by side in one process, on the checkpoint bench:deploy uses, per precision (--bits, default
 * 2..8): the float graph, the shipped integer graph (ConvInteger + Cast/Mul/Add), the candidates of
 * bench/int-formulations.ts, the shipped graph with int8 activation codes (ConvInteger's u8 x s8 path)
 * and the requantize graph (QLinearConv where exact parameters exist). Every graph
 * is timed at --large-batch (128) and batch 1, candidates alternated round robin (each round in
 * another order) on --threads threads; each graph's logits are compared with Strata's own forward at
 * that precision (the parity criterion of test/export/onnx-int.test.ts: max |diff| <= 1e-5 max |logit|);
 * the operators of each optimized graph (onnxruntime's optimizedModelFilePath) and a per-operator
 * profile at --profile-bits are recorded. Output: bench/results/deploy-formulations.{txt,json}.
 * Options: --checkpoint <path> --bits 2,4,8 --iters 5 --warmup 1 --threads 1 --large-batch 128 --profile-bits 4
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { packCheckpoint } from '../src/cli/commands/pack.js';
import { noGrad } from '../src/engine/autograd.js';
import { Random } from '../src/engine/random.js';
import { Tensor } from '../src/engine/tensor.js';
import { intPlan } from '../src/export/int-plan.js';
import { exportOnnx, nhwcToNchw } from '../src/export/onnx-export.js';
import { emitIntGraph } from '../src/export/onnx-int.js';
import { readOnnxGraph } from '../src/export/onnx-proto.js';
import { modelFromStrata } from '../src/export/strata-model.js';
import { readStrata } from '../src/format/index.js';
import { setPrecision } from '../src/quant/quantize-model.js';
import { IntPlanRunner } from '../src/runtime/int-engine.js';
import { arg, median, repoRoot, writeResult } from './common.js';
import { dequantizeEpilogue, encodeEmitted, matmulGraph } from './int-formulations.js';
import { ortOperatorProfile } from './ort-profile.js';

function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const checkpoint = stringArg('checkpoint') ?? 'checkpoints/cifar10-resnet20-once3.ckpt';
const bitsList = (stringArg('bits') ?? '2,3,4,5,6,7,8').split(',').map(Number);
const iters = arg('iters', 5);
const warmup = arg('warmup', 1);
const threads = arg('threads', 1);
const largeBatch = arg('large-batch', 128);
const profileBits = arg('profile-bits', 4);
const output: string[] = [];
const say = (line: string) => {
  output.push(line);
  console.log(line);
};
const log = (message: string) => process.stderr.write(`${message}\n`);
const ortOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 3 as const };

interface Candidate {
  name: string;
  exact: boolean;
  graph: Uint8Array;
}

function candidates(
  bytes: Uint8Array,
  b: number,
): { list: Candidate[]; model: ReturnType<typeof modelFromStrata>['model'] } {
  const { model } = modelFromStrata(readStrata(bytes, { bits: b }));
  const plan = intPlan(model, b);
  const list: Candidate[] = [
    { name: 'float', exact: false, graph: exportOnnx(model, { bits: b, float: true }) },
    // The ConvInteger graph (the default export until exact requantization, and still at 5..8 bits).
    { name: 'shipped', exact: true, graph: exportOnnx(model, { bits: b, requantize: false }) },
    {
      name: 'shipped-s8codes',
      exact: true,
      graph: encodeEmitted(emitIntGraph(plan, 21, false, true), plan, 32),
    },
    { name: 'dq-epilogue', exact: true, graph: dequantizeEpilogue(emitIntGraph(plan, 21), plan, 32) },
    {
      name: 'mm-gather-s8-fused',
      exact: true,
      graph: matmulGraph(plan, 32, { im2col: 'gather', weights: 'int8', fuse: true }),
    },
    {
      name: 'mm-slices-s8-fused',
      exact: true,
      graph: matmulGraph(plan, 32, { im2col: 'slices', weights: 'int8', fuse: true }),
    },
    // Exact since exact-requantize.ts: QLinearConv only where every channel has exact parameters.
    { name: 'requantize', exact: true, graph: exportOnnx(model, { bits: b }) },
  ];
  return { list, model };
}

/** Op types of onnxruntime's optimized graph, with counts. */
async function optimizedOps(graph: Uint8Array): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(os.tmpdir(), 'strata-opt-'));
  try {
    const path = join(dir, 'optimized.onnx');
    const s = await ort.InferenceSession.create(graph, { ...ortOptions, optimizedModelFilePath: path });
    await s.release();
    const counts: Record<string, number> = {};
    for (const n of readOnnxGraph(readFileSync(path)).nodes) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
    return counts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * [min, median] ms of each session at one input, round robin, each round rotated. On this shared
 * machine the minimum is the better estimate of a run that other processes did not interrupt.
 */
async function roundRobin(sessions: ort.InferenceSession[], input: ort.Tensor): Promise<[number, number][]> {
  const times = sessions.map(() => [] as number[]);
  for (let r = 0; r < warmup + iters; r++) {
    for (let k = 0; k < sessions.length; k++) {
      const i = (k + r) % sessions.length;
      const t0 = performance.now();
      await sessions[i].run({ input });
      if (r >= warmup) times[i].push(performance.now() - t0);
    }
  }
  return times.map((t) => [Math.min(...t), median(t)]);
}

const started = new Date();
const loadBefore = os.loadavg();
const bytes = packCheckpoint(join(repoRoot, checkpoint));
const rng = new Random(7);
const nhwcLarge = Tensor.randn([largeBatch, 32, 32, 3], rng);
const nhwcOne = Tensor.randn([1, 32, 32, 3], rng);
const large = new ort.Tensor('float32', nhwcToNchw(nhwcLarge.data, nhwcLarge.shape), [largeBatch, 3, 32, 32]);
const one = new ort.Tensor('float32', nhwcToNchw(nhwcOne.data, nhwcOne.shape), [1, 3, 32, 32]);

interface Row {
  bits: number;
  name: string;
  exact_by_construction: boolean;
  /** Minimum over the runs (see roundRobin) and median. */
  b128_ms: number;
  b128_median_ms: number;
  b1_ms: number;
  b1_median_ms: number;
  /** float ms / this ms, on the minima. */
  speedup_b128: number;
  speedup_b128_median: number;
  speedup_b1: number;
  /** max |logit - Strata's forward| / max |logit|. */
  max_diff_rel: number;
  /** max |logit - the native int8 engine's| / max |logit| (the same plan, exact integer sums). */
  max_diff_native_rel: number;
  /** max |logit - the shipped integer graph's| / max |logit| (the same onnxruntime stem convolution). */
  max_diff_shipped_rel: number;
  parity: boolean;
  onnx_bytes: number;
}
const rows: Row[] = [];
const ops: Record<string, Record<string, number>> = {};
const profiles: Record<string, Record<string, number>> = {};
for (const b of bitsList) {
  const { list, model } = candidates(bytes, b);
  setPrecision(model, b);
  model.eval();
  const ref = Float32Array.from(noGrad(() => model.forward(nhwcLarge)).data);
  const maxAbs = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const native = new IntPlanRunner(intPlan(model, b)).run(nhwcLarge.data, nhwcLarge.shape);
  const sessions = await Promise.all(list.map((c) => ort.InferenceSession.create(c.graph, ortOptions)));
  try {
    const diffs: number[] = [];
    const nativeDiffs: number[] = [];
    const shippedDiffs: number[] = [];
    const outputs: Float32Array[] = [];
    for (const s of sessions)
      outputs.push(Float32Array.from((await s.run({ input: large })).logits.data as Float32Array));
    const shipped = outputs[list.findIndex((c) => c.name === 'shipped')];
    for (const got of outputs) {
      let ds = 0;
      for (let i = 0; i < ref.length; i++) ds = Math.max(ds, Math.abs(got[i] - shipped[i]));
      shippedDiffs.push(ds / maxAbs);
      let d = 0;
      let dn = 0;
      for (let i = 0; i < ref.length; i++) {
        d = Math.max(d, Math.abs(got[i] - ref[i]));
        dn = Math.max(dn, Math.abs(got[i] - native[i]));
      }
      diffs.push(d / maxAbs);
      nativeDiffs.push(dn / maxAbs);
    }
    const t128 = await roundRobin(sessions, large);
    const t1 = await roundRobin(sessions, one);
    list.forEach((c, i) =>
      rows.push({
        bits: b,
        name: c.name,
        exact_by_construction: c.exact,
        b128_ms: t128[i][0],
        b128_median_ms: t128[i][1],
        b1_ms: t1[i][0],
        b1_median_ms: t1[i][1],
        speedup_b128: t128[0][0] / t128[i][0],
        speedup_b128_median: t128[0][1] / t128[i][1],
        speedup_b1: t1[0][0] / t1[i][0],
        max_diff_rel: diffs[i],
        max_diff_native_rel: nativeDiffs[i],
        max_diff_shipped_rel: shippedDiffs[i],
        parity: diffs[i] <= 1e-5,
        onnx_bytes: c.graph.length,
      }),
    );
  } finally {
    for (const s of sessions) await s.release();
  }
  if (b === profileBits) {
    for (const c of list) {
      ops[c.name] = await optimizedOps(c.graph);
      profiles[c.name] = await ortOperatorProfile(c.graph, large, ortOptions, iters);
    }
  }
  log(`w${b} done (load ${os.loadavg()[0].toFixed(2)})`);
}
const loadAfter = os.loadavg();

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0));
say(
  `ResNet-20 ${checkpoint}; onnxruntime-node ${ort.env.versions.common}, threads=${threads}, batch ${largeBatch} and 1; ` +
    `cpu ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} logical cores; load average ${loadBefore[0].toFixed(2)} before, ` +
    `${loadAfter[0].toFixed(2)} after; minimum (median) of ${iters} after ${warmup} warm-up, candidates round robin; ` +
    'speed-up = float ms / candidate ms; parity = max |logit - Strata| <= 1e-5 max |logit| ' +
    "(in brackets: that ratio, and against the native engine's int8 logits and the shipped integer graph's)",
);
for (const r of rows) {
  say(
    `bits=${r.bits} ${r.name.padEnd(21)} b${largeBatch}=${fmt(r.b128_ms).padStart(5)} ms (x${r.speedup_b128.toFixed(2)}; ` +
      `median ${fmt(r.b128_median_ms)} ms, x${r.speedup_b128_median.toFixed(2)}) ` +
      `b1=${fmt(r.b1_ms)} ms (x${r.speedup_b1.toFixed(2)}) parity=${r.parity ? 'yes' : 'NO'} (${r.max_diff_rel.toExponential(1)}; ` +
      `native int8 ${r.max_diff_native_rel.toExponential(1)}; shipped ${r.max_diff_shipped_rel.toExponential(1)}) ` +
      `bytes=${r.onnx_bytes}`,
  );
}
const top = (p: Record<string, number>, n = 8) =>
  Object.entries(p)
    .slice(0, n)
    .map(([op, v]) => `${op}=${fmt(v)}`)
    .join(' ');
for (const name of Object.keys(profiles)) {
  say(`profile ${profileBits} bits, batch ${largeBatch}, ${name}: ${top(profiles[name])}`);
  say(
    `  optimized graph ops: ${Object.entries(ops[name])
      .sort((a, c) => c[1] - a[1])
      .map(([op, n]) => `${op}:${n}`)
      .join(' ')}`,
  );
}
const command = `npm run bench:deploy-formulations -- ${process.argv.slice(2).join(' ')}`.trim();
writeFileSync(
  join(repoRoot, 'bench', 'results', 'deploy-formulations.txt'),
  `$ ${command}\n${output.join('\n')}\n`,
);
writeResult('deploy-formulations.json', {
  command,
  date: started.toISOString(),
  checkpoint,
  ort_version: ort.env.versions.common,
  threads,
  iters,
  warmup,
  large_batch: largeBatch,
  load_average_before: loadBefore,
  load_average_after: loadAfter,
  rows,
  optimized_ops: ops,
  profile_ms: profiles,
});
