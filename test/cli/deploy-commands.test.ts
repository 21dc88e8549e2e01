import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { exportCommand } from '../../src/cli/commands/export.js';
import { extractCommand } from '../../src/cli/commands/extract.js';
import { packCommand } from '../../src/cli/commands/pack.js';
import { predictCommand } from '../../src/cli/commands/predict.js';
import { evalCommand } from '../../src/cli/commands/eval.js';
import { infoCommand } from '../../src/cli/commands/info.js';
import { serveModels } from '../../src/cli/commands/serve.js';
import type { CliIo } from '../../src/cli/io.js';
import { restoreModel } from '../../src/cli/restore.js';
import { noGrad } from '../../src/engine/autograd.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { inspectStrata, readStrata } from '../../src/format/index.js';
import { modelFromStrata } from '../../src/export/strata-model.js';
import { setPrecision } from '../../src/quant/quantize-model.js';
import { StrataSession } from '../../src/runtime/session.js';
import { getBackend, setBackend } from '../../src/engine/backend-registry.js';
import { referenceBackend } from '../../src/engine/backend-reference.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { buildModel } from '../../src/train/trainer.js';
import { mnistDigitPng, trainTinyMnist } from '../web/fixtures.js';
import { tarBytes } from '../data/fixtures.js';
import { tableRows, tempDir } from './helpers.js';

