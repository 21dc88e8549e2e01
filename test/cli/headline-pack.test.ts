import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectStrata } from '../../src/format/index.js';
import type { PrecisionInfo } from '../../src/cli/commands/pack.js';
import { repoRoot, strata, tempDir } from './helpers.js';

// The CIFAR-10 headline's once-QAT model (bench/results/cifar10-resnet20.json), committed so that
// this claim is checked on the real model, not only on a small one trained in the test.
const HEADLINE_ONCE = join(repoRoot, 'checkpoints', 'cifar10-resnet20', 'once.ckpt');

/** Neighbouring precisions on 5,000 validation images: one point is 50 images. */
const TOLERANCE = 1.0;

test('the CIFAR-10 headline once model packs with all seven precisions trained and its accuracy monotone in bits', async () => {
  const out = join(tempDir('headline-pack'), 'once.strata');
  const r = await strata('pack', HEADLINE_ONCE, '--validate', '-o', out);
  assert.equal(r.code, 0, r.stderr);
  const info = inspectStrata(new Uint8Array(readFileSync(out))).metadata!.precisionInfo as PrecisionInfo[];
  assert.deepEqual(
    info.map((p) => [p.bits, p.source, p.samples]),
    [2, 3, 4, 5, 6, 7, 8].map((b) => [b, 'trained', 5000]),
  );
  for (let i = 1; i < info.length; i++) {
    const [lower, higher] = [info[i - 1], info[i]];
    assert.ok(
      higher.top1! >= lower.top1! - TOLERANCE,
      `${higher.bits} bits ${higher.top1}% is below ${lower.bits} bits ${lower.top1}% by more than ${TOLERANCE}`,
    );
  }
  // A trained 2-bit ResNet-20, far above chance (10 %).
  assert.ok(info[0].top1! > 75, `2-bit top-1 ${info[0].top1}`);
});
