/**
 * The addon's own argument checks, called directly as an attacker would (the TypeScript layer
 * validates first, but nothing may rely on that): every call here must end in a JS exception, and
 * the process must survive. Each runs in a child process so that a crash fails the test instead of
 * killing the runner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadNativeBackend, packageRoot } from '../../src/engine/backend-native.js';

const loaded = loadNativeBackend();
const skip =
  !loaded.ok && process.env.STRATA_REQUIRE_NATIVE !== '1'
    ? `native addon not built: ${loaded.reason}`
    : false;
// STRATA_NATIVE_ADDON (as for the backend) points the children at another build, e.g. an older one.
const addonPath =
  process.env.STRATA_NATIVE_ADDON || join(packageRoot(), 'build', 'Release', 'strata_native.node');

/** Runs `body` (JS with `a` bound to the addon) in a child; returns its exit status and output. */
function inChild(body: string): { status: number | null; signal: string | null; out: string } {
  const script = `const a = require(${JSON.stringify(addonPath)});\n${body}`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

/** The call must throw a JS error whose message matches; prints it so the parent can check. */
function refuses(call: string, message: RegExp): void {
  const r = inChild(
    `try { ${call}; console.log('ACCEPTED'); } catch (e) { console.log('REFUSED ' + e.constructor.name + ': ' + e.message); }`,
  );
  assert.equal(r.signal, null, `${call} killed the process with ${r.signal}:\n${r.out}`);
  assert.equal(r.status, 0, `${call} ended the process with status ${r.status}:\n${r.out}`);
  assert.match(r.out, /REFUSED /, `${call} was accepted:\n${r.out}`);
  assert.match(r.out, message);
}

const f = (n: number) => `new Float32Array(${n})`;

test(
  'pooling sizes whose product wraps int64 are refused (maxPoolForward used to segfault)',
  { skip },
  () => {
    // 2^29 * 64 * 64 * 2^29 = 2^70 for x and y alike: the unchecked products wrapped to 0, so empty
    // arrays passed the length checks and the loops ran over 2^29 images of nothing.
    const geometry = `{ batch: 2 ** 29, inH: 64, inW: 64, channels: 2 ** 29, outH: 64, outW: 64, kH: 1, kW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0 }`;
    for (const op of ['maxPoolForward', 'avgPoolForward']) {
      refuses(
        `a.${op}(${geometry}, ${f(0)}, ${f(0)})`,
        new RegExp(`RangeError: ${op}: the size of x exceeds 2\\^53 elements`),
      );
    }
    refuses(
      `a.maxPoolBackward(${geometry}, ${f(0)}, ${f(0)}, ${f(0)})`,
      /maxPoolBackward: the size of x exceeds/,
    );
    refuses(`a.avgPoolBackward(${geometry}, ${f(0)}, ${f(0)})`, /avgPoolBackward: the size of x exceeds/);
  },
);

test('dense, convolution and batch-norm sizes whose product wraps int64 are refused', { skip }, () => {
  // 2^32 * 2^32 = 2^64 wraps to 0 for x, w and y at once.
  refuses(
    `a.linearForward(2 ** 32, 2 ** 32, 2 ** 32, ${f(0)}, ${f(0)}, null, ${f(0)})`,
    /RangeError: linearForward: the size of x exceeds 2\^53 elements/,
  );
  refuses(
    `a.linearBackward(2 ** 32, 2 ** 32, 2 ** 32, ${f(0)}, ${f(0)}, ${f(0)}, null, ${f(0)}, null)`,
    /linearBackward: the size of x exceeds 2\^53/,
  );
  // x and y: 2^28 * 2^18 * 2^18 * 1 = 2^64; the 1x1 weight is one float.
  const conv = `{ batch: 2 ** 28, inH: 2 ** 18, inW: 2 ** 18, inC: 1, outH: 2 ** 18, outW: 2 ** 18, outC: 1, kH: 1, kW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 1 }`;
  refuses(
    `a.conv2dForward(${conv}, ${f(0)}, ${f(1)}, null, ${f(0)})`,
    /conv2dForward: the size of x exceeds 2\^53/,
  );
  // rows * channels = 2^50 * 2^14 = 2^64, with every per-channel array of the right length.
  const c = f(2 ** 14);
  refuses(
    `a.batchNormForwardInference(2 ** 50, 2 ** 14, ${f(0)}, ${c}, ${c}, ${c}, ${c}, 1e-5, false, ${f(0)})`,
    /batchNormForwardInference: the size of x exceeds 2\^53/,
  );
  refuses(
    `a.softmaxCrossEntropyForward(2 ** 40, 2 ** 40, ${f(0)}, new Int32Array(0), 0, ${f(0)})`,
    /softmaxCrossEntropyForward: the size of logits exceeds 2\^53/,
  );
});

test(
  'numbers that do not fit an integer, zero classes and wrong array kinds are refused, not undefined behaviour',
  { skip },
  () => {
    refuses(
      `a.linearForward(1e300, 1, 1, ${f(1)}, ${f(1)}, null, ${f(1)})`,
      /linearForward: expected integer in \[0, 2\^53\] for rows/,
    );
    refuses(
      `a.linearForward(NaN, 1, 1, ${f(1)}, ${f(1)}, null, ${f(1)})`,
      /expected integer in \[0, 2\^53\] for rows but received nan/,
    );
    refuses(
      `a.softmaxCrossEntropyForward(1, 0, ${f(0)}, new Int32Array(1), 0, ${f(0)})`,
      /softmaxCrossEntropyForward: needs at least one row and one class/,
    );
    refuses(
      `a.reluForward(new Float64Array(4), 6, ${f(4)})`,
      /TypeError: reluForward: expected Float32Array for x/,
    );
    refuses(
      `a.fakeQuantWeightForward(${f(4)}, 2, ${f(2)}, 99, 4, 'floor', ${f(4)}, null)`,
      /expected 1 <= bits <= topBits <= 16/,
    );
  },
);

test('every exported function survives garbage arguments with a JS exception', { skip }, () => {
  const r = inChild(`
    const junk = [undefined, null, -1, 1e308, NaN, 'x', {}, [], new Float32Array(0), new Int32Array(3),
      { batch: 1e9, inH: 1e9, inW: 1e9, channels: 1e9, inC: 1e9, outC: 1, outH: 1, outW: 1, kH: 1, kW: 1,
        strideH: 1, strideW: 1, padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 1 }];
    let calls = 0, thrown = 0, seed = 7;
    const pick = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return junk[seed % junk.length]; };
    for (const [name, fn] of Object.entries(a)) {
      if (name === 'setThreads') continue;
      for (let i = 0; i < 60; i++) {
        const args = Array.from({ length: 13 }, pick);
        calls++;
        try { fn(...args); } catch (e) { if (!(e instanceof Error)) throw e; thrown++; }
      }
    }
    console.log('CALLS ' + calls + ' THROWN ' + thrown);`);
  assert.equal(r.signal, null, r.out);
  assert.equal(r.status, 0, r.out);
  const m = /CALLS (\d+) THROWN (\d+)/.exec(r.out);
  assert.ok(m !== null, r.out);
  assert.ok(Number(m[2]) > Number(m[1]) / 2, r.out);
});

test('the primitive cache is bounded: many geometries do not grow it past its limit', { skip }, () => {
  const r = inChild(`
    const limit = a.primitiveCacheLimit();
    for (let i = 1; i <= limit + 40; i++) {
      const g = { batch: 1, inH: i, inW: 1, inC: 1, outH: i, outW: 1, outC: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
        padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 1 };
      a.conv2dForward(g, new Float32Array(i).fill(1), new Float32Array([2]), null, new Float32Array(i));
    }
    const g = { batch: 1, inH: 3, inW: 1, inC: 1, outH: 3, outW: 1, outC: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
      padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 1 };
    const y = new Float32Array(3);
    a.conv2dForward(g, new Float32Array([1, 2, 3]), new Float32Array([2]), null, y);
    console.log('LIMIT ' + limit + ' SIZE ' + a.primitiveCacheSize() + ' Y ' + Array.from(y).join(','));`);
  assert.equal(r.status, 0, r.out);
  const m = /LIMIT (\d+) SIZE (\d+) Y ([\d,.]+)/.exec(r.out);
  assert.ok(m !== null, r.out);
  assert.ok(Number(m[1]) >= 16, r.out);
  assert.equal(Number(m[2]), Number(m[1]), r.out);
  // An evicted geometry is rebuilt and still computes correctly.
  assert.equal(m[3], '2,4,6');
});

test(
  'worker threads running convolutions at once each get correct results (one stream per thread)',
  { skip },
  () => {
    const r = inChild(`
    const { Worker } = require('node:worker_threads');
    const code = \`
      const { parentPort } = require('node:worker_threads');
      const a = require(${JSON.stringify(addonPath)});
      const g = { batch: 2, inH: 16, inW: 16, inC: 8, outH: 16, outW: 16, outC: 8, kH: 3, kW: 3, strideH: 1, strideW: 1,
        padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 };
      const x = new Float32Array(2 * 16 * 16 * 8).fill(1), w = new Float32Array(8 * 8 * 9).fill(0.5);
      let ok = true;
      for (let i = 0; i < 200; i++) {
        const y = new Float32Array(2 * 16 * 16 * 8);
        a.conv2dForward(g, x, w, null, y);
        // Centre pixel: 9 taps x 8 channels x 0.5 = 36.
        if (y[(8 * 16 + 8) * 8] !== 36) ok = false;
      }
      parentPort.postMessage(ok);\`;
    Promise.all([0, 1, 2].map(() => new Promise((done, fail) => {
      const w = new Worker(code, { eval: true });
      w.once('message', done);
      w.once('error', fail);
    }))).then((r) => console.log('RESULTS ' + r.join(',')));`);
    assert.equal(r.signal, null, r.out);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /RESULTS true,true,true/);
  },
);
