/** Argument checks whose messages name the operation, the parameter and the value received. */

function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} of type ${typeof value}`;
  if (typeof value === 'string') return `'${value}' of type string`;
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  return `a value of type ${(value as object).constructor?.name ?? typeof value}`;
}

export function expectInteger(value: unknown, name: string, min: number, where = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    const kind = min === 1 ? 'positive integer' : min === 0 ? 'non-negative integer' : `integer >= ${min}`;
    throw new (typeof value === 'number' ? RangeError : TypeError)(
      `Expected ${kind} for ${name}${where ? ` of ${where}` : ''} but received ${describe(value)}`,
    );
  }
  return value;
}

/** An integer in [min, max]; the message gives the interval. */
export function expectIntegerIn(value: unknown, name: string, min: number, max: number, where = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new (typeof value === 'number' ? RangeError : TypeError)(
      `Expected integer in [${min}, ${max}] for ${name}${where ? ` of ${where}` : ''} but received ${describe(value)}`,
    );
  }
  return value;
}

export function expectFinite(value: unknown, name: string, where = ''): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new (typeof value === 'number' ? RangeError : TypeError)(
      `Expected finite number for ${name}${where ? ` of ${where}` : ''} but received ${describe(value)}`,
    );
  }
  return value;
}

export function expectInRange(value: unknown, name: string, low: number, high: number, where = ''): number {
  const v = expectFinite(value, name, where);
  if (v < low || v > high) {
    throw new RangeError(
      `Expected ${name}${where ? ` of ${where}` : ''} in [${low}, ${high}] but received ${v}`,
    );
  }
  return v;
}

/** Accepts n or [n, n]; returns a pair. */
export function expectPair(value: unknown, name: string, min: number, where: string): [number, number] {
  if (Array.isArray(value)) {
    if (value.length !== 2) {
      throw new RangeError(`Expected one number or two for ${name} of ${where} but received ${value.length}`);
    }
    return [expectInteger(value[0], name, min, where), expectInteger(value[1], name, min, where)];
  }
  const v = expectInteger(value, name, min, where);
  return [v, v];
}

export function expectOneOf<T extends string>(
  value: unknown,
  name: string,
  allowed: readonly T[],
  where = '',
): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new RangeError(
      `Expected one of ${allowed.map((a) => `'${a}'`).join(', ')} for ${name}${where ? ` of ${where}` : ''} but received ${describe(value)}`,
    );
  }
  return value as T;
}
