import { checkFiniteNumber, checkNonNegative } from './check.js';

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
const SI_PREFIXES = ['', 'k', 'M', 'G', 'T', 'P'];

/** Binary-prefixed size with one decimal above bytes, e.g. `formatBytes(69939)` -> `'68.3 KiB'`. */
export function formatBytes(bytes: number): string {
  checkNonNegative('bytes', bytes);
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let unit = 0;
  let value = bytes;
  while (unit < BYTE_UNITS.length - 1 && value >= 1024) {
    value /= 1024;
    unit++;
  }
  // 1023.96 KiB would print as '1024.0 KiB'; promote it to the next unit instead.
  if (Number(value.toFixed(1)) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

/** Drops trailing zeros of a fixed-point string ('12.30' -> '12.3', '5.00' -> '5'). */
function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** `value` with `digits` significant digits, never in exponent notation, trailing zeros dropped. */
function significant(value: number, digits: number): string {
  if (value === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.max(0, digits - 1 - magnitude);
  return trimZeros(value.toFixed(Math.min(decimals, 20)));
}

/**
 * Human duration: `'420ms'`, `'12.3s'`, `'3m05s'`, `'1h02m03s'`, `'2d03h04m'`.
 * Below a minute it keeps three significant digits; from a minute on it counts whole seconds.
 */
export function formatDuration(seconds: number): string {
  checkNonNegative('seconds', seconds);
  if (seconds === 0) return '0s';
  if (seconds < 1e-3) return `${significant(seconds * 1e6, 3)}µs`;
  if (seconds < 1) {
    const ms = significant(seconds * 1e3, 3);
    if (Number(ms) < 1000) return `${ms}ms`;
  }
  if (seconds < 59.95) {
    const s = significant(seconds, 3);
    if (Number(s) < 60) return `${s}s`;
  }
  const total = Math.round(seconds);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (days > 0) return `${days}d${pad(hours)}h${pad(minutes)}m`;
  if (hours > 0) return `${hours}h${pad(minutes)}m${pad(secs)}s`;
  return `${minutes}m${pad(secs)}s`;
}

/** Compact SI count or rate: `'0.523'`, `'12.3'`, `'999'`, `'1.2k'`, `'12.3k'`, `'123k'`, `'4.5M'`. */
export function formatSi(value: number): string {
  checkFiniteNumber('value', value);
  const sign = value < 0 ? '-' : '';
  const abs = Math.abs(value);
  if (Number(significant(abs, 3)) < 1000) return sign + significant(abs, 3);
  let prefix = 0;
  let scaled = abs;
  while (prefix < SI_PREFIXES.length - 1 && scaled >= 1000) {
    scaled /= 1000;
    prefix++;
  }
  let text = scaled.toFixed(1);
  if (Number(text) >= 100) text = scaled.toFixed(0);
  if (Number(text) >= 1000 && prefix < SI_PREFIXES.length - 1) {
    prefix++;
    text = (scaled / 1000).toFixed(1);
  }
  return `${sign}${text}${SI_PREFIXES[prefix]}`;
}
