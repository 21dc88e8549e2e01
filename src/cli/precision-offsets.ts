import type { StrataInspection } from '../format/index.js';
import { formatBytes, formatTable } from '../report/index.js';
import { precisionLabel } from './results.js';

type Precision = StrataInspection['precisions'][number];

/**
 * The table `strata info` and `strata pack` both print: for each precision, the byte from which a
 * prefix of the file holds it, plus one column the caller chooses (present? trained or derived?).
 */
export function precisionOffsetTable(
  info: StrataInspection,
  last: { header: string; cell: (precision: Precision) => string },
): string {
  return formatTable(
    [
      { header: 'bits' },
      { header: 'complete at byte', align: 'right' },
      { header: 'size', align: 'right' },
      { header: '% of file', align: 'right' },
      { header: last.header },
    ],
    info.precisions.map((p) => [
      precisionLabel(p.bits),
      p.completeAt.toLocaleString('en-US'),
      formatBytes(p.completeAt),
      ((100 * p.completeAt) / info.fileLength).toFixed(1),
      last.cell(p),
    ]),
  );
}
