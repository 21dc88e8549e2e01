/**
 * The browser client library against the real HTTP server, in Node (which has fetch): the Range
 * requests it makes, the cached prefix, the budget, resuming an interrupted download, a changed file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectStrata, writeStrata } from '../../src/format/index.js';
import { toStrataContent } from '../../src/export/strata-model.js';
import { StrataSession } from '../../src/runtime/session.js';
import { startServer } from '../../src/runtime/server.js';
import {
  openProgressive,
  ProgressiveHttpError,
  type OpenProgressiveOptions,
  type ProgressiveModel,
} from '../../src/web/open-progressive.js';
import { memoryStore } from '../../src/web/prefix-store.js';
import { describePrecisionInfo, precisionInfoOf } from '../../src/web/precision-info.js';
import { assertLogitsClose, calibratedModel } from '../export/fixtures.js';

const fixture = calibratedModel('small-cnn', { inChannels: 1, size: 12, width: 4 });
const precisionInfo = [
  { bits: 8, source: 'trained', top1: 91.25, split: 'test', samples: 10000 },
  { bits: 2, source: 'calibrated', top1: null, split: null, samples: null },
  { bits: 3, source: 'bogus', top1: 1, split: null, samples: null },
];
const bytes = writeStrata(
  toStrataContent(fixture.model, fixture.architecture!, fixture.quant!, {
    metadata: { precisionInfo, inputSize: [12, 12] },
  }),
);
const info = inspectStrata(bytes);
const ends = info.precisions.map((p) => p.completeAt);
const image = fixture.input.data.slice(0, 144);

const root = mkdtempSync(join(tmpdir(), 'strata-open-progressive-'));
writeFileSync(join(root, 'm.strata'), bytes);
const server = await startServer({ root, port: 0 });
const url = `${server.url}/m.strata`;
after(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

interface Sent {
  method: string;
  range: string | null;
  ifRange: string | null;
  status: number;
}

/** fetch that records each request; `cut` ends the nth response body with an error after n bytes. */
function recordingFetch(cut?: { request: number; after: number }): { fetch: typeof fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  const wrapped: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    const response = await fetch(input, init);
    const entry = {
      method: init?.method ?? 'GET',
      range: headers.get('Range'),
      ifRange: headers.get('If-Range'),
      status: response.status,
    };
    sent.push(entry);
    if (cut === undefined || sent.length !== cut.request || response.body === null) return response;
    const reader = response.body.getReader();
    let passed = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        const room = cut.after - passed;
        if (value.length >= room) {
          if (room > 0) controller.enqueue(value.subarray(0, room));
          passed += room;
          await reader.cancel();
          controller.error(new TypeError('network connection lost'));
          return;
        }
        passed += value.length;
        controller.enqueue(value);
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return { fetch: wrapped, sent };
}

async function collect(options: OpenProgressiveOptions): Promise<{
  models: ProgressiveModel[];
  transferred: number;
}> {
  const load = openProgressive(url, options);
  const models: ProgressiveModel[] = [];
  for await (const m of load) models.push(m);
  return { models, transferred: load.transferredBytes };
}

const rangeOf = (start: number, endExclusive: number) => `bytes=${start}-${endExclusive - 1}`;

