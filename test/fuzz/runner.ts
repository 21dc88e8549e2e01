/**
 * Runs the fuzz targets for a number of executions, spread over the targets by weight, and reports
 * what the done-when asks: executions, unique failures (unexpected errors, broken
 * invariants, cases over the time limit), peak RSS and the slowest case.
 */
import { Random } from '../../src/engine/random.js';
import { fuzzTargets, refusalLabel, type FuzzTarget } from './targets.js';

export interface FuzzFailure {
  target: string;
  exec: number;
  /** The target's own execution count at the failure (replay with `--target`). */
  targetExec: number;
  /** Error name and first line of the message, digits folded, so repeats count once. */
  signature: string;
  message: string;
}

export interface FuzzReport {
  seed: number;
  execs: number;
  seconds: number;
  perTarget: Record<string, { execs: number; outcomes: Record<string, number> }>;
  failures: FuzzFailure[];
  uniqueFailures: number;
  slowest: { target: string; exec: number; ms: number };
  peakRssMiB: number;
}

export interface FuzzOptions {
  execs: number;
  seed: number;
  /** Only these targets (default all). */
  only?: string[];
  /** A case slower than this is a failure. */
  slowMs?: number;
  /** Called every so many executions with the report so far (progress, crash forensics). */
  onProgress?: (done: number, target: string) => void;
}

function nameHash(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) % 1_000_003;
  return h;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const slowMs = options.slowMs ?? 2000;
  const targets: FuzzTarget[] = fuzzTargets().filter((t) => !options.only || options.only.includes(t.name));
  if (targets.length === 0) throw new RangeError(`no fuzz target named ${options.only?.join(', ')}`);
  // Each target draws from its own stream, seeded from its name: `--target name` with the same seed
  // replays exactly the cases it met in a full run, and adding a target changes no other's cases.
  const streams = targets.map((t) => new Random(options.seed * 7919 + nameHash(t.name)));
  // Weighted round robin: a deterministic schedule that interleaves the targets.
  const schedule: number[] = [];
  targets.forEach((t, i) => {
    for (let k = 0; k < t.weight; k++) schedule.push(i);
  });
  const shuffle = new Random(options.seed);
  for (let i = schedule.length - 1; i > 0; i--) {
    const j = shuffle.int(i + 1);
    [schedule[i], schedule[j]] = [schedule[j], schedule[i]];
  }
  const report: FuzzReport = {
    seed: options.seed,
    execs: 0,
    seconds: 0,
    perTarget: Object.fromEntries(targets.map((t) => [t.name, { execs: 0, outcomes: {} }])),
    failures: [],
    uniqueFailures: 0,
    slowest: { target: '', exec: -1, ms: 0 },
    peakRssMiB: 0,
  };
  const signatures = new Set<string>();
  const fail = (target: string, exec: number, error: unknown) => {
    const targetExec = report.perTarget[target].execs;
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    const name = error instanceof Error ? error.name : typeof error;
    const signature = `${target}: ${name}: ${message.split('\n')[0].replace(/\d+/g, 'N').slice(0, 160)}`;
    if (!signatures.has(signature)) {
      signatures.add(signature);
      report.failures.push({ target, exec, targetExec, signature, message: message.slice(0, 2000) });
    }
  };
  for (const t of targets) await t.setup?.();
  const started = performance.now();
  try {
    for (let exec = 0; exec < options.execs; exec++) {
      const index = schedule[exec % schedule.length];
      const target = targets[index];
      if (exec % 500 === 0) options.onProgress?.(exec, target.name);
      const stats = report.perTarget[target.name];
      stats.execs++;
      const t0 = performance.now();
      let outcome: string;
      try {
        outcome = await target.run(streams[index]);
      } catch (e) {
        if (target.expected(e)) outcome = refusalLabel(e);
        else {
          outcome = 'FAILURE';
          fail(target.name, exec, e);
        }
      }
      const ms = performance.now() - t0;
      if (ms > report.slowest.ms) report.slowest = { target: target.name, exec, ms };
      if (ms > slowMs) fail(target.name, exec, new Error(`case took ${Math.round(ms)} ms (limit ${slowMs})`));
      const label = outcome.split(' ').slice(0, 3).join(' ');
      stats.outcomes[label] = (stats.outcomes[label] ?? 0) + 1;
      report.execs++;
    }
  } finally {
    for (const t of targets) await t.teardown?.();
  }
  report.seconds = (performance.now() - started) / 1000;
  report.uniqueFailures = report.failures.length;
  // maxRSS is in KiB on Linux: the peak over the whole process, corpus and server included.
  report.peakRssMiB = process.resourceUsage().maxRSS / 1024;
  return report;
}

/** The summary lines `npm run fuzz` prints. */
export function formatReport(report: FuzzReport, crashes = 0): string {
  const lines = [
    `execs: ${report.execs} in ${report.seconds.toFixed(1)} s (seed ${report.seed})`,
    `crashes: ${crashes}`,
    `unique failures: ${report.uniqueFailures}`,
    `peak RSS: ${report.peakRssMiB.toFixed(0)} MiB`,
    `slowest case: ${report.slowest.ms.toFixed(0)} ms (${report.slowest.target} #${report.slowest.exec})`,
    'per target:',
  ];
  for (const [name, stats] of Object.entries(report.perTarget)) {
    const outcomes = Object.entries(stats.outcomes)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(`  ${name}: ${stats.execs} execs; ${outcomes}`);
  }
  for (const f of report.failures.slice(0, 20)) {
    lines.push(`FAILURE ${f.target} #${f.exec} (the target's execution ${f.targetExec}): ${f.message}`);
  }
  return lines.join('\n');
}
