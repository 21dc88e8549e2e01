import { formatBytes, formatTable, type TableColumn } from '../report/index.js';
import { precisionLabel } from './results.js';

export interface AccuracyRow {
  bits: number | null;
  top1: number;
  top5: number;
  loss: number;
  bytes?: number;
  /** How this precision was obtained (eval: trained, adapted, adapted+bn). */
  source?: string;
}

/** The per-precision table printed by train and eval. */
export function accuracyTable(rows: readonly AccuracyRow[]): string {
  const withBytes = rows.length > 0 && rows.every((r) => r.bytes !== undefined);
  const withSource = rows.some((r) => r.source !== undefined);
  const columns: TableColumn[] = [
    { header: 'bits', align: 'left' },
    { header: 'top-1 %', align: 'right' },
    { header: 'top-5 %', align: 'right' },
    { header: 'loss', align: 'right' },
  ];
  if (withBytes) columns.push({ header: 'bytes', align: 'right' });
  if (withSource) columns.push({ header: 'source', align: 'left' });
  const body = rows.map((r) => {
    const cells: string[] = [precisionLabel(r.bits), r.top1.toFixed(2), r.top5.toFixed(2), r.loss.toFixed(4)];
    if (withBytes) cells.push(formatBytes(r.bytes!));
    if (withSource) cells.push(r.source ?? '');
    return cells;
  });
  return formatTable(columns, body);
}
