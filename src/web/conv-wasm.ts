/**
 * The reference backend's forward convolution (src/engine/backend-reference.ts, conv2dForward) as a
 * WebAssembly function, assembled here byte by byte (no toolchain). It computes exactly what the
 * TypeScript kernel computes: the same weight order, each sum in doubles from the bias over
 * (kh, kw, i) in order, inputs of 0 skipped, each output rounded once to float32; so its outputs are
 * bitwise the TypeScript kernel's. A browser compiles it at once with its baseline compiler, where the
 * TypeScript kernel runs in the interpreter until the engine has optimized it: the first forward pass
 * of a page no longer pays for that warm-up.
 *
 * Browser-safe: no node: imports. `wasmConv2dForward()` is null where WebAssembly is unavailable.
 */
import type { ConvGeometry, FloatArray } from '../engine/backend.js';

// Opcodes used below (WebAssembly core specification, section 5.4).
const OP = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Const: 0x41,
  f64Const: 0x44,
  f32Load: 0x2a,
  f64Load: 0x2b,
  f32Store: 0x38,
  f64Store: 0x39,
  i32Eqz: 0x45,
  i32LtS: 0x48,
  i32GeS: 0x4e,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32Or: 0x72,
  i32Shl: 0x74,
  f64Ne: 0x62,
  f64Add: 0xa0,
  f64Mul: 0xa2,
  f32DemoteF64: 0xb6,
  f64PromoteF32: 0xbb,
} as const;
const VOID = 0x40;
const I32 = 0x7f;
const F64 = 0x7c;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  while (true) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vector = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (text: string): number[] => [...uleb(text.length), ...Array.from(text, (c) => c.charCodeAt(0))];

/** The parameters of the exported function `conv`, in order (all i32; pointers are byte offsets). */
const PARAMS = [
  'x',
  'w',
  'wt',
  'bias',
  'y',
  'acc',
  'hasBias',
  'batch',
  'inH',
  'inW',
  'inC',
  'outH',
  'outW',
  'outC',
  'kH',
  'kW',
  'strideH',
  'strideW',
  'padH',
  'padW',
  'dilationH',
  'dilationW',
  'groups',
] as const;
const I32_LOCALS = [
  'ipg',
  'opg',
  'n',
  'oh',
  'ow',
  'group',
  'o',
  'kh',
  'kw',
  'i',
  'ih',
  'iw',
  'outBase',
  'firstOut',
  'xAt',
  'wAt',
  'row',
] as const;
type Local = (typeof PARAMS)[number] | (typeof I32_LOCALS)[number] | 'xv';
const LOCALS: Local[] = [...PARAMS, ...I32_LOCALS, 'xv'];
const index = (local: Local): number => LOCALS.indexOf(local);

