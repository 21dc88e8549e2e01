/**
 * Buffer recycling for tensors created inside `scope()`.
 *
 * A training step allocates many activation-sized arrays. Allocating them afresh costs a zero-fill
 * (or page faults) every time, which on a 2-core machine is a visible share of the step. Tensors
 * created inside a scope hand their buffers back to a size-keyed pool when the scope ends, so the
 * next step reuses them. Tensors created outside any scope are ordinary garbage-collected objects.
 */

/** A reference-counted buffer shared by a tensor and its views (reshape). */
export class Storage {
  refs = 1;
  constructor(
    public data: Float32Array | null,
    readonly pooled: boolean,
  ) {}
}

const pool = new Map<number, Float32Array[]>();
let pooledBytes = 0;
/** Beyond this many idle bytes the pool drops buffers instead of keeping them. */
const MAX_POOLED_BYTES = 2 * 1024 ** 3;

/** An uninitialised (possibly dirty) buffer of n floats, from the pool when one is free. */
export function takeBuffer(n: number): Float32Array {
  const free = pool.get(n);
  if (free !== undefined && free.length > 0) {
    pooledBytes -= n * 4;
    return free.pop()!;
  }
  return new Float32Array(n);
}

export function returnBuffer(buffer: Float32Array): void {
  if (pooledBytes + buffer.byteLength > MAX_POOLED_BYTES) return;
  let free = pool.get(buffer.length);
  if (free === undefined) {
    free = [];
    pool.set(buffer.length, free);
  }
  free.push(buffer);
  pooledBytes += buffer.byteLength;
}

/** Drops every idle buffer (for example between training and a memory-hungry evaluation). */
export function clearBufferPool(): void {
  pool.clear();
  pooledBytes = 0;
}

export function pooledByteCount(): number {
  return pooledBytes;
}

export interface Disposable {
  dispose(): void;
}

const scopeStack: Set<Disposable>[] = [];

export function insideScope(): boolean {
  return scopeStack.length > 0;
}

/** Called by every new tensor: the innermost scope, if any, will dispose it. */
export function track(item: Disposable): void {
  const top = scopeStack[scopeStack.length - 1];
  if (top !== undefined) top.add(item);
}

/** Removes an item from every open scope so it outlives them (parameters, optimizer state). */
export function keep<T extends Disposable>(item: T): T {
  for (const s of scopeStack) s.delete(item);
  return item;
}

/**
 * Runs fn and disposes every tensor it created, except those it returns (a tensor, or an array or
 * plain object of tensors), which move to the enclosing scope.
 */
export function scope<T>(fn: () => T): T {
  const created = new Set<Disposable>();
  scopeStack.push(created);
  let result: T;
  try {
    result = fn();
  } finally {
    scopeStack.pop();
  }
  const survivors = new Set<Disposable>();
  collectDisposables(result, survivors);
  const parent = scopeStack[scopeStack.length - 1];
  for (const item of created) {
    if (survivors.has(item)) {
      if (parent !== undefined) parent.add(item);
    } else {
      item.dispose();
    }
  }
  return result;
}

function collectDisposables(value: unknown, out: Set<Disposable>): void {
  if (value === null || typeof value !== 'object') return;
  if (typeof (value as Disposable).dispose === 'function') {
    out.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectDisposables(v, out);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value as Record<string, unknown>)) collectDisposables(v, out);
  }
}
