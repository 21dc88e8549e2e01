/**
 * A small seeded generator (sfc32) whose whole state is four 32-bit words, so checkpoints can save
 * and restore it and a resumed run draws exactly the numbers the uninterrupted run would have.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | null = null;

  constructor(seed = 0) {
    if (!Number.isFinite(seed)) throw new TypeError(`Expected finite number for seed but received ${seed}`);
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    this.a ^= Math.floor(seed / 2 ** 32) >>> 0;
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[] | Int32Array | Uint32Array): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t as never;
    }
  }

  /** An independent generator derived from this one (for worker streams). */
  fork(): Random {
    return new Random(this.nextUint32() * 65536 + (this.nextUint32() & 0xffff));
  }

  getState(): number[] {
    return [this.a, this.b, this.c, this.d, this.spareNormal ?? Number.NaN];
  }

  /** Accepts the array from getState(), also after a JSON round trip (NaN becomes null). */
  setState(state: readonly (number | null)[]): void {
    if (state.length !== 5)
      throw new RangeError(`Expected 5 numbers for random state but received ${state.length}`);
    [this.a, this.b, this.c, this.d] = state.slice(0, 4).map((v) => (v ?? 0) | 0);
    const spare = state[4];
    this.spareNormal = spare === null || Number.isNaN(spare) ? null : spare;
  }
}
