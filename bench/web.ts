/**
 * npm run bench:web — what a new user on a slow link gets from the page of `strata serve`: headless
 * Chromium (Debian's /usr/bin/chromium, playwright-core, a fresh profile), the server on localhost,
 * the page's network throttled over CDP (Network.emulateNetworkConditions, default 4 Mbit/s and
 * 100 ms latency), cold cache, the CIFAR-10 ResNet-20 once-QAT model (a trained checkpoint) packed as
 * `strata pack --validate` packs it: the precisions it was not trained at calibrated, and every
 * precision's top-1 measured on the packed file and recorded (metadata.precisionInfo), so the page
 * shows each precision's expected accuracy (on --val-limit validation images, default 1,000).
 * For each precision: the time from navigation to its prediction and the bytes transferred by then
 * (every request: page, script, sample image, model). Then the same page reloaded, warm (IndexedDB,
 * the service worker and the HTTP cache kept), --warm-visits times (default 5): the median time to
 * the first prediction, and the model bytes each reload transferred.
 *
 * Last line: web_first_prediction_ms=<n> web_bytes_before_first=<n> web_full_ms=<n> warm_first_prediction_ms=<n>
 * Options: --checkpoint <path> --kbps 4000 --latency 100 --val-limit 1000 (0: the whole split) --warm-visits 5
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { packWithCalibration } from '../src/cli/commands/pack.js';
import { restoreModel } from '../src/cli/restore.js';
import { inspectStrata } from '../src/format/index.js';
import { arg, repoRoot, writeResult } from './common.js';
import { coldAndWarmVisits, CHROMIUM_FLAGS, type PageVisit } from './web-measure.js';

const checkpointIndex = process.argv.indexOf('--checkpoint');
const checkpoint =
  checkpointIndex >= 0
    ? process.argv[checkpointIndex + 1]
    : join(repoRoot, 'checkpoints', 'cifar10-resnet20', 'once.ckpt');
const kbps = arg('kbps', 4000);
const latencyMs = arg('latency', 100);
const valLimit = arg('val-limit', 1000);
const log = (message: string) => process.stderr.write(`${message}\n`);

const { bytes, precisionInfo, calibration } = await packWithCalibration(
  restoreModel(checkpoint),
  checkpoint,
  {
    validate: true,
    valLimit,
    log,
  },
);
const modelName = 'cifar10-resnet20-once.strata';
const info = inspectStrata(bytes);
// A shared machine's load moves every figure: recorded with them (1-minute load average).
const loadBefore = loadavg()[0];
const warmVisits = arg('warm-visits', 5);
const { cold, warmAll } = await coldAndWarmVisits(
  { [modelName]: bytes },
  { kbps, latencyMs },
  repoRoot,
  warmVisits,
);
// The warm figure is the median of the warm visits; that visit's rows and requests are reported.
const byFirst = [...warmAll].sort((a, b) => a.firstMs - b.firstMs);
const warm = byFirst[Math.floor((byFirst.length - 1) / 2)];
for (const visit of [cold, ...warmAll]) {
  if (visit.state !== 'done' || visit.problems.length > 0) {
    throw new Error(`page ended in ${visit.state}: ${visit.error} ${visit.problems.join('; ')}`);
  }
}

const modelRequests = (visit: PageVisit) => visit.requests.filter((r) => r.url.endsWith(`/${modelName}`));
console.log(
  `model ${modelName}: ${bytes.length} bytes, precisions ${info.precisions.map((p) => p.bits).join(',')}; link ${kbps} kbit/s, ${latencyMs} ms latency`,
);
console.log('cold cache:');
for (const r of cold.rows) {
  console.log(
    `  bits=${r.bits} ms=${r.ms} file_bytes=${r.bytes} transferred_total=${r.transferredTotal} prediction=${r.label} (${(100 * r.probability).toFixed(1)} %) expected=${JSON.stringify(r.expected)}`,
  );
}
for (const r of modelRequests(cold))
  console.log(`  ${r.method} ${r.range ?? '(no range)'} -> ${r.status}, ${r.bodyBytes} body bytes`);
const others = cold.requests.filter((r) => !r.url.endsWith(`/${modelName}`));
for (const r of others)
  console.log(`  ${r.method} ${new URL(r.url).pathname} -> ${r.status}, ${r.encodedBytes} bytes on the wire`);
const warmModelBody = modelRequests(warm).reduce((s, r) => s + r.bodyBytes, 0);
const warmModelBodyAll = warmAll.map((v) => modelRequests(v).reduce((s, r) => s + r.bodyBytes, 0));
console.log(
  `warm cache: ${warmAll.length} reloads, first prediction at ${warmAll.map((v) => v.firstMs).join(', ')} ms ` +
    `(model body bytes ${warmModelBodyAll.join(', ')}); the median one:`,
);
for (const r of warm.rows) console.log(`  bits=${r.bits} ms=${r.ms} from_cache=${r.fromCache}`);
for (const r of warm.requests) {
  console.log(
    `  ${r.method} ${new URL(r.url).pathname} -> ${r.status}${r.fromCache ? ' (from cache)' : ''}, ${r.bodyBytes} body bytes`,
  );
}
console.log(
  `  model body bytes transferred: ${warmModelBody}; all bytes on the wire: ${warm.transferredTotal}`,
);

const summary = {
  web_first_prediction_ms: cold.firstMs,
  web_bytes_before_first: cold.transferredBeforeFirst,
  web_full_ms: cold.rows.at(-1)!.ms,
  warm_first_prediction_ms: warm.firstMs,
};
const path = writeResult('web.json', {
  command: `npm run bench:web -- ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  loadAverage: { before: loadBefore, after: loadavg()[0] },
  chromium: { path: '/usr/bin/chromium', flags: CHROMIUM_FLAGS },
  link: { kbps, latencyMs, via: 'CDP Network.emulateNetworkConditions' },
  model: { checkpoint, bytes: bytes.length, precisions: info.precisions, precisionInfo, calibration },
  cold: {
    rows: cold.rows.map(({ logits: _, ...r }) => r),
    requests: cold.requests,
    transferredTotal: cold.transferredTotal,
    transferredBeforeFirst: cold.transferredBeforeFirst,
    marks: cold.marks,
  },
  warm: {
    rows: warm.rows.map(({ logits: _, ...r }) => r),
    requests: warm.requests,
    transferredTotal: warm.transferredTotal,
    modelBodyBytes: warmModelBody,
    marks: warm.marks,
    visits: warmAll.map((v, i) => ({ firstMs: v.firstMs, modelBodyBytes: warmModelBodyAll[i] })),
  },
  summary,
});
log(`wrote ${path}`);
console.log(
  Object.entries(summary)
    .map(([k, v]) => `${k}=${Math.round(v)}`)
    .join(' '),
);
