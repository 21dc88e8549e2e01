/** Why a byte sequence was refused as a `.strata` file; see docs/FORMAT.md, "Error codes". */
export type StrataErrorCode =
  | 'BAD_MAGIC'
  | 'UNSUPPORTED_VERSION'
  | 'TRUNCATED'
  | 'HEADER_TOO_LARGE'
  | 'BAD_HEADER'
  | 'BAD_CHECKSUM'
  | 'INVALID_OFFSET'
  | 'BAD_SHAPE'
  | 'SIZE_MISMATCH'
  | 'BAD_DATA'
  | 'TRAILING_DATA';

/**
 * The only error the reader lets out for malformed input: callers can tell a bad file from a bug by `instanceof` and
 * react to `code` without parsing messages.
 */
export class StrataFormatError extends Error {
  readonly code: StrataErrorCode;

  constructor(code: StrataErrorCode, message: string) {
    super(message);
    this.name = 'StrataFormatError';
    this.code = code;
  }
}
