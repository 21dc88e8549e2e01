/**
 * `npm run fuzz -- --execs N [--seed S] [--target name,...] [--json file]`: fuzzes every entry point
 * that takes outside input and prints execs, crashes, unique failures, peak RSS and the slowest case.
 * Exits non-zero on any failure.
 *
 * The fuzzing itself runs in a child process, so a crash (a signal from native code, an abort, an
 * out-of-memory kill) is reported with the target and execution it happened at, instead of ending
 * the run silently.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatReport, runFuzz, type FuzzReport } from './runner.js';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? undefined : process.argv[at + 1];
}

function count(name: string, fallback: number): number {
  const raw = option(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Expected non-negative integer for --${name} but received ${raw}`);
  }
  return value;
}

const execs = count('execs', 10000);
const seed = count('seed', Date.now() % 2 ** 31);
const only = option('target')?.split(',');

if (process.argv.includes('--child')) {
  // Progress goes to stderr line by line, so the parent knows where a crash happened.
  const report = await runFuzz({
    execs,
    seed,
    ...(only ? { only } : {}),
    onProgress: (done, target) => process.stderr.write(`AT ${done} ${target}\n`),
  });
  process.stdout.write(`REPORT ${JSON.stringify(report)}\n`);
} else {
  const args = [
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    '--child',
    '--execs',
    String(execs),
    '--seed',
    String(seed),
    ...(only ? ['--target', only.join(',')] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let last = 'before the first execution';
  let progressShown = 0;
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    for (const line of c.toString().split('\n')) {
      const m = /^AT (\d+) (\S+)$/.exec(line);
      if (m !== null) {
        last = `execution ${m[1]} (${m[2]})`;
        if (Number(m[1]) - progressShown >= 10000) {
          progressShown = Number(m[1]);
          process.stderr.write(`  ${m[1]} execs\n`);
        }
      } else if (line.trim() !== '' && !line.includes('npm warn')) process.stderr.write(`${line}\n`);
    }
  });
  const [code, signal] = await new Promise<[number | null, string | null]>((done) =>
    child.on('exit', (c, s) => done([c, s])),
  );
  const line = stdout.split('\n').find((l) => l.startsWith('REPORT '));
  if (line === undefined) {
    console.log(`crashes: 1 (the fuzzing process ended with ${signal ?? `status ${code}`} near ${last})`);
    process.exitCode = 1;
  } else {
    const report = JSON.parse(line.slice(7)) as FuzzReport;
    console.log(`command: npm run fuzz -- ${process.argv.slice(2).join(' ')}`);
    console.log(formatReport(report, 0));
    const json = option('json');
    if (json !== undefined) writeFileSync(json, `${JSON.stringify({ crashes: 0, ...report }, null, 2)}\n`);
    if (report.uniqueFailures > 0 || code !== 0) process.exitCode = 1;
  }
}