/** The loops of `conv`, those of the TypeScript kernel (after convPrologue has set ipg and opg). */
function convBody(): number[] {
  const get = (l: Local) => [OP.localGet, ...uleb(index(l))];
  const set = (l: Local, ...value: number[]) => [...value, OP.localSet, ...uleb(index(l))];
  const int = (n: number) => [OP.i32Const, ...sleb(n)];
  const add = (a: number[], b: number[]) => [...a, ...b, OP.i32Add];
  const mul = (a: number[], b: number[]) => [...a, ...b, OP.i32Mul];
  /** Byte address base + 2^shift * element. */
  const address = (base: Local, element: number[], shift: number) => [
    ...get(base),
    ...element,
    ...int(shift),
    OP.i32Shl,
    OP.i32Add,
  ];
  /** for (counter = 0; counter < limit; counter++) body, with `continue` as a branch to depth 0. */
  const forLoop = (counter: Local, limit: number[], body: number[]) => [
    ...set(counter, ...int(0)),
    OP.block,
    VOID,
    OP.loop,
    VOID,
    ...get(counter),
    ...limit,
    OP.i32GeS,
    OP.brIf,
    1,
    OP.block,
    VOID,
    ...body,
    OP.end,
    ...set(counter, ...add(get(counter), int(1))),
    OP.br,
    0,
    OP.end,
    OP.end,
  ];
  /** Skips the rest of the current loop body when v is outside [0, limit). */
  const continueUnlessInside = (v: Local, limit: Local) => [
    ...get(v),
    ...int(0),
    OP.i32LtS,
    ...get(v),
    ...get(limit),
    OP.i32GeS,
    OP.i32Or,
    OP.brIf,
    0,
  ];
  const load32 = [OP.f32Load, 2, 0];
  const load64 = [OP.f64Load, 3, 0];

  // acc[o] += xv * wt[row + o]
  const innermost = forLoop('o', get('opg'), [
    ...address('acc', get('o'), 3),
    ...address('acc', get('o'), 3),
    ...load64,
    ...get('xv'),
    ...address('wt', add(get('row'), get('o')), 3),
    ...load64,
    OP.f64Mul,
    OP.f64Add,
    OP.f64Store,
    3,
    0,
  ]);
  const inputChannels = forLoop('i', get('ipg'), [
    ...address('x', add(get('xAt'), get('i')), 2),
    ...load32,
    OP.f64PromoteF32,
    OP.localTee,
    ...uleb(index('xv')),
    OP.f64Const,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    OP.f64Ne,
    OP.if,
    VOID,
    ...set('row', ...add(get('wAt'), mul(get('i'), get('opg')))),
    ...innermost,
    OP.end,
  ]);
  const taps = forLoop('kh', get('kH'), [
    ...set(
      'ih',
      ...add(mul(get('oh'), get('strideH')), [...mul(get('kh'), get('dilationH'))]),
      ...get('padH'),
      OP.i32Sub,
    ),
    ...continueUnlessInside('ih', 'inH'),
    ...forLoop('kw', get('kW'), [
      ...set(
        'iw',
        ...add(mul(get('ow'), get('strideW')), mul(get('kw'), get('dilationW'))),
        ...get('padW'),
        OP.i32Sub,
      ),
      ...continueUnlessInside('iw', 'inW'),
      // xAt = ((n * inH + ih) * inW + iw) * inC + group * ipg
      ...set(
        'xAt',
        ...add(
          mul(add(mul(add(mul(get('n'), get('inH')), get('ih')), get('inW')), get('iw')), get('inC')),
          mul(get('group'), get('ipg')),
        ),
      ),
      // wAt = ((group * kH + kh) * kW + kw) * ipg * opg
      ...set(
        'wAt',
        ...mul(
          mul(add(mul(add(mul(get('group'), get('kH')), get('kh')), get('kW')), get('kw')), get('ipg')),
          get('opg'),
        ),
      ),
      ...inputChannels,
    ]),
  ]);
  const groupBody = [
    ...set('firstOut', ...mul(get('group'), get('opg'))),
    // acc[o] = hasBias ? bias[firstOut + o] : 0
    ...forLoop('o', get('opg'), [
      ...address('acc', get('o'), 3),
      ...get('hasBias'),
      OP.if,
      F64,
      ...address('bias', add(get('firstOut'), get('o')), 2),
      ...load32,
      OP.f64PromoteF32,
      0x05, // else
      OP.f64Const,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      OP.end,
      OP.f64Store,
      3,
      0,
    ]),
    ...taps,
    // y[outBase + firstOut + o] = float32(acc[o])
    ...forLoop('o', get('opg'), [
      ...address('y', add(add(get('outBase'), get('firstOut')), get('o')), 2),
      ...address('acc', get('o'), 3),
      ...load64,
      OP.f32DemoteF64,
      OP.f32Store,
      2,
      0,
    ]),
  ];
  // The weights reordered to [group, kH, kW, I/groups, O/groups], as doubles:
  // wt[(((group * kH + kh) * kW + kw) * ipg + i) * opg + o] = w[(((group * opg + o) * ipg + i) * kH + kh) * kW + kw]
  const reorder = forLoop('group', get('groups'), [
    ...forLoop('o', get('opg'), [
      ...forLoop('i', get('ipg'), [
        ...forLoop('kh', get('kH'), [
          ...forLoop('kw', get('kW'), [
            ...address(
              'wt',
              add(
                mul(
                  add(
                    mul(
                      add(mul(add(mul(get('group'), get('kH')), get('kh')), get('kW')), get('kw')),
                      get('ipg'),
                    ),
                    get('i'),
                  ),
                  get('opg'),
                ),
                get('o'),
              ),
              3,
            ),
            ...address(
              'w',
              add(
                mul(
                  add(
                    mul(
                      add(mul(add(mul(get('group'), get('opg')), get('o')), get('ipg')), get('i')),
                      get('kH'),
                    ),
                    get('kh'),
                  ),
                  get('kW'),
                ),
                get('kw'),
              ),
              2,
            ),
            ...load32,
            OP.f64PromoteF32,
            OP.f64Store,
            3,
            0,
          ]),
        ]),
      ]),
    ]),
  ]);
  const body = [
    ...reorder,
    ...forLoop('n', get('batch'), [
      ...forLoop('oh', get('outH'), [
        ...forLoop('ow', get('outW'), [
          // outBase = ((n * outH + oh) * outW + ow) * outC
          ...set(
            'outBase',
            ...mul(add(mul(add(mul(get('n'), get('outH')), get('oh')), get('outW')), get('ow')), get('outC')),
          ),
          ...forLoop('group', get('groups'), groupBody),
        ]),
      ]),
    ]),
  ];
  return body;
}

