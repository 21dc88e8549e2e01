import type { Backend, ConvGeometry, FloatArray, PoolGeometry } from './backend.js';
import { referenceQuantKernels } from './quant-kernels-reference.js';

/**
 * The plain-TypeScript backend: the living definition of every kernel. It favours obvious loops over
 * speed, and it accumulates every sum in a JS double (even when the arrays are Float32Array) so that
 * it can serve as the yardstick for the native backend and for gradient checks in Float64Array.
 *
 * Where a gradient has to be scattered (pooling), the sums go through a Float64Array scratch buffer
 * for the same reason; everything else is written as a gather, one output element at a time.
 */

/** Offset of element (n, h, w, c) in a channels-last [N, H, W, C] array. */
function nhwc(
  n: number,
  h: number,
  w: number,
  c: number,
  height: number,
  width: number,
  channels: number,
): number {
  return ((n * height + h) * width + w) * channels + c;
}

/** Offset of element (o, i, kh, kw) in an [O, I/groups, kH, kW] weight array. */
function oihw(g: ConvGeometry, o: number, i: number, kh: number, kw: number): number {
  return ((o * (g.inC / g.groups) + i) * g.kH + kh) * g.kW + kw;
}

/**
 * Working buffers of conv2dForward, kept between calls (a forward pass makes dozens of calls; fresh
 * buffers each time kept the garbage collector busy). Kernels run one at a time, so one set is enough.
 */
const convScratch = {
  weightBuffer: new Float64Array(0),
  sumBuffer: new Float64Array(0),
  weights(n: number): Float64Array {
    if (this.weightBuffer.length < n) this.weightBuffer = new Float64Array(n);
    return this.weightBuffer;
  },
  sums(n: number): Float64Array {
    if (this.sumBuffer.length < n) this.sumBuffer = new Float64Array(n);
    return this.sumBuffer;
  },
};

function conv2dForward(
  g: ConvGeometry,
  x: FloatArray,
  w: FloatArray,
  bias: FloatArray | null,
  y: FloatArray,
): void {
  const inPerGroup = g.inC / g.groups;
  const outPerGroup = g.outC / g.groups;
  const { kH, kW, inH, inW, inC, outC } = g;
  // The weights reordered to [group, kH, kW, I/groups, O/groups]: for one input value, the
  // innermost loop walks the output channels it feeds contiguously.
  const wt = convScratch.weights(g.outC * kH * kW * inPerGroup);
  for (let oc = 0; oc < outC; oc++) {
    const group = Math.floor(oc / outPerGroup);
    const o = oc - group * outPerGroup;
    for (let i = 0; i < inPerGroup; i++) {
      for (let kh = 0; kh < kH; kh++) {
        for (let kw = 0; kw < kW; kw++) {
          const tap = (group * kH + kh) * kW + kw;
          wt[(tap * inPerGroup + i) * outPerGroup + o] = w[oihw(g, oc, i, kh, kw)];
        }
      }
    }
  }
  // One output pixel's sums for the output channels of a group, in doubles; each runs over
  // (kh, kw, i) in order, starting from the bias. An input of 0 adds nothing and is skipped
  // (after ReLU and activation quantization, most are 0).
  const acc = convScratch.sums(outPerGroup);
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        const out = nhwc(n, oh, ow, 0, g.outH, g.outW, outC);
        for (let group = 0; group < g.groups; group++) {
          const firstOut = group * outPerGroup;
          for (let o = 0; o < outPerGroup; o++) acc[o] = bias === null ? 0 : bias[firstOut + o];
          for (let kh = 0; kh < kH; kh++) {
            const ih = oh * g.strideH - g.padH + kh * g.dilationH;
            if (ih < 0 || ih >= inH) continue;
            for (let kw = 0; kw < kW; kw++) {
              const iw = ow * g.strideW - g.padW + kw * g.dilationW;
              if (iw < 0 || iw >= inW) continue;
              const xAt = nhwc(n, ih, iw, group * inPerGroup, inH, inW, inC);
              const wAt = ((group * kH + kh) * kW + kw) * inPerGroup * outPerGroup;
              accumulateTap(x, xAt, wt, wAt, inPerGroup, acc, outPerGroup);
            }
          }
          for (let o = 0; o < outPerGroup; o++) y[out + firstOut + o] = acc[o];
        }
      }
    }
  }
}

/**
 * acc[o] += x[xAt + i] * wt[wAt + i * outs + o] for each input channel i in order, skipping inputs
 * of 0. Small and branch-light, so that the engine compiles it early in the first forward pass.
 */
