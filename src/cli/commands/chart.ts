import { basename, dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import {
  formatTable,
  lineChart,
  writeChart,
  type ChartSeries,
  type ReferenceLine,
} from '../../report/index.js';
import { println, processIo, type CliIo } from '../io.js';
import { precisionLabel, readResults, type Method, type ResultRow } from '../results.js';

interface ChartFlags {
  runs: string[];
  out: string;
  metric: 'top1' | 'top5';
  title?: string;
}

const SERIES_NAMES: Record<Exclude<Method, 'fp'>, string> = {
  once: 'once QAT',
  qat: 'dedicated QAT',
  adapted: 'adapted',
  'adapted-bn': 'adapted + BN re-estimation',
};

interface LoadedRun {
  name: string;
  rows: ResultRow[];
  split: string;
}

/**
 * One series per method: dedicated QAT gathers its one-point runs into a line; once QAT and the
 * adapted baselines get one series per run when several runs hold them; full precision becomes a
 * reference line.
 */
export function comparisonSeries(
  runs: readonly LoadedRun[],
  metric: 'top1' | 'top5',
): { series: ChartSeries[]; references: ReferenceLine[] } {
  const series: ChartSeries[] = [];
  const references: ReferenceLine[] = [];
  for (const method of ['once', 'qat', 'adapted', 'adapted-bn'] as const) {
    const holders = runs.filter((run) => run.rows.some((r) => r.method === method && r.bits !== null));
    if (holders.length === 0) continue;
    const perRun = method !== 'qat' && holders.length > 1;
    const groups = perRun ? holders.map((run) => [run]) : [holders];
    for (const group of groups) {
      const points = group
        .flatMap((run) => run.rows.filter((r) => r.method === method && r.bits !== null))
        .map((r) => [r.bits!, r[metric]] as [number, number])
        .sort((a, b) => a[0] - b[0]);
      series.push({
        name: perRun ? `${SERIES_NAMES[method]} (${group[0].name})` : SERIES_NAMES[method],
        points,
        ...(method.startsWith('adapted') ? { dashed: true } : {}),
      });
    }
  }
  const fp = runs.flatMap((run) => run.rows.filter((r) => r.method === 'fp').map((r) => ({ run, r })));
  for (const { run, r } of fp) {
    references.push({
      name: fp.length > 1 ? `full precision (${run.name})` : 'full precision',
      y: r[metric],
    });
  }
  return { series, references };
}

/** A run's folder name, also when its results file is named. */
function runName(path: string): string {
  const abs = resolve(path);
  if (!abs.endsWith('.json')) return basename(abs);
  return basename(abs) === 'results.json' ? basename(dirname(abs)) : basename(abs, '.json');
}

export function chartCommand(io: CliIo = processIo): Command {
  return new Command('chart')
    .description('Draw accuracy against bits for several runs (their results.json) in one SVG chart')
    .requiredOption('--runs <paths...>', 'run folders (or results files) to compare')
    .requiredOption('--out <file.svg>', 'where to write the chart')
    .addOption(new Option('--metric <name>', 'accuracy to plot').choices(['top1', 'top5']).default('top1'))
    .option('--title <text>', 'chart title')
    .action(async (flags: ChartFlags) => {
      const runs: LoadedRun[] = flags.runs.map((path) => {
        const loaded = readResults(path);
        return { name: runName(path), rows: loaded.rows, split: loaded.split };
      });
      const { series, references } = comparisonSeries(runs, flags.metric);
      if (series.length === 0 && references.length === 0) {
        throw new RangeError(`chart: the runs ${flags.runs.join(', ')} hold no results`);
      }
      const splits = [...new Set(runs.map((r) => r.split).filter((s) => s !== ''))];
      const bits = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
      const label = flags.metric === 'top1' ? 'top-1' : 'top-5';
      const svg = lineChart({
        title: flags.title ?? `${label} accuracy against precision`,
        xLabel: 'bits (weights and activations)',
        yLabel: `${label} (%)${splits.length === 1 ? `, ${splits[0]}` : ''}`,
        series,
        referenceLines: references,
        ...(bits.length > 0 ? { xTicks: bits } : {}),
      });
      await writeChart(flags.out, svg);
      const write = (line = '') => println(io.out, line);
      write(
        formatTable(
          [
            { header: 'series' },
            ...bits.map((b) => ({ header: precisionLabel(b), align: 'right' as const })),
          ],
          series.map((s) => [
            s.name,
            ...bits.map((b) => {
              const p = s.points.find((q) => q[0] === b);
              return p === undefined ? '' : p[1].toFixed(2);
            }),
          ]),
        ),
      );
      write();
      for (const r of references) write(`${r.name}: ${r.y.toFixed(2)}`);
      if (splits.length > 1)
        write(`warning: the runs were measured on different splits: ${splits.join(' | ')}`);
      write(`chart: ${flags.out}`);
    });
}
