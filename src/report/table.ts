import { describe } from './check.js';

export { formatBytes, formatDuration } from './units.js';

export type Align = 'left' | 'right' | 'center';

export interface TableColumn {
  header: string;
  /** Defaults to 'right' when every cell of the column is a number, else 'left'. */
  align?: Align;
  /** Turns a cell into text; numbers default to `String(value)`. */
  format?: (value: string | number) => string;
}

export interface TableOptions {
  /** Spaces between columns (default 2). */
  gap?: number;
  /** Character repeated under each header (default '-'); '' leaves the rule out. */
  rule?: string;
}

/** Length in terminal cells, counting each code point once (good enough for non-CJK text). */
function textWidth(text: string): number {
  let width = 0;
  for (const _ of text) width++;
  return width;
}

function pad(text: string, width: number, align: Align): string {
  const room = width - textWidth(text);
  if (room <= 0) return text;
  if (align === 'right') return ' '.repeat(room) + text;
  if (align === 'center') {
    const left = Math.floor(room / 2);
    return ' '.repeat(left) + text + ' '.repeat(room - left);
  }
  return text + ' '.repeat(room);
}

function cellText(value: unknown, column: TableColumn, row: number, col: number): string {
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new TypeError(`Expected string or number for rows[${row}][${col}] but received ${describe(value)}`);
  }
  const text = column.format ? column.format(value) : String(value);
  // A newline would break the grid, so it is shown as a visible escape instead.
  return text.replace(/\r?\n/g, '\\n');
}

/**
 * Monospaced text table with a header and a rule:
 * ```
 * bits  top-1     bytes
 * ----  -----  --------
 *    2  61.20  17.1 KiB
 * ```
 * Lines carry no trailing spaces and the result has no final newline.
 */
export function formatTable(
  columns: readonly TableColumn[],
  rows: readonly (readonly (string | number)[])[],
  options: TableOptions = {},
): string {
  if (!Array.isArray(columns) || columns.length === 0) {
    throw new TypeError(`Expected non-empty array for columns but received ${describe(columns)}`);
  }
  if (!Array.isArray(rows)) throw new TypeError(`Expected array for rows but received ${describe(rows)}`);
  const gap = options.gap ?? 2;
  if (!Number.isInteger(gap) || gap < 0) {
    throw new RangeError(`Expected integer in [0, Infinity) for gap but received ${describe(gap)}`);
  }
  const rule = options.rule ?? '-';

  const cells = rows.map((row, r) => {
    if (!Array.isArray(row) || row.length !== columns.length) {
      const got = Array.isArray(row) ? String(row.length) : describe(row);
      throw new RangeError(`Expected ${columns.length} cells for rows[${r}] but received ${got}`);
    }
    return row.map((value, c) => cellText(value, columns[c], r, c));
  });
  const aligns: Align[] = columns.map(
    (column, c) =>
      column.align ?? (rows.length > 0 && rows.every((row) => typeof row[c] === 'number') ? 'right' : 'left'),
  );
  const widths = columns.map((column, c) =>
    Math.max(textWidth(column.header), ...cells.map((row) => textWidth(row[c]))),
  );

  const line = (texts: readonly string[]): string =>
    texts
      .map((text, c) => pad(text, widths[c], aligns[c]))
      .join(' '.repeat(gap))
      .trimEnd();
  const lines = [line(columns.map((column) => column.header))];
  if (rule !== '') lines.push(line(widths.map((w) => rule.repeat(w).slice(0, w))));
  for (const row of cells) lines.push(line(row));
  return lines.join('\n');
}