const dir = tempDir('deploy');
after(() => rmSync(dir, { recursive: true, force: true }));
const checkpoint = await trainTinyMnist(join(dir, 'run'), { bits: [8, 4, 2] });
const modelPath = join(dir, 'model.strata');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The deployment commands under a root program, run the way main.ts runs commands. */
async function strata(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { out: (t) => void (stdout += t), err: (t) => void (stderr += t) };
  const program = new Command('strata')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  for (const command of [
    packCommand(io),
    extractCommand(io),
    exportCommand(io),
    predictCommand(io),
    evalCommand(io),
    infoCommand(io),
  ]) {
    program.addCommand(command);
    command.copyInheritedSettings(program);
  }
  try {
    await program.parseAsync(args, { from: 'user' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode, stdout, stderr };
    return { code: 1, stdout, stderr: `${stderr}error: ${(e as Error).message}\n` };
  }
}

function logitsAt(model: Parameters<typeof setPrecision>[0], input: Tensor, bits: number): Float32Array {
  setPrecision(model, bits);
  return Float32Array.from(noGrad(() => model.forward(input)).data);
}

test('pack writes every precision 2..8 into one file, prints its byte offsets, records the input', async () => {
  const r = await strata('pack', checkpoint, '-o', modelPath);
  assert.equal(r.code, 0, r.stderr);
  const bytes = new Uint8Array(readFileSync(modelPath));
  const info = inspectStrata(bytes);
  const rows = tableRows(r.stdout);
  assert.deepEqual(
    rows.map((row) => row[0]),
    ['w2a2', 'w3a3', 'w4a4', 'w5a5', 'w6a6', 'w7a7', 'w8a8'],
  );
  rows.forEach((row, i) => assert.equal(Number(row[1].replace(/,/g, '')), info.precisions[i].completeAt));
  assert.deepEqual(
    rows.map((row) => row[4]),
    ['trained', 'calibrated', 'trained', 'calibrated', 'calibrated', 'calibrated', 'trained'],
  );
  assert.match(r.stdout, /calibration: mnist training split, augmented, 8 batches of 64/);
  assert.equal(info.precisions[info.precisions.length - 1].completeAt, bytes.length);
  const meta = info.metadata!;
  assert.deepEqual(meta.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.deepEqual(meta.inputSize, [28, 28]);
  assert.deepEqual(meta.normalize, { mean: [0.1307], std: [0.3081] });
  assert.deepEqual(meta.trainedBits, [8, 4, 2]);
  // Without --validate the sources are recorded and the accuracies left unmeasured.
  assert.deepEqual(
    (meta.precisionInfo as { bits: number; source: string; top1: number | null }[]).map((p) => [
      p.bits,
      p.source,
      p.top1,
    ]),
    [
      [2, 'trained', null],
      [3, 'calibrated', null],
      [4, 'trained', null],
      [5, 'calibrated', null],
      [6, 'calibrated', null],
      [7, 'calibrated', null],
      [8, 'trained', null],
    ],
  );
  // The packed file computes what the checkpoint computes at a trained precision.
  const restored = restoreModel(checkpoint);
  const input = Tensor.randn([4, 28, 28, 1], new Random(1));
  for (const bits of [2, 8]) {
    const rebuilt = modelFromStrata(readStrata(bytes, { bits })).model;
    const want = logitsAt(restored.model, input, bits);
    const got = logitsAt(rebuilt, input, bits);
    const scale = Math.max(...want.map(Math.abs));
    want.forEach((v, i) =>
      assert.ok(Math.abs(v - got[i]) <= 1e-4 * scale, `${bits} bits logit ${i}: ${got[i]} vs ${v}`),
    );
  }
});

test('pack refuses a full-precision checkpoint and says why', async () => {
  const config = resolveTrainConfig({ model: 'small-cnn', width: 4, dataset: 'mnist', mode: 'fp', out: dir });
  const { model, architecture } = buildModel(config, 10, 1);
  const fpPath = join(dir, 'fp.ckpt');
  const arrays = new Map<string, Float32Array>();
  for (const [name, t] of model.stateDict()) arrays.set(`model.${name}`, t.data);
  saveCheckpoint(fpPath, { meta: { config, architecture, quant: null, classes: [...'0123456789'] }, arrays });
  const r = await strata('pack', fpPath, '-o', join(dir, 'fp.strata'));
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /full-precision model \(mode 'fp'\); pack it post-training with --ptq \(calibrated on --calibrate data\), or train it/,
  );
  assert.ok(!existsSync(join(dir, 'fp.strata')));
});

test('extract keeps precisions 2..b: it reads exactly like the full file at each of them', async () => {
  const out = join(dir, 'w4.strata');
  const r = await strata('extract', modelPath, '--bits', '4', '-o', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /precisions 2\.\.4 bits/);
  const full = new Uint8Array(readFileSync(modelPath));
  const small = new Uint8Array(readFileSync(out));
  assert.deepEqual(
    inspectStrata(small).precisions.map((p) => p.bits),
    [2, 3, 4],
  );
  assert.ok(small.length < inspectStrata(full).precisions[3].completeAt);
  for (const bits of [2, 3, 4]) {
    const a = readStrata(full, { bits });
    const b = readStrata(small, { bits });
    assert.deepEqual(b.layered, a.layered);
    assert.deepEqual(b.perPrecision, a.perPrecision);
  }
  const bad = await strata('extract', modelPath, '--bits', '9', '-o', join(dir, 'w9.strata'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Expected bits in \[2, 8\]/);
  const missing = await strata('extract', modelPath, '-o', join(dir, 'x.strata'));
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /--bits/);
});

test('export writes ONNX from a .strata file or a checkpoint; onnxruntime gives the file model’s logits', async () => {
  const onnxPath = join(dir, 'w4.onnx');
  const r = await strata('export', modelPath, '--bits', '4', '--format', 'onnx', '-o', onnxPath);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ONNX integer graph at 4 bits/);
  const floatPath = join(dir, 'w4-float.onnx');
  assert.equal((await strata('export', modelPath, '--bits', '4', '--float', '-o', floatPath)).code, 0);
  const input = { data: Tensor.randn([3, 28, 28, 1], new Random(2)).data, shape: [3, 28, 28, 1] };
  const reference = await StrataSession.create(modelPath, { bits: 4, engine: 'native' });
  const want = (await reference.predict(input)).logits;
  for (const path of [onnxPath, floatPath]) {
    const session = await StrataSession.create(path, { threads: 1 });
    assert.equal(session.bits, 4);
    const got = (await session.predict(input)).logits;
    const scale = Math.max(...want.map(Math.abs));
    const mean = got.reduce((s, v, i) => s + Math.abs(v - want[i]), 0) / got.length;
    assert.ok(mean <= 2e-3 * scale, `${path}: mean |diff| ${mean}`);
    await session.dispose();
  }
  await reference.dispose();
  // A checkpoint at a precision it was not trained at: derived by the cascade, with a note.
  const fromCheckpoint = await strata('export', checkpoint, '--bits', '3', '-o', join(dir, 'ckpt-w3.onnx'));
  assert.equal(fromCheckpoint.code, 0, fromCheckpoint.stderr);
  assert.match(fromCheckpoint.stderr, /3 bits was not trained/);
  assert.ok(existsSync(join(dir, 'ckpt-w3.onnx')));
  assert.notEqual((await strata('export', modelPath, '--format', 'tflite')).code, 0);
  const fp = await strata('export', modelPath, '--bits', 'fp');
  assert.equal(fp.code, 1);
  assert.match(fp.stderr, /quantized precisions only/);
});

