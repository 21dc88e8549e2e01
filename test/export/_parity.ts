import * as ort from 'onnxruntime-node';
import { noGrad } from '../../src/engine/autograd.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { createModel, type ModelName } from '../../src/nn/models/index.js';
import { quantizeModel, setPrecision, switchableNorms } from '../../src/quant/quantize-model.js';
import { exportOnnx } from '../../src/export/onnx-export.js';
import type { Module } from '../../src/nn/module.js';

function nhwcToNchw(x: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let z = 0; z < w; z++)
        for (let k = 0; k < c; k++) out[((i * c + k) * h + y) * w + z] = x[((i * h + y) * w + z) * c + k];
  return out;
}
const name = (process.argv[2] ?? 'small-cnn') as ModelName;
const [H, C] = name === 'small-cnn' ? [28, 1] : name === 'mobilenetv2' ? [32, 3] : [32, 3];
const rng = new Random(1);
const model: Module = createModel({
  name,
  numClasses: 10,
  inChannels: C,
  width: name === 'mobilenetv2' ? 0.25 : undefined,
});
const precisions = [8, 6, 4, 3, 2];
quantizeModel(model, { precisions });
for (const [, bn] of switchableNorms(model))
  for (const b of precisions) {
    const m = bn.at(b);
    for (let i = 0; i < m.numFeatures; i++) {
      m.weight.data[i] = 0.5 + rng.next();
      m.bias.data[i] = 0.2 * rng.normal();
    }
  }
const shape = [16, H, H, C];
const batch = () => Tensor.randn(shape, rng);
let t0 = Date.now();
model.train();
noGrad(() => {
  for (const b of [null, ...precisions]) {
    setPrecision(model, b);
    for (let k = 0; k < 2; k++) model.forward(batch());
  }
});
model.eval();
console.log('calib ms', Date.now() - t0);
const x = batch();
const xn = nhwcToNchw(x.data, shape);
for (const b of [null, ...precisions])
  for (const float of [false, true]) {
    if (b === null && float) continue;
    t0 = Date.now();
    setPrecision(model, b);
    const ref = noGrad(() => model.forward(x)).data;
    const bytes = exportOnnx(model, { bits: b, float });
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const r = await s.run({ input: new ort.Tensor('float32', xn, [16, C, H, H]) });
    const got = r.logits.data as Float32Array;
    let maxd = 0,
      maxr = 0,
      agree = 0;
    for (let i = 0; i < got.length; i++) {
      maxd = Math.max(maxd, Math.abs(got[i] - ref[i]));
      maxr = Math.max(maxr, Math.abs(ref[i]));
    }
    for (let n = 0; n < 16; n++) {
      const am = (a: Float32Array) => {
        let bi = 0;
        for (let k = 1; k < 10; k++) if (a[n * 10 + k] > a[n * 10 + bi]) bi = k;
        return bi;
      };
      if (am(got) === am(ref)) agree++;
    }
    let mean = 0,
      affected = 0;
    for (let i = 0; i < got.length; i++) mean += Math.abs(got[i] - ref[i]) / got.length;
    for (let n = 0; n < 16; n++) {
      let m = 0;
      for (let k = 0; k < 10; k++) m = Math.max(m, Math.abs(got[n * 10 + k] - ref[n * 10 + k]));
      if (m > 1e-4) affected++;
    }
    console.log('mean', mean.toExponential(2), 'affected', affected);
    console.log(
      b,
      float ? 'float' : 'qdq',
      'maxdiff',
      maxd.toExponential(2),
      'maxabs',
      maxr.toFixed(2),
      'agree',
      agree,
      'bytes',
      bytes.length,
      'ms',
      Date.now() - t0,
    );
  }
for (const b of [8, 4, 2]) {
  setPrecision(model, b);
  const ref = noGrad(() => model.forward(x)).data;
  console.log(
    b,
    Array.from(ref.slice(0, 4)).map((v) => v.toFixed(4)),
    Array.from(ref.slice(10, 14)).map((v) => v.toFixed(4)),
    Array.from(ref.slice(20, 24)).map((v) => v.toFixed(4)),
  );
}
