// Argument checks shared by the report modules; messages follow the project's
// "Expected <what> for <name> but received <value> of type <type>" form.

export function describe(value: unknown): string {
  const shown = typeof value === 'string' ? `'${value}'` : String(value);
  return `${shown} of type ${value === null ? 'null' : typeof value}`;
}

export function checkFiniteNumber(name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(`Expected number for ${name} but received ${describe(value)}`);
  if (!Number.isFinite(value))
    throw new RangeError(`Expected finite number for ${name} but received ${value}`);
  return value;
}

export function checkNonNegative(name: string, value: unknown): number {
  const n = checkFiniteNumber(name, value);
  if (n < 0) throw new RangeError(`Expected number in [0, Infinity) for ${name} but received ${n}`);
  return n;
}

export function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`Expected positive integer for ${name} but received ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`Expected positive integer for ${name} but received ${describe(value)}`);
  }
  return value;
}

export function checkString(name: string, value: unknown): string {
  if (typeof value !== 'string')
    throw new TypeError(`Expected string for ${name} but received ${describe(value)}`);
  return value;
}
