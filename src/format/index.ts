/** Browser-safe entry point of the .strata format; node:fs helpers live in ./strata-file.js. */
export { StrataFormatError, type StrataErrorCode } from './errors.js';
export { crc32 } from './crc32.js';
export { FORMAT_MAJOR, FORMAT_MINOR, MAGIC, MAX_HEADER_BYTES } from './layout.js';
export { parseHeader as parseStrataHeader } from './header.js';
export { writeStrata } from './writer.js';
export {
  readStrata,
  inspectStrata,
  availableBits,
  extractStrata,
  type ReadStrataOptions,
  type StrataInspection,
} from './reader.js';
export {
  StrataStreamReader,
  readStrataStream,
  type StrataPrecisionEvent,
  type StrataStreamOptions,
  type ReadStrataStreamOptions,
  type StrataStreamResult,
} from './stream-reader.js';
export type * from './types.js';