test('cold: the header and basic layer in one request, then one Range request per section', async () => {
  const store = memoryStore();
  const { fetch, sent } = recordingFetch();
  const upgrades: number[] = [];
  const { models, transferred } = await collect({
    store,
    fetch,
    firstRequestBytes: ends[0],
    onUpgrade: (m) => upgrades.push(m.bits),
  });
  assert.deepEqual(
    models.map((m) => m.bits),
    info.precisions.map((p) => p.bits),
  );
  assert.deepEqual(upgrades, [...info.precisions.map((p) => p.bits)]);
  assert.deepEqual(
    sent.map((s) => s.range),
    ends.map((end, i) => rangeOf(i === 0 ? 0 : ends[i - 1], end)),
  );
  assert.ok(sent.every((s) => s.status === 206));
  assert.ok(
    sent.slice(1).every((s) => s.ifRange !== null),
    'upgrades are conditional on the same file',
  );
  assert.equal(transferred, bytes.length, 'every byte of the file exactly once');
  assert.ok(models.every((m) => !m.fromCache));
  // Each model classifies as the Node session does at that precision.
  for (const m of models) {
    const p = m.predict(image);
    const session = await StrataSession.create(bytes, { bits: m.bits, engine: 'native' });
    const expected = await session.predict({ data: image, shape: [1, 12, 12, 1] });
    await session.dispose();
    assertLogitsClose(p.logits, expected.logits, expected.numClasses, true, `w${m.bits}`);
    assert.equal(p.top[0].index, expected.classes[0]);
  }
  // Metadata: precisionInfo when present and well formed, "not recorded" otherwise.
  const top = models.at(-1)!;
  assert.deepEqual(top.precisionInfo, precisionInfo[0]);
  assert.equal(
    describePrecisionInfo(top.precisionInfo ?? undefined),
    '91.25 % top-1 (trained; test, 10,000 images)',
  );
  assert.equal(describePrecisionInfo(precisionInfoOf(top.header.metadata).get(3)), 'not recorded');
  assert.equal(models[0].precisionInfo?.source, 'calibrated');

  // Warm: everything from the store, no GET at all, one HEAD to check the file is the same.
  const again = recordingFetch();
  const warm = await collect({ store, fetch: again.fetch });
  assert.deepEqual(
    warm.models.map((m) => m.bits),
    info.precisions.map((p) => p.bits),
  );
  assert.ok(warm.models.every((m) => m.fromCache));
  assert.equal(warm.transferred, 0);
  assert.deepEqual(
    again.sent.map((s) => s.method),
    ['HEAD'],
  );
  // Without revalidation: no request at all.
  const offline = recordingFetch();
  await collect({ store, fetch: offline.fetch, revalidate: false });
  assert.deepEqual(offline.sent, []);
});

test('a budget stops at maxBits or maxBytes; a later, larger budget fetches only the rest', async () => {
  const store = memoryStore();
  const first = recordingFetch();
  const small = await collect({ store, fetch: first.fetch, maxBits: 4, firstRequestBytes: ends[0] });
  assert.deepEqual(
    small.models.map((m) => m.bits),
    [2, 3, 4],
  );
  assert.equal(first.sent.at(-1)!.range, rangeOf(ends[1], ends[2]));
  assert.equal(small.transferred, ends[2]);

  const byBytes = recordingFetch();
  const limited = await collect({ store: memoryStore(), fetch: byBytes.fetch, maxBytes: ends[3] + 5 });
  assert.equal(limited.models.at(-1)!.bits, 5);
  assert.ok(limited.transferred <= ends[3] + 5);

  const rest = recordingFetch();
  const full = await collect({ store, fetch: rest.fetch });
  assert.deepEqual(
    full.models.map((m) => [m.bits, m.fromCache]),
    info.precisions.map((p) => [p.bits, p.bits <= 4]),
  );
  assert.equal(rest.sent[0].range, rangeOf(ends[2], ends[3]), 'starts where the cached prefix ends');
  assert.equal(full.transferred, bytes.length - ends[2]);

  assert.throws(
    () => openProgressive(url, { maxBits: 0 }),
    /Expected integer >= 1 for maxBits but received 0/,
  );
  await assert.rejects(collect({ store: memoryStore(), maxBytes: 30 }), /holds no precision of this file/);
});

test('an interrupted download resumes from the byte it reached, in the same call and on the next', async () => {
  const middle = Math.floor((ends[2] + ends[3]) / 2);
  const inSection = middle - ends[2];
  // Same call: the 4th request (bits 5) breaks after half its section; the retry asks for the rest.
  const retried = recordingFetch({ request: 4, after: inSection });
  const store = memoryStore();
  const run = await collect({ store, fetch: retried.fetch, firstRequestBytes: ends[0] });
  assert.equal(run.models.at(-1)!.bits, info.precisions.at(-1)!.bits);
  assert.equal(retried.sent[3].range, rangeOf(ends[2], ends[3]));
  assert.equal(retried.sent[4].range, rangeOf(middle, ends[3]));
  assert.equal(run.transferred, bytes.length, 'no byte received twice');

  // No retries: the call fails, the next one starts at the byte reached.
  const broken = recordingFetch({ request: 4, after: inSection });
  const keep = memoryStore();
  await assert.rejects(
    collect({ store: keep, fetch: broken.fetch, retries: 0, firstRequestBytes: ends[0] }),
    {
      name: 'TypeError',
    },
  );
  const resumed = recordingFetch();
  const next = await collect({ store: keep, fetch: resumed.fetch });
  assert.equal(resumed.sent[0].range, rangeOf(middle, ends[3]));
  assert.deepEqual(
    next.models.map((m) => [m.bits, m.fromCache]),
    info.precisions.map((p) => [p.bits, p.completeAt <= middle]),
  );
});

