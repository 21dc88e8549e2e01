/**
 * The expected accuracy of each precision, as `strata pack` records it in a model file's metadata
 * (`metadata.precisionInfo`). Browser-safe: no node: imports.
 */

export interface PrecisionInfo {
  bits: number;
  /**
   * trained: in the checkpoint's trained set; calibrated: derived from the cascade (or quantized
   * after training) with batch-norm statistics re-estimated on a calibration split at pack time;
   * uncalibrated: derived only, written by `strata pack --allow-uncalibrated` (or the in-memory packer).
   */
  source: 'trained' | 'calibrated' | 'uncalibrated';
  /** Top-1 accuracy in percent on `split`, or null when not measured. */
  top1: number | null;
  /** The split it was measured on (e.g. 'test', 'validation'), or null. */
  split: string | null;
  /** How many images it was measured on, or null. */
  samples: number | null;
}

function isEntry(value: unknown): value is PrecisionInfo {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  const numberOrNull = (x: unknown) => x === null || (typeof x === 'number' && Number.isFinite(x));
  return (
    typeof v.bits === 'number' &&
    Number.isInteger(v.bits) &&
    (v.source === 'trained' || v.source === 'calibrated' || v.source === 'uncalibrated') &&
    numberOrNull(v.top1) &&
    (v.split === null || typeof v.split === 'string') &&
    numberOrNull(v.samples)
  );
}

/**
 * `metadata.precisionInfo` by bits; entries that do not have the documented shape are left out, and
 * a file without the field gives an empty map (the page shows "not recorded").
 */
export function precisionInfoOf(metadata: Record<string, unknown> | null): Map<number, PrecisionInfo> {
  const out = new Map<number, PrecisionInfo>();
  const list = metadata?.precisionInfo;
  if (!Array.isArray(list)) return out;
  for (const entry of list) {
    if (isEntry(entry)) {
      out.set(entry.bits, {
        bits: entry.bits,
        source: entry.source,
        top1: entry.top1,
        split: entry.split,
        samples: entry.samples,
      });
    }
  }
  return out;
}

/** One line for a page or a log: "86.3 % top-1 (trained; test, 10,000 images)" or "not recorded". */
export function describePrecisionInfo(info: PrecisionInfo | undefined): string {
  if (info === undefined || info.top1 === null) {
    return info === undefined ? 'not recorded' : `not recorded (${info.source})`;
  }
  const where = [
    info.split,
    info.samples === null ? null : `${info.samples.toLocaleString('en-US')} images`,
  ].filter((s) => s !== null);
  return `${info.top1.toFixed(2)} % top-1 (${info.source}${where.length > 0 ? `; ${where.join(', ')}` : ''})`;
}