test('predict prints the top-5 classes of an image, normalised as in training, for both engines', async () => {
  const digit = await mnistDigitPng(dir, 0);
  const r = await strata('predict', modelPath, digit.path, '--bits', '8', '--engine', 'onnxruntime');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const rows = tableRows(r.stdout);
  assert.equal(rows.length, 5);
  // Independent reference: the raw MNIST pixels normalised by hand.
  const data = Float32Array.from(digit.pixels, (p) => (p / 255 - 0.1307) / 0.3081);
  const session = await StrataSession.create(modelPath, { bits: 8, engine: 'onnxruntime', threads: 1 });
  const p = await session.predict({ data, shape: [1, 28, 28, 1] });
  await session.dispose();
  const order = Array.from(p.probabilities.keys()).sort((a, b) => p.probabilities[b] - p.probabilities[a]);
  assert.deepEqual(
    rows.map((row) => row[1]),
    order.slice(0, 5).map(String),
  );
  rows.forEach((row, i) => assert.equal(row[2], `${(100 * p.probabilities[order[i]]).toFixed(2)} %`));
  assert.match(
    r.stdout,
    new RegExp(
      `^${digit.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${order[0]} \\(8 bits, onnxruntime, integer ONNX graph\\)$`,
      'm',
    ),
  );

  // The default engine: the oneDNN int8 kernels when the addon is loaded, onnxruntime with a note when not.
  const byDefault = await strata('predict', modelPath, digit.path, '--bits', '8');
  assert.equal(byDefault.code, 0, byDefault.stderr);
  if (getBackend().name === 'native') {
    assert.equal(byDefault.stderr, '');
    assert.match(byDefault.stdout, /: \d \(8 bits, native, oneDNN int8 kernels\)$/m);
  } else assert.match(byDefault.stderr, /^note: the native addon is not loaded/);
  const saved = getBackend();
  setBackend(referenceBackend);
  try {
    const fallback = await strata('predict', modelPath, digit.path, '--bits', '8');
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(
      fallback.stderr,
      /^note: the native addon is not loaded \(.+\), so this runs through onnxruntime instead of Strata's oneDNN int8 engine; build the addon/,
    );
    assert.deepEqual(tableRows(fallback.stdout), rows);
    assert.match(fallback.stdout, /\(8 bits, onnxruntime, integer ONNX graph\)$/m);
  } finally {
    setBackend(saved);
  }

  // Larger images are resized to 28x28; several images form one batch; --json, native engine.
  const big = await mnistDigitPng(dir, 1, 2);
  const json = await strata(
    'predict',
    modelPath,
    digit.path,
    big.path,
    '--engine',
    'native',
    '--json',
    '--top',
    '3',
  );
  assert.equal(json.code, 0, json.stderr);
  const lines = json.stdout
    .trim()
    .split('\n')
    .map(
      (l) => JSON.parse(l) as { image: string; bits: number; top: { label: string; probability: number }[] },
    );
  assert.deepEqual(
    lines.map((l) => [l.image, l.bits, l.top.length]),
    [
      [digit.path, 8, 3],
      [big.path, 8, 3],
    ],
  );
  assert.equal(lines[0].top[0].label, String(order[0]));
  for (const l of lines)
    assert.ok(l.top[0].probability >= l.top[1].probability && l.top[1].probability >= l.top[2].probability);

  // A checkpoint works too (packed in memory), and a bad precision is refused.
  const fromCheckpoint = await strata(
    'predict',
    checkpoint,
    digit.path,
    '--bits',
    '8',
    '--engine',
    'onnxruntime',
  );
  assert.equal(fromCheckpoint.code, 0, fromCheckpoint.stderr);
  assert.deepEqual(tableRows(fromCheckpoint.stdout), rows);
  const bad = await strata('predict', modelPath, digit.path, '--bits', '1');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Expected bits in \[2, 8\]/);
});

