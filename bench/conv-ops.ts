/**
 * npm run bench:conv-ops — one ResNet-20 stage-1 convolution (3x3, 16 -> 16 channels, 32x32, batch
 * --batch 128) through each onnxruntime-node CPU operator that could carry it, alternated round
 * robin on --threads threads: float Conv (+ bias), ConvInteger with each pair of input/weight types
 * onnxruntime accepts, QLinearConv (u8 x, s8 w) and MatMulInteger on a precomputed im2col matrix
 * (u8 x s8, u8 x u8; the GEMM alone, without the im2col). Random 4-bit codes; output: one line a
 * variant (minimum and median ms, or why onnxruntime refused it). Options: --batch 128 --channels 16 --size 32 --iters 7
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { encodeOnnxModel, OnnxDataType, type OnnxNode, type OnnxTensor } from '../src/export/onnx-proto.js';
import { arg, median } from './common.js';

const batch = arg('batch', 128);
const C = arg('channels', 16);
const S = arg('size', 32);
const iters = arg('iters', 7);
const threads = arg('threads', 1);
const ortOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 3 as const };

let seed = 1;
const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const codes = (n: number, lo: number, hi: number) =>
  Array.from({ length: n }, () => lo + Math.floor(rand() * (hi - lo + 1)));

type Elem = 'u8' | 's8' | 'f32';
const typeOf = { u8: OnnxDataType.UINT8, s8: OnnxDataType.INT8, f32: OnnxDataType.FLOAT } as const;
const arrayOf = (t: Elem, v: number[]) =>
  t === 'u8' ? Uint8Array.from(v) : t === 's8' ? Int8Array.from(v) : Float32Array.from(v);

function model(
  input: { t: Elem; shape: number[] },
  nodes: OnnxNode[],
  inits: OnnxTensor[],
  outType: OnnxDataType,
) {
  return encodeOnnxModel({
    irVersion: 10,
    opset: 21,
    producerName: 'bench',
    producerVersion: '0',
    graphName: 'g',
    nodes,
    initializers: inits,
    inputs: [{ name: 'x', elemType: typeOf[input.t], shape: input.shape }],
    outputs: [{ name: 'y', elemType: outType, shape: [] }],
  });
}
const convAttrs = {
  kernel_shape: { kind: 'ints' as const, value: [3, 3] },
  pads: { kind: 'ints' as const, value: [1, 1, 1, 1] },
};
const K = C * 9;
const wCodes = codes(C * K, -7, 7);
const xCodes = codes(batch * C * S * S, 0, 15);

interface Variant {
  name: string;
  graph: Uint8Array;
  input: ort.Tensor;
}
const nchw = [batch, C, S, S];
const variants: Variant[] = [];
const scalar = (name: string, t: Elem, v: number): OnnxTensor => ({
  name,
  dataType: typeOf[t],
  dims: [],
  values: arrayOf(t, [v]),
});
variants.push({
  name: 'float Conv + bias',
  graph: model(
    { t: 'f32', shape: nchw },
    [{ opType: 'Conv', name: 'c', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: convAttrs }],
    [
      { name: 'w', dataType: OnnxDataType.FLOAT, dims: [C, C, 3, 3], values: Float32Array.from(wCodes) },
      { name: 'b', dataType: OnnxDataType.FLOAT, dims: [C], values: new Float32Array(C) },
    ],
    OnnxDataType.FLOAT,
  ),
  input: new ort.Tensor('float32', Float32Array.from(xCodes), nchw),
});
for (const [xt, wt] of [
  ['u8', 'u8'],
  ['u8', 's8'],
  ['s8', 'u8'],
  ['s8', 's8'],
] as const) {
  const wOff = wt === 'u8' ? 128 : 0;
  variants.push({
    name: `ConvInteger x ${xt}, w ${wt}`,
    graph: model(
      { t: xt, shape: nchw },
      [
        {
          opType: 'ConvInteger',
          name: 'c',
          inputs: ['x', 'w', 'xz', 'wz'],
          outputs: ['y'],
          attributes: convAttrs,
        },
      ],
      [
        {
          name: 'w',
          dataType: typeOf[wt],
          dims: [C, C, 3, 3],
          values: arrayOf(
            wt,
            wCodes.map((v) => v + wOff),
          ),
        },
        scalar('xz', xt, 0),
        scalar('wz', wt, wOff),
      ],
      OnnxDataType.INT32,
    ),
    input: new ort.Tensor(xt === 'u8' ? 'uint8' : 'int8', arrayOf(xt, xCodes) as Uint8Array, nchw),
  });
}
variants.push({
  name: 'QLinearConv x u8, w s8 (requantizes)',
  graph: model(
    { t: 'u8', shape: nchw },
    [
      {
        opType: 'QLinearConv',
        name: 'c',
        inputs: ['x', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz'],
        outputs: ['y'],
        attributes: convAttrs,
      },
    ],
    [
      { name: 'w', dataType: OnnxDataType.INT8, dims: [C, C, 3, 3], values: Int8Array.from(wCodes) },
      scalar('xs', 'f32', 1),
      scalar('xz', 'u8', 0),
      scalar('ws', 'f32', 0.01),
      scalar('wz', 's8', 0),
      scalar('ys', 'f32', 1),
      scalar('yz', 'u8', 0),
    ],
    OnnxDataType.UINT8,
  ),
  input: new ort.Tensor('uint8', Uint8Array.from(xCodes), nchw),
});
// The GEMM of a channels-last im2col matrix [N S S, 9 C] against constant weights [9 C, C].
const rows = batch * S * S;
const im2col = Uint8Array.from(codes(rows * K, 0, 15));
for (const wt of ['s8', 'u8'] as const) {
  const wOff = wt === 'u8' ? 128 : 0;
  for (const fused of [false, true]) {
    const nodes: OnnxNode[] = fused
      ? [
          {
            opType: 'MatMulInteger',
            name: 'm',
            inputs: ['x', 'w', 'xz', 'wz'],
            outputs: ['acc'],
          },
          { opType: 'Size', name: 'sz', inputs: ['x'], outputs: ['n'] },
          { opType: 'Greater', name: 'gt', inputs: ['n', 'zero'], outputs: ['pos'] },
          {
            opType: 'Cast',
            name: 'c1',
            inputs: ['pos'],
            outputs: ['one'],
            attributes: { to: { kind: 'int', value: 1 } },
          },
          { opType: 'Mul', name: 'sc', inputs: ['one', 'scale'], outputs: ['s'] },
          {
            opType: 'Cast',
            name: 'c2',
            inputs: ['acc'],
            outputs: ['accf'],
            attributes: { to: { kind: 'int', value: 1 } },
          },
          { opType: 'Mul', name: 'mul', inputs: ['accf', 's'], outputs: ['scaled'] },
          { opType: 'Add', name: 'add', inputs: ['scaled', 'bias'], outputs: ['y'] },
        ]
      : [{ opType: 'MatMulInteger', name: 'm', inputs: ['x', 'w', 'xz', 'wz'], outputs: ['y'] }];
    variants.push({
      name: `MatMulInteger on im2col, w ${wt}${fused ? ' + epilogue (MatMulIntegerToFloat)' : ''}`,
      graph: model(
        { t: 'u8', shape: [rows, K] },
        nodes,
        [
          {
            name: 'w',
            dataType: typeOf[wt],
            dims: [K, C],
            values: arrayOf(
              wt,
              wCodes.map((v) => v + wOff),
            ),
          },
          scalar('xz', 'u8', 0),
          scalar('wz', wt, wOff),
          { name: 'zero', dataType: OnnxDataType.INT64, dims: [], values: BigInt64Array.of(0n) },
          { name: 'scale', dataType: OnnxDataType.FLOAT, dims: [C], values: new Float32Array(C).fill(0.01) },
          { name: 'bias', dataType: OnnxDataType.FLOAT, dims: [C], values: new Float32Array(C).fill(0.5) },
        ],
        fused ? OnnxDataType.FLOAT : OnnxDataType.INT32,
      ),
      input: new ort.Tensor('uint8', im2col, [rows, K]),
    });
  }
}

const load = os.loadavg()[0];
const sessions: (ort.InferenceSession | string)[] = [];
for (const v of variants) {
  try {
    const s = await ort.InferenceSession.create(v.graph, ortOptions);
    await s.run({ x: v.input });
    sessions.push(s);
  } catch (e) {
    sessions.push((e as Error).message.split('\n')[0].slice(0, 160));
  }
}
const times = variants.map(() => [] as number[]);
for (let r = 0; r < iters + 1; r++) {
  for (let k = 0; k < variants.length; k++) {
    const i = (k + r) % variants.length;
    const s = sessions[i];
    if (typeof s === 'string') continue;
    const t0 = performance.now();
    await s.run({ x: variants[i].input });
    if (r > 0) times[i].push(performance.now() - t0);
  }
}
console.log(
  `one 3x3 convolution ${C}->${C}, ${S}x${S}, batch ${batch}, ${(batch * S * S * K * C) / 1e6} M MAC; onnxruntime-node ` +
    `${ort.env.versions.common}, threads=${threads}; minimum (median) of ${iters}, round robin; load average ${load.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after`,
);
variants.forEach((v, i) => {
  const s = sessions[i];
  console.log(
    `  ${v.name.padEnd(62)} ${typeof s === 'string' ? `refused: ${s}` : `${Math.min(...times[i]).toFixed(1)} ms (median ${median(times[i]).toFixed(1)})`}`,
  );
});
