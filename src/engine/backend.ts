/**
 * The kernel contract every compute backend fulfils.
 *
 * Kernels are plain functions over flat typed arrays: they never allocate their outputs, never
 * look at Tensors and never record autograd history. Shapes have already been validated by the
 * differentiable ops in `ops.ts`, so a kernel may assume consistent sizes.
 *
 * Layout conventions (fixed, so kernels stay simple and fast):
 * - activations are channels-last: a 4-D image batch is `[N, H, W, C]`;
 * - convolution weights are `[O, I/groups, kH, kW]` (PyTorch and ONNX order);
 * - linear weights are `[out, in]`;
 * - batch norm sees its input as a `[rows, C]` matrix (rows = N*H*W for images).
 *
 * The reference backend also accepts Float64Array so gradient checks can run in double precision.
 */
export type FloatArray = Float32Array | Float64Array;

export interface ConvGeometry {
  readonly batch: number;
  readonly inH: number;
  readonly inW: number;
  readonly inC: number;
  readonly outH: number;
  readonly outW: number;
  readonly outC: number;
  readonly kH: number;
  readonly kW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  readonly dilationH: number;
  readonly dilationW: number;
  readonly groups: number;
}

export interface PoolGeometry {
  readonly batch: number;
  readonly inH: number;
  readonly inW: number;
  readonly channels: number;
  readonly outH: number;
  readonly outW: number;
  readonly kH: number;
  readonly kW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
}

/**
 * Fake quantization (quantize then dequantize) with straight-through gradients, fused so that a
 * once-QAT step over several precisions costs little more than the plain passes.
 */
export interface QuantKernels {
  /**
   * Weights through the cascade of vertical layering. Per output channel c (w is [channels, ...]),
   * with top scale sT[c] and k = topBits - bits:
   *   floor: q_B = clip(floor(w / sT), -2^(B-1), 2^(B-1)-1), q_b = q_B >> k, w^ = (q_b + 1/2) sT 2^k
   *   round: q_B = clip(roundHalfAway(w / sT), -2^(B-1)+1, 2^(B-1)), q_b = ceil(q_B / 2^k),
   *          w^ = (q_b - 1/2 + 2^-(k+1)) sT 2^k
   * Writes w^ to `out` and, when given, the b-bit codes to `codes`.
   */
  fakeQuantWeightForward(
    w: FloatArray,
    channels: number,
    scalesTop: FloatArray,
    topBits: number,
    bits: number,
    rule: 'floor' | 'round',
    out: FloatArray,
    codes: Int32Array | null,
  ): void;
  /**
   * Straight-through gradient: dw = dy where the top code was not clipped, else 0. LSQ-style scale
   * gradient, written (not accumulated) per channel: dscale[c] = sum dy * (2^k (q_b + offset) - [inside] w / sT).
   */
  fakeQuantWeightBackward(
    w: FloatArray,
    channels: number,
    scalesTop: FloatArray,
    topBits: number,
    bits: number,
    rule: 'floor' | 'round',
    dy: FloatArray,
    dw: FloatArray,
    dscale: FloatArray,
  ): void;
  /** Activations: y = clip(floor(x / s + 1/2), qmin, qmax) * s, in float32 arithmetic (x * fround(1/s)). */
  fakeQuantActForward(x: FloatArray, scale: number, qmin: number, qmax: number, y: FloatArray): void;
  /**
   * dx = dy where qmin - 1/2 <= x / s < qmax + 1/2, else 0. Returns the LSQ scale gradient
   * sum dy * (q - [inside] x / s).
   */
  fakeQuantActBackward(
    x: FloatArray,
    scale: number,
    qmin: number,
    qmax: number,
    dy: FloatArray,
    dx: FloatArray,
  ): number;
}

export interface Backend extends QuantKernels {
  /** 'native' (oneDNN addon) or 'reference' (plain TypeScript). */
  readonly name: string;

  // Convolution, channels-last activations. `bias` may be null.
  conv2dForward(g: ConvGeometry, x: FloatArray, w: FloatArray, bias: FloatArray | null, y: FloatArray): void;
  conv2dBackwardData(g: ConvGeometry, dy: FloatArray, w: FloatArray, dx: FloatArray): void;
  /** Writes (does not accumulate) dw and, if given, dbias. */
  conv2dBackwardWeights(
    g: ConvGeometry,
    x: FloatArray,
    dy: FloatArray,
    dw: FloatArray,
    dbias: FloatArray | null,
  ): void;

