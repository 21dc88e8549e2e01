/**
 * The once-QAT ablations of docs/EXPERIMENTS.md on a fast proxy (small CNN, Fashion-MNIST): each
 * variant fine-tunes one full-precision checkpoint with a changed recipe, for several seeds, and the
 * table gives the mean and spread of validation top-1 per precision next to the dedicated models.
 *
 *   npx tsx bench/ablation.ts --fp runs/exp/fp/checkpoint.ckpt --variants dedicated,once5 --seeds 0,1
 *   npx tsx bench/ablation.ts --list            # the variants and what each changes
 *   npx tsx bench/ablation.ts --report          # only the tables of what is recorded (Markdown)
 *
 * Every run keeps its folder under --runs (default runs/ablation), so an interrupted ablation resumes
 * and a finished run is only re-evaluated. Writes bench/results/ablation-<dataset>.json, merging the
 * variants it ran into those already recorded there.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatTable } from '../src/report/index.js';
import { resolveTrainConfig, type TrainConfig } from '../src/train/config.js';
import { checkpointPath, runTraining } from '../src/train/trainer.js';
import { repoRoot, writeResult } from './common.js';

const ALL_BITS = [8, 7, 6, 5, 4, 3, 2];

interface Variant {
  what: string;
  /** One config per run of a seed: a once variant is one run, `dedicated` one run per precision. */
  runs: (base: Partial<TrainConfig>) => Partial<TrainConfig>[];
}

const once = (extra: Partial<TrainConfig>) => (base: Partial<TrainConfig>) => [
  {
    ...base,
    mode: 'once' as const,
    bits: [8, 6, 4, 3, 2],
    stepFrom: 'all' as const,
    lossBalance: 'mean' as const,
    ...extra,
  },
];

const VARIANTS: Record<string, Variant> = {
  dedicated: {
    what: 'one dedicated QAT model per precision (8..2), same epochs and rate',
    runs: (base) => ALL_BITS.map((b) => ({ ...base, mode: 'qat' as const, bits: [b] })),
  },
  'dedicated-long': {
    what: 'dedicated QAT at 8 and 2 bits with twice the epochs',
    runs: (base) =>
      [8, 2].map((b) => ({ ...base, mode: 'qat' as const, bits: [b], epochs: 2 * (base.epochs ?? 1) })),
  },
  once5: { what: 'once QAT over 8,6,4,3,2, mean loss (the recorded recipe)', runs: once({}) },
  once7: { what: 'once QAT over all seven precisions 8..2, mean loss', runs: once({ bits: ALL_BITS }) },
  'distill-highest': {
    what: 'once5 + distillation of every lower precision from 8 bits (weight 0.5)',
    runs: once({ distill: true, distillFrom: 'highest' }),
  },
  'distill-next': {
    what: 'once5 + recursive distillation, each precision from the next higher one (weight 0.5)',
    runs: once({ distill: true, distillFrom: 'next' }),
  },
  'once5-long': {
    what: 'once5 with twice the epochs',
    runs: (base) => once({ epochs: 2 * (base.epochs ?? 1) })(base),
  },
  'step-lowest': {
    what: 'once5, the shared weight step learns only from the 2-bit loss',
    runs: once({ stepFrom: 'lowest' }),
  },
  'step-frozen': {
    what: 'once5, the shared weight step stays at its initial value (error summed over precisions)',
    runs: once({ stepFrom: 'none' }),
  },
  // The variants below build on step-lowest, the best of the ones above.
  'sl-distill-next': {
    what: 'step-lowest + recursive distillation (each precision from the next higher one, weight 0.5)',
    runs: once({ stepFrom: 'lowest', distill: true, distillFrom: 'next' }),
  },
  'sl-once7': {
    what: 'step-lowest over all seven precisions 8..2',
    runs: once({ stepFrom: 'lowest', bits: ALL_BITS }),
  },
  'sl-long': {
    what: 'step-lowest with twice the epochs',
    runs: (base) => once({ stepFrom: 'lowest', epochs: 2 * (base.epochs ?? 1) })(base),
  },
  'sl-low-weighted': {
    what: 'step-lowest with loss weights 0.15,0.15,0.2,0.2,0.3 (8,6,4,3,2 bits)',
    runs: once({ stepFrom: 'lowest', lossWeights: [0.15, 0.15, 0.2, 0.2, 0.3] }),
  },
  // H6: under the mean loss each precision moves the shared weights at 1/7 of a dedicated model's
  // rate; the easy high precisions hardly need it, the 2-bit model does.
  'sl7-w2-full': {
    what: 'sl-once7 with loss weights 1/6 for 8..3 bits and 1 for 2 bits (lossBalance lowest, the default since)',
    runs: once({ stepFrom: 'lowest', bits: ALL_BITS, lossWeights: [...Array(6).fill(1 / 6), 1] }),
  },
  'sl7-w23-full': {
    what: 'sl-once7 with loss weights 0.2 for 8..4 bits, 0.5 for 3 bits and 1 for 2 bits',
    runs: once({ stepFrom: 'lowest', bits: ALL_BITS, lossWeights: [0.2, 0.2, 0.2, 0.2, 0.2, 0.5, 1] }),
  },
  'sample3-long': {
    what: 'once5, 3 precisions a step (8, 2 and one sampled), twice the epochs (about the compute of once5)',
    runs: (base) => once({ samplePrecisions: 3, epochs: 2 * (base.epochs ?? 1) })(base),
  },
};

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