/** The module: memory imported as env.memory, one function `conv`. */
function convModule(): Uint8Array<ArrayBuffer> {
  const type = [0x60, ...vector(PARAMS.map(() => [I32])), ...uleb(0)];
  const locals = vector([
    [...uleb(I32_LOCALS.length), I32],
    [1, F64],
  ]);
  const code = [...locals, ...convPrologue(), ...convBody(), OP.end];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector([type])),
    ...section(2, vector([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vector([uleb(0)])),
    ...section(7, vector([[...name('conv'), 0x00, ...uleb(0)]])),
    ...section(10, vector([[...uleb(code.length), ...code]])),
  ]);
}

/** ipg = inC / groups, opg = outC / groups (i32.div_s). */
function convPrologue(): number[] {
  const DIV_S = 0x6d;
  const get = (l: Local) => [OP.localGet, ...uleb(index(l))];
  return [
    ...get('inC'),
    ...get('groups'),
    DIV_S,
    OP.localSet,
    ...uleb(index('ipg')),
    ...get('outC'),
    ...get('groups'),
    DIV_S,
    OP.localSet,
    ...uleb(index('opg')),
  ];
}

const PAGE = 65536;

interface Instance {
  memory: WebAssembly.Memory;
  conv: (...args: number[]) => void;
}

let instance: Instance | null | undefined;

function instantiate(): Instance | null {
  if (instance !== undefined) return instance;
  try {
    const memory = new WebAssembly.Memory({ initial: 16 });
    const module = new WebAssembly.Module(convModule());
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as {
      conv: (...args: number[]) => void;
    };
    instance = { memory, conv: exports.conv };
  } catch {
    instance = null;
  }
  return instance;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/**
 * The WebAssembly forward convolution, or null where WebAssembly cannot run. It takes float32
 * arrays only (what inference uses); other arrays go to `fallback`.
 */
export function wasmConv2dForward(
  fallback: (g: ConvGeometry, x: FloatArray, w: FloatArray, bias: FloatArray | null, y: FloatArray) => void,
): ((g: ConvGeometry, x: FloatArray, w: FloatArray, bias: FloatArray | null, y: FloatArray) => void) | null {
  if (typeof WebAssembly === 'undefined' || instantiate() === null) return null;
  return (g, x, w, bias, y) => {
    const wasm = instantiate()!;
    if (
      !(x instanceof Float32Array) ||
      !(w instanceof Float32Array) ||
      !(y instanceof Float32Array) ||
      (bias !== null && !(bias instanceof Float32Array))
    ) {
      fallback(g, x, w, bias, y);
      return;
    }
    const inPerGroup = g.inC / g.groups;
    const outPerGroup = g.outC / g.groups;
    const { kH, kW } = g;
    // Layout: wt (f64, the weights reordered by the kernel), acc (f64), w, x, bias, y (f32).
    const wtAt = 0;
    const accAt = align8(wtAt + 8 * g.outC * kH * kW * inPerGroup);
    const wAt = align8(accAt + 8 * outPerGroup);
    const xAt = align8(wAt + 4 * w.length);
    const biasAt = align8(xAt + 4 * x.length);
    const yAt = align8(biasAt + 4 * g.outC);
    const needed = yAt + 4 * y.length;
    if (needed > wasm.memory.buffer.byteLength) {
      wasm.memory.grow(Math.ceil((needed - wasm.memory.buffer.byteLength) / PAGE));
    }
    const buffer = wasm.memory.buffer;
    new Float32Array(buffer, wAt, w.length).set(w);
    new Float32Array(buffer, xAt, x.length).set(x);
    if (bias !== null) new Float32Array(buffer, biasAt, g.outC).set(bias);
    wasm.conv(
      xAt,
      wAt,
      wtAt,
      biasAt,
      yAt,
      accAt,
      bias === null ? 0 : 1,
      g.batch,
      g.inH,
      g.inW,
      g.inC,
      g.outH,
      g.outW,
      g.outC,
      kH,
      kW,
      g.strideH,
      g.strideW,
      g.padH,
      g.padW,
      g.dilationH,
      g.dilationW,
      g.groups,
    );
    y.set(new Float32Array(buffer, yAt, y.length));
  };
}
