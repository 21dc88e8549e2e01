import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RawImage } from './dataset.js';
import type { TransformSpec } from './transforms.js';

/** One slice of a batch for a worker: images copied in, floats transferred back. */
export interface AugmentTask {
  images: RawImage[];
  names: string[];
  seeds: number[];
  channels: number;
  specs: TransformSpec[];
  height: number;
  width: number;
}

export type AugmentReply =
  { id: number; ok: true; output: Float32Array } | { id: number; ok: false; error: string };

interface Pending {
  resolve: (output: Float32Array) => void;
  reject: (err: Error) => void;
}

/**
 * Starts the augmentation worker. Built code runs the sibling .js; from source (tsx) the .ts file is
 * loaded through tsx's ESM hooks, which a worker does not inherit from its parent.
 */
function spawnAugmentWorker(): Worker {
  const jsUrl = new URL('./augment-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(jsUrl))) return new Worker(jsUrl);
  const tsUrl = new URL('./augment-worker.ts', import.meta.url).href;
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); ` +
    `return import(${JSON.stringify(tsUrl)}); });`;
  return new Worker(bootstrap, { eval: true });
}

/**
 * A fixed set of augmentation workers fed from one queue. Idle workers are unref'd so a forgotten
 * `close()` does not keep the process alive; busy ones hold it until their task answers.
 */
export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { id: number; task: AugmentTask }[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly running = new Map<Worker, number>();
  private nextId = 0;
  private closed = false;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`Expected integer in [1, inf) for worker count but received ${size}`);
    }
    for (let i = 0; i < size; i++) this.addWorker();
  }

  private addWorker(): void {
    const worker = spawnAugmentWorker();
    worker.on('message', (reply: AugmentReply) => this.onReply(worker, reply));
    worker.on('error', (err) => this.onCrash(worker, err));
    worker.on('exit', (code) => {
      if (!this.closed) this.onCrash(worker, new Error(`augmentation worker exited with code ${code}`));
    });
    worker.unref();
    this.workers.push(worker);
    this.idle.push(worker);
  }

  run(task: AugmentTask): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new Error('Worker pool already closed.'));
    const id = this.nextId++;
    const promise = new Promise<Float32Array>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.queue.push({ id, task });
    this.dispatch();
    return promise;
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop() as Worker;
      const { id, task } = this.queue.shift() as { id: number; task: AugmentTask };
      this.running.set(worker, id);
      worker.ref();
      worker.postMessage({ id, task });
    }
  }

  private onReply(worker: Worker, reply: AugmentReply): void {
    this.running.delete(worker);
    worker.unref();
    this.idle.push(worker);
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (pending) {
      if (reply.ok) pending.resolve(reply.output);
      else pending.reject(new Error(reply.error));
    }
    this.dispatch();
  }

  private onCrash(worker: Worker, err: Error): void {
    const index = this.workers.indexOf(worker);
    if (index === -1) return;
    this.workers.splice(index, 1);
    const idleIndex = this.idle.indexOf(worker);
    if (idleIndex !== -1) this.idle.splice(idleIndex, 1);
    const id = this.running.get(worker);
    this.running.delete(worker);
    if (id !== undefined) {
      this.pending.get(id)?.reject(new Error(`augmentation worker failed: ${err.message}`, { cause: err }));
      this.pending.delete(id);
    }
    void worker.terminate();
    if (!this.closed) {
      this.addWorker();
      this.dispatch();
    }
  }

  /**
   * Rejects the tasks not yet started, lets the running ones finish, then stops every worker.
   * Terminating a worker in the middle of a task can leave its exit unreported (the returned promise
   * never settles, and an awaiting process ends with code 13), so running tasks are drained first.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const { id } of this.queue) {
      this.pending.get(id)?.reject(new Error('Worker pool closed before the task started.'));
      this.pending.delete(id);
    }
    this.queue.length = 0;
    await Promise.all([...this.running.values()].map((id) => this.finished(id)));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.idle.length = 0;
  }

  /** Settles when task `id` has answered or its worker has failed (never rejects). */
  private finished(id: number): Promise<void> {
    const pending = this.pending.get(id);
    if (pending === undefined) return Promise.resolve();
    return new Promise((done) => {
      this.pending.set(id, {
        resolve: (output) => {
          pending.resolve(output);
          done();
        },
        reject: (err) => {
          pending.reject(err);
          done();
        },
      });
    });
  }
}