function accumulateTap(
  x: FloatArray,
  xAt: number,
  wt: Float64Array,
  wAt: number,
  ins: number,
  acc: Float64Array,
  outs: number,
): void {
  for (let i = 0; i < ins; i++) {
    const xv = x[xAt + i];
    if (xv === 0) continue;
    const row = wAt + i * outs;
    for (let o = 0; o < outs; o++) acc[o] += xv * wt[row + o];
  }
}

/**
 * Output index along one axis that kernel tap `k` maps onto input index `i`, or -1 when that tap
 * never lands on `i` (the stride skips it or the output would fall outside the image).
 */
function outputIndexForTap(
  i: number,
  k: number,
  stride: number,
  pad: number,
  dilation: number,
  outSize: number,
): number {
  const scaled = i + pad - k * dilation;
  if (scaled < 0 || scaled % stride !== 0) return -1;
  const o = scaled / stride;
  return o < outSize ? o : -1;
}

function conv2dBackwardData(g: ConvGeometry, dy: FloatArray, w: FloatArray, dx: FloatArray): void {
  const inPerGroup = g.inC / g.groups;
  const outPerGroup = g.outC / g.groups;
  for (let n = 0; n < g.batch; n++) {
    for (let ih = 0; ih < g.inH; ih++) {
      for (let iw = 0; iw < g.inW; iw++) {
        for (let ic = 0; ic < g.inC; ic++) {
          const group = Math.floor(ic / inPerGroup);
          const i = ic - group * inPerGroup;
          let sum = 0;
          for (let kh = 0; kh < g.kH; kh++) {
            const oh = outputIndexForTap(ih, kh, g.strideH, g.padH, g.dilationH, g.outH);
            if (oh < 0) continue;
            for (let kw = 0; kw < g.kW; kw++) {
              const ow = outputIndexForTap(iw, kw, g.strideW, g.padW, g.dilationW, g.outW);
              if (ow < 0) continue;
              for (let oc = group * outPerGroup; oc < (group + 1) * outPerGroup; oc++) {
                sum += dy[nhwc(n, oh, ow, oc, g.outH, g.outW, g.outC)] * w[oihw(g, oc, i, kh, kw)];
              }
            }
          }
          dx[nhwc(n, ih, iw, ic, g.inH, g.inW, g.inC)] = sum;
        }
      }
    }
  }
}

function conv2dBackwardWeights(
  g: ConvGeometry,
  x: FloatArray,
  dy: FloatArray,
  dw: FloatArray,
  dbias: FloatArray | null,
): void {
  const inPerGroup = g.inC / g.groups;
  const outPerGroup = g.outC / g.groups;
  for (let oc = 0; oc < g.outC; oc++) {
    const firstIn = Math.floor(oc / outPerGroup) * inPerGroup;
    for (let i = 0; i < inPerGroup; i++) {
      for (let kh = 0; kh < g.kH; kh++) {
        for (let kw = 0; kw < g.kW; kw++) {
          let sum = 0;
          for (let n = 0; n < g.batch; n++) {
            for (let oh = 0; oh < g.outH; oh++) {
              const ih = oh * g.strideH - g.padH + kh * g.dilationH;
              if (ih < 0 || ih >= g.inH) continue;
              for (let ow = 0; ow < g.outW; ow++) {
                const iw = ow * g.strideW - g.padW + kw * g.dilationW;
                if (iw < 0 || iw >= g.inW) continue;
                sum +=
                  dy[nhwc(n, oh, ow, oc, g.outH, g.outW, g.outC)] *
                  x[nhwc(n, ih, iw, firstIn + i, g.inH, g.inW, g.inC)];
              }
            }
          }
          dw[oihw(g, oc, i, kh, kw)] = sum;
        }
      }
    }
  }
  if (dbias !== null) {
    const positions = g.batch * g.outH * g.outW;
    for (let oc = 0; oc < g.outC; oc++) {
      let sum = 0;
      for (let p = 0; p < positions; p++) sum += dy[p * g.outC + oc];
      dbias[oc] = sum;
    }
  }
}

function linearForward(
  rows: number,
  inF: number,
  outF: number,
  x: FloatArray,
  w: FloatArray,
  bias: FloatArray | null,
  y: FloatArray,
): void {
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let sum = bias === null ? 0 : bias[o];
      for (let i = 0; i < inF; i++) sum += x[r * inF + i] * w[o * inF + i];
      y[r * outF + o] = sum;
    }
  }
}