if (process.argv.includes('--list')) {
  for (const [name, v] of Object.entries(VARIANTS)) console.log(`${name.padEnd(16)} ${v.what}`);
  process.exit(0);
}

const fp = option('fp', 'runs/exp/fp/checkpoint.ckpt');
const dataset = option('dataset', 'fashion-mnist') as TrainConfig['dataset'];
const epochs = Number(option('epochs', '2'));
const seeds = option('seeds', '0,1').split(',').map(Number);
const runsRoot = option('runs', 'runs/ablation');
const reportOnly = process.argv.includes('--report');
const names = reportOnly ? [] : option('variants', Object.keys(VARIANTS).join(',')).split(',');
for (const n of names) {
  if (!(n in VARIANTS))
    throw new RangeError(`ablation: unknown variant '${n}' (known: ${Object.keys(VARIANTS).join(', ')})`);
}
if (!reportOnly && !existsSync(fp)) throw new Error(`ablation: no full-precision checkpoint at ${fp} (--fp)`);

// The recipe every variant shares: the headline's QAT stage (lr 0.01 cosine, no warm-up).
const base: Partial<TrainConfig> = {
  model: 'small-cnn',
  dataset,
  batchSize: 128,
  weightDecay: 5e-4,
  lr: 0.01,
  schedule: 'cosine',
  warmupEpochs: 0,
  epochs,
  init: fp,
};

/** variant -> seed -> precision label -> top-1. */
type Table = Record<string, Record<string, Record<string, number>>>;
const resultName = `ablation-${dataset}.json`;
const resultFile = join(repoRoot, 'bench', 'results', resultName);
const previous = existsSync(resultFile)
  ? (JSON.parse(readFileSync(resultFile, 'utf8')) as {
      table: Table;
      wall_s: Record<string, number>;
      split: string;
    })
  : { table: {}, wall_s: {}, split: '' };
const table: Table = previous.table;
const keptDir = join(repoRoot, 'checkpoints', `ablation-${dataset}`);
const wall: Record<string, number> = previous.wall_s;
let split = previous.split;

for (const name of names) {
  table[name] = {};
  wall[name] = 0;
  for (const seed of seeds) {
    const row: Record<string, number> = {};
    for (const partial of VARIANTS[name].runs(base)) {
      const tag = partial.mode === 'qat' ? `-w${partial.bits![0]}` : '';
      const config = resolveTrainConfig(
        { ...partial, seed, out: join(runsRoot, dataset, `${name}${tag}-s${seed}`) },
        `ablation ${name}`,
      );
      const result = await runTraining(config, {
        log: (m) => process.stderr.write(`[${name} s${seed}] ${m}\n`),
      });
      if (result.interrupted) process.exit(130);
      // Every reported run keeps its checkpoint in the repository, so it can be re-evaluated.
      mkdirSync(keptDir, { recursive: true });
      copyFileSync(checkpointPath(config), join(keptDir, `${name}${tag}-s${seed}.ckpt`));
      split = result.valSplit;
      wall[name] += result.wallSeconds;
      for (const r of result.results) if (r.bits !== null) row[String(r.bits)] = r.top1;
    }
    table[name][String(seed)] = row;
  }
}

const stats = (values: number[]) => {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const spread = values.length > 1 ? Math.max(...values) - Math.min(...values) : 0;
  return { mean, spread };
};
const meanOf = (bySeed: Record<string, Record<string, number>>, b: number) => {
  const values = Object.values(bySeed)
    .map((r) => r[String(b)])
    .filter((v): v is number => v !== undefined);
  return values.length === 0 ? null : stats(values);
};
const header = [
  { header: 'variant' },
  ...ALL_BITS.map((b) => ({ header: `${b} bits`, align: 'right' as const })),
];
const cells = (f: (bySeed: Record<string, Record<string, number>>, b: number) => string) =>
  Object.entries(table).map(([name, bySeed]) => [name, ...ALL_BITS.map((b) => f(bySeed, b))]);
const accuracy = cells((bySeed, b) => {
  const s = meanOf(bySeed, b);
  return s === null ? '' : `${s.mean.toFixed(2)} ±${(s.spread / 2).toFixed(2)}`;
});
// Each variant's mean minus the dedicated models' mean at the same precision.
const gaps = cells((bySeed, b) => {
  const s = meanOf(bySeed, b);
  const d = table.dedicated === undefined ? null : meanOf(table.dedicated, b);
  return s === null || d === null ? '' : `${s.mean - d.mean >= 0 ? '+' : ''}${(s.mean - d.mean).toFixed(2)}`;
});
const markdown = (rows: string[][]) =>
  [
    `| ${header.map((h) => h.header).join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
if (reportOnly) {
  console.log(`top-1 % on ${split}, mean ± half the range over seeds\n\n${markdown(accuracy)}\n`);
  console.log(`difference from the dedicated models (points)\n\n${markdown(gaps)}`);
  process.exit(0);
}
console.log(formatTable(header, accuracy));
console.log(formatTable(header, gaps));
console.log(`validation split: ${split}; mean over seeds ± half the range; seeds ${seeds.join(',')}`);
writeResult(resultName, {
  dataset,
  split,
  fp_checkpoint: fp,
  recipe: base,
  command: `npx tsx bench/ablation.ts ${process.argv.slice(2).join(' ')}`,
  variants: Object.fromEntries(Object.entries(VARIANTS).map(([n, v]) => [n, v.what])),
  table,
  wall_s: wall,
  checkpoints: {
    fp,
    run: `checkpoints/ablation-${dataset}/<variant>[-w<bits> for dedicated runs]-s<seed>.ckpt`,
  },
});
