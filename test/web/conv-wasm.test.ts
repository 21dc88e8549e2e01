/**
 * The browser's WebAssembly forward convolution computes exactly what the reference backend's
 * TypeScript kernel computes: bitwise the same outputs over random geometries (groups, strides,
 * padding, dilation, batches, inputs with zeros, with and without bias).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referenceBackend } from '../../src/engine/backend-reference.js';
import { loadNativeBackend } from '../../src/web/backend-native-browser.js';
import { wasmConv2dForward } from '../../src/web/conv-wasm.js';

test('the WebAssembly conv2dForward matches the reference kernel bit for bit', () => {
  const conv = wasmConv2dForward(referenceBackend.conv2dForward);
  assert.ok(conv !== null, 'WebAssembly is available in Node');
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = (n: number) => Math.floor(random() * n);
  let checked = 0;
  for (let t = 0; t < 300; t++) {
    const groups = [1, 1, 2, 3][t % 4];
    const inC = groups * (1 + pick(5));
    const outC = groups * (1 + pick(6));
    const [kH, kW] = [1 + pick(3), 1 + pick(3)];
    const [strideH, strideW] = [1 + pick(2), 1 + pick(2)];
    const [padH, padW] = [pick(2), pick(2)];
    const [dilationH, dilationW] = [1 + pick(2), 1 + pick(2)];
    const [inH, inW, batch] = [3 + pick(6), 3 + pick(6), 1 + pick(2)];
    const outH = Math.floor((inH + 2 * padH - dilationH * (kH - 1) - 1) / strideH) + 1;
    const outW = Math.floor((inW + 2 * padW - dilationW * (kW - 1) - 1) / strideW) + 1;
    if (outH < 1 || outW < 1) continue;
    const g = {
      batch,
      inH,
      inW,
      inC,
      outH,
      outW,
      outC,
      kH,
      kW,
      strideH,
      strideW,
      padH,
      padW,
      dilationH,
      dilationW,
      groups,
    };
    const x = new Float32Array(batch * inH * inW * inC).map(() => (random() < 0.4 ? 0 : random() - 0.5));
    const w = new Float32Array((outC * inC * kH * kW) / groups).map(() => random() - 0.5);
    const bias = t % 3 === 0 ? null : new Float32Array(outC).map(() => random() - 0.5);
    const want = new Float32Array(batch * outH * outW * outC);
    const got = new Float32Array(want.length).fill(NaN);
    referenceBackend.conv2dForward(g, x, w, bias, want);
    conv(g, x, w, bias, got);
    for (let i = 0; i < want.length; i++) {
      assert.ok(
        Object.is(got[i], want[i]),
        `geometry ${JSON.stringify(g)}, output ${i}: ${got[i]} vs ${want[i]}`,
      );
    }
    checked++;
  }
  assert.ok(checked > 250);
});

test('the browser backend is the reference backend with the WebAssembly convolution; float64 arrays fall back', () => {
  const result = loadNativeBackend();
  assert.ok(result.ok);
  assert.equal(result.backend.name, 'reference-wasm');
  assert.equal(result.backend.conv2dBackwardData, referenceBackend.conv2dBackwardData);
  const g = {
    batch: 1,
    inH: 3,
    inW: 3,
    inC: 2,
    outH: 3,
    outW: 3,
    outC: 2,
    kH: 3,
    kW: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    dilationH: 1,
    dilationW: 1,
    groups: 1,
  };
  const x = Float64Array.from({ length: 18 }, (_, i) => Math.sin(i));
  const w = Float64Array.from({ length: 36 }, (_, i) => Math.cos(i));
  const want = new Float64Array(18);
  const got = new Float64Array(18);
  referenceBackend.conv2dForward(g, x, w, null, want);
  result.backend.conv2dForward(g, x, w, null, got);
  assert.deepEqual(got, want);
});
