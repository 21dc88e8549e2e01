import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

export { median } from '../src/train/benchmark.js';

export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Debian's python3-torch lives under /usr/bin/python3 (another python3 may come first on PATH). */
export const TORCH_PYTHON = process.env.STRATA_TORCH_PYTHON ?? '/usr/bin/python3';

export function torchAvailable(): boolean {
  if (!existsSync(TORCH_PYTHON)) return false;
  return spawnSync(TORCH_PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

/** Runs bench/torch_step.py and returns its median step time, or null when torch is unavailable. */
export function torchStepMs(args: string[]): { medianMs: number; version: string } | null {
  if (!torchAvailable()) return null;
  const r = spawnSync(TORCH_PYTHON, [join(repoRoot, 'bench', 'torch_step.py'), ...args], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    process.stderr.write(`PyTorch comparator failed:\n${r.stderr}\n`);
    return null;
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { median_ms: number; torch: string };
  return { medianMs: out.median_ms, version: out.torch };
}

export function writeResult(name: string, result: Record<string, unknown>): string {
  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(result, null, 2) + '\n');
  renameSync(tmp, path);
  return path;
}

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v))
    throw new RangeError(`Expected number for --${name} but received '${process.argv[i + 1]}'`);
  return v;
}

/** The CPU's float32 FMA ceiling on `threads` threads (bench/peak_flops.c), or null without a C compiler. */
export function peakGflops(threads: number): number | null {
  const exe = join(mkdtempSync(join(os.tmpdir(), 'strata-peak-')), 'peak_flops');
  const cc = spawnSync(
    'cc',
    ['-O3', '-mavx2', '-mfma', '-fopenmp', join(repoRoot, 'bench', 'peak_flops.c'), '-o', exe],
    { encoding: 'utf8' },
  );
  if (cc.status !== 0) return null;
  // A neighbour on a shared VM can steal a core for a moment: keep the best of three runs.
  let best: number | null = null;
  for (let i = 0; i < 3; i++) {
    const run = spawnSync(exe, [], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    });
    const gflops = Number(run.stdout.trim());
    if (run.status === 0 && Number.isFinite(gflops)) best = Math.max(best ?? 0, gflops);
  }
  return best;
}