  // Linear: x [rows, inF], w [outF, inF], y [rows, outF].
  linearForward(
    rows: number,
    inF: number,
    outF: number,
    x: FloatArray,
    w: FloatArray,
    bias: FloatArray | null,
    y: FloatArray,
  ): void;
  linearBackward(
    rows: number,
    inF: number,
    outF: number,
    x: FloatArray,
    w: FloatArray,
    dy: FloatArray,
    dx: FloatArray | null,
    dw: FloatArray,
    dbias: FloatArray | null,
  ): void;

  /**
   * Training-mode batch norm over a [rows, C] matrix: y = gamma * (x - mean) / sqrt(var + eps) + beta,
   * followed by max(0, .) when `relu` is set. Writes the batch mean and the biased variance.
   */
  batchNormForwardTraining(
    rows: number,
    channels: number,
    x: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    eps: number,
    relu: boolean,
    y: FloatArray,
    mean: FloatArray,
    variance: FloatArray,
  ): void;
  /** Inference-mode batch norm with given statistics (running or per-precision). */
  batchNormForwardInference(
    rows: number,
    channels: number,
    x: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    mean: FloatArray,
    variance: FloatArray,
    eps: number,
    relu: boolean,
    y: FloatArray,
  ): void;
  /**
   * Backward of the training-mode forward. When `relu` is set, `y` (the forward output) masks dy.
   * Writes dx, dgamma and dbeta.
   */
  batchNormBackward(
    rows: number,
    channels: number,
    x: FloatArray,
    dy: FloatArray,
    gamma: FloatArray,
    mean: FloatArray,
    variance: FloatArray,
    eps: number,
    relu: boolean,
    y: FloatArray,
    dx: FloatArray,
    dgamma: FloatArray,
    dbeta: FloatArray,
  ): void;

  // Element-wise. `cap` is 6 for ReLU6 and Infinity for ReLU.
  reluForward(x: FloatArray, cap: number, y: FloatArray): void;
  /** dx = dy where 0 < y < cap (y is the forward output), else 0. */
  reluBackward(y: FloatArray, dy: FloatArray, cap: number, dx: FloatArray): void;
  add(a: FloatArray, b: FloatArray, out: FloatArray): void;
  mul(a: FloatArray, b: FloatArray, out: FloatArray): void;
  /** out = a + alpha * b (used for gradient accumulation; out may alias a). */
  axpy(a: FloatArray, alpha: number, b: FloatArray, out: FloatArray): void;

  // Pooling, channels-last. Max pooling ignores padded cells; average pooling excludes them.
  maxPoolForward(g: PoolGeometry, x: FloatArray, y: FloatArray): void;
  maxPoolBackward(g: PoolGeometry, x: FloatArray, dy: FloatArray, dx: FloatArray): void;
  avgPoolForward(g: PoolGeometry, x: FloatArray, y: FloatArray): void;
  avgPoolBackward(g: PoolGeometry, dy: FloatArray, dx: FloatArray): void;

  /**
   * Mean softmax cross-entropy over a batch of logits [rows, classes] with integer labels and
   * optional label smoothing. Writes the per-row probabilities to `probs` and returns the mean loss.
   */
  softmaxCrossEntropyForward(
    rows: number,
    classes: number,
    logits: FloatArray,
    labels: Int32Array,
    smoothing: number,
    probs: FloatArray,
  ): number;
  /** dlogits = scale * (probs - target) / rows. */
  softmaxCrossEntropyBackward(
    rows: number,
    classes: number,
    probs: FloatArray,
    labels: Int32Array,
    smoothing: number,
    scale: number,
    dlogits: FloatArray,
  ): void;

  /**
   * SGD with momentum and decoupled-from-nothing (L2) weight decay, in place:
   * g' = g + wd * p; v = momentum * v + g'; p -= lr * (nesterov ? g' + momentum * v : v).
   */
  sgdStep(
    param: FloatArray,
    grad: FloatArray,
    velocity: FloatArray | null,
    lr: number,
    momentum: number,
    weightDecay: number,
    nesterov: boolean,
  ): void;
}