test('predict, info and eval take an .onnx graph; eval takes a .strata file (or prefix) on a labelled archive or folder', async () => {
  // The ONNX graph records the file's input size, normalisation and classes: predict on it gives the
  // integer graph's own probabilities, the same as predict on the .strata file at that precision.
  const onnxPath = join(dir, 'w8.onnx');
  assert.equal((await strata('export', modelPath, '--bits', '8', '-o', onnxPath)).code, 0);
  const digit = await mnistDigitPng(dir, 0);
  const viaOnnx = await strata('predict', onnxPath, digit.path);
  assert.equal(viaOnnx.code, 0, viaOnnx.stderr);
  assert.equal(viaOnnx.stderr, '');
  const viaStrata = await strata('predict', modelPath, digit.path, '--bits', '8', '--engine', 'onnxruntime');
  assert.deepEqual(tableRows(viaOnnx.stdout), tableRows(viaStrata.stdout));
  assert.match(viaOnnx.stdout, /\(8 bits, onnxruntime, integer ONNX graph\)$/m);
  const native = await strata('predict', onnxPath, digit.path, '--engine', 'native');
  assert.equal(native.code, 1);
  assert.match(native.stderr, /runs only with --engine onnxruntime/);

  const info = await strata('info', onnxPath);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /exported by Strata: 8 bits, integer graph, 10 classes, input NCHW/);
  const ops = new Map(tableRows(info.stdout).map(([op, n]) => [op, Number(n)]));
  assert.equal(ops.get('ConvInteger'), 4, info.stdout);
  assert.equal(ops.get('MatMulInteger'), 1, info.stdout);

  // A labelled archive: <root>/<class>/<image>.png, 24 test digits.
  const members: { name: string; data?: Uint8Array; directory?: boolean }[] = [];
  const digits: Awaited<ReturnType<typeof mnistDigitPng>>[] = [];
  for (let i = 0; i < 24; i++) {
    const d = await mnistDigitPng(dir, i);
    digits.push(d);
    members.push({ name: `digits/${d.label}/${i}.png`, data: readFileSync(d.path) });
  }
  const archive = join(dir, 'digits.tar');
  writeFileSync(archive, tarBytes(members));
  // The default engine for a .strata file is the native one (when the addon is loaded).
  const evaluated = await strata('eval', modelPath, '--data', archive, '--bits', '8,2');
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const rows = tableRows(evaluated.stdout);
  assert.deepEqual(
    rows.map((r) => r[0]),
    ['w8a8', 'w2a2'],
  );
  assert.match(evaluated.stdout, /data: all 24 images, \d+ classes, labels matched by class name/);
  // Independent count: the native session on the hand-normalised pixels.
  for (const [row, bits] of [
    [rows[0], 8],
    [rows[1], 2],
  ] as const) {
    const session = await StrataSession.create(modelPath, { bits, engine: 'native' });
    const data = new Float32Array(24 * 784);
    digits.forEach((d, i) =>
      data.set(
        Float32Array.from(d.pixels, (p) => (p / 255 - 0.1307) / 0.3081),
        i * 784,
      ),
    );
    const p = await session.predict({ data, shape: [24, 28, 28, 1] });
    const correct = digits.filter((d, i) => p.classes[i] === d.label).length;
    assert.equal(row[1], ((100 * correct) / 24).toFixed(2), `${bits} bits`);
    if (getBackend().name === 'native') assert.match(row[5], /native, oneDNN int8 kernels/);
    await session.dispose();
  }
  // A prefix of the file holds the lower precisions: eval takes it and evaluates what it holds.
  const full = new Uint8Array(readFileSync(modelPath));
  const prefixPath = join(dir, 'prefix.strata');
  writeFileSync(prefixPath, full.subarray(0, inspectStrata(full).precisions[1].completeAt));
  const prefix = await strata('eval', prefixPath, '--data', archive);
  assert.equal(prefix.code, 0, prefix.stderr);
  assert.deepEqual(
    tableRows(prefix.stdout).map((r) => r[0]),
    ['w3a3', 'w2a2'],
  );
  // The same images as a folder, evaluated through the ONNX graph.
  const folder = join(dir, 'digits');
  for (const [i, d] of digits.entries()) {
    mkdirSync(join(folder, String(d.label)), { recursive: true });
    writeFileSync(join(folder, String(d.label), `${i}.png`), readFileSync(d.path));
  }
  const viaFolder = await strata('eval', onnxPath, '--data', folder);
  assert.equal(viaFolder.code, 0, viaFolder.stderr);
  assert.equal(tableRows(viaFolder.stdout)[0][1], rows[0][1]);
  const noData = await strata('eval', onnxPath);
  assert.equal(noData.code, 1);
  assert.match(noData.stderr, /records no dataset: pass --data <folder\|tar>/);
});

test('serve starts on a free port, lists the models and serves the built page client', async () => {
  let stdout = '';
  const server = await serveModels(
    dir,
    { port: 0, host: '127.0.0.1', quiet: true },
    { out: (t) => void (stdout += t), err: () => undefined },
  );
  try {
    assert.match(stdout, new RegExp(`^serving .* at ${server.url}/$`, 'm'));
    assert.ok(stdout.includes(`${server.url}/?model=model.strata`));
    const client = await fetch(`${server.url}/client.js`);
    assert.equal(client.status, 200);
    assert.match(await client.text(), /StrataStreamReader/);
    const model = await fetch(`${server.url}/model.strata`, { headers: { Range: 'bytes=0-7' } });
    assert.equal(model.status, 206);
    assert.deepEqual(
      new Uint8Array(await model.arrayBuffer()),
      new Uint8Array(readFileSync(modelPath)).subarray(0, 8),
    );
  } finally {
    await server.close();
  }
});
