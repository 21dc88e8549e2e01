/**
 * The integer ONNX graph: exact at every precision 2..8, run by onnxruntime on integer kernels (read
 * back from onnxruntime's own optimized model), with files whose size falls with the bits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { int8Form, intPlan } from '../../src/export/int-plan.js';
import { exportOnnx } from '../../src/export/onnx-export.js';
import { packInt4 } from '../../src/export/onnx-int.js';
import { exactRequantization, referenceCode } from '../../src/export/exact-requantize.js';
import { referenceInt8Kernels } from '../../src/engine/int8-kernels.js';
import { IntPlanRunner } from '../../src/runtime/int-engine.js';
import { StrataSession } from '../../src/runtime/session.js';
import { getBackend, setBackend } from '../../src/engine/backend-registry.js';
import { referenceBackend } from '../../src/engine/backend-reference.js';
import { readOnnxGraph } from '../../src/export/onnx-proto.js';
import { modelFromStrata, toStrataContent } from '../../src/export/strata-model.js';
import { readStrata, writeStrata } from '../../src/format/index.js';
import { calibratedModel, nhwcToNchw, PRECISIONS, strataLogits, type Fixture } from './fixtures.js';
import { buildImported, importOnnx } from '../../src/export/onnx-import.js';
import { noGrad } from '../../src/engine/autograd.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { quantizeModel, setPrecision } from '../../src/quant/quantize-model.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'onnx');

const INTEGER_OPS = new Set([
  'QLinearConv',
  'ConvInteger',
  'MatMulInteger',
  'QGemm',
  'QLinearMatMul',
  'MatMulIntegerToFloat',
]);
const ALL_BITS = [2, 3, 4, 5, 6, 7, 8];

async function runOptimized(bytes: Uint8Array, f: Fixture, optimizedPath: string): Promise<Float32Array> {
  const [n, h, w, c] = f.shape;
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    optimizedModelFilePath: optimizedPath,
    logSeverityLevel: 3,
  });
  try {
    const out = await session.run({
      input: new ort.Tensor('float32', nhwcToNchw(f.input.data, f.shape), [n, c, h, w]),
    });
    return Float32Array.from(out.logits.data as Float32Array);
  } finally {
    await session.release();
  }
}

test('int8Form: 2q+1 codes up to 7 bits (floor), q plus a correction at 8 bits, shifted codes for the round rule', () => {
  const seven = int8Form(Int32Array.of(-64, 0, 63), 0.5);
  assert.deepEqual([...seven.k], [-127, 1, 127]);
  assert.equal(seven.corr, 0);
  assert.equal(seven.divisor, 2);
  const eight = int8Form(Int32Array.of(-128, 5, 127), 0.5);
  assert.deepEqual([...eight.k], [-128, 5, 127]);
  assert.equal(eight.corr, 0.5);
  assert.equal(eight.divisor, 1);
  // round rule at the top precision: offset 0, codes in [-127, 128] -> k = q - 1, corr 1.
  const round = int8Form(Int32Array.of(-127, 128), 0);
  assert.deepEqual([...round.k], [-128, 127]);
  assert.equal(round.corr, 1);
  const roundTop = int8Form(Int32Array.of(-127, 128, 3), 0.25);
  assert.deepEqual([...roundTop.k], [-128, 127, 2]);
  assert.equal(roundTop.corr, 1.25);
  assert.throws(() => int8Form(Int32Array.of(-200, 200), 0.5), /more than 8 bits/);
  assert.deepEqual([...packInt4(Int8Array.of(-8, 7, 1))], [0x78, 0x01]);
  assert.throws(() => packInt4(Int8Array.of(8)), /not int4/);
});

test("resnet20 from a .strata file: at every precision 2..8 onnxruntime runs every quantized convolution and the classifier as integer ops, and the logits equal Strata's", async () => {
  const f = calibratedModel('resnet20', { inChannels: 3, size: 8 });
  const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
  const dir = mkdtempSync(join(tmpdir(), 'strata-onnx-int-'));
  try {
    for (const bits of ALL_BITS) {
      const { model } = modelFromStrata(readStrata(strata, { bits }));
      const bytes = exportOnnx(model, { bits });
      const optimized = join(dir, `resnet20-${bits}.onnx`);
      const got = await runOptimized(bytes, f, optimized);
      const ref = strataLogits(model, f.input, bits);
      let maxAbs = 0;
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(ref[i]));
        maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref[i]));
      }
      // Integer accumulation is exact; only the float epilogue's rounding order differs.
      assert.ok(maxDiff <= 1e-5 * maxAbs, `${bits} bits: max |diff| ${maxDiff} (max |logit| ${maxAbs})`);

      const plan = intPlan(model, bits);
      const layers = plan.steps.filter((s) => s.kind === 'int');
      assert.equal(
        layers.length,
        21,
        `${bits} bits: 18 block convolutions, 2 projections and the classifier`,
      );
      const graph = readOnnxGraph(readFileSync(optimized));
      const integer = graph.nodes.filter((n) => INTEGER_OPS.has(n.opType));
      for (const layer of layers) {
        // Each integer layer is one integer op reading its weight codes (the 8-bit correction is a second one).
        const ops = integer.filter(
          (n) => n.name.startsWith(`${layer.path}/`) && !n.name.startsWith(`${layer.path}.sum/`),
        );
        assert.equal(
          ops.length,
          1,
          `${bits} bits: ${layer.path} became [${ops.map((n) => n.opType).join(', ')}]`,
        );
      }
      const floatOps = graph.nodes.filter((n) =>
        ['Conv', 'Gemm', 'MatMul', 'FusedConv', 'FusedGemm'].includes(n.opType),
      );
      // The only float convolution left is the first one, which reads the float image (ORT's NCHWc
      // layout pass may rename it).
      assert.equal(
        floatOps.length,
        1,
        `${bits} bits: float ops ${floatOps.map((n) => `${n.name} (${n.opType})`).join(', ')}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('small-cnn: the integer graph equals Strata at every precision 2..8', async () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 28 });
  const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
  const dir = mkdtempSync(join(tmpdir(), 'strata-onnx-int-'));
  try {
    for (const bits of ALL_BITS) {
      const { model } = modelFromStrata(readStrata(strata, { bits }));
      const got = await runOptimized(exportOnnx(model, { bits }), f, join(dir, `m${bits}.onnx`));
      const ref = strataLogits(model, f.input, bits);
      const maxAbs = Math.max(...Array.from(ref, Math.abs));
      for (let i = 0; i < ref.length; i++) {
        assert.ok(
          Math.abs(got[i] - ref[i]) <= 1e-5 * maxAbs,
          `${bits} bits: logit ${i} ${got[i]} vs ${ref[i]}`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ONNX bytes fall with the bits: the 2- and 4-bit resnet20 files are at most 55% of the 8-bit one', () => {
  const f = calibratedModel('resnet20', { inChannels: 3, size: 8 });
  const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
  const sizes = new Map(
    ALL_BITS.map((b) => [
      b,
      exportOnnx(modelFromStrata(readStrata(strata, { bits: b })).model, { bits: b }).length,
    ]),
  );
  const eight = sizes.get(8)!;
  for (const b of [2, 3, 4]) {
    assert.ok(sizes.get(b)! <= 0.55 * eight, `${b} bits: ${sizes.get(b)} bytes against ${eight} at 8 bits`);
  }
  for (const b of [5, 6, 7]) assert.ok(sizes.get(b)! < eight * 1.01, `${b} bits: ${sizes.get(b)} bytes`);
});

test('requantize (the default): conv1 of a block becomes QLinearConv where exact parameters exist, and the logits stay those of the ConvInteger graph at every precision', async () => {
  const f = calibratedModel('resnet20', { inChannels: 3, size: 8 });
  const strata = writeStrata(toStrataContent(f.model, f.architecture!, f.quant!));
  const dir = mkdtempSync(join(tmpdir(), 'strata-onnx-int-'));
  try {
    const counts: number[] = [];
    for (const bits of ALL_BITS) {
      const { model } = modelFromStrata(readStrata(strata, { bits }));
      const path = join(dir, `requantized-${bits}.onnx`);
      const got = await runOptimized(exportOnnx(model, { bits }), f, path);
      const shipped = await runOptimized(
        exportOnnx(model, { bits, requantize: false }),
        f,
        join(dir, `plain-${bits}.onnx`),
      );
      // The same codes as the ConvInteger graph and the native engine (which test 2 and
      // test/runtime compare with Strata's forward), so the same logits.
      const native = new IntPlanRunner(intPlan(model, bits), referenceInt8Kernels).run(f.input.data, f.shape);
      const maxAbs = Math.max(...Array.from(native, Math.abs));
      for (let i = 0; i < native.length; i++) {
        assert.ok(
          Math.abs(got[i] - shipped[i]) <= 1e-6 * maxAbs,
          `${bits} bits: logit ${i} ${got[i]} vs ${shipped[i]}`,
        );
        assert.ok(
          Math.abs(got[i] - native[i]) <= 1e-6 * maxAbs,
          `${bits} bits: logit ${i} ${got[i]} vs int8 ${native[i]}`,
        );
      }
      const ops = readOnnxGraph(readFileSync(path)).nodes.map((n) => n.opType);
      counts.push(ops.filter((o) => o === 'QLinearConv').length);
    }
    // Exact parameters exist for every conv1 at 2 bits; never at 8 (the codes need 9 bits).
    assert.equal(counts[0], 9, `QLinearConv per precision 2..8: ${counts.join(', ')}`);
    assert.equal(counts[6], 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exactRequantization: the parameters found reproduce the reference codes at every accumulator value', () => {
  const f = calibratedModel('resnet20', { inChannels: 3, size: 8 });
  for (const bits of [2, 3]) {
    const plan = intPlan(f.model, bits);
    const step = plan.steps.find((s) => s.kind === 'int' && s.path === 'layers.0.conv1');
    const quantizer = plan.steps.find((s) => s.kind === 'quantize' && s.input === step?.output);
    assert.ok(step?.kind === 'int' && quantizer?.kind === 'quantize');
    const inputMax = 2 ** bits - 1;
    const exact = exactRequantization(step, quantizer, inputMax);
    assert.ok(exact !== null, `${bits} bits: no exact parameters`);
    const per = step.form.k.length / step.outFeatures;
    for (let c = 0; c < step.outFeatures; c++) {
      let lo = 0;
      let hi = 0;
      for (let i = c * per; i < (c + 1) * per; i++) {
        if (step.form.k[i] > 0) hi += step.form.k[i] * inputMax;
        else lo += step.form.k[i] * inputMax;
      }
      const t = exact.weightMultiplier[c];
      for (let acc = lo; acc <= hi; acc++) {
        // QLinearConv: round half to even of fl(fl(t acc + B) m), clamped to the codes.
        const v = Math.fround(Math.fround(t * acc + exact.bias[c]) * exact.multiplier[c]);
        const r = Math.round(v);
        const even = v - Math.floor(v) === 0.5 && r % 2 !== 0 ? r - 1 : r;
        const code = Math.min(quantizer.qmax, Math.max(0, even));
        assert.equal(code, referenceCode(step, quantizer, c, acc), `${bits} bits, channel ${c}, acc ${acc}`);
      }
    }
  }
});

test("a file without a fixed layer's step sizes is refused for integer inference, not guessed", () => {
  const f = calibratedModel('small-cnn', { inChannels: 1, size: 12, width: 4 });
  const content = toStrataContent(f.model, f.architecture!, f.quant!);
  const old = writeStrata({
    ...content,
    fixed: content.fixed.filter((t) => !t.name.endsWith('.weightScale')),
  });
  const { model } = modelFromStrata(readStrata(old, { bits: 4 }));
  assert.throws(() => intPlan(model, 4), {
    name: 'RangeError',
    message: /^intPlan: layer 'fc': the model file does not record the step sizes of a fixed layer/,
  });
  // The float graph still works from such a file.
  assert.ok(exportOnnx(model, { bits: 4, float: true }).length > 0);
});

test('an imported graph (PyTorch ResNet-20, MobileNetV2, a conv-BN CNN) has an integer plan: native int8 and the integer ONNX graph equal Strata at each precision it holds', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-onnx-int-'));
  try {
    for (const [name, size, channels] of [
      ['resnet20-init', 8, 3],
      ['mobilenetv2-small', 16, 3],
      ['mnist-cnn', 12, 1],
    ] as const) {
      const network = buildImported(
        importOnnx(readFileSync(join(FIXTURES, `${name}.onnx`)), { source: name }),
      );
      const rng = new Random(3);
      quantizeModel(network, { precisions: PRECISIONS });
      network.eval();
      const shape = [16, size, size, channels];
      noGrad(() => {
        setPrecision(network, PRECISIONS[0]);
        network.forward(Tensor.randn(shape, rng));
      });
      const input = Tensor.randn(shape, rng);
      const f: Fixture = { model: network, shape, input };
      for (const bits of PRECISIONS) {
        const plan = intPlan(network, bits);
        assert.ok(
          plan.steps.some((s) => s.kind === 'int'),
          `${name} at ${bits} bits: no integer layer`,
        );
        const ref = strataLogits(network, input, bits);
        const maxAbs = Math.max(...Array.from(ref, Math.abs));
        const native = new IntPlanRunner(plan, referenceInt8Kernels).run(input.data, shape);
        const onnx = await runOptimized(exportOnnx(network, { bits }), f, join(dir, `${name}-${bits}.onnx`));
        for (let i = 0; i < ref.length; i++) {
          assert.ok(
            Math.abs(native[i] - ref[i]) <= 1e-5 * maxAbs,
            `${name} ${bits} bits: int8 logit ${i} ${native[i]} vs ${ref[i]}`,
          );
          assert.ok(
            Math.abs(onnx[i] - ref[i]) <= 1e-5 * maxAbs,
            `${name} ${bits} bits: ONNX logit ${i} ${onnx[i]} vs ${ref[i]}`,
          );
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an imported graph with an element-wise product has no integer plan, and says which op; sessions fall back with a note', async () => {
  const network = buildImported(
    importOnnx(readFileSync(join(FIXTURES, 'ops-mix.onnx')), { source: 'ops-mix' }),
  );
  quantizeModel(network, { precisions: [8, 4] });
  network.eval();
  const [, c, h, w] = (
    JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Record<
      string,
      { inputShape: number[] }
    >
  )['ops-mix'].inputShape;
  noGrad(() => {
    setPrecision(network, 8);
    network.forward(Tensor.randn([2, h, w, c], new Random(1)));
  });
  assert.throws(() => intPlan(network, 4), {
    name: 'TypeError',
    message: /^intPlan: op '(mul|concat)' \(.+\) of an imported graph has no integer-plan step/,
  });
  // The default engine runs Strata's float forward (native) or the float graph (onnxruntime) instead.
  for (const backend of [getBackend(), referenceBackend]) {
    const saved = getBackend();
    setBackend(backend);
    try {
      const session = await StrataSession.create(network, { bits: 4, threads: 1 });
      assert.equal(session.arithmetic, 'float');
      assert.match(
        session.engineNote ?? '',
        /the integer plan does not cover this imported graph \(intPlan: op '(mul|concat)'/,
      );
      await session.dispose();
    } finally {
      setBackend(saved);
    }
  }
  await assert.rejects(StrataSession.create(network, { bits: 4, engine: 'native' }), { name: 'TypeError' });
});
