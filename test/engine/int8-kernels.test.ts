/**
 * The int8 inference kernels: the TypeScript reference against the float convolution of the same
 * integers (layout and indexing), and the oneDNN kernels against the reference on random layers.
 * The native half needs the addon; without it, it is skipped unless STRATA_REQUIRE_NATIVE=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBackend, nativeAddon } from '../../src/engine/backend-native.js';
import { referenceBackend } from '../../src/engine/backend-reference.js';
import { convGeometry } from '../../src/engine/ops.js';
import { referenceInt8Kernels, type Int8Kernels, type Int8LayerSpec } from '../../src/engine/int8-kernels.js';
import { Random } from '../../src/engine/random.js';

const loaded = loadNativeBackend();
const skip =
  !loaded.ok && process.env.STRATA_REQUIRE_NATIVE !== '1'
    ? `native addon not built: ${loaded.reason}`
    : false;

interface Case {
  spec: Int8LayerSpec;
  batch: number;
  inH: number;
  inW: number;
  weights: Int8Array;
  src: Uint8Array | Int8Array;
  scale: Float32Array;
  corrScale: Float32Array | null;
  bias: Float32Array;
  residual: Float32Array | null;
}

function randomCase(rng: Random, i: number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];
  const linear = i % 5 === 4;
  const groups = linear ? 1 : pick([1, 1, 1, 2, 4]);
  const inC = groups * pick([1, 3, 8]);
  const outC = groups * pick([1, 5, 16]);
  const k = linear ? 1 : pick([1, 3, 5]);
  const corr = groups === 1 && rng.next() < 0.5;
  const srcSigned = rng.next() < 0.3;
  const spec: Int8LayerSpec = linear
    ? { kind: 'linear', inC, outC, srcSigned, relu: rng.next() < 0.5 }
    : {
        kind: 'conv',
        inC,
        outC,
        srcSigned,
        relu: rng.next() < 0.5,
        kH: k,
        kW: pick([1, k]),
        strideH: pick([1, 2]),
        strideW: pick([1, 2]),
        padH: pick([0, 1, 2]),
        padW: pick([0, 1]),
        dilationH: pick([1, 2]),
        dilationW: 1,
        groups,
      };
  const batch = pick([1, 3]);
  const [inH, inW] = linear ? [1, 1] : [pick([9, 11]), pick([7, 8])];
  const per = (inC / groups) * (spec.kH ?? 1) * (spec.kW ?? 1);
  const bits = pick([2, 4, 8]);
  const codes = (n: number, lo: number, hi: number) =>
    Array.from({ length: n }, () => lo + Math.floor(rng.next() * (hi - lo + 1)));
  const n = batch * inH * inW * inC;
  const src = srcSigned
    ? Int8Array.from(codes(n, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    : Uint8Array.from(codes(n, 0, 2 ** bits - 1));
  const rand = (len: number, s: number) => Float32Array.from({ length: len }, () => s * rng.normal());
  const outH = linear
    ? 1
    : Math.floor((inH + 2 * spec.padH! - spec.dilationH! * (spec.kH! - 1) - 1) / spec.strideH!) + 1;
  const outW = linear
    ? 1
    : Math.floor((inW + 2 * spec.padW! - spec.dilationW! * (spec.kW! - 1) - 1) / spec.strideW!) + 1;
  spec.residual = rng.next() < 0.4;
  return {
    spec,
    residual: spec.residual ? rand(batch * outH * outW * outC, 1) : null,
    batch,
    inH,
    inW,
    weights: Int8Array.from(codes(per * outC, -128, 127)),
    src,
    scale: rand(outC, 1e-3),
    corrScale: corr ? rand(outC, 5e-4) : null,
    bias: rand(outC, 0.5),
  };
}

function run(kernels: Int8Kernels, c: Case): Float32Array {
  const layer = kernels.int8LayerCreate(c.spec, c.weights, c.scale, c.corrScale, c.bias);
  const g = c.spec;
  const outH =
    g.kind === 'linear'
      ? 1
      : Math.floor((c.inH + 2 * g.padH! - g.dilationH! * (g.kH! - 1) - 1) / g.strideH!) + 1;
  const outW =
    g.kind === 'linear'
      ? 1
      : Math.floor((c.inW + 2 * g.padW! - g.dilationW! * (g.kW! - 1) - 1) / g.strideW!) + 1;
  const out = new Float32Array(c.batch * outH * outW * g.outC);
  kernels.int8LayerRun(layer, c.batch, c.inH, c.inW, c.src, out, c.residual);
  return out;
}

test('reference int8 layer = scale * conv(a, k) + corrScale * conv(a, ones) + bias, through the float convolution', () => {
  const rng = new Random(11);
  for (let i = 0; i < 40; i++) {
    const c = randomCase(rng, i);
    if (c.spec.kind === 'linear') continue;
    const got = run(referenceInt8Kernels, c);
    const g = c.spec;
    const geometry = convGeometry([c.batch, c.inH, c.inW, g.inC], [g.outC, g.inC / g.groups!, g.kH!, g.kW!], {
      stride: [g.strideH!, g.strideW!],
      padding: [g.padH!, g.padW!],
      dilation: [g.dilationH!, g.dilationW!],
      groups: g.groups,
    });
    const a = Float64Array.from(c.src);
    const acc = new Float64Array(got.length);
    referenceBackend.conv2dForward(geometry, a, Float64Array.from(c.weights), null, acc);
    const sums = new Float64Array(got.length);
    referenceBackend.conv2dForward(geometry, a, new Float64Array(c.weights.length).fill(1), null, sums);
    for (let j = 0; j < got.length; j++) {
      const ch = j % g.outC;
      let want =
        c.scale[ch] * acc[j] +
        (c.corrScale === null ? 0 : c.corrScale[ch] * sums[j]) +
        c.bias[ch] +
        (c.residual === null ? 0 : c.residual[j]);
      if (g.relu) want = Math.max(0, want);
      assert.ok(
        Math.abs(got[j] - want) <= 1e-5 * (1 + Math.abs(want)),
        `case ${i} element ${j}: ${got[j]} vs ${want}`,
      );
    }
  }
});

test('native int8 convolution and inner product match the reference on random layers', { skip }, () => {
  const addon = nativeAddon()!;
  const native: Int8Kernels = {
    name: 'native',
    int8LayerCreate: (...args) => addon.int8LayerCreate(...args),
    int8LayerRun: (...args) => addon.int8LayerRun(...args),
    quantizeCodes: (...args) => addon.quantizeCodes(...args),
  };
  const rng = new Random(5);
  for (let i = 0; i < 60; i++) {
    const c = randomCase(rng, i);
    const want = run(referenceInt8Kernels, c);
    const got = run(native, c);
    const scale = Math.max(1, ...Array.from(want, Math.abs));
    for (let j = 0; j < want.length; j++) {
      assert.ok(
        Math.abs(got[j] - want[j]) <= 1e-5 * scale,
        `case ${i} (${JSON.stringify(c.spec)}) element ${j}: ${got[j]} vs ${want[j]}`,
      );
    }
  }
});

test(
  "quantizeCodes: native and reference give the fake quantizer's codes, ties and clamping included",
  { skip },
  () => {
    const addon = nativeAddon()!;
    const rng = new Random(3);
    const scale = 0.1;
    const x = Float32Array.from({ length: 4099 }, (_, i) =>
      i % 7 === 0 ? (Math.floor(i / 7) - 300) * 0.05 : 40 * rng.normal(),
    );
    x[0] = Number.NaN;
    for (const [qmin, qmax, Codes] of [
      [0, 15, Uint8Array],
      [-8, 7, Int8Array],
      [0, 255, Uint8Array],
    ] as const) {
      const a = new Codes(x.length);
      const b = new Codes(x.length);
      referenceInt8Kernels.quantizeCodes(x, scale, qmin, qmax, a);
      addon.quantizeCodes(x, scale, qmin, qmax, b);
      assert.deepEqual(b, a);
      const fake = new Float32Array(x.length);
      referenceBackend.fakeQuantActForward(x, scale, qmin, qmax, fake);
      for (let i = 1; i < x.length; i++)
        assert.equal(Math.fround(a[i] * Math.fround(scale)), fake[i], `element ${i}`);
      assert.equal(a[0], qmin);
    }
  },
);

test('native int8 entry points validate every argument and throw JS errors', { skip }, () => {
  const addon = nativeAddon()!;
  const spec: Int8LayerSpec = {
    kind: 'conv',
    inC: 2,
    outC: 3,
    srcSigned: false,
    relu: true,
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
  const w = new Int8Array(54);
  const v = new Float32Array(3);
  assert.throws(() => addon.int8LayerCreate(spec, new Int8Array(53), v, null, v), {
    name: 'RangeError',
    message: 'int8LayerCreate: expected 54 weight codes but received 53',
  });
  assert.throws(() => addon.int8LayerCreate(spec, new Uint8Array(54) as unknown as Int8Array, v, null, v), {
    name: 'TypeError',
    message: 'int8LayerCreate: expected Int8Array for weights',
  });
  assert.throws(() => addon.int8LayerCreate({ ...spec, kind: 'deconv' as 'conv' }, w, v, null, v), {
    name: 'RangeError',
    message: "int8LayerCreate: expected 'conv' or 'linear' for kind",
  });
  assert.throws(() => addon.int8LayerCreate({ ...spec, kH: 1e12 }, w, v, null, v), {
    name: 'RangeError',
    message: 'int8LayerCreate: expected integer in [1, 1024] for kH',
  });
  assert.throws(
    () => addon.int8LayerCreate({ ...spec, inC: 2 ** 24, outC: 2 ** 24, kH: 1024, kW: 1024 }, w, v, null, v),
    {
      name: 'RangeError',
      message: 'int8LayerCreate: tensor size overflows',
    },
  );
  assert.throws(() => addon.int8LayerCreate(spec, w, new Float32Array(2), null, v), {
    name: 'RangeError',
    message: 'int8LayerCreate: expected 3 values for scale but received 2',
  });
  assert.throws(() => addon.int8LayerCreate(spec, w, Float32Array.of(1, Number.NaN, 1), null, v), {
    name: 'RangeError',
    message: 'int8LayerCreate: scale holds a non-finite value',
  });
  assert.throws(
    () =>
      addon.int8LayerCreate(
        { ...spec, groups: 2, inC: 2, outC: 4 },
        new Int8Array(36),
        new Float32Array(4),
        new Float32Array(4),
        new Float32Array(4),
      ),
    {
      name: 'RangeError',
      message: 'int8LayerCreate: the offset correction needs groups = 1',
    },
  );
  const layer = addon.int8LayerCreate(spec, w, v, null, v);
  assert.throws(() => addon.int8LayerRun(layer, 1, 4, 4, new Int8Array(32), new Float32Array(48), null), {
    name: 'TypeError',
    message: 'int8LayerRun: expected Uint8Array for src',
  });
  assert.throws(() => addon.int8LayerRun(layer, 1, 4, 4, new Uint8Array(31), new Float32Array(48), null), {
    name: 'RangeError',
    message: 'int8LayerRun: expected 32 codes for src but received 31',
  });
  assert.throws(() => addon.int8LayerRun(layer, 1, 4, 4, new Uint8Array(32), new Float32Array(47), null), {
    name: 'RangeError',
    message: 'int8LayerRun: expected 48 floats for dst but received 47',
  });
  assert.throws(
    () =>
      addon.int8LayerRun(layer, 2 ** 31, 2 ** 24, 2 ** 24, new Uint8Array(32), new Float32Array(48), null),
    {
      name: 'RangeError',
      message: 'int8LayerRun: tensor size overflows',
    },
  );
  assert.throws(
    () => addon.int8LayerRun({} as typeof layer, 1, 4, 4, new Uint8Array(32), new Float32Array(48), null),
    {
      name: 'TypeError',
      message: 'int8LayerRun: expected a layer from int8LayerCreate',
    },
  );
  assert.throws(() => addon.quantizeCodes(new Float32Array(2), 0, 0, 3, new Uint8Array(2)), {
    name: 'RangeError',
    message: 'quantizeCodes: expected positive finite scale',
  });
  assert.throws(() => addon.quantizeCodes(new Float32Array(2), 1, -1, 3, new Uint8Array(2)), {
    name: 'RangeError',
    message: 'quantizeCodes: expected integer qmin <= qmax within the code type',
  });
  // A valid call still works after all of that.
  const out = new Float32Array(48);
  assert.throws(
    () => addon.int8LayerRun(layer, 1, 4, 4, new Uint8Array(32), new Float32Array(48), new Float32Array(48)),
    {
      name: 'RangeError',
      message: 'int8LayerRun: this layer takes no residual (pass null)',
    },
  );
  addon.int8LayerRun(layer, 1, 4, 4, new Uint8Array(32).fill(1), out, null);
  assert.deepEqual(Array.from(out), new Array<number>(48).fill(0));
});