test('without a hint the first request is 16 KiB; a changed file replaces the cached prefix', async () => {
  const cold = recordingFetch();
  await collect({ store: memoryStore(), fetch: cold.fetch, maxBits: 3 });
  assert.equal(cold.sent[0].range, `bytes=0-${16 * 1024 - 1}`);

  const store = memoryStore();
  await collect({ store, maxBits: 3, firstRequestBytes: ends[0] });

  // The file on the server changes (new content and mtime, so a new ETag).
  const changed = writeStrata(
    toStrataContent(fixture.model, fixture.architecture!, fixture.quant!, {
      metadata: { note: 'v2', inputSize: [12, 12] },
    }),
  );
  writeFileSync(join(root, 'm.strata'), changed);
  utimesSync(join(root, 'm.strata'), new Date(), new Date(Date.now() + 5000));
  try {
    const after = recordingFetch();
    const run = await collect({ store, fetch: after.fetch });
    const last = run.models.at(-1)!;
    assert.equal(last.header.metadata?.note, 'v2');
    assert.equal(last.fileLength, changed.length);
    // The conditional range got the whole new file (200), which was read from its first byte.
    assert.equal(after.sent[0].ifRange !== null, true);
    assert.equal(after.sent[0].status, 200);
    const p = last.predict(image);
    assert.equal(p.numClasses, 10);

    // Fully cached, then changed again: the HEAD check notices and the file is loaded anew.
    writeFileSync(join(root, 'm.strata'), bytes);
    utimesSync(join(root, 'm.strata'), new Date(), new Date(Date.now() + 10000));
    const third = recordingFetch();
    const reloaded = await collect({ store, fetch: third.fetch });
    assert.equal(third.sent[0].method, 'HEAD');
    assert.equal(reloaded.models.at(-1)!.header.metadata?.note, undefined);
    assert.equal(reloaded.models.at(-1)!.fileLength, bytes.length);
  } finally {
    writeFileSync(join(root, 'm.strata'), bytes);
  }
  await assert.rejects(
    openProgressive(`${server.url}/missing.strata`, { store: null }).done(),
    (e: unknown) => e instanceof ProgressiveHttpError && e.status === 404,
  );
});

test('a cached prefix is read basic layer first; damage past it keeps the basic layer and downloads the rest', async () => {
  const store = memoryStore();
  await collect({ store, firstRequestBytes: ends[0] });
  const key = new URL(url).href;
  const stored = (await store.get(key))!;
  // The last section's bytes are damaged in the store (its checksum no longer holds).
  const damaged = stored.bytes.slice();
  damaged[ends.at(-1)! - 2] ^= 0xff;
  await store.put(key, { ...stored, bytes: damaged });

  const again = recordingFetch();
  const order: string[] = [];
  const load = openProgressive(url, {
    store,
    fetch: again.fetch,
    firstRequestBytes: ends[0],
    onProgress: ({ bytes: held }) => order.push(`held ${held}`),
    onUpgrade: (m) => order.push(`model ${m.bits}`),
  });
  const models: ProgressiveModel[] = [];
  for await (const m of load) models.push(m);
  // The basic layer was announced before the rest of the stored copy was read.
  assert.deepEqual(order.slice(0, 2), [`held ${ends[0]}`, `model ${info.precisions[0].bits}`]);
  // Every precision once, lowest first: the basic layer from the store, every later section
  // downloaded again (the damaged copy is not trusted past the basic layer), one Range request each.
  assert.deepEqual(
    models.map((m) => m.bits),
    info.precisions.map((p) => p.bits),
  );
  assert.ok(models[0].fromCache);
  assert.ok(!models.at(-1)!.fromCache);
  assert.deepEqual(
    again.sent.filter((s) => s.method === 'GET').map((s) => s.range),
    ends.slice(1).map((end, i) => rangeOf(ends[i], end)),
  );
  const p = models.at(-1)!.predict(image);
  assert.equal(p.numClasses, 10);
});
