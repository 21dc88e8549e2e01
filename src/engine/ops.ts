/**
 * Differentiable operations: each validates its arguments (errors name the op and the shapes),
 * calls the active backend's kernels, and records one autograd node. Activations are
 * channels-last ([N, H, W, C]).
 */
import { Function } from './autograd.js';
import type { ConvGeometry, PoolGeometry } from './backend.js';
import { getBackend } from './backend-registry.js';
import { expectFinite, expectInRange, expectInteger, expectPair } from './check.js';
import { Tensor, formatShape, resolveShape, type Shape } from './tensor.js';

function expectRank(t: Tensor, rank: number, op: string, name: string, layout: string): void {
  if (!(t instanceof Tensor)) throw new TypeError(`${op}: expected Tensor for ${name}`);
  if (t.rank !== rank) {
    throw new RangeError(
      `${op}: expected ${rank}-D ${name} ${layout} but received shape ${formatShape(t.shape)}`,
    );
  }
}

function expectSameShape(a: Tensor, b: Tensor, op: string): void {
  if (a.size !== b.size || a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new RangeError(`${op}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`);
  }
}

// ---------------------------------------------------------------------------------------------
// Convolution

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export function convGeometry(
  xShape: Shape,
  wShape: Shape,
  options: Conv2dOptions,
  op = 'conv2d',
): ConvGeometry {
  const [strideH, strideW] = expectPair(options.stride ?? 1, 'stride', 1, op);
  const [padH, padW] = expectPair(options.padding ?? 0, 'padding', 0, op);
  const [dilationH, dilationW] = expectPair(options.dilation ?? 1, 'dilation', 1, op);
  const groups = expectInteger(options.groups ?? 1, 'groups', 1, op);
  const [batch, inH, inW, inC] = xShape;
  const [outC, inPerGroup, kH, kW] = wShape;
  if (inC !== inPerGroup * groups || outC % groups !== 0) {
    throw new RangeError(
      `${op}: input ${formatShape(xShape)} (channels-last, ${inC} channels) does not match weight ${formatShape(wShape)} with groups=${groups}`,
    );
  }
  const outH = Math.floor((inH + 2 * padH - dilationH * (kH - 1) - 1) / strideH) + 1;
  const outW = Math.floor((inW + 2 * padW - dilationW * (kW - 1) - 1) / strideW) + 1;
  if (outH < 1 || outW < 1) {
    throw new RangeError(
      `${op}: input ${formatShape(xShape)} is too small for kernel ${kH}x${kW} with padding ${padH}`,
    );
  }
  return {
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
}

class Conv2d extends Function<[Tensor, Tensor] | [Tensor, Tensor, Tensor]> {
  private x!: Tensor;
  private w!: Tensor;
  constructor(private readonly geometry: ConvGeometry) {
    super();
  }
  forward(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
    const g = this.geometry;
    this.x = x;
    this.w = w;
    const y = Tensor.empty([g.batch, g.outH, g.outW, g.outC]);
    getBackend().conv2dForward(g, x.data, w.data, bias?.data ?? null, y.data);
    return y;
  }
  backward(dy: Tensor): (Tensor | null)[] {
    const g = this.geometry;
    const backend = getBackend();
    let dx: Tensor | null = null;
    if (this.needsInputGrad[0]) {
      dx = Tensor.empty(this.x.shape);
      backend.conv2dBackwardData(g, dy.data, this.w.data, dx.data);
    }
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    const wantBias = this.inputs.length > 2 && this.needsInputGrad[2];
    if (this.needsInputGrad[1] || wantBias) {
      dw = Tensor.empty(this.w.shape);
      db = wantBias ? Tensor.empty([g.outC]) : null;
      backend.conv2dBackwardWeights(g, this.x.data, dy.data, dw.data, db?.data ?? null);
    }
    return [dx, this.needsInputGrad[1] ? dw : null, db];
  }
}

/** 2-D convolution of channels-last x [N, H, W, Cin] with w [Cout, Cin/groups, kH, kW]. */
export function conv2d(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null = null,
  options: Conv2dOptions = {},
): Tensor {
  expectRank(x, 4, 'conv2d', 'input', '[N, H, W, C] (channels-last)');
  expectRank(w, 4, 'conv2d', 'weight', '[O, I/groups, kH, kW]');
  const g = convGeometry(x.shape, w.shape, options);
  if (bias !== null && (bias.rank !== 1 || bias.size !== g.outC)) {
    throw new RangeError(`conv2d: bias ${formatShape(bias.shape)} does not match ${g.outC} output channels`);
  }
  const fn = new Conv2d(g);
  return bias === null ? fn.apply(x, w) : fn.apply(x, w, bias);
}

// ---------------------------------------------------------------------------------------------
// Linear

class Linear extends Function<[Tensor, Tensor] | [Tensor, Tensor, Tensor]> {
  private x!: Tensor;
  private w!: Tensor;
  forward(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
    this.x = x;
    this.w = w;
    const [rows, inF] = x.shape;
    const outF = w.shape[0];
    const y = Tensor.empty([rows, outF]);
    getBackend().linearForward(rows, inF, outF, x.data, w.data, bias?.data ?? null, y.data);
    return y;
  }
  backward(dy: Tensor): (Tensor | null)[] {
    const [rows, inF] = this.x.shape;
    const outF = this.w.shape[0];
    const dx = this.needsInputGrad[0] ? Tensor.empty(this.x.shape) : null;
    // The kernel always writes dw; when the weight needs no gradient it is simply dropped.
    const dw = Tensor.empty(this.w.shape);
    const db = this.inputs.length > 2 && this.needsInputGrad[2] ? Tensor.empty([outF]) : null;
    getBackend().linearBackward(
      rows,
      inF,
      outF,
      this.x.data,
      this.w.data,
      dy.data,
      dx?.data ?? null,
      dw.data,
      db?.data ?? null,
    );
    if (!this.needsInputGrad[1]) dw.dispose();
    return [dx, this.needsInputGrad[1] ? dw : null, db];
  }
}

/** y = x w^T + bias with x [rows, in], w [out, in]. */
export function linear(x: Tensor, w: Tensor, bias: Tensor | null = null): Tensor {
  expectRank(x, 2, 'linear', 'input', '[rows, inFeatures]');
  expectRank(w, 2, 'linear', 'weight', '[outFeatures, inFeatures]');
  if (x.shape[1] !== w.shape[1]) {
    throw new RangeError(
      `linear: input ${formatShape(x.shape)} does not match weight ${formatShape(w.shape)}`,
    );
  }
  if (bias !== null && (bias.rank !== 1 || bias.size !== w.shape[0])) {
    throw new RangeError(`linear: bias ${formatShape(bias.shape)} does not match ${w.shape[0]} outputs`);
  }
  const fn = new Linear();
  return bias === null ? fn.apply(x, w) : fn.apply(x, w, bias);
}

// ---------------------------------------------------------------------------------------------
// Batch norm

export interface BatchNormOptions {
  training: boolean;
  /** Updated in place in training mode (PyTorch convention: unbiased variance, given momentum). */
  runningMean: Tensor;
  runningVar: Tensor;
  momentum?: number;
  eps?: number;
  /** Fuse a following ReLU (saves a pass over the activation in each direction). */
  relu?: boolean;
}

class BatchNormTraining extends Function<[Tensor, Tensor, Tensor]> {
  private x!: Tensor;
  private y!: Tensor;
  private gamma!: Tensor;
  mean!: Tensor;
  variance!: Tensor;
  constructor(
    private readonly eps: number,
    private readonly relu: boolean,
  ) {
    super();
  }
  forward(x: Tensor, gamma: Tensor, beta: Tensor): Tensor {
    const channels = gamma.size;
    const rows = x.size / channels;
    this.x = x;
    this.gamma = gamma;
    this.mean = Tensor.empty([channels]);
    this.variance = Tensor.empty([channels]);
    const y = Tensor.empty(x.shape);
    getBackend().batchNormForwardTraining(
      rows,
      channels,
      x.data,
      gamma.data,
      beta.data,
      this.eps,
      this.relu,
      y.data,
      this.mean.data,
      this.variance.data,
    );
    this.y = y;
    return y;
  }
  backward(dy: Tensor): (Tensor | null)[] {
    const channels = this.gamma.size;
    const rows = this.x.size / channels;
    const dx = Tensor.empty(this.x.shape);
    const dgamma = Tensor.empty([channels]);
    const dbeta = Tensor.empty([channels]);
    getBackend().batchNormBackward(
      rows,
      channels,
      this.x.data,
      dy.data,
      this.gamma.data,
      this.mean.data,
      this.variance.data,
      this.eps,
      this.relu,
      this.y.data,
      dx.data,
      dgamma.data,
      dbeta.data,
    );
    return [this.needsInputGrad[0] ? dx : null, dgamma, dbeta];
  }
}

/** Batch norm over the last (channel) dimension; x is [N, C] or channels-last [N, H, W, C]. */
export function batchNorm(x: Tensor, gamma: Tensor, beta: Tensor, options: BatchNormOptions): Tensor {
  const op = 'batchNorm';
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: expected Tensor for input`);
  const channels = x.shape[x.rank - 1];
  for (const [name, t] of [
    ['gamma', gamma],
    ['beta', beta],
    ['runningMean', options.runningMean],
    ['runningVar', options.runningVar],
  ] as const) {
    if (t.rank !== 1 || t.size !== channels) {
      throw new RangeError(
        `${op}: ${name} ${formatShape(t.shape)} does not match input ${formatShape(x.shape)} with ${channels} channels (last dimension)`,
      );
    }
  }
  const eps = expectInRange(options.eps ?? 1e-5, 'eps', 0, 1, op);
  const momentum = expectInRange(options.momentum ?? 0.1, 'momentum', 0, 1, op);
  const relu = options.relu ?? false;
  const rows = x.size / channels;
  if (options.training) {
    if (rows < 2)
      throw new RangeError(
        `${op}: training needs more than one value per channel, got input ${formatShape(x.shape)}`,
      );
    const fn = new BatchNormTraining(eps, relu);
    const y = fn.apply(x, gamma, beta);
    const rm = options.runningMean.data;
    const rv = options.runningVar.data;
    const m = fn.mean.data;
    const v = fn.variance.data;
    const unbias = rows / (rows - 1);
    for (let c = 0; c < channels; c++) {
      rm[c] = (1 - momentum) * rm[c] + momentum * m[c];
      rv[c] = (1 - momentum) * rv[c] + momentum * v[c] * unbias;
    }
    return y;
  }
  const fn = new BatchNormInference(eps, relu, options.runningMean, options.runningVar);
  return fn.apply(x, gamma, beta);
}

/** Inference-mode batch norm is an affine map per channel, so its gradient is cheap to express. */
class BatchNormInference extends Function<[Tensor, Tensor, Tensor]> {
  private x!: Tensor;
  private y!: Tensor;
  private gamma!: Tensor;
  constructor(
    private readonly eps: number,
    private readonly relu: boolean,
    private readonly mean: Tensor,
    private readonly variance: Tensor,
  ) {
    super();
  }
  forward(x: Tensor, gamma: Tensor, beta: Tensor): Tensor {
    const channels = gamma.size;
    this.x = x;
    this.gamma = gamma;
    const y = Tensor.empty(x.shape);
    getBackend().batchNormForwardInference(
      x.size / channels,
      channels,
      x.data,
      gamma.data,
      beta.data,
      this.mean.data,
      this.variance.data,
      this.eps,
      this.relu,
      y.data,
    );
    this.y = y;
    return y;
  }
  backward(dy: Tensor): (Tensor | null)[] {
    const C = this.gamma.size;
    const rows = this.x.size / C;
    const dx = Tensor.empty(this.x.shape);
    const dgamma = Tensor.zeros([C]);
    const dbeta = Tensor.zeros([C]);
    const x = this.x.data;
    const y = this.y.data;
    const g = dy.data;
    const out = dx.data;
    const m = this.mean.data;
    const inv = Float64Array.from(this.variance.data, (v) => 1 / Math.sqrt(v + this.eps));
    const gamma = this.gamma.data;
    const dgm = dgamma.data;
    const dbt = dbeta.data;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < C; c++) {
        const i = r * C + c;
        const gi = this.relu && y[i] <= 0 ? 0 : g[i];
        out[i] = gi * gamma[c] * inv[c];
        dgm[c] += gi * (x[i] - m[c]) * inv[c];
        dbt[c] += gi;
      }
    }
    return [dx, dgamma, dbeta];
  }
}

// ---------------------------------------------------------------------------------------------
// Element-wise

class ReLU extends Function<[Tensor]> {
  private y!: Tensor;
  constructor(private readonly cap: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.y = Tensor.empty(x.shape);
    getBackend().reluForward(x.data, this.cap, this.y.data);
    return this.y;
  }
  backward(dy: Tensor): Tensor[] {
    const dx = Tensor.empty(dy.shape);
    getBackend().reluBackward(this.y.data, dy.data, this.cap, dx.data);
    return [dx];
  }
}

export function relu(x: Tensor): Tensor {
  return new ReLU(Infinity).apply(x);
}

export function relu6(x: Tensor): Tensor {
  return new ReLU(6).apply(x);
}

class Add extends Function<[Tensor, Tensor]> {
  forward(a: Tensor, b: Tensor): Tensor {
    const y = Tensor.empty(a.shape);
    getBackend().add(a.data, b.data, y.data);
    return y;
  }
  backward(dy: Tensor): Tensor[] {
    return [dy, dy];
  }
}

export function add(a: Tensor, b: Tensor): Tensor {
  expectSameShape(a, b, 'add');
  return new Add().apply(a, b);
}

class Mul extends Function<[Tensor, Tensor]> {
  private a!: Tensor;
  private b!: Tensor;
  forward(a: Tensor, b: Tensor): Tensor {
    this.a = a;
    this.b = b;
    const y = Tensor.empty(a.shape);
    getBackend().mul(a.data, b.data, y.data);
    return y;
  }
  backward(dy: Tensor): (Tensor | null)[] {
    const backend = getBackend();
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (this.needsInputGrad[0]) {
      da = Tensor.empty(dy.shape);
      backend.mul(dy.data, this.b.data, da.data);
    }
    if (this.needsInputGrad[1]) {
      db = Tensor.empty(dy.shape);
      backend.mul(dy.data, this.a.data, db.data);
    }
    return [da, db];
  }
}

export function mul(a: Tensor, b: Tensor): Tensor {
  expectSameShape(a, b, 'mul');
  return new Mul().apply(a, b);
}

/**
 * x * scale + shift along the last (channel) axis, with constant (not trained) per-channel or
 * scalar factors: an ONNX Mul/Add/Sub/Div by a constant broadcast over channels.
 */
class ChannelAffine extends Function<[Tensor]> {
  constructor(
    private readonly scaleBy: Float32Array | null,
    private readonly shiftBy: Float32Array | null,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    const y = Tensor.empty(x.shape);
    const channels = x.shape[x.rank - 1];
    const s = this.scaleBy;
    const b = this.shiftBy;
    const sStride = s !== null && s.length > 1 ? 1 : 0;
    const bStride = b !== null && b.length > 1 ? 1 : 0;
    for (let i = 0; i < x.size; i++) {
      const c = i % channels;
      y.data[i] = x.data[i] * (s === null ? 1 : s[c * sStride]) + (b === null ? 0 : b[c * bStride]);
    }
    return y;
  }
  backward(dy: Tensor): Tensor[] {
    const s = this.scaleBy;
    if (s === null) return [dy];
    const dx = Tensor.empty(dy.shape);
    const channels = dy.shape[dy.rank - 1];
    const stride = s.length > 1 ? 1 : 0;
    for (let i = 0; i < dy.size; i++) dx.data[i] = dy.data[i] * s[(i % channels) * stride];
    return [dx];
  }
}

/** x * scale + shift per channel (last axis); each factor has one value per channel or one in all. */
export function channelAffine(x: Tensor, scaleBy: Float32Array | null, shiftBy: Float32Array | null): Tensor {
  const channels = x.shape[x.rank - 1];
  for (const [name, v] of [
    ['scale', scaleBy],
    ['shift', shiftBy],
  ] as const) {
    if (v !== null && v.length !== 1 && v.length !== channels) {
      throw new RangeError(
        `channelAffine: expected 1 or ${channels} ${name} values for input ${formatShape(x.shape)} but received ${v.length}`,
      );
    }
  }
  return new ChannelAffine(scaleBy, shiftBy).apply(x);
}

/** Joins tensors along the last (channel) axis; every other dimension must agree. */
class ConcatLast extends Function<Tensor[]> {
  private widths: number[] = [];
  forward(...xs: Tensor[]): Tensor {
    this.widths = xs.map((x) => x.shape[x.rank - 1]);
    const total = this.widths.reduce((a, b) => a + b, 0);
    const rows = xs[0].size / this.widths[0];
    const y = Tensor.empty([...xs[0].shape.slice(0, -1), total]);
    let offset = 0;
    xs.forEach((x, k) => {
      const w = this.widths[k];
      for (let r = 0; r < rows; r++) y.data.set(x.data.subarray(r * w, (r + 1) * w), r * total + offset);
      offset += w;
    });
    return y;
  }
  backward(dy: Tensor): (Tensor | null)[] {
    const total = dy.shape[dy.rank - 1];
    const rows = dy.size / total;
    let offset = 0;
    return this.widths.map((w, k) => {
      const start = offset;
      offset += w;
      if (!this.needsInputGrad[k]) return null;
      const dx = Tensor.empty([...dy.shape.slice(0, -1), w]);
      for (let r = 0; r < rows; r++)
        dx.data.set(dy.data.subarray(r * total + start, r * total + start + w), r * w);
      return dx;
    });
  }
}

export function concatLast(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new RangeError('concatLast: expected at least one tensor');
  const lead = xs[0].shape.slice(0, -1);
  for (const x of xs) {
    if (x.rank !== xs[0].rank || x.shape.slice(0, -1).some((d, i) => d !== lead[i])) {
      throw new RangeError(
        `concatLast: shapes ${xs.map((t) => formatShape(t.shape)).join(', ')} differ outside the last axis`,
      );
    }
  }
  return new ConcatLast().apply(...xs);
}

class Scale extends Function<[Tensor]> {
  constructor(private readonly alpha: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    const y = Tensor.zeros(x.shape);
    getBackend().axpy(y.data, this.alpha, x.data, y.data);
    return y;
  }
  backward(dy: Tensor): Tensor[] {
    const dx = Tensor.zeros(dy.shape);
    getBackend().axpy(dx.data, this.alpha, dy.data, dx.data);
    return [dx];
  }
}

/** alpha * x. */
export function scale(x: Tensor, alpha: number): Tensor {
  return new Scale(expectFinite(alpha, 'alpha', 'scale')).apply(x);
}

class Reshape extends Function<[Tensor]> {
  constructor(private readonly shape: Shape) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.view(this.shape);
  }
  backward(dy: Tensor): Tensor[] {
    return [dy.view(this.inputs[0].shape)];
  }
}

export function reshape(x: Tensor, shape: Shape): Tensor {
  return new Reshape(resolveShape(shape, x.size, x.shape)).apply(x);
}

/** [N, ...] -> [N, rest]. */
export function flatten(x: Tensor): Tensor {
  return reshape(x, [x.shape[0], -1]);
}

// ---------------------------------------------------------------------------------------------
// Pooling

export interface Pool2dOptions {
  kernel: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
}

export function poolGeometry(xShape: Shape, options: Pool2dOptions, op: string): PoolGeometry {
  const [kH, kW] = expectPair(options.kernel, 'kernel', 1, op);
  const [strideH, strideW] = expectPair(options.stride ?? options.kernel, 'stride', 1, op);
  const [padH, padW] = expectPair(options.padding ?? 0, 'padding', 0, op);
  const [batch, inH, inW, channels] = xShape;
  if (padH * 2 > kH || padW * 2 > kW)
    throw new RangeError(`${op}: padding ${padH} must be at most half the kernel ${kH}`);
  const outH = Math.floor((inH + 2 * padH - kH) / strideH) + 1;
  const outW = Math.floor((inW + 2 * padW - kW) / strideW) + 1;
  if (outH < 1 || outW < 1)
    throw new RangeError(`${op}: input ${formatShape(xShape)} is smaller than kernel ${kH}x${kW}`);
  return { batch, inH, inW, channels, outH, outW, kH, kW, strideH, strideW, padH, padW };
}

class MaxPool2d extends Function<[Tensor]> {
  private x!: Tensor;
  constructor(private readonly g: PoolGeometry) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.x = x;
    const g = this.g;
    const y = Tensor.empty([g.batch, g.outH, g.outW, g.channels]);
    getBackend().maxPoolForward(g, x.data, y.data);
    return y;
  }
  backward(dy: Tensor): Tensor[] {
    const dx = Tensor.empty(this.x.shape);
    getBackend().maxPoolBackward(this.g, this.x.data, dy.data, dx.data);
    return [dx];
  }
}

class AvgPool2d extends Function<[Tensor]> {
  private xShape!: Shape;
  constructor(private readonly g: PoolGeometry) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.xShape = x.shape;
    const g = this.g;
    const y = Tensor.empty([g.batch, g.outH, g.outW, g.channels]);
    getBackend().avgPoolForward(g, x.data, y.data);
    return y;
  }
  backward(dy: Tensor): Tensor[] {
    const dx = Tensor.empty(this.xShape);
    getBackend().avgPoolBackward(this.g, dy.data, dx.data);
    return [dx];
  }
}

export function maxPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  expectRank(x, 4, 'maxPool2d', 'input', '[N, H, W, C] (channels-last)');
  return new MaxPool2d(poolGeometry(x.shape, options, 'maxPool2d')).apply(x);
}

export function avgPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  expectRank(x, 4, 'avgPool2d', 'input', '[N, H, W, C] (channels-last)');
  return new AvgPool2d(poolGeometry(x.shape, options, 'avgPool2d')).apply(x);
}

/** [N, H, W, C] -> [N, C], the mean over every position. */
export function globalAvgPool(x: Tensor): Tensor {
  expectRank(x, 4, 'globalAvgPool', 'input', '[N, H, W, C] (channels-last)');
  const pooled = avgPool2d(x, { kernel: [x.shape[1], x.shape[2]] });
  return reshape(pooled, [x.shape[0], x.shape[3]]);
}

// ---------------------------------------------------------------------------------------------
// Loss

class SoftmaxCrossEntropy extends Function<[Tensor]> {
  private probs!: Tensor;
  constructor(
    private readonly labels: Int32Array,
    private readonly smoothing: number,
  ) {
    super();
  }
  forward(logits: Tensor): Tensor {
    const [rows, classes] = logits.shape;
    this.probs = Tensor.empty(logits.shape);
    const loss = getBackend().softmaxCrossEntropyForward(
      rows,
      classes,
      logits.data,
      this.labels,
      this.smoothing,
      this.probs.data,
    );
    return Tensor.full([], loss);
  }
  backward(dy: Tensor): Tensor[] {
    const [rows, classes] = this.probs.shape;
    const dlogits = Tensor.empty(this.probs.shape);
    getBackend().softmaxCrossEntropyBackward(
      rows,
      classes,
      this.probs.data,
      this.labels,
      this.smoothing,
      dy.data[0],
      dlogits.data,
    );
    return [dlogits];
  }
}

/** Mean cross-entropy of softmax(logits [rows, classes]) against integer labels. */
export function softmaxCrossEntropy(
  logits: Tensor,
  labels: Int32Array,
  options: { labelSmoothing?: number } = {},
): Tensor {
  expectRank(logits, 2, 'softmaxCrossEntropy', 'logits', '[rows, classes]');
  if (!(labels instanceof Int32Array)) {
    throw new TypeError(`softmaxCrossEntropy: expected Int32Array for labels`);
  }
  if (labels.length !== logits.shape[0]) {
    throw new RangeError(
      `softmaxCrossEntropy: ${labels.length} labels for logits ${formatShape(logits.shape)} (${logits.shape[0]} rows)`,
    );
  }
  const classes = logits.shape[1];
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= classes) {
      throw new RangeError(`softmaxCrossEntropy: label ${labels[i]} at row ${i} is outside [0, ${classes})`);
    }
  }
  const smoothing = expectInRange(options.labelSmoothing ?? 0, 'labelSmoothing', 0, 1, 'softmaxCrossEntropy');
  return new SoftmaxCrossEntropy(labels, smoothing).apply(logits);
}

class SoftCrossEntropy extends Function<[Tensor]> {
  private probs!: Float64Array;
  constructor(private readonly target: Float32Array) {
    super();
  }
  forward(logits: Tensor): Tensor {
    const [rows, classes] = logits.shape;
    const z = logits.data;
    this.probs = new Float64Array(z.length);
    let total = 0;
    for (let r = 0; r < rows; r++) {
      let max = -Infinity;
      for (let k = 0; k < classes; k++) max = Math.max(max, z[r * classes + k]);
      let sum = 0;
      for (let k = 0; k < classes; k++) sum += Math.exp(z[r * classes + k] - max);
      const lse = max + Math.log(sum);
      for (let k = 0; k < classes; k++) {
        const logp = z[r * classes + k] - lse;
        this.probs[r * classes + k] = Math.exp(logp);
        total -= this.target[r * classes + k] * logp;
      }
    }
    return Tensor.full([], total / rows);
  }
  backward(dy: Tensor): Tensor[] {
    const rows = this.inputs[0].shape[0];
    const g = Tensor.empty(this.inputs[0].shape);
    const s = dy.data[0] / rows;
    for (let i = 0; i < g.size; i++) g.data[i] = s * (this.probs[i] - this.target[i]);
    return [g];
  }
}

/**
 * Mean cross-entropy against soft targets (probability rows, e.g. a teacher's softmax): the
 * distillation loss of once QAT, equal to KL(target || softmax(logits)) up to a constant.
 */
export function softCrossEntropy(logits: Tensor, target: Float32Array): Tensor {
  expectRank(logits, 2, 'softCrossEntropy', 'logits', '[rows, classes]');
  if (target.length !== logits.size) {
    throw new RangeError(
      `softCrossEntropy: ${target.length} target values for logits ${formatShape(logits.shape)}`,
    );
  }
  return new SoftCrossEntropy(target).apply(logits);
}

/** Row-wise softmax of [rows, classes] logits (no gradient). */
export function softmaxRows(logits: Tensor): Float32Array {
  const [rows, classes] = logits.shape;
  const z = logits.data;
  const out = new Float32Array(z.length);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, z[r * classes + k]);
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += out[r * classes + k] = Math.exp(z[r * classes + k] - max);
    for (let k = 0; k < classes; k++) out[r * classes + k] /= sum;
  }
  return out;
}