function linearBackward(
  rows: number,
  inF: number,
  outF: number,
  x: FloatArray,
  w: FloatArray,
  dy: FloatArray,
  dx: FloatArray | null,
  dw: FloatArray,
  dbias: FloatArray | null,
): void {
  if (dx !== null) {
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < inF; i++) {
        let sum = 0;
        for (let o = 0; o < outF; o++) sum += dy[r * outF + o] * w[o * inF + i];
        dx[r * inF + i] = sum;
      }
    }
  }
  for (let o = 0; o < outF; o++) {
    for (let i = 0; i < inF; i++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += dy[r * outF + o] * x[r * inF + i];
      dw[o * inF + i] = sum;
    }
  }
  if (dbias !== null) {
    for (let o = 0; o < outF; o++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += dy[r * outF + o];
      dbias[o] = sum;
    }
  }
}

function batchNormForwardTraining(
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
): void {
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += x[r * channels + c];
    const m = sum / rows;
    // Two passes rather than E[x^2] - E[x]^2, which cancels catastrophically for large means.
    let squares = 0;
    for (let r = 0; r < rows; r++) {
      const d = x[r * channels + c] - m;
      squares += d * d;
    }
    mean[c] = m;
    variance[c] = squares / rows;
  }
  // Normalise with the statistics as stored, so training and inference agree bit for bit in float32.
  batchNormForwardInference(rows, channels, x, gamma, beta, mean, variance, eps, relu, y);
}

function batchNormForwardInference(
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
): void {
  for (let c = 0; c < channels; c++) {
    const scale = gamma[c] / Math.sqrt(variance[c] + eps);
    for (let r = 0; r < rows; r++) {
      const k = r * channels + c;
      const v = scale * (x[k] - mean[c]) + beta[c];
      y[k] = relu && v < 0 ? 0 : v;
    }
  }
}

function batchNormBackward(
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
): void {
  const passes = (k: number): number => (relu && y[k] <= 0 ? 0 : dy[k]);
  for (let c = 0; c < channels; c++) {
    const invStd = 1 / Math.sqrt(variance[c] + eps);
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let r = 0; r < rows; r++) {
      const k = r * channels + c;
      const g = passes(k);
      sumDy += g;
      sumDyXhat += g * (x[k] - mean[c]) * invStd;
    }
    dbeta[c] = sumDy;
    dgamma[c] = sumDyXhat;
    // The batch statistics depend on every row, hence the two correction terms.
    const factor = (gamma[c] * invStd) / rows;
    for (let r = 0; r < rows; r++) {
      const k = r * channels + c;
      const xhat = (x[k] - mean[c]) * invStd;
      dx[k] = factor * (rows * passes(k) - sumDy - xhat * sumDyXhat);
    }
  }
}

function reluForward(x: FloatArray, cap: number, y: FloatArray): void {
  for (let i = 0; i < x.length; i++) y[i] = Math.min(Math.max(x[i], 0), cap);
}

function reluBackward(y: FloatArray, dy: FloatArray, cap: number, dx: FloatArray): void {
  for (let i = 0; i < y.length; i++) dx[i] = y[i] > 0 && y[i] < cap ? dy[i] : 0;
}

function add(a: FloatArray, b: FloatArray, out: FloatArray): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + b[i];
}

function mul(a: FloatArray, b: FloatArray, out: FloatArray): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] * b[i];
}

function axpy(a: FloatArray, alpha: number, b: FloatArray, out: FloatArray): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + alpha * b[i];
}

/**
 * Calls `visit` with the input offset of every in-image cell of the window behind output (n, oh, ow)
 * for channel c; padded cells are simply never visited.
 */
function forEachWindowCell(
  g: PoolGeometry,
  n: number,
  oh: number,
  ow: number,
  c: number,
  visit: (offset: number) => void,
): void {
  for (let kh = 0; kh < g.kH; kh++) {
    const ih = oh * g.strideH - g.padH + kh;
    if (ih < 0 || ih >= g.inH) continue;
    for (let kw = 0; kw < g.kW; kw++) {
      const iw = ow * g.strideW - g.padW + kw;
      if (iw < 0 || iw >= g.inW) continue;
      visit(nhwc(n, ih, iw, c, g.inH, g.inW, g.channels));
    }
  }
}

function forEachPoolOutput(
  g: PoolGeometry,
  visit: (n: number, oh: number, ow: number, c: number, out: number) => void,
): void {
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        for (let c = 0; c < g.channels; c++)
          visit(n, oh, ow, c, nhwc(n, oh, ow, c, g.outH, g.outW, g.channels));
      }
    }
  }
}

/**
 * Offset of the window's maximum; the first one in scan order wins ties, so forward and backward
 * agree on the cell that receives the gradient. -1 for a window that lies wholly in the padding.
 */
function argMaxOfWindow(
  g: PoolGeometry,
  x: FloatArray,
  n: number,
  oh: number,
  ow: number,
  c: number,
): number {
  let best = -1;
  forEachWindowCell(g, n, oh, ow, c, (offset) => {
    if (best < 0 || x[offset] > x[best]) best = offset;
  });
  return best;
}

