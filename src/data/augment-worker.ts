import { parentPort } from 'node:worker_threads';
import { Random } from '../engine/random.js';
import { checkTransforms, transformInto } from './transforms.js';
import type { AugmentReply, AugmentTask } from './worker-pool.js';

// Runs inside a worker thread: transforms a slice of a batch with the per-sample seeds it is given,
// so the result is the same as on the main thread whatever the number of workers.
parentPort?.on('message', (message: { id: number; task: AugmentTask }) => {
  const { id, task } = message;
  let reply: AugmentReply;
  const transfer: ArrayBuffer[] = [];
  try {
    checkTransforms(task.specs, task.channels);
    const stride = task.height * task.width * task.channels;
    const output = new Float32Array(task.images.length * stride);
    task.images.forEach((image, i) => {
      transformInto(
        image,
        task.channels,
        task.specs,
        new Random(task.seeds[i]),
        output,
        i * stride,
        task.height,
        task.width,
        task.names[i],
      );
    });
    reply = { id, ok: true, output };
    transfer.push(output.buffer as ArrayBuffer);
  } catch (err) {
    reply = { id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply, transfer);
});
