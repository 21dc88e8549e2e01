/** onnxruntime-node's own per-operator profile, shared by the deployment benchmarks. */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

/**
 * Milliseconds a run per operator type: `iters` runs of `graph` on `input` (fed to its first input)
 * with onnxruntime's profiling on, kernel times summed by op type and divided by `iters`; largest first.
 */
export async function ortOperatorProfile(
  graph: Uint8Array,
  input: ort.Tensor,
  options: ort.InferenceSession.SessionOptions,
  iters: number,
): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(os.tmpdir(), 'strata-profile-'));
  try {
    const session = await ort.InferenceSession.create(graph, {
      ...options,
      enableProfiling: true,
      profileFilePrefix: join(dir, 'profile'),
    });
    for (let i = 0; i < iters; i++) await session.run({ [session.inputNames[0]]: input });
    session.endProfiling();
    await session.release();
    const file = readdirSync(dir).find((n) => n.startsWith('profile'));
    if (file === undefined) return {};
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      cat: string;
      name: string;
      dur: number;
      args?: { op_name?: string };
    }[];
    const byOp: Record<string, number> = {};
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const op = e.args?.op_name ?? 'unknown';
      byOp[op] = (byOp[op] ?? 0) + e.dur / 1000 / iters;
    }
    return Object.fromEntries(Object.entries(byOp).sort((a, b) => b[1] - a[1]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
