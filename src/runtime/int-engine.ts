/**
 * Runs an integer plan (`export/int-plan.ts`) on Strata's engine: every integer step on the int8
 * kernels (`engine/int8-kernels.ts`: oneDNN when the native backend is active, else the TypeScript
 * reference, and `kernels` says which), every float step (the first convolution, pooling, residual
 * additions) on the active backend's float ops. Layers are prepared once, at construction. A runner
 * reuses its buffers between runs, so one runner serves one caller at a time (runs are synchronous).
 */
import { noGrad } from '../engine/autograd.js';
import {
  int8Kernels,
  referenceInt8Kernels,
  type Codes,
  type Int8Kernels,
  type Int8Layer,
} from '../engine/int8-kernels.js';
import { scope } from '../engine/memory.js';
import {
  add,
  avgPool2d,
  conv2d,
  globalAvgPool,
  linear,
  maxPool2d,
  relu,
  relu6,
  reshape,
} from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import type { IntPlan, PlanStep } from '../export/int-plan.js';

interface Slot {
  data: Float32Array | Codes;
  /** [N, H, W, C] or [N, F]. */
  shape: number[];
}

type IntStep = Extract<PlanStep, { kind: 'int' }>;

export class IntPlanRunner {
  readonly kernels: Int8Kernels;
  /** Layers that run on the reference kernels although the native ones are active (and why). */
  readonly referenceLayers: string[] = [];
  private readonly layers = new Map<IntStep, { kernels: Int8Kernels; layer: Int8Layer }>();
  private readonly floatWeights = new Map<PlanStep, { weight: Tensor; bias: Tensor }>();
  /**
   * Output buffers of the integer and quantize steps, kept between runs of the same size: a fresh
   * multi-megabyte array per layer and batch costs more in page faults than the int8 kernel itself.
   */
  private readonly buffers = new Map<PlanStep, Float32Array | Codes>();

  private buffer<T extends Float32Array | Codes>(step: PlanStep, length: number, make: (n: number) => T): T {
    const cached = this.buffers.get(step);
    if (cached !== undefined && cached.length === length) return cached as T;
    const fresh = make(length);
    this.buffers.set(step, fresh);
    return fresh;
  }

  constructor(
    readonly plan: IntPlan,
    kernels: Int8Kernels = int8Kernels(),
  ) {
    this.kernels = kernels;
    for (const step of plan.steps) {
      if (step.kind === 'int') {
        // oneDNN's path adds the offset correction as one extra output channel, which needs groups = 1.
        const k = step.form.corr !== 0 && (step.conv?.groups ?? 1) !== 1 ? referenceInt8Kernels : kernels;
        if (k !== kernels)
          this.referenceLayers.push(`${step.path} (8-bit offset correction with groups > 1)`);
        const c = step.conv;
        const layer = k.int8LayerCreate(
          {
            kind: c === null ? 'linear' : 'conv',
            inC: step.inFeatures,
            outC: step.outFeatures,
            srcSigned: step.inputSigned,
            relu: step.relu,
            residual: step.residual !== null,
            ...(c === null
              ? {}
              : {
                  kH: c.kernel[0],
                  kW: c.kernel[1],
                  strideH: c.stride[0],
                  strideW: c.stride[1],
                  padH: c.padding[0],
                  padW: c.padding[1],
                  dilationH: c.dilation[0],
                  dilationW: c.dilation[1],
                  groups: c.groups,
                }),
          },
          step.form.k,
          step.scale,
          step.form.corr === 0 ? null : step.corrScale,
          step.bias,
        );
        this.layers.set(step, { kernels: k, layer });
      } else if (step.kind === 'float') {
        const c = step.conv;
        const shape =
          c === null ? [step.outFeatures, step.inFeatures] : [c.outC, c.inC / c.groups, ...c.kernel];
        this.floatWeights.set(step, {
          weight: new Tensor(step.weight, shape),
          bias: new Tensor(step.bias, [step.outFeatures]),
        });
      }
    }
  }