function maxPoolForward(g: PoolGeometry, x: FloatArray, y: FloatArray): void {
  forEachPoolOutput(g, (n, oh, ow, c, out) => {
    const best = argMaxOfWindow(g, x, n, oh, ow, c);
    y[out] = best < 0 ? 0 : x[best];
  });
}

function maxPoolBackward(g: PoolGeometry, x: FloatArray, dy: FloatArray, dx: FloatArray): void {
  const sums = new Float64Array(dx.length);
  forEachPoolOutput(g, (n, oh, ow, c, out) => {
    const best = argMaxOfWindow(g, x, n, oh, ow, c);
    if (best >= 0) sums[best] += dy[out];
  });
  dx.set(sums);
}

function avgPoolForward(g: PoolGeometry, x: FloatArray, y: FloatArray): void {
  forEachPoolOutput(g, (n, oh, ow, c, out) => {
    let sum = 0;
    let count = 0;
    forEachWindowCell(g, n, oh, ow, c, (offset) => {
      sum += x[offset];
      count++;
    });
    y[out] = count === 0 ? 0 : sum / count;
  });
}

function avgPoolBackward(g: PoolGeometry, dy: FloatArray, dx: FloatArray): void {
  const sums = new Float64Array(dx.length);
  forEachPoolOutput(g, (n, oh, ow, c, out) => {
    const cells: number[] = [];
    forEachWindowCell(g, n, oh, ow, c, (offset) => cells.push(offset));
    for (const offset of cells) sums[offset] += dy[out] / cells.length;
  });
  dx.set(sums);
}

function checkLabel(labels: Int32Array, row: number, classes: number): number {
  const label = labels[row];
  if (!(label >= 0 && label < classes)) {
    throw new RangeError(`Expected label in [0, ${classes - 1}] for labels[${row}] but received ${label}`);
  }
  return label;
}

function softmaxCrossEntropyForward(
  rows: number,
  classes: number,
  logits: FloatArray,
  labels: Int32Array,
  smoothing: number,
  probs: FloatArray,
): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const label = checkLabel(labels, r, classes);
    const base = r * classes;
    // Shift by the row maximum so exp never overflows; log-probabilities stay exact.
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[base + k]);
    let sumExp = 0;
    for (let k = 0; k < classes; k++) sumExp += Math.exp(logits[base + k] - max);
    const logSumExp = Math.log(sumExp);
    let sumLogProbs = 0;
    for (let k = 0; k < classes; k++) {
      const logProb = logits[base + k] - max - logSumExp;
      probs[base + k] = Math.exp(logProb);
      sumLogProbs += logProb;
    }
    const labelLogProb = logits[base + label] - max - logSumExp;
    total -= (1 - smoothing) * labelLogProb + (smoothing / classes) * sumLogProbs;
  }
  return total / rows;
}

function softmaxCrossEntropyBackward(
  rows: number,
  classes: number,
  probs: FloatArray,
  labels: Int32Array,
  smoothing: number,
  scale: number,
  dlogits: FloatArray,
): void {
  for (let r = 0; r < rows; r++) {
    const label = checkLabel(labels, r, classes);
    for (let k = 0; k < classes; k++) {
      const target = (k === label ? 1 - smoothing : 0) + smoothing / classes;
      dlogits[r * classes + k] = (scale * (probs[r * classes + k] - target)) / rows;
    }
  }
}

function sgdStep(
  param: FloatArray,
  grad: FloatArray,
  velocity: FloatArray | null,
  lr: number,
  momentum: number,
  weightDecay: number,
  nesterov: boolean,
): void {
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] + weightDecay * param[i];
    if (velocity === null) {
      // No velocity buffer means momentum 0: v = g', and nesterov's g' + 0 * v is g' as well.
      param[i] -= lr * g;
      continue;
    }
    const v = momentum * velocity[i] + g;
    velocity[i] = v;
    param[i] -= lr * (nesterov ? g + momentum * v : v);
  }
}

export const referenceBackend: Backend = {
  name: 'reference',
  conv2dForward,
  conv2dBackwardData,
  conv2dBackwardWeights,
  linearForward,
  linearBackward,
  batchNormForwardTraining,
  batchNormForwardInference,
  batchNormBackward,
  reluForward,
  reluBackward,
  add,
  mul,
  axpy,
  maxPoolForward,
  maxPoolBackward,
  avgPoolForward,
  avgPoolBackward,
  softmaxCrossEntropyForward,
  softmaxCrossEntropyBackward,
  sgdStep,
  // Fake quantization lives in its own module (quant-kernels-reference.ts).
  ...referenceQuantKernels,
};
