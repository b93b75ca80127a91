/** A fixed-size bitset stored as bytes (persisted in the job document). */
export class Bitset {
  readonly bytes: Uint8Array;
  private count_ = 0;
  constructor(readonly size: number, bytes?: Uint8Array) {
    this.bytes = bytes && bytes.length === Math.ceil(size / 8) ? new Uint8Array(bytes) : new Uint8Array(Math.ceil(size / 8));
    if (bytes) for (let i = 0; i < size; i++) if (this.has(i)) this.count_++;
  }
  has(i: number): boolean {
    return ((this.bytes[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
  }
  /** returns false if already set */
  set(i: number): boolean {
    if (i < 0 || i >= this.size || this.has(i)) return false;
    this.bytes[i >> 3]! |= 1 << (i & 7);
    this.count_++;
    return true;
  }
  get count(): number {
    return this.count_;
  }
  *ones(): Generator<number> {
    for (let i = 0; i < this.size; i++) if (this.has(i)) yield i;
  }
}
