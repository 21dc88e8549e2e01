/**
 * npm run bench:qlinear-exact — can QLinearConv carry a convolution of the integer plan exactly?
 *
 * A QLinearConv requantizes: code' = clamp(rhe(fl(float(t acc + B) m)), 0, 255), with acc the exact
 * integer sum over the layer's codes, t an integer weight multiplier (|t k| <= 127), B the int32 bias
 * and m = x_scale w_scale[c] / y_scale one float32 per channel, rhe round half to even (MLAS's
 * requantization). The plan's reference (the native engine, bit-identical to the shipped ConvInteger
 * graph) computes the next layer's code from the same acc as
 *
 *     code(acc) = clip(floor(fl(fl(y inv) + 0.5)), 0, qmax),  y = max(fl(fl(scale acc) + bias), 0),  inv = fl(1 / s'),
 *
 * a non-decreasing step function of acc (for scale > 0; mirrored otherwise) with thresholds T_1..T_qmax.
 * QLinearConv reproduces it for every input iff, for each j, (j - 1/2) u - B lies in (t (T_j - 1), t T_j]
 * (u = 1 / m) and the float rounding agrees at the thresholds. For every channel of every layer that
 * the requantize graph turns into a QLinearConv (conv1 of each block: output only to a quantizer; not
 * at 8 bits, whose mid-rise codes 2q + 1 need 9 bits), this script searches t, B and u exhaustively
 * over the range the thresholds allow, verifies each candidate by evaluating both step functions at
 * every threshold in float32 (src/export/exact-requantize.ts, which the requantize export uses), and
 * reports how many channels admit an exact QLinearConv.
 * Output: bench/results/qlinear-exact.txt. Options: --checkpoint <path> --bits 2,3,4,5,6,7
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packCheckpoint } from '../src/cli/commands/pack.js';
import { exactChannels } from '../src/export/exact-requantize.js';
import { intPlan, type PlanStep } from '../src/export/int-plan.js';
import { modelFromStrata } from '../src/export/strata-model.js';
import { readStrata } from '../src/format/index.js';
import { repoRoot } from './common.js';

function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const checkpoint = stringArg('checkpoint') ?? 'checkpoints/cifar10-resnet20-once3.ckpt';
const bitsList = (stringArg('bits') ?? '2,3,4,5,6,7').split(',').map(Number);

const bytes = packCheckpoint(join(repoRoot, checkpoint));
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  console.log(line);
};
say(
  `QLinearConv exactness for the requantize graph's layers (conv1 of each block), ${checkpoint}: channels for which some ` +
    "integer weight multiplier t, int32 bias B and float32 multiplier m reproduce the next layer's codes for every input " +
    '(searched, then verified in float32 at every threshold)',
);
for (const b of bitsList) {
  const { model } = modelFromStrata(readStrata(bytes, { bits: b }));
  const plan = intPlan(model, b);
  const consumers = new Map<string, PlanStep[]>();
  for (const s of plan.steps) {
    for (const i of s.kind === 'add' ? s.inputs : [s.input])
      consumers.set(i, [...(consumers.get(i) ?? []), s]);
  }
  let total = 0;
  let exact = 0;
  const perLayer: string[] = [];
  for (const s of plan.steps) {
    if (s.kind !== 'int' || s.conv === null || s.residual !== null || s.form.corr !== 0) continue;
    const next = consumers.get(s.output) ?? [];
    if (next.length !== 1 || next[0].kind !== 'quantize') continue;
    const q = next[0];
    const inMax = 2 ** b - 1;
    const ok = exactChannels(s, q, inMax);
    total += s.outFeatures;
    exact += ok;
    perLayer.push(`${s.path} ${ok}/${s.outFeatures}`);
  }
  say(
    `bits=${b}: ${exact} of ${total} channels exact (${((100 * exact) / total).toFixed(1)}%); ${perLayer.join(', ')}`,
  );
}
writeFileSync(
  join(repoRoot, 'bench', 'results', 'qlinear-exact.txt'),
  `$ npm run bench:qlinear-exact -- ${process.argv.slice(2).join(' ')}\n${lines.join('\n')}\n`,
);
