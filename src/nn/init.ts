import { Random } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';

/** The generator layers draw their initial weights from; reseed it for reproducible models. */
let generator = new Random(0);

export function manualSeed(seed: number): void {
  generator = new Random(seed);
}

export function initRandom(): Random {
  return generator;
}

let skipping = 0;

/**
 * Builds something whose random initialisation would be thrown away (a network whose weights a
 * model file replaces): inside `fn`, kaimingNormal and uniformInit leave tensors as they are (zeros)
 * and draw nothing from the generator.
 */
export function withoutInit<T>(fn: () => T): T {
  skipping++;
  try {
    return fn();
  } finally {
    skipping--;
  }
}

/** He/Kaiming normal for ReLU networks: std = sqrt(2 / fan). */
export function kaimingNormal(t: Tensor, fan: number, rng: Random = generator): void {
  if (skipping > 0) return;
  const std = Math.sqrt(2 / fan);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = rng.normal() * std;
}

export function uniformInit(t: Tensor, bound: number, rng: Random = generator): void {
  if (skipping > 0) return;
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = (rng.next() * 2 - 1) * bound;
}