  /** Logits [N, classes] for channels-last images [N, H, W, C]. */
  run(input: Float32Array, shape: readonly number[]): Float32Array {
    return scope(() =>
      noGrad(() => {
        const values = new Map<string, Slot>([[this.plan.input, { data: input, shape: [...shape] }]]);
        const get = (name: string): Slot => values.get(name)!;
        const tensor = (name: string): Tensor => {
          const v = get(name);
          if (!(v.data instanceof Float32Array))
            throw new Error(`int-engine: '${name}' holds codes, not floats`);
          return new Tensor(v.data, v.shape);
        };
        const put = (name: string, t: Tensor) =>
          values.set(name, { data: t.data as Float32Array, shape: [...t.shape] });
        for (const step of this.plan.steps) {
          switch (step.kind) {
            case 'quantize': {
              const x = get(step.input);
              const out =
                step.qmin < 0
                  ? this.buffer(step, x.data.length, (n) => new Int8Array(n))
                  : this.buffer(step, x.data.length, (n) => new Uint8Array(n));
              this.kernels.quantizeCodes(x.data as Float32Array, step.scale, step.qmin, step.qmax, out);
              values.set(step.output, { data: out, shape: x.shape });
              break;
            }
            case 'int': {
              const x = get(step.input);
              const { kernels, layer } = this.layers.get(step)!;
              const c = step.conv;
              const [n, h, w] = c === null ? [x.shape[0], 1, 1] : x.shape;
              const oh =
                c === null
                  ? 1
                  : Math.floor((h + 2 * c.padding[0] - c.dilation[0] * (c.kernel[0] - 1) - 1) / c.stride[0]) +
                    1;
              const ow =
                c === null
                  ? 1
                  : Math.floor((w + 2 * c.padding[1] - c.dilation[1] * (c.kernel[1] - 1) - 1) / c.stride[1]) +
                    1;
              const out = this.buffer(step, n * oh * ow * step.outFeatures, (m) => new Float32Array(m));
              const residual = step.residual === null ? null : (get(step.residual).data as Float32Array);
              kernels.int8LayerRun(layer, n, h, w, x.data as Codes, out, residual);
              values.set(step.output, {
                data: out,
                shape: c === null ? [n, step.outFeatures] : [n, oh, ow, step.outFeatures],
              });
              break;
            }
            case 'float': {
              const { weight, bias } = this.floatWeights.get(step)!;
              const c = step.conv;
              let y =
                c === null
                  ? linear(tensor(step.input), weight, bias)
                  : conv2d(tensor(step.input), weight, bias, {
                      stride: c.stride,
                      padding: c.padding,
                      dilation: c.dilation,
                      groups: c.groups,
                    });
              if (step.relu) y = relu(y);
              put(step.output, y);
              break;
            }
            case 'affine': {
              const x = get(step.input);
              const data = x.data as Float32Array;
              const out = new Float32Array(data.length);
              const channels = step.scale.length;
              for (let i = 0; i < data.length; i++) {
                const v = Math.fround(data[i] * step.scale[i % channels] + step.bias[i % channels]);
                out[i] = step.relu && v < 0 ? 0 : v;
              }
              values.set(step.output, { data: out, shape: x.shape });
              break;
            }
            case 'add':
              put(step.output, add(tensor(step.inputs[0]), tensor(step.inputs[1])));
              break;
            case 'relu':
              put(step.output, step.cap === null ? relu(tensor(step.input)) : relu6(tensor(step.input)));
              break;
            case 'pool':
              put(
                step.output,
                step.op === 'max'
                  ? maxPool2d(tensor(step.input), step.options)
                  : avgPool2d(tensor(step.input), step.options),
              );
              break;
            case 'globalAvgPool':
              put(step.output, globalAvgPool(tensor(step.input)));
              break;
            case 'flatten': {
              const x = tensor(step.input);
              put(step.output, reshape(x, [x.shape[0], -1]));
              break;
            }
          }
        }
        return Float32Array.from(get(this.plan.output).data as Float32Array);
      }),
    );
  }
}
